// SPDX-License-Identifier: GPL-2.0
/*
 * Nested paging (mmu=npt): the hardware baseline. The guest owns its page
 * tables and CR3 outright — no #PF, CR3 or INVLPG intercepts — and the CPU
 * walks them, then walks ours: one nested table per VM mapping guest-
 * physical to host-physical. We build it lazily, a 4 KiB page per nested
 * page fault (NPF), and tear it down only when memslots change.
 *
 * The cost moves into the hardware: a TLB miss walks up to 24 entries
 * (4 guest levels, each translated through 4 nested levels, plus the
 * data), instead of taking an exit.
 *
 * The nested table has the hardware's format (kl_tdp: AMD's NPT walks x86
 * page tables, Intel's EPT its own bits), and on AMD the host's depth: when
 * the host kernel runs with 5-level paging (CR4.LA57 — the test machine's
 * -cpu max offers it), the CPU walks five levels. Guest-physical space
 * stays below 2^48 (memslots are limited to it), so a PML5 with one entry
 * over the 4-level tree does. Nested leaves grant everything (kl_tdp.leaf):
 * the guest's own tables do the policing.
 */
#include <linux/mm.h>
#include <linux/slab.h>
#include <asm/io.h>
#include "../mmu/mmu.h"


/* One per VM, shared by its vCPUs: vm->mmu_lock serializes their faults. */
struct npt {
	struct kl_stree tree;
	struct page *pml5;	/* NULL unless the host uses 5-level paging */
};

static inline struct npt *to_npt(struct kl_vm *vm)
{
	return vm->mmu_priv;
}

static u64 npt_root_hpa(struct kl_vcpu *vcpu)
{
	struct npt *npt = to_npt(vcpu->vm);

	return page_to_phys(npt->pml5 ? npt->pml5 : npt->tree.root);
}

static enum kl_pf_result npt_page_fault(struct kl_vcpu *vcpu, struct kl_pf_info *pf)
{
	struct npt *npt = to_npt(vcpu->vm);
	u64 gpa = pf->addr, *spte;
	int r;

	if (!kl_gfn_is_ram(vcpu->vm, gpa >> PAGE_SHIFT, pf->error & KL_PF_W)) {
		pf->gpa = gpa;
		return KL_PF_MMIO;
	}
	if (pf->error & KL_PF_RSVD)
		return kl_pf_error(pf, -EIO);	/* our own table is malformed: never expected */
	spte = kl_stree_pte(vcpu->vm, &npt->tree, gpa, false, NULL);
	/* Present: another vCPU got there first, unless a write found it read-only. */
	if (spte && (*spte & KL_PT_P) && ((*spte & KL_PT_W) || !(pf->error & KL_PF_W)))
		return KL_PF_RETRY;
	/*
	 * A write to a page write-protected for dirty logging lands here too:
	 * the leaf is replaced by a writable one (the page repinned for
	 * writing) and the page logged.
	 */
	r = kl_stree_install(vcpu->vm, &npt->tree, gpa, gpa, kl_tdp.leaf, PAGE_SIZE,
			     pf->error & KL_PF_W);
	return r ? kl_pf_error(pf, r) : KL_PF_FIXED;
}

/* Guest CR3 loads and INVLPG never reach us; these do. */
static void npt_nothing(struct kl_vcpu *vcpu, u64 gva)
{
}

static void npt_load_cr3(struct kl_vcpu *vcpu)
{
	kl_flush_tlb(vcpu);
}

/*
 * CR0/CR4 writes are intercepted (to follow the paging mode), so a
 * CR4.PGE toggle or a WP change the guest meant as a TLB flush must be
 * carried out here.
 */
static void npt_flush(struct kl_vcpu *vcpu)
{
	kl_flush_tlb(vcpu);
}

static void npt_memslots_changed(struct kl_vm *vm)
{
	kl_stree_zap_all(vm, &to_npt(vm)->tree);
	kl_flush_remote_tlbs(vm);
}

static unsigned long npt_write_protect(struct kl_vm *vm, const struct kl_memslot *slot,
				       const unsigned long *bits)
{
	return kl_stree_write_protect(&to_npt(vm)->tree, true, slot, bits);
}

static int npt_vm_init(struct kl_vm *vm)
{
	struct npt *npt = kzalloc(sizeof(*npt), GFP_KERNEL_ACCOUNT);

	if (!npt)
		return -ENOMEM;
	if (kl_stree_init(vm, &npt->tree, false))
		goto fail;
	npt->tree.nonleaf = kl_tdp.nonleaf;
	if (kl_tdp.levels == 5) {
		npt->pml5 = kl_table_page_alloc(vm);
		if (!npt->pml5) {
			kl_stree_destroy(vm, &npt->tree);
			goto fail;
		}
		*(u64 *)page_address(npt->pml5) = page_to_phys(npt->tree.root) | kl_tdp.nonleaf;
	}
	vm->mmu_priv = npt;
	return 0;
fail:
	kfree(npt);
	return -ENOMEM;
}

static void npt_vm_destroy(struct kl_vm *vm)
{
	if (to_npt(vm)->pml5)
		kl_table_page_free(vm, to_npt(vm)->pml5);
	kl_stree_destroy(vm, &to_npt(vm)->tree);
	kfree(vm->mmu_priv);
	vm->mmu_priv = NULL;
}

static int npt_vcpu_init(struct kl_vcpu *vcpu)
{
	return 0;
}

static void npt_vcpu_destroy(struct kl_vcpu *vcpu)
{
}

const struct kl_mmu_ops kl_npt_ops = {
	.name = "npt",
	.hw_paging = true,
	.formats = BIT(KL_PAGING_2LEVEL) | BIT(KL_PAGING_PAE) | BIT(KL_PAGING_4LEVEL),
	.vm_init = npt_vm_init,
	.vm_destroy = npt_vm_destroy,
	.vcpu_init = npt_vcpu_init,
	.vcpu_destroy = npt_vcpu_destroy,
	.root_hpa = npt_root_hpa,
	.page_fault = npt_page_fault,
	.load_cr3 = npt_load_cr3,
	.invlpg = npt_nothing,
	.flush_tlb = npt_flush,
	.mode_changed = npt_flush,
	.memslots_changed = npt_memslots_changed,
	.write_protect = npt_write_protect,
};
