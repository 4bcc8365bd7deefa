/* SPDX-License-Identifier: GPL-2.0 */
/*
 * For the vendors' entry stubs (svm/svm_run.S, vmx/vmx_run.S): the guest's
 * general registers to and from `regs` (indexed like enum kl_reg, 8 bytes
 * each), all but RAX and RSP, which each vendor moves its own way. The
 * array's address is in %rax.
 */
#ifndef KL_GPRS_H
#define KL_GPRS_H

#define KL_REG(n)	((n) * 8)

.macro KL_LOAD_GPRS
	mov	KL_REG(1)(%rax), %rcx
	mov	KL_REG(2)(%rax), %rdx
	mov	KL_REG(3)(%rax), %rbx
	mov	KL_REG(5)(%rax), %rbp
	mov	KL_REG(6)(%rax), %rsi
	mov	KL_REG(7)(%rax), %rdi
	mov	KL_REG(8)(%rax), %r8
	mov	KL_REG(9)(%rax), %r9
	mov	KL_REG(10)(%rax), %r10
	mov	KL_REG(11)(%rax), %r11
	mov	KL_REG(12)(%rax), %r12
	mov	KL_REG(13)(%rax), %r13
	mov	KL_REG(14)(%rax), %r14
	mov	KL_REG(15)(%rax), %r15
.endm

.macro KL_SAVE_GPRS
	mov	%rcx, KL_REG(1)(%rax)
	mov	%rdx, KL_REG(2)(%rax)
	mov	%rbx, KL_REG(3)(%rax)
	mov	%rbp, KL_REG(5)(%rax)
	mov	%rsi, KL_REG(6)(%rax)
	mov	%rdi, KL_REG(7)(%rax)
	mov	%r8, KL_REG(8)(%rax)
	mov	%r9, KL_REG(9)(%rax)
	mov	%r10, KL_REG(10)(%rax)
	mov	%r11, KL_REG(11)(%rax)
	mov	%r12, KL_REG(12)(%rax)
	mov	%r13, KL_REG(13)(%rax)
	mov	%r14, KL_REG(14)(%rax)
	mov	%r15, KL_REG(15)(%rax)
.endm

#endif
