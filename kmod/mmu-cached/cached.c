// SPDX-License-Identifier: GPL-2.0
/*
 * Write-protected shadow-table caching (mmu=cached): KVM's design of
 * January 2007.
 *
 * A shadow page shadows one guest page table. It is named by the guest
 * table's frame (gfn) and a role — its level, whether it maps a guest large
 * page directly, and the rights accumulated above it — and kept in a hash
 * table, so every address space that uses the same guest table (the
 * kernel's half of every process, say) shares one shadow page, and a CR3
 * load finds the new root's shadow already built.
 *
 * Keeping cached shadows correct needs to know every write to a guest page
 * table. So each guest table that is shadowed is write-protected: every
 * shadow leaf that maps its frame is made read-only, found through the
 * reverse map (gfn -> the leaf sptes that map it). A guest write then traps
 * as a #PF; we decode the instruction, perform the write, and zap the
 * shadow entry it changed (mmu_pte_write). A table written three times
 * without being used as a table in between is probably no longer one (the
 * guest freed it and is filling it with data): it is unshadowed
 * (mmu_flooded), which lifts the write protection.
 *
 * Because shadows never go stale, INVLPG needs no work and a CR3 load costs
 * a lookup. The shadow memory is capped (cached_max_pages): the least
 * recently used shadow pages are recycled (mmu_recycled).
 *
 * Several vCPUs share every shadow page; each has its own root (the shadow
 * of its CR3). A shadow page zapped while another vCPU may be walking it
 * is unlinked at once but freed only after every vCPU has flushed — a
 * remote flush that kicks the running ones out of guest mode and waits
 * (KVM's invalid list and commit): zap_sp queues, commit_zap frees. Each
 * kl_mmu_ops callback that may zap commits before it returns.
 */
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <asm/io.h>
#include "cached.h"

unsigned int cached_max_pages = 2048;
module_param(cached_max_pages, uint, 0644);
MODULE_PARM_DESC(cached_max_pages, "cached, unsync, pv: shadow pages per VM before LRU recycling (at least 16)");

#define HASH_BITS	CACHED_HASH_BITS
#define FLOOD_WRITES	3
#define NONLEAF_FLAGS	(KL_PT_P | KL_PT_W | KL_PT_U | KL_PT_A)
#define ALL_ACCESS	7	/* W | U | X */

struct rmap {
	struct hlist_node node;
	u64 gfn;
	u64 *spte;
};

static bool is_a_root(struct kl_vm *vm, struct sp *sp)
{
	for (int i = 0; i < vm->nr_vcpus; i++)
		if (root_of(vm->vcpus[i]) == sp)
			return true;
	return false;
}

/* ---- the reverse map: gfn -> leaf sptes ---- */

static int rmap_add(struct cache *c, u64 gfn, u64 *spte)
{
	struct rmap *r = kmalloc(sizeof(*r), GFP_KERNEL_ACCOUNT);

	if (!r)
		return -ENOMEM;
	r->gfn = gfn;
	r->spte = spte;
	hlist_add_head(&r->node, &c->rmaps[hash_64(gfn, HASH_BITS)]);
	c->nr_rmaps++;
	return 0;
}

static void rmap_remove(struct cache *c, u64 gfn, u64 *spte)
{
	struct rmap *r;

	hlist_for_each_entry(r, &c->rmaps[hash_64(gfn, HASH_BITS)], node) {
		if (r->spte == spte) {
			hlist_del(&r->node);
			kfree(r);
			c->nr_rmaps--;
			return;
		}
	}
}

static bool rmap_wrprot(struct rmap *r)
{
	/* Atomic: the CPU may be setting A or D in this entry right now. */
	return (*r->spte & KL_PT_W) && test_and_clear_bit(ilog2(KL_PT_W), (unsigned long *)r->spte);
}

unsigned long cached_wrprot_gfn(struct kl_vm *vm, u64 gfn)
{
	/* LAB 4 BEGIN: make every shadow leaf mapping gfn read-only; how many were writable? */
	struct cache *c = to_cache(vm);
	unsigned long n = 0;
	struct rmap *r;

	hlist_for_each_entry(r, &c->rmaps[hash_64(gfn, HASH_BITS)], node)
		if (r->gfn == gfn)
			n += rmap_wrprot(r);
	return n;
	/* LAB 4 STUB
	return 0;
	   LAB 4 END */
}

