// SPDX-License-Identifier: GPL-2.0
/*
 * String port I/O: INS and OUTS, with or without REP. Userspace sees one
 * KVM_EXIT_IO per batch with io.count elements in the vCPU's mmap at
 * io.data_offset, as with Linux KVM: OUTS data is read from guest memory
 * before the exit; INS data is written to guest memory when the next
 * KVM_RUN comes back with it. A batch stays within one guest page and the
 * room after struct kvm_run in our one-page mmap; a REP instruction whose
 * count is not used up restarts at the same RIP, so the CPU (or a pending
 * interrupt) sees it exactly as it would see a REP instruction that was
 * interrupted.
 *
 * The instruction is decoded here (QEMU's IOIO exit gives no segment),
 * its memory operand translated through the guest's tables with A/D set
 * (kl_translate_operand), and an INS's write goes through the MMU layer so a
 * strategy that write-protects tables sees it (kl_mmu_write_guest).
 * Segment limits are not checked.
 */
#include <linux/kvm.h>
#include <asm/processor-flags.h>
#include "vendor.h"

/* Reverse the order of n elements of size bytes: DF=1 moves down through memory. */
static void reverse_elements(u8 *data, u64 n, int size)
{
	for (u64 i = 0; i < n / 2; i++) {
		u8 *a = data + i * size, *b = data + (n - 1 - i) * size;

		for (int k = 0; k < size; k++) {
			u8 t = a[k];

			a[k] = b[k];
			b[k] = t;
		}
	}
}

/* How many elements from linear address lin stay in its page, going up or down. */
static u64 elements_in_page(u64 lin, int size, bool down)
{
	u64 off = lin & ~PAGE_MASK;

	return down ? off / size + 1 : (PAGE_SIZE - off) / size;
}

/* The registers after n elements: rSI or rDI moves, rCX counts down, RIP moves on when done. */
static void advance(struct kl_vcpu *vcpu, int reg, u64 n, int size, bool down, bool rep,
		    int addr_size, int len)
{
	kl_addr_add(&vcpu->regs[reg], (down ? -1 : 1) * (s64)(n * size), addr_size);
	if (rep)
		kl_addr_add(&vcpu->regs[KL_RCX], -(s64)n, addr_size);
	if (!rep || !(vcpu->regs[KL_RCX] & kl_addr_mask(addr_size)))
		vcpu->rip += len;
}

int kl_emulate_string_io(struct kl_vcpu *vcpu, const struct kl_io *io)
{
	struct kvm_run *run = vcpu->run;
	u32 offset = ALIGN(sizeof(*run), 64);
	bool down = vcpu->rflags & X86_EFLAGS_DF;
	u8 *data = (u8 *)run + offset;
	u64 count, n, gpa;
	struct kl_insn in;
	int verdict;

	if (kl_fetch_decode(vcpu, &in) || !in.string || (in.opcode[0] & 0xfc) != 0x6c ||
	    ((in.opcode[0] & 1) ? in.opsize : 1) != io->size || in.rep != io->rep)
		return kl_emulation_failed(vcpu, &in);
	count = in.rep ? vcpu->regs[KL_RCX] & kl_addr_mask(in.addr_size) : 1;
	if (!count) {
		vcpu->rip += in.len;
		return 1;
	}
	n = min3(count, (u64)(PAGE_SIZE - offset) / io->size,
		 elements_in_page(in.ea, io->size, down));
	if (!n)		/* an element straddling two pages */
		return kl_emulation_failed(vcpu, &in);
	if (!kl_translate_operand(vcpu, in.ea, io->in, &gpa, &verdict))
		return verdict;
	if (!kl_gfn_is_ram(vcpu->vm, gpa >> PAGE_SHIFT, io->in))
		return kl_emulation_failed(vcpu, &in);	/* string I/O from or to MMIO (or into a ROM) */
	if (down)
		gpa -= (n - 1) * io->size;

	run->exit_reason = KVM_EXIT_IO;
	run->io.direction = io->in ? KVM_EXIT_IO_IN : KVM_EXIT_IO_OUT;
	run->io.size = io->size;
	run->io.port = io->port;
	run->io.count = n;
	run->io.data_offset = offset;
	if (!io->in) {
		if (kl_read_guest(vcpu->vm, gpa, data, n * io->size))
			return kl_emulation_failed(vcpu, &in);
		if (down)
			reverse_elements(data, n, io->size);
		advance(vcpu, KL_RSI, n, io->size, down, in.rep, in.addr_size, in.len);
		return 0;
	}
	vcpu->pio_in = (struct kl_string_in) {
		.pending = true, .gpa = gpa, .count = n, .size = io->size, .down = down,
		.rep = in.rep, .addr_size = in.addr_size, .len = in.len,
	};
	return 0;
}

/*
 * KVM_RUN is back with an INS batch's data: store it, then move the
 * registers on. Userspace may have changed rCX meanwhile (KVM lets it, and
 * Linux's userspace_io_test does): never store more elements than rCX
 * still asks for, and let a larger rCX go on with further batches.
 */
void kl_complete_string_in(struct kl_vcpu *vcpu)
{
	struct kl_string_in *p = &vcpu->pio_in;
	u8 *data = (u8 *)vcpu->run + vcpu->run->io.data_offset;
	u64 n = p->count, gpa = p->gpa;

	p->pending = false;
	if (p->rep)
		n = min_t(u64, n, vcpu->regs[KL_RCX] & kl_addr_mask(p->addr_size));
	if (!n) {
		vcpu->rip += p->len;
		return;
	}
	if (p->down) {
		/* The first n elements went down from the batch's top. */
		reverse_elements(data, n, p->size);
		gpa += (p->count - n) * p->size;
	}
	if (kl_mmu_write_guest(vcpu, gpa, data, n * p->size))
		return;		/* the memslot went away meanwhile: the guest redoes the batch */
	advance(vcpu, KL_RDI, n, p->size, p->down, p->rep, p->addr_size, p->len);
}
