// SPDX-License-Identifier: GPL-2.0
/*
 * The MSRs a guest may read and write (RDMSR/WRMSR always exit) and that a
 * VMM saves and restores with KVM_GET/SET_MSRS. Their values live in
 * struct kl_vcpu (vcpu->msrs); the vendor loads them into the hardware at
 * entry and reads back those the guest changes without an exit (SWAPGS).
 * FS and GS bases are the segments' own, kept by the vendor. Anything else
 * raises #GP, as an unknown MSR does on the CPU (and KVM with ignore_msrs=0).
 *
 * KVM's paravirtual MSRs (kvmclock, old and new numbers, and steal time)
 * are pvclock.c's.
 *
 * MTRRs are kept, checked as the CPU checks them, and not applied: guest
 * memory is ordinary write-back host memory whatever the guest asks for
 * (as under KVM without assigned devices). The TSC is the host's plus a
 * per-vCPU offset that a write sets (the vendor applies it to RDTSC too).
 */
#include <asm/msr-index.h>
#include <asm/msr.h>
#include <asm/kvm_para.h>
#include <linux/uaccess.h>
#include <linux/slab.h>
#include "vendor.h"

#define KL_NR_VAR_MTRR		8
#define MTRR_CAP_VALUE		(0x500 | KL_NR_VAR_MTRR)	/* WC, fixed ranges, 8 variable */
#define MTRR_FIXED_COUNT	11

/* What KVM_GET_MSR_INDEX_LIST reports: every MSR below is read and written in full. */
static const u32 msrs_to_save[] = {
	MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP, MSR_IA32_SYSENTER_EIP,
	MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_SYSCALL_MASK, MSR_KERNEL_GS_BASE,
	MSR_FS_BASE, MSR_GS_BASE, MSR_EFER, MSR_IA32_CR_PAT, MSR_IA32_TSC, MSR_IA32_TSC_ADJUST,
	MSR_IA32_APICBASE, MSR_IA32_MISC_ENABLE, MSR_MTRRcap, MSR_MTRRdefType,
	MSR_MTRRfix64K_00000, MSR_MTRRfix16K_80000, MSR_MTRRfix16K_A0000,
	MSR_MTRRfix4K_C0000, MSR_MTRRfix4K_C8000, MSR_MTRRfix4K_D0000, MSR_MTRRfix4K_D8000,
	MSR_MTRRfix4K_E0000, MSR_MTRRfix4K_E8000, MSR_MTRRfix4K_F0000, MSR_MTRRfix4K_F8000,
	0x200, 0x201, 0x202, 0x203, 0x204, 0x205, 0x206, 0x207,	/* MTRRphysBase/Mask 0-7 */
	0x208, 0x209, 0x20a, 0x20b, 0x20c, 0x20d, 0x20e, 0x20f,
	MSR_IA32_MCG_CAP, MSR_IA32_MCG_STATUS, MSR_IA32_MCG_CTL, MSR_IA32_UCODE_REV,
	MSR_KVM_WALL_CLOCK, MSR_KVM_SYSTEM_TIME, MSR_KVM_WALL_CLOCK_NEW, MSR_KVM_SYSTEM_TIME_NEW,
	MSR_KVM_STEAL_TIME, MSR_PLATFORM_INFO, MSR_IA32_POWER_CTL,
};

/*
 * Feature MSRs (KVM_GET_MSR_FEATURE_INDEX_LIST, KVM_GET_MSRS on the system
 * fd): what a VMM may give its vCPUs. Only the microcode revision, which
 * kvmlab's vCPUs report as 0.
 */
static const u32 feature_msrs[] = { MSR_IA32_UCODE_REV };

#define KL_MAX_IO_MSRS	256	/* as KVM's MAX_IO_MSRS */

static bool canonical(u64 val)
{
	return (s64)(val << 16) >> 16 == (s64)val;
}

/* The fixed-range MTRRs in the order of struct kl_msrs' array, or -1. */
static int fixed_mtrr_index(u32 msr)
{
	switch (msr) {
	case MSR_MTRRfix64K_00000: return 0;
	case MSR_MTRRfix16K_80000: return 1;
	case MSR_MTRRfix16K_A0000: return 2;
	}
	if (msr >= MSR_MTRRfix4K_C0000 && msr <= MSR_MTRRfix4K_F8000)
		return 3 + msr - MSR_MTRRfix4K_C0000;
	return -1;
}