/* gfn now holds a shadowed table: its writes must trap. */
static void write_protect(struct kl_vm *vm, u64 gfn)
{
	if (cached_wrprot_gfn(vm, gfn))
		kl_flush_remote_tlbs(vm);
}

/*
 * Dirty logging, through the same reverse map: one lookup per page when
 * few pages are asked for, else one pass over every rmap entry.
 */
unsigned long cached_write_protect(struct kl_vm *vm, const struct kl_memslot *slot,
				   const unsigned long *bits)
{
	struct cache *c = to_cache(vm);
	unsigned long n = 0, i, asked = bitmap_weight(bits, slot->npages);
	struct rmap *r;

	if (asked < c->nr_rmaps / 4) {
		for_each_set_bit(i, bits, slot->npages)
			n += cached_wrprot_gfn(vm, slot->base_gfn + i);
		return n;
	}
	for (i = 0; i < ARRAY_SIZE(c->rmaps); i++) {
		hlist_for_each_entry(r, &c->rmaps[i], node) {
			if (r->gfn >= slot->base_gfn && r->gfn < slot->base_gfn + slot->npages &&
			    test_bit(r->gfn - slot->base_gfn, bits))
				n += rmap_wrprot(r);
		}
	}
	return n;
}

/* ---- shadow pages ---- */

static bool gfn_is_table(struct cache *c, u64 gfn)
{
	struct hlist_node *next;
	struct sp *sp;

	for_each_table_sp(c, sp, next, gfn)
		return true;
	return false;
}

/* Guest writes to gfn must trap: it holds a table we shadow and keep in sync. */
static bool gfn_write_protected(struct cache *c, u64 gfn)
{
	struct hlist_node *next;
	struct sp *sp;

	for_each_table_sp(c, sp, next, gfn)
		if (!sp->unsync)
			return true;
	return false;
}

static int add_parent(struct sp *child, struct sp *parent, int index)
{
	if (child->nr_parents == child->max_parents) {
		int n = child->max_parents ? 2 * child->max_parents : 4;
		struct parent *p = krealloc(child->parents, n * sizeof(*p), GFP_KERNEL_ACCOUNT);

		if (!p)
			return -ENOMEM;
		child->parents = p;
		child->max_parents = n;
	}
	child->parents[child->nr_parents++] = (struct parent) { parent, index };
	return 0;
}

static void remove_parent(struct sp *child, struct sp *parent, int index)
{
	for (int i = 0; i < child->nr_parents; i++) {
		if (child->parents[i].sp == parent && child->parents[i].index == index) {
			child->parents[i] = child->parents[--child->nr_parents];
			return;
		}
	}
}

/* Clear one entry of a shadow page, whatever it points to. */
void cached_zap_entry(struct kl_vm *vm, struct sp *sp, int i)
{
	u64 *e = &sp->table[i];

	if (!(*e & KL_PT_P))
		return;
	if (sp->role.level == 1) {
		rmap_remove(to_cache(vm), sp->leaf_gfn[i], e);
		kl_drop_leaf(vm, e);
	} else {
		remove_parent(child_of(*e), sp, i);
		*e = 0;
	}
}

void cached_zap_sp(struct kl_vm *vm, struct sp *sp)
{
	struct cache *c = to_cache(vm);

	while (sp->nr_parents) {
		struct parent p = sp->parents[sp->nr_parents - 1];

		cached_zap_entry(vm, p.sp, p.index);
	}
	for (int i = 0; i < 512; i++)
		cached_zap_entry(vm, sp, i);
	for (int i = 0; i < vm->nr_vcpus; i++)
		if (root_of(vm->vcpus[i]) == sp)
			vm->vcpus[i]->mmu_priv = NULL;	/* reloaded at its next entry */
	if (sp->unsync) {
		sp->unsync = false;
		list_del(&sp->unsync_link);
		vm->stat.mmu_unsync--;
	}
	hlist_del(&sp->hash);
	list_move_tail(&sp->lru, &c->zapped);	/* a CPU may still be walking it */
	c->nr_sps--;
	vm->stat.mmu_shadow_zapped++;
}

/*
 * Free what zap_sp unlinked, once no CPU can be walking it: after a remote
 * flush, which waits for every vCPU in guest mode to leave it.
 */
