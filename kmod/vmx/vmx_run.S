/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One VMLAUNCH or VMRESUME. Called with interrupts disabled; the VMCS is
 * current and holds every guest and host field but HOST_RSP, written here
 * because only here is the stack pointer the exit returns to known.
 *
 *   int kl_vmx_vmrun(u64 *regs, bool launched)
 *
 * Returns 0 after a VM exit (the CPU comes back at kl_vmx_vmexit with the
 * host's RSP and the guest's general registers, which are stored through
 * `regs`, indexed like enum kl_reg), 1 if the instruction failed (the VMCS's
 * VM_INSTRUCTION_ERROR says why). Guest RSP lives in the VMCS; the other 15
 * registers are swapped here. The host's callee-saved registers are on the
 * stack, since the exit restores none of them.
 */
#include <linux/linkage.h>
#include <asm/nospec-branch.h>
#include <asm/unwind_hints.h>

#define REG(n)		(n * 8)
#define HOST_RSP	0x00006c14

	.text
SYM_FUNC_START(kl_vmx_vmrun)
	push	%rbp
	push	%r15
	push	%r14
	push	%r13
	push	%r12
	push	%rbx
	push	%rdi			/* 0(%rsp): regs */

	mov	$HOST_RSP, %rax
	vmwrite	%rsp, %rax
	jbe	.Lfail

	mov	%rdi, %rax
	/* Flags from here to the VMX instruction come from this test only. */
	test	%sil, %sil
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
	mov	REG(0)(%rax), %rax
	/*
	 * A successful VMLAUNCH/VMRESUME does not fall through: the exit
	 * resumes at kl_vmx_vmexit (HOST_RIP) with this stack, which objtool
	 * is told to expect there.
	 */
	UNWIND_HINT_SAVE
	jnz	.Lresume
	vmlaunch
	jmp	.Lfail
.Lresume:
	vmresume
	jmp	.Lfail

SYM_INNER_LABEL(kl_vmx_vmexit, SYM_L_GLOBAL)
	UNWIND_HINT_RESTORE
	ENDBR
	push	%rax
	mov	8(%rsp), %rax
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
	popq	REG(0)(%rax)
	xor	%eax, %eax
	jmp	.Lout

.Lfail:
	mov	$1, %eax
.Lout:
	add	$8, %rsp
	pop	%rbx
	pop	%r12
	pop	%r13
	pop	%r14
	pop	%r15
	pop	%rbp
	RET
SYM_FUNC_END(kl_vmx_vmrun)
