/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The instruction decoder, as pure code: it sees the instruction bytes,
 * the code mode, the segment bases and the registers, nothing of a vCPU,
 * so the host unit tests (tests/unit/test_decode.c) run the same lines.
 */
#ifndef KL_DECODE_H
#define KL_DECODE_H

#include "../include/kl_pure.h"

/* Segment registers in the order of their encoding (and of struct kvm_sregs' use here). */
enum kl_seg { KL_SEG_ES, KL_SEG_CS, KL_SEG_SS, KL_SEG_DS, KL_SEG_FS, KL_SEG_GS, KL_NR_SEGS };

struct kl_insn {
	/*
	 * At most 15 bytes are fetched; the zeroed tail lets the decoder read a
	 * displacement or immediate past a truncated instruction without
	 * leaving the buffer (the final length check then rejects it).
	 */
	u8 bytes[32];
	int len;
	bool long64;		/* 64-bit code */
	bool rep;		/* F3 prefix (REP/REPE) */
	bool repne;		/* F2 prefix */
	int opcode_len;
	u8 opcode[3];
	bool rex_w, rex_r, rex_x, rex_b;
	int opsize;		/* operand size: 2, 4 or 8 */
	int addr_size;		/* address size: 2, 4 or 8 */
	bool has_modrm;
	u8 mod, reg, rm;
	bool mem;		/* the instruction has a memory operand (ModRM, moffs) */
	enum kl_seg seg;	/* ...in this segment (the default, or the override) */
	u64 offset;		/* ...at this offset in it (wrapped to the address size) */
	u64 ea;			/* ...whose linear address is this */
	bool string;		/* MOVS STOS LODS CMPS SCAS INS OUTS: operands are rSI/rDI */
	u64 imm;
	int imm_len;
};

/* What decoding needs to know besides the bytes. */
struct kl_decode_ctx {
	int code_size;			/* 2 (real mode, 16-bit code), 4 (32-bit), 8 (64-bit) */
	u64 rip;			/* of the instruction: RIP-relative operands */
	u64 seg_base[KL_NR_SEGS];
	const u64 *regs;		/* the 16 general registers, encoding order */
};

/*
 * Decode the `len` bytes in in->bytes (the rest of the buffer zeroed).
 * Returns 0; -EOPNOTSUPP for an opcode outside the known set (in->len
 * then covers prefixes and opcode); -EFAULT when the bytes end mid-way.
 *
 * Known: legacy prefixes (66 and 67 in every mode, all six segment
 * overrides), REX; 16-bit addressing (BX/BP/SI/DI forms, disp8/disp16),
 * 32- and 64-bit addressing (SIB, RIP-relative); BP- and SP-based
 * addresses default to SS; immediates; opcodes 0F 01 /7 (INVLPG), 0F 06
 * (CLTS), 0F 20-23 (MOV CR/DR), 0F B6/B7 (MOVZX), 88-8B (MOV), A0-A3 (MOV
 * moffs), C6/C7 (MOV imm), and the string instructions A4-A7 (MOVS, CMPS),
 * AA-AF (STOS, LODS, SCAS), 6C-6F (INS, OUTS), whose ea is the source
 * (DS:rSI, overridable) or, for STOS, SCAS and INS, the destination
 * (ES:rDI).
 */
int kl_decode(const struct kl_decode_ctx *c, struct kl_insn *in, int len);

#endif
