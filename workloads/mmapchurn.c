// SPDX-License-Identifier: GPL-2.0
/*
 * mmapchurn: map 1 MiB of fresh frames, touch every page, unmap it (with
 * INVLPG) and free the frames; repeat. One operation is one page mapped,
 * touched and unmapped.
 *
 * What it shows: the cost of a mapping's whole life. A shadowing
 * hypervisor pays a hidden fault to fill each new translation and must
 * notice each PTE cleared; under nested paging all of it is the guest's.
 */
#include "rt.h"

KL_PARAM(p_rounds, "rounds", 20, 1, 1000000, "map-touch-unmap rounds");
KL_PARAM(p_kib, "kib", 1024, 4, 65536, "size of each mapping, KiB");

#define CHURN_VA	(KL_KERNEL_AREA_VA + 0x10000000ULL)

int workload_main(void)
{
	u64 pages = p_kib.value / 4, sum = 0;

	kl_phase_begin();
	for (u64 r = 0; r < p_rounds.value; r++) {
		for (u64 i = 0; i < pages; i++)
			pt_map(kl_kernel_as.root, CHURN_VA + i * PAGE_SIZE, page_alloc(),
			       PTE_P | PTE_W | PTE_NX);
		for (u64 i = 0; i < pages; i++) {
			volatile u64 *p = (u64 *)(CHURN_VA + i * PAGE_SIZE);

			*p = r * pages + i;
			sum = kl_hash(sum, *p);
		}
		for (u64 i = 0; i < pages; i++)
			page_free(pt_unmap(kl_kernel_as.root, CHURN_VA + i * PAGE_SIZE) & PTE_ADDR_MASK);
	}
	kl_phase_end(p_rounds.value * pages, sum);
	return 0;
}
