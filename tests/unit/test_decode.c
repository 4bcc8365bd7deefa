// SPDX-License-Identifier: GPL-2.0
/*
 * The instruction decoder (kmod/x86/decode.c), every form it claims:
 * prefixes, REX, ModRM with every mod, SIB with and without base and
 * index, RIP-relative operands, displacements, immediates, each opcode it
 * knows; unknown opcodes and truncated instructions refused.
 */
#include <string.h>
#include "check.h"
#include "../../kmod/x86/decode.h"

static u64 regs[16];
static struct kl_decode_ctx ctx64, ctx32, ctx16;
static struct kl_insn in;

static int decode(const struct kl_decode_ctx *c, const char *hex)
{
	int len = 0;

	memset(&in, 0, sizeof(in));
	for (const char *p = hex; p[0] && p[1]; ) {
		unsigned int b;

		if (*p == ' ') {
			p++;
			continue;
		}
		sscanf(p, "%2x", &b);
		in.bytes[len++] = (u8)b;
		p += 2;
	}
	return kl_decode(c, &in, len);
}

static void setup(void)
{
	for (int i = 0; i < 16; i++)
		regs[i] = 0x1000ULL * (i + 1);		/* RAX 0x1000, RCX 0x2000, ... R15 0x10000 */
	ctx64 = (struct kl_decode_ctx) {
		.code_size = 8, .rip = 0x400000, .regs = regs,
		.seg_base = { [KL_SEG_FS] = 0x7000000000ULL, [KL_SEG_GS] = 0x8000000000ULL,
			      [KL_SEG_DS] = 0x55 },
	};
	ctx32 = (struct kl_decode_ctx) {
		.code_size = 4, .rip = 0x1000, .regs = regs,
		.seg_base = { [KL_SEG_DS] = 0x100000, [KL_SEG_FS] = 0x200000 },
	};
	/* Real mode: segment bases are selector * 16. */
	ctx16 = (struct kl_decode_ctx) {
		.code_size = 2, .rip = 0x7c00, .regs = regs,
		.seg_base = { [KL_SEG_ES] = 0x20000, [KL_SEG_CS] = 0, [KL_SEG_SS] = 0x30000,
			      [KL_SEG_DS] = 0x10000, [KL_SEG_FS] = 0x40000, [KL_SEG_GS] = 0x50000 },
	};
}

static void mov_store_register_indirect(void)
{
	CHECK_EQ(decode(&ctx64, "48 89 03"), 0);	/* mov %rax,(%rbx) */
	CHECK_EQ(in.len, 3);
	CHECK(in.mem && in.rex_w && in.opsize == 8);
	CHECK_EQ(in.opcode[0], 0x89);
	CHECK_EQ(in.reg, 0);
	CHECK_EQ(in.ea, regs[3]);	/* no DS base in 64-bit mode */
}

static void modrm_disp8_disp32(void)
{
	CHECK_EQ(decode(&ctx64, "89 43 f8"), 0);	/* mov %eax,-8(%rbx) */
	CHECK_EQ(in.len, 3);
	CHECK_EQ(in.ea, regs[3] - 8);
	CHECK_EQ(in.opsize, 4);
	CHECK_EQ(decode(&ctx64, "89 83 00 10 00 00"), 0);	/* mov %eax,0x1000(%rbx) */
	CHECK_EQ(in.len, 6);
	CHECK_EQ(in.ea, regs[3] + 0x1000);
}

static void register_operand(void)
{
	CHECK_EQ(decode(&ctx64, "89 d8"), 0);		/* mov %ebx,%eax: mod 3 */
	CHECK(!in.mem && in.mod == 3);
	CHECK_EQ(in.reg, 3);
	CHECK_EQ(in.rm, 0);
}

static void sib_forms(void)
{
	CHECK_EQ(decode(&ctx64, "48 89 04 8b"), 0);	/* mov %rax,(%rbx,%rcx,4) */
	CHECK_EQ(in.ea, regs[3] + regs[1] * 4);
	CHECK_EQ(decode(&ctx64, "48 89 04 24"), 0);	/* mov %rax,(%rsp): index 4 = none */
	CHECK_EQ(in.ea, regs[4]);
	CHECK_EQ(decode(&ctx64, "48 89 04 cd 10 00 00 00"), 0);	/* mov %rax,0x10(,%rcx,8) */
	CHECK_EQ(in.len, 8);
	CHECK_EQ(in.ea, regs[1] * 8 + 0x10);
	CHECK_EQ(decode(&ctx64, "4b 89 44 c8 08"), 0);	/* mov %rax,8(%r8,%r9,8): REX.X, REX.B */
	CHECK(in.rex_x && in.rex_b);
	CHECK_EQ(in.ea, regs[8] + regs[9] * 8 + 8);
}

