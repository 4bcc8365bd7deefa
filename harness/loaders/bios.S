/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A minimal BIOS for guests entered in real mode (a Linux bzImage's
 * 16-bit setup code): the services that code asks for, loaded at 0xf0000
 * (segment 0xf000) with the interrupt vectors pointing here. Offsets below
 * are offsets in that segment: the code is position-dependent on it.
 *
 *   int 10h  video: teletype (AH=0Eh) goes to COM1, so the setup code's
 *            messages reach the console; get mode says 80x25 text mode 3;
 *            VESA calls fail (AX != 004Fh); the rest change nothing
 *   int 13h  disk: no drives (CF=1)
 *   int 15h  E820h: the memory map the harness wrote at bios_e820;
 *            EC00h (long-mode hint) succeeds; the rest fail (CF=1)
 *   int 16h  keyboard: no key, typematic calls succeed
 *   int 1Ah  time: unsupported (CF=1)
 *   others   return at once
 *
 * The harness (loaders/boot.c) copies bios_start..bios_end to 0xf0000,
 * fills the E820 table, and points every vector of the IVT at
 * bios_default except those above.
 */
	.code16
	.section .rodata.bios, "a"
	.globl bios_start, bios_end, bios_default, bios_int10, bios_int13, bios_int15
	.globl bios_int16, bios_int1a, bios_e820

#define SMAP	0x534d4150

/* Set or clear CF in the FLAGS the INT pushed, then return. */
.macro iret_cf set
	push	%bp
	mov	%sp, %bp
	.if \set
	orw	$1, 6(%bp)
	.else
	andw	$0xfffe, 6(%bp)
	.endif
	pop	%bp
	iret
.endm

bios_start:
bios_default:
	iret

bios_int10:
	cmp	$0x0e, %ah
	je	1f
	cmp	$0x0f, %ah
	je	2f
	cmp	$0x4f, %ah
	je	3f
	iret
1:	push	%dx			/* teletype: the byte to COM1 */
	push	%ax
	mov	$0x3f8, %dx
	out	%al, %dx
	pop	%ax
	pop	%dx
	iret
2:	mov	$0x5003, %ax		/* 80 columns, mode 3 */
	xor	%bh, %bh
	iret
3:	mov	$0x0100, %ax		/* VESA: function failed */
	iret

bios_int13:
	mov	$0x01, %ah		/* invalid function: no drives */
	iret_cf 1

bios_int15:
	cmp	$0xe820, %eax
	je	e820
	cmp	$0xec00, %ax
	je	ok15
	mov	$0x86, %ah		/* function not supported */
	iret_cf 1
ok15:
	xor	%ah, %ah
	iret_cf 0
e820:
	cmp	$SMAP, %edx
	jne	fail15
	cmp	%cs:bios_e820 - bios_start, %ebx
	jae	fail15
	push	%ds
	push	%si
	push	%di
	push	%cs
	pop	%ds
	imul	$20, %bx, %si
	add	$(bios_e820 - bios_start + 4), %si
	mov	$20, %cx
	cld
	rep movsb			/* entry EBX to ES:DI */
	pop	%di
	pop	%si
	pop	%ds
	inc	%ebx
	cmp	%cs:bios_e820 - bios_start, %ebx
	jb	1f
	xor	%ebx, %ebx		/* that was the last */
1:	mov	$SMAP, %eax
	mov	$20, %ecx
	iret_cf 0
fail15:
	mov	$0x86, %ah
	iret_cf 1

bios_int16:
	cmp	$0x03, %ah
	je	1f
	xor	%ax, %ax		/* no key; shift flags clear */
	iret
1:	iret_cf 0

bios_int1a:
	iret_cf 1

	.balign 4
/* The memory map: a count, then that many 20-byte E820 entries (the harness fills it). */
bios_e820:
	.long	0
	.fill	16 * 20, 1, 0
bios_end:
	.section .note.GNU-stack, "", @progbits
