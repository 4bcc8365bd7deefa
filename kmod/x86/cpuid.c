// SPDX-License-Identifier: GPL-2.0
/*
 * CPUID: what a guest may be told it has (KVM_GET_SUPPORTED_CPUID: the
 * host's bits under kvmlab's policy, <kvmlab/x86.h>, which the harness
 * applies to Linux KVM's answer too), what userspace set for this vCPU
 * (KVM_SET_CPUID2), and the lookup a CPUID exit or the walker makes.
 */
#include <linux/kvm.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <asm/fpu/xcr.h>
#include <asm/processor.h>
#include <kvmlab/pv_mmu.h>
#include "vendor.h"

const struct kvm_cpuid_entry2 *kl_find_cpuid(struct kl_vcpu *vcpu, u32 func, u32 index)
{
	for (int i = 0; i < vcpu->ncpuid; i++) {
		const struct kvm_cpuid_entry2 *e = &vcpu->cpuid[i];

		if (e->function == func &&
		    (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == index))
			return e;
	}
	return NULL;
}

/* The guest's MAXPHYADDR, as its CPUID says (36 without leaf 0x80000008). */
int kl_maxphyaddr(struct kl_vcpu *vcpu)
{
	const struct kvm_cpuid_entry2 *e = kl_find_cpuid(vcpu, 0x80000008, 0);

	return e ? (e->eax & 0xff) : 36;
}

bool kl_cpuid_pv_leaf(struct kl_vcpu *vcpu, u32 func, u32 *regs)
{
	if (!vcpu->vm->mmu->pv_mmu)
		return false;
	if (func == KL_CPUID_PV_BASE) {
		regs[0] = KL_CPUID_PV_FEATURES;
		memcpy(&regs[1], KL_CPUID_PV_SIGNATURE, 4);
		memcpy(&regs[2], KL_CPUID_PV_SIGNATURE + 4, 4);
		memcpy(&regs[3], KL_CPUID_PV_SIGNATURE + 8, 4);
		return true;
	}
	if (func == KL_CPUID_PV_FEATURES) {
		regs[0] = KL_PV_FEATURE_MMU;
		regs[1] = KL_HC_PV_MMU;
		regs[2] = KL_PV_MMU_MAX_OPS;
		regs[3] = 0;
		return true;
	}
	return false;
}

/* The host's XCR0, or 0 when it has no XSAVE (then neither has the guest). */
u64 kl_host_xcr0(void)
{
	return boot_cpu_has(X86_FEATURE_OSXSAVE) ? xgetbv(XCR_XFEATURE_ENABLED_MASK) : 0;
}

/* What a guest's XCR0 may hold: x87 and SSE, when the host has them in XSAVE. */
u64 kl_supported_xcr0(void)
{
	return kl_host_xcr0() & KL_XCR0_SUPPORTED;
}

/*
 * The CPUID bits that follow the vCPU's state, as KVM keeps them
 * (kvm_update_cpuid_runtime): OSXSAVE mirrors CR4.OSXSAVE; MWAIT follows
 * IA32_MISC_ENABLE's ENABLE_MWAIT once userspace turned off the quirk that
 * ignores it (KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT).
 */
void kl_cpuid_update_runtime(struct kl_vcpu *vcpu)
{
	struct kvm_cpuid_entry2 *e = (struct kvm_cpuid_entry2 *)kl_find_cpuid(vcpu, 1, 0);

	if (!e)
		return;
	e->ecx &= ~KL_CPUID_1_ECX_OSXSAVE;
	if ((e->ecx & KL_CPUID_1_ECX_XSAVE) && (vcpu->cr4 & X86_CR4_OSXSAVE))
		e->ecx |= KL_CPUID_1_ECX_OSXSAVE;
	if (!kl_has_quirk(vcpu->vm, KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT)) {
		e->ecx &= ~KL_CPUID_1_ECX_MWAIT;
		if (vcpu->msrs.misc_enable & MSR_IA32_MISC_ENABLE_MWAIT)
			e->ecx |= KL_CPUID_1_ECX_MWAIT;
	}
}

bool kl_guest_has_cpuid_bit(struct kl_vcpu *vcpu, u32 ecx1_bit)
{
	const struct kvm_cpuid_entry2 *e = kl_find_cpuid(vcpu, 1, 0);

	return e && (e->ecx & ecx1_bit);
}

