/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The shadow-page cache of mmu=cached, as the strategies built on it see
 * it: mmu=unsync (kmod/mmu-unsync) lets last-level tables go out of sync,
 * mmu=pv (kmod/mmu-pv) takes page-table writes as hypercalls. Both are
 * cached.c plus a few hooks; this header is what they may touch. Every
 * function here runs under vm->mmu_lock.
 */
#ifndef KL_CACHED_H
#define KL_CACHED_H

#include <linux/hash.h>
#include <linux/list.h>
#include <linux/mm.h>
#include "../mmu/mmu.h"

#define CACHED_HASH_BITS	10

/* The guest's paging format, as role.format: 4-level is 0. */
enum { FMT_4LEVEL, FMT_PAE, FMT_2LEVEL };

union role {
	u32 word;
	struct {
		u32 level:3;
		u32 direct:1;	/* maps frames of a guest large page, not a guest table */
		u32 access:3;	/* W U X allowed by the levels above */
		u32 cr0_wp:1;
		u32 efer_nx:1;
		u32 format:2;	/* the guest paging format the shadowed table has */
		/*
		 * Which part of a 2-level guest table this page shadows: a
		 * 1024-entry PD needs four 512-entry shadow PDs (a quarter
		 * each, 1 GiB), a 1024-entry PT two shadow PTs (a half each).
		 */
		u32 quadrant:2;
		/*
		 * A level above the guest's top table (2-level or PAE guests:
		 * the root and its PDPT): no guest table of its own, so never
		 * write-protected; gfn is only a key (the guest's CR3).
		 */
		u32 passthrough:1;
	};
};

struct parent {
	struct sp *sp;
	int index;
};

struct sp {
	struct hlist_node hash;
	struct list_head lru;		/* most recently used last */
	u64 gfn;
	union role role;
	u64 *table;
	u64 *leaf_gfn;			/* level 1: the gfn each leaf maps (for the rmap) */
	struct parent *parents;		/* entries that point here */
	int nr_parents, max_parents;
	int write_count;
	/*
	 * mmu=unsync only: the guest may write this last-level table without
	 * a trap, so its entries may be stale until the next resync. On the
	 * cache's unsync list while set; zap_sp takes it off.
	 */
	bool unsync;
	struct list_head unsync_link;
};

struct cached_hooks;

struct cache {
	struct hlist_head sps[1 << CACHED_HASH_BITS];
	struct hlist_head rmaps[1 << CACHED_HASH_BITS];
	struct list_head lru;
	struct list_head zapped;	/* unlinked, freed at the next commit_zap */
	struct list_head unsync;	/* shadow pages with sp->unsync set */
	unsigned int nr_sps;
	unsigned long nr_rmaps;
	const struct cached_hooks *hooks;	/* NULL: plain mmu=cached */
};

/*
 * Where a strategy built on the cache changes cached's policy. Each is
 * optional.
 */
struct cached_hooks {
	/*
	 * A guest write faulted on the write-protected table at gfn. Return
	 * true when the strategy stopped protecting it (the fault is then
	 * fixed with a writable mapping); false to have the write emulated.
	 */
	bool (*write_fault)(struct kl_vcpu *vcpu, u64 gfn);
	/* A walk linked an existing shadow page under one more parent entry. */
	void (*sp_linked)(struct kl_vcpu *vcpu, struct sp *sp);
	/* A new shadow page of a guest table was made (its gfn is now write-protected). */
	void (*sp_created)(struct kl_vcpu *vcpu, struct sp *sp);
	/*
	 * A hidden fault filled leaf i of last-level page sp with flags: the
	 * strategy may fill its neighbours too.
	 */
	void (*leaf_filled)(struct kl_vcpu *vcpu, struct sp *sp, int i, u64 flags);
};

static inline struct cache *to_cache(struct kl_vm *vm)
{
	return vm->mmu_priv;
}

/* A vCPU's root: the shadow page its CR3 runs on (NULL: load at the next entry). */
static inline struct sp *root_of(struct kl_vcpu *vcpu)
{
	return vcpu->mmu_priv;
}

static inline struct sp *child_of(u64 spte)
{
	return (struct sp *)page_private(pfn_to_page((spte & KL_PT_ADDR) >> PAGE_SHIFT));
}

/* Shadow pages of guest tables (not direct, not passthrough) keyed by gfn. */
#define for_each_table_sp(c, sp, next, _gfn)						\
	hlist_for_each_entry_safe(sp, next, &(c)->sps[hash_64(_gfn, CACHED_HASH_BITS)], hash) \
		if ((sp)->gfn != (_gfn) || (sp)->role.direct || (sp)->role.passthrough) {} else

int cached_vm_init_hooks(struct kl_vm *vm, const struct cached_hooks *hooks);
/* Make every leaf that maps gfn read-only; how many were writable (the caller flushes). */
unsigned long cached_wrprot_gfn(struct kl_vm *vm, u64 gfn);
void cached_zap_entry(struct kl_vm *vm, struct sp *sp, int i);
void cached_zap_sp(struct kl_vm *vm, struct sp *sp);
void cached_commit_zap(struct kl_vm *vm);
/* Stop shadowing the guest table at gfn (a vCPU whose root it was reloads one). */
void cached_unshadow(struct kl_vm *vm, u64 gfn);
/*
 * Shadow entries that guest entry g of the table sp shadows maps to (0-2,
 * the first in *first): 2-level tables are split over quadrant pages.
 */
int cached_shadow_entries(const struct sp *sp, unsigned int g, unsigned int *first);
/* The guest entry (its gpa and size) that shadow entry i of last-level sp shadows. */
u64 cached_guest_entry(const struct sp *sp, int i, int *size);
/*
 * Bring leaf i of last-level table sp in line with gpte, the guest entry it
 * shadows, as a prefetch: updated in place when the guest entry can be
 * mapped without a fault (present, accessed, no reserved bits, RAM),
 * dropped otherwise. Returns whether the shadow entry changed.
 */
bool cached_sync_leaf(struct kl_vcpu *vcpu, struct sp *sp, int i, u64 gpte);
/* Point leaf i of sp at gfn with flags (less W where writes must fault): 0 or -errno. */
int cached_install_leaf(struct kl_vm *vm, struct sp *sp, int i, u64 gfn, u64 flags, bool write);

/* The cached strategy's callbacks, for strategies that keep some of them. */
void cached_vm_destroy(struct kl_vm *vm);
int cached_vcpu_init(struct kl_vcpu *vcpu);
void cached_vcpu_destroy(struct kl_vcpu *vcpu);
u64 cached_root_hpa(struct kl_vcpu *vcpu);
enum kl_pf_result cached_page_fault(struct kl_vcpu *vcpu, struct kl_pf_info *pf);
void cached_guest_written(struct kl_vcpu *vcpu, u64 gpa, unsigned int len);
void cached_load_cr3(struct kl_vcpu *vcpu);
void cached_invlpg(struct kl_vcpu *vcpu, u64 gva);
void cached_flush_tlb(struct kl_vcpu *vcpu);
void cached_mode_changed(struct kl_vcpu *vcpu);
void cached_memslots_changed(struct kl_vm *vm);
unsigned long cached_write_protect(struct kl_vm *vm, const struct kl_memslot *slot,
				   const unsigned long *bits);
extern unsigned int cached_max_pages;

#endif
