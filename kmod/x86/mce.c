// SPDX-License-Identifier: GPL-2.0
/*
 * The machine-check architecture, as KVM offers it: no bank is backed by
 * hardware. A vCPU starts with KL_MAX_MCE_BANKS banks and no MCG_CTL (as
 * on KVM); a VMM sets MCG_CAP up (KVM_X86_SETUP_MCE: how many banks, MCG_CTL
 * present or not), saves and restores every bank's MSRs, and may
 * inject a machine check (KVM_X86_SET_MCE) — QEMU does that when host
 * memory behind the guest fails. Guest RDMSR/WRMSR see the same registers,
 * with the CPU's rules on what may be written.
 */
#include <asm/mce.h>
#include <asm/msr-index.h>
#include <asm/trapnr.h>
#include <linux/uaccess.h>
#include "vendor.h"

#define MCG_CAP_SUPPORTED	(MCG_CTL_P | MCG_SER_P)

/* The MCG_CAP feature bits offered; the bank limit is KVM_CAP_MCE's value. */
u64 kl_mce_cap_supported(void)
{
	return MCG_CAP_SUPPORTED;
}

static unsigned int nbanks(struct kl_vcpu *vcpu)
{
	return vcpu->mce.mcg_cap & MCG_BANKCNT_MASK;
}

int kl_setup_mce(struct kl_vcpu *vcpu, const u64 __user *argp)
{
	u64 cap;

	if (get_user(cap, argp))
		return -EFAULT;
	if (!(cap & MCG_BANKCNT_MASK) || (cap & MCG_BANKCNT_MASK) > KL_MAX_MCE_BANKS ||
	    (cap & ~(MCG_CAP_SUPPORTED | MCG_BANKCNT_MASK)))
		return -EINVAL;
	vcpu->mce.mcg_cap = cap;
	vcpu->mce.mcg_ctl = (cap & MCG_CTL_P) ? ~0ULL : 0;
	for (unsigned int i = 0; i < nbanks(vcpu); i++)
		vcpu->mce.banks[i][0] = ~0ULL;		/* MCi_CTL: every error reported */
	return 0;
}

/* MSRs 0x400 + 4i .. +3: the bank's CTL, STATUS, ADDR, MISC; or NULL. */
static u64 *bank_reg(struct kl_vcpu *vcpu, u32 msr)
{
	u32 i = (msr - MSR_IA32_MC0_CTL) / 4;

	if (msr < MSR_IA32_MC0_CTL || i >= nbanks(vcpu))
		return NULL;
	return &vcpu->mce.banks[i][(msr - MSR_IA32_MC0_CTL) % 4];
}

/* host: KVM_GET_MSRS, which reads MCG_CTL even when MCG_CAP has none (as KVM). */
bool kl_mce_get_msr(struct kl_vcpu *vcpu, u32 msr, u64 *val, bool host)
{
	u64 *reg = bank_reg(vcpu, msr);

	switch (msr) {
	case MSR_IA32_MCG_CAP: *val = vcpu->mce.mcg_cap; return true;
	case MSR_IA32_MCG_STATUS: *val = vcpu->mce.mcg_status; return true;
	case MSR_IA32_MCG_CTL:
		*val = vcpu->mce.mcg_ctl;
		return host || (vcpu->mce.mcg_cap & MCG_CTL_P);
	}
	if (!reg)
		return false;
	*val = *reg;
	return true;
}

/* host: KVM_SET_MSRS, which may restore what a guest may not write. */
bool kl_mce_set_msr(struct kl_vcpu *vcpu, u32 msr, u64 val, bool host)
{
	u64 *reg = bank_reg(vcpu, msr);

	switch (msr) {
	case MSR_IA32_MCG_CAP:
		return host && val == vcpu->mce.mcg_cap;
	case MSR_IA32_MCG_STATUS:
		vcpu->mce.mcg_status = val;
		return true;
	case MSR_IA32_MCG_CTL:
		/* Without MCG_CTL, userspace may still restore its zero. */
		if (!(vcpu->mce.mcg_cap & MCG_CTL_P) && (val || !host))
			return false;
		if (val != 0 && val != ~0ULL)
			return false;
		vcpu->mce.mcg_ctl = val;
		return true;
	}
	if (!reg)
		return false;
	/* MCi_CTL is all or nothing; MCi_STATUS only the VMM (or a clearing guest) writes. */
	if ((msr - MSR_IA32_MC0_CTL) % 4 == 0 && val != 0 && val != ~0ULL)
		return false;
	if ((msr - MSR_IA32_MC0_CTL) % 4 == 1 && val != 0 && !host)
		return false;
	*reg = val;
	return true;
}

/*
 * KVM_X86_SET_MCE: log an error in a bank and, for an uncorrected one the
 * guest asked to hear of, raise #MC (a second one while MCIP is set shuts
 * the vCPU down, as on the CPU).
 */
int kl_inject_mce(struct kl_vcpu *vcpu, const struct kvm_x86_mce __user *argp)
{
	struct kvm_x86_mce m;
	u64 *bank;

	if (copy_from_user(&m, argp, sizeof(m)))
		return -EFAULT;
	if (m.bank >= nbanks(vcpu) || !(m.status & MCI_STATUS_VAL))
		return -EINVAL;
	bank = vcpu->mce.banks[m.bank];
	if (!(m.status & MCI_STATUS_UC)) {	/* corrected: logged, no exception */
		if (bank[1] & MCI_STATUS_VAL)
			m.status |= MCI_STATUS_OVER;
		bank[1] = m.status;
		bank[2] = m.addr;
		bank[3] = m.misc;
		return 0;
	}
	if ((vcpu->mce.mcg_cap & MCG_CTL_P) && vcpu->mce.mcg_ctl != ~0ULL)
		return 0;			/* machine checks disabled: dropped */
	if (bank[0] != ~0ULL)
		return 0;
	if ((vcpu->mce.mcg_status & MCG_STATUS_MCIP) || !(vcpu->cr4 & X86_CR4_MCE)) {
		vcpu->triple_fault = true;	/* shutdown at the next entry */
		return 0;
	}
	if (bank[1] & MCI_STATUS_VAL)
		m.status |= MCI_STATUS_OVER;
	bank[1] = m.status;
	bank[2] = m.addr;
	bank[3] = m.misc;
	vcpu->mce.mcg_status = m.mcg_status;
	kl_queue_exception(vcpu, X86_TRAP_MC, false, 0);
	return 0;
}
