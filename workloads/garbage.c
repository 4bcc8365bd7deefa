// SPDX-License-Identifier: GPL-2.0
/*
 * garbage: execute a page of random bytes at CPL0 with random registers
 * and no IDT. Whatever the bytes do (privileged instructions, CR and MSR
 * writes, port and MMIO accesses, wild jumps), the run must end cleanly:
 * a triple fault, an internal error, HLT, a bad message to the harness, or
 * the timeout; and the host must not notice. Nothing is measured.
 */
#include "rt.h"

KL_NOT_A_BENCHMARK("random code: ends in an error by design");

KL_PARAM(p_seed, "seed", 1, 0, 0x7fffffffffffffffULL, "random seed for the bytes and registers");

static u64 state;

int workload_main(void)
{
	u64 *code = (u64 *)page_alloc();
	u64 regs[15];
	struct { u16 limit; u64 base; } __attribute__((packed)) no_idt = { 0, 0 };

	state = p_seed.value;
	for (int i = 0; i < 512; i++)
		code[i] = kl_rand64(&state);
	for (int i = 0; i < 15; i++)
		regs[i] = kl_rand64(&state);
	kl_printf("garbage: seed %llu, jumping to random bytes at %llx\n",
		  (unsigned long long)p_seed.value, (unsigned long long)(u64)code);
	asm volatile("lidt %0" :: "m"(no_idt));
	asm volatile(
		"mov 0(%0), %%rax\n\t"	"mov 8(%0), %%rbx\n\t"	"mov 16(%0), %%rcx\n\t"
		"mov 24(%0), %%rdx\n\t"	"mov 32(%0), %%rsi\n\t"	"mov 48(%0), %%rbp\n\t"
		"mov 56(%0), %%r8\n\t"	"mov 64(%0), %%r9\n\t"	"mov 72(%0), %%r10\n\t"
		"mov 80(%0), %%r11\n\t"	"mov 88(%0), %%r12\n\t"	"mov 96(%0), %%r13\n\t"
		"mov 104(%0), %%r14\n\t" "mov 112(%0), %%r15\n\t" "mov 40(%0), %%rsp\n\t"
		"mov %1, %%rdi\n\t"
		"jmp *%%rdi"
		:: "r"(regs), "r"(code) : "memory");
	__builtin_unreachable();
}
