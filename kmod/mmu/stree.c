// SPDX-License-Identifier: GPL-2.0
/*
 * Private shadow trees: one shadow PML4 and the tables under it, owned by
 * one vCPU (the virtual TLB keeps one, the naive-resync strategy one per
 * guest root, physical mode one) or by the VM (the nested table). Leaf
 * entries point at pinned guest pages. The strategies decide when to fill
 * and when to forget; the mechanics live here once.
 */
#include <linux/mm.h>
#include <linux/sizes.h>
#include <asm/io.h>
#include "mmu.h"

/* Upper-level shadow entries grant everything; the leaf decides. */
#define NONLEAF_FLAGS	(KL_PT_P | KL_PT_W | KL_PT_U | KL_PT_A)

/*
 * The nested table's entry format is the hardware's: AMD's NPT walks
 * ordinary x86 page tables, Intel's EPT its own format (read, write and
 * execute in bits 0-2, a memory type in the leaves). The vendor sets this
 * once at load (kl_tdp_set_format); the nested-paging strategy builds its
 * tree with these bits, and the shared tree code tests only bits 0 and 1,
 * which mean "present/readable" and "writable" in both formats.
 */
struct kl_tdp_format kl_tdp = {
	.leaf = KL_PT_P | KL_PT_W | KL_PT_U | KL_PT_A | KL_PT_D,
	.nonleaf = NONLEAF_FLAGS,
	.levels = 4,
	.name = "npt",
};

void kl_tdp_set_format(const struct kl_tdp_format *f)
{
	kl_tdp = *f;
}

static inline u64 *table_of(u64 spte)
{
	return page_address(pfn_to_page((spte & KL_PT_ADDR) >> PAGE_SHIFT));
}

/* A PT's tag page (trees that track gpas): one tag per leaf, in page->private. */
static inline u64 *tags_of(struct page *pt)
{
	struct page *tags = (struct page *)page_private(pt);

	return tags ? page_address(tags) : NULL;
}

void kl_drop_leaf(struct kl_vm *vm, u64 *spte)
{
	struct page *page = pfn_to_page((*spte & KL_PT_ADDR) >> PAGE_SHIFT);

	kl_unpin_page(vm, page, *spte & KL_PT_D);
	*spte = 0;
	vm->stat.pages_4k--;
}

/*
 * The rights of a shadow leaf for an access the guest's tables allow:
 *  - D: a guest entry whose D bit is clear is mapped read-only, so the
 *    first write faults and the walk can set D, as the CPU would.
 *  - CR0.WP=0: a supervisor write to a read-only page is allowed; the
 *    entry becomes writable but supervisor-only, so a later user access
 *    faults and gets the guest's real (read-only) rights back.
 */
u64 kl_shadow_leaf_flags(struct kl_vcpu *vcpu, const struct kl_walk *w, u32 access)
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

/*
 * The start of every shadow strategy's #PF: walk the guest's tables for the
 * access the hardware reported (see mmu.h).
 */
bool kl_shadow_walk(struct kl_vcpu *vcpu, struct kl_pf_info *pf, struct kl_walk *w,
		    enum kl_pf_result *result)
{
	/* LAB 1 BEGIN: walk the guest's tables; a guest fault, MMIO, or go on and fill */
	u32 access = pf->error & (KL_PF_W | KL_PF_U | KL_PF_ID);
	int r = kl_walk_guest(vcpu, pf->addr, access, true, w);

	if (r == -EFAULT) {
		pf->guest_error = w->error;
		*result = KL_PF_GUEST;
		return false;
	}
	if (r) {
		*result = kl_pf_error(pf, r);
		return false;
	}
	if (!kl_gfn_is_ram(vcpu->vm, w->gpa >> PAGE_SHIFT, access & KL_PF_W)) {
		pf->gpa = w->gpa;
		*result = KL_PF_MMIO;
		return false;
	}
	return true;
	/* LAB 1 STUB
	*result = kl_pf_error(pf, -ENOSYS);
	return false;
	   LAB 1 END */
}

int kl_stree_init(struct kl_vm *vm, struct kl_stree *t, bool track_gpa)
{
	t->track_gpa = track_gpa;
	t->nonleaf = NONLEAF_FLAGS;
	t->root = kl_table_page_alloc(vm);
	t->nr_pages = t->root ? 1 : 0;
	return t->root ? 0 : -ENOMEM;
}

