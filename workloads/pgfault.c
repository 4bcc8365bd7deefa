// SPDX-License-Identifier: GPL-2.0
/*
 * pgfault: demand paging done by the guest kernel. A region starts
 * unmapped; every first touch raises #PF, the guest's handler allocates a
 * frame and maps it, and the access is retried. After each round the region
 * is unmapped again. One operation is one guest page fault.
 *
 * What it shows: with shadow paging each guest fault is first a VM exit
 * (the hypervisor must find that the guest's own PTE is missing and
 * reflect the #PF: pf_guest); with nested paging the guest handles it alone.
 */
#include "rt.h"

KL_PARAM(p_pages, "pages", 256, 1, 65536, "pages in the demand-paged region");
KL_PARAM(p_rounds, "rounds", 4, 1, 100000, "measured map-and-unmap rounds");

#define REGION_VA	KL_USER_DATA_VA

static u64 faults;

static bool demand_page(ulong cr2, u64 error, bool user)
{
	ulong size = p_pages.value * PAGE_SIZE;

	if (user || (error & PFERR_P) || cr2 < REGION_VA || cr2 >= REGION_VA + size)
		return false;
	pt_map(read_cr3(), cr2 & ~(PAGE_SIZE - 1), page_alloc(), PTE_P | PTE_W | PTE_NX);
	faults++;
	return true;
}

int workload_main(void)
{
	struct aspace as;
	u64 sum = 0;
	ulong n = p_pages.value;

	aspace_init(&as);
	aspace_switch(&as);
	kl_pf_hook = demand_page;
	/* Warm-up round: builds the page-table pages the region needs. */
	*(volatile u64 *)REGION_VA = 1;
	page_put((ulong)(pt_unmap(as.root, REGION_VA) & PTE_ADDR_MASK));
	faults = 0;

	kl_phase_begin();
	for (u64 r = 0; r < p_rounds.value; r++) {
		for (ulong i = 0; i < n; i++) {
			volatile u64 *p = (u64 *)(REGION_VA + i * PAGE_SIZE);

			*p = (u64)r << 32 | i;	/* faults: the page is not there */
			sum = kl_hash(sum, *p);
		}
		for (ulong i = 0; i < n; i++)
			page_put((ulong)(pt_unmap(as.root, REGION_VA + i * PAGE_SIZE) & PTE_ADDR_MASK));
	}
	kl_phase_end(faults, kl_hash(sum, faults));

	kl_pf_hook = NULL;
	aspace_destroy(&as);
	return faults == p_rounds.value * n ? 0 : 1;
}