void cached_commit_zap(struct kl_vm *vm)
{
	struct cache *c = to_cache(vm);
	struct sp *sp, *next;

	if (list_empty(&c->zapped))
		return;
	kl_flush_remote_tlbs(vm);
	list_for_each_entry_safe(sp, next, &c->zapped, lru) {
		list_del(&sp->lru);
		set_page_private(virt_to_page(sp->table), 0);
		kl_table_page_free(vm, virt_to_page(sp->table));
		kfree(sp->leaf_gfn);
		kfree(sp->parents);
		kfree(sp);
	}
}

static void zap_all(struct kl_vm *vm)
{
	struct cache *c = to_cache(vm);

	while (!list_empty(&c->lru))
		cached_zap_sp(vm, list_first_entry(&c->lru, struct sp, lru));
}

/*
 * Stay under the cap: recycle the least recently used, never the root. The
 * shadow pages of the path being filled were just looked up, so they are
 * the most recently used and go last; the floor of 16 keeps them safe.
 */
static void make_room(struct kl_vm *vm)
{
	struct cache *c = to_cache(vm);
	unsigned int cap = max(kl_mmu_pages_cap(vm), 16U);
	struct sp *sp, *next;

	list_for_each_entry_safe(sp, next, &c->lru, lru) {
		if (c->nr_sps + 2 < cap)
			break;
		if (is_a_root(vm, sp))
			continue;
		vm->stat.mmu_recycled++;
		cached_zap_sp(vm, sp);		/* frees sp only: its children stay cached */
	}
	/* Freed before the caller allocates: the cap holds at every moment. */
	cached_commit_zap(vm);
}

static struct sp *get_sp(struct kl_vcpu *vcpu, u64 gfn, union role role, bool *hit)
{
	struct kl_vm *vm = vcpu->vm;
	struct cache *c = to_cache(vm);
	struct page *page;
	struct sp *sp;

	hlist_for_each_entry(sp, &c->sps[hash_64(gfn, HASH_BITS)], hash) {
		if (sp->gfn == gfn && sp->role.word == role.word) {
			list_move_tail(&sp->lru, &c->lru);
			*hit = true;
			return sp;
		}
	}
	*hit = false;
	make_room(vm);
	sp = kzalloc(sizeof(*sp), GFP_KERNEL_ACCOUNT);
	page = kl_table_page_alloc(vm);
	if (sp && role.level == 1)
		sp->leaf_gfn = kcalloc(512, sizeof(u64), GFP_KERNEL_ACCOUNT);
	if (!sp || !page || (role.level == 1 && !sp->leaf_gfn)) {
		if (page)
			kl_table_page_free(vm, page);
		if (sp)
			kfree(sp->leaf_gfn);
		kfree(sp);
		return NULL;
	}
	sp->gfn = gfn;
	sp->role = role;
	sp->table = page_address(page);
	set_page_private(page, (unsigned long)sp);
	hlist_add_head(&sp->hash, &c->sps[hash_64(gfn, HASH_BITS)]);
	list_add_tail(&sp->lru, &c->lru);
	c->nr_sps++;
	vm->stat.mmu_cache_miss++;
	if (!role.direct && !role.passthrough) {
		write_protect(vm, gfn);
		if (c->hooks && c->hooks->sp_created)
			c->hooks->sp_created(vcpu, sp);
	}
	return sp;
}

static int guest_format(struct kl_vcpu *vcpu)
{
	switch (kl_guest_format(vcpu)) {
	case KL_PAGING_PAE: return FMT_PAE;
	case KL_PAGING_2LEVEL: return FMT_2LEVEL;
	default: return FMT_4LEVEL;
	}
}

static union role make_role(struct kl_vcpu *vcpu, int level, bool direct, u32 access)
{
	union role r = { .word = 0 };

	r.level = level;
	r.direct = direct;
	r.access = access;
	r.cr0_wp = !!(vcpu->cr0 & X86_CR0_WP);
	r.efer_nx = !!(vcpu->efer & EFER_NX);
	r.format = guest_format(vcpu);
	return r;
}

static u32 entry_access(u64 e)
{
	return ((e & KL_PT_W) ? 1 : 0) | ((e & KL_PT_U) ? 2 : 0) | ((e & KL_PT_NX) ? 0 : 4);
}

/*
 * What hangs below entry i of passthrough page sp (level 4 or 3): the
 * root's PDPT level, then the guest's top table for that GiB — the PD a
 * PAE guest's PDPTE names, or a quarter of a 2-level guest's only PD.
 */
