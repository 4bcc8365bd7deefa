// SPDX-License-Identifier: GPL-2.0
/*
 * Out-of-sync shadow pages (mmu=unsync): KVM's design of 2008, on top of
 * the write-protected shadow cache of mmu=cached (kmod/mmu-cached).
 *
 * Under mmu=cached every store to a shadowed guest page table traps and is
 * emulated. Most such stores go to last-level tables (PTEs: fork, COW,
 * munmap), and the x86 rules do not ask for them to take effect at once: a
 * PTE that changed is only guaranteed to be seen after the guest flushes
 * (INVLPG, a CR3 load, a CR4.PGE toggle). So when the guest writes to a
 * last-level table, the table is *unsynced* instead: its write protection
 * is lifted and it goes on the unsync list, and the guest's further stores
 * to it are plain stores. The shadow catches up when the guest flushes:
 *
 *   INVLPG gva      the one guest entry behind gva is re-read, its shadow
 *                   leaf updated or dropped (1 entry checked);
 *   CR3 load, flush every unsync page reachable from the (new) root is
 *                   write-protected again and all its present leaves are
 *                   re-read (a page's worth of entries each).
 *
 * Upper-level tables stay write-protected (their writes are emulated, as
 * in mmu=cached): a guest table is unsynced only if all its shadow pages
 * are last-level ones, and a table that becomes an upper-level one is
 * brought back in sync first. A page that is linked into a new path (a
 * walk reaching it from another parent) is synced before use, since the
 * guest's last flush did not cover that path.
 *
 * Several vCPUs: the shadow pages are shared. Syncing write-protects first
 * and makes every vCPU flush before an entry is read, so no vCPU can still
 * be writing the table through an old writable translation while we read
 * it; an updated shadow leaf is followed by a remote flush, since another
 * vCPU may hold the old translation.
 */
#include <linux/module.h>
#include "../mmu-cached/cached.h"

static void mark_unsync(struct kl_vm *vm, struct sp *sp)
{
	sp->unsync = true;
	list_add_tail(&sp->unsync_link, &to_cache(vm)->unsync);
	vm->stat.mmu_unsync++;
	vm->stat.mmu_unsync_marks++;
}

/* A write fault on the protected table at gfn: unsync it if it is only ever a last-level table. */
static bool unsync_write_fault(struct kl_vcpu *vcpu, u64 gfn)
{
	struct cache *c = to_cache(vcpu->vm);
	struct hlist_node *next;
	struct sp *sp;

	for_each_table_sp(c, sp, next, gfn)
		if (sp->role.level != 1)
			return false;	/* also an upper-level table: emulate the write */
	for_each_table_sp(c, sp, next, gfn)
		if (!sp->unsync)
			mark_unsync(vcpu->vm, sp);
	return true;
}

/* The guest entry that leaf i of sp shadows, as guest memory holds it now (0: unreadable). */
static u64 read_gpte(struct kl_vm *vm, const struct sp *sp, int i)
{
	u64 gpte = 0, gpa;
	int size;

	gpa = cached_guest_entry(sp, i, &size);
	if (kl_read_guest(vm, gpa, &gpte, size))
		return 0;
	return gpte;
}

/* Leaf i of sp against its guest entry: whether it changed. */
static bool resync_entry(struct kl_vcpu *vcpu, struct sp *sp, int i)
{
	vcpu->vm->stat.mmu_resync_checked++;
	if (!cached_sync_leaf(vcpu, sp, i, read_gpte(vcpu->vm, sp, i)))
		return false;
	vcpu->vm->stat.mmu_resync_changed++;
	return true;
}

/* Re-read the guest entry behind every present leaf of sp; whether any leaf changed. */
static bool resync_entries(struct kl_vcpu *vcpu, struct sp *sp)
{
	bool changed = false;

	for (int i = 0; i < 512; i++)
		if (sp->table[i] & KL_PT_P)	/* nothing else can go stale: the next access walks */
			changed |= resync_entry(vcpu, sp, i);
	return changed;
}

/*
 * Bring the pages on `pages` (linked by unsync_link) back in sync. All are
 * write-protected, and every vCPU flushed, before any entry is read: read
 * first, and another vCPU could store to the table in between, unseen.
 */
static void sync_pages(struct kl_vcpu *vcpu, struct list_head *pages)
{
	struct kl_vm *vm = vcpu->vm;
	unsigned long wrprot = 0;
	bool changed = false;
	struct sp *sp, *next;

	if (list_empty(pages))
		return;
	list_for_each_entry(sp, pages, unsync_link) {
		sp->unsync = false;
		vm->stat.mmu_unsync--;
	}
	list_for_each_entry(sp, pages, unsync_link)
		wrprot += cached_wrprot_gfn(vm, sp->gfn);
	if (wrprot)
		kl_flush_remote_tlbs(vm);
	list_for_each_entry_safe(sp, next, pages, unsync_link) {
		list_del_init(&sp->unsync_link);
		vm->stat.mmu_resync++;
		changed |= resync_entries(vcpu, sp);
	}
	if (changed)
		kl_flush_remote_tlbs(vm);
}

/* Whether sp hangs below root: up through its parents (a last-level page is 3 levels down). */
static bool reachable(const struct sp *sp, const struct sp *root, int depth)
{
	if (sp == root)
		return true;
	for (int i = 0; depth > 0 && i < sp->nr_parents; i++)
		if (reachable(sp->parents[i].sp, root, depth - 1))
			return true;
	return false;
}

