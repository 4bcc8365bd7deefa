// SPDX-License-Identifier: GPL-2.0
/*
 * in (Adams & Agesen): port input from a device the hypervisor's userspace
 * emulates (the harness's echo port). One operation is one IN: a full
 * round trip guest -> kernel -> userspace -> kernel -> guest.
 */
#include "rt.h"

KL_PARAM(p_n, "n", 2000, 1, 10000000, "IN instructions");

int workload_main(void)
{
	u64 sum = 0;
	u32 v = 0;

	asm volatile("outl %0, %1" :: "a"(0x1234u), "Nd"(KL_PORT_ECHO));
	kl_phase_begin();
	for (u64 i = 0; i < p_n.value; i++) {
		asm volatile("inl %1, %0" : "=a"(v) : "Nd"(KL_PORT_ECHO));
		sum = kl_hash(sum, v);
	}
	kl_phase_end(p_n.value, sum);
	return v == 0x1234 ? 0 : 1;
}