static void passthrough_child(struct kl_vcpu *vcpu, struct sp *sp, int i, u64 *gfn,
			      union role *role)
{
	*role = make_role(vcpu, sp->role.level - 1, false, ALL_ACCESS);
	if (sp->role.level == 4) {
		*gfn = sp->gfn;
		role->passthrough = 1;
	} else if (sp->role.format == FMT_PAE) {
		*gfn = (vcpu->pdptrs[i & 3] & KL_PT_ADDR) >> PAGE_SHIFT;
	} else {
		*gfn = (vcpu->cr3 & 0xfffff000ULL) >> PAGE_SHIFT;
		role->quadrant = i & 3;
	}
}

/*
 * Entry i of sp points at child (replacing whatever else it pointed at). A
 * child that gains a parent is shown to the hooks (mmu=unsync brings an
 * out-of-sync child back in sync before a new path can use it).
 */
static int link_child(struct kl_vcpu *vcpu, struct sp *sp, int i, struct sp *child)
{
	struct kl_vm *vm = vcpu->vm;
	struct cache *c = to_cache(vm);
	u64 *e = &sp->table[i];
	int r;

	if ((*e & KL_PT_P) && child_of(*e) != child)
		cached_zap_entry(vm, sp, i);
	if (!(*e & KL_PT_P)) {
		r = add_parent(child, sp, i);
		if (r)
			return r;
		*e = virt_to_phys(child->table) | NONLEAF_FLAGS;
		if (c->hooks && c->hooks->sp_linked)
			c->hooks->sp_linked(vcpu, child);
	}
	return 0;
}

/*
 * The CPU reads a PAE guest's four PDPTEs at the CR3 write; so does the
 * root load: each present one's PD shadow is linked at once, rather than
 * after a fault per GiB the guest touches (two per CR3 switch for a kernel
 * below 1 GiB and a process above 2). Failure is harmless: fill() links
 * whatever is missing when the guest faults.
 */
static void link_pae_pdptes(struct kl_vcpu *vcpu)
{
	struct sp *pdpt, *pd;
	union role role;
	bool hit;
	u64 gfn;

	passthrough_child(vcpu, root_of(vcpu), 0, &gfn, &role);
	pdpt = get_sp(vcpu, gfn, role, &hit);
	if (!pdpt || !root_of(vcpu) || link_child(vcpu, root_of(vcpu), 0, pdpt))
		return;
	for (int i = 0; i < 4; i++) {
		if (!(vcpu->pdptrs[i] & KL_PT_P))
			continue;
		passthrough_child(vcpu, pdpt, i, &gfn, &role);
		pd = get_sp(vcpu, gfn, role, &hit);
		if (!pd || !root_of(vcpu) || link_child(vcpu, pdpt, i, pd))
			return;
	}
}

/*
 * The root: the shadow of the guest's PML4; for a 2-level or PAE guest a
 * passthrough page keyed by CR3 (a PAE guest's PDPT is 32-byte aligned, so
 * its key is CR3 >> 5), whose PDPT level fill() links to the guest's top
 * tables. A PAE guest's PDPTEs may have changed since this root was last
 * loaded (they are loaded at each CR3 write): its PDPT level is unlinked
 * and relinked from the new ones.
 */
static int load_root(struct kl_vcpu *vcpu)
{
	union role role = make_role(vcpu, 4, false, ALL_ACCESS);
	u64 key = (vcpu->cr3 & KL_PT_ADDR) >> PAGE_SHIFT;
	struct sp *root;
	bool hit;

	if (role.format == FMT_PAE)
		key = (vcpu->cr3 & 0xffffffe0ULL) >> 5;
	else if (role.format == FMT_2LEVEL)
		key = (vcpu->cr3 & 0xfffff000ULL) >> PAGE_SHIFT;
	role.passthrough = role.format != FMT_4LEVEL;
	root = get_sp(vcpu, key, role, &hit);
	if (!root)
		return -ENOMEM;
	if (role.format == FMT_PAE && (root->table[0] & KL_PT_P))
		for (int i = 0; i < 4; i++)
			cached_zap_entry(vcpu->vm, child_of(root->table[0]), i);
	if (hit)
		vcpu->vm->stat.mmu_root_hit++;
	else
		vcpu->vm->stat.mmu_root_miss++;
	vcpu->mmu_priv = root;
	if (role.format == FMT_PAE)
		link_pae_pdptes(vcpu);
	kl_flush_tlb(vcpu);
	return 0;
}

/*
 * Pin gfn and point leaf i of sp at it with flags, minus W where writes
 * must fault: a guest page table we keep in sync (writes must trap), a
 * ROM (MMIO), a clean page under dirty logging (logged).
 */
int cached_install_leaf(struct kl_vm *vm, struct sp *sp, int i, u64 gfn, u64 flags, bool write)
{
	struct cache *c = to_cache(vm);
	struct page *page;
	int r;

	if (gfn_write_protected(c, gfn))
		flags &= ~KL_PT_W;
	cached_zap_entry(vm, sp, i);
	if ((flags & KL_PT_W) && !kl_leaf_writable(vm, gfn, write))
		flags &= ~KL_PT_W;
	r = kl_pin_gfn(vm, gfn, flags & KL_PT_W, &page);
	if (r)
		return r;
	r = rmap_add(c, gfn, &sp->table[i]);
	if (r) {
		kl_unpin_page(vm, page, false);
		return r;
	}
	sp->table[i] = page_to_phys(page) | flags;
	sp->leaf_gfn[i] = gfn;
	vm->stat.pages_4k++;
	return 0;
}

/*
 * Link the shadow path for gva down to level 1, reusing cached shadow
 * pages, and install the leaf. Each level's shadow page is the one for the
 * guest table the walk went through (or, under a guest large page, the
 * direct page for its frames).
 */
static int fill(struct kl_vcpu *vcpu, u64 gva, const struct kl_walk *w, u32 access)
{
	struct kl_vm *vm = vcpu->vm;
	struct sp *sp = root_of(vcpu);
	u32 acc = ALL_ACCESS;
	/* CR0.WP=0 lets the kernel write a read-only page (kl_shadow_leaf_flags). */
	bool wp_write = (access & KL_PF_W) && !(access & KL_PF_U) && !w->writable &&
			!(vcpu->cr0 & X86_CR0_WP);
	u64 flags;
	int level, i, r;

	for (level = 4; level > 1; level--) {
		struct sp *child;
		bool hit, direct;
		u64 gfn;

		sp->write_count = 0;	/* used as a table: not being overwritten */
		i = (gva >> (12 + 9 * (level - 1))) & 511;
		if (sp->role.passthrough) {
			union role role;

			passthrough_child(vcpu, sp, i, &gfn, &role);
			child = get_sp(vcpu, gfn, role, &hit);
			goto link;
		}
		if (sp->role.direct) {
			/* Inside a guest large page: frames follow from our own gfn. */
			direct = true;
			gfn = sp->gfn + ((u64)i << (9 * (level - 2)));
		} else {
			acc &= entry_access(w->entry[level]);
			direct = w->level == level;	/* a guest large page starts here */
			if (direct && sp->role.format == FMT_2LEVEL)	/* this 2 MiB of its 4 MiB */
				gfn = (w->gpa & ~(SZ_2M - 1)) >> PAGE_SHIFT;
			else if (direct)
				gfn = (w->entry[level] & KL_PT_ADDR &
				       ~((1ULL << (12 + 9 * (level - 1))) - 1)) >> PAGE_SHIFT;
			else
				gfn = w->table[level - 1] >> PAGE_SHIFT;
			/*
			 * Direct pages are shared by every guest large entry that
			 * maps the same frames with the same rights, so their
			 * role holds the rights their entries get: no W while
			 * the guest entry is clean (the first write through it
			 * faults and sets D here rather than finding another
			 * entry's writable spte), W but not U for a kernel write
			 * under CR0.WP=0.
			 */
			if (direct && wp_write)
				acc = (acc | 1U) & ~2U;
			else if (direct && !(w->pte & KL_PT_D))
				acc &= ~1U;
		}
		{
			union role role = make_role(vcpu, level - 1, direct, acc);

			if (role.format == FMT_2LEVEL && !direct && level == 2)
				role.quadrant = (gva >> 21) & 1;	/* which half of the guest PT */
			child = get_sp(vcpu, gfn, role, &hit);
		}
link:
		if (!child)
			return -ENOMEM;
		if (!root_of(vcpu))
			return -EAGAIN;		/* the cap recycled our own path: start over */
		r = link_child(vcpu, sp, i, child);
		if (r)
			return r;
		sp = child;
	}
	sp->write_count = 0;
	flags = kl_shadow_leaf_flags(vcpu, w, access);
	if (sp->role.direct && !(sp->role.access & 1))
		flags &= ~KL_PT_W;
	i = (gva >> 12) & 511;
	r = cached_install_leaf(vm, sp, i, w->gpa >> PAGE_SHIFT, flags, access & KL_PF_W);
	if (!r && to_cache(vm)->hooks && to_cache(vm)->hooks->leaf_filled)
		to_cache(vm)->hooks->leaf_filled(vcpu, sp, i, flags);
	return r;
}

