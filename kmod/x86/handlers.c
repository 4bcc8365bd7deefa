// SPDX-License-Identifier: GPL-2.0
/*
 * Exit handlers: what each intercepted instruction or event means, for any
 * vendor. The vendor says which exit it was and what it knows (SVM under
 * QEMU: little — no decode assists, so CR, DR and INVLPG exits are decoded
 * here from the instruction at RIP; a backend with exit qualifications
 * would pass the register and address instead).
 */
#include <linux/kvm.h>
#include <asm/trapnr.h>
#include <kvmlab/pv_mmu.h>
#include "vendor.h"

#define KVM_ENOSYS_HC	1000	/* what KVM returns for an unknown hypercall */

static void skip_insn(struct kl_vcpu *vcpu, int len)
{
	vcpu->rip += len;
}

static int inject_ud(struct kl_vcpu *vcpu)
{
	kl_queue_exception(vcpu, UD_VECTOR, false, 0);
	return 1;
}

static int inject_gp(struct kl_vcpu *vcpu)
{
	kl_queue_exception(vcpu, GP_VECTOR, true, 0);
	return 1;
}

static int mov_from_cr(struct kl_vcpu *vcpu, int cr, int reg)
{
	u64 val;

	switch (cr) {
	case 0: val = vcpu->cr0; break;
	case 2: val = vcpu->cr2; break;
	case 3: val = vcpu->cr3; break;
	case 4: val = vcpu->cr4; break;
	default: return -EINVAL;
	}
	vcpu->regs[reg] = val;
	return 0;
}

static int mov_to_cr(struct kl_vcpu *vcpu, int cr, u64 val)
{
	switch (cr) {
	case 0: return kl_set_cr0(vcpu, val);
	case 2: vcpu->cr2 = val; return 0;
	case 3: return kl_set_cr3(vcpu, val);
	case 4: return kl_set_cr4(vcpu, val);
	default: return -EINVAL;
	}
}

int kl_handle_cr_access(struct kl_vcpu *vcpu)
{
	struct kl_insn insn;

	vcpu->stat.cr_exits++;
	if (kl_fetch_decode(vcpu, &insn))
		return kl_emulation_failed(vcpu, &insn);
	if (insn.opcode_len == 2 && insn.opcode[1] == 0x06) {	/* CLTS */
		vcpu->cr0 &= ~X86_CR0_TS;
		skip_insn(vcpu, insn.len);
		return 1;
	}
	if (insn.opcode_len != 2 || (insn.opcode[1] != 0x20 && insn.opcode[1] != 0x22))
		return kl_emulation_failed(vcpu, &insn);
	if (insn.opcode[1] == 0x20) {
		if (mov_from_cr(vcpu, insn.reg, insn.rm))
			return inject_ud(vcpu);
	} else if (mov_to_cr(vcpu, insn.reg, vcpu->regs[insn.rm])) {
		return inject_gp(vcpu);
	}
	skip_insn(vcpu, insn.len);
	return 1;
}

/* Debug registers are storage only: breakpoints are not offered to guests. */
int kl_handle_dr_access(struct kl_vcpu *vcpu)
{
	struct kl_insn insn;

	if (kl_fetch_decode(vcpu, &insn) ||
	    insn.opcode_len != 2 || (insn.opcode[1] != 0x21 && insn.opcode[1] != 0x23))
		return kl_emulation_failed(vcpu, &insn);
	if (insn.opcode[1] == 0x21)
		vcpu->regs[insn.rm] = vcpu->dr[insn.reg & 7];
	else
		vcpu->dr[insn.reg & 7] = vcpu->regs[insn.rm];
	skip_insn(vcpu, insn.len);
	return 1;
}

int kl_handle_invlpg(struct kl_vcpu *vcpu)
{
	struct kl_insn insn;

	if (kl_fetch_decode(vcpu, &insn) ||
	    insn.opcode_len != 2 || insn.opcode[1] != 0x01 || insn.reg != 7 || !insn.mem)
		return kl_emulation_failed(vcpu, &insn);
	vcpu->stat.invlpg++;
	kl_mmu_invlpg(vcpu, insn.ea);
	skip_insn(vcpu, insn.len);
	return 1;
}

