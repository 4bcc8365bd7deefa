// SPDX-License-Identifier: GPL-2.0
/*
 * Vendor-neutral x86: the rules of CR0/CR3/CR4/EFER and what a change
 * means to the MMU, special registers as KVM_GET/SET_SREGS see them, the
 * state after RESET, exception queueing with the CPU's double-fault rules,
 * and the decision of what to inject at the next entry. The vendor backend
 * calls in with decoded facts and applies the decisions to its control
 * block.
 */
#include <linux/slab.h>
#include <asm/fpu/api.h>
#include <asm/fpu/types.h>
#include <asm/fpu/xcr.h>
#include <linux/uaccess.h>
#include <linux/kvm.h>
#include <asm/processor-flags.h>
#include <asm/trapnr.h>
#include "vendor.h"

#define CR0_RESERVED	(~0xe005003fULL)
#define EFER_SUPPORTED	(EFER_SCE | EFER_LME | EFER_LMA | EFER_NX)
#define DEFAULT_PAT	0x0007040600070406ULL

/* ---- exceptions and interrupts ---- */

static bool contributory(u8 vector)
{
	return vector == DE_VECTOR || (vector >= TS_VECTOR && vector <= GP_VECTOR);
}

/*
 * An exception raised while the CPU was delivering another one combines
 * with it as the CPU's rules say (SDM, "Interrupt 8—Double Fault"): a
 * contributory fault during a contributory fault, or a contributory fault
 * or #PF during a #PF, becomes #DF; either during a #DF shuts the guest
 * down. Otherwise the two are handled one after the other: the new one is
 * delivered, and the old one recurs when its instruction restarts (an
 * external interrupt is lost, as on the hardware).
 */
void kl_queue_exception(struct kl_vcpu *vcpu, u8 vector, bool has_error, u32 error)
{
	const struct kl_pending_event *old = &vcpu->event;
	bool serious = contributory(vector) || vector == PF_VECTOR;

	if (old->valid && old->delivering && old->is_exception && serious) {
		if (old->vector == DF_VECTOR) {
			vcpu->event.valid = false;
			vcpu->triple_fault = true;
			return;
		}
		if (old->vector == PF_VECTOR || (contributory(old->vector) && contributory(vector))) {
			vector = DF_VECTOR;
			has_error = true;
			error = 0;
		}
	}
	vcpu->event = (struct kl_pending_event) {
		.valid = true, .vector = vector, .has_error = has_error,
		.error = error, .is_exception = true,
	};
}

void kl_inject_page_fault(struct kl_vcpu *vcpu, u64 addr, u32 error)
{
	vcpu->cr2 = addr;
	kl_queue_exception(vcpu, PF_VECTOR, true, error);
	vcpu->stat.pf_guest++;
}

void kl_requeue_event(struct kl_vcpu *vcpu, u8 vector, bool exception, bool has_error,
		      u32 error)
{
	vcpu->event = (struct kl_pending_event) {
		.valid = true, .delivering = true, .vector = vector,
		.is_exception = exception, .has_error = has_error, .error = error,
	};
}

bool kl_interrupt_allowed(struct kl_vcpu *vcpu)
{
	return (vcpu->rflags & X86_EFLAGS_IF) && !kl_vendor->interrupt_shadow(vcpu);
}

/*
 * A queued exception goes first. A queued external interrupt (KVM_INTERRUPT)
 * goes in when the guest can take it; until then the vendor arms the
 * "interrupt window", an exit at the first instruction boundary where
 * RFLAGS.IF=1 and no shadow. Userspace may ask for the window too
 * (request_interrupt_window) to learn when to call KVM_INTERRUPT. An NMI
 * (KVM_NMI) goes before the interrupt, whatever IF says, unless NMIs are
 * masked (one is being handled) or an interrupt shadow is in effect; then
 * the vendor arms what it has for an "NMI window".
 */