/* Give up shadowing gfn: its writes are then plain stores again. */
void cached_unshadow(struct kl_vm *vm, u64 gfn)
{
	struct cache *c = to_cache(vm);
	struct hlist_node *next;
	struct sp *sp;

	for_each_table_sp(c, sp, next, gfn)
		cached_zap_sp(vm, sp);
}

/*
 * Shadow entries that guest entry g of a table shadowed by sp maps to: an
 * 8-byte table's entry g itself; in a 2-level guest's quadrant pages, a
 * 4-byte PTE is one entry of the half that covers it, a 4-byte PDE (4 MiB)
 * two entries of the quarter that covers it. Returns how many (0-2).
 */
int cached_shadow_entries(const struct sp *sp, unsigned int g, unsigned int *first)
{
	unsigned int per = sp->role.level == 1 ? 512 : 256;

	if (sp->role.format != FMT_2LEVEL) {
		*first = g;
		return 1;
	}
	if (g / per != sp->role.quadrant)
		return 0;
	*first = (g % per) * (sp->role.level == 1 ? 1 : 2);
	return sp->role.level == 1 ? 1 : 2;
}

u64 cached_guest_entry(const struct sp *sp, int i, int *size)
{
	if (sp->role.format != FMT_2LEVEL) {
		*size = 8;
		return (sp->gfn << PAGE_SHIFT) + i * 8;
	}
	*size = 4;
	return (sp->gfn << PAGE_SHIFT) + (sp->role.quadrant * 512 + i) * 4;
}

bool cached_sync_leaf(struct kl_vcpu *vcpu, struct sp *sp, int i, u64 gpte)
{
	struct kl_vm *vm = vcpu->vm;
	u64 old = sp->table[i], flags, gfn, mask = KL_PT_ADDR | KL_PT_P | KL_PT_W | KL_PT_U | KL_PT_NX;

	if (!kl_prefetch_leaf(vcpu, sp->role.access, gpte, &gfn, &flags) ||
	    !kl_gfn_is_ram(vm, gfn, false)) {
		cached_zap_entry(vm, sp, i);
		return old & KL_PT_P;
	}
	if ((old & KL_PT_P) && sp->leaf_gfn[i] == gfn) {
		/* Same frame: only rights may change, and only downwards matter now. */
		if (gfn_write_protected(to_cache(vm), gfn) || !kl_leaf_writable(vm, gfn, false))
			flags &= ~KL_PT_W;
		if ((old & mask & ~KL_PT_ADDR) == (flags & mask & ~KL_PT_ADDR))
			return false;
	}
	if (cached_install_leaf(vm, sp, i, gfn, flags, false))
		cached_zap_entry(vm, sp, i);	/* out of memory: refault later */
	return true;
}

/* Each shadow of the table at gfn sees the guest's bytes [first, last] change. */
static void pt_written(struct kl_vm *vm, u64 gfn, unsigned int first, unsigned int last)
{
	struct cache *c = to_cache(vm);
	struct hlist_node *next;
	struct sp *sp;

	hlist_for_each_entry_safe(sp, next, &c->sps[hash_64(gfn, HASH_BITS)], hash) {
		unsigned int size = sp->role.format == FMT_2LEVEL ? 4 : 8, k, n;

		if (sp->gfn != gfn || sp->role.direct || sp->role.passthrough)
			continue;
		/* LAB 4 BEGIN: flooded? else zap the shadow entries the written bytes cover */
		if (++sp->write_count >= FLOOD_WRITES || last / size - first / size >= 8) {
			/* Written often, or cleared in bulk: no longer a table worth shadowing. */
			vm->stat.mmu_flooded++;
			cached_zap_sp(vm, sp);
			continue;
		}
		for (unsigned int g = first / size; g <= last / size; g++)
			for (n = cached_shadow_entries(sp, g, &k); n; n--, k++)
				cached_zap_entry(vm, sp, k);
		/* LAB 4 STUB
		(void)size; (void)k; (void)n;
		   LAB 4 END */
	}
	kl_flush_remote_tlbs(vm);
}

