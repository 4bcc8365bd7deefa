/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One VMRUN. Called with interrupts disabled and GIF clear, so nothing can
 * observe the window where FS/GS/TR and the SYSCALL MSRs hold guest values
 * (IF is set only across VMRUN itself, for the reason given there).
 *
 *   void kl_svm_vmrun(u64 vmcb_pa, u64 *regs, u64 host_save_pa)
 *
 * VMRUN itself saves and restores the host's RSP, RAX, RIP, control
 * registers and segments (in VM_HSAVE_PA); VMSAVE/VMLOAD move what it does
 * not (FS, GS, TR, LDTR bases, KernelGsBase, STAR/LSTAR/CSTAR/SFMASK,
 * SYSENTER). Guest RAX and RSP live in the VMCB; the other 14 general
 * registers are swapped here, through `regs` (indexed like enum kl_reg).
 */
#include <linux/linkage.h>

#define REG(n)	(n * 8)

	.text
SYM_FUNC_START(kl_svm_vmrun)
	push	%rbp
	push	%r15
	push	%r14
	push	%r13
	push	%r12
	push	%rbx
	push	%rsi			/* 16(%rsp): regs */
	push	%rdi			/*  8(%rsp): vmcb_pa */
	push	%rdx			/*  0(%rsp): host_save_pa */

	mov	%rdx, %rax
	vmsave	%rax

	mov	16(%rsp), %rax
	mov	REG(1)(%rax), %rcx
	mov	REG(2)(%rax), %rdx
	mov	REG(3)(%rax), %rbx
	mov	REG(5)(%rax), %rbp
	mov	REG(6)(%rax), %rsi
	mov	REG(7)(%rax), %rdi
	mov	REG(8)(%rax), %r8
	mov	REG(9)(%rax), %r9
	mov	REG(10)(%rax), %r10
	mov	REG(11)(%rax), %r11
	mov	REG(12)(%rax), %r12
	mov	REG(13)(%rax), %r13
	mov	REG(14)(%rax), %r14
	mov	REG(15)(%rax), %r15

	mov	8(%rsp), %rax
	vmload	%rax
	/*
	 * With V_INTR_MASKING the host's RFLAGS.IF at VMRUN decides whether a
	 * host interrupt ends guest mode (#VMEXIT(INTR)). It must be 1, or a
	 * guest that never exits on its own keeps this CPU from timers,
	 * IPIs and RCU forever. GIF is still 0, so nothing is delivered here:
	 * the interrupt stays pending until stgi.
	 */
	sti
	vmrun	%rax
	cli
	vmsave	%rax

	mov	16(%rsp), %rax
	mov	%rcx, REG(1)(%rax)
	mov	%rdx, REG(2)(%rax)
	mov	%rbx, REG(3)(%rax)
	mov	%rbp, REG(5)(%rax)
	mov	%rsi, REG(6)(%rax)
	mov	%rdi, REG(7)(%rax)
	mov	%r8, REG(8)(%rax)
	mov	%r9, REG(9)(%rax)
	mov	%r10, REG(10)(%rax)
	mov	%r11, REG(11)(%rax)
	mov	%r12, REG(12)(%rax)
	mov	%r13, REG(13)(%rax)
	mov	%r14, REG(14)(%rax)
	mov	%r15, REG(15)(%rax)

	mov	0(%rsp), %rax
	vmload	%rax

	add	$24, %rsp
	pop	%rbx
	pop	%r12
	pop	%r13
	pop	%r14
	pop	%r15
	pop	%rbp
	RET
SYM_FUNC_END(kl_svm_vmrun)
