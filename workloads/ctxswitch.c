// SPDX-License-Identifier: GPL-2.0
/*
 * ctxswitch: K address spaces, each mapping M private pages at the same
 * virtual addresses; the kernel visits them round-robin, loading CR3 and
 * then reading and writing every page. One operation is one switch.
 *
 * What it shows: a virtual TLB forgets everything at each CR3 load and
 * refaults all M pages; a cached shadow or nested paging keeps them.
 */
#include "rt.h"

KL_PARAM(p_spaces, "spaces", 8, 1, 512, "address spaces (K)");
KL_PARAM(p_pages, "pages", 16, 1, 512, "pages touched in each space per visit (M)");
KL_PARAM(p_rounds, "rounds", 20, 1, 1000000, "measured visits of every space");

static struct aspace spaces[512];

static u64 visit(struct aspace *as, ulong pages, u64 sum)
{
	aspace_switch(as);
	for (ulong i = 0; i < pages; i++) {
		volatile u64 *p = (u64 *)(KL_USER_DATA_VA + i * PAGE_SIZE);
		u64 v = *p;

		*p = v + 1;
		sum = kl_hash(sum, v);
	}
	return sum;
}

int workload_main(void)
{
	ulong k = p_spaces.value, m = p_pages.value;
	u64 sum = 0;

	for (ulong s = 0; s < k; s++) {
		aspace_init(&spaces[s]);
		for (ulong i = 0; i < m; i++) {
			ulong pa = page_alloc();

			*(u64 *)pa = (u64)s << 32 | i;
			pt_map(spaces[s].root, KL_USER_DATA_VA + i * PAGE_SIZE, pa,
			       PTE_P | PTE_W | PTE_U | PTE_NX);
		}
	}
	for (ulong s = 0; s < k; s++)	/* warm-up: first touches are not measured */
		visit(&spaces[s], m, 0);

	kl_phase_begin();
	for (u64 r = 0; r < p_rounds.value; r++)
		for (ulong s = 0; s < k; s++)
			sum = visit(&spaces[s], m, sum);
	kl_phase_end(p_rounds.value * k, sum);

	aspace_switch(&kl_kernel_as);
	for (ulong s = 0; s < k; s++)
		aspace_destroy(&spaces[s]);
	return 0;
}