void kl_next_injection(struct kl_vcpu *vcpu, struct kl_injection *inj)
{
	*inj = (struct kl_injection) { 0 };
	if (vcpu->event.valid) {
		inj->inject = true;
		inj->vector = vcpu->event.vector;
		inj->exception = vcpu->event.is_exception;
		inj->has_error = vcpu->event.has_error;
		inj->error = vcpu->event.error;
		vcpu->event.valid = false;
	} else if (vcpu->nmi_injected ||
		   (vcpu->nmi_pending && !vcpu->nmi_masked && !kl_vendor->interrupt_shadow(vcpu))) {
		/* Before external interrupts, and whatever IF says. */
		inj->nmi = true;
		if (!vcpu->nmi_injected)
			vcpu->stat.nmi_injections++;
		vcpu->nmi_injected = false;
		vcpu->nmi_pending = false;
		vcpu->nmi_masked = true;
		inj->irq_window = vcpu->irq_pending || vcpu->run->request_interrupt_window;
		return;
	} else if (vcpu->irq_pending && kl_interrupt_allowed(vcpu)) {
		inj->inject = true;
		inj->vector = vcpu->irq_vector;
		vcpu->irq_pending = false;
		vcpu->stat.irq_injections++;
		return;
	}
	inj->irq_window = vcpu->irq_pending || vcpu->run->request_interrupt_window;
	/*
	 * Only a shadow holds it back: it lasts one instruction. A masked NMI
	 * waits for the IRET, which the vendor watches; asking for the window
	 * then would exit again and again at an IRET that runs with IF=1.
	 */
	inj->nmi_window = vcpu->nmi_pending && !vcpu->nmi_masked;
}

int kl_queue_nmi(struct kl_vcpu *vcpu)
{
	vcpu->nmi_pending = true;
	return 0;
}

/*
 * Like an interrupted exception, it goes in again at the next entry
 * whatever a shadow says (an exit in the middle of delivery reports one).
 */
void kl_requeue_nmi(struct kl_vcpu *vcpu)
{
	vcpu->nmi_injected = true;
}

int kl_emulation_failed(struct kl_vcpu *vcpu, const struct kl_insn *insn)
{
	u64 bytes = 0;

	vcpu->stat.insn_emulation_fail++;
	memcpy(&bytes, insn->bytes, min(insn->len > 0 ? insn->len : 8, 8));
	kl_internal_error(vcpu, KVM_INTERNAL_ERROR_EMULATION, vcpu->rip, bytes);
	return 0;
}

/* ---- control registers and EFER ---- */

bool kl_guest_paging(struct kl_vcpu *vcpu)
{
	return vcpu->cr0 & X86_CR0_PG;
}

bool kl_guest_long_mode(struct kl_vcpu *vcpu)
{
	return vcpu->efer & EFER_LMA;
}

/* Paging-relevant bits: a change means the MMU's view is stale. */
static void paging_changed(struct kl_vcpu *vcpu, u64 old_cr0, u64 old_cr4, u64 old_efer)
{
	u64 cr0_bits = X86_CR0_PG | X86_CR0_WP, cr4_bits = X86_CR4_PAE | X86_CR4_PSE;

	if ((old_cr4 ^ vcpu->cr4) & X86_CR4_PGE) {
		vcpu->stat.tlb_flush++;
		kl_mmu_flush_tlb(vcpu);
	}
	if (((old_cr0 ^ vcpu->cr0) & cr0_bits) || ((old_cr4 ^ vcpu->cr4) & cr4_bits) ||
	    ((old_efer ^ vcpu->efer) & (EFER_NX | EFER_LMA)))
		kl_mmu_mode_changed(vcpu);
}

/* Legacy PAE paging: the mode in which the CPU keeps four PDPTEs in registers. */
static bool pae_paging(u64 cr0, u64 cr4, u64 efer)
{
	return (cr0 & X86_CR0_PG) && (cr4 & X86_CR4_PAE) && !(efer & EFER_LMA);
}

/*
 * Load the PDPTEs from the table at cr3, as the CPU does on a CR3 write in
 * PAE paging, or when a CR0 or CR4 write enters PAE paging or changes
 * PGE/PSE in it. A present entry with reserved bits set is #GP then.
 * Under nested paging the CPU does this itself.
 */
static int load_pdptrs(struct kl_vcpu *vcpu, u64 cr3)
{
	u64 pdpte[4], rsvd = GENMASK_ULL(63, kl_maxphyaddr(vcpu)) | GENMASK_ULL(8, 5) |
			     GENMASK_ULL(2, 1);

	if (kl_mmu_tdp(vcpu->vm))
		return 0;
	if (kl_read_guest(vcpu->vm, cr3 & 0xffffffe0ULL, pdpte, sizeof(pdpte)))
		return -EINVAL;
	for (int i = 0; i < 4; i++)
		if ((pdpte[i] & KL_PT_P) && (pdpte[i] & rsvd))
			return -EINVAL;
	memcpy(vcpu->pdptrs, pdpte, sizeof(pdpte));
	return 0;
}

