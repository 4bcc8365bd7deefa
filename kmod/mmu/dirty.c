// SPDX-License-Identifier: GPL-2.0
/*
 * Dirty-page logging, KVM's ABI: KVM_MEM_LOG_DIRTY_PAGES on a memslot,
 * KVM_GET_DIRTY_LOG, and with KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 enabled,
 * KVM_CLEAR_DIRTY_LOG.
 *
 * One invariant makes it exact under every strategy: while a slot logs,
 * a leaf mapping one of its pages is writable only if the page's bit is
 * set. Leaves are installed through kl_leaf_writable, which grants W to a
 * clean page only for a write, and logs it then (a dirty fault); the
 * hypervisor's own writes log through kl_mark_page_dirty. Clearing a bit
 * (collecting the log) write-protects the page again through the
 * strategy's write_protect and flushes every vCPU's TLB, kicking and
 * waiting for those in guest mode, before the ioctl returns: a write that
 * a stale TLB entry lets through lands before userspace reads the page,
 * and only on a page reported in this round (a clean page had no
 * writable leaf to begin with).
 *
 * Each strategy pays in its own way: the shadow MMUs find the leaves of a
 * page through their reverse map (cached) or their per-leaf gpa tags
 * (shadow); the virtual TLB, which knows no gpa, makes every writable
 * entry read-only; nested paging looks each page up in its nested table.
 * Every leaf is 4 KiB here, so there are no large pages to split.
 *
 * Locks: vm->lock keeps the slot (and its bitmap) in place; bits are
 * collected and pages write-protected under vm->mmu_lock, which every
 * fault installing a leaf holds.
 */
#include <linux/bitmap.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include "mmu.h"

#define KL_DIRTY_LOG_MANUAL_CAPS	(KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | \
					 KVM_DIRTY_LOG_INITIALLY_SET)

static size_t bitmap_bytes(const struct kl_memslot *slot)
{
	return BITS_TO_LONGS(slot->npages) * sizeof(long);
}

/* Write-protect the pages of bits and flush: under mmu_lock. */
static void write_protect(struct kl_vm *vm, const struct kl_memslot *slot,
			  const unsigned long *bits)
{
	unsigned long n;

	lockdep_assert_held(&vm->mmu_lock);
	n = vm->mmu->write_protect(vm, slot, bits);
	/* Physical mode's trees (paging off) map guest RAM too. */
	for (int i = 0; !vm->mmu->hw_paging && i < vm->nr_vcpus; i++)
		if (vm->vcpus[i]->phys.root)
			n += kl_stree_write_protect(&vm->vcpus[i]->phys, true, slot, bits);
	vm->stat.dirty_wrprot += n;
	if (n)
		kl_flush_remote_tlbs(vm);
}

u64 kl_dirty_log_manual_caps(void)
{
	return KL_DIRTY_LOG_MANUAL_CAPS;
}

int kl_dirty_log_enable_manual(struct kl_vm *vm, u64 flags)
{
	if (flags & ~KL_DIRTY_LOG_MANUAL_CAPS)
		return -EINVAL;
	mutex_lock(&vm->lock);
	vm->manual_dirty_log = flags;
	mutex_unlock(&vm->lock);
	return 0;
}

/*
 * The slot starts logging (vm->lock held, every vCPU out of KVM_RUN). With
 * KVM_DIRTY_LOG_INITIALLY_SET every page starts dirty and nothing is
 * write-protected until userspace clears it; otherwise every page starts
 * clean, so every writable leaf of the slot goes read-only now.
 */
int kl_dirty_log_start(struct kl_vm *vm, struct kl_memslot *slot)
{
	bool all_dirty = vm->manual_dirty_log & KVM_DIRTY_LOG_INITIALLY_SET;
	unsigned long *all;

	slot->dirty_bitmap = kvzalloc(bitmap_bytes(slot), GFP_KERNEL_ACCOUNT);
	all = kvmalloc(bitmap_bytes(slot), GFP_KERNEL_ACCOUNT);
	if (!slot->dirty_bitmap || !all) {
		kvfree(all);
		kl_dirty_log_stop(slot);
		return -ENOMEM;
	}
	bitmap_zero(all, slot->npages);
	bitmap_set(all, 0, slot->npages);	/* no bits past the slot's end */
	mutex_lock(&vm->mmu_lock);
	if (all_dirty)
		bitmap_set(slot->dirty_bitmap, 0, slot->npages);
	else
		write_protect(vm, slot, all);
	mutex_unlock(&vm->mmu_lock);
	kvfree(all);
	return 0;
}

/* Leaves stay read-only where they are; the next write takes W back. */
void kl_dirty_log_stop(struct kl_memslot *slot)
{
	kvfree(slot->dirty_bitmap);
	slot->dirty_bitmap = NULL;
}