static u64 *msr_slot(struct kl_vcpu *vcpu, u32 msr)
{
	struct kl_msrs *m = &vcpu->msrs;
	int fixed = fixed_mtrr_index(msr);

	if (fixed >= 0)
		return &m->mtrr_fixed[fixed];
	if (msr >= 0x200 && msr < 0x200 + 2 * KL_NR_VAR_MTRR)
		return &m->mtrr_var[msr - 0x200];
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
	case MSR_MTRRdefType: return &m->mtrr_deftype;
	case MSR_IA32_POWER_CTL: return &m->power_ctl;	/* kept, as KVM: no power to manage */
	}
	return NULL;
}

static bool valid_memtype(u64 t)
{
	return t == 0 || t == 1 || t == 4 || t == 5 || t == 6;	/* UC WC WT WP WB */
}

/* Each of the 8 bytes a memory type: PAT's (which adds UC-, 7) or a fixed MTRR's. */
static bool valid_types(u64 val, bool pat)
{
	for (int i = 0; i < 8; i++, val >>= 8)
		if (!valid_memtype(val & 0xff) && !(pat && (val & 0xff) == 7))
			return false;
	return true;
}

/* The value check the CPU makes on a write (#GP otherwise); true when fine. */
static bool valid_value(struct kl_vcpu *vcpu, u32 msr, u64 val)
{
	u64 phys = GENMASK_ULL(kl_maxphyaddr(vcpu) - 1, 12);

	if ((msr == MSR_LSTAR || msr == MSR_CSTAR || msr == MSR_KERNEL_GS_BASE ||
	     msr == MSR_FS_BASE || msr == MSR_GS_BASE) && !canonical(val))
		return false;
	if (msr == MSR_IA32_CR_PAT)
		return valid_types(val, true);
	if (fixed_mtrr_index(msr) >= 0)
		return valid_types(val, false);
	if (msr == MSR_MTRRdefType)
		return !(val & ~0xcffULL) && valid_memtype(val & 0xff);
	if (msr >= 0x200 && msr < 0x200 + 2 * KL_NR_VAR_MTRR)	/* even: base, odd: mask */
		return msr & 1 ? !(val & ~(phys | BIT_ULL(11))) :
				 !(val & ~(phys | 0xff)) && valid_memtype(val & 0xff);
	return true;
}

/* host: KVM_GET_MSRS rather than the guest's RDMSR. */
static bool get_msr(struct kl_vcpu *vcpu, u32 msr, u64 *val, bool host)
{
	u64 *slot = msr_slot(vcpu, msr);
	struct kvm_sregs sr;
	int r;

	if (slot) {
		*val = *slot;
		return true;
	}
	switch (msr) {
	case MSR_EFER: *val = vcpu->efer; break;
	case MSR_FS_BASE: case MSR_GS_BASE:
		kl_vendor->get_segments(vcpu, &sr);
		*val = msr == MSR_FS_BASE ? sr.fs.base : sr.gs.base;
		break;
	case MSR_IA32_TSC: *val = rdtsc() + vcpu->msrs.tsc_offset; break;
	case MSR_IA32_TSC_ADJUST: *val = vcpu->msrs.tsc_adjust; break;
	case MSR_IA32_APICBASE: *val = kl_apic_base(vcpu); break;
	case MSR_IA32_MISC_ENABLE: *val = vcpu->msrs.misc_enable; break;
	case MSR_MTRRcap: *val = MTRR_CAP_VALUE; break;
	case MSR_IA32_UCODE_REV: *val = 0; break;
	case MSR_PLATFORM_INFO:
		/* KVM_CAP_MSR_PLATFORM_INFO: the VM decides whether its guest may read it. */
		if (!host && READ_ONCE(vcpu->vm->platform_info_hidden))
			return false;
		*val = vcpu->msrs.platform_info;
		break;
	default:
		r = kl_pv_get_msr(vcpu, msr, val, host);
		return r >= 0 ? r : kl_mce_get_msr(vcpu, msr, val, host);
	}
	return true;
}

