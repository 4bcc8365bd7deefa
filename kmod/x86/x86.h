/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The vendor-neutral x86 layer: control-register, EFER and MSR rules,
 * CPUID, exception queueing (with the #DF table), interrupt injection
 * decisions, the instruction emulator, and the handlers a vendor calls for
 * each exit it has decoded. Linux KVM's x86.c, in small.
 */
#ifndef KL_X86_H
#define KL_X86_H

#include "../mmu/mmu.h"

/* ---- exceptions and events (x86.c) ---- */
void kl_queue_exception(struct kl_vcpu *vcpu, u8 vector, bool has_error, u32 error);
void kl_inject_page_fault(struct kl_vcpu *vcpu, u64 addr, u32 error);
int kl_emulation_failed(struct kl_vcpu *vcpu, const struct kl_insn *insn);

/* What the vendor injects at this entry; kl_next_injection decides it. */
struct kl_injection {
	bool inject;		/* deliver `vector` now */
	u8 vector;
	bool exception;		/* else an external interrupt */
	bool has_error;
	u32 error;
	bool irq_window;	/* exit as soon as the guest can take an interrupt */
	bool nmi;		/* deliver an NMI now (vector 2); NMIs are then masked */
	bool nmi_window;	/* an NMI waits for a shadow: exit when it may go in */
};

void kl_next_injection(struct kl_vcpu *vcpu, struct kl_injection *inj);
/* RFLAGS.IF set and no interrupt shadow (STI, MOV SS) in effect. */
bool kl_interrupt_allowed(struct kl_vcpu *vcpu);
/* The NMI being delivered when the exit came was not: deliver it again. */
void kl_requeue_nmi(struct kl_vcpu *vcpu);
/* KVM_NMI (core/vcpu.c). */
int kl_queue_nmi(struct kl_vcpu *vcpu);
/* The CPU was delivering this event when the exit came: deliver it again. */
void kl_requeue_event(struct kl_vcpu *vcpu, u8 vector, bool exception, bool has_error,
		      u32 error);

/* ---- registers (x86.c) ---- */
void kl_vcpu_reset(struct kl_vcpu *vcpu);
void kl_vcpu_init_event(struct kl_vcpu *vcpu);
void kl_get_fpu(struct kl_vcpu *vcpu, struct kvm_fpu *fpu);
int kl_set_fpu(struct kl_vcpu *vcpu, const struct kvm_fpu *fpu);
u32 kl_mxcsr_mask(void);	/* the MXCSR bits this CPU has (svm.c reads it once) */
int kl_set_cr0(struct kl_vcpu *vcpu, u64 val);
int kl_set_cr4(struct kl_vcpu *vcpu, u64 val);
int kl_set_efer(struct kl_vcpu *vcpu, u64 val);
void kl_get_sregs(struct kl_vcpu *vcpu, struct kvm_sregs *sregs);
void kl_get_regs(struct kl_vcpu *vcpu, struct kvm_regs *regs);
void kl_set_regs(struct kl_vcpu *vcpu, const struct kvm_regs *regs);
/* state.c: events, debug registers, XSAVE, KVM_CAP_SYNC_REGS */
void kl_get_vcpu_events(struct kl_vcpu *vcpu, struct kvm_vcpu_events *ev);
int kl_set_vcpu_events(struct kl_vcpu *vcpu, const struct kvm_vcpu_events *ev);
void kl_get_debugregs(struct kl_vcpu *vcpu, struct kvm_debugregs *d);
int kl_set_debugregs(struct kl_vcpu *vcpu, const struct kvm_debugregs *d);
void kl_get_xsave(struct kl_vcpu *vcpu, struct kvm_xsave *x);
int kl_set_xsave(struct kl_vcpu *vcpu, const struct kvm_xsave *x);
int kl_sync_regs_in(struct kl_vcpu *vcpu);
void kl_sync_regs_out(struct kl_vcpu *vcpu);
long kl_sync_regs_cap(void);
int kl_set_sregs(struct kl_vcpu *vcpu, const struct kvm_sregs *sregs);
/* IA32_APIC_BASE: xAPIC at 0xfee00000, enabled, vCPU 0 the BSP after RESET. */
u64 kl_apic_base(struct kl_vcpu *vcpu);
bool kl_set_apic_base(struct kl_vcpu *vcpu, u64 val);

/* ---- MSRs (msr.c) and CPUID (cpuid.c) ---- */
bool kl_get_msr(struct kl_vcpu *vcpu, u32 msr, u64 *val);
bool kl_set_msr(struct kl_vcpu *vcpu, u32 msr, u64 val);
/* A TSC value from userspace (or vCPU creation), on the VM's one timeline (msr.c). */
void kl_tsc_host_write(struct kl_vcpu *vcpu, u64 val);
/* As KVM_GET_MSRS reads it: true for every MSR kvmlab knows. */
bool kl_host_get_msr(struct kl_vcpu *vcpu, u32 msr, u64 *val);
/* ---- userspace MSR exits and filters (msr_exit.c) ---- */
int kl_set_msr_filter(struct kl_vm *vm, const struct kvm_msr_filter __user *argp);
void kl_free_msr_filter(struct kl_vm *vm);
int kl_enable_user_space_msr(struct kl_vm *vm, u64 mask);
void kl_complete_msr_exit(struct kl_vcpu *vcpu);
int kl_get_msr_index_list(struct kvm_msr_list __user *argp);
int kl_get_msr_feature_index_list(struct kvm_msr_list __user *argp);
int kl_get_feature_msrs(struct kvm_msrs __user *argp);
/* ---- machine checks (mce.c) ---- */
u64 kl_mce_cap_supported(void);
int kl_setup_mce(struct kl_vcpu *vcpu, const u64 __user *argp);
int kl_inject_mce(struct kl_vcpu *vcpu, const struct kvm_x86_mce __user *argp);
bool kl_mce_get_msr(struct kl_vcpu *vcpu, u32 msr, u64 *val, bool host);
bool kl_mce_set_msr(struct kl_vcpu *vcpu, u32 msr, u64 val, bool host);
int kl_vcpu_msrs(struct kl_vcpu *vcpu, struct kvm_msrs __user *argp, bool set);
const struct kvm_cpuid_entry2 *kl_find_cpuid(struct kl_vcpu *vcpu, u32 func, u32 index);
int kl_maxphyaddr(struct kl_vcpu *vcpu);
/* The paravirtual MMU's CPUID leaves, for a VM whose strategy offers it: true and regs[4] filled. */
bool kl_cpuid_pv_leaf(struct kl_vcpu *vcpu, u32 func, u32 *regs);
int kl_get_supported_cpuid(struct kvm_cpuid2 __user *argp);
int kl_set_cpuid2(struct kl_vcpu *vcpu, struct kvm_cpuid2 __user *argp);
int kl_get_cpuid2(struct kl_vcpu *vcpu, struct kvm_cpuid2 __user *argp);
void kl_cpuid_update_runtime(struct kl_vcpu *vcpu);
/* Whether the vCPU's CPUID leaf 1 has this ECX bit (KL_CPUID_1_ECX_*). */
bool kl_guest_has_cpuid_bit(struct kl_vcpu *vcpu, u32 ecx1_bit);

/* ---- XSAVE (cpuid.c, x86.c): x87 and SSE only ---- */
u64 kl_host_xcr0(void);
u64 kl_supported_xcr0(void);
/* XCR0 as XSETBV or KVM_SET_XCRS would set it: 0, or -EINVAL for a value the CPU refuses. */
int kl_set_xcr0(struct kl_vcpu *vcpu, u64 val);
int kl_get_xcrs(struct kl_vcpu *vcpu, struct kvm_xcrs __user *argp);
/* The vendor brackets VMRUN with these (interrupts off, FPU ours). */
u64 kl_load_guest_xcr0(struct kl_vcpu *vcpu);
void kl_put_guest_xcr0(struct kl_vcpu *vcpu, u64 host_xcr0);
int kl_set_xcrs(struct kl_vcpu *vcpu, const struct kvm_xcrs __user *argp);

/* ---- KVM's PV clock and steal time (pvclock.c) ---- */
void kl_kvmclock_init(struct kl_vm *vm);
u32 kl_kvmclock_caps(void);
int kl_get_clock(struct kl_vm *vm, struct kvm_clock_data __user *argp);
int kl_set_clock(struct kl_vm *vm, const struct kvm_clock_data __user *argp);
void kl_pv_clock_check(struct kl_vcpu *vcpu);
void kl_pv_steal_update(struct kl_vcpu *vcpu);
/* A KVM PV MSR: -1 when msr is not one, else whether the access is allowed. */
int kl_pv_get_msr(struct kl_vcpu *vcpu, u32 msr, u64 *val, bool host);
int kl_pv_set_msr(struct kl_vcpu *vcpu, u32 msr, u64 val, bool host);

/* KVM_CAP_DISABLE_QUIRKS2: the quirks kvmlab has, each on until userspace turns it off. */
#define KL_VALID_QUIRKS	(KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT | KVM_X86_QUIRK_MWAIT_NEVER_UD_FAULTS | \
			 KVM_X86_QUIRK_FIX_HYPERCALL_INSN)
