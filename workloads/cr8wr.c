// SPDX-License-Identifier: GPL-2.0
/*
 * cr8wr (Adams & Agesen): writes to CR8, the task-priority register, as an
 * OS does around interrupt-priority changes. One operation is one write.
 * Value 0 throughout: lowering the TPR could make a hypervisor without an
 * in-kernel APIC report it to userspace (KVM_EXIT_SET_TPR).
 */
#include "rt.h"

KL_PARAM(p_n, "n", 20000, 1, 100000000, "CR8 writes");

int workload_main(void)
{
	u64 v = 0, sum = 0;

	kl_phase_begin();
	for (u64 i = 0; i < p_n.value; i++) {
		asm volatile("mov %0, %%cr8" :: "r"(0ULL) : "memory");
		asm volatile("mov %%cr8, %0" : "=r"(v));
		sum += v + 1;
	}
	kl_phase_end(p_n.value, sum);
	return 0;
}