bool kl_get_msr(struct kl_vcpu *vcpu, u32 msr, u64 *val)
{
	return get_msr(vcpu, msr, val, false);
}

bool kl_host_get_msr(struct kl_vcpu *vcpu, u32 msr, u64 *val)
{
	return get_msr(vcpu, msr, val, true);
}

/*
 * host: KVM_SET_MSRS rather than the guest's WRMSR. Only read-only MSRs
 * differ: userspace may restore the value they already have.
 */
/*
 * Userspace sets the TSC of each vCPU in turn (at creation, reset, or the
 * end of a migration) with the same value meant for one moment: a write of
 * the value the last one had, within a second of it, takes that write's
 * offset instead of its own, so an SMP guest never sees its CPUs' TSCs
 * apart. KVM's kvm_synchronize_tsc() matches the same way (and also values
 * that differ by the time elapsed, which a VMM restoring TSCs read at
 * different moments writes; those are taken as they come here).
 */
void kl_tsc_host_write(struct kl_vcpu *vcpu, u64 val)
{
	struct kl_vm *vm = vcpu->vm;
	u64 now = ktime_get_ns();
	s64 offset;

	spin_lock(&vm->tsc_lock);
	if (vm->tsc_sync_ns && val == vm->tsc_sync_val && now - vm->tsc_sync_ns < NSEC_PER_SEC) {
		offset = vm->tsc_sync_offset;
	} else {
		offset = val - rdtsc();
		vm->tsc_sync_val = val;
		vm->tsc_sync_offset = offset;
	}
	vm->tsc_sync_ns = now;
	spin_unlock(&vm->tsc_lock);
	vcpu->msrs.tsc_offset = offset;
}

static bool set_msr(struct kl_vcpu *vcpu, u32 msr, u64 val, bool host)
{
	u64 *slot = msr_slot(vcpu, msr), cur;
	struct kvm_sregs sr;
	int r;

	if (!valid_value(vcpu, msr, val))
		return false;
	if (slot) {
		*slot = val;
		return true;
	}
	switch (msr) {
	case MSR_EFER:
		return kl_set_efer(vcpu, val) == 0;
	case MSR_IA32_APICBASE:
		return kl_set_apic_base(vcpu, val);
	case MSR_FS_BASE: case MSR_GS_BASE:
		kl_vendor->get_segments(vcpu, &sr);
		if (msr == MSR_FS_BASE)
			sr.fs.base = val;
		else
			sr.gs.base = val;
		kl_vendor->set_segments(vcpu, &sr);
		return true;
	/*
	 * TSC and TSC_ADJUST move together when the guest writes either (the
	 * SDM's IA32_TSC_ADJUST); userspace sets each alone, as KVM, so that
	 * restoring both restores both.
	 */
	case MSR_IA32_TSC:
		if (host) {
			kl_tsc_host_write(vcpu, val);
			return true;
		}
		cur = rdtsc();
		vcpu->msrs.tsc_adjust += val - (cur + vcpu->msrs.tsc_offset);
		vcpu->msrs.tsc_offset = val - cur;
		return true;
	case MSR_IA32_TSC_ADJUST:
		if (!host)
			vcpu->msrs.tsc_offset += val - vcpu->msrs.tsc_adjust;
		vcpu->msrs.tsc_adjust = val;
		return true;
	case MSR_IA32_MISC_ENABLE:
		/*
		 * Kept, and without effect but one: once userspace turned off
		 * KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT, ENABLE_MWAIT shows in
		 * CPUID (given SSE3, as KVM asks).
		 */
		cur = vcpu->msrs.misc_enable;
		vcpu->msrs.misc_enable = val;
		if (!kl_has_quirk(vcpu->vm, KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT) &&
		    ((cur ^ val) & MSR_IA32_MISC_ENABLE_MWAIT)) {
			if (!kl_guest_has_cpuid_bit(vcpu, 1U << 0)) {	/* SSE3 */
				vcpu->msrs.misc_enable = cur;
				return false;
			}
			kl_cpuid_update_runtime(vcpu);
		}
		return true;
	case MSR_IA32_UCODE_REV:
		return true;	/* accepted and ignored, as on KVM */
	case MSR_PLATFORM_INFO:
		/* Userspace's to set, not the guest's; no CPUID faulting (bit 31) here. */
		if (!host || (val & MSR_PLATFORM_INFO_CPUID_FAULT))
			return false;
		vcpu->msrs.platform_info = val;
		return true;
	case MSR_MTRRcap:
		return host && get_msr(vcpu, msr, &cur, true) && cur == val;
	}
	r = kl_pv_set_msr(vcpu, msr, val, host);
	return r >= 0 ? r : kl_mce_set_msr(vcpu, msr, val, host);
}