static inline bool kl_has_quirk(struct kl_vm *vm, u64 quirk)
{
	return !(READ_ONCE(vm->disabled_quirks) & quirk);
}

/* The bits of rSI/rDI/rCX an address size uses (2, 4 or 8 bytes). */
static inline u64 kl_addr_mask(int size)
{
	return size == 8 ? ~0ULL : (1ULL << (8 * size)) - 1;
}

/* Add to rSI, rDI or rCX as the address size sees it: the bits above it stay. */
static inline void kl_addr_add(u64 *reg, s64 delta, int size)
{
	u64 mask = kl_addr_mask(size);

	*reg = (*reg & ~mask) | ((*reg + delta) & mask);
}

/* ---- string port I/O (pio.c) ---- */
struct kl_io;
int kl_emulate_string_io(struct kl_vcpu *vcpu, const struct kl_io *io);
void kl_complete_string_in(struct kl_vcpu *vcpu);
/* CMPS/SCAS against MMIO: the read's value v arrived; set flags, stop or repeat. */
enum { KL_REPE = 1, KL_REPNE = 2 };
void kl_complete_compare(struct kl_vcpu *vcpu, u64 v);

/* ---- the emulator (emulate.c) ---- */
/* A guest access that hit no memslot: hand it to userspace as KVM_EXIT_MMIO. */
int kl_emulate_mmio(struct kl_vcpu *vcpu, u64 addr, u64 gpa);
/*
 * The gpa of a memory operand at linear address lin that the emulator
 * reads or writes for the guest (A/D set): true with *gpa; else false
 * with the exit handler's verdict in *verdict — 1 after queueing the
 * guest's #PF or #GP, 0 with an internal error for userspace.
 */