/* The guest flushed its TLB: every unsync page it can reach through its root is synced. */
static void sync_reachable(struct kl_vcpu *vcpu)
{
	struct cache *c = to_cache(vcpu->vm);
	struct sp *sp, *next, *root = root_of(vcpu);
	LIST_HEAD(pages);

	list_for_each_entry_safe(sp, next, &c->unsync, unsync_link)
		if (!root || reachable(sp, root, 4))
			list_move_tail(&sp->unsync_link, &pages);
	sync_pages(vcpu, &pages);
}

/* One page, before a new path uses it. */
static void sync_one(struct kl_vcpu *vcpu, struct sp *sp)
{
	LIST_HEAD(pages);

	list_move_tail(&sp->unsync_link, &pages);
	sync_pages(vcpu, &pages);
}

static void unsync_sp_linked(struct kl_vcpu *vcpu, struct sp *sp)
{
	if (sp->unsync)
		sync_one(vcpu, sp);
}

/* The guest table at sp->gfn is now an upper-level table too: its writes must trap again. */
static void unsync_sp_created(struct kl_vcpu *vcpu, struct sp *sp)
{
	struct cache *c = to_cache(vcpu->vm);
	struct hlist_node *next;
	struct sp *other;
	LIST_HEAD(pages);

	if (sp->role.level == 1)
		return;
	for_each_table_sp(c, other, next, sp->gfn)
		if (other->unsync)
			list_move_tail(&other->unsync_link, &pages);
	sync_pages(vcpu, &pages);
}

/*
 * KVM's pte prefetch: a hidden fault filled leaf i; fill the rest of its
 * aligned group of eight now, where that needs no fault. In a guest large
 * page (a direct shadow page) one guest entry maps them all, with the
 * rights just used: a kernel sweeping its 2 MiB direct map then faults
 * once per 32 KiB. In a guest page table each neighbour comes from its own
 * guest entry, if present and accessed (cached_sync_leaf).
 */
#define PREFETCH_GROUP	8

static bool prefetch_one(struct kl_vcpu *vcpu, struct sp *sp, int j, u64 flags)
{
	if (sp->role.direct)
		return kl_gfn_is_ram(vcpu->vm, sp->gfn + j, false) &&
		       !cached_install_leaf(vcpu->vm, sp, j, sp->gfn + j, flags, false);
	cached_sync_leaf(vcpu, sp, j, read_gpte(vcpu->vm, sp, j));
	return sp->table[j] & KL_PT_P;
}

static void unsync_leaf_filled(struct kl_vcpu *vcpu, struct sp *sp, int i, u64 flags)
{
	int first = i & ~(PREFETCH_GROUP - 1);

	for (int j = first; j < first + PREFETCH_GROUP; j++)
		if (j != i && !(sp->table[j] & KL_PT_P) && prefetch_one(vcpu, sp, j, flags))
			vcpu->vm->stat.mmu_prefetched++;
}

static const struct cached_hooks unsync_hooks = {
	.leaf_filled = unsync_leaf_filled,
	.write_fault = unsync_write_fault,
	.sp_linked = unsync_sp_linked,
	.sp_created = unsync_sp_created,
};

static int unsync_vm_init(struct kl_vm *vm)
{
	return cached_vm_init_hooks(vm, &unsync_hooks);
}

static void unsync_load_cr3(struct kl_vcpu *vcpu)
{
	cached_load_cr3(vcpu);
	sync_reachable(vcpu);
	cached_commit_zap(vcpu->vm);
}

static void unsync_flush_tlb(struct kl_vcpu *vcpu)
{
	sync_reachable(vcpu);
	kl_flush_tlb(vcpu);
	cached_commit_zap(vcpu->vm);
}

/*
 * INVLPG: follow the shadow from this vCPU's root to the last-level page
 * for gva; if it is out of sync, re-read the one guest entry for gva. The
 * page stays unsync (its other entries are still the guest's business).
 */
static void unsync_invlpg(struct kl_vcpu *vcpu, u64 gva)
{
	struct sp *sp = root_of(vcpu);
	int level;

	kl_flush_tlb(vcpu);
	for (level = 4; sp && level > 1; level--) {
		u64 e = sp->table[(gva >> (12 + 9 * (level - 1))) & 511];

		sp = (e & KL_PT_P) ? child_of(e) : NULL;
	}
	if (sp && sp->unsync && resync_entry(vcpu, sp, (gva >> 12) & 511))
		kl_flush_remote_tlbs(vcpu->vm);
}

const struct kl_mmu_ops kl_unsync_ops = {
	.name = "unsync",
	.hw_paging = false,
	.formats = BIT(KL_PAGING_2LEVEL) | BIT(KL_PAGING_PAE) | BIT(KL_PAGING_4LEVEL),
	.max_pages = &cached_max_pages,
	.vm_init = unsync_vm_init,
	.vm_destroy = cached_vm_destroy,
	.vcpu_init = cached_vcpu_init,
	.vcpu_destroy = cached_vcpu_destroy,
	.root_hpa = cached_root_hpa,
	.page_fault = cached_page_fault,
	.load_cr3 = unsync_load_cr3,
	.invlpg = unsync_invlpg,
	.flush_tlb = unsync_flush_tlb,
	.mode_changed = cached_mode_changed,
	.memslots_changed = cached_memslots_changed,
	.write_protect = cached_write_protect,
	.guest_written = cached_guest_written,
};
