// SPDX-License-Identifier: GPL-2.0
/*
 * The virtual TLB (mmu=vtlb): shadow page tables that behave like a TLB.
 *
 * The hardware walks a shadow tree that starts empty. A guest access that
 * misses takes a #PF exit (a "hidden" fault, invisible to the guest): we
 * walk the guest's own tables for that address, and either fill in one
 * shadow entry (pf_fixed) or find that the guest really faulted and inject
 * the #PF with the CR2 and error code the CPU would have given (pf_guest).
 *
 * Like a TLB, the shadow forgets: a CR3 load drops every entry, INVLPG
 * drops one translation, and a paging-mode change or CR4.PGE toggle drops
 * everything. With vtlb_keep_global=1 it forgets as a real TLB does: the
 * translations of global guest pages (G set, CR4.PGE on) survive CR3
 * loads, as in NOVA's vTLB, and go only at INVLPG, a PGE toggle or a mode
 * change. Off by default, so the 2007 design is what mmu=vtlb measures;
 * on, it shows what forgetting the kernel's mappings costs. Nothing is write-protected, so guest page-table writes cost
 * nothing until the guest flushes — which is exactly when a real TLB would
 * notice them too. The price is paid after every context switch, when each
 * page touched is a hidden fault again (see the ctxswitch workload).
 *
 * Per vCPU: one private shadow tree (mmu/stree.c does the mechanics).
 * Its size is capped (vtlb_max_tables): at the cap the whole tree is
 * dropped, as a full TLB flush would.
 */
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <asm/io.h>
#include "../mmu/mmu.h"

static unsigned int vtlb_max_tables = 2048;
module_param(vtlb_max_tables, uint, 0644);
MODULE_PARM_DESC(vtlb_max_tables, "vtlb: shadow pages (root and tables) per vCPU before a full flush (at least 5)");

static bool vtlb_keep_global;
module_param(vtlb_keep_global, bool, 0644);
MODULE_PARM_DESC(vtlb_keep_global, "vtlb: keep global guest translations across CR3 loads, as a TLB does");

static inline struct kl_stree *tree(struct kl_vcpu *vcpu)
{
	return vcpu->mmu_priv;
}

static enum kl_pf_result vtlb_page_fault(struct kl_vcpu *vcpu, struct kl_pf_info *pf)
{
	/* LAB 1 BEGIN: the hidden fault: walk, then fill one shadow entry (or not) */
	u32 access = pf->error & (KL_PF_W | KL_PF_U | KL_PF_ID);
	enum kl_pf_result result;
	struct kl_walk w;
	u64 flags;
	int r;

	if (!kl_shadow_walk(vcpu, pf, &w, &result))
		return result;
	if (kl_stree_over_cap(tree(vcpu)->nr_pages, kl_mmu_pages_cap(vcpu->vm))) {
		vcpu->vm->stat.mmu_recycled += tree(vcpu)->nr_pages - 1;
		kl_stree_zap_all(vcpu->vm, tree(vcpu));
		kl_flush_tlb(vcpu);
	}
	flags = kl_shadow_leaf_flags(vcpu, &w, access);
	if (READ_ONCE(vtlb_keep_global) && (vcpu->cr4 & X86_CR4_PGE) && (w.pte & KL_PT_G))
		flags |= KL_SPTE_GLOBAL;
	r = kl_stree_install(vcpu->vm, tree(vcpu), pf->addr, w.gpa, flags, w.page_size,
			     access & KL_PF_W);
	return r ? kl_pf_error(pf, r) : KL_PF_FIXED;
	/* LAB 1 STUB
	return kl_pf_error(pf, -ENOSYS);
	   LAB 1 END */
}

static void vtlb_invlpg(struct kl_vcpu *vcpu, u64 gva)
{
	/* LAB 1 BEGIN: INVLPG: forget one translation, as the TLB does */
	kl_stree_zap_gva(vcpu->vm, tree(vcpu), gva);
	kl_flush_tlb(vcpu);
	/* LAB 1 END */
}