bool kl_translate_operand(struct kl_vcpu *vcpu, u64 lin, bool write, u64 *gpa, int *verdict);
/* The other vendor's hypercall at RIP rewritten to ours: 1, 0 (see handlers), or -ENOENT. */
int kl_fix_hypercall(struct kl_vcpu *vcpu);

/*
 * ---- exit handlers (handlers.c): what a vendor calls with what it decoded ----
 * Each returns 1 to re-enter, 0 to return to userspace (run->exit_reason set).
 * `len` is the instruction's length where the vendor knows it.
 */
struct kl_io {
	u16 port;
	u8 size;		/* 1, 2 or 4 */
	bool in;
	bool string, rep;	/* INS/OUTS (not emulated) */
	u64 next_rip;
};

int kl_handle_cr_access(struct kl_vcpu *vcpu);	/* MOV CR / CLTS at RIP, decoded here */
int kl_handle_dr_access(struct kl_vcpu *vcpu);	/* MOV DR at RIP, decoded here */
int kl_handle_invlpg(struct kl_vcpu *vcpu);	/* INVLPG at RIP, decoded here */
int kl_handle_io(struct kl_vcpu *vcpu, const struct kl_io *io);
int kl_handle_msr(struct kl_vcpu *vcpu, bool write, int len);
int kl_handle_cpuid(struct kl_vcpu *vcpu, int len);
int kl_handle_hlt(struct kl_vcpu *vcpu, int len);
int kl_handle_hypercall(struct kl_vcpu *vcpu, int len);
int kl_handle_xsetbv(struct kl_vcpu *vcpu, int len);
int kl_handle_monitor_mwait(struct kl_vcpu *vcpu, int len);
int kl_handle_ud(struct kl_vcpu *vcpu);		/* a #UD intercept */
int kl_handle_irq_window(struct kl_vcpu *vcpu);
int kl_handle_shutdown(struct kl_vcpu *vcpu);
int kl_handle_invalid_opcode(struct kl_vcpu *vcpu);
int kl_handle_entry_failure(struct kl_vcpu *vcpu, u64 reason);
int kl_handle_unexpected(struct kl_vcpu *vcpu, u64 code, u64 info);

/* One trip into the guest, for the core's run loop: mode checks, then the vendor. */
int kl_x86_run_once(struct kl_vcpu *vcpu);

#endif
