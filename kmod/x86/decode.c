// SPDX-License-Identifier: GPL-2.0
/*
 * The x86 instruction decoder (pure code: see decode.h). Without NRIPS or
 * decode assists the hypervisor learns nothing from an exit but "a CR3
 * write happened" or "a fault at this address": which register, which
 * address, how long the instruction is — all comes from here. Anything
 * outside the known opcodes is reported, never guessed at.
 */
#include "decode.h"

static u32 get_le32(const u8 *p)
{
	return p[0] | (u32)p[1] << 8 | (u32)p[2] << 16 | (u32)p[3] << 24;
}

static bool is_legacy_prefix(u8 b)
{
	return b == 0x66 || b == 0x67 || b == 0xf0 || b == 0xf2 || b == 0xf3 ||
	       b == 0x2e || b == 0x36 || b == 0x3e || b == 0x26 || b == 0x64 || b == 0x65;
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
	switch (op) {
	case 0x88: case 0x89: case 0x8a: case 0x8b:
		*modrm = true;
		return 0;
	case 0xa0: case 0xa1: case 0xa2: case 0xa3:	/* MOV AL/eAX <-> moffs */
		*imm = in->long64 ? 8 : 4;
		return 0;
	case 0xaa: case 0xab:				/* STOS */
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

static u64 segment_base(const struct kl_decode_ctx *c, const struct kl_insn *in, u8 seg_prefix)
{
	switch (seg_prefix) {
	case 0x64: return c->seg_base[KL_SEG_FS];
	case 0x65: return c->seg_base[KL_SEG_GS];
	}
	if (in->long64)
		return 0;	/* in 64-bit mode only FS and GS have bases */
	switch (seg_prefix) {
	case 0x26: return c->seg_base[KL_SEG_ES];
	case 0x2e: return c->seg_base[KL_SEG_CS];
	case 0x36: return c->seg_base[KL_SEG_SS];
	}
	/* The default (SS for RSP/RBP bases is not modelled: flat stacks). */
	return c->seg_base[KL_SEG_DS];
}

static s64 disp32(const struct kl_insn *in, int *pos)
{
	s64 d = (s32)get_le32(&in->bytes[*pos]);

	*pos += 4;
	return d;
}

static int decode_modrm(const struct kl_decode_ctx *c, struct kl_insn *in, int *pos, u8 seg)
{
	u8 modrm = in->bytes[(*pos)++];
	bool force_reg = in->opcode_len == 2 && in->opcode[1] >= 0x20 && in->opcode[1] <= 0x23;
	u64 ea = 0;
	s64 disp = 0;

	in->has_modrm = true;
	in->mod = modrm >> 6;
	in->reg = ((modrm >> 3) & 7) | (in->rex_r ? 8 : 0);
	in->rm = (modrm & 7) | (in->rex_b ? 8 : 0);
	/* MOV to/from CR/DR ignore mod: the operand is always a register. */
	if (in->mod == 3 || force_reg)
		return 0;
	in->mem = true;
	if ((modrm & 7) == 4) {			/* SIB */
		u8 sib = in->bytes[(*pos)++];
		int base = (sib & 7) | (in->rex_b ? 8 : 0);
		int index = ((sib >> 3) & 7) | (in->rex_x ? 8 : 0);

		if (index != 4)
			ea += c->regs[index] << (sib >> 6);
		if ((sib & 7) == 5 && in->mod == 0)
			disp = disp32(in, pos);
		else
			ea += c->regs[base];
	} else if ((modrm & 7) == 5 && in->mod == 0) {
		disp = disp32(in, pos);
		if (in->long64)
			in->ea = ~0ULL;		/* RIP-relative: fixed up once length is known */
	} else {
		ea += c->regs[in->rm];
	}
	if (in->mod == 1)
		disp = (s8)in->bytes[(*pos)++];
	else if (in->mod == 2)
		disp = disp32(in, pos);
	if (in->ea == ~0ULL)
		in->imm = disp;			/* parked until the end */
	else
		in->ea = (in->long64 ? ea + disp : (u32)(ea + disp)) + segment_base(c, in, seg);
	return 0;
}

static int decode_prefixes(struct kl_insn *in, int len, int *pos, u8 *seg)
{
	in->opsize = 4;
	while (*pos < len && is_legacy_prefix(in->bytes[*pos])) {
		u8 b = in->bytes[(*pos)++];

		if (b == 0x66)
			in->opsize = 2;
		if (b == 0xf3)
			in->rep = true;
		if (b == 0x64 || b == 0x65)
			*seg = b;
	}
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

int kl_decode(const struct kl_decode_ctx *c, struct kl_insn *in, int len)
{
	int pos = 0, imm_len;
	bool modrm, rip_rel;
	u8 seg = 0;
	s64 rel = 0;

	in->long64 = c->long64;
	if (decode_prefixes(in, len, &pos, &seg))
		return -EFAULT;
	in->opcode[in->opcode_len++] = in->bytes[pos++];
	if (in->opcode[0] == 0x0f && pos < len)
		in->opcode[in->opcode_len++] = in->bytes[pos++];
	if (opcode_shape(in, &modrm, &imm_len)) {
		in->len = pos;
		return -EOPNOTSUPP;
	}
	if (modrm && decode_modrm(c, in, &pos, seg))
		return -EOPNOTSUPP;
	rip_rel = in->ea == ~0ULL;
	if (rip_rel)
		rel = (s64)in->imm;
	in->imm = 0;
	in->imm_len = imm_len;
	for (int i = 0; i < imm_len; i++)
		in->imm |= (u64)in->bytes[pos + i] << (8 * i);
	if (imm_len == 4 && in->opsize == 8)
		in->imm = (s64)(s32)in->imm;	/* imm32 sign-extends to 64 */
	pos += imm_len;
	if (pos > len)
		return -EFAULT;
	if (in->opcode_len == 1 && (in->opcode[0] & 0xfc) == 0xa0) {
		/* The "immediate" is the address itself; the register is AL/eAX. */
		in->mem = true;
		in->ea = (in->long64 ? in->imm : (u32)in->imm) + segment_base(c, in, seg);
		in->reg = 0;	/* RAX */
		in->imm = 0;
	}
	in->len = pos;
	if (rip_rel)
		in->ea = c->rip + pos + rel;
	return 0;
}