/*
 * Port I/O goes to userspace as KVM_EXIT_IO; INS/OUTS: pio.c. An OUT is
 * done when userspace sees it (RIP already past it: QEMU's kvmvapic reads
 * it so). An IN stays at its RIP until the next KVM_RUN, where its data
 * lands in AL/AX/EAX on top of whatever registers userspace set meanwhile,
 * unless userspace moved RIP (QEMU's vmport answers a port read by
 * rewriting the vCPU's state): that voids the IN, as on KVM.
 */
int kl_handle_io(struct kl_vcpu *vcpu, const struct kl_io *io)
{
	struct kvm_run *run = vcpu->run;
	u32 offset = ALIGN(sizeof(struct kvm_run), 64);

	vcpu->stat.io_exits++;
	if (io->string)
		return kl_emulate_string_io(vcpu, io);
	run->exit_reason = KVM_EXIT_IO;
	run->io.direction = io->in ? KVM_EXIT_IO_IN : KVM_EXIT_IO_OUT;
	run->io.size = io->size;
	run->io.port = io->port;
	run->io.count = 1;
	run->io.data_offset = offset;
	if (!io->in) {
		memcpy((u8 *)run + offset, &vcpu->regs[KL_RAX], io->size);
		vcpu->rip = io->next_rip;
		return 0;
	}
	vcpu->mmio_pending = true;
	vcpu->pending_is_pio = true;
	vcpu->mmio_is_read = true;
	vcpu->mmio_reg = KL_RAX;
	vcpu->mmio_len = io->size;
	vcpu->mmio_next_rip = io->next_rip;
	vcpu->pio_in_rip = vcpu->rip;
	return 0;
}

int kl_handle_cpuid(struct kl_vcpu *vcpu, int len)
{
	static const int order[4] = { KL_RAX, KL_RBX, KL_RCX, KL_RDX };
	const struct kvm_cpuid_entry2 *e;
	u32 pv[4];

	vcpu->stat.cpuid_exits++;
	if (kl_cpuid_pv_leaf(vcpu, vcpu->regs[KL_RAX], pv)) {
		for (int i = 0; i < 4; i++)
			vcpu->regs[order[i]] = pv[i];
		skip_insn(vcpu, len);
		return 1;
	}
	e = kl_find_cpuid(vcpu, vcpu->regs[KL_RAX], vcpu->regs[KL_RCX]);
	vcpu->regs[KL_RAX] = e ? e->eax : 0;
	vcpu->regs[KL_RBX] = e ? e->ebx : 0;
	vcpu->regs[KL_RCX] = e ? e->ecx : 0;
	vcpu->regs[KL_RDX] = e ? e->edx : 0;
	skip_insn(vcpu, len);
	return 1;
}

/* HLT goes to userspace, unless an interrupt queued for an interruptible guest ends it now. */
int kl_handle_hlt(struct kl_vcpu *vcpu, int len)
{
	vcpu->stat.halt_exits++;
	skip_insn(vcpu, len);
	if (vcpu->irq_pending && kl_interrupt_allowed(vcpu))
		return 1;
	vcpu->run->exit_reason = KVM_EXIT_HLT;
	return 0;
}

/*
 * VMMCALL. The only hypercall kvmlab serves is the paravirtual MMU's
 * (<kvmlab/pv_mmu.h>), under a strategy that offers it; anything else
 * gets KVM's answer to an unknown number. Outside 64-bit mode the
 * arguments are 32-bit, as KVM reads them.
 */
int kl_handle_hypercall(struct kl_vcpu *vcpu, int len)
{
	bool wide = kl_guest_long_mode(vcpu);
	u64 nr = vcpu->regs[KL_RAX], a0 = vcpu->regs[KL_RBX], a1 = vcpu->regs[KL_RCX];
	long r = -KVM_ENOSYS_HC;

	vcpu->stat.hypercalls++;
	if (!wide) {
		nr = (u32)nr;
		a0 = (u32)a0;
		a1 = (u32)a1;
	}
	if (nr == KL_HC_PV_MMU && vcpu->vm->mmu->pv_mmu) {
		if (kl_vendor->get_cpl(vcpu) == 0) {
			r = vcpu->vm->mmu->pv_mmu(vcpu, a0, a1);
		} else {
			r = -KL_PV_EPERM;
			vcpu->vm->stat.pv_mmu_refused++;
		}
	}
	vcpu->regs[KL_RAX] = wide ? (u64)r : (u32)r;
	skip_insn(vcpu, len);
	return 1;
}

