// SPDX-License-Identifier: GPL-2.0
/*
 * The rest of a vCPU's state that a VMM saves and restores (QEMU, and
 * Linux's state_test, which moves a vCPU to a new VM mid-run):
 *
 *  - KVM_GET/SET_VCPU_EVENTS: the exception or interrupt being injected
 *    (vcpu->event), the interrupt shadow, the NMI waiting, the one whose
 *    delivery an exit cut short, and whether NMIs are masked. No SMM: it
 *    reads as none and cannot be set.
 *  - KVM_GET/SET_DEBUGREGS: DR0-3, DR6, DR7 (emulated, never loaded).
 *  - KVM_GET/SET_XSAVE: the guest has no XSAVE (the CPUID policy), so the
 *    area is the FXSAVE image with x87 and SSE in XSTATE_BV, as KVM gives
 *    such a guest.
 *  - KVM_CAP_SYNC_REGS: the same registers, events and sregs through
 *    kvm_run, at every KVM_RUN.
 */
#include <linux/kvm.h>
#include <linux/mm.h>
#include <linux/string.h>
#include <asm/fpu/types.h>
#include <asm/trapnr.h>
#include "vendor.h"

#define XSAVE_HDR_OFFSET	512
#define XFEATURES_LEGACY	(XFEATURE_MASK_FP | XFEATURE_MASK_SSE)

void kl_get_vcpu_events(struct kl_vcpu *vcpu, struct kvm_vcpu_events *ev)
{
	const struct kl_pending_event *e = &vcpu->event;

	memset(ev, 0, sizeof(*ev));
	if (e->valid && e->is_exception) {
		ev->exception.injected = e->delivering;
		ev->exception.pending = !e->delivering;
		ev->exception.nr = e->vector;
		ev->exception.has_error_code = e->has_error;
		ev->exception.error_code = e->error;
	} else if (e->valid) {
		ev->interrupt.injected = 1;
		ev->interrupt.nr = e->vector;
	}
	ev->interrupt.shadow = kl_vendor->interrupt_shadow(vcpu) ? KVM_X86_SHADOW_INT_MOV_SS : 0;
	ev->triple_fault.pending = vcpu->triple_fault;
	ev->nmi.injected = vcpu->nmi_injected;
	ev->nmi.pending = vcpu->nmi_pending;
	ev->nmi.masked = vcpu->nmi_masked;
	ev->flags = KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_TRIPLE_FAULT |
		    KVM_VCPUEVENT_VALID_NMI_PENDING;
}

int kl_set_vcpu_events(struct kl_vcpu *vcpu, const struct kvm_vcpu_events *ev)
{
	const u32 known = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
			  KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM |
			  KVM_VCPUEVENT_VALID_PAYLOAD | KVM_VCPUEVENT_VALID_TRIPLE_FAULT;

	if (ev->flags & ~known)
		return -EINVAL;
	if (ev->flags & KVM_VCPUEVENT_VALID_PAYLOAD)
		return -EINVAL;		/* KVM_CAP_EXCEPTION_PAYLOAD is not offered */
	/* No SMM here: only "none" can be restored. */
	if ((ev->flags & KVM_VCPUEVENT_VALID_SMM) && (ev->smi.smm || ev->smi.pending))
		return -EINVAL;
	if ((ev->exception.injected || ev->exception.pending) && ev->exception.nr > 31)
		return -EINVAL;
	if (ev->exception.injected && ev->exception.pending)
		return -EINVAL;

	vcpu->event.valid = false;
	if (ev->exception.injected || ev->exception.pending)
		vcpu->event = (struct kl_pending_event) {
			.valid = true, .vector = ev->exception.nr, .is_exception = true,
			.has_error = ev->exception.has_error_code,
			.error = ev->exception.error_code,
			.delivering = ev->exception.injected,
		};
	else if (ev->interrupt.injected)
		vcpu->event = (struct kl_pending_event) {
			.valid = true, .vector = ev->interrupt.nr, .delivering = true,
		};
	if (ev->flags & KVM_VCPUEVENT_VALID_SHADOW)
		kl_vendor->set_interrupt_shadow(vcpu, ev->interrupt.shadow != 0);
	if (ev->flags & KVM_VCPUEVENT_VALID_TRIPLE_FAULT)
		vcpu->triple_fault = ev->triple_fault.pending;
	if (ev->flags & KVM_VCPUEVENT_VALID_NMI_PENDING)
		vcpu->nmi_pending = ev->nmi.pending;
	vcpu->nmi_injected = ev->nmi.injected;
	vcpu->nmi_masked = ev->nmi.masked;
	return 0;
}

