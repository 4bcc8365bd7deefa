/*
 * multiboot-hello: the Multiboot header, the 32-bit entry, and interrupt
 * stubs. The loader leaves us in 32-bit protected mode, paging off, with
 * EAX = 0x2BADB002 and EBX = the Multiboot information structure.
 */
#define MB_MAGIC	0x1badb002
#define MB_FLAGS	0x00000003	/* modules page-aligned, memory information */

	.section .multiboot, "a"
	.align 4
	.long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

	.text
	.globl _start
_start:
	mov	$stack_top, %esp
	push	%ebx
	push	%eax
	call	kmain
	/* kmain returns only after writing the exit port; if that did nothing, stop. */
1:	cli
	hlt
	jmp	1b

/* Every vector enters isr_common with (vector, error code) on the stack. */
.macro stub vec
	.globl isr_\vec
isr_\vec:
	.if (\vec != 8) && (\vec < 10 || \vec > 14) && (\vec != 17)
	push	$0		/* no error code from the CPU: keep one frame layout */
	.endif
	push	$\vec
	jmp	isr_common
.endm

	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19
	stub \v
	.endr
	stub 32
	stub 36
	stub 39
	stub 64
	stub 255

isr_common:
	pusha
	push	36(%esp)	/* error code */
	push	36(%esp)	/* vector (the first push moved it there) */
	call	isr
	add	$8, %esp
	popa
	add	$8, %esp
	iret

	.bss
	.align 16
	.space 16384
stack_top:
	.section .note.GNU-stack, "", @progbits