bool kl_set_msr(struct kl_vcpu *vcpu, u32 msr, u64 val)
{
	return set_msr(vcpu, msr, val, false);
}

/*
 * KVM_GET_MSR_INDEX_LIST: too small a list gets -E2BIG and the count
 * needed. The MCE banks (0x400 on) are not listed, as on KVM: how many
 * there are is KVM_X86_SETUP_MCE's choice, per vCPU.
 */
static int msr_list(struct kvm_msr_list __user *argp, const u32 *msrs, u32 n)
{
	struct kvm_msr_list head;

	if (copy_from_user(&head, argp, sizeof(head)))
		return -EFAULT;
	if (put_user(n, &argp->nmsrs))
		return -EFAULT;
	if (head.nmsrs < n)
		return -E2BIG;
	return copy_to_user(argp->indices, msrs, n * sizeof(*msrs)) ? -EFAULT : 0;
}

int kl_get_msr_index_list(struct kvm_msr_list __user *argp)
{
	return msr_list(argp, msrs_to_save, ARRAY_SIZE(msrs_to_save));
}

int kl_get_msr_feature_index_list(struct kvm_msr_list __user *argp)
{
	return msr_list(argp, feature_msrs, ARRAY_SIZE(feature_msrs));
}

/* A listed feature MSR reads as kvmlab's vCPUs start with it: zero, for each so far. */
static bool get_feature_msr(u32 msr, u64 *val)
{
	for (int i = 0; i < ARRAY_SIZE(feature_msrs); i++) {
		if (feature_msrs[i] == msr) {
			*val = 0;
			return true;
		}
	}
	return false;
}

/* KVM_GET_MSRS on the system fd: feature MSRs only; the count done, as for a vCPU. */
int kl_get_feature_msrs(struct kvm_msrs __user *argp)
{
	struct kvm_msrs head;
	struct kvm_msr_entry e;
	u32 done;

	if (copy_from_user(&head, argp, sizeof(head)))
		return -EFAULT;
	if (head.nmsrs >= KL_MAX_IO_MSRS)
		return -E2BIG;
	for (done = 0; done < head.nmsrs; done++) {
		if (copy_from_user(&e, &argp->entries[done], sizeof(e)))
			return -EFAULT;
		if (!get_feature_msr(e.index, &e.data))
			break;
		if (copy_to_user(&argp->entries[done], &e, sizeof(e)))
			return -EFAULT;
	}
	return done;
}

/*
 * KVM_GET_MSRS / KVM_SET_MSRS: entries in order, stopping at the first the
 * CPU would refuse; the return value is how many were done (a VMM checks
 * that it is all of them).
 */
int kl_vcpu_msrs(struct kl_vcpu *vcpu, struct kvm_msrs __user *argp, bool set)
{
	struct kvm_msr_entry *e;
	struct kvm_msrs head;
	int done = 0, r = 0;

	if (copy_from_user(&head, argp, sizeof(head)))
		return -EFAULT;
	if (head.nmsrs >= KL_MAX_IO_MSRS)
		return -E2BIG;
	e = memdup_user(argp->entries, head.nmsrs * sizeof(*e));
	if (IS_ERR(e))
		return PTR_ERR(e);
	for (; done < head.nmsrs; done++)
		if (set ? !set_msr(vcpu, e[done].index, e[done].data, true) :
			  !get_msr(vcpu, e[done].index, &e[done].data, true))
			break;
	if (!set && copy_to_user(argp->entries, e, done * sizeof(*e)))
		r = -EFAULT;
	kfree(e);
	return r ? r : done;
}
