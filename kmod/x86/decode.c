// SPDX-License-Identifier: GPL-2.0
/*
 * The x86 instruction decoder (pure code: see decode.h). Without NRIPS or
 * decode assists the hypervisor learns nothing from an exit but "a CR3
 * write happened" or "a fault at this address": which register, which
 * address, how long the instruction is — all comes from here. Anything
 * outside the known opcodes is reported, never guessed at.
 *
 * Sizes follow the code segment: 16-bit code (real mode, virtual-8086,
 * 16-bit protected mode) defaults to 16-bit operands and addresses, 32-bit
 * code to 32-bit ones, 64-bit code to 32-bit operands and 64-bit
 * addresses; 66 and 67 switch them, REX.W makes operands 64-bit.
 */
#include "decode.h"

enum { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI };

static u32 get_le32(const u8 *p)
{
	return p[0] | (u32)p[1] << 8 | (u32)p[2] << 16 | (u32)p[3] << 24;
}

static u64 size_mask(int size)
{
	return size == 8 ? ~0ULL : (1ULL << (8 * size)) - 1;
}

/* A segment-override prefix's segment, or -1 for another byte. */
static int override_of(u8 b)
{
	switch (b) {
	case 0x26: return KL_SEG_ES;
	case 0x2e: return KL_SEG_CS;
	case 0x36: return KL_SEG_SS;
	case 0x3e: return KL_SEG_DS;
	case 0x64: return KL_SEG_FS;
	case 0x65: return KL_SEG_GS;
	}
	return -1;
}

static bool is_legacy_prefix(u8 b)
{
	return b == 0x66 || b == 0x67 || b == 0xf0 || b == 0xf2 || b == 0xf3 || override_of(b) >= 0;
}

static bool is_string_op(u8 op)
{
	return (op >= 0xa4 && op <= 0xa7) || (op >= 0xaa && op <= 0xaf) || (op >= 0x6c && op <= 0x6f);
}

/* Opcodes (after 0F when two-byte) that the core knows, with their ModRM and immediate. */
static int opcode_shape(const struct kl_insn *in, bool *modrm, int *imm)
{
	u8 op = in->opcode[in->opcode_len - 1];

	*modrm = false;
	*imm = 0;
	if (in->opcode_len == 2) {
		switch (op) {
		case 0x01: case 0x20: case 0x21: case 0x22: case 0x23:
		case 0xb6: case 0xb7:
			*modrm = true;
			return 0;
		case 0x06:
			return 0;
		}
		return -EOPNOTSUPP;
	}
	if (is_string_op(op))
		return 0;
	switch (op) {
	case 0x88: case 0x89: case 0x8a: case 0x8b:
	case 0x08: case 0x09: case 0x20: case 0x21: case 0x30: case 0x31:	/* OR AND XOR */
	case 0x86: case 0x87:						/* XCHG */
		*modrm = true;
		return 0;
	case 0x80: case 0x83:		/* ALU r/m, imm8 */
		*modrm = true;
		*imm = 1;
		return 0;
	case 0x81:			/* ALU r/m, imm16/32 */
		*modrm = true;
		*imm = in->opsize == 2 ? 2 : 4;
		return 0;
	case 0xa0: case 0xa1: case 0xa2: case 0xa3:	/* MOV AL/eAX <-> moffs */
		*imm = in->addr_size;
		return 0;
	case 0xc6:
		*modrm = true;
		*imm = 1;
		return 0;
	case 0xc7:
		*modrm = true;
		*imm = in->opsize == 2 ? 2 : 4;
		return 0;
	}
	return -EOPNOTSUPP;
}

/* The linear address of seg:offset. In 64-bit code only FS and GS have bases. */
static u64 linear(const struct kl_decode_ctx *c, const struct kl_insn *in)
{
	u64 base = c->seg_base[in->seg];

	if (in->long64)
		return in->seg == KL_SEG_FS || in->seg == KL_SEG_GS ? in->offset + base : in->offset;
	return (u32)(in->offset + base);	/* linear addresses wrap at 4 GiB outside long mode */
}

static s64 disp_of(const struct kl_insn *in, int *pos, int bytes)
{
	s64 d = bytes == 1 ? (s8)in->bytes[*pos] :
		bytes == 2 ? (s16)(in->bytes[*pos] | in->bytes[*pos + 1] << 8) :
		(s32)get_le32(&in->bytes[*pos]);

	*pos += bytes;
	return d;
}

/* 16-bit addressing: BX+SI, BX+DI, BP+SI, BP+DI, SI, DI, BP (or disp16), BX. */
static u64 modrm16(const struct kl_decode_ctx *c, struct kl_insn *in, int *pos, bool *ss)
{
	static const int base[8] = { RBX, RBX, RBP, RBP, RSI, RDI, RBP, RBX };
	static const int index[8] = { RSI, RDI, RSI, RDI, -1, -1, -1, -1 };
	int rm = in->rm & 7;
	u64 ea = 0;

	if (in->mod == 0 && rm == 6)
		return (u64)disp_of(in, pos, 2);
	ea = c->regs[base[rm]] + (index[rm] >= 0 ? c->regs[index[rm]] : 0);
	*ss = base[rm] == RBP;
	if (in->mod == 1)
		ea += disp_of(in, pos, 1);
	else if (in->mod == 2)
		ea += disp_of(in, pos, 2);
	return ea;
}

