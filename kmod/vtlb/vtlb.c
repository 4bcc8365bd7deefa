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
 * everything. Nothing is write-protected, so guest page-table writes cost
 * nothing until the guest flushes — which is exactly when a real TLB would
 * notice them too. The price is paid after every context switch, when each
 * page touched is a hidden fault again (see the ctxswitch workload).
 *
 * Per vCPU: one shadow tree (PML4, PDPTs, PDs, PTs). Leaf entries point at
 * guest pages pinned for as long as the entry exists. The number of shadow
 * table pages is capped (vtlb_max_tables): at the cap the whole tree is
 * dropped, as a full TLB flush would.
 */
#include <linux/module.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <asm/io.h>
#include "../core/kvmlab.h"

static unsigned int vtlb_max_tables = 2048;
module_param(vtlb_max_tables, uint, 0644);
MODULE_PARM_DESC(vtlb_max_tables, "vtlb: shadow table pages per vCPU before a full flush");

/* Upper-level shadow entries grant everything; the leaf decides. */
#define NONLEAF_FLAGS	(KL_PT_P | KL_PT_W | KL_PT_U | KL_PT_A)
/* page->private of a shadow PT: filled from a guest 2 MiB/1 GiB page. */
#define FROM_LARGE	1UL

struct vtlb {
	struct page *root;
	unsigned int nr_tables;		/* below the root */
};

static inline struct vtlb *to_vtlb(struct kl_vcpu *vcpu)
{
	return vcpu->mmu_priv;
}

static inline u64 *table_of(u64 spte)
{
	return page_address(pfn_to_page((spte & KL_PT_ADDR) >> PAGE_SHIFT));
}

static void drop_leaf(struct kl_vcpu *vcpu, u64 *spte)
{
	struct page *page = pfn_to_page((*spte & KL_PT_ADDR) >> PAGE_SHIFT);

	kl_unpin_page(vcpu->vm, page, *spte & KL_PT_D);
	*spte = 0;
	vcpu->vm->stat.pages_4k--;
}

/* Free the table a non-leaf entry points to, and everything under it. */
static void drop_table(struct kl_vcpu *vcpu, u64 *entry, int level)
{
	u64 *t = table_of(*entry);
	struct page *page = virt_to_page(t);

	for (int i = 0; i < 512; i++) {
		if (!(t[i] & KL_PT_P))
			continue;
		if (level == 2)
			drop_leaf(vcpu, &t[i]);
		else
			drop_table(vcpu, &t[i], level - 1);
	}
	set_page_private(page, 0);
	kl_table_page_free(vcpu->vm, page);
	to_vtlb(vcpu)->nr_tables--;
	vcpu->vm->stat.mmu_shadow_zapped++;
	*entry = 0;
}

/* The whole TLB: every shadow entry goes, the empty root stays. */
static void flush_all(struct kl_vcpu *vcpu)
{
	u64 *root = page_address(to_vtlb(vcpu)->root);

	for (int i = 0; i < 512; i++)
		if (root[i] & KL_PT_P)
			drop_table(vcpu, &root[i], 4);
	kl_vendor->flush_guest_tlb(vcpu);
}

/* The shadow entry for gva at level 1, building tables on the way if asked. */
static u64 *shadow_pte(struct kl_vcpu *vcpu, u64 gva, bool build, struct page **pt)
{
	struct vtlb *v = to_vtlb(vcpu);
	u64 *table = page_address(v->root);

	for (int level = 4; level > 1; level--) {
		u64 *e = &table[(gva >> (12 + 9 * (level - 1))) & 511];

		if (!(*e & KL_PT_P)) {
			struct page *page;

			if (!build)
				return NULL;
			page = kl_table_page_alloc(vcpu->vm);
			if (!page)
				return ERR_PTR(-ENOMEM);
			v->nr_tables++;
			vcpu->vm->stat.mmu_cache_miss++;
			*e = page_to_phys(page) | NONLEAF_FLAGS;
		}
		table = table_of(*e);
	}
	if (pt)
		*pt = virt_to_page(table);
	return &table[(gva >> 12) & 511];
}

/*
 * The shadow entry's rights. Two subtleties:
 *  - D: a guest entry whose D bit is clear is mapped read-only, so the
 *    first write faults and the walk can set D, as the CPU would.
 *  - CR0.WP=0: a supervisor write to a read-only page is allowed; the
 *    entry becomes writable but supervisor-only, so a later user access
 *    faults and gets the guest's real (read-only) rights back.
 */