void kl_get_debugregs(struct kl_vcpu *vcpu, struct kvm_debugregs *d)
{
	memset(d, 0, sizeof(*d));
	memcpy(d->db, vcpu->dr, sizeof(d->db));
	d->dr6 = vcpu->dr[6];
	d->dr7 = vcpu->dr[7];
}

int kl_set_debugregs(struct kl_vcpu *vcpu, const struct kvm_debugregs *d)
{
	/* The upper halves of DR6 and DR7 are reserved (must be zero), as KVM checks. */
	if (d->flags || (d->dr6 >> 32) || (d->dr7 >> 32))
		return -EINVAL;
	memcpy(vcpu->dr, d->db, sizeof(d->db));
	vcpu->dr[6] = d->dr6;
	vcpu->dr[7] = d->dr7;
	return 0;
}

void kl_get_xsave(struct kl_vcpu *vcpu, struct kvm_xsave *x)
{
	memset(x, 0, sizeof(*x));
	memcpy(x->region, vcpu->fpu, sizeof(*vcpu->fpu));
	*(u64 *)((u8 *)x->region + XSAVE_HDR_OFFSET) = XFEATURES_LEGACY;
}

int kl_set_xsave(struct kl_vcpu *vcpu, const struct kvm_xsave *x)
{
	const struct fxregs_state *fx = (const void *)x->region;
	u64 xstate_bv = *(const u64 *)((const u8 *)x->region + XSAVE_HDR_OFFSET);

	/* Only the legacy state exists here; an MXCSR the CPU refuses would fault FXRSTOR. */
	if (xstate_bv & ~XFEATURES_LEGACY || fx->mxcsr & ~kl_mxcsr_mask())
		return -EINVAL;
	memcpy(vcpu->fpu, fx, sizeof(*vcpu->fpu));
	return 0;
}

/* ---- KVM_CAP_SYNC_REGS ---- */

#define SYNC_REGS_VALID	(KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS)

/* At KVM_RUN: take what userspace marked dirty in kvm_run. */
int kl_sync_regs_in(struct kl_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	struct kvm_sync_regs *s = &run->s.regs;
	int r;

	if ((run->kvm_valid_regs & ~SYNC_REGS_VALID) || (run->kvm_dirty_regs & ~SYNC_REGS_VALID))
		return -EINVAL;
	if (run->kvm_dirty_regs & KVM_SYNC_X86_REGS) {
		kl_set_regs(vcpu, &s->regs);
		run->kvm_dirty_regs &= ~KVM_SYNC_X86_REGS;
	}
	if (run->kvm_dirty_regs & KVM_SYNC_X86_SREGS) {
		r = kl_set_sregs(vcpu, &s->sregs);
		if (r)
			return r;
		run->kvm_dirty_regs &= ~KVM_SYNC_X86_SREGS;
	}
	if (run->kvm_dirty_regs & KVM_SYNC_X86_EVENTS) {
		r = kl_set_vcpu_events(vcpu, &s->events);
		if (r)
			return r;
		run->kvm_dirty_regs &= ~KVM_SYNC_X86_EVENTS;
	}
	return 0;
}

/* On the way out: fill what userspace asked to see. */
void kl_sync_regs_out(struct kl_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	struct kvm_sync_regs *s = &run->s.regs;

	if (run->kvm_valid_regs & KVM_SYNC_X86_REGS)
		kl_get_regs(vcpu, &s->regs);
	if (run->kvm_valid_regs & KVM_SYNC_X86_SREGS)
		kl_get_sregs(vcpu, &s->sregs);
	if (run->kvm_valid_regs & KVM_SYNC_X86_EVENTS)
		kl_get_vcpu_events(vcpu, &s->events);
}

long kl_sync_regs_cap(void)
{
	return SYNC_REGS_VALID;
}