/* CS.L: 64-bit code in long mode, and a state no CR0 write may leave or enter. */
static bool code64(struct kl_vcpu *vcpu)
{
	struct kvm_sregs sr;

	kl_vendor->get_segments(vcpu, &sr);
	return sr.cs.l;
}

int kl_set_cr0(struct kl_vcpu *vcpu, u64 val)
{
	u64 old = vcpu->cr0;

	if (val & CR0_RESERVED)
		return -EINVAL;
	if ((val & X86_CR0_PG) && !(val & X86_CR0_PE))
		return -EINVAL;
	if ((val & X86_CR0_NW) && !(val & X86_CR0_CD))
		return -EINVAL;
	/*
	 * Paging on with EFER.LME set enters long mode: it needs PAE, and it
	 * must happen from 32-bit code. Paging off leaves long mode, which
	 * 64-bit code cannot do (the CPU raises #GP for both).
	 */
	if ((val & X86_CR0_PG) && !(old & X86_CR0_PG) && (vcpu->efer & EFER_LME)) {
		if (!(vcpu->cr4 & X86_CR4_PAE) || code64(vcpu))
			return -EINVAL;
		vcpu->efer |= EFER_LMA;
	}
	if (!(val & X86_CR0_PG) && (old & X86_CR0_PG) && (vcpu->efer & EFER_LMA)) {
		if (code64(vcpu))
			return -EINVAL;
		vcpu->efer &= ~EFER_LMA;
	}
	if (pae_paging(val, vcpu->cr4, vcpu->efer) &&
	    ((val ^ old) & (X86_CR0_PG | X86_CR0_CD | X86_CR0_NW)) && load_pdptrs(vcpu, vcpu->cr3))
		return -EINVAL;
	vcpu->cr0 = val | X86_CR0_ET;
	paging_changed(vcpu, old, vcpu->cr4, vcpu->efer);
	return 0;
}

int kl_set_cr3(struct kl_vcpu *vcpu, u64 val)
{
	if (kl_guest_long_mode(vcpu) && (val & ~0x000ffffffffffff8ULL & ~0x18ULL))
		return -EINVAL;
	if (pae_paging(vcpu->cr0, vcpu->cr4, vcpu->efer) && load_pdptrs(vcpu, val))
		return -EINVAL;
	vcpu->cr3 = val;
	vcpu->stat.tlb_flush++;
	kl_mmu_load_cr3(vcpu);
	return 0;
}

/*
 * The CR4 bits this vCPU may set: OSXSAVE only when the host has XSAVE and
 * the vCPU's CPUID offers it — or, as KVM, before any CPUID is set, when
 * only the host's support counts.
 */
static bool cr4_valid(struct kl_vcpu *vcpu, u64 val)
{
	if (val & ~(KL_CR4_SUPPORTED | X86_CR4_OSXSAVE))
		return false;
	if (!(val & X86_CR4_OSXSAVE))
		return true;
	return kl_supported_xcr0() &&
	       (!vcpu->ncpuid || kl_guest_has_cpuid_bit(vcpu, KL_CPUID_1_ECX_XSAVE));
}

int kl_set_cr4(struct kl_vcpu *vcpu, u64 val)
{
	u64 old = vcpu->cr4;

	if (!cr4_valid(vcpu, val))
		return -EINVAL;
	if (kl_guest_long_mode(vcpu) && !(val & X86_CR4_PAE))
		return -EINVAL;
	if (pae_paging(vcpu->cr0, val, vcpu->efer) &&
	    ((val ^ old) & (X86_CR4_PAE | X86_CR4_PGE | X86_CR4_PSE)) && load_pdptrs(vcpu, vcpu->cr3))
		return -EINVAL;
	vcpu->cr4 = val;
	if ((val ^ old) & X86_CR4_OSXSAVE)
		kl_cpuid_update_runtime(vcpu);
	paging_changed(vcpu, vcpu->cr0, old, vcpu->efer);
	return 0;
}

/* What this guest's XCR0 may hold: what its CPUID's XSAVE leaf offers, within ours; x87 always. */
static u64 guest_supported_xcr0(struct kl_vcpu *vcpu)
{
	const struct kvm_cpuid_entry2 *e = kl_find_cpuid(vcpu, 0xd, 0);

	return ((e ? e->eax : 0) & kl_supported_xcr0()) | XFEATURE_MASK_FP;
}

