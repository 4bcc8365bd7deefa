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
/*
 * The exception stubs of vectors 0-31, 16 bytes apart (the IDT is filled
 * from that spacing), with whether the CPU pushes an error code: entry.S
 * and entry32.S each define TRAP_STUB for their word size.
 */
.macro TRAP_STUB_TABLE
TRAP_STUB 0,0;  TRAP_STUB 1,0;  TRAP_STUB 2,0;  TRAP_STUB 3,0
TRAP_STUB 4,0;  TRAP_STUB 5,0;  TRAP_STUB 6,0;  TRAP_STUB 7,0
TRAP_STUB 8,1;  TRAP_STUB 9,0;  TRAP_STUB 10,1; TRAP_STUB 11,1
TRAP_STUB 12,1; TRAP_STUB 13,1; TRAP_STUB 14,1; TRAP_STUB 15,0
TRAP_STUB 16,0; TRAP_STUB 17,1; TRAP_STUB 18,0; TRAP_STUB 19,0
TRAP_STUB 20,0; TRAP_STUB 21,1; TRAP_STUB 22,0; TRAP_STUB 23,0
TRAP_STUB 24,0; TRAP_STUB 25,0; TRAP_STUB 26,0; TRAP_STUB 27,0
TRAP_STUB 28,0; TRAP_STUB 29,1; TRAP_STUB 30,1; TRAP_STUB 31,0
.endm

/* Exception-table entry: a fault at \insn resumes at \fixup. */
.macro EXTABLE insn, fixup
	.pushsection .kl_extable, "a"
	.balign 8
	EXTABLE_PTR \insn, \fixup
	.popsection
.endm
#endif

#endif