/*
 * A write to a protected table that we cannot perform for the guest: stop
 * protecting the page and let the CPU do it. Not when the page is one of the
 * tables translating the write's own address (the root among them): the
 * retry would shadow, and so protect, it again at once — forever — so that
 * is an error (`stuck`: an instruction we cannot emulate, or an event
 * frame, -ELOOP).
 */
static enum kl_pf_result unprotect(struct kl_vcpu *vcpu, const struct kl_walk *w,
				   enum kl_pf_result stuck)
{
	u64 gfn = w->gpa >> PAGE_SHIFT;

	for (int level = w->top_level; level >= w->level; level--)
		if (w->table[level] >> PAGE_SHIFT == gfn)
			return stuck;
	cached_unshadow(vcpu->vm, gfn);
	return KL_PF_RETRY;
}

/*
 * The guest wrote to a page table we shadow. Perform the store (a MOV, an
 * AND/OR/XOR/XCHG on an entry, or a STOS clearing it), then bring each shadow of that table up to date by
 * zapping the entries it covers (the next access refaults and rebuilds them
 * from the new guest entries). The instruction at RIP is emulated only if
 * it is what wrote there: a fault while the CPU pushed an interrupt or
 * exception frame (vectoring) was not caused by it — emulating it would
 * store its operand into the frame's page and skip it.
 */
static enum kl_pf_result emulate_pt_write(struct kl_vcpu *vcpu, struct kl_pf_info *pf,
					  const struct kl_walk *w)
{
	/* LAB 4 BEGIN: perform the guest's store to its page table, then update the shadows */
	struct kl_vm *vm = vcpu->vm;
	u64 gpa = w->gpa;
	unsigned int off = gpa & ~PAGE_MASK, bytes;
	struct kl_insn in;
	int size, r;
	u64 val;

	if (pf->vectoring)
		return unprotect(vcpu, w, kl_pf_error(pf, -ELOOP));
	r = kl_fetch_decode(vcpu, &in);
	if (r == 0 && in.string && in.ea == pf->addr &&
	    kl_emulate_stos(vcpu, &in, gpa, &bytes) == 0) {
		vm->stat.mmu_pte_write++;
		pt_written(vm, gpa >> PAGE_SHIFT, off, off + bytes - 1);
		return KL_PF_RETRY;
	}
	if (r == 0)
		r = kl_insn_rmw(vcpu, &in, gpa, &size, &val);
	if (r || in.ea != pf->addr || off + size > PAGE_SIZE)
		return unprotect(vcpu, w, KL_PF_EMULATE_FAILED);
	if (kl_write_guest(vm, gpa, &val, size))
		return kl_pf_error(pf, -EFAULT);
	vm->stat.mmu_pte_write++;
	pt_written(vm, gpa >> PAGE_SHIFT, off, off + size - 1);
	vcpu->rip += in.len;
	return KL_PF_RETRY;
	/* LAB 4 STUB
	(void)w; (void)pt_written; (void)unprotect;
	return kl_pf_error(pf, -ENOSYS);
	   LAB 4 END */
}

static enum kl_pf_result page_fault(struct kl_vcpu *vcpu, struct kl_pf_info *pf)
{
	u32 access = pf->error & (KL_PF_W | KL_PF_U | KL_PF_ID);
	struct cache *c = to_cache(vcpu->vm);
	enum kl_pf_result result;
	struct kl_walk w;
	int r = 0;

	if (!kl_shadow_walk(vcpu, pf, &w, &result))
		return result;
	if ((access & KL_PF_W) && gfn_write_protected(c, w.gpa >> PAGE_SHIFT) &&
	    !(c->hooks && c->hooks->write_fault && c->hooks->write_fault(vcpu, w.gpa >> PAGE_SHIFT)))
		return emulate_pt_write(vcpu, pf, &w);
	for (int tries = 0; tries < 3; tries++) {
		if (!root_of(vcpu) && load_root(vcpu))
			return kl_pf_error(pf, -ENOMEM);
		r = fill(vcpu, pf->addr, &w, access);
		if (r != -EAGAIN)
			break;
	}
	return r ? kl_pf_error(pf, r) : KL_PF_FIXED;
}