static void free_pt(struct kl_vm *vm, struct kl_stree *t, struct page *pt)
{
	struct page *tags = (struct page *)page_private(pt);

	if (tags) {
		kl_table_page_free(vm, tags);
		set_page_private(pt, 0);
		t->nr_pages--;
	}
	kl_table_page_free(vm, pt);
}

/* Free the table a non-leaf entry points to, and everything under it. */
static void drop_table(struct kl_vm *vm, struct kl_stree *t, u64 *entry, int level)
{
	u64 *table = table_of(*entry);

	for (int i = 0; i < 512; i++) {
		if (!(table[i] & KL_PT_P))
			continue;
		if (level == 2)
			kl_drop_leaf(vm, &table[i]);
		else
			drop_table(vm, t, &table[i], level - 1);
	}
	if (level == 2)
		free_pt(vm, t, virt_to_page(table));
	else
		kl_table_page_free(vm, virt_to_page(table));
	t->nr_pages--;
	vm->stat.mmu_shadow_zapped++;
	*entry = 0;
}

void kl_stree_zap_all(struct kl_vm *vm, struct kl_stree *t)
{
	u64 *root = page_address(t->root);

	for (int i = 0; i < 512; i++)
		if (root[i] & KL_PT_P)
			drop_table(vm, t, &root[i], 4);
	t->max_large = 0;
}

void kl_stree_destroy(struct kl_vm *vm, struct kl_stree *t)
{
	kl_stree_zap_all(vm, t);
	kl_table_page_free(vm, t->root);
	t->root = NULL;
	t->nr_pages = 0;
}

u64 *kl_stree_pte(struct kl_vm *vm, struct kl_stree *t, u64 gva, bool build, struct page **pt)
{
	u64 *table = page_address(t->root);

	for (int level = 4; level > 1; level--) {
		u64 *e = &table[(gva >> (12 + 9 * (level - 1))) & 511];

		if (!(*e & KL_PT_P)) {
			struct page *page, *tags = NULL;

			if (!build)
				return NULL;
			page = kl_table_page_alloc(vm);
			if (page && level == 2 && t->track_gpa) {
				tags = kl_table_page_alloc(vm);
				if (tags) {
					set_page_private(page, (unsigned long)tags);
				} else {
					kl_table_page_free(vm, page);
					page = NULL;
				}
			}
			if (!page)
				return ERR_PTR(-ENOMEM);
			t->nr_pages += tags ? 2 : 1;
			vm->stat.mmu_cache_miss++;
			*e = page_to_phys(page) | t->nonleaf;
		}
		table = table_of(*e);
	}
	if (pt)
		*pt = virt_to_page(table);
	return &table[(gva >> 12) & 511];
}

int kl_stree_install(struct kl_vm *vm, struct kl_stree *t, u64 gva, u64 gpa, u64 flags,
		     u64 page_size, bool write)
{
	struct page *page, *pt;
	u64 *spte, *tags;
	int r;

	/* A ROM, or a clean page under dirty logging: writes fault (MMIO, or logged). */
	if ((flags & KL_PT_W) && !kl_leaf_writable(vm, gpa >> PAGE_SHIFT, write))
		flags &= ~KL_PT_W;
	r = kl_pin_gfn(vm, gpa >> PAGE_SHIFT, flags & KL_PT_W, &page);
	if (r)
		return r;
	spte = kl_stree_pte(vm, t, gva, true, &pt);
	if (IS_ERR(spte)) {
		kl_unpin_page(vm, page, false);
		return PTR_ERR(spte);
	}
	if (*spte & KL_PT_P)
		kl_drop_leaf(vm, spte);	/* an upgrade, e.g. read-only to writable */
	*spte = page_to_phys(page) | flags | (page_size > PAGE_SIZE ? KL_SPTE_FROM_LARGE : 0);
	if (page_size > PAGE_SIZE)
		t->max_large = max(t->max_large, page_size);
	tags = tags_of(pt);
	if (tags)
		tags[spte - (u64 *)page_address(pt)] = gpa & KL_PT_ADDR;
	vm->stat.pages_4k++;
	return 0;
}

int kl_stree_fill(struct kl_vcpu *vcpu, struct kl_stree *t, u64 gva,
		  const struct kl_walk *w, u32 access)
{
	return kl_stree_install(vcpu->vm, t, gva, w->gpa, kl_shadow_leaf_flags(vcpu, w, access),
				w->page_size, access & KL_PF_W);
}

