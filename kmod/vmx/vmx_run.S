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
#include "../include/kl_gprs.h"
#include <asm/nospec-branch.h>
#include <asm/unwind_hints.h>

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
	KL_LOAD_GPRS
	mov	KL_REG(0)(%rax), %rax
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
	KL_SAVE_GPRS
	popq	KL_REG(0)(%rax)
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
