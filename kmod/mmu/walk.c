// SPDX-License-Identifier: GPL-2.0
/*
 * The guest page walker on a vCPU: paging.c's pure walker, fed the vCPU's
 * control registers and the VM's memslots. Setting A/D bits pins the
 * table's page for the moment of the cmpxchg, so it runs under
 * vm->mmu_lock like every other pin. Under a shadow strategy a PAE
 * guest's PDPTEs are the ones the x86 layer loaded when the CPU would have
 * (x86.c, load_pdptrs); under nested paging they are read from the table.
 */
#include <linux/highmem.h>
#include <linux/mm.h>
#include "../x86/x86.h"

static int read_pte(void *ctx, u64 gpa, int size, u64 *pte)
{
	*pte = 0;
	return kl_read_guest(ctx, gpa, pte, size);
}

/* Entries are naturally aligned (4 or 8 bytes), so one never crosses a page. */
static int cmpxchg_pte(void *ctx, u64 gpa, int size, u64 old, u64 new)
{
	struct kl_vm *vm = ctx;
	struct page *page;
	void *p;
	bool swapped;

	if (kl_pin_gfn(vm, gpa >> PAGE_SHIFT, true, &page))
		return -EFAULT;
	p = kmap_local_page(page) + (gpa & ~PAGE_MASK & ~(u64)(size - 1));
	if (size == 4)
		swapped = cmpxchg((u32 *)p, (u32)old, (u32)new) == (u32)old;
	else
		swapped = cmpxchg64((u64 *)p, old, new) == old;
	kunmap_local(p);
	kl_unpin_page(vm, page, true);
	if (swapped)
		kl_mark_page_dirty(vm, gpa >> PAGE_SHIFT);
	return swapped ? 0 : -EAGAIN;	/* changed under us: walk again */
}

int kl_walk_guest(struct kl_vcpu *vcpu, u64 gva, u32 access, bool set_ad, struct kl_walk *w)
{
	const struct kl_paging p = {
		.cr0 = vcpu->cr0, .cr3 = vcpu->cr3, .cr4 = vcpu->cr4, .efer = vcpu->efer,
		.maxphyaddr = kl_maxphyaddr(vcpu),
		/* Nested paging: the CPU's own PDPTEs are not ours to see; read the table. */
		.pdptes = kl_mmu_tdp(vcpu->vm) ? NULL : vcpu->pdptrs,
	};
	const struct kl_guest_mem m = {
		.ctx = vcpu->vm, .read_pte = read_pte, .cmpxchg_pte = cmpxchg_pte,
	};

	return kl_paging_walk(&p, &m, gva, access, set_ad, w);
}

bool kl_prefetch_leaf(struct kl_vcpu *vcpu, u32 access, u64 gpte, u64 *gfn, u64 *flags)
{
	enum kl_paging_format fmt = kl_guest_format(vcpu);
	bool nxe = fmt != KL_PAGING_2LEVEL && (vcpu->efer & EFER_NX);
	u64 rsvd = 0;
	struct kl_walk w = { .pte = gpte };

	if (fmt == KL_PAGING_4LEVEL)
		rsvd = GENMASK_ULL(51, kl_maxphyaddr(vcpu));
	else if (fmt == KL_PAGING_PAE)
		rsvd = GENMASK_ULL(62, kl_maxphyaddr(vcpu));
	if (!nxe && fmt != KL_PAGING_2LEVEL)
		rsvd |= KL_PT_NX;
	if (!(gpte & KL_PT_P) || !(gpte & KL_PT_A) || (gpte & rsvd))
		return false;
	*gfn = (gpte & (fmt == KL_PAGING_2LEVEL ? 0xfffff000ULL : KL_PT_ADDR)) >> PAGE_SHIFT;
	w.writable = (access & 1) && (gpte & KL_PT_W);
	w.user = (access & 2) && (gpte & KL_PT_U);
	w.nx = !(access & 4) || (nxe && (gpte & KL_PT_NX));
	*flags = kl_shadow_leaf_flags(vcpu, &w, 0);
	return true;
}