static void rex_extends_registers(void)
{
	CHECK_EQ(decode(&ctx64, "4d 89 3e"), 0);	/* mov %r15,(%r14) */
	CHECK_EQ(in.reg, 15);
	CHECK_EQ(in.rm, 14);
	CHECK_EQ(in.ea, regs[14]);
}

static void rip_relative(void)
{
	CHECK_EQ(decode(&ctx64, "48 89 05 10 00 00 00"), 0);	/* mov %rax,0x10(%rip) */
	CHECK_EQ(in.len, 7);
	CHECK_EQ(in.ea, ctx64.rip + 7 + 0x10);
	CHECK_EQ(decode(&ctx64, "c7 05 f0 ff ff ff 01 00 00 00"), 0);	/* movl $1,-0x10(%rip) */
	CHECK_EQ(in.len, 10);
	CHECK_EQ(in.ea, ctx64.rip + 10 - 0x10);
	CHECK_EQ(in.imm, 1);
}

static void immediates(void)
{
	CHECK_EQ(decode(&ctx64, "c6 03 ab"), 0);		/* movb $0xab,(%rbx) */
	CHECK_EQ(in.imm, 0xab);
	CHECK_EQ(in.imm_len, 1);
	CHECK_EQ(decode(&ctx64, "66 c7 03 34 12"), 0);	/* movw $0x1234,(%rbx) */
	CHECK_EQ(in.opsize, 2);
	CHECK_EQ(in.imm, 0x1234);
	CHECK_EQ(in.len, 5);
	CHECK_EQ(decode(&ctx64, "48 c7 03 ff ff ff ff"), 0);	/* movq $-1,(%rbx): sign-extended */
	CHECK_EQ(in.imm, ~0ULL);
	CHECK_EQ(decode(&ctx64, "c7 03 ff ff ff ff"), 0);	/* movl $-1: not extended */
	CHECK_EQ(in.imm, 0xffffffffULL);
}

static void segment_overrides(void)
{
	CHECK_EQ(decode(&ctx64, "64 48 89 03"), 0);	/* mov %rax,%fs:(%rbx) */
	CHECK_EQ(in.ea, regs[3] + ctx64.seg_base[KL_SEG_FS]);
	CHECK_EQ(decode(&ctx64, "65 48 8b 03"), 0);	/* mov %gs:(%rbx),%rax */
	CHECK_EQ(in.ea, regs[3] + ctx64.seg_base[KL_SEG_GS]);
}

static void moffs(void)
{
	CHECK_EQ(decode(&ctx64, "48 a3 00 00 00 fe 00 00 00 00"), 0);	/* movabs %rax,0xfe000000 */
	CHECK_EQ(in.len, 10);
	CHECK(in.mem);
	CHECK_EQ(in.ea, 0xfe000000ULL);
	CHECK_EQ(in.reg, 0);
	CHECK_EQ(decode(&ctx32, "a1 00 00 00 fe"), 0);	/* mov 0xfe000000,%eax: 4-byte moffs */
	CHECK_EQ(in.len, 5);
	CHECK_EQ(in.ea, 0xfe000000ULL + ctx32.seg_base[KL_SEG_DS]);
}

static void control_and_debug_registers(void)
{
	CHECK_EQ(decode(&ctx64, "0f 22 d8"), 0);	/* mov %rax,%cr3 */
	CHECK(in.opcode_len == 2 && in.opcode[1] == 0x22 && !in.mem);
	CHECK_EQ(in.reg, 3);
	CHECK_EQ(in.rm, 0);
	CHECK_EQ(decode(&ctx64, "0f 20 1f"), 0);	/* mov %cr3,%rdi: mod ignored, a register */
	CHECK(!in.mem);
	CHECK_EQ(in.rm, 7);
	CHECK_EQ(decode(&ctx64, "44 0f 22 c0"), 0);	/* mov %rax,%cr8: REX.R */
	CHECK_EQ(in.reg, 8);
	CHECK_EQ(decode(&ctx64, "0f 23 f9"), 0);	/* mov %rcx,%dr7 */
	CHECK_EQ(in.reg, 7);
	CHECK_EQ(in.rm, 1);
	CHECK_EQ(decode(&ctx64, "0f 21 c8"), 0);	/* mov %dr1,%rax */
	CHECK_EQ(decode(&ctx64, "0f 06"), 0);		/* clts */
	CHECK_EQ(in.len, 2);
}

