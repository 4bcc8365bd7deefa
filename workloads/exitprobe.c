// SPDX-License-Identifier: GPL-2.0
/*
 * exitprobe: the ways a guest leaves the hypervisor for userspace.
 *
 * kind=0 (the default) moves data through the harness's scratch MMIO
 * device with every MOV form a hypervisor without decode assists must
 * decode itself (8/16/32/64-bit stores and loads, immediates, REX
 * registers, SIB addressing, MOVZX), and through the echo port with OUT
 * and IN, and an unknown VMMCALL. Each is a named check. One operation is
 * one MMIO or port access or hypercall.
 *
 * The other kinds end the run on purpose, to check that each hypervisor
 * reports the same exit: 1 = HLT, 2 = triple fault (shutdown), 3 = MMIO to
 * an address where no device is.
 */
#include "rt.h"

KL_PARAM(p_kind, "kind", 0, 0, 3, "0 MMIO+port checks, 1 hlt, 2 triple fault, 3 stray MMIO");

#define SCRATCH_VA	(KL_KERNEL_AREA_VA + 0x7fe00000ULL)

static u64 checksum, ops;
static int failures;

static void expect(const char *name, u64 got, u64 want)
{
	kl_check(name, got == want, "read back %llx, expected %llx",
		 (unsigned long long)got, (unsigned long long)want);
	failures += got != want;
	checksum = kl_hash(checksum, got);
}

static void mmio_forms(void)
{
	u64 base = SCRATCH_VA, v;
	u32 v32;
	u16 v16;
	u8 v8;

	/* Stores of each width, loads of each width. */
	asm volatile("movb %b1, (%0)" :: "r"(base), "q"(0x5a) : "memory");
	asm volatile("movb (%1), %b0" : "=q"(v8) : "r"(base) : "memory");
	expect("mmio_byte", v8, 0x5a);
	asm volatile("movw %w1, 2(%0)" :: "r"(base), "r"(0xbeef) : "memory");
	asm volatile("movw 2(%1), %w0" : "=r"(v16) : "r"(base) : "memory");
	expect("mmio_word", v16, 0xbeef);
	asm volatile("movl %k1, 4(%0)" :: "r"(base), "r"(0xdeadbeef) : "memory");
	asm volatile("movl 4(%1), %k0" : "=r"(v32) : "r"(base) : "memory");
	expect("mmio_dword", v32, 0xdeadbeef);
	asm volatile("movq %1, 8(%0)" :: "r"(base), "r"(0x0123456789abcdefULL) : "memory");
	asm volatile("movq 8(%1), %0" : "=r"(v) : "r"(base) : "memory");
	expect("mmio_qword", v, 0x0123456789abcdefULL);

	/* Immediates: imm8, imm32, and imm32 sign-extended to 64 bits. */
	asm volatile("movb $0x7e, 16(%0)" :: "r"(base) : "memory");
	asm volatile("movl $0x11223344, 20(%0)" :: "r"(base) : "memory");
	asm volatile("movq $-2, 24(%0)" :: "r"(base) : "memory");
	asm volatile("movq 24(%1), %0" : "=r"(v) : "r"(base) : "memory");
	expect("mmio_imm_sign_extended", v, (u64)-2);
	asm volatile("movl 20(%1), %k0" : "=r"(v32) : "r"(base) : "memory");
	expect("mmio_imm32", v32, 0x11223344);

	/* REX-extended registers and SIB addressing with a scaled index. */
	asm volatile("mov %1, %%r9\n\tmovq %%r9, (%0,%2,8)"
		     :: "r"(base), "r"(0xfeedfacecafeULL), "r"(5ULL) : "r9", "memory");
	asm volatile("movq 40(%1), %%r10\n\tmov %%r10, %0" : "=r"(v) : "r"(base) : "r10", "memory");
	expect("mmio_rex_sib", v, 0xfeedfacecafeULL);

	/* MOVZX from MMIO clears the rest of the register. */
	v = ~0ULL;
	asm volatile("movzbl 16(%1), %k0" : "+r"(v) : "r"(base) : "memory");
	expect("mmio_movzx_byte", v, 0x7e);
	v = ~0ULL;
	asm volatile("movzwl 2(%1), %k0" : "+r"(v) : "r"(base) : "memory");
	expect("mmio_movzx_word", v, 0xbeef);
	ops += 17;
}

static void echo_port(void)
{
	u32 v;

	asm volatile("outl %0, %1" :: "a"(0xc0ffee11), "Nd"(KL_PORT_ECHO));
	asm volatile("inl %1, %0" : "=a"(v) : "Nd"(KL_PORT_ECHO));
	expect("port_in_returns_out", v, 0xc0ffee11);
	ops += 2;
}

/* An unknown hypercall number: KVM's ABI answers -KVM_ENOSYS (-1000) in RAX. */
static void hypercall(void)
{
	long ret;

	asm volatile("vmmcall" : "=a"(ret) : "a"(0x7fffffffUL) : "memory");
	expect("vmmcall_unknown_returns_enosys", (u64)ret, (u64)-1000L);
	ops += 1;
}

static void __attribute__((noreturn)) triple_fault(void)
{
	struct { u16 limit; u64 base; } __attribute__((packed)) empty = { 0, 0 };

	/* No IDT: the #BP becomes #GP, then #DF, then a shutdown. */
	asm volatile("lidt %0; int3" :: "m"(empty));
	kl_panic("still running after a triple fault");
}

int workload_main(void)
{
	pt_map(kl_kernel_as.root, SCRATCH_VA, KL_MMIO_SCRATCH_GPA,
	       PTE_P | PTE_W | PTE_PCD | PTE_NX);
	pt_map(kl_kernel_as.root, SCRATCH_VA + PAGE_SIZE, KL_MMIO_SCRATCH_GPA - (16ULL << 20),
	       PTE_P | PTE_W | PTE_PCD | PTE_NX);
	switch (p_kind.value) {
	case 1:
		asm volatile("cli; hlt");
		kl_panic("resumed after hlt");
	case 2:
		triple_fault();
	case 3:
		*(volatile u32 *)(SCRATCH_VA + PAGE_SIZE + 0x10) = 1;
		kl_panic("a write to no device came back");
	}
	kl_phase_begin();
	mmio_forms();
	echo_port();
	hypercall();
	kl_phase_end(ops, checksum);
	return failures ? 1 : 0;
}
