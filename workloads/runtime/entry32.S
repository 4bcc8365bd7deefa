/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Entry points of the 32-bit runtime (PAE and 2-level images): the
 * real-mode start, exception stubs, the INT 0x80 system-call entry, the
 * CPL3 enter/leave pair and the fault probes. The 64-bit twin is entry.S;
 * trap.c's struct trap_frame describes what both push.
 */
#include "asm.h"

/*
 * The harness starts a 32-bit image the way a PC starts any OS: in real
 * mode, here at 0000:8000 (guest32.ld), paging off. A boot GDT of our own,
 * CR0.PE, a far jump, and kl_start takes over in flat protected mode.
 */
	.section .text16, "ax"
	.code16
	.globl _start16
_start16:
	cli
	xor	%ax, %ax
	mov	%ax, %ds
	mov	%ax, %ss
	mov	$0x7000, %sp
	lgdtl	boot_gdtr
	mov	%cr0, %eax
	or	$1, %eax			/* CR0.PE */
	mov	%eax, %cr0
	ljmpl	$KERNEL_CS, $start32

	.balign 8
boot_gdt:
	.quad	0
	.quad	0x00cf9b000000ffff		/* KERNEL_CS: flat 32-bit code */
	.quad	0x00cf93000000ffff		/* KERNEL_DS: flat data */
boot_gdtr:
	.word	boot_gdtr - boot_gdt - 1
	.long	boot_gdt

	/* Marks the image as entered in real mode (guest_abi.h). */
	.section .kl_realmode, "", @progbits
	.byte	1

	.section .text.entry, "ax"
	.code32
start32:
	mov	$KERNEL_DS, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	mov	%ax, %fs
	mov	%ax, %gs
	mov	$boot_stack_top, %esp
	xor	%ebp, %ebp
	call	kl_start_real_mode
1:	cli
	hlt
	jmp	1b

	.text
/* void kl_load_segments(u16 cs, u16 ds): reload every selector after lgdt. */
	.globl kl_load_segments
kl_load_segments:
	mov	8(%esp), %eax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	xor	%eax, %eax
	mov	%ax, %fs
	mov	%ax, %gs
	pushl	4(%esp)			/* CS */
	push	$1f
	lret
1:	ret

/*
 * Exception stubs: vectors 0-31, 16 bytes apart. Vectors without an error
 * code push a zero so every frame looks the same.
 */
.macro TRAP_STUB vec, has_error
	.align 16
trap_stub_\vec:
	.if \has_error == 0
	pushl	$0
	.endif
	pushl	$\vec
	jmp	trap_common
.endm

	.align 16
	.globl kl_trap_stubs
kl_trap_stubs:
TRAP_STUB_TABLE

/* From CPL3 the CPU has switched to TSS.ESP0 and loaded SS; DS/ES stay flat. */
trap_common:
	pusha
	mov	%esp, %eax
	cld
	push	%eax
	call	kl_trap
	add	$4, %esp
	popa
	add	$8, %esp		/* vector and error code */
	iret

/*
 * INT 0x80: EAX = number, EBX/ECX/EDX = arguments; the result goes back in
 * EAX. kl_syscall(a, b, c, nr) is the C side, shared with the 64-bit entry.
 */
	.globl kl_syscall_entry
kl_syscall_entry:
	push	%ecx
	push	%edx
	push	%eax
	push	%edx
	push	%ecx
	push	%ebx
	cld
	call	kl_syscall
	add	$16, %esp
	pop	%edx
	pop	%ecx
	iret

/*
 * long user_enter(ulong eip, ulong esp, u64 arg): drop to CPL3 at eip with
 * arg as the C argument of the function there (on its stack, after a zero
 * return address). Control comes back through user_leave.
 */
	.globl user_enter
