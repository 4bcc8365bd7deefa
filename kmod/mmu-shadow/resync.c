// SPDX-License-Identifier: GPL-2.0
/*
 * Shadow page tables with naive resync (mmu=shadow).
 *
 * The step after the virtual TLB: keep a shadow tree per guest root (per
 * CR3 value) so a context switch back to a known address space finds its
 * translations still there. But nothing tells us when the guest edits its
 * page tables — they are not write-protected — so at every CR3 load and
 * every guest TLB flush the shadow being loaded is brought back in sync by
 * re-walking, for every entry it holds, the guest tables it came from.
 * An entry whose translation moved, lost rights, or whose guest A bit was
 * cleared is dropped (it refaults on use). INVLPG resyncs one translation.
 *
 * This is correct exactly where a real TLB is: the guest must flush after
 * changing a mapping, and the flush is where we look. Its cost is the
 * resync: proportional to the number of entries the shadow holds, paid on
 * every switch (counters mmu_resync, mmu_resync_checked, mmu_resync_changed).
 *
 * Per vCPU: up to shadow_max_roots trees, least recently used evicted; the
 * table pages of all of them capped by shadow_max_tables.
 */
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <asm/io.h>
#include "../mmu/mmu.h"

#define MAX_ROOTS 256

static unsigned int shadow_max_roots = 32;
module_param(shadow_max_roots, uint, 0444);
MODULE_PARM_DESC(shadow_max_roots, "shadow: guest roots kept per vCPU (at most 256)");
static unsigned int shadow_max_tables = 4096;
module_param(shadow_max_tables, uint, 0644);
MODULE_PARM_DESC(shadow_max_tables, "shadow: shadow pages (roots, tables, tag pages) per vCPU before roots are evicted (at least 5)");

struct shadow_root {
	bool used;
	u64 guest_root;		/* gpa of the guest's top table (PML4, PDPT or PD) */
	u64 last_use;
	struct kl_stree tree;
};

struct resync {
	struct shadow_root *cur;
	u64 clock;
	unsigned int nr_roots;
	struct shadow_root roots[];
};

static inline struct resync *to_rs(struct kl_vcpu *vcpu)
{
	return vcpu->mmu_priv;
}

static unsigned int total_pages(struct resync *rs)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < rs->nr_roots; i++)
		n += rs->roots[i].used ? rs->roots[i].tree.nr_pages : 0;
	return n;
}

/* Re-check one shadow leaf against the guest's tables; drop it if stale. */
static void resync_leaf(struct kl_vcpu *vcpu, u64 gva, u64 *spte, u64 gpa, void *ctx)
{
	/* LAB 3 BEGIN: is this shadow leaf still what the guest's tables say? */
	struct kl_vm *vm = vcpu->vm;
	struct kl_walk w;
	u64 want;
	bool stale;

	vm->stat.mmu_resync_checked++;
	if (kl_walk_guest(vcpu, gva, 0, false, &w) || !w.accessed ||
	    !kl_gfn_to_memslot(vm, w.gpa >> PAGE_SHIFT)) {
		stale = true;
	} else {
		/* What a fresh read fill would grant; the entry may hold no more. */
		want = kl_shadow_leaf_flags(vcpu, &w, 0);
		stale = (w.gpa & KL_PT_ADDR) != gpa ||
			((*spte & KL_PT_W) && !(want & KL_PT_W)) ||
			((*spte & KL_PT_U) && !(want & KL_PT_U)) ||
			(!(*spte & KL_PT_NX) && (want & KL_PT_NX)) ||
			(!!(*spte & KL_SPTE_FROM_LARGE) != (w.level > 1));
	}
	if (stale) {
		kl_drop_leaf(vm, spte);
		vm->stat.mmu_resync_changed++;
	}
	/* LAB 3 END */
}

static void resync(struct kl_vcpu *vcpu, struct shadow_root *root)
{
	/* LAB 3 BEGIN: bring a whole shadow tree back in sync with the guest */
	vcpu->vm->stat.mmu_resync++;
	kl_stree_for_each_leaf(vcpu, &root->tree, resync_leaf, NULL);
	kl_flush_tlb(vcpu);
	/* LAB 3 STUB
	(void)resync_leaf;
	   LAB 3 END */
}

static void evict(struct kl_vcpu *vcpu, struct shadow_root *root)
{
	vcpu->vm->stat.mmu_recycled += root->tree.nr_pages;
	kl_stree_destroy(vcpu->vm, &root->tree);
	root->used = false;
}

/* The least recently used tree other than the current one; NULL if none. */
static struct shadow_root *oldest_other(struct resync *rs)
{
	struct shadow_root *victim = NULL;

	for (unsigned int i = 0; i < rs->nr_roots; i++) {
		struct shadow_root *r = &rs->roots[i];

		if (r->used && r != rs->cur && (!victim || r->last_use < victim->last_use))
			victim = r;
	}
	return victim;
}

/* A slot for a new tree: a free one, or the least recently used. */
static struct shadow_root *slot_for_new_root(struct resync *rs)
{
	for (unsigned int i = 0; i < rs->nr_roots; i++)
		if (!rs->roots[i].used)
			return &rs->roots[i];
	return oldest_other(rs);
}

/* A PAE guest's PDPT is 32-byte aligned, so several may share a page. */
static u64 root_key(struct kl_vcpu *vcpu)
{
	return vcpu->cr3 & (kl_guest_format(vcpu) == KL_PAGING_PAE ? 0xffffffe0ULL : KL_PT_ADDR);
}

static void load_root(struct kl_vcpu *vcpu)
{
	struct resync *rs = to_rs(vcpu);
	u64 key = root_key(vcpu);
	struct shadow_root *r;

	for (unsigned int i = 0; i < rs->nr_roots; i++) {
		r = &rs->roots[i];
		if (r->used && r->guest_root == key) {
			vcpu->vm->stat.mmu_root_hit++;
			r->last_use = ++rs->clock;
			rs->cur = r;
			resync(vcpu, r);
			return;
		}
	}
	vcpu->vm->stat.mmu_root_miss++;
	r = slot_for_new_root(rs);
	if (r->used)
		evict(vcpu, r);
	if (kl_stree_init(vcpu->vm, &r->tree, true)) {
		rs->cur = NULL;
		return;
	}
	r->used = true;
	r->guest_root = key;
	r->last_use = ++rs->clock;
	rs->cur = r;
	kl_flush_tlb(vcpu);
}

/* Over the table cap: evict other roots, oldest first; at worst empty this one. */
static void enforce_cap(struct kl_vcpu *vcpu)
{
	struct resync *rs = to_rs(vcpu);

	while (kl_stree_over_cap(total_pages(rs), kl_mmu_pages_cap(vcpu->vm))) {
		struct shadow_root *victim = oldest_other(rs);

		if (!victim) {
			vcpu->vm->stat.mmu_recycled += rs->cur->tree.nr_pages - 1;
			kl_stree_zap_all(vcpu->vm, &rs->cur->tree);
			kl_flush_tlb(vcpu);
			return;
		}
		evict(vcpu, victim);
	}
}

static enum kl_pf_result shadow_page_fault(struct kl_vcpu *vcpu, struct kl_pf_info *pf)
{
	u32 access = pf->error & (KL_PF_W | KL_PF_U | KL_PF_ID);
	enum kl_pf_result result;
	struct kl_walk w;
	int r;

	if (!to_rs(vcpu)->cur)
		return kl_pf_error(pf, -ENOMEM);
	if (!kl_shadow_walk(vcpu, pf, &w, &result))
		return result;
	enforce_cap(vcpu);
	r = kl_stree_fill(vcpu, &to_rs(vcpu)->cur->tree, pf->addr, &w, access);
	return r ? kl_pf_error(pf, r) : KL_PF_FIXED;
}

