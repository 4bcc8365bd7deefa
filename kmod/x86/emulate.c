// SPDX-License-Identifier: GPL-2.0
/*
 * The instruction emulator around the pure decoder (decode.c): fetch the
 * guest's instruction at CS:RIP through its page tables, decode it in the
 * vCPU's code mode, and carry out the few instructions the hypervisor
 * must: MMIO loads and stores (KVM_EXIT_MMIO), and for the shadow MMUs a
 * MOV or STOS into a write-protected page table.
 */
#include <linux/kvm.h>
#include <asm/processor-flags.h>
#include <asm/trapnr.h>
#include "vendor.h"

/* KL_PF_U when the guest runs at CPL 3: its accesses are user accesses. */
static u32 user_access(struct kl_vcpu *vcpu)
{
	return kl_vendor->get_cpl(vcpu) == 3 ? KL_PF_U : 0;
}

bool kl_translate_operand(struct kl_vcpu *vcpu, u64 lin, bool write, u64 *gpa, int *verdict)
{
	struct kl_walk w;
	int r = kl_mmu_translate(vcpu, lin, (write ? KL_PF_W : 0) | user_access(vcpu), &w);

	if (!r) {
		*gpa = w.gpa;
		return true;
	}
	if (r == -EFAULT)
		kl_inject_page_fault(vcpu, lin, w.error);
	else if (r == -EINVAL)
		kl_queue_exception(vcpu, GP_VECTOR, true, 0);	/* non-canonical */
	else
		kl_internal_error(vcpu, KVM_INTERNAL_ERROR_EMULATION, vcpu->rip, lin);
	*verdict = r == -EFAULT || r == -EINVAL;
	return false;
}

