/* SPDX-License-Identifier: GPL-2.0 */
/* Selectors and macros shared by entry.S and the C runtime. */
#ifndef KVMLAB_RT_ASM_H
#define KVMLAB_RT_ASM_H

#ifdef __x86_64__
/*
 * GDT layout. SYSRET loads CS = STAR[63:48] + 16 and SS = STAR[63:48] + 8,
 * which forces user data to sit just below user 64-bit code.
 */
#define KERNEL_CS	0x08
#define KERNEL_DS	0x10
#define USER_CS32	0x18	/* SYSRET base; never used for code here */
#define USER_DS		(0x20 | 3)
#define USER_CS		(0x28 | 3)
#define TSS_SEL		0x30
#define EXTABLE_PTR	.quad
#else
/* 32-bit: flat segments; system calls are INT 0x80, as in 32-bit Linux. */
#define KERNEL_CS	0x08
#define KERNEL_DS	0x10
#define USER_CS		(0x18 | 3)
#define USER_DS		(0x20 | 3)
#define TSS_SEL		0x28
#define EXTABLE_PTR	.long
#endif
#define KL_SYSCALL_VECTOR	0x80

#ifdef __ASSEMBLER__
/* Exception-table entry: a fault at \insn resumes at \fixup. */
.macro EXTABLE insn, fixup
	.pushsection .kl_extable, "a"
	.balign 8
	EXTABLE_PTR \insn, \fixup
	.popsection
.endm
#endif

#endif