/*
 * One translation, as INVLPG drops it. For a guest large page the shadow
 * holds small entries for it, in one shadow PT (2 MiB), two (a 2-level
 * guest's 4 MiB page) or 512 (1 GiB); INVLPG anywhere in the large page
 * must drop them all — even where no small entry of its own exists yet.
 * So unless gva has a small entry from a small page, every entry filled
 * from a large page goes in the PTs covering gva's region, as large as the
 * largest guest page the tree has shadowed.
 */
void kl_stree_zap_gva(struct kl_vm *vm, struct kl_stree *t, u64 gva)
{
	u64 *spte = kl_stree_pte(vm, t, gva, false, NULL), size = t->max_large, start;

	if (spte && (*spte & KL_PT_P) && !(*spte & KL_SPTE_FROM_LARGE)) {
		kl_drop_leaf(vm, spte);
		return;
	}
	if (!size)
		return;		/* no large page shadowed: nothing else can map gva */
	start = gva & ~(size - 1);
	for (u64 a = start; a < start + size; a += SZ_2M) {
		struct page *pt;
		u64 *table;

		if (!kl_stree_pte(vm, t, a, false, &pt))
			continue;
		table = page_address(pt);
		for (int i = 0; i < 512; i++)
			if ((table[i] & KL_PT_P) && (table[i] & KL_SPTE_FROM_LARGE))
				kl_drop_leaf(vm, &table[i]);
	}
}

static void for_each_leaf(struct kl_vcpu *vcpu, u64 *table, int level, u64 va,
			  kl_leaf_fn fn, void *ctx)
{
	for (int i = 0; i < 512; i++) {
		u64 e = table[i], sub = va | ((u64)i << (12 + 9 * (level - 1)));

		if (!(e & KL_PT_P))
			continue;
		if (level == 4 && i >= 256)
			sub |= 0xffff000000000000ULL;	/* canonical upper half */
		if (level == 1) {
			u64 *tags = tags_of(virt_to_page(table));

			fn(vcpu, sub, &table[i], tags ? tags[i] : 0, ctx);
		} else {
			for_each_leaf(vcpu, table_of(e), level - 1, sub, fn, ctx);
		}
	}
}

void kl_stree_for_each_leaf(struct kl_vcpu *vcpu, struct kl_stree *t, kl_leaf_fn fn, void *ctx)
{
	for_each_leaf(vcpu, page_address(t->root), 4, 0, fn, ctx);
}

/* A tree without tags knows no gpa: every writable leaf goes read-only. */
static unsigned long wrprot_leaves(u64 *table, int level, const struct kl_memslot *slot,
				   const unsigned long *bits)
{
	unsigned long n = 0;

	for (int i = 0; i < 512; i++) {
		u64 e = table[i], *tags, gfn;

		if (!(e & KL_PT_P))
			continue;
		if (level > 1) {
			n += wrprot_leaves(table_of(e), level - 1, slot, bits);
			continue;
		}
		if (!(e & KL_PT_W))
			continue;
		tags = tags_of(virt_to_page(table));
		if (tags) {
			gfn = tags[i] >> PAGE_SHIFT;
			if (gfn < slot->base_gfn || gfn >= slot->base_gfn + slot->npages ||
			    !test_bit(gfn - slot->base_gfn, bits))
				continue;
		}
		/* Atomic: the CPU may be setting A or D in this entry right now. */
		clear_bit(ilog2(KL_PT_W), (unsigned long *)&table[i]);
		n++;
	}
	return n;
}

unsigned long kl_stree_write_protect(struct kl_stree *t, bool identity,
				     const struct kl_memslot *slot, const unsigned long *bits)
{
	unsigned long n = 0, i;

	if (!identity)
		return wrprot_leaves(page_address(t->root), 4, slot, bits);
	/* gva == gpa: look each page up rather than visit every leaf. */
	for_each_set_bit(i, bits, slot->npages) {
		u64 *spte = kl_stree_pte(NULL, t, (slot->base_gfn + i) << PAGE_SHIFT, false, NULL);

		if (spte && (*spte & KL_PT_W)) {
			clear_bit(ilog2(KL_PT_W), (unsigned long *)spte);
			n++;
		}
	}
	return n;
}