int kl_set_xcr0(struct kl_vcpu *vcpu, u64 val)
{
	if (!(val & XFEATURE_MASK_FP) || (val & ~guest_supported_xcr0(vcpu)))
		return -EINVAL;
	vcpu->xcr0 = val;
	return 0;
}

/*
 * Around VMRUN (interrupts off, inside kernel_fpu_begin): the guest's XCR0
 * is the CPU's while its CR4.OSXSAVE is set, the host's again after. Returns
 * the host's XCR0 for kl_put_guest_xcr0 (0: nothing was switched).
 */
u64 kl_load_guest_xcr0(struct kl_vcpu *vcpu)
{
	u64 host;

	/* Without CR4.OSXSAVE the guest can neither use nor set XCR0: nothing to switch. */
	if (!boot_cpu_has(X86_FEATURE_OSXSAVE) || !(vcpu->cr4 & X86_CR4_OSXSAVE))
		return 0;
	host = xgetbv(XCR_XFEATURE_ENABLED_MASK);
	if (vcpu->xcr0 != host)
		xsetbv(XCR_XFEATURE_ENABLED_MASK, vcpu->xcr0);
	return host;
}

/*
 * CR4 writes always exit, so vcpu->cr4 is what the guest ran with. An XCR0
 * that is not the one loaded was set by a guest XSETBV the CPU did not
 * intercept (QEMU's SVM checks no intercept for it): the guest's, kept
 * within what its CPUID offers.
 */
void kl_put_guest_xcr0(struct kl_vcpu *vcpu, u64 host)
{
	u64 cur;

	if (!host)
		return;
	cur = xgetbv(XCR_XFEATURE_ENABLED_MASK);
	if (cur != vcpu->xcr0)
		vcpu->xcr0 = cur & guest_supported_xcr0(vcpu);
	if (cur != host)
		xsetbv(XCR_XFEATURE_ENABLED_MASK, host);
}

int kl_get_xcrs(struct kl_vcpu *vcpu, struct kvm_xcrs __user *argp)
{
	struct kvm_xcrs x = { .nr_xcrs = 1 };

	if (!kl_host_xcr0())
		x.nr_xcrs = 0;	/* as KVM: no XCRs without XSAVE */
	x.xcrs[0].xcr = XCR_XFEATURE_ENABLED_MASK;
	x.xcrs[0].value = vcpu->xcr0;
	return copy_to_user(argp, &x, sizeof(x)) ? -EFAULT : 0;
}

/* Only XCR0 exists: as KVM, the first entry for it counts and others are ignored. */
int kl_set_xcrs(struct kl_vcpu *vcpu, const struct kvm_xcrs __user *argp)
{
	struct kvm_xcrs x;

	if (copy_from_user(&x, argp, sizeof(x)))
		return -EFAULT;
	if (!kl_host_xcr0() || x.nr_xcrs > KVM_MAX_XCRS || x.flags)
		return -EINVAL;
	for (u32 i = 0; i < x.nr_xcrs; i++)
		if (x.xcrs[i].xcr == XCR_XFEATURE_ENABLED_MASK)
			return kl_set_xcr0(vcpu, x.xcrs[i].value);
	return 0;
}

int kl_set_efer(struct kl_vcpu *vcpu, u64 val)
{
	u64 old = vcpu->efer;

	if (val & ~EFER_SUPPORTED)
		return -EINVAL;
	/* LME may not change while paging is on; LMA is the CPU's to set. */
	if ((vcpu->cr0 & X86_CR0_PG) && ((val ^ old) & EFER_LME))
		return -EINVAL;
	vcpu->efer = (val & ~EFER_LMA) | (old & EFER_LMA);
	paging_changed(vcpu, vcpu->cr0, vcpu->cr4, old);
	return 0;
}

u64 kl_apic_base(struct kl_vcpu *vcpu)
{
	return vcpu->apic_base;
}

/*
 * The local APIC is userspace's; IA32_APIC_BASE is kept here so that the
 * guest and the VMM see one value (run->apic_base after every exit, where
 * QEMU learns that the guest disabled its APIC). xAPIC only: the x2APIC
 * bit, the reserved bits and a base above MAXPHYADDR are refused.
 */
bool kl_set_apic_base(struct kl_vcpu *vcpu, u64 val)
{
	u64 reserved = ~(GENMASK_ULL(kl_maxphyaddr(vcpu) - 1, 12) | MSR_IA32_APICBASE_ENABLE |
			 MSR_IA32_APICBASE_BSP);

	if (val & reserved)
		return false;
	vcpu->apic_base = val;
	return true;
}