static void invlpg(void)
{
	CHECK_EQ(decode(&ctx64, "0f 01 3b"), 0);	/* invlpg (%rbx) */
	CHECK(in.mem);
	CHECK_EQ(in.reg, 7);
	CHECK_EQ(in.ea, regs[3]);
	CHECK_EQ(decode(&ctx64, "41 0f 01 7c 24 10"), 0);	/* invlpg 0x10(%r12) */
	CHECK_EQ(in.len, 6);
	CHECK_EQ(in.ea, regs[12] + 0x10);
}

static void loads_and_movzx(void)
{
	CHECK_EQ(decode(&ctx64, "8a 07"), 0);		/* mov (%rdi),%al */
	CHECK_EQ(in.opcode[0], 0x8a);
	CHECK_EQ(decode(&ctx64, "0f b6 07"), 0);	/* movzbl (%rdi),%eax */
	CHECK(in.opcode_len == 2 && in.opcode[1] == 0xb6 && in.mem);
	CHECK_EQ(decode(&ctx64, "0f b7 0f"), 0);	/* movzwl (%rdi),%ecx */
	CHECK_EQ(in.reg, 1);
	CHECK_EQ(decode(&ctx64, "88 23"), 0);		/* mov %ah,(%rbx) */
	CHECK_EQ(in.reg, 4);
}

static void stos(void)
{
	CHECK_EQ(decode(&ctx64, "f3 48 ab"), 0);	/* rep stos %rax,(%rdi) */
	CHECK(in.rep && in.opsize == 8);
	CHECK_EQ(in.len, 3);
	CHECK_EQ(decode(&ctx64, "aa"), 0);		/* stos %al */
	CHECK(!in.rep && in.string);
	CHECK_EQ(in.len, 1);
	CHECK_EQ(in.ea, regs[7]);
}

static void thirty_two_bit_code(void)
{
	CHECK_EQ(decode(&ctx32, "89 03"), 0);		/* mov %eax,(%ebx): DS base added */
	CHECK_EQ(in.ea, (u32)regs[3] + ctx32.seg_base[KL_SEG_DS]);
	CHECK_EQ(decode(&ctx32, "89 05 00 10 00 00"), 0);	/* mov %eax,0x1000: absolute, not RIP */
	CHECK_EQ(in.ea, 0x1000 + ctx32.seg_base[KL_SEG_DS]);
	CHECK_EQ(decode(&ctx32, "48 89 03"), -EOPNOTSUPP);	/* 0x48 is DEC EAX here, not REX */
	regs[3] = 0xfffffff0;
	CHECK_EQ(decode(&ctx32, "89 43 20"), 0);	/* wraps at 4 GiB */
	CHECK_EQ(in.ea, 0x10 + ctx32.seg_base[KL_SEG_DS]);
	CHECK_EQ(decode(&ctx32, "64 89 03"), 0);	/* FS override; the linear address wraps too */
	CHECK_EQ(in.ea, (u32)(0xfffffff0ULL + ctx32.seg_base[KL_SEG_FS]));
	CHECK_EQ(in.seg, KL_SEG_FS);
	regs[5] = 0x100;
	CHECK_EQ(decode(&ctx32, "89 45 04"), 0);	/* mov %eax,4(%ebp): SS by default */
	CHECK_EQ(in.seg, KL_SEG_SS);
	CHECK_EQ(decode(&ctx32, "26 89 45 04"), 0);	/* ES override */
	CHECK_EQ(in.seg, KL_SEG_ES);
	CHECK_EQ(decode(&ctx32, "66 c7 03 34 12"), 0);	/* 66: a 16-bit immediate */
	CHECK_EQ(in.opsize, 2);
	CHECK_EQ(in.len, 5);
}