/* CR4.PGE toggle, paging-mode change (and CR3 load, by default): the whole TLB goes. */
static void vtlb_flush(struct kl_vcpu *vcpu)
{
	kl_stree_zap_all(vcpu->vm, tree(vcpu));
	kl_flush_tlb(vcpu);
}

static void drop_unless_global(struct kl_vcpu *vcpu, u64 gva, u64 *spte, u64 gpa, void *ctx)
{
	if (!(*spte & KL_SPTE_GLOBAL))
		kl_drop_leaf(vcpu->vm, spte);
}

/*
 * A CR3 load. Keeping global translations costs a pass over the tree; the
 * tables themselves stay, holding what the new address space refills.
 */
static void vtlb_load_cr3(struct kl_vcpu *vcpu)
{
	if (READ_ONCE(vtlb_keep_global))
		kl_stree_for_each_leaf(vcpu, tree(vcpu), drop_unless_global, NULL);
	else
		kl_stree_zap_all(vcpu->vm, tree(vcpu));
	kl_flush_tlb(vcpu);
}

static void vtlb_memslots_changed(struct kl_vm *vm)
{
	for (int i = 0; i < vm->nr_vcpus; i++)
		vtlb_flush(vm->vcpus[i]);
}

/*
 * Dirty logging. A TLB has no reverse map and ours keeps no gpa per entry:
 * every writable entry goes read-only (those of other pages refault once
 * and get their W back), rather than dropping the tree that a vCPU in
 * guest mode may be walking right now.
 */
static unsigned long vtlb_write_protect(struct kl_vm *vm, const struct kl_memslot *slot,
					const unsigned long *bits)
{
	unsigned long n = 0;

	for (int i = 0; i < vm->nr_vcpus; i++)
		n += kl_stree_write_protect(tree(vm->vcpus[i]), false, slot, bits);
	return n;
}

static u64 vtlb_root_hpa(struct kl_vcpu *vcpu)
{
	return page_to_phys(tree(vcpu)->root);
}

static int vtlb_vcpu_init(struct kl_vcpu *vcpu)
{
	struct kl_stree *t = kzalloc(sizeof(*t), GFP_KERNEL_ACCOUNT);

	if (!t)
		return -ENOMEM;
	if (kl_stree_init(vcpu->vm, t, false)) {
		kfree(t);
		return -ENOMEM;
	}
	vcpu->mmu_priv = t;
	return 0;
}

static void vtlb_vcpu_destroy(struct kl_vcpu *vcpu)
{
	kl_stree_destroy(vcpu->vm, tree(vcpu));
	kfree(tree(vcpu));
	vcpu->mmu_priv = NULL;
}

static int vtlb_vm_init(struct kl_vm *vm)
{
	return 0;
}

static void vtlb_vm_destroy(struct kl_vm *vm)
{
}

const struct kl_mmu_ops kl_vtlb_ops = {
	.name = "vtlb",
	.hw_paging = false,
	.formats = BIT(KL_PAGING_2LEVEL) | BIT(KL_PAGING_PAE) | BIT(KL_PAGING_4LEVEL),
	.max_pages = &vtlb_max_tables,
	.vm_init = vtlb_vm_init,
	.vm_destroy = vtlb_vm_destroy,
	.vcpu_init = vtlb_vcpu_init,
	.vcpu_destroy = vtlb_vcpu_destroy,
	.root_hpa = vtlb_root_hpa,
	.page_fault = vtlb_page_fault,
	.load_cr3 = vtlb_load_cr3,
	.invlpg = vtlb_invlpg,
	.flush_tlb = vtlb_flush,
	.mode_changed = vtlb_flush,
	.memslots_changed = vtlb_memslots_changed,
	.write_protect = vtlb_write_protect,
};
