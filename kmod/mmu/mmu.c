// SPDX-License-Identifier: GPL-2.0
/*
 * The MMU layer's dispatch: every MMU event of a vCPU comes through here
 * on its way to the VM's strategy, under vm->mmu_lock.
 *
 *   #PF / NPF exit ─► kl_mmu_page_fault ─► physical mode (phys.c) or
 *                     mmu->page_fault ─► fixed / guest #PF / MMIO / error
 *   CR3 load, INVLPG, PGE toggle, paging-mode change, memslot change
 *                  ─► kl_mmu_load_cr3, _invlpg, _flush_tlb, _mode_changed,
 *                     _memslots_changed ─► the strategy's callback
 *   each entry     ─► kl_mmu_hw_paging: which CR0/CR3/CR4/EFER (and nested
 *                     CR3) the hardware runs: the paging-mode policy
 *
 * A strategy that must drop the guest's hardware TLB asks with
 * kl_flush_tlb or kl_flush_remote_tlbs: a request the vendor honours at
 * the vCPU's next entry.
 */
#include <linux/mm.h>
#include <asm/io.h>
#include "../x86/x86.h"

void kl_flush_tlb(struct kl_vcpu *vcpu)
{
	kl_make_request(vcpu, KL_REQ_TLB_FLUSH);
}

/*
 * Every published vCPU of the VM flushes before it runs guest code again.
 * Counted as KVM does: remote_tlb_flush_requests every call,
 * remote_tlb_flush when a vCPU had to be interrupted, remote_tlb_kicks
 * for each IPI.
 * Callers hold vm->mmu_lock, under which the vCPU array changes. A vCPU in
 * guest mode is kicked and waited for (kl_vcpu_kick_wait): when this
 * returns, no CPU still runs on the translations the caller just took
 * away, which is what lets dirty logging write-protect under running
 * vCPUs. The caller's own vCPU is not in guest mode: its request waits
 * for its next entry.
 */
void kl_flush_remote_tlbs(struct kl_vm *vm)
{
	u64 kicks = 0;

	lockdep_assert_held(&vm->mmu_lock);
	vm->stat.remote_tlb_flush_requests++;
	for (int i = 0; i < vm->nr_vcpus; i++)
		kicks += kl_vcpu_kick_wait(vm->vcpus[i], KL_REQ_TLB_FLUSH);
	/* KVM's meaning: a request that had to interrupt some CPU running the guest. */
	if (kicks)
		vm->stat.remote_tlb_flush++;
	vm->stat.remote_tlb_kicks += kicks;
}

int kl_mmu_vm_init(struct kl_vm *vm)
{
	int r;

	mutex_lock(&vm->mmu_lock);
	r = vm->mmu->vm_init(vm);
	mutex_unlock(&vm->mmu_lock);
	return r;
}

void kl_mmu_vm_destroy(struct kl_vm *vm)
{
	mutex_lock(&vm->mmu_lock);
	vm->mmu->vm_destroy(vm);
	mutex_unlock(&vm->mmu_lock);
}

int kl_mmu_vcpu_init(struct kl_vcpu *vcpu)
{
	int r;

	mutex_lock(&vcpu->vm->mmu_lock);
	r = vcpu->vm->mmu->vcpu_init(vcpu);
	mutex_unlock(&vcpu->vm->mmu_lock);
	return r;
}

void kl_mmu_vcpu_destroy(struct kl_vcpu *vcpu)
{
	mutex_lock(&vcpu->vm->mmu_lock);
	kl_phys_destroy(vcpu);
	vcpu->vm->mmu->vcpu_destroy(vcpu);
	mutex_unlock(&vcpu->vm->mmu_lock);
	if (vcpu->pae_root)
		__free_page(vcpu->pae_root);
	vcpu->pae_root = NULL;
}

enum kl_paging_format kl_guest_format(struct kl_vcpu *vcpu)
{
	struct kl_paging p = { .cr0 = vcpu->cr0, .cr4 = vcpu->cr4, .efer = vcpu->efer };

	return kl_paging_format(&p);
}

/*
 * The PDPT entries are copied every time: a #PF may have added one. Not
 * accounted as a shadow page: it only points at the shadow's own tables.
 */