static void refused(void)
{
	CHECK_EQ(decode(&ctx64, "01 03"), -EOPNOTSUPP);	/* add: not an opcode we know */
	CHECK_EQ(in.len, 1);
	CHECK_EQ(decode(&ctx64, "0f 0b"), -EOPNOTSUPP);	/* ud2 */
	CHECK_EQ(decode(&ctx64, "48 89 83 00 10"), -EFAULT);	/* disp32 cut short */
	CHECK_EQ(decode(&ctx64, "66 66 f3"), -EFAULT);	/* prefixes only */
	CHECK_EQ(decode(&ctx64, "c7 03 01 00"), -EFAULT);	/* imm32 cut short */
	CHECK_EQ(decode(&ctx64, ""), -EFAULT);
}

/* 16-bit addressing: the eight BX/BP/SI/DI forms, disp8 and disp16, SS for BP. */
static void sixteen_bit_forms(void)
{
	regs[3] = 0x1000;	/* BX */
	regs[5] = 0x2000;	/* BP */
	regs[6] = 0x0100;	/* SI */
	regs[7] = 0x0200;	/* DI */
	CHECK_EQ(decode(&ctx16, "89 00"), 0);		/* mov %ax,(%bx,%si) */
	CHECK_EQ(in.opsize, 2);
	CHECK_EQ(in.addr_size, 2);
	CHECK_EQ(in.offset, 0x1100);
	CHECK_EQ(in.seg, KL_SEG_DS);
	CHECK_EQ(in.ea, 0x10000 + 0x1100);
	CHECK_EQ(decode(&ctx16, "89 01"), 0);		/* (%bx,%di) */
	CHECK_EQ(in.offset, 0x1200);
	CHECK_EQ(decode(&ctx16, "89 02"), 0);		/* (%bp,%si): SS */
	CHECK_EQ(in.offset, 0x2100);
	CHECK_EQ(in.seg, KL_SEG_SS);
	CHECK_EQ(in.ea, 0x30000 + 0x2100);
	CHECK_EQ(decode(&ctx16, "89 03"), 0);		/* (%bp,%di) */
	CHECK_EQ(in.offset, 0x2200);
	CHECK_EQ(decode(&ctx16, "89 04"), 0);		/* (%si) */
	CHECK_EQ(in.offset, 0x0100);
	CHECK_EQ(decode(&ctx16, "89 05"), 0);		/* (%di) */
	CHECK_EQ(in.offset, 0x0200);
	CHECK_EQ(decode(&ctx16, "89 06 34 12"), 0);	/* disp16 alone: DS */
	CHECK_EQ(in.len, 4);
	CHECK_EQ(in.offset, 0x1234);
	CHECK_EQ(in.seg, KL_SEG_DS);
	CHECK_EQ(decode(&ctx16, "89 46 fe"), 0);	/* -2(%bp): SS, disp8 */
	CHECK_EQ(in.offset, 0x1ffe);
	CHECK_EQ(in.seg, KL_SEG_SS);
	CHECK_EQ(decode(&ctx16, "89 87 00 f0"), 0);	/* -0x1000(%bx): disp16, wraps at 64 KiB */
	CHECK_EQ(in.len, 4);
	CHECK_EQ(in.offset, 0x0000);
	CHECK_EQ(decode(&ctx16, "89 07"), 0);		/* (%bx) */
	CHECK_EQ(in.offset, 0x1000);
	regs[3] = 0xfff0;
	CHECK_EQ(decode(&ctx16, "89 40 20"), 0);	/* 0x20(%bx,%si) wraps */
	CHECK_EQ(in.offset, (0xfff0 + 0x100 + 0x20) & 0xffff);
}