/* Fetch up to 15 bytes at CS:RIP through the guest's page tables. */
static int fetch(struct kl_vcpu *vcpu, const struct kvm_sregs *sr, u8 *buf, int *len)
{
	u64 lin = vcpu->rip + (sr->cs.l ? 0 : sr->cs.base);
	u32 access = KL_PF_ID | user_access(vcpu);
	int got = 0;

	while (got < 15) {
		struct kl_walk w;
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
 * A #UD on VMCALL (0F 01 C1), Intel's hypercall instruction, in a guest on
 * AMD (a guest migrated across vendors, or KVM's selftests, which always
 * use it): rewrite it to VMMCALL in guest memory and let the guest run
 * that, as KVM does with KVM_X86_QUIRK_FIX_HYPERCALL_INSN on. Returns 1 to
 * re-enter (patched, or a fault queued), 0 for userspace (internal error),
 * -ENOENT when the instruction is not VMCALL.
 */
int kl_fix_hypercall(struct kl_vcpu *vcpu)
{
	const u8 *native = kl_vendor->hypercall;
	struct kvm_sregs sr;
	u8 buf[15];
	int len, verdict;
	u64 lin;

	kl_vendor->get_segments(vcpu, &sr);
	/* The other vendor's: VMCALL (0F 01 C1) on AMD, VMMCALL (0F 01 D9) on Intel. */
	if (fetch(vcpu, &sr, buf, &len) || len < 3 || buf[0] != 0x0f || buf[1] != 0x01 ||
	    (buf[2] != 0xc1 && buf[2] != 0xd9) || buf[2] == native[2])
		return -ENOENT;
	lin = vcpu->rip + (sr.cs.l ? 0 : sr.cs.base);
	vcpu->stat.insn_emulation++;
	for (int i = 0; i < 3; i++) {	/* byte by byte: it may straddle two pages */
		u64 gpa;

		if (!kl_translate_operand(vcpu, lin + i, true, &gpa, &verdict))
			return verdict;
		if (kl_mmu_write_guest(vcpu, gpa, &native[i], 1)) {
			kl_internal_error(vcpu, KVM_INTERNAL_ERROR_EMULATION, vcpu->rip, gpa);
			return 0;
		}
	}
	return 1;
}

/* The code segment's mode: 64-bit code, or 32- or 16-bit by CS.D (real mode is 16-bit). */
static void decode_ctx(struct kl_vcpu *vcpu, const struct kvm_sregs *sr, struct kl_decode_ctx *c)
{
	bool long64 = kl_guest_long_mode(vcpu) && sr->cs.l;

	*c = (struct kl_decode_ctx) {
		.code_size = long64 ? 8 : sr->cs.db ? 4 : 2, .rip = vcpu->rip,
		.seg_base = { sr->es.base, sr->cs.base, sr->ss.base, sr->ds.base,
			      sr->fs.base, sr->gs.base },
		.regs = vcpu->regs,
	};
}

int kl_fetch_decode(struct kl_vcpu *vcpu, struct kl_insn *in)
{
	struct kl_decode_ctx c;
	struct kvm_sregs sr;
	int len;

	memset(in, 0, sizeof(*in));
	vcpu->stat.insn_emulation++;
	kl_vendor->get_segments(vcpu, &sr);
	if (fetch(vcpu, &sr, in->bytes, &len))
		return -EFAULT;
	decode_ctx(vcpu, &sr, &c);
	return kl_decode(&c, in, len);
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

/* The register operand of a ModRM instruction, byte registers included. */
static u64 reg_operand(struct kl_vcpu *vcpu, const struct kl_insn *in, int size)
{
	if (size == 1 && !(in->rex_w || in->rex_r || in->rex_x || in->rex_b) &&
	    in->reg >= 4 && in->reg < 8)
		return vcpu->regs[in->reg - 4] >> 8;	/* AH..BH without REX */
	return vcpu->regs[in->reg];
}

static void set_reg_operand(struct kl_vcpu *vcpu, const struct kl_insn *in, int size, u64 v)
{
	u64 *r;
	int shift = 0;

	if (size == 1 && !(in->rex_w || in->rex_r || in->rex_x || in->rex_b) &&
	    in->reg >= 4 && in->reg < 8) {
		r = &vcpu->regs[in->reg - 4];
		shift = 8;
	} else {
		r = &vcpu->regs[in->reg];
	}
	if (size == 4) {
		*r = (u32)v;		/* 32-bit results zero-extend */
		return;
	}
	if (size == 8) {
		*r = v;
		return;
	}
	*r = (*r & ~(((1ULL << (8 * size)) - 1) << shift)) | (v << shift);
}

/* SF, ZF, PF of a logic result; CF and OF clear (AF is undefined: kept). */
static void logic_flags(struct kl_vcpu *vcpu, u64 res, int size)
{
	u64 f = vcpu->rflags & ~(X86_EFLAGS_CF | X86_EFLAGS_OF | X86_EFLAGS_SF |
				 X86_EFLAGS_ZF | X86_EFLAGS_PF);

	if (res >> (8 * size - 1) & 1)
		f |= X86_EFLAGS_SF;
	if (!res)
		f |= X86_EFLAGS_ZF;
	if (!(hweight8((u8)res) & 1))
		f |= X86_EFLAGS_PF;
	vcpu->rflags = f;
}

/*
 * A store to RAM at gpa by the instruction `in`: the plain stores of
 * kl_insn_store, plus the read-modify-write forms guests use on page-table
 * entries — AND/OR/XOR with a register or an immediate (clearing R/W,
 * setting A), XCHG (swapping an entry out). The old value is read from
 * gpa; the flags or register the instruction also writes are updated here,
 * so the caller only stores *val and moves RIP on.
 */
int kl_insn_rmw(struct kl_vcpu *vcpu, const struct kl_insn *in, u64 gpa, int *size, u64 *val)
{
	u8 op = in->opcode[in->opcode_len - 1];
	u64 old = 0, src, mask;
	int alu;

	if (kl_insn_store(vcpu, in, size, val) == 0)
		return 0;
	if (in->opcode_len != 1 || !in->mem)
		return -EOPNOTSUPP;
	switch (op) {
	case 0x08: case 0x09: alu = 1; break;
	case 0x20: case 0x21: alu = 4; break;
	case 0x30: case 0x31: alu = 6; break;
	case 0x86: case 0x87: alu = -1; break;
	case 0x80: case 0x81: case 0x83: alu = in->reg & 7; break;
	default: return -EOPNOTSUPP;
	}
	if (alu != -1 && alu != 1 && alu != 4 && alu != 6)
		return -EOPNOTSUPP;	/* ADD, ADC, SBB, SUB, CMP: not on page tables */
	*size = (op & 1) && op != 0x80 ? in->opsize : 1;
	mask = *size == 8 ? ~0ULL : (1ULL << (8 * *size)) - 1;
	if ((gpa & ~PAGE_MASK) + *size > PAGE_SIZE || kl_read_guest(vcpu->vm, gpa, &old, *size))
		return -EOPNOTSUPP;
	if (op >= 0x80 && op <= 0x83)
		src = op == 0x83 ? (u64)(s64)(s8)in->imm : in->imm;
	else
		src = reg_operand(vcpu, in, *size);
	src &= mask;
	switch (alu) {
	case -1:
		*val = src;
		set_reg_operand(vcpu, in, *size, old);
		return 0;
	case 1: *val = old | src; break;
	case 4: *val = old & src; break;
	default: *val = old ^ src; break;
	}
	logic_flags(vcpu, *val, *size);
	return 0;
}

/*
 * STOS / REP STOS (DF=0) whose destination starts at gpa: as many
 * elements as fit in gpa's page are written, rDI and rCX advance (at the
 * address size), and RIP moves on once rCX reaches zero — the rest, on the
 * next page, the CPU does itself (or faults again). A whole page cleared
 * this way (a 64-bit kernel's rep stosq, a 32-bit one's rep stosl) costs
 * one exit. *bytes says how much was written.
 */
int kl_emulate_stos(struct kl_vcpu *vcpu, const struct kl_insn *in, u64 gpa, unsigned int *bytes)
{
	u8 op = in->opcode[0];
	unsigned int size = op == 0xaa ? 1 : in->opsize, room = PAGE_SIZE - (gpa & ~PAGE_MASK);
	u64 count = in->rep ? vcpu->regs[KL_RCX] & kl_addr_mask(in->addr_size) : 1, n;
	u64 val = vcpu->regs[KL_RAX];
	u8 buf[64];

	if (in->opcode_len != 1 || (op != 0xaa && op != 0xab) || !count ||
	    (vcpu->rflags & X86_EFLAGS_DF) || room < size)
		return -EOPNOTSUPP;
	n = min_t(u64, count, room / size);
	for (unsigned int i = 0; i < sizeof(buf); i += size)
		memcpy(buf + i, &val, size);
	for (u64 done = 0; done < n * size; done += sizeof(buf))
		if (kl_write_guest(vcpu->vm, gpa + done, buf, min_t(u64, sizeof(buf), n * size - done)))
			return -EFAULT;
	kl_addr_add(&vcpu->regs[KL_RDI], n * size, in->addr_size);
	if (in->rep)
		kl_addr_add(&vcpu->regs[KL_RCX], -(s64)n, in->addr_size);
	if (n == count)
		vcpu->rip += in->len;
	*bytes = n * size;
	return 0;
}

/* One MMIO access for userspace: a write now, or a read that lands at the next KVM_RUN. */
static void mmio_exit(struct kl_vcpu *vcpu, u64 gpa, int size, bool write, u64 val, u64 next_rip)
{
	struct kvm_run *run = vcpu->run;

	run->exit_reason = KVM_EXIT_MMIO;
	run->mmio.phys_addr = gpa;
	run->mmio.len = size;
	run->mmio.is_write = write;
	vcpu->stat.mmio_exits++;
	vcpu->mmio_next_rip = next_rip;
	vcpu->mmio_to_memory = false;
	if (write) {
		memcpy(run->mmio.data, &val, size);
		vcpu->rip = next_rip;
		return;
	}
	vcpu->mmio_pending = true;
	vcpu->pending_is_pio = false;
	vcpu->mmio_is_read = true;
	vcpu->mmio_len = size;
}

static bool is_ram(struct kl_vcpu *vcpu, u64 gpa, bool write)
{
	return kl_gfn_is_ram(vcpu->vm, gpa >> PAGE_SHIFT, write);
}

/* The arithmetic flags of a - b at `size` bytes, as CMP sets them. */
static u64 sub_flags(u64 rflags, u64 a, u64 b, int size)
{
	u64 mask = kl_addr_mask(size), sign = 1ULL << (8 * size - 1), res = (a - b) & mask;

	a &= mask;
	b &= mask;
	rflags &= ~(u64)(X86_EFLAGS_CF | X86_EFLAGS_PF | X86_EFLAGS_AF | X86_EFLAGS_ZF |
			 X86_EFLAGS_SF | X86_EFLAGS_OF);
	if (a < b)
		rflags |= X86_EFLAGS_CF;
	if (!(hweight8((u8)res) & 1))
		rflags |= X86_EFLAGS_PF;
	if ((a ^ b ^ res) & 0x10)
		rflags |= X86_EFLAGS_AF;
	if (!res)
		rflags |= X86_EFLAGS_ZF;
	if (res & sign)
		rflags |= X86_EFLAGS_SF;
	if ((a ^ b) & (a ^ res) & sign)
		rflags |= X86_EFLAGS_OF;
	return rflags;
}

/*
 * The MMIO read of a CMPS or SCAS came back: compare, and for REPE/REPNE
 * decide whether the instruction runs again (rCX left, ZF as it must be)
 * or is done.
 */
void kl_complete_compare(struct kl_vcpu *vcpu, u64 v)
{
	int size = vcpu->mmio_len;
	bool zf, again;

	if (vcpu->mmio_cmp_mmio_first)
		vcpu->rflags = sub_flags(vcpu->rflags, v, vcpu->mmio_cmp_other, size);
	else
		vcpu->rflags = sub_flags(vcpu->rflags, vcpu->mmio_cmp_other, v, size);
	zf = vcpu->rflags & X86_EFLAGS_ZF;
	again = vcpu->mmio_cmp_rep && (vcpu->regs[KL_RCX] & kl_addr_mask(vcpu->mmio_cmp_addr_size)) &&
		(vcpu->mmio_cmp_rep == KL_REPE ? zf : !zf);
	vcpu->mmio_next_rip = again ? vcpu->rip : vcpu->mmio_cmp_done_rip;
}

/*
 * The second operand of MOVS and CMPS, ES:rDI: its gpa, or false with the
 * verdict for the caller to return (a #PF injected, an error).
 */
static bool string_dest(struct kl_vcpu *vcpu, const struct kl_insn *in, bool write, u64 *dst,
			int *verdict)
{
	struct kvm_sregs sr;

	kl_vendor->get_segments(vcpu, &sr);
	return kl_translate_operand(vcpu, (in->long64 ? 0 : sr.es.base) +
				    (vcpu->regs[KL_RDI] & kl_addr_mask(in->addr_size)),
				    write, dst, verdict);
}

/*
 * STOS, LODS, MOVS, CMPS and SCAS against MMIO, one element per exit as
 * userspace serves each access: rSI/rDI/rCX move at once, and a REP
 * instruction restarts at the same RIP until rCX is used up (so an
 * interrupt can come between elements, as on the CPU). MOVS and CMPS may
 * have either side in RAM (read through the MMU layer) and the other in
 * MMIO; CMPS and SCAS finish when the read's data comes back
 * (kl_complete_compare), where REPE/REPNE decide on ZF whether to go on.
 */
static int string_mmio(struct kl_vcpu *vcpu, const struct kl_insn *in, u64 gpa)
{
	u8 op = in->opcode[0] & 0xfe;
	int size = (in->opcode[0] & 1) ? in->opsize : 1;
	bool compare = op == 0xa6 || op == 0xae, two_sided = op == 0xa4 || op == 0xa6;
	int rep = in->rep ? KL_REPE : compare && in->repne ? KL_REPNE : 0;
	s64 step = (vcpu->rflags & X86_EFLAGS_DF) ? -size : size;
	u64 count = rep ? vcpu->regs[KL_RCX] & kl_addr_mask(in->addr_size) : 1;
	u64 next_rip = rep && count > 1 ? vcpu->rip : vcpu->rip + in->len, val = 0;
	bool to_memory = false, mmio_first = false;
	u64 src, dst;
	int verdict;

	if (op != 0xa4 && op != 0xaa && op != 0xac && !compare)
		return kl_emulation_failed(vcpu, in);
	if (!count) {
		vcpu->rip += in->len;
		return 1;
	}
	if (two_sided) {	/* the source is seg:rSI (in->ea), the other side ES:rDI */
		if (!kl_translate_operand(vcpu, in->ea, false, &src, &verdict) ||
		    !string_dest(vcpu, in, op == 0xa4, &dst, &verdict))
			return verdict;
		if (is_ram(vcpu, src, false) == is_ram(vcpu, dst, op == 0xa4))
			return kl_emulation_failed(vcpu, in);	/* MMIO to MMIO */
		mmio_first = !is_ram(vcpu, src, false);
		/* The RAM side's value: what MOVS stores, what CMPS compares with. */
		if ((op == 0xa6 || !mmio_first) &&
		    kl_read_guest(vcpu->vm, mmio_first ? dst : src, &val, size))
			return kl_emulation_failed(vcpu, in);
		to_memory = op == 0xa4 && mmio_first;
		vcpu->mmio_dest_gpa = dst;
		gpa = mmio_first ? src : dst;
	}
	if (two_sided || op == 0xac)
		kl_addr_add(&vcpu->regs[KL_RSI], step, in->addr_size);
	if (op != 0xac)
		kl_addr_add(&vcpu->regs[KL_RDI], step, in->addr_size);
	if (rep)
		kl_addr_add(&vcpu->regs[KL_RCX], -1, in->addr_size);
	if (op == 0xaa || op == 0xae)
		val = vcpu->regs[KL_RAX] & kl_addr_mask(size);
	mmio_exit(vcpu, gpa, size, op == 0xaa || (op == 0xa4 && !to_memory), val, next_rip);
	vcpu->mmio_to_memory = to_memory;
	vcpu->mmio_reg = KL_RAX;	/* LODS; MOVS from MMIO writes memory instead */
	if (compare) {
		vcpu->mmio_compare = true;
		vcpu->mmio_cmp_mmio_first = op == 0xa6 && mmio_first;
		vcpu->mmio_cmp_other = val;
		vcpu->mmio_cmp_rep = rep;
		vcpu->mmio_cmp_addr_size = in->addr_size;
		vcpu->mmio_cmp_done_rip = vcpu->rip + in->len;
	}
	return 0;
}

/* A guest access that hit no memslot: hand it to userspace as KVM_EXIT_MMIO. */
int kl_emulate_mmio(struct kl_vcpu *vcpu, u64 addr, u64 gpa)
{
	struct kl_insn in;
	u8 op;
	int r = kl_fetch_decode(vcpu, &in), size;
	u64 val = 0;
	bool write;

	if (r == 0 && in.string)
		return string_mmio(vcpu, &in, gpa);
	if (r == 0 && !in.mem)
		r = -EOPNOTSUPP;
	/*
	 * The operand must be what faulted: an implicit access (a push, a
	 * string move, a fetch) to MMIO would otherwise be emulated as the
	 * instruction's other operand. Page offsets agree whether the fault
	 * gave a linear address (shadow) or a physical one (NPT).
	 */
	if (r == 0 && ((in.ea ^ addr) & ~PAGE_MASK))
		r = -EOPNOTSUPP;
	if (r) {
		in.len = 8;	/* report the first 8 bytes whatever was decoded */
		return kl_emulation_failed(vcpu, &in);
	}
	op = in.opcode[in.opcode_len - 1];
	write = kl_insn_store(vcpu, &in, &size, &val) == 0;
	/* Else a load: MOV (8A 8B A0 A1) or MOVZX; read-modify-write forms are not emulated. */
	if (!write && (in.opcode_len == 2 ? op != 0xb6 && op != 0xb7 :
		       op != 0x8a && op != 0x8b && op != 0xa0 && op != 0xa1)) {
		in.len = 8;
		return kl_emulation_failed(vcpu, &in);
	}
	if (!write)
		size = in.opcode_len == 2 ? (op == 0xb6 ? 1 : 2) :	/* MOVZX: byte or word */
		       (op == 0x8a || op == 0xa0) ? 1 : in.opsize;

	mmio_exit(vcpu, gpa, size, write, val, vcpu->rip + in.len);
	if (write)
		return 0;
	vcpu->mmio_reg = in.reg;
	if (in.opcode_len == 2)
		vcpu->regs[in.reg] = 0;	/* MOVZX: the loaded bytes land in a zeroed register */
	if (size == 1 && in.opcode_len == 1 && in.reg >= 4 && in.reg < 8 &&
	    !(in.rex_w || in.rex_r || in.rex_x || in.rex_b))
		vcpu->mmio_reg = in.reg - 4 + 16;	/* AH..BH */
	return 0;
}