static void shadow_invlpg(struct kl_vcpu *vcpu, u64 gva)
{
	if (!to_rs(vcpu)->cur)
		return;
	kl_stree_zap_gva(vcpu->vm, &to_rs(vcpu)->cur->tree, gva);
	kl_flush_tlb(vcpu);
}

/* A guest TLB flush without a CR3 change (CR4.PGE toggle): resync in place. */
static void shadow_flush_tlb(struct kl_vcpu *vcpu)
{
	if (to_rs(vcpu)->cur)
		resync(vcpu, to_rs(vcpu)->cur);
}

/* WP, NXE, paging itself changed: every shadow's rights may be wrong. */
static void drop_all(struct kl_vcpu *vcpu)
{
	struct resync *rs = to_rs(vcpu);

	for (unsigned int i = 0; i < rs->nr_roots; i++)
		if (rs->roots[i].used)
			evict(vcpu, &rs->roots[i]);
	rs->cur = NULL;
	load_root(vcpu);
}

static void shadow_memslots_changed(struct kl_vm *vm)
{
	for (int i = 0; i < vm->nr_vcpus; i++)
		drop_all(vm->vcpus[i]);
}

/* Dirty logging: each cached root's leaves say which gpa they map (tags). */
static unsigned long shadow_write_protect(struct kl_vm *vm, const struct kl_memslot *slot,
					  const unsigned long *bits)
{
	unsigned long n = 0;

	for (int i = 0; i < vm->nr_vcpus; i++) {
		struct resync *rs = to_rs(vm->vcpus[i]);

		for (unsigned int r = 0; r < rs->nr_roots; r++)
			if (rs->roots[r].used)
				n += kl_stree_write_protect(&rs->roots[r].tree, false, slot, bits);
	}
	return n;
}

static u64 shadow_root_hpa(struct kl_vcpu *vcpu)
{
	if (!to_rs(vcpu)->cur)
		load_root(vcpu);
	return to_rs(vcpu)->cur ? page_to_phys(to_rs(vcpu)->cur->tree.root) : 0;
}

static int shadow_vcpu_init(struct kl_vcpu *vcpu)
{
	unsigned int n = clamp(shadow_max_roots, 1U, (unsigned int)MAX_ROOTS);
	struct resync *rs = kzalloc(struct_size(rs, roots, n), GFP_KERNEL_ACCOUNT);

	if (!rs)
		return -ENOMEM;
	rs->nr_roots = n;
	vcpu->mmu_priv = rs;
	return 0;
}

static void shadow_vcpu_destroy(struct kl_vcpu *vcpu)
{
	struct resync *rs = to_rs(vcpu);

	for (unsigned int i = 0; i < rs->nr_roots; i++)
		if (rs->roots[i].used)
			kl_stree_destroy(vcpu->vm, &rs->roots[i].tree);
	kfree(rs);
	vcpu->mmu_priv = NULL;
}

static int shadow_vm_init(struct kl_vm *vm)
{
	return 0;
}

static void shadow_vm_destroy(struct kl_vm *vm)
{
}

const struct kl_mmu_ops kl_shadow_ops = {
	.name = "shadow",
	.hw_paging = false,
	.formats = BIT(KL_PAGING_2LEVEL) | BIT(KL_PAGING_PAE) | BIT(KL_PAGING_4LEVEL),
	.max_pages = &shadow_max_tables,
	.vm_init = shadow_vm_init,
	.vm_destroy = shadow_vm_destroy,
	.vcpu_init = shadow_vcpu_init,
	.vcpu_destroy = shadow_vcpu_destroy,
	.root_hpa = shadow_root_hpa,
	.page_fault = shadow_page_fault,
	.load_cr3 = load_root,
	.invlpg = shadow_invlpg,
	.flush_tlb = shadow_flush_tlb,
	.mode_changed = drop_all,
	.memslots_changed = shadow_memslots_changed,
	.write_protect = shadow_write_protect,
};