static void sixteen_bit_prefixes_and_sizes(void)
{
	regs[3] = 0x1000;
	CHECK_EQ(decode(&ctx16, "66 89 07"), 0);	/* 66: 32-bit operand in 16-bit code */
	CHECK_EQ(in.opsize, 4);
	CHECK_EQ(in.addr_size, 2);
	CHECK_EQ(decode(&ctx16, "67 89 03"), 0);	/* 67: 32-bit addressing, (%ebx) */
	CHECK_EQ(in.addr_size, 4);
	CHECK_EQ(in.offset, 0x1000);
	CHECK_EQ(decode(&ctx16, "c7 07 34 12"), 0);	/* movw $0x1234,(%bx) */
	CHECK_EQ(in.imm, 0x1234);
	CHECK_EQ(in.len, 4);
	CHECK_EQ(decode(&ctx16, "66 c7 07 78 56 34 12"), 0);	/* movl $0x12345678,(%bx) */
	CHECK_EQ(in.imm, 0x12345678);
	CHECK_EQ(in.len, 7);
	CHECK_EQ(decode(&ctx16, "a1 00 b8"), 0);	/* mov 0xb800,%ax: 2-byte moffs */
	CHECK_EQ(in.len, 3);
	CHECK_EQ(in.ea, 0x10000 + 0xb800);
	CHECK_EQ(decode(&ctx16, "2e a3 10 00"), 0);	/* mov %ax,%cs:0x10 */
	CHECK_EQ(in.seg, KL_SEG_CS);
	CHECK_EQ(in.ea, 0x10);
	CHECK_EQ(decode(&ctx16, "36 89 07"), 0);	/* %ss:(%bx) */
	CHECK_EQ(in.ea, 0x30000 + 0x1000);
	CHECK_EQ(decode(&ctx16, "3e 89 46 00"), 0);	/* %ds:0(%bp): the override beats SS */
	CHECK_EQ(in.seg, KL_SEG_DS);
	CHECK_EQ(decode(&ctx16, "0f 22 d8"), 0);	/* mov %eax,%cr3 in real mode */
	CHECK(!in.mem);
	CHECK_EQ(in.reg, 3);
	CHECK_EQ(decode(&ctx32, "67 89 07"), 0);	/* 67 in 32-bit code: (%bx) */
	CHECK_EQ(in.addr_size, 2);
	CHECK_EQ(in.offset, 0x1000);
	CHECK_EQ(decode(&ctx64, "67 48 89 03"), 0);	/* 67 in 64-bit code: (%ebx), 32 bits */
	CHECK_EQ(in.addr_size, 4);
	regs[3] = 0x1234567890ULL;
	CHECK_EQ(decode(&ctx64, "67 48 89 03"), 0);
	CHECK_EQ(in.ea, 0x34567890ULL);
	CHECK_EQ(decode(&ctx64, "67 a1 00 10 00 00"), 0);	/* 4-byte moffs with 67 */
	CHECK_EQ(in.len, 6);
}

static void string_instructions(void)
{
	regs[6] = 0x0100;	/* SI */
	regs[7] = 0x0200;	/* DI */
	CHECK_EQ(decode(&ctx16, "f3 a5"), 0);		/* rep movsw: source DS:SI */
	CHECK(in.string && in.rep && in.mem);
	CHECK_EQ(in.opsize, 2);
	CHECK_EQ(in.ea, 0x10000 + 0x100);
	CHECK_EQ(decode(&ctx16, "26 a4"), 0);		/* es movsb: the source's segment overridden */
	CHECK_EQ(in.seg, KL_SEG_ES);
	CHECK_EQ(decode(&ctx16, "64 aa"), 0);		/* stosb: ES:DI, never overridden */
	CHECK_EQ(in.seg, KL_SEG_ES);
	CHECK_EQ(in.ea, 0x20000 + 0x200);
	CHECK_EQ(decode(&ctx16, "ad"), 0);		/* lodsw */
	CHECK_EQ(in.seg, KL_SEG_DS);
	CHECK_EQ(decode(&ctx16, "f2 ae"), 0);		/* repne scasb: ES:DI */
	CHECK(in.repne && !in.rep);
	CHECK_EQ(in.seg, KL_SEG_ES);
	CHECK_EQ(decode(&ctx16, "a7"), 0);		/* cmpsw */
	CHECK_EQ(in.seg, KL_SEG_DS);
	CHECK_EQ(decode(&ctx16, "f3 6c"), 0);		/* rep insb: ES:DI */
	CHECK_EQ(in.ea, 0x20000 + 0x200);
	CHECK_EQ(decode(&ctx16, "66 6f"), 0);		/* outsd: DS:SI, 32-bit */
	CHECK_EQ(in.opsize, 4);
	CHECK_EQ(in.ea, 0x10000 + 0x100);
	CHECK_EQ(decode(&ctx64, "48 ad"), 0);		/* lodsq */
	CHECK_EQ(in.opsize, 8);
	CHECK_EQ(in.ea, 0x100);
	CHECK_EQ(decode(&ctx64, "48 6d"), 0);		/* REX.W insd: still 32-bit */
	CHECK_EQ(in.opsize, 4);
	CHECK_EQ(in.len, 2);
}

