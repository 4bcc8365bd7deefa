// SPDX-License-Identifier: GPL-2.0
/*
 * Machinery every MMU strategy shares: guest memory through memslots, the
 * pinning of guest pages that shadow or nested entries point at, accounted
 * allocation of table pages, and the guest page-table walker.
 */
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/uaccess.h>
#include "kvmlab.h"

struct kl_memslot *kl_gfn_to_memslot(struct kl_vm *vm, u64 gfn)
{
	for (int i = 0; i < KL_MAX_SLOTS; i++) {
		struct kl_memslot *s = &vm->slots[i];

		if (s->used && gfn >= s->base_gfn && gfn < s->base_gfn + s->npages)
			return s;
	}
	return NULL;
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
	return copy_to_user((void __user *)hva, buf, len) ? -EFAULT : 0;
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

/* ---- the guest page-table walker ---- */

static int max_phys_bits(struct kl_vcpu *vcpu)
{
	const struct kvm_cpuid_entry2 *e = kl_find_cpuid(vcpu, 0x80000008, 0);

	return e ? (e->eax & 0xff) : 36;
}

/* Reserved bits of an entry at `level` (4 = PML4E), large or not. */
static u64 reserved_bits(struct kl_vcpu *vcpu, int level, bool large)
{
	u64 rsvd = GENMASK_ULL(51, max_phys_bits(vcpu));

	if (!(vcpu->efer & EFER_NX))
		rsvd |= KL_PT_NX;
	if (level == 4)
		rsvd |= KL_PT_PS;		/* no pages larger than 1 GiB */
	if (large && level == 2)
		rsvd |= GENMASK_ULL(20, 13);
	if (large && level == 3)
		rsvd |= GENMASK_ULL(29, 13);
	return rsvd;
}

/* Set A (and D) in the entry at gpa, atomically: the guest may race us. */
static int set_ad_bits(struct kl_vm *vm, u64 gpa, u64 old, u64 new)
{
	struct page *page;
	u64 *p;
	int r = 0;

	if (kl_pin_gfn(vm, gpa >> PAGE_SHIFT, true, &page))
		return -EFAULT;
	p = kmap_local_page(page) + (gpa & ~PAGE_MASK & ~7ULL);
	if (cmpxchg64(p, old, new) != old)
		r = -EAGAIN;	/* changed under us: walk again */
	kunmap_local(p);
	kl_unpin_page(vm, page, true);
	return r;
}

static int walk_once(struct kl_vcpu *vcpu, u64 gva, u32 access, bool set_ad,
		     struct kl_walk *w)
{
	bool user = access & KL_PF_U, write = access & KL_PF_W, fetch = access & KL_PF_ID;
	bool wp = vcpu->cr0 & X86_CR0_WP;
	u64 table = vcpu->cr3 & KL_PT_ADDR, pte = 0, pte_gpa = 0;
	int level;

	*w = (struct kl_walk) { .writable = true, .user = true, .nx = false, .accessed = true };
	if (!kl_guest_paging(vcpu)) {
		w->gpa = gva;
		w->level = 1;
		return 0;
	}
	if (!kl_guest_long_mode(vcpu))
		return -EOPNOTSUPP;	/* only 4-level paging is modelled */
	if ((s64)(gva << 16) >> 16 != (s64)gva)
		return -EINVAL;		/* non-canonical: the CPU raises #GP, not #PF */

	for (level = 4; level >= 1; level--) {
		bool large;

		pte_gpa = table + ((gva >> (12 + 9 * (level - 1))) & 511) * 8;
		if (kl_read_guest(vcpu->vm, pte_gpa, &pte, 8))
			return -ENOENT;		/* table outside RAM */
		w->table[level] = table;
		w->entry[level] = pte;
		if (!(pte & KL_PT_P))
			goto fault;
		large = level > 1 && (pte & KL_PT_PS);
		if (level == 4 && (pte & KL_PT_PS))
			large = false;
		if (pte & reserved_bits(vcpu, level, large)) {
			w->error = KL_PF_P | KL_PF_RSVD;
			goto fault;
		}
		w->writable &= !!(pte & KL_PT_W);
		w->user &= !!(pte & KL_PT_U);
		w->nx |= !!(pte & KL_PT_NX);
		w->accessed &= !!(pte & KL_PT_A);
		if (large || level == 1)
			break;
		table = pte & KL_PT_ADDR;
	}

	w->level = level;
	w->pte = pte;
	w->pte_gpa = pte_gpa;
	w->error = KL_PF_P;
	if (user && !w->user)
		goto fault;
	if (write && !w->writable && (user || wp))
		goto fault;
	if (fetch && w->nx && (vcpu->efer & EFER_NX))
		goto fault;
	{
		u64 page_mask = level == 1 ? KL_PT_ADDR : ~((1ULL << (12 + 9 * (level - 1))) - 1) & KL_PT_ADDR;

		w->gpa = (pte & page_mask) | (gva & ~page_mask & ((1ULL << 52) - 1));
	}
	return 0;

fault:
	w->error |= (user ? KL_PF_U : 0) | (write ? KL_PF_W : 0);
	if (fetch && (vcpu->efer & EFER_NX))
		w->error |= KL_PF_ID;
	return -EFAULT;
}

/*
 * Accessed bits are set on every level the walk used, dirty on the leaf of
 * a write, and only for a walk that succeeds, as the CPU does. Setting them
 * re-reads each entry: if the guest changed it meanwhile, walk again.
 */
static int set_walk_ad(struct kl_vcpu *vcpu, u64 gva, bool write, struct kl_walk *w)
{
	u64 table = vcpu->cr3 & KL_PT_ADDR;

	for (int level = 4; level >= w->level; level--) {
		u64 gpa = table + ((gva >> (12 + 9 * (level - 1))) & 511) * 8, pte, want;
		int r;

		if (kl_read_guest(vcpu->vm, gpa, &pte, 8))
			return -ENOENT;
		want = pte | KL_PT_A;
		if (level == w->level && write)
			want |= KL_PT_D;
		if (want != pte) {
			r = set_ad_bits(vcpu->vm, gpa, pte, want);
			if (r)
				return r;
		}
		if (level == w->level)
			w->pte = want;
		table = pte & KL_PT_ADDR;
	}
	return 0;
}

int kl_walk_guest(struct kl_vcpu *vcpu, u64 gva, u32 access, bool set_ad, struct kl_walk *w)
{
	for (int tries = 0; tries < 8; tries++) {
		int r = walk_once(vcpu, gva, access, set_ad, w);

		if (r || !set_ad || !kl_guest_paging(vcpu))
			return r;
		r = set_walk_ad(vcpu, gva, access & KL_PF_W, w);
		if (r != -EAGAIN)
			return r;
	}
	return -EAGAIN;
}