/* The guest became interruptible: inject what is queued, or tell userspace it asked. */
int kl_handle_irq_window(struct kl_vcpu *vcpu)
{
	vcpu->stat.irq_window_exits++;
	if (vcpu->irq_pending || !vcpu->run->request_interrupt_window)
		return 1;	/* kl_next_injection delivers it now */
	vcpu->stat.request_irq_exits++;
	vcpu->run->exit_reason = KVM_EXIT_IRQ_WINDOW_OPEN;
	return 0;
}

/*
 * A triple fault, the CPU's or one our exception rules reached: the
 * control block is undefined after it, so the vCPU starts over, as KVM does.
 */
int kl_handle_shutdown(struct kl_vcpu *vcpu)
{
	vcpu->triple_fault = false;
	vcpu->run->exit_reason = KVM_EXIT_SHUTDOWN;
	kl_vendor->vcpu_reset(vcpu);
	kl_vcpu_reset(vcpu);
	kl_mmu_mode_changed(vcpu);
	return 0;
}

/*
 * XSETBV (0F 01 D1): the CPU checked CR4.OSXSAVE before the intercept; the
 * rest is ours. QEMU's SVM does not intercept XSETBV at all: there the
 * vendor finds the new XCR0 in the hardware after the exit instead.
 */
int kl_handle_xsetbv(struct kl_vcpu *vcpu, int len)
{
	u64 val = (vcpu->regs[KL_RDX] << 32) | (u32)vcpu->regs[KL_RAX];

	if (!(vcpu->cr4 & X86_CR4_OSXSAVE))
		return inject_ud(vcpu);
	if (kl_vendor->get_cpl(vcpu) != 0 || (u32)vcpu->regs[KL_RCX] != 0 ||
	    kl_set_xcr0(vcpu, val))
		return inject_gp(vcpu);
	skip_insn(vcpu, len);
	return 1;
}

/*
 * MONITOR and MWAIT (0F 01 C8 / C9): no-ops, as KVM's, so a guest that
 * uses them anyway is not put to sleep with no one to wake it; with
 * KVM_X86_QUIRK_MWAIT_NEVER_UD_FAULTS turned off, #UD when the guest's
 * CPUID does not offer MWAIT.
 */
int kl_handle_monitor_mwait(struct kl_vcpu *vcpu, int len)
{
	if (!kl_has_quirk(vcpu->vm, KVM_X86_QUIRK_MWAIT_NEVER_UD_FAULTS) &&
	    !kl_guest_has_cpuid_bit(vcpu, KL_CPUID_1_ECX_MWAIT))
		return inject_ud(vcpu);
	skip_insn(vcpu, len);
	return 1;
}

/*
 * A #UD the guest raised: reflected, unless it is VMCALL and
 * KVM_X86_QUIRK_FIX_HYPERCALL_INSN is on (kl_fix_hypercall).
 */
int kl_handle_ud(struct kl_vcpu *vcpu)
{
	int r = -ENOENT;

	if (kl_has_quirk(vcpu->vm, KVM_X86_QUIRK_FIX_HYPERCALL_INSN))
		r = kl_fix_hypercall(vcpu);
	return r == -ENOENT ? inject_ud(vcpu) : r;
}

/* Virtualization and other instructions not offered to guests. */
int kl_handle_invalid_opcode(struct kl_vcpu *vcpu)
{
	return inject_ud(vcpu);
}

int kl_handle_entry_failure(struct kl_vcpu *vcpu, u64 reason)
{
	vcpu->run->exit_reason = KVM_EXIT_FAIL_ENTRY;
	vcpu->run->fail_entry.hardware_entry_failure_reason = reason;
	vcpu->run->fail_entry.cpu = smp_processor_id();
	return 0;
}

int kl_handle_unexpected(struct kl_vcpu *vcpu, u64 code, u64 info)
{
	kl_internal_error(vcpu, KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON, code, info);
	return 0;
}
