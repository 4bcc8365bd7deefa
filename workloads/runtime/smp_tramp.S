/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Where a secondary CPU starts: the Startup IPI puts it in real mode at
 * CS = KL_TRAMP_PA >> 4, IP 0. smp.c copies this blob there and fills in
 * the four quads at its end for the one CPU it is starting; the code goes
 * from real mode to protected mode to long mode on the kernel's own page
 * tables, takes its stack and jumps to kl_ap_entry(cpu) in the image.
 * It only runs from the copy, so every address in it is KL_TRAMP_PA plus
 * an offset.
 */
#include "asm.h"

#define KL_TRAMP_PA	0x8000
#define OFF(sym)	((sym) - kl_tramp_start)
#define PA(sym)		(KL_TRAMP_PA + OFF(sym))

	.section .rodata
	.balign 16
	.code16
	.globl kl_tramp_start
kl_tramp_start:
	cli
	cld
	mov	%cs, %ax
	mov	%ax, %ds
	lgdtl	OFF(tramp_gdtr)
	mov	%cr0, %eax
	or	$1, %eax			/* PE */
	mov	%eax, %cr0
	ljmpl	$0x08, $PA(pm32)

	.code32
pm32:
	mov	$0x10, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	mov	%cr4, %eax
	or	$((1 << 5) | (1 << 7)), %eax	/* PAE, PGE */
	mov	%eax, %cr4
	mov	PA(kl_tramp_cr3), %eax
	mov	%eax, %cr3
	mov	$0xc0000080, %ecx		/* EFER: LME, SCE, NXE */
	rdmsr
	or	$((1 << 8) | (1 << 0) | (1 << 11)), %eax
	wrmsr
	mov	%cr0, %eax
	or	$((1 << 31) | (1 << 16) | (1 << 5) | (1 << 1)), %eax	/* PG, WP, NE, MP */
	mov	%eax, %cr0
	ljmp	$0x18, $PA(pm64)

	.code64
pm64:
	mov	PA(kl_tramp_stack), %rsp
	mov	PA(kl_tramp_arg), %rdi
	jmp	*PA(kl_tramp_entry)

	.balign 8
tramp_gdt:
	.quad	0
	.quad	0x00cf9a000000ffff		/* 0x08: 32-bit code */
	.quad	0x00cf92000000ffff		/* 0x10: data */
	.quad	0x00af9a000000ffff		/* 0x18: 64-bit code */
tramp_gdtr:
	.word	4 * 8 - 1
	.long	PA(tramp_gdt)
	.balign 8
	.globl kl_tramp_cr3, kl_tramp_stack, kl_tramp_entry, kl_tramp_arg, kl_tramp_end
kl_tramp_cr3:	.quad 0
kl_tramp_stack:	.quad 0
kl_tramp_entry:	.quad 0
kl_tramp_arg:	.quad 0
kl_tramp_end:
