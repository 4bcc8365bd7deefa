// SPDX-License-Identifier: GPL-2.0
/*
 * callret (Adams & Agesen): call and return — nothing privileged, the
 * baseline any hypervisor should run at native speed. One operation is one
 * call/return pair.
 */
#include "rt.h"

KL_PARAM(p_n, "n", 200000, 1, 1000000000, "call/return pairs");

static __attribute__((noinline)) u64 leaf(u64 x)
{
	asm volatile("" : "+r"(x));	/* keep the call */
	return x * 3 + 1;
}

int workload_main(void)
{
	u64 x = 1;

	kl_phase_begin();
	for (u64 i = 0; i < p_n.value; i++)
		x = leaf(x);
	kl_phase_end(p_n.value, x);
	return 0;
}
