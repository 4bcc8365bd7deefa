// SPDX-License-Identifier: GPL-2.0
/*
 * memtouch: touch a working set of 4 KiB pages, sequentially or in a
 * scattered order, pass after pass. One operation is one page touched
 * (read and written).
 *
 * What it shows: translation cost against the working set, from one page
 * (always in the TLB) to 1 GiB (262144 translations, far beyond any TLB
 * or a small shadow cache). Only translations matter here, not RAM: the
 * working set's pages are aliases of at most 4096 frames (16 MiB), so a
 * 1 GiB working set fits a guest of 128 MiB.
 */
#include "rt.h"

KL_PARAM(p_kib, "kib", 1024, 4, 1048576, "working set, KiB (4 KiB to 1 GiB)");
KL_PARAM(p_random, "random", 0, 0, 1, "0: sequential order; 1: scattered order");
KL_PARAM(p_passes, "passes", 4, 1, 1000000, "measured passes over the working set");

#define WS_VA		(KL_KERNEL_AREA_VA + 0x40000000ULL)
#define MAX_FRAMES	4096
#define SCATTER		1000003ULL	/* prime: i * SCATTER mod n visits every page */

int workload_main(void)
{
	u64 pages = p_kib.value / 4, frames = pages < MAX_FRAMES ? pages : MAX_FRAMES;
	static u64 frame[MAX_FRAMES];
	u64 sum = 0;

	for (u64 f = 0; f < frames; f++)
		frame[f] = page_alloc();
	for (u64 i = 0; i < pages; i++)
		pt_map(kl_kernel_as.root, WS_VA + i * PAGE_SIZE, frame[i % frames],
		       PTE_P | PTE_W | PTE_NX);
	kl_phase_begin();
	for (u64 pass = 0; pass < p_passes.value; pass++) {
		for (u64 i = 0; i < pages; i++) {
			u64 page = p_random.value ? (i * SCATTER) % pages : i;
			volatile u64 *p = (u64 *)(WS_VA + page * PAGE_SIZE + (page % 64) * 8);

			*p += 1;
			sum = kl_hash(sum, *p);
		}
	}
	kl_phase_end(p_passes.value * pages, sum);
	return 0;
}
