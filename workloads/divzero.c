// SPDX-License-Identifier: GPL-2.0
/*
 * divzero (Adams & Agesen): a division by zero delivered to the guest's own
 * #DE handler and returned from. One operation is one exception. Hardware
 * hypervisors deliver it without an exit; software ones must reflect it.
 */
#include "rt.h"

KL_PARAM(p_n, "n", 20000, 1, 100000000, "#DE exceptions");

int workload_main(void)
{
	u64 seen = 0;

	kl_phase_begin();
	for (u64 i = 0; i < p_n.value; i++)
		seen += probe_div0() == VEC_DE;
	kl_phase_end(p_n.value, seen);
	return seen == p_n.value ? 0 : 1;
}