enum kl_pf_result cached_page_fault(struct kl_vcpu *vcpu, struct kl_pf_info *pf)
{
	enum kl_pf_result r = page_fault(vcpu, pf);

	cached_commit_zap(vcpu->vm);
	return r;
}

/* The emulator wrote guest memory: shadows of a table there drop what it covers. */
void cached_guest_written(struct kl_vcpu *vcpu, u64 gpa, unsigned int len)
{
	struct kl_vm *vm = vcpu->vm;

	for (u64 a = gpa; a < gpa + len; a = (a & PAGE_MASK) + PAGE_SIZE) {
		unsigned int off = a & ~PAGE_MASK;
		unsigned int end = min_t(u64, PAGE_SIZE, off + (gpa + len - a));

		if (!gfn_is_table(to_cache(vm), a >> PAGE_SHIFT))
			continue;
		vm->stat.mmu_pte_write++;
		pt_written(vm, a >> PAGE_SHIFT, off, end - 1);
	}
	cached_commit_zap(vm);
}

void cached_load_cr3(struct kl_vcpu *vcpu)
{
	load_root(vcpu);
	cached_commit_zap(vcpu->vm);
}

/* Shadows never go stale: INVLPG and a PGE toggle only flush the hardware TLB. */
void cached_invlpg(struct kl_vcpu *vcpu, u64 gva)
{
	kl_flush_tlb(vcpu);
}

void cached_flush_tlb(struct kl_vcpu *vcpu)
{
	kl_flush_tlb(vcpu);
}

/* WP and NXE are part of every role: start over. */
void cached_mode_changed(struct kl_vcpu *vcpu)
{
	zap_all(vcpu->vm);
	cached_commit_zap(vcpu->vm);
}

void cached_memslots_changed(struct kl_vm *vm)
{
	zap_all(vm);
	cached_commit_zap(vm);
}

u64 cached_root_hpa(struct kl_vcpu *vcpu)
{
	int r = root_of(vcpu) ? 0 : load_root(vcpu);

	cached_commit_zap(vcpu->vm);	/* a new root may have recycled old pages */
	return r ? 0 : virt_to_phys(root_of(vcpu)->table);
}

int cached_vm_init_hooks(struct kl_vm *vm, const struct cached_hooks *hooks)
{
	struct cache *c = kzalloc(sizeof(*c), GFP_KERNEL_ACCOUNT);

	if (!c)
		return -ENOMEM;
	INIT_LIST_HEAD(&c->lru);
	INIT_LIST_HEAD(&c->zapped);
	INIT_LIST_HEAD(&c->unsync);
	c->hooks = hooks;
	vm->mmu_priv = c;
	return 0;
}

static int cached_vm_init(struct kl_vm *vm)
{
	return cached_vm_init_hooks(vm, NULL);
}

void cached_vm_destroy(struct kl_vm *vm)
{
	zap_all(vm);
	cached_commit_zap(vm);
	kfree(vm->mmu_priv);
	vm->mmu_priv = NULL;
}

int cached_vcpu_init(struct kl_vcpu *vcpu)
{
	vcpu->mmu_priv = NULL;	/* its root, loaded at the first entry */
	return 0;
}

/* The shadow pages are the VM's: they stay cached (vm_destroy frees them). */
void cached_vcpu_destroy(struct kl_vcpu *vcpu)
{
	vcpu->mmu_priv = NULL;
}

const struct kl_mmu_ops kl_cached_ops = {
	.name = "cached",
	.hw_paging = false,
	.formats = BIT(KL_PAGING_2LEVEL) | BIT(KL_PAGING_PAE) | BIT(KL_PAGING_4LEVEL),
	.max_pages = &cached_max_pages,
	.vm_init = cached_vm_init,
	.vm_destroy = cached_vm_destroy,
	.vcpu_init = cached_vcpu_init,
	.vcpu_destroy = cached_vcpu_destroy,
	.root_hpa = cached_root_hpa,
	.page_fault = cached_page_fault,
	.load_cr3 = cached_load_cr3,
	.invlpg = cached_invlpg,
	.flush_tlb = cached_flush_tlb,
	.mode_changed = cached_mode_changed,
	.memslots_changed = cached_memslots_changed,
	.write_protect = cached_write_protect,
	.guest_written = cached_guest_written,
};
