/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A real-mode guest for kvmlab-abi-test, copied to 0x1000 and entered at
 * 0000:1000: into 16-bit protected mode (CS.D=0) with a 4 GiB data segment,
 * an MMIO store through a 32-bit address there, back to real mode keeping
 * that segment's 4 GiB limit ("unreal" or "big real" mode), a store to
 * RAM at 2 MiB and an MMIO store from there, then OUT 0x10 and HLT.
 * Absolute addresses are offsets from modes_guest_start plus 0x1000.
 */
#define AT(label)	((label) - modes_guest_start + 0x1000)

	.code16
	.section .rodata.modes, "a"
	.globl modes_guest_start, modes_guest_end
modes_guest_start:
	cli
	xor	%ax, %ax
	mov	%ax, %ds
	lgdtl	AT(gdtr)
	mov	%cr0, %eax
	or	$1, %eax
	mov	%eax, %cr0			/* protected mode */
	ljmp	$8, $AT(pm16)			/* 16-bit code segment */
pm16:
	mov	$16, %ax
	mov	%ax, %ds			/* base 0, limit 4 GiB */
	mov	$0xfe000000, %ebx
	mov	$0x1616, %ax
	mov	%ax, (%ebx)			/* MMIO, 16-bit code, 32-bit address */
	mov	%cr0, %eax
	and	$0xfffffffe, %eax
	mov	%eax, %cr0			/* real mode again; DS keeps its limit */
	ljmp	$0, $AT(unreal)
unreal:
	mov	$0x200000, %ebx
	mov	$0x55aa, %ax
	mov	%ax, (%ebx)			/* RAM at 2 MiB from real mode */
	mov	$0xfe000010, %ebx
	mov	$0x7777, %ax
	mov	%ax, (%ebx)			/* MMIO from real mode */
	out	%al, $0x10
	hlt

	.balign 8
gdt:
	.quad	0
	.quad	0x00009a000000ffff		/* 8: 16-bit code, base 0, limit 64 KiB */
	.quad	0x00cf92000000ffff		/* 16: data, base 0, limit 4 GiB */
gdtr:
	.word	gdtr - gdt - 1
	.long	AT(gdt)
modes_guest_end:
	.section .note.GNU-stack, "", @progbits