u64 kl_pae_root(struct kl_vcpu *vcpu, u64 pml4_hpa)
{
	u64 *pae, *pml4 = phys_to_virt(pml4_hpa), *pdpt;

	if (!vcpu->pae_root)
		vcpu->pae_root = alloc_page(GFP_KERNEL_ACCOUNT | GFP_DMA32 | __GFP_ZERO);
	if (!vcpu->pae_root)
		return 0;
	pae = page_address(vcpu->pae_root);
	memset(pae, 0, 4 * sizeof(u64));
	if (pml4[0] & KL_PT_P) {
		pdpt = phys_to_virt(pml4[0] & KL_PT_ADDR);
		for (int i = 0; i < 4; i++)
			pae[i] = pdpt[i] & (KL_PT_ADDR | KL_PT_P);
	}
	return page_to_phys(vcpu->pae_root);
}

/*
 * Every mode with paging off runs under every strategy (phys.c: real mode
 * runs as AMD's "paged real mode", CR0.PG=1 with PE=0, on the same
 * gpa == gva tables as protected mode; on VMX those tables are a nested
 * root, kl_phys_nested); a paging guest, in the formats
 * its strategy says it shadows.
 */
bool kl_mmu_mode_supported(struct kl_vcpu *vcpu)
{
	return kl_mmu_tdp(vcpu->vm) || !kl_guest_paging(vcpu) ||
	       (vcpu->vm->mmu->formats & BIT(kl_guest_format(vcpu)));
}

static void tdp_paging(struct kl_vcpu *vcpu, struct kl_hw_paging *hw)
{
	/*
	 * EFER.LME does nothing until CR0.PG is set, and that CR0 write exits
	 * to us (kl_set_cr0 sets LMA), so while paging is off the CPU need not
	 * see LME. It must not: QEMU's SVM (7.2) #VMEXITs from "LME=1, PG=0,
	 * PAE=0" by restoring the host's CR0 while the guest's PAE=0 is still
	 * loaded, which it refuses, so the host resumes with the guest's CR0
	 * (paging off) and the machine hangs. The guest still reads its LME
	 * (EFER reads exit).
	 */
	if (!(vcpu->cr0 & X86_CR0_PG))
		hw->efer &= ~EFER_LME;
	hw->cr0 = vcpu->cr0;
	hw->cr3 = vcpu->cr3;
	hw->cr4 = vcpu->cr4;
	hw->nested_cr3 = vcpu->vm->mmu->root_hpa(vcpu);
}

static int shadow_paging(struct kl_vcpu *vcpu, struct kl_hw_paging *hw)
{
	if (kl_phys_mode(vcpu) && kl_phys_nested) {
		/* Paging off, on the nested hardware: the guest's registers as they are. */
		hw->cr0 = vcpu->cr0;
		hw->cr3 = vcpu->cr3;
		hw->cr4 = vcpu->cr4;
		hw->efer &= ~(EFER_LME | EFER_LMA);
		hw->nested_cr3 = kl_phys_root(vcpu);
		return hw->nested_cr3 ? 0 : -ENOMEM;
	}
	if (kl_phys_mode(vcpu)) {
		/* Paging off: our gpa == gva tables under legacy PAE (phys.c). */
		hw->cr0 = vcpu->cr0 | X86_CR0_PG | X86_CR0_WP;
		hw->cr3 = kl_phys_root(vcpu);
		if (!hw->cr3)
			return -ENOMEM;
		hw->cr4 = vcpu->cr4 | X86_CR4_PAE;
		hw->efer &= ~(EFER_LME | EFER_LMA);
		return 0;
	}
	kl_phys_leave(vcpu);
	/* The shadow tables do the guest's WP=0 in software. */
	hw->cr0 = vcpu->cr0 | X86_CR0_PG | X86_CR0_WP | X86_CR0_PE;
	hw->cr3 = vcpu->vm->mmu->root_hpa(vcpu);
	hw->cr4 = vcpu->cr4 | X86_CR4_PAE;
	/*
	 * A 2-level or PAE guest: the hardware runs legacy PAE paging over
	 * the same 4-level-format shadow, through four PDPTEs (its linear
	 * addresses are below 4 GiB: PML4 entry 0, PDPT entries 0-3).
	 */
	if (!kl_guest_long_mode(vcpu) && hw->cr3) {
		hw->cr3 = kl_pae_root(vcpu, hw->cr3);
		if (!hw->cr3)
			return -ENOMEM;
	}
	return 0;
}

/* What the hardware runs on at this entry: the paging-mode policy. */
int kl_mmu_hw_paging(struct kl_vcpu *vcpu, struct kl_hw_paging *hw)
{
	struct kl_vm *vm = vcpu->vm;
	int r = 0;

	*hw = (struct kl_hw_paging) { .efer = vcpu->efer };
	mutex_lock(&vm->mmu_lock);
	if (kl_mmu_tdp(vm))
		tdp_paging(vcpu, hw);
	else
		r = shadow_paging(vcpu, hw);
	mutex_unlock(&vm->mmu_lock);
	return r;
}