/* ---- KVM_GET/SET_SREGS ---- */

void kl_get_sregs(struct kl_vcpu *vcpu, struct kvm_sregs *sr)
{
	memset(sr, 0, sizeof(*sr));
	kl_vendor->get_segments(vcpu, sr);
	sr->cr0 = vcpu->cr0;
	sr->cr2 = vcpu->cr2;
	sr->cr3 = vcpu->cr3;
	sr->cr4 = vcpu->cr4;
	sr->efer = vcpu->efer;
	sr->cr8 = vcpu->cr8;
	sr->apic_base = kl_apic_base(vcpu);
}

/* Reject states the CPU would refuse to run, with -EINVAL. */
static int check_sregs(struct kl_vcpu *vcpu, const struct kvm_sregs *sr)
{
	bool lma = sr->efer & EFER_LMA, lme = sr->efer & EFER_LME, pg = sr->cr0 & X86_CR0_PG;

	if ((sr->cr0 >> 32) || (pg && !(sr->cr0 & X86_CR0_PE)))
		return -EINVAL;
	if (lma != (lme && pg))
		return -EINVAL;
	/* Outside long mode CS.L must be clear, as KVM insists: QEMU's SVM runs such a state astray. */
	if (!lma && sr->cs.l)
		return -EINVAL;
	if (lma && (!(sr->cr4 & X86_CR4_PAE) || (sr->cs.l && sr->cs.db)))
		return -EINVAL;
	if (sr->efer & ~(EFER_SCE | EFER_LME | EFER_LMA | EFER_NX))
		return -EINVAL;
	if (!cr4_valid(vcpu, sr->cr4))
		return -EINVAL;
	if (lma && (sr->cr3 & ~0x000ffffffffff018ULL))
		return -EINVAL;
	if (sr->cr8 > 15)
		return -EINVAL;
	return 0;
}

int kl_set_sregs(struct kl_vcpu *vcpu, const struct kvm_sregs *sr)
{
	int r = check_sregs(vcpu, sr);

	if (r)
		return r;
	if (sr->apic_base != vcpu->apic_base && !kl_set_apic_base(vcpu, sr->apic_base))
		return -EINVAL;
	kl_vendor->set_segments(vcpu, sr);
	vcpu->cr8 = sr->cr8;
	vcpu->cr0 = sr->cr0 | X86_CR0_ET;
	vcpu->cr2 = sr->cr2;
	vcpu->cr3 = sr->cr3;
	vcpu->cr4 = sr->cr4;
	vcpu->efer = sr->efer;
	kl_cpuid_update_runtime(vcpu);
	/* As KVM: a PAE state whose PDPTEs cannot load still loads; the guest sees none present. */
	memset(vcpu->pdptrs, 0, sizeof(vcpu->pdptrs));
	if (pae_paging(vcpu->cr0, vcpu->cr4, vcpu->efer))
		load_pdptrs(vcpu, vcpu->cr3);
	kl_mmu_mode_changed(vcpu);
	kl_mmu_load_cr3(vcpu);
	return 0;
}

/*
 * The architectural state after RESET, vendor-neutral part: real mode at
 * the reset vector, paging off. The vendor resets its own (segments).
 */
void kl_vcpu_reset(struct kl_vcpu *vcpu)
{
	memset(vcpu->regs, 0, sizeof(vcpu->regs));
	vcpu->rip = 0xfff0;
	vcpu->rflags = 2;
	vcpu->cr0 = X86_CR0_ET | X86_CR0_NW | X86_CR0_CD;
	vcpu->cr2 = vcpu->cr3 = vcpu->cr4 = vcpu->efer = vcpu->cr8 = 0;
	vcpu->apic_base = 0xfee00000ULL | MSR_IA32_APICBASE_ENABLE |
			  (vcpu->id == 0 ? MSR_IA32_APICBASE_BSP : 0);
	vcpu->mp_state = KVM_MP_STATE_RUNNABLE;
	memset(vcpu->dr, 0, sizeof(vcpu->dr));
	vcpu->dr[6] = 0xffff0ff0;
	vcpu->dr[7] = 0x400;
	vcpu->msrs = (struct kl_msrs) {
		.pat = DEFAULT_PAT, .misc_enable = MSR_IA32_MISC_ENABLE_FAST_STRING,
	};
	vcpu->xcr0 = XFEATURE_MASK_FP;
	memset(&vcpu->pv, 0, sizeof(vcpu->pv));	/* kvmclock and steal time off */
	memset(&vcpu->mce, 0, sizeof(vcpu->mce));
	vcpu->mce.mcg_cap = KL_MAX_MCE_BANKS;
	memset(vcpu->fpu, 0, sizeof(*vcpu->fpu));
	vcpu->fpu->cwd = 0x37f;
	vcpu->fpu->mxcsr = 0x1f80;
	vcpu->event.valid = false;
	vcpu->triple_fault = false;
	vcpu->irq_pending = false;
	vcpu->nmi_pending = false;
	vcpu->nmi_injected = false;
	vcpu->nmi_masked = false;
	vcpu->mmio_pending = false;
	vcpu->mmio_compare = false;
	vcpu->pio_in.pending = false;
}

