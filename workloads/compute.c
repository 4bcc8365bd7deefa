// SPDX-License-Identifier: GPL-2.0
/*
 * compute: arithmetic over a small working set that the TLB holds — no
 * page faults, no privileged instructions. A hypervisor's overhead here
 * should be nothing; if exits/op is not ~0, something is wrong.
 * One operation is one pass over the working set.
 */
#include "rt.h"

KL_PARAM(p_passes, "passes", 200, 1, 100000000, "passes over the working set");
KL_PARAM(p_kib, "kib", 16, 4, 1024, "working set, KiB");

int workload_main(void)
{
	u64 words = p_kib.value * 1024 / 8, h = 0;
	u64 *buf = (u64 *)(KL_KERNEL_AREA_VA + 0x40000000ULL);

	for (u64 off = 0; off < words * 8; off += PAGE_SIZE)
		pt_map(kl_kernel_as.root, (u64)buf + off, page_alloc(), PTE_P | PTE_W | PTE_NX);
	for (u64 i = 0; i < words; i++)
		buf[i] = i * 0x9e3779b97f4a7c15ULL;
	kl_phase_begin();
	for (u64 p = 0; p < p_passes.value; p++)
		for (u64 i = 0; i < words; i++) {
			buf[i] = buf[i] * 6364136223846793005ULL + p;
			h ^= buf[i] >> 17;
		}
	kl_phase_end(p_passes.value, h);
	return 0;
}