static u64 leaf_flags(struct kl_vcpu *vcpu, const struct kl_walk *w, u32 access)
{
	bool write = access & KL_PF_W, user_access = access & KL_PF_U;
	bool dirty = !kl_guest_paging(vcpu) || (w->pte & KL_PT_D);
	u64 f = KL_PT_P | KL_PT_A;

	if (w->user)
		f |= KL_PT_U;
	if (w->writable && (dirty || write))
		f |= KL_PT_W;
	if (write && !w->writable && !user_access && !(vcpu->cr0 & X86_CR0_WP))
		f = (f | KL_PT_W | KL_PT_D) & ~KL_PT_U;
	if (w->nx && (vcpu->efer & EFER_NX))
		f |= KL_PT_NX;
	return f;
}

static int vtlb_page_fault(struct kl_vcpu *vcpu, struct kl_pf_info *pf)
{
	u32 access = pf->error & (KL_PF_W | KL_PF_U | KL_PF_ID);
	struct kl_walk w;
	struct page *page, *pt;
	u64 *spte, flags;
	int r;

	r = kl_walk_guest(vcpu, pf->addr, access, true, &w);
	if (r == -EFAULT) {
		pf->guest_error = w.error;
		return KL_PF_GUEST;
	}
	if (r)
		return r;
	if (!kl_gfn_to_memslot(vcpu->vm, w.gpa >> PAGE_SHIFT)) {
		pf->gpa = w.gpa;
		return KL_PF_MMIO;
	}
	if (to_vtlb(vcpu)->nr_tables + 3 > vtlb_max_tables) {
		vcpu->vm->stat.mmu_recycled += to_vtlb(vcpu)->nr_tables;
		flush_all(vcpu);
	}
	flags = leaf_flags(vcpu, &w, access);
	r = kl_pin_gfn(vcpu->vm, w.gpa >> PAGE_SHIFT, flags & KL_PT_W, &page);
	if (r)
		return r;
	spte = shadow_pte(vcpu, pf->addr, true, &pt);
	if (IS_ERR(spte)) {
		kl_unpin_page(vcpu->vm, page, false);
		return PTR_ERR(spte);
	}
	if (*spte & KL_PT_P)
		drop_leaf(vcpu, spte);	/* an upgrade, e.g. read-only to writable */
	*spte = page_to_phys(page) | flags;
	vcpu->vm->stat.pages_4k++;
	if (w.level > 1)
		set_page_private(pt, FROM_LARGE);
	return KL_PF_FIXED;
}

/*
 * INVLPG: one translation. For a guest large page the shadow holds up to
 * 512 small entries for it; INVLPG anywhere in the large page must drop
 * them all, so a PT filled from a large page is cleared whole.
 */
static void vtlb_invlpg(struct kl_vcpu *vcpu, u64 gva)
{
	struct page *pt;
	u64 *spte = shadow_pte(vcpu, gva, false, &pt);

	if (!spte)
		return;
	if (page_private(pt) == FROM_LARGE) {
		u64 *t = page_address(pt);

		for (int i = 0; i < 512; i++)
			if (t[i] & KL_PT_P)
				drop_leaf(vcpu, &t[i]);
		set_page_private(pt, 0);
	} else if (*spte & KL_PT_P) {
		drop_leaf(vcpu, spte);
	}
	kl_vendor->flush_guest_tlb(vcpu);
}

static void vtlb_flush(struct kl_vcpu *vcpu)
{
	flush_all(vcpu);
}

static void vtlb_memslots_changed(struct kl_vm *vm)
{
	for (int i = 0; i < vm->nr_vcpus; i++)
		flush_all(vm->vcpus[i]);
}

static u64 vtlb_root_hpa(struct kl_vcpu *vcpu)
{
	return page_to_phys(to_vtlb(vcpu)->root);
}

static int vtlb_vcpu_init(struct kl_vcpu *vcpu)
{
	struct vtlb *v = kzalloc(sizeof(*v), GFP_KERNEL_ACCOUNT);

	if (!v)
		return -ENOMEM;
	v->root = kl_table_page_alloc(vcpu->vm);
	if (!v->root) {
		kfree(v);
		return -ENOMEM;
	}
	vcpu->mmu_priv = v;
	return 0;
}

static void vtlb_vcpu_destroy(struct kl_vcpu *vcpu)
{
	struct vtlb *v = to_vtlb(vcpu);

	flush_all(vcpu);
	kl_table_page_free(vcpu->vm, v->root);
	kfree(v);
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
	.vm_init = vtlb_vm_init,
	.vm_destroy = vtlb_vm_destroy,
	.vcpu_init = vtlb_vcpu_init,
	.vcpu_destroy = vtlb_vcpu_destroy,
	.root_hpa = vtlb_root_hpa,
	.page_fault = vtlb_page_fault,
	.load_cr3 = vtlb_flush,
	.invlpg = vtlb_invlpg,
	.flush_tlb = vtlb_flush,
	.mode_changed = vtlb_flush,
	.memslots_changed = vtlb_memslots_changed,
};