/* 32- and 64-bit addressing: SIB, disp32 (RIP-relative in 64-bit code), disp8/disp32. */
static u64 modrm32(const struct kl_decode_ctx *c, struct kl_insn *in, int *pos, bool *ss,
		   bool *rip_rel)
{
	u64 ea = 0;

	if ((in->rm & 7) == 4) {		/* SIB */
		u8 sib = in->bytes[(*pos)++];
		int base = (sib & 7) | (in->rex_b ? 8 : 0);
		int index = ((sib >> 3) & 7) | (in->rex_x ? 8 : 0);

		if (index != 4)
			ea += c->regs[index] << (sib >> 6);
		if ((sib & 7) == 5 && in->mod == 0) {
			ea += disp_of(in, pos, 4);
		} else {
			ea += c->regs[base];
			*ss = base == RSP || base == RBP;
		}
	} else if ((in->rm & 7) == 5 && in->mod == 0) {
		ea = disp_of(in, pos, 4);
		*rip_rel = in->long64;		/* fixed up once the length is known */
	} else {
		ea = c->regs[in->rm];
		*ss = in->rm == RBP;
	}
	if (in->mod == 1)
		ea += disp_of(in, pos, 1);
	else if (in->mod == 2)
		ea += disp_of(in, pos, 4);
	return ea;
}

static void decode_modrm(const struct kl_decode_ctx *c, struct kl_insn *in, int *pos,
			 int override, bool *rip_rel)
{
	u8 modrm = in->bytes[(*pos)++];
	bool force_reg = in->opcode_len == 2 && in->opcode[1] >= 0x20 && in->opcode[1] <= 0x23;
	bool ss = false;

	in->has_modrm = true;
	in->mod = modrm >> 6;
	in->reg = ((modrm >> 3) & 7) | (in->rex_r ? 8 : 0);
	in->rm = (modrm & 7) | (in->rex_b ? 8 : 0);
	/* MOV to/from CR/DR ignore mod: the operand is always a register. */
	if (in->mod == 3 || force_reg)
		return;
	in->mem = true;
	in->offset = in->addr_size == 2 ? modrm16(c, in, pos, &ss) : modrm32(c, in, pos, &ss, rip_rel);
	in->seg = override >= 0 ? override : ss ? KL_SEG_SS : KL_SEG_DS;
}

static int decode_prefixes(const struct kl_decode_ctx *c, struct kl_insn *in, int len, int *pos,
			   int *override)
{
	bool p66 = false, p67 = false;

	while (*pos < len && is_legacy_prefix(in->bytes[*pos])) {
		u8 b = in->bytes[(*pos)++];

		p66 |= b == 0x66;
		p67 |= b == 0x67;
		in->rep |= b == 0xf3;
		in->repne |= b == 0xf2;
		if (override_of(b) >= 0)
			*override = override_of(b);	/* the last one counts */
	}
	in->opsize = (c->code_size == 2) != p66 ? 2 : 4;
	in->addr_size = !p67 ? c->code_size : c->code_size == 4 ? 2 : 4;
	if (*pos < len && in->long64 && (in->bytes[*pos] & 0xf0) == 0x40) {
		u8 rex = in->bytes[(*pos)++];

		in->rex_w = rex & 8;
		in->rex_r = rex & 4;
		in->rex_x = rex & 2;
		in->rex_b = rex & 1;
		if (in->rex_w)
			in->opsize = 8;
	}
	return *pos < len ? 0 : -EFAULT;
}

/* A string instruction's memory operand: the source seg:rSI, or the destination ES:rDI. */
static void string_operand(const struct kl_decode_ctx *c, struct kl_insn *in, int override)
{
	u8 op = in->opcode[0];
	bool dest = (op & 0xfe) == 0xaa || (op & 0xfe) == 0xae || (op & 0xfe) == 0x6c;

	in->string = true;
	in->mem = true;
	if ((op & 0xfe) == 0x6c || (op & 0xfe) == 0x6e)
		in->opsize = in->opsize == 8 ? 4 : in->opsize;	/* INS/OUTS: at most 32 bits */
	in->seg = dest ? KL_SEG_ES : override >= 0 ? override : KL_SEG_DS;
	in->offset = c->regs[dest ? RDI : RSI];
}

int kl_decode(const struct kl_decode_ctx *c, struct kl_insn *in, int len)
{
	int pos = 0, imm_len, override = -1;
	bool modrm, rip_rel = false;

	in->long64 = c->code_size == 8;
	if (decode_prefixes(c, in, len, &pos, &override))
		return -EFAULT;
	in->opcode[in->opcode_len++] = in->bytes[pos++];
	if (in->opcode[0] == 0x0f && pos < len)
		in->opcode[in->opcode_len++] = in->bytes[pos++];
	if (opcode_shape(in, &modrm, &imm_len)) {
		in->len = pos;
		return -EOPNOTSUPP;
	}
	if (modrm)
		decode_modrm(c, in, &pos, override, &rip_rel);
	in->imm_len = imm_len;
	for (int i = 0; i < imm_len; i++)
		in->imm |= (u64)in->bytes[pos + i] << (8 * i);
	if (imm_len == 4 && in->opsize == 8)
		in->imm = (s64)(s32)in->imm;	/* imm32 sign-extends to 64 */
	pos += imm_len;
	if (pos > len)
		return -EFAULT;
	in->len = pos;
	if (in->opcode_len == 1 && (in->opcode[0] & 0xfc) == 0xa0) {
		/* The "immediate" is the offset itself; the register is AL/eAX. */
		in->mem = true;
		in->seg = override >= 0 ? override : KL_SEG_DS;
		in->offset = in->imm;
		in->reg = RAX;
		in->imm = 0;
	} else if (in->opcode_len == 1 && is_string_op(in->opcode[0])) {
		string_operand(c, in, override);
	} else if (rip_rel) {
		in->offset += c->rip + pos;
	}
	if (in->mem) {
		in->offset &= size_mask(in->addr_size);
		in->ea = linear(c, in);
	}
	return 0;
}
