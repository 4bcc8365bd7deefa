/* SPDX-License-Identifier: GPL-2.0 */
/*
 * realmode: real-mode code, as a PC runs it before any OS — started by the
 * harness in real mode at 0000:8000 (the image's .kl_realmode section says
 * so), paging off, no runtime. Each round:
 *
 *   - a far call into another segment, its segment computed from the
 *     routine's address (segment arithmetic), returning with LRET;
 *   - INT 60h through a vector it installed in its own IVT, IRET back;
 *   - a store through DS=0C00h read back through DS=0 (same linear bytes);
 *   - REP OUTSB of 16 bytes to the echo port, REP INSW of 4 words back;
 *   - into 16-bit protected mode and out again, keeping a 4 GiB data
 *     segment ("unreal" mode), then a store and load at 2 MiB and on the
 *     scratch MMIO device through 32-bit addresses.
 *
 * Everything read back is mixed into a checksum (FNV-1a style) that must
 * be the same under every hypervisor; the phase and the exit go through
 * KL_PORT_MSG as for every workload (messages built here by hand).
 */
#define KL_PORT_MSG	0x0504
#define KL_PORT_ECHO	0x0508
#define SCRATCH		0xfe000000
#define HIGH_RAM	0x200000

	.code16
	.section .text, "ax"
	.globl	_start
_start:
	cli
	xor	%ax, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	mov	$0x7000, %sp
	movw	$int60, 0x60 * 4		/* IVT[60h] = 0000:int60 */
	movw	$0, 0x60 * 4 + 2
	lgdtl	gdtr
	movl	$0x811c9dc5, sum
	movl	$1, msg_type			/* KL_MSG_PHASE_BEGIN */
	call	send
	movl	rounds + 128, %ebp		/* struct kl_param .value */
	movl	%ebp, ops

round:
	/* Far call: segment = address >> 4, offset = address & 15. */
	mov	%ebp, %eax
	push	%cs
	push	$1f
	mov	$far_fn, %bx
	mov	%bx, %cx
	shr	$4, %bx
	and	$15, %cx
	push	%bx
	push	%cx
	lret
1:	call	mix

	/* A software interrupt through our own vector. */
	mov	%ebp, %eax
	mov	$0x12345, %ebx
	int	$0x60
	call	mix

	/* The same linear bytes through two segments. */
	mov	$0x0c00, %ax
	mov	%ax, %ds
	mov	%bp, 0x10			/* 0c00:0010 = 0xc010 */
	xor	%ax, %ax
	mov	%ax, %ds
	movzwl	0xc010, %eax
	call	mix

	/* String I/O: 16 bytes out (the echo keeps the last), 4 words in. */
	mov	%bp, buf
	mov	$buf, %si
	mov	$KL_PORT_ECHO, %dx
	mov	$16, %cx
	cld
	rep outsb
	mov	$buf2, %di
	mov	$4, %cx
	rep insw
	movl	buf2, %eax
	call	mix
	movl	buf2 + 4, %eax
	call	mix

	/* Protected mode and back, keeping a 4 GiB data segment. */
	mov	%cr0, %eax
	or	$1, %eax
	mov	%eax, %cr0
	ljmp	$8, $pm16
pm16:
	mov	$16, %ax
	mov	%ax, %ds
	mov	%cr0, %eax
	and	$0xfffffffe, %eax
	mov	%eax, %cr0
	ljmp	$0, $unreal
unreal:
	mov	%ebp, %ebx
	and	$0x3ff, %ebx
	shl	$2, %ebx
	mov	%ebp, %eax
	imul	$0x9e3779b9, %eax
	mov	%eax, HIGH_RAM(%ebx)		/* RAM above 1 MiB */
	mov	%eax, SCRATCH(%ebx)		/* the scratch MMIO device */
	mov	HIGH_RAM(%ebx), %ecx
	xor	%ecx, %eax
	mov	SCRATCH(%ebx), %ecx
	xor	%ecx, %eax			/* the value again when both read back */
	add	%ebp, %eax
	xor	%cx, %cx
	mov	%cx, %ds			/* plain real mode again */
	call	mix

	dec	%ebp
	jnz	round

	movl	$2, msg_type			/* KL_MSG_PHASE_END: a = ops, b = checksum */
	movl	ops, %eax
	movl	%eax, msg_a
	movl	sum, %eax
	movl	%eax, msg_b
	call	send
	movl	$5, msg_type			/* KL_MSG_EXIT, status 0 */
	movl	$0, msg_a
	movl	$0, msg_b
	call	send
2:	hlt
	jmp	2b

/* sum = (sum ^ eax) * 16777619 */
mix:
	xorl	sum, %eax
	imul	$16777619, %eax
	movl	%eax, sum
	ret

send:
	mov	$msg, %eax
	mov	$KL_PORT_MSG, %dx
	out	%eax, %dx
	ret

/* In another segment: CS != 0 here, so only register work. */
far_fn:
	rol	$5, %eax
	xor	$0x9e3779b9, %eax
	lret

int60:
	add	%ebx, %eax
	rol	$3, %eax
	iret

	.section .data, "aw"
	.balign 8
msg:					/* struct kl_msg */
msg_type:	.long	0
msg_status:	.long	0
msg_a:		.quad	0
msg_b:		.quad	0
msg_c:		.quad	0
		.fill	112, 1, 0
sum:		.long	0
ops:		.long	0
buf:		.ascii	"realmode-string!"
buf2:		.fill	8, 1, 0
	.balign 8
gdt:
	.quad	0
	.quad	0x00009a000000ffff		/* 8: 16-bit code, base 0 */
	.quad	0x00cf92000000ffff		/* 16: data, base 0, 4 GiB */
gdtr:
	.word	gdtr - gdt - 1
	.long	gdt

	.section .kl_params, "aw"
	.balign 8
rounds:					/* struct kl_param */
	.ascii	"rounds"
	.fill	24 - 6, 1, 0
	.ascii	"rounds of far calls, INT, string I/O and protected mode and back"
	.fill	80 - 64, 1, 0
	.quad	200, 1, 100000, 200		/* default, min, max, value */

	.section .kl_realmode, "", @progbits
	.ascii	"starts in real mode"

	.section .note.GNU-stack, "", @progbits