/* The read-modify-write forms guests use on page-table entries (kl_insn_rmw). */
static void read_modify_write_forms(void)
{
	CHECK_EQ(decode(&ctx32, "83 20 fd"), 0);	/* andl $-3,(%eax): clear R/W */
	CHECK(in.mem && in.has_modrm);
	CHECK_EQ(in.reg, 4);				/* /4: AND */
	CHECK_EQ(in.opsize, 4);
	CHECK_EQ(in.imm_len, 1);
	CHECK_EQ(in.imm, 0xfd);				/* sign-extended when applied */
	CHECK_EQ(in.ea, 0x100000 + 0x1000);
	CHECK_EQ(in.len, 3);
	CHECK_EQ(decode(&ctx32, "81 4b 04 00 00 00 80"), 0);	/* orl $0x80000000,4(%ebx) */
	CHECK_EQ(in.reg, 1);
	CHECK_EQ(in.imm_len, 4);
	CHECK_EQ(in.imm, 0x80000000ULL);
	CHECK_EQ(in.ea, 0x100000 + 0x4000 + 4);
	CHECK_EQ(in.len, 7);
	CHECK_EQ(decode(&ctx64, "48 81 23 ff ef ff ff"), 0);	/* andq $~0x1000,(%rbx) */
	CHECK_EQ(in.imm, 0xffffffffffffefffULL);	/* imm32 sign-extends to 64 */
	CHECK_EQ(in.opsize, 8);
	CHECK_EQ(decode(&ctx16, "80 0f 20"), 0);	/* orb $0x20,(%bx): set A */
	CHECK_EQ(in.reg, 1);
	CHECK_EQ(in.opsize, 2);
	CHECK_EQ(in.imm_len, 1);
	CHECK_EQ(in.ea, 0x10000 + 0x4000);		/* DS:BX */
	CHECK_EQ(decode(&ctx16, "66 81 37 01 00 00 00"), 0);	/* xorl $1,(%bx) in 16-bit code */
	CHECK_EQ(in.opsize, 4);
	CHECK_EQ(in.imm_len, 4);
	CHECK_EQ(in.len, 7);
	CHECK_EQ(decode(&ctx32, "09 01"), 0);		/* or %eax,(%ecx) */
	CHECK_EQ(in.reg, 0);
	CHECK_EQ(in.ea, 0x100000 + 0x2000);
	CHECK_EQ(decode(&ctx32, "21 0a"), 0);		/* and %ecx,(%edx) */
	CHECK_EQ(in.reg, 1);
	CHECK_EQ(decode(&ctx32, "31 13"), 0);		/* xor %edx,(%ebx) */
	CHECK_EQ(in.reg, 2);
	CHECK_EQ(decode(&ctx32, "87 03"), 0);		/* xchg %eax,(%ebx) */
	CHECK(in.mem && in.opsize == 4);
	CHECK_EQ(decode(&ctx64, "f0 48 87 03"), 0);	/* lock xchg %rax,(%rbx) */
	CHECK_EQ(in.opsize, 8);
	CHECK_EQ(in.len, 4);
	CHECK_EQ(decode(&ctx32, "86 23"), 0);		/* xchg %ah,(%ebx) */
	CHECK_EQ(in.reg, 4);
	CHECK_EQ(decode(&ctx32, "81 20 ff"), -EFAULT);	/* truncated immediate */
}

void suite_decode(void)
{
	static const struct { const char *name; void (*fn)(void); } tests[] = {
		{ "decode_mov_store_register_indirect", mov_store_register_indirect },
		{ "decode_modrm_disp8_disp32", modrm_disp8_disp32 },
		{ "decode_register_operand", register_operand },
		{ "decode_sib_forms", sib_forms },
		{ "decode_rex_extends_registers", rex_extends_registers },
		{ "decode_rip_relative", rip_relative },
		{ "decode_immediates", immediates },
		{ "decode_segment_overrides", segment_overrides },
		{ "decode_moffs", moffs },
		{ "decode_control_and_debug_registers", control_and_debug_registers },
		{ "decode_invlpg", invlpg },
		{ "decode_loads_and_movzx", loads_and_movzx },
		{ "decode_stos", stos },
		{ "decode_thirty_two_bit_code", thirty_two_bit_code },
		{ "decode_refused", refused },
		{ "decode_sixteen_bit_forms", sixteen_bit_forms },
		{ "decode_sixteen_bit_prefixes_and_sizes", sixteen_bit_prefixes_and_sizes },
		{ "decode_string_instructions", string_instructions },
		{ "decode_read_modify_write_forms", read_modify_write_forms },
	};

	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		setup();
		unit_run(tests[i].name, tests[i].fn);
	}
}
