// SPDX-License-Identifier: GPL-2.0
/*
 * The MSRs a guest may read and write (RDMSR/WRMSR always exit). Their
 * values live in struct kl_vcpu (vcpu->msrs); the vendor loads them into
 * the hardware at entry and reads back those the guest changes without an
 * exit (SWAPGS). FS and GS bases are the segments' own, kept by the vendor.
 * Anything else raises #GP, as an unknown MSR does on the CPU.
 */
#include <asm/msr-index.h>
#include <asm/msr.h>
#include "vendor.h"

static bool canonical(u64 val)
{
	return (s64)(val << 16) >> 16 == (s64)val;
}

static u64 *msr_slot(struct kl_vcpu *vcpu, u32 msr)
{
	struct kl_msrs *m = &vcpu->msrs;

	switch (msr) {
	case MSR_STAR: return &m->star;
	case MSR_LSTAR: return &m->lstar;
	case MSR_CSTAR: return &m->cstar;
	case MSR_SYSCALL_MASK: return &m->sfmask;
	case MSR_KERNEL_GS_BASE: return &m->kernel_gs_base;
	case MSR_IA32_SYSENTER_CS: return &m->sysenter_cs;
	case MSR_IA32_SYSENTER_ESP: return &m->sysenter_esp;
	case MSR_IA32_SYSENTER_EIP: return &m->sysenter_eip;
	case MSR_IA32_CR_PAT: return &m->pat;
	}
	return NULL;
}

/* Addresses the CPU will jump to or load must be canonical (else #GP). */
static bool needs_canonical(u32 msr)
{
	return msr == MSR_LSTAR || msr == MSR_CSTAR || msr == MSR_KERNEL_GS_BASE ||
	       msr == MSR_FS_BASE || msr == MSR_GS_BASE;
}

static u64 *segment_base(struct kvm_sregs *sr, u32 msr)
{
	return msr == MSR_FS_BASE ? &sr->fs.base : &sr->gs.base;
}

bool kl_get_msr(struct kl_vcpu *vcpu, u32 msr, u64 *val)
{
	u64 *slot = msr_slot(vcpu, msr);
	struct kvm_sregs sr;

	if (slot) {
		*val = *slot;
		return true;
	}
	switch (msr) {
	case MSR_EFER: *val = vcpu->efer; break;
	case MSR_FS_BASE: case MSR_GS_BASE:
		kl_vendor->get_segments(vcpu, &sr);
		*val = *segment_base(&sr, msr);
		break;
	case MSR_IA32_TSC: *val = rdtsc(); break;
	case MSR_IA32_APICBASE: *val = kl_apic_base(vcpu); break;
	case MSR_IA32_MISC_ENABLE: *val = MSR_IA32_MISC_ENABLE_FAST_STRING; break;
	case MSR_MTRRcap: case MSR_MTRRdefType: case MSR_IA32_MCG_CAP:
	case MSR_IA32_MCG_STATUS: case MSR_IA32_UCODE_REV: *val = 0; break;
	default: return false;
	}
	return true;
}

bool kl_set_msr(struct kl_vcpu *vcpu, u32 msr, u64 val)
{
	u64 *slot = msr_slot(vcpu, msr);
	struct kvm_sregs sr;

	if (needs_canonical(msr) && !canonical(val))
		return false;
	if (slot) {
		*slot = val;
		return true;
	}
	switch (msr) {
	case MSR_EFER:
		return kl_set_efer(vcpu, val) == 0;
	case MSR_FS_BASE: case MSR_GS_BASE:
		kl_vendor->get_segments(vcpu, &sr);
		*segment_base(&sr, msr) = val;
		kl_vendor->set_segments(vcpu, &sr);
		return true;
	case MSR_IA32_MISC_ENABLE: case MSR_MTRRdefType: case MSR_IA32_UCODE_REV:
		return true;	/* accepted and ignored */
	}
	return false;
}