/* The slot a dirty-log ioctl names: address space 0 only (no SMM); -ENOENT unless it logs. */
static int logging_slot(struct kl_vm *vm, u32 id, struct kl_memslot **slot)
{
	if ((id >> 16) || (id & 0xffff) >= KL_MAX_SLOTS)
		return -EINVAL;
	*slot = &vm->slots[id & 0xffff];
	return (*slot)->used && (*slot)->dirty_bitmap ? 0 : -ENOENT;
}

/*
 * KVM_GET_DIRTY_LOG: the bitmap as it is now. Unless userspace protects by
 * hand (KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE), each word is taken and
 * cleared atomically and the pages it reported write-protected again.
 */
static int get_dirty_log(struct kl_vm *vm, const struct kvm_dirty_log *log)
{
	bool manual = vm->manual_dirty_log & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE;
	struct kl_memslot *slot;
	unsigned long *snap;
	int r;

	r = logging_slot(vm, log->slot, &slot);
	if (r)
		return r;
	snap = kvmalloc(bitmap_bytes(slot), GFP_KERNEL_ACCOUNT);
	if (!snap)
		return -ENOMEM;
	mutex_lock(&vm->mmu_lock);
	for (size_t i = 0; i < BITS_TO_LONGS(slot->npages); i++)
		snap[i] = manual ? READ_ONCE(slot->dirty_bitmap[i]) :
				   xchg(&slot->dirty_bitmap[i], 0);
	if (!manual)
		write_protect(vm, slot, snap);
	mutex_unlock(&vm->mmu_lock);
	r = copy_to_user(log->dirty_bitmap, snap, bitmap_bytes(slot)) ? -EFAULT : 0;
	kvfree(snap);
	return r;
}

/*
 * KVM_CLEAR_DIRTY_LOG: clear the bits set in userspace's bitmap for pages
 * [first_page, first_page + num_pages) and write-protect the pages that
 * were dirty. As KVM: first_page a multiple of 64, and num_pages too
 * unless the range ends at the slot's end; allowed with or without manual
 * protection (without it, GET_DIRTY_LOG has cleared the log already).
 */
static int clear_dirty_log(struct kl_vm *vm, const struct kvm_clear_dirty_log *log)
{
	struct kl_memslot *slot;
	unsigned long *mask, *cleared;
	u64 first = log->first_page, n = log->num_pages;
	int r;

	r = logging_slot(vm, log->slot, &slot);
	if (r)
		return r;
	if ((first & 63) || first >= slot->npages || n > slot->npages - first ||
	    ((n & 63) && first + n != slot->npages))
		return -EINVAL;
	if (!n)
		return 0;
	mask = kvmalloc(BITS_TO_LONGS(n) * sizeof(long), GFP_KERNEL_ACCOUNT);
	cleared = kvzalloc(bitmap_bytes(slot), GFP_KERNEL_ACCOUNT);
	r = -ENOMEM;
	if (!mask || !cleared)
		goto out;
	r = -EFAULT;
	if (copy_from_user(mask, log->dirty_bitmap, BITS_TO_LONGS(n) * sizeof(long)))
		goto out;
	if (n & (BITS_PER_LONG - 1))	/* bits past the range are not ours to clear */
		mask[n / BITS_PER_LONG] &= BITMAP_LAST_WORD_MASK(n);
	mutex_lock(&vm->mmu_lock);
	for (u64 w = 0; w < BITS_TO_LONGS(n); w++) {
		size_t k = first / BITS_PER_LONG + w;

		cleared[k] = atomic_long_fetch_andnot(mask[w],
					(atomic_long_t *)&slot->dirty_bitmap[k]) & mask[w];
	}
	write_protect(vm, slot, cleared);
	mutex_unlock(&vm->mmu_lock);
	r = 0;
out:
	kvfree(mask);
	kvfree(cleared);
	return r;
}

long kl_dirty_log_ioctl(struct kl_vm *vm, unsigned int ioctl, void __user *argp)
{
	struct kvm_clear_dirty_log clear;
	struct kvm_dirty_log log;
	long r;

	if (ioctl == KVM_GET_DIRTY_LOG && copy_from_user(&log, argp, sizeof(log)))
		return -EFAULT;
	if (ioctl == KVM_CLEAR_DIRTY_LOG && copy_from_user(&clear, argp, sizeof(clear)))
		return -EFAULT;
	if (mutex_lock_killable(&vm->lock))
		return -EINTR;
	r = ioctl == KVM_GET_DIRTY_LOG ? get_dirty_log(vm, &log) : clear_dirty_log(vm, &clear);
	mutex_unlock(&vm->lock);
	return r;
}
