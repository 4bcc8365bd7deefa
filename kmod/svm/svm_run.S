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
#include "../include/kl_gprs.h"


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
	KL_LOAD_GPRS

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
	KL_SAVE_GPRS

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
