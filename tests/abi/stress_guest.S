/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The guest of kvmlab-stress, 64-bit position-independent code copied into
 * guest memory. Each round it writes and reads back every page of its own
 * area and drops each translation (INVLPG), reloads CR3 (a full flush),
 * reads the window whose memslot the host keeps moving, and reports that
 * value on port 0x10 (an exit to userspace per round).
 *
 *   rdi: this vCPU's area (rcx pages), rsi: the window, rdx: rounds
 *   port 0x11: done; port 0x12: a page did not read back what was written
 */
	.text
	.code64
	.globl stress_guest_start, stress_guest_end
stress_guest_start:
	mov	%rcx, %r10
	mov	%rdx, %r9
1:	xor	%rcx, %rcx
2:	mov	%rcx, %rax
	shl	$12, %rax
	lea	(%rdi,%rax), %rbx
	mov	%r9, (%rbx)
	cmp	%r9, (%rbx)
	jne	9f
	invlpg	(%rbx)
	inc	%rcx
	cmp	%r10, %rcx
	jb	2b
	mov	%cr3, %rax
	mov	%rax, %cr3
	mov	(%rsi), %rax
	out	%eax, $0x10
	dec	%r9
	jnz	1b
	out	%eax, $0x11
	hlt
9:	out	%eax, $0x12
	hlt
stress_guest_end:
	.section .note.GNU-stack, "", @progbits