static enum kl_pf_result page_fault_locked(struct kl_vcpu *vcpu, struct kl_pf_info *pf)
{
	enum kl_pf_result r;

	mutex_lock(&vcpu->vm->mmu_lock);
	r = kl_phys_mode(vcpu) ? kl_phys_page_fault(vcpu, pf) :
				 vcpu->vm->mmu->page_fault(vcpu, pf);
	mutex_unlock(&vcpu->vm->mmu_lock);
	return r;
}

int kl_mmu_page_fault(struct kl_vcpu *vcpu, u64 addr, u32 error, bool vectoring)
{
	struct kl_pf_info pf = { .addr = addr, .error = error, .vectoring = vectoring };
	int err;

	vcpu->stat.pf_taken++;
	switch (page_fault_locked(vcpu, &pf)) {
	case KL_PF_FIXED:
		vcpu->stat.pf_fixed++;
		return 1;
	case KL_PF_RETRY:
		return 1;
	case KL_PF_GUEST:
		/* LAB 1 BEGIN: the guest faulted: give it the #PF the CPU would have */
		kl_inject_page_fault(vcpu, addr, pf.guest_error);
		return 1;
		/* LAB 1 STUB
		err = -ENOSYS;
		break;
		   LAB 1 END */
	case KL_PF_MMIO:
		if (!pf.vectoring)
			return kl_emulate_mmio(vcpu, addr, pf.gpa);
		err = -ELOOP;	/* an event frame or IDT in MMIO: nothing at RIP to emulate */
		break;
	case KL_PF_EMULATE_FAILED:
		vcpu->stat.insn_emulation_fail++;
		kl_internal_error(vcpu, KVM_INTERNAL_ERROR_EMULATION, vcpu->rip, addr);
		return 0;
	case KL_PF_ERROR:
	default:
		err = pf.err;
		break;
	}
	/* -ELOOP: an event's delivery that cannot go on (as KVM reports it); else an errno. */
	kl_internal_error(vcpu, KVM_INTERNAL_ERROR_DELIVERY_EV, addr, (u64)err);
	return 0;
}

void kl_mmu_load_cr3(struct kl_vcpu *vcpu)
{
	mutex_lock(&vcpu->vm->mmu_lock);
	vcpu->vm->mmu->load_cr3(vcpu);
	mutex_unlock(&vcpu->vm->mmu_lock);
}

void kl_mmu_invlpg(struct kl_vcpu *vcpu, u64 gva)
{
	mutex_lock(&vcpu->vm->mmu_lock);
	vcpu->vm->mmu->invlpg(vcpu, gva);
	mutex_unlock(&vcpu->vm->mmu_lock);
}

void kl_mmu_flush_tlb(struct kl_vcpu *vcpu)
{
	mutex_lock(&vcpu->vm->mmu_lock);
	vcpu->vm->mmu->flush_tlb(vcpu);
	mutex_unlock(&vcpu->vm->mmu_lock);
}

void kl_mmu_mode_changed(struct kl_vcpu *vcpu)
{
	mutex_lock(&vcpu->vm->mmu_lock);
	vcpu->vm->mmu->mode_changed(vcpu);
	mutex_unlock(&vcpu->vm->mmu_lock);
}

void kl_mmu_memslots_changed(struct kl_vm *vm)
{
	mutex_lock(&vm->mmu_lock);
	vm->mmu->memslots_changed(vm);
	mutex_unlock(&vm->mmu_lock);
}

int kl_mmu_translate(struct kl_vcpu *vcpu, u64 gva, u32 access, struct kl_walk *w)
{
	int r;

	mutex_lock(&vcpu->vm->mmu_lock);
	r = kl_walk_guest(vcpu, gva, access, true, w);
	mutex_unlock(&vcpu->vm->mmu_lock);
	return r;
}

int kl_mmu_write_guest(struct kl_vcpu *vcpu, u64 gpa, const void *buf, unsigned int len)
{
	struct kl_vm *vm = vcpu->vm;
	int r;

	mutex_lock(&vm->mmu_lock);
	r = kl_write_guest(vm, gpa, buf, len);
	if (!r && vm->mmu->guest_written)
		vm->mmu->guest_written(vcpu, gpa, len);
	mutex_unlock(&vm->mmu_lock);
	return r;
}