/* An INIT: RESET's registers, but the MSRs, x87/SSE state and IA32_APIC_BASE stay. */
void kl_vcpu_init_event(struct kl_vcpu *vcpu)
{
	struct kl_msrs msrs = vcpu->msrs;
	u64 mcg_cap = vcpu->mce.mcg_cap, mcg_ctl = vcpu->mce.mcg_ctl;
	struct fxregs_state fpu = *vcpu->fpu;
	u64 apic_base = vcpu->apic_base;

	kl_vendor->vcpu_reset(vcpu);
	kl_vcpu_reset(vcpu);
	vcpu->msrs = msrs;
	vcpu->mce.mcg_cap = mcg_cap;		/* the banks' contents are lost */
	vcpu->mce.mcg_ctl = mcg_ctl;
	*vcpu->fpu = fpu;
	vcpu->apic_base = apic_base;
	kl_mmu_mode_changed(vcpu);
}

/* ---- KVM_GET/SET_FPU: the FXSAVE image in KVM's layout ---- */

void kl_get_fpu(struct kl_vcpu *vcpu, struct kvm_fpu *f)
{
	const struct fxregs_state *fx = vcpu->fpu;

	memset(f, 0, sizeof(*f));
	memcpy(f->fpr, fx->st_space, sizeof(f->fpr));
	f->fcw = fx->cwd;
	f->fsw = fx->swd;
	f->ftwx = fx->twd;
	f->last_opcode = fx->fop;
	f->last_ip = fx->rip;
	f->last_dp = fx->rdp;
	memcpy(f->xmm, fx->xmm_space, sizeof(f->xmm));
	f->mxcsr = fx->mxcsr;
}

/* FXSAVE's MXCSR_MASK (0 means the CPU's default, 0xffbf: no DAZ). */
u32 kl_mxcsr_mask(void)
{
	static u32 mask;
	struct fxregs_state *fx;

	if (READ_ONCE(mask))
		return mask;
	fx = kzalloc(sizeof(*fx), GFP_KERNEL);	/* 512 bytes: aligned as FXSAVE needs */
	if (!fx)
		return 0xffbf;
	kernel_fpu_begin();
	asm volatile("fxsave64 %0" : "=m"(*fx));
	kernel_fpu_end();
	WRITE_ONCE(mask, fx->mxcsr_mask ? fx->mxcsr_mask : 0xffbf);
	kfree(fx);
	return mask;
}

/*
 * An MXCSR with a bit the CPU does not have would fault the FXRSTOR at the
 * next entry, in the host: refused here. The mask is the CPU's own.
 */
int kl_set_fpu(struct kl_vcpu *vcpu, const struct kvm_fpu *f)
{
	struct fxregs_state *fx = vcpu->fpu;

	if (f->mxcsr & ~kl_mxcsr_mask())
		return -EINVAL;
	memcpy(fx->st_space, f->fpr, sizeof(f->fpr));
	fx->cwd = f->fcw;
	fx->swd = f->fsw;
	fx->twd = f->ftwx;
	fx->fop = f->last_opcode;
	fx->rip = f->last_ip;
	fx->rdp = f->last_dp;
	memcpy(fx->xmm_space, f->xmm, sizeof(f->xmm));
	fx->mxcsr = f->mxcsr;
	return 0;
}

/* ---- one trip into the guest ---- */

int kl_x86_run_once(struct kl_vcpu *vcpu)
{
	if (!kl_mmu_mode_supported(vcpu)) {
		kl_internal_error(vcpu, KVM_INTERNAL_ERROR_EMULATION, vcpu->rip, vcpu->cr0);
		return 0;
	}
	if (vcpu->triple_fault)
		return kl_handle_shutdown(vcpu);
	kl_pv_clock_check(vcpu);
	return kl_vendor->run(vcpu);
}
