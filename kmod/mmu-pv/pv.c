// SPDX-License-Identifier: GPL-2.0
/*
 * A paravirtual MMU (mmu=pv): the guest tells the hypervisor about its
 * page-table changes instead of having them trapped. KVM offered this in
 * 2008 (KVM_HC_MMU_OP) for CPUs without nested paging; Xen's PV guests
 * live by it.
 *
 * Underneath is mmu=cached unchanged (kmod/mmu-cached): shadow pages
 * cached by guest table, guest tables write-protected. A guest that does
 * not know about the interface simply runs under mmu=cached. A guest that
 * finds the CPUID leaf (<kvmlab/pv_mmu.h>) queues its page-table writes,
 * INVLPGs, flushes, CR3 switches and released tables in a page of its own and hands the
 * batch over with one VMMCALL. Here each PTE write goes to guest memory
 * and, at once, to every shadow of that table: a last-level shadow entry
 * is rewritten from the new guest entry (a prefetch, so the guest's next
 * access does not fault), an upper-level one is dropped. No write trap, no
 * instruction decoding, one exit per batch instead of one per store.
 *
 * The batch is hostile input: it is copied once, every operation checked
 * for form before any is applied (see the header for the errors), and the
 * count is bounded, so a guest cannot make us loop, read outside its RAM,
 * or write its ROM. An entry's value is the guest's to choose, as the CPU
 * lets it store anything into a table: a frame outside RAM, reserved bits.
 * What it cannot do is map a page of ours: a value names a guest frame,
 * and shadow leaves are only ever made from memslot lookups of guest
 * frames (cached_sync_leaf), so such an entry maps MMIO or faults at use,
 * exactly as it would without the hypercall.
 */
#include <linux/slab.h>
#include <kvmlab/pv_mmu.h>
#include "../mmu-cached/cached.h"

/* The entry size a PTE write names, or 0 when the guest's paging format has no such entries. */
static int write_size(struct kl_vcpu *vcpu, u32 op)
{
	enum kl_paging_format fmt = kl_guest_format(vcpu);

	if (op == KL_PV_MMU_WRITE_PTE)
		return fmt == KL_PAGING_2LEVEL ? 0 : 8;
	return fmt == KL_PAGING_2LEVEL || fmt == KL_PAGING_OFF ? 4 : 0;
}

static bool canonical(struct kl_vcpu *vcpu, u64 gva)
{
	return !kl_guest_long_mode(vcpu) || (u64)((s64)(gva << 16) >> 16) == gva;
}

/* One operation's form, before anything is applied: 0 or -KL_PV_E*. */
static long check_op(struct kl_vcpu *vcpu, const struct kl_pv_mmu_op *op)
{
	int size = write_size(vcpu, op->op);

	if (op->reserved)
		return -KL_PV_EINVAL;
	switch (op->op) {
	case KL_PV_MMU_WRITE_PTE:
	case KL_PV_MMU_WRITE_PTE32:
		if (!size || (op->addr & (size - 1)))
			return -KL_PV_EINVAL;
		if (size == 4 && op->val >> 32)
			return -KL_PV_EINVAL;
		if (!kl_gfn_is_ram(vcpu->vm, op->addr >> PAGE_SHIFT, true))
			return -KL_PV_EFAULT;
		return 0;
	case KL_PV_MMU_INVLPG:
		return op->val || !canonical(vcpu, op->addr) ? -KL_PV_EINVAL : 0;
	case KL_PV_MMU_FLUSH:
		return op->addr || op->val ? -KL_PV_EINVAL : 0;
	case KL_PV_MMU_SWITCH_CR3:
		if (op->addr)
			return -KL_PV_EINVAL;
		return kl_gfn_is_ram(vcpu->vm, op->val >> PAGE_SHIFT, false) ? 0 : -KL_PV_EFAULT;
	case KL_PV_MMU_RELEASE:
		if (op->val || (op->addr & ~PAGE_MASK))
			return -KL_PV_EINVAL;
		return kl_gfn_is_ram(vcpu->vm, op->addr >> PAGE_SHIFT, false) ? 0 : -KL_PV_EFAULT;
	}
	return -KL_PV_EINVAL;
}

/*
 * Write one guest entry and bring every shadow of its table along: a
 * last-level shadow gets the new leaf (or loses it), an upper level loses
 * the entries it covered (the next walk relinks them). A shadow may see
 * the table in another format than the write's (paging was off): each
 * shadow entry the bytes touch is redone from guest memory.
 */
static void write_pte(struct kl_vcpu *vcpu, u64 gpa, u64 val, int size)
{
	struct kl_vm *vm = vcpu->vm;
	struct cache *c = to_cache(vm);
	u64 gfn = gpa >> PAGE_SHIFT, gpte;
	unsigned int off = gpa & ~PAGE_MASK, k, g;
	struct hlist_node *next;
	bool changed = false;
	struct sp *sp;
	int n;

	if (kl_write_guest(vm, gpa, &val, size))
		return;		/* checked RAM a moment ago: a memslot went away */
	for_each_table_sp(c, sp, next, gfn) {
		unsigned int esz = sp->role.format == FMT_2LEVEL ? 4 : 8;

		for (g = off / esz; g <= (off + size - 1) / esz; g++) {
			gpte = 0;
			if (sp->role.level == 1 &&
			    kl_read_guest(vm, (gfn << PAGE_SHIFT) + g * esz, &gpte, esz))
				gpte = 0;
			for (n = cached_shadow_entries(sp, g, &k); n; n--, k++) {
				if (sp->role.level == 1) {
					changed |= cached_sync_leaf(vcpu, sp, k, gpte);
				} else if (sp->table[k] & KL_PT_P) {
					cached_zap_entry(vm, sp, k);
					changed = true;
				}
			}
		}
	}
	if (changed)
		kl_flush_remote_tlbs(vm);
}

static long apply_op(struct kl_vcpu *vcpu, const struct kl_pv_mmu_op *op)
{
	struct kl_vm *vm = vcpu->vm;

	switch (op->op) {
	case KL_PV_MMU_WRITE_PTE:
	case KL_PV_MMU_WRITE_PTE32:
		mutex_lock(&vm->mmu_lock);
		write_pte(vcpu, op->addr, op->val, write_size(vcpu, op->op));
		cached_commit_zap(vm);
		mutex_unlock(&vm->mmu_lock);
		return 0;
	case KL_PV_MMU_INVLPG:
		kl_mmu_invlpg(vcpu, op->addr);
		return 0;
	case KL_PV_MMU_FLUSH:
		kl_mmu_flush_tlb(vcpu);
		return 0;
	case KL_PV_MMU_SWITCH_CR3:
		return kl_set_cr3(vcpu, op->val) ? -KL_PV_EINVAL : 0;
	case KL_PV_MMU_RELEASE:
		mutex_lock(&vm->mmu_lock);
		/* The zapped pages go only after every vCPU has flushed (commit). */
		cached_unshadow(vm, op->addr >> PAGE_SHIFT);
		cached_commit_zap(vm);
		mutex_unlock(&vm->mmu_lock);
		return 0;
	}
	return -KL_PV_EINVAL;
}

static long pv_mmu(struct kl_vcpu *vcpu, u64 gpa, u64 count)
{
	struct kl_vm *vm = vcpu->vm;
	struct kl_pv_mmu_op *ops;
	long r = 0;
	u64 i;

	if (count > KL_PV_MMU_MAX_OPS) {
		r = -KL_PV_E2BIG;
		goto refused;
	}
	if (count == 0)
		return 0;
	if ((gpa & ~PAGE_MASK) + count * sizeof(*ops) > PAGE_SIZE) {
		r = -KL_PV_EINVAL;
		goto refused;
	}
	if (!kl_gfn_is_ram(vm, gpa >> PAGE_SHIFT, false)) {
		r = -KL_PV_EFAULT;
		goto refused;
	}
	ops = kmalloc_array(count, sizeof(*ops), GFP_KERNEL_ACCOUNT);
	if (!ops)
		return -KL_PV_EFAULT;
	if (kl_read_guest(vm, gpa, ops, count * sizeof(*ops))) {
		r = -KL_PV_EFAULT;
		goto free;
	}
	for (i = 0; i < count && !r; i++)
		r = check_op(vcpu, &ops[i]);
	for (i = 0; i < count && !r; i++) {
		r = apply_op(vcpu, &ops[i]);
		if (!r)
			vm->stat.pv_mmu_ops++;
	}
	if (!r)
		vcpu->stat.pv_mmu_batches++;
free:
	kfree(ops);
	if (!r)
		return 0;
refused:
	vm->stat.pv_mmu_refused++;
	return r;
}

static int pv_vm_init(struct kl_vm *vm)
{
	return cached_vm_init_hooks(vm, NULL);
}

const struct kl_mmu_ops kl_pv_ops = {
	.name = "pv",
	.hw_paging = false,
	.formats = BIT(KL_PAGING_2LEVEL) | BIT(KL_PAGING_PAE) | BIT(KL_PAGING_4LEVEL),
	.max_pages = &cached_max_pages,
	.vm_init = pv_vm_init,
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
	.pv_mmu = pv_mmu,
};
