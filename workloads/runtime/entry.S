/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Guest runtime entry points: boot, exception stubs, SYSCALL entry, the
 * CPL3 enter/leave pair and the fault probes. Everything here is what C
 * cannot express: stack switches, iretq/sysretq frames and instructions
 * whose fault we want to observe.
 */
#include "asm.h"

	.section .text.entry, "ax"
	.code64
	.globl _start
_start:
	/* RDI = boot info (from the harness); keep it for kl_start. */
	lea	boot_stack_top(%rip), %rsp
	xor	%ebp, %ebp
	call	kl_start
1:	cli
	hlt
	jmp	1b

	.text
/* void kl_load_segments(u16 cs, u16 ds): reload every selector after lgdt. */
	.globl kl_load_segments
kl_load_segments:
	mov	%si, %ds
	mov	%si, %es
	mov	%si, %ss
	xor	%eax, %eax
	mov	%ax, %fs
	mov	%ax, %gs
	pop	%rax			/* return address */
	push	%rdi
	push	%rax
	lretq

/*
 * Exception stubs: vectors 0-31. The CPU pushes an error code for some
 * vectors only; the others push a zero so every frame looks the same.
 */
.macro TRAP_STUB vec, has_error
	.align 16
trap_stub_\vec:
	.if \has_error == 0
	pushq	$0
	.endif
	pushq	$\vec
	jmp	trap_common
.endm

	.align 16
	.globl kl_trap_stubs
kl_trap_stubs:
TRAP_STUB_TABLE

/*
 * Interrupt stubs (smp.c's IPIs, the APIC's spurious vector): the same
 * frame as an exception's, error code 0; kl_trap hands them to kl_irq.
 */
.macro IRQ_STUB vec
	.align 16
	.globl kl_irq_stub_\vec
kl_irq_stub_\vec:
	pushq	$0
	pushq	$\vec
	jmp	trap_common
.endm
IRQ_STUB 240
IRQ_STUB 241
IRQ_STUB 255

trap_common:
	/* Frame layout must match struct trap_frame in trap.c. */
	push	%rax
	push	%rbx
	push	%rcx
	push	%rdx
	push	%rsi
	push	%rdi
	push	%rbp
	push	%r8
	push	%r9
	push	%r10
	push	%r11
	push	%r12
	push	%r13
	push	%r14
	push	%r15
	mov	%rsp, %rdi
	cld
	call	kl_trap
	pop	%r15
	pop	%r14
	pop	%r13
	pop	%r12
	pop	%r11
	pop	%r10
	pop	%r9
	pop	%r8
	pop	%rbp
	pop	%rdi
	pop	%rsi
	pop	%rdx
	pop	%rcx
	pop	%rbx
	pop	%rax
	add	$16, %rsp		/* vector and error code */
	iretq

/*
 * SYSCALL lands here at CPL0 with the user's RSP still loaded (the runtime
 * is single-CPU, so one scratch slot does instead of swapgs + per-CPU data).
 * RCX = user RIP, R11 = user RFLAGS; RAX = number, RDI/RSI/RDX = arguments.
 */
	.globl kl_syscall_entry
kl_syscall_entry:
	mov	%rsp, user_rsp_scratch(%rip)
	lea	syscall_stack_top(%rip), %rsp
	push	user_rsp_scratch(%rip)
	push	%rcx
	push	%r11
	mov	%rax, %rcx		/* kl_syscall(a, b, c, nr) */
	call	kl_syscall
	pop	%r11
	pop	%rcx
	pop	%rsp
	sysretq

/*
 * long user_enter(u64 rip, u64 rsp, u64 arg): drop to CPL3 at rip. Control
 * comes back through user_leave (called by sys_exit or by the trap handler
 * when a user fault is not resolved), which returns from user_enter.
 */
	.globl user_enter
user_enter:
	push	%rbx
	push	%rbp
	push	%r12
	push	%r13
	push	%r14
	push	%r15
	mov	%rsp, kernel_ctx_rsp(%rip)
	pushq	$USER_DS
	push	%rsi			/* user RSP */
	pushq	$0x2			/* RFLAGS: IF=0, no interrupts here */
	pushq	$USER_CS
	push	%rdi			/* user RIP */
	mov	%rdx, %rdi		/* argument */
	xor	%eax, %eax
	xor	%ebx, %ebx
	xor	%ecx, %ecx
	xor	%edx, %edx
	xor	%esi, %esi
	xor	%ebp, %ebp
	xor	%r8d, %r8d
	xor	%r9d, %r9d
	xor	%r10d, %r10d
	xor	%r11d, %r11d
	xor	%r12d, %r12d
	xor	%r13d, %r13d
	xor	%r14d, %r14d
	xor	%r15d, %r15d
	iretq

/* noreturn void user_leave(long value): back to user_enter's caller. */
	.globl user_leave
user_leave:
	mov	kernel_ctx_rsp(%rip), %rsp
	mov	%rdi, %rax
	pop	%r15
	pop	%r14
	pop	%r13
	pop	%r12
	pop	%rbp
	pop	%rbx
	ret

/*
 * Probes. Each faulting instruction has an exception-table entry; on a
 * fault the handler puts the vector in RAX and resumes at the fixup label,
 * otherwise RAX = NO_FAULT (-1).
 */
	.globl probe_read64
probe_read64:				/* (va, u64 *out) */
1:	mov	(%rdi), %rdx
	mov	%rdx, (%rsi)
	mov	$-1, %rax
2:	ret
	EXTABLE 1b, 2b

	.globl probe_write64
probe_write64:				/* (va, val) */
1:	mov	%rsi, (%rdi)
	mov	$-1, %rax
2:	ret
	EXTABLE 1b, 2b

	.globl probe_div0
probe_div0:
	xor	%ecx, %ecx
	mov	$1, %eax
	xor	%edx, %edx
1:	div	%ecx
	mov	$-1, %rax
2:	ret
	EXTABLE 1b, 2b

	.globl probe_ud2
probe_ud2:
1:	ud2
	mov	$-1, %rax
2:	ret
	EXTABLE 1b, 2b

	/* #BP is a trap: the saved RIP is already past int3, so the table
	 * entry names the instruction after it. */
	.globl probe_int3
probe_int3:
	mov	$-1, %rax
	int3
1:	ret
	EXTABLE 1b, 1b

	/* The faulting fetch is at the target itself: trap.c recognises
	 * exec_probe_target and resumes at exec_probe_fixup, which drops the
	 * return address the call pushed. */
	.globl probe_exec, exec_probe_fixup
probe_exec:				/* (va) */
	mov	%rdi, exec_probe_target(%rip)
	mov	$-1, %rax
	call	*%rdi
	movq	$0, exec_probe_target(%rip)
	ret
exec_probe_fixup:
	add	$8, %rsp
	ret

	.bss
	.align 16
	.globl exec_probe_target
exec_probe_target:	.quad 0
kernel_ctx_rsp:		.quad 0
user_rsp_scratch:	.quad 0
	.align 4096
	.space 16384
boot_stack_top:
	.space 8192
	.globl syscall_stack_top
syscall_stack_top:
	.space 8192
	.globl kl_trap_stack_top
kl_trap_stack_top:
