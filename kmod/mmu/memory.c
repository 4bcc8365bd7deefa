// SPDX-License-Identifier: GPL-2.0
/*
 * Guest memory for the MMU layer: memslot lookup, reads and writes of guest
 * memory, the pinning of guest pages that shadow or nested entries point
 * at, and the accounted allocation of table pages. The per-VM counters
 * changed here are changed under vm->mmu_lock (see kmod/README.md,
 * "Locking"); the module-wide ones are atomics.
 */
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/uaccess.h>
#include "mmu.h"

struct kl_memslot *kl_gfn_to_memslot(struct kl_vm *vm, u64 gfn)
{
	for (int i = 0; i < KL_MAX_SLOTS; i++) {
		struct kl_memslot *s = &vm->slots[i];

		if (s->used && gfn >= s->base_gfn && gfn < s->base_gfn + s->npages)
			return s;
	}
	return NULL;
}

/*
 * Is there memory at gfn for this access? A write to a KVM_MEM_READONLY slot
 * (a ROM) is MMIO: it exits to userspace, which decides what it means.
 */
bool kl_gfn_is_ram(struct kl_vm *vm, u64 gfn, bool write)
{
	struct kl_memslot *s = kl_gfn_to_memslot(vm, gfn);

	return s && !(write && (s->flags & KVM_MEM_READONLY));
}

static unsigned long gpa_to_hva(struct kl_vm *vm, u64 gpa, unsigned int len)
{
	struct kl_memslot *s = kl_gfn_to_memslot(vm, gpa >> PAGE_SHIFT);

	/* Accesses here never cross a page (callers split them). */
	if (!s || (gpa & ~PAGE_MASK) + len > PAGE_SIZE)
		return 0;
	return s->hva + ((gpa >> PAGE_SHIFT) - s->base_gfn) * PAGE_SIZE + (gpa & ~PAGE_MASK);
}

int kl_read_guest(struct kl_vm *vm, u64 gpa, void *buf, unsigned int len)
{
	unsigned long hva = gpa_to_hva(vm, gpa, len);

	if (!hva)
		return -ENOENT;
	return copy_from_user(buf, (void __user *)hva, len) ? -EFAULT : 0;
}

int kl_write_guest(struct kl_vm *vm, u64 gpa, const void *buf, unsigned int len)
{
	unsigned long hva = gpa_to_hva(vm, gpa, len);

	if (!hva)
		return -ENOENT;
	if (copy_to_user((void __user *)hva, buf, len))
		return -EFAULT;
	kl_mark_page_dirty(vm, gpa >> PAGE_SHIFT);
	return 0;
}

/*
 * Dirty logging: the hypervisor wrote gfn for the guest (an emulated
 * store, an A/D bit, a page filled by INS). Atomic: no lock needed, and a
 * collector that already took the word sees the bit in its next round.
 */
void kl_mark_page_dirty(struct kl_vm *vm, u64 gfn)
{
	struct kl_memslot *s = kl_gfn_to_memslot(vm, gfn);

	if (s && s->dirty_bitmap)
		set_bit(gfn - s->base_gfn, s->dirty_bitmap);
}

/*
 * May a leaf for gfn be writable, for an access that is a write or not?
 * Not in a ROM. Under dirty logging only once the page is logged dirty: a
 * write logs it now (the fault that does is a dirty fault); a read maps a
 * clean page read-only, so that its first write faults and is logged.
 * Under vm->mmu_lock (the counter).
 */
bool kl_leaf_writable(struct kl_vm *vm, u64 gfn, bool write)
{
	struct kl_memslot *s = kl_gfn_to_memslot(vm, gfn);

	if (!s || (s->flags & KVM_MEM_READONLY))
		return false;
	if (!s->dirty_bitmap)
		return true;
	if (!write)
		return test_bit(gfn - s->base_gfn, s->dirty_bitmap);
	if (!test_and_set_bit(gfn - s->base_gfn, s->dirty_bitmap))
		vm->stat.dirty_faults++;
	return true;
}

int kl_pin_gfn(struct kl_vm *vm, u64 gfn, bool write, struct page **page)
{
	unsigned long hva = gpa_to_hva(vm, gfn << PAGE_SHIFT, 1);

	if (!hva)
		return -ENOENT;
	if (get_user_pages_fast(hva, 1, write ? FOLL_WRITE : 0, page) != 1)
		return -EFAULT;
	vm->stat.pinned_pages++;
	atomic_long_inc(&kl_pinned_pages_live);
	return 0;
}

void kl_unpin_page(struct kl_vm *vm, struct page *page, bool dirty)
{
	if (dirty)
		set_page_dirty_lock(page);
	put_page(page);
	vm->stat.pinned_pages--;
	atomic_long_dec(&kl_pinned_pages_live);
}

struct page *kl_table_page_alloc(struct kl_vm *vm)
{
	struct page *page = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);

	if (!page)
		return NULL;
	vm->stat.shadow_pages++;
	vm->stat.shadow_pages_peak = max(vm->stat.shadow_pages_peak, vm->stat.shadow_pages);
	vm->stat.shadow_pages_alloc++;
	atomic_long_inc(&kl_table_pages_live);
	return page;
}

void kl_table_page_free(struct kl_vm *vm, struct page *page)
{
	vm->stat.shadow_pages--;
	vm->stat.shadow_pages_freed++;
	atomic_long_dec(&kl_table_pages_live);
	__free_page(page);
}