/* Only features the hypervisor handles: see the policy's comment in <kvmlab/x86.h>. */
static void supported_entry(struct kvm_cpuid_entry2 *e, u32 func, u32 index)
{
	e->function = func;
	e->index = index;
	e->flags = 0;
	cpuid_count(func, index, &e->eax, &e->ebx, &e->ecx, &e->edx);
	switch (func) {
	case 0:
		e->eax = min_t(u32, e->eax, KL_CPUID_MAX_BASIC);
		break;
	case 1:
		e->ecx &= KL_CPUID_1_ECX_KEEP;
		if (!kl_host_xcr0())
			e->ecx &= ~KL_CPUID_1_ECX_XSAVE;
		e->ecx |= KL_CPUID_1_ECX_HYPERVISOR;
		/* The local APIC is userspace's to emulate (as KVM reports it). */
		e->edx = (e->edx & ~KL_CPUID_1_EDX_DROP) | KL_CPUID_1_EDX_APIC;
		e->ebx &= 0xffff;	/* no APIC ID, no logical-CPU count */
		break;
	case 7:
		e->flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
		e->eax = 0;
		e->ebx &= KL_CPUID_7_EBX_KEEP;
		e->ecx = 0;
		e->edx = 0;
		break;
	case 0xd:
		/* x87 and SSE: the legacy area and the header, whatever XCR0 holds. */
		e->flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
		e->eax = index == 0 ? kl_supported_xcr0() : 0;
		e->ebx = e->ecx = index == 0 ? KL_XSAVE_LEGACY_SIZE : 0;
		e->edx = 0;
		break;
	case 0x80000000:
		e->eax = min_t(u32, e->eax, KL_CPUID_MAX_EXT);
		break;
	case 0x80000001:
		e->ecx &= KL_CPUID_E1_ECX_KEEP;
		e->edx &= KL_CPUID_E1_EDX_KEEP;
		break;
	case 0x80000008:
		e->ebx = 0;
		e->ecx = 0;
		break;
	}
}

static void hypervisor_entry(struct kvm_cpuid_entry2 *e, u32 func)
{
	*e = (struct kvm_cpuid_entry2) { .function = func };
	if (func == KL_CPUID_HV_BASE) {
		e->eax = KL_CPUID_HV_MAX;
		memcpy(&e->ebx, KL_CPUID_SIGNATURE, 4);
		memcpy(&e->ecx, KL_CPUID_SIGNATURE + 4, 4);
		memcpy(&e->edx, KL_CPUID_SIGNATURE + 8, 4);
	} else {
		e->eax = KL_CPUID_HV_FEATURES;
	}
}

int kl_get_supported_cpuid(struct kvm_cpuid2 __user *argp)
{
	static const u32 leaves[] = { 0, 1, 7, 0xd, 0xd, KL_CPUID_HV_BASE, KL_CPUID_HV_MAX,
				      0x80000000, 0x80000001, 0x80000002, 0x80000003, 0x80000004,
				      0x80000008 };
	struct kvm_cpuid2 head;
	struct kvm_cpuid_entry2 e;
	u32 n = 0, max_basic = cpuid_eax(0), max_ext = cpuid_eax(0x80000000);

	if (copy_from_user(&head, argp, sizeof(head)))
		return -EFAULT;
	if (head.nent < ARRAY_SIZE(leaves))
		return -E2BIG;
	for (int i = 0; i < ARRAY_SIZE(leaves); i++) {
		u32 f = leaves[i];

		if (f >= KL_CPUID_HV_BASE && f <= KL_CPUID_HV_MAX)
			hypervisor_entry(&e, f);
		else if ((f < 0x80000000 && f > max_basic) || (f >= 0x80000000 && f > max_ext) ||
			 (f == 0xd && !kl_host_xcr0()))
			continue;
		else	/* 0xd twice: subleaves 0 and 1 */
			supported_entry(&e, f, f == 0xd && i > 0 && leaves[i - 1] == 0xd);
		if (copy_to_user(&argp->entries[n++], &e, sizeof(e)))
			return -EFAULT;
	}
	if (put_user(n, &argp->nent))
		return -EFAULT;
	return 0;
}

/* All or nothing: a table that cannot be read whole leaves the old one. */
int kl_set_cpuid2(struct kl_vcpu *vcpu, struct kvm_cpuid2 __user *argp)
{
	struct kvm_cpuid_entry2 *entries;
	struct kvm_cpuid2 head;

	if (copy_from_user(&head, argp, sizeof(head)))
		return -EFAULT;
	if (head.nent > KL_MAX_CPUID)
		return -E2BIG;
	entries = memdup_user(argp->entries, head.nent * sizeof(*entries));
	if (IS_ERR(entries))
		return PTR_ERR(entries);
	/*
	 * Once the guest has run, its CPU cannot change under it: as KVM
	 * (since 5.16), only the same table again is accepted.
	 */
	if (vcpu->has_run && (head.nent != vcpu->ncpuid ||
			      memcmp(vcpu->cpuid, entries, head.nent * sizeof(*entries)))) {
		kfree(entries);
		return -EINVAL;
	}
	memcpy(vcpu->cpuid, entries, head.nent * sizeof(*entries));
	vcpu->ncpuid = head.nent;
	kfree(entries);
	if (!vcpu->has_run)
		kl_cpuid_update_runtime(vcpu);
	return 0;
}

/* KVM_GET_CPUID2: the table as set; -E2BIG with nent = what is needed. */
int kl_get_cpuid2(struct kl_vcpu *vcpu, struct kvm_cpuid2 __user *argp)
{
	struct kvm_cpuid2 head;

	if (copy_from_user(&head, argp, sizeof(head)))
		return -EFAULT;
	if (head.nent < vcpu->ncpuid) {
		head.nent = vcpu->ncpuid;
		return put_user(head.nent, &argp->nent) ? -EFAULT : -E2BIG;
	}
	if (copy_to_user(argp->entries, vcpu->cpuid, vcpu->ncpuid * sizeof(vcpu->cpuid[0])) ||
	    put_user((u32)vcpu->ncpuid, &argp->nent))
		return -EFAULT;
	return 0;
}
