/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The vendor backend's interface: what only code that knows the hardware's
 * control block (VMCB, VMCS) can do. The core and the x86 layer call it;
 * the MMU layer and the strategies never include this header.
 *
 * A backend enters the guest and decodes each exit into the x86 layer's
 * handlers (x86.h: kl_handle_*), passing the facts it has (port, size,
 * instruction length, faulting address); x86 semantics live there.
 */
#ifndef KL_VENDOR_H
#define KL_VENDOR_H

#include "x86.h"

struct kl_vendor_ops {
	const char *name;
	u8 hypercall[3];		/* the native hypercall: VMMCALL or VMCALL */
	/* Once at load: read what the CPU offers; set the nested format (kl_tdp). */
	int (*setup)(void);
	bool (*has_tdp)(void);		/* nested paging (NPT, EPT) for mmu=npt */
	int (*hardware_enable)(void);	/* on every CPU; refuse if busy */
	void (*hardware_disable)(void);
	int (*vcpu_create)(struct kl_vcpu *vcpu);
	void (*vcpu_free)(struct kl_vcpu *vcpu);
	/* The control block back to its state after RESET (segments, no events). */
	void (*vcpu_reset)(struct kl_vcpu *vcpu);
	/* Segments, GDT/IDT and CPL: the part of kvm_sregs the vendor holds. */
	void (*get_segments)(struct kl_vcpu *vcpu, struct kvm_sregs *sregs);
	void (*set_segments)(struct kl_vcpu *vcpu, const struct kvm_sregs *sregs);
	int (*get_cpl)(struct kl_vcpu *vcpu);
	/* An STI or MOV SS interrupt shadow covers the instruction at RIP. */
	bool (*interrupt_shadow)(struct kl_vcpu *vcpu);
	void (*set_interrupt_shadow)(struct kl_vcpu *vcpu, bool on);	/* KVM_SET_VCPU_EVENTS */
	/*
	 * Enter the guest once and hand the exit to the x86 layer: 1 = go on,
	 * 0 = to userspace with run->exit_reason set, <0 = an errno for KVM_RUN.
	 */
	int (*run)(struct kl_vcpu *vcpu);
};

extern const struct kl_vendor_ops kl_svm_ops;
extern const struct kl_vendor_ops kl_vmx_ops;
extern const struct kl_vendor_ops *kl_vendor;

#endif
