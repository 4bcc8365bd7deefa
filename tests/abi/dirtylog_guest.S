/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The guest of kvmlab-dirtylog, 64-bit position-independent code. It uses
 * no stack and writes no memory but what it is told to, so the pages the
 * host finds dirty are exactly the ones it asked to be written.
 *
 *   rdi: the mailbox (in memory that is not logged), rsi: vCPU id,
 *   rdx: number of vCPUs. Mailbox: +0 op, +8 count, +16 base, +24 stop,
 *   +32 list of gpas.
 *   op 1: write a byte to each listed page     op 2: read each listed page
 *   op 3: REP INSB `count` bytes from port 0x20 into the first listed page
 *   op 4: until stop, write a rising counter to pages base + k * 4096 with
 *         k = id, id + vCPUs, ... below count, round after round
 *   port 0x10: op done (the host sets the next one); port 0x11: stopped
 */
	.text
	.code64
	.globl dirtylog_guest_start, dirtylog_guest_end
dirtylog_guest_start:
	mov	%rdi, %r8
	mov	%rdx, %r9
next:	mov	(%r8), %rax
	cmp	$1, %rax
	je	op_write
	cmp	$2, %rax
	je	op_read
	cmp	$3, %rax
	je	op_ins
	cmp	$4, %rax
	je	op_live
	hlt
	jmp	next

op_write:
	xor	%rcx, %rcx
1:	cmp	8(%r8), %rcx
	jae	done
	mov	32(%r8,%rcx,8), %rbx
	mov	%cl, (%rbx)
	inc	%rcx
	jmp	1b

op_read:
	xor	%rcx, %rcx
1:	cmp	8(%r8), %rcx
	jae	done
	mov	32(%r8,%rcx,8), %rbx
	mov	(%rbx), %al
	inc	%rcx
	jmp	1b

op_ins:
	mov	32(%r8), %rdi
	mov	8(%r8), %rcx
	mov	$0x20, %dx
	cld
	rep insb
	jmp	done

op_live:
	mov	%r9, %r10
	shl	$12, %r10		/* stride: vCPUs pages */
	mov	8(%r8), %r11
	shl	$12, %r11
	add	16(%r8), %r11		/* end of the area */
	xor	%rax, %rax
1:	mov	%rsi, %rbx
	shl	$12, %rbx
	add	16(%r8), %rbx		/* this vCPU's first page */
2:	cmpq	$0, 24(%r8)
	jne	3f
	inc	%rax
	mov	%rax, (%rbx)
	add	%r10, %rbx
	cmp	%r11, %rbx
	jb	2b
	jmp	1b
3:	out	%al, $0x11
	hlt
	jmp	3b

done:	out	%al, $0x10
	jmp	next
dirtylog_guest_end:
	.section .note.GNU-stack, "", @progbits