user_enter:
	push	%ebx
	push	%ebp
	push	%esi
	push	%edi
	mov	%esp, kernel_ctx_esp
	mov	20(%esp), %ecx		/* eip */
	mov	24(%esp), %edx		/* user esp */
	mov	28(%esp), %eax		/* arg, low half */
	mov	32(%esp), %ebx		/* arg, high half */
	/* The user stack is mapped in the loaded space: write the frame there. */
	mov	%ebx, -4(%edx)
	mov	%eax, -8(%edx)
	movl	$0, -12(%edx)
	sub	$12, %edx
	pushl	$USER_DS
	push	%edx			/* user ESP */
	pushl	$0x2			/* EFLAGS: IF=0 */
	pushl	$USER_CS
	push	%ecx			/* user EIP */
	mov	$USER_DS, %ax
	mov	%ax, %ds
	mov	%ax, %es
	xor	%eax, %eax
	xor	%ebx, %ebx
	xor	%ecx, %ecx
	xor	%edx, %edx
	xor	%esi, %esi
	xor	%edi, %edi
	xor	%ebp, %ebp
	iret

/* noreturn void user_leave(long value): back to user_enter's caller. */
	.globl user_leave
user_leave:
	mov	4(%esp), %eax
	mov	$KERNEL_DS, %cx
	mov	%cx, %ds
	mov	%cx, %es
	mov	kernel_ctx_esp, %esp
	pop	%edi
	pop	%esi
	pop	%ebp
	pop	%ebx
	ret

/*
 * Probes. Each faulting instruction has an exception-table entry; on a
 * fault the handler puts the vector in EAX and resumes at the fixup label,
 * otherwise EAX = NO_FAULT (-1). 64-bit accesses are two 32-bit ones.
 */
	.globl probe_read64
probe_read64:				/* (va, u64 *out) */
	mov	4(%esp), %ecx
1:	mov	(%ecx), %eax
2:	mov	4(%ecx), %edx
	mov	8(%esp), %ecx
	mov	%eax, (%ecx)
	mov	%edx, 4(%ecx)
	mov	$-1, %eax
3:	ret
	EXTABLE 1b, 3b
	EXTABLE 2b, 3b

	.globl probe_write64
probe_write64:				/* (va, u64 val) */
	mov	4(%esp), %ecx
	mov	8(%esp), %eax
	mov	12(%esp), %edx
1:	mov	%eax, (%ecx)
2:	mov	%edx, 4(%ecx)
	mov	$-1, %eax
3:	ret
	EXTABLE 1b, 3b
	EXTABLE 2b, 3b

	/* Single 32-bit accesses: one translation each (mmufuzz's words). */
	.globl probe_read32
probe_read32:				/* (va, u32 *out) */
	mov	4(%esp), %ecx
1:	mov	(%ecx), %eax
	mov	8(%esp), %ecx
	mov	%eax, (%ecx)
	mov	$-1, %eax
2:	ret
	EXTABLE 1b, 2b

	.globl probe_write32
probe_write32:				/* (va, u32 val) */
	mov	4(%esp), %ecx
	mov	8(%esp), %eax
1:	mov	%eax, (%ecx)
	mov	$-1, %eax
2:	ret
	EXTABLE 1b, 2b

	.globl probe_div0
probe_div0:
	xor	%ecx, %ecx
	mov	$1, %eax
	xor	%edx, %edx
1:	div	%ecx
	mov	$-1, %eax
2:	ret
	EXTABLE 1b, 2b

	.globl probe_ud2
probe_ud2:
1:	ud2
	mov	$-1, %eax
2:	ret
	EXTABLE 1b, 2b

	/* #BP is a trap: the saved EIP is already past int3. */
	.globl probe_int3
probe_int3:
	mov	$-1, %eax
	int3
1:	ret
	EXTABLE 1b, 1b

	/* int probe_load_cr3(ulong cr3): #GP when a PAE PDPTE has reserved bits. */
	.globl probe_load_cr3
probe_load_cr3:
	mov	4(%esp), %ecx
	mov	$-1, %eax
1:	mov	%ecx, %cr3
2:	ret
	EXTABLE 1b, 2b

	/* A fetch fault at the target resumes at exec_probe_fixup (trap.c). */
	.globl probe_exec, exec_probe_fixup
probe_exec:				/* (va) */
	mov	4(%esp), %ecx
	mov	%ecx, exec_probe_target
	mov	$-1, %eax
	call	*%ecx
	movl	$0, exec_probe_target
	ret
exec_probe_fixup:
	add	$4, %esp
	ret

	.bss
	.align 16
	.globl exec_probe_target
exec_probe_target:	.long 0
kernel_ctx_esp:		.long 0
	.align 4096
	.space 16384
boot_stack_top:
	.space 8192
	.globl kl_trap_stack_top
kl_trap_stack_top:
