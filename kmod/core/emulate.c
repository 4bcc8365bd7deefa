// SPDX-License-Identifier: GPL-2.0
/*
 * Fetch and decode the guest's current instruction. Without NRIPS or
 * decode assists the hypervisor learns nothing from the exit but "a CR3
 * write happened" or "a fault at this address": which register, which
 * address, how long the instruction is — all comes from here.
 *
 * The decoder knows prefixes, REX, ModRM/SIB/displacement and immediates in
 * full, and the opcodes the core emulates: moves to and from control and
 * debug registers, CLTS, INVLPG, and the MOV forms that touch MMIO.
 * Anything else is reported as an emulation failure, never guessed at.
 */
#include <linux/kvm.h>
#include <asm/unaligned.h>
#include "kvmlab.h"

/* Fetch up to 15 bytes at CS:RIP through the guest's page tables. */
static int fetch(struct kl_vcpu *vcpu, u8 *buf, int *len)
{
	struct kvm_sregs sr;
	u64 lin;
	int got = 0;

	kl_vendor->get_sregs(vcpu, &sr);
	lin = vcpu->rip + (sr.cs.l ? 0 : sr.cs.base);
	while (got < 15) {
		struct kl_walk w;
		u32 access = KL_PF_ID | (kl_vendor->get_cpl(vcpu) == 3 ? KL_PF_U : 0);
		int chunk = min_t(int, 15 - got, PAGE_SIZE - ((lin + got) & ~PAGE_MASK));
		int r = kl_walk_guest(vcpu, lin + got, access, false, &w);

		if (r || kl_read_guest(vcpu->vm, w.gpa, buf + got, chunk))
			break;
		got += chunk;
	}
	*len = got;
	return got ? 0 : -EFAULT;
}

/*
 * 64-bit code or 32-bit protected-mode code (flat or not). 16-bit code
 * (real mode, 16-bit segments) is not decoded: no kvmlab guest runs it.
 */
static int code_mode(struct kl_vcpu *vcpu, struct kl_insn *in)
{
	struct kvm_sregs sr;

	kl_vendor->get_sregs(vcpu, &sr);
	in->long64 = kl_guest_long_mode(vcpu) && sr.cs.l;
	return in->long64 || sr.cs.db ? 0 : -EOPNOTSUPP;
}

static bool is_legacy_prefix(u8 b)
{
	return b == 0x66 || b == 0x67 || b == 0xf0 || b == 0xf2 || b == 0xf3 ||
	       b == 0x2e || b == 0x36 || b == 0x3e || b == 0x26 || b == 0x64 || b == 0x65;
}

/* Opcodes (after 0F when two_byte) that the core knows, with their ModRM and immediate. */
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

static u64 segment_base(struct kl_vcpu *vcpu, const struct kl_insn *in, u8 seg_prefix)
{
	struct kvm_sregs sr;

	kl_vendor->get_sregs(vcpu, &sr);
	switch (seg_prefix) {
	case 0x64: return sr.fs.base;
	case 0x65: return sr.gs.base;
	}
	if (in->long64)
		return 0;	/* in 64-bit mode only FS and GS have bases */
	switch (seg_prefix) {
	case 0x26: return sr.es.base;
	case 0x2e: return sr.cs.base;
	case 0x36: return sr.ss.base;
	}
	return sr.ds.base;	/* the default (SS for RSP/RBP bases is not modelled: flat stacks) */
}

static int decode_modrm(struct kl_vcpu *vcpu, struct kl_insn *in, int *pos, u8 seg)
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
			ea += vcpu->regs[index] << (sib >> 6);
		if ((sib & 7) == 5 && in->mod == 0) {
			disp = (s32)get_unaligned_le32(&in->bytes[*pos]);
			*pos += 4;
		} else {
			ea += vcpu->regs[base];
		}
	} else if ((modrm & 7) == 5 && in->mod == 0) {
		disp = (s32)get_unaligned_le32(&in->bytes[*pos]);
		*pos += 4;
		if (in->long64)
			in->ea = ~0ULL;		/* RIP-relative: fixed up once length is known */
	} else {
		ea += vcpu->regs[in->rm];
	}
	if (in->mod == 1) {
		disp = (s8)in->bytes[(*pos)++];
	} else if (in->mod == 2) {
		disp = (s32)get_unaligned_le32(&in->bytes[*pos]);
		*pos += 4;
	}
	if (in->ea == ~0ULL)
		in->imm = disp;			/* parked until the end */
	else
		in->ea = (in->long64 ? ea + disp : (u32)(ea + disp)) + segment_base(vcpu, in, seg);
	return 0;
}

/*
 * Decode at RIP. Returns 0, a negative errno when the instruction is not
 * one we know, or 1 when fetching it raised a guest #PF (already queued).
 */
int kl_fetch_decode(struct kl_vcpu *vcpu, struct kl_insn *in)
{
	int pos = 0, len, imm_len;
	bool modrm, rip_rel;
	u8 seg = 0;
	s64 rel = 0;

	memset(in, 0, sizeof(*in));
	vcpu->stat.insn_emulation++;
	if (fetch(vcpu, in->bytes, &len))
		return -EFAULT;
	if (code_mode(vcpu, in))
		return -EOPNOTSUPP;
	in->opsize = 4;
	while (pos < len && is_legacy_prefix(in->bytes[pos])) {
		if (in->bytes[pos] == 0x66)
			in->opsize = 2;
		if (in->bytes[pos] == 0xf3)
			in->rep = true;
		if (in->bytes[pos] == 0x64 || in->bytes[pos] == 0x65)
			seg = in->bytes[pos];
		pos++;
	}
	if (pos < len && in->long64 && (in->bytes[pos] & 0xf0) == 0x40) {
		u8 rex = in->bytes[pos++];

		in->rex_w = rex & 8;
		in->rex_r = rex & 4;
		in->rex_x = rex & 2;
		in->rex_b = rex & 1;
		if (in->rex_w)
			in->opsize = 8;
	}
	if (pos >= len)
		return -EFAULT;
	in->opcode[in->opcode_len++] = in->bytes[pos++];
	if (in->opcode[0] == 0x0f && pos < len)
		in->opcode[in->opcode_len++] = in->bytes[pos++];
	if (opcode_shape(in, &modrm, &imm_len)) {
		in->len = pos;
		return -EOPNOTSUPP;
	}
	if (modrm && decode_modrm(vcpu, in, &pos, seg))
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
		in->ea = (in->long64 ? in->imm : (u32)in->imm) + segment_base(vcpu, in, seg);
		in->reg = KL_RAX;
		in->imm = 0;
	}
	in->len = pos;
	if (rip_rel)
		in->ea = vcpu->rip + pos + rel;
	return 0;
}

int kl_insn_store(struct kl_vcpu *vcpu, const struct kl_insn *in, int *size, u64 *val)
{
	u8 op = in->opcode[in->opcode_len - 1];

	if (in->opcode_len != 1 || !in->mem ||
	    (op != 0x88 && op != 0x89 && op != 0xc6 && op != 0xc7 && op != 0xa2 && op != 0xa3))
		return -EOPNOTSUPP;
	*size = (op == 0x88 || op == 0xc6 || op == 0xa2) ? 1 : in->opsize;
	*val = 0;
	if (op == 0xc6 || op == 0xc7)
		*val = in->imm;
	else if (*size == 1 && !(in->rex_w || in->rex_r || in->rex_x || in->rex_b) &&
		 in->reg >= 4 && in->reg < 8)
		*val = vcpu->regs[in->reg - 4] >> 8;	/* AH..BH without REX */
	else
		*val = vcpu->regs[in->reg];
	if (*size < 8)
		*val &= (1ULL << (8 * *size)) - 1;
	return 0;
}

/*
 * STOS / REP STOS (64-bit code, DF=0) whose destination starts at gpa: as
 * many elements as fit in gpa's page are written, RDI and RCX advance, and
 * RIP moves on once RCX reaches zero — the rest, on the next page, the CPU
 * does itself (or faults again). A whole page cleared this way costs one
 * exit. *bytes says how much was written.
 */
int kl_emulate_stos(struct kl_vcpu *vcpu, const struct kl_insn *in, u64 gpa, unsigned int *bytes)
{
	u8 op = in->opcode[0];
	unsigned int size = op == 0xaa ? 1 : in->opsize, room = PAGE_SIZE - (gpa & ~PAGE_MASK);
	u64 count = in->rep ? vcpu->regs[KL_RCX] : 1, n, val = vcpu->regs[KL_RAX];
	u8 buf[64];

	if (in->opcode_len != 1 || (op != 0xaa && op != 0xab) || !in->long64 ||
	    (vcpu->rflags & X86_EFLAGS_DF) || room < size)
		return -EOPNOTSUPP;
	n = min_t(u64, count, room / size);
	for (unsigned int i = 0; i < sizeof(buf); i += size)
		memcpy(buf + i, &val, size);
	for (u64 done = 0; done < n * size; done += sizeof(buf))
		if (kl_write_guest(vcpu->vm, gpa + done, buf, min_t(u64, sizeof(buf), n * size - done)))
			return -EFAULT;
	vcpu->regs[KL_RDI] += n * size;
	if (in->rep)
		vcpu->regs[KL_RCX] -= n;
	if (n == count)
		vcpu->rip += in->len;
	*bytes = n * size;
	return 0;
}

/* A guest access that hit no memslot: hand it to userspace as KVM_EXIT_MMIO. */
int kl_emulate(struct kl_vcpu *vcpu, struct kl_pf_info *mmio)
{
	struct kvm_run *run = vcpu->run;
	struct kl_insn in;
	u8 op;
	int r = kl_fetch_decode(vcpu, &in), size;
	u64 val = 0;
	bool write;

	if (r == 1)
		return 1;	/* the fetch itself faulted: the guest takes that #PF */
	if (r == 0 && !in.mem)
		r = -EOPNOTSUPP;
	/*
	 * The operand must be what faulted: an implicit access (a push, a
	 * string move, a fetch) to MMIO would otherwise be emulated as the
	 * instruction's other operand. Page offsets agree whether the fault
	 * gave a linear address (shadow) or a physical one (NPT).
	 */
	if (r == 0 && ((in.ea ^ mmio->addr) & ~PAGE_MASK))
		r = -EOPNOTSUPP;
	if (r) {
		u64 bytes = 0;

		vcpu->stat.insn_emulation_fail++;
		memcpy(&bytes, in.bytes, 8);
		kl_internal_error(vcpu, KVM_INTERNAL_ERROR_EMULATION, vcpu->rip, bytes);
		return 0;
	}
	op = in.opcode[in.opcode_len - 1];
	write = kl_insn_store(vcpu, &in, &size, &val) == 0;
	if (!write)
		size = in.opcode_len == 2 ? (op == 0xb6 ? 1 : 2) :	/* MOVZX: byte or word */
		       (op == 0x8a || op == 0xa0) ? 1 : in.opsize;

	run->exit_reason = KVM_EXIT_MMIO;
	run->mmio.phys_addr = mmio->gpa;
	run->mmio.len = size;
	run->mmio.is_write = write;
	vcpu->stat.mmio_exits++;
	vcpu->mmio_next_rip = vcpu->rip + in.len;
	if (write) {
		memcpy(run->mmio.data, &val, size);
		vcpu->rip = vcpu->mmio_next_rip;
		return 0;
	}
	vcpu->mmio_pending = true;
	vcpu->pending_is_pio = false;
	vcpu->mmio_is_read = true;
	vcpu->mmio_len = size;
	vcpu->mmio_reg = in.reg;
	if (in.opcode_len == 2)
		vcpu->regs[in.reg] = 0;	/* MOVZX: the loaded bytes land in a zeroed register */
	if (size == 1 && in.opcode_len == 1 && in.reg >= 4 && in.reg < 8 &&
	    !(in.rex_w || in.rex_r || in.rex_x || in.rex_b))
		vcpu->mmio_reg = in.reg - 4 + 16;	/* AH..BH */
	return 0;
}
