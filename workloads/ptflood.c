// SPDX-License-Identifier: GPL-2.0
/*
 * ptflood: create page tables as fast as possible. Each round builds
 * `spaces` address spaces, each with `tables` page tables (one mapped page
 * per 2 MiB of VA, so every page needs a table of its own), enters each
 * space and touches all of its pages, then tears everything down. One
 * operation is one page table created.
 *
 * What it shows: a shadowing hypervisor would need a shadow page for every
 * one of those tables. The per-VM caps (vtlb_max_tables,
 * shadow_max_tables, cached_max_pages) must hold it down, and the guest
 * must keep running correctly while its shadows are recycled under it.
 */
#include "rt.h"

KL_PARAM(p_rounds, "rounds", 4, 1, 1000000, "build-and-tear-down rounds");
KL_PARAM(p_spaces, "spaces", 16, 1, 64, "address spaces per round");
KL_PARAM(p_tables, "tables", 64, 1, 512, "page tables per space");

int workload_main(void)
{
	struct aspace spaces[64];
	u64 frame = page_alloc(), sum = 0, created = 0;
	u64 ns = p_spaces.value, nt = p_tables.value;

	kl_phase_begin();
	for (u64 r = 0; r < p_rounds.value; r++) {
		for (u64 s = 0; s < ns; s++) {
			aspace_init(&spaces[s]);
			for (u64 t = 0; t < nt; t++) {
				page_get(frame);
				pt_map(spaces[s].root, KL_USER_DATA_VA + t * LARGE_PAGE_SIZE +
				       (s % 512) * PAGE_SIZE, frame, PTE_P | PTE_W | PTE_NX);
				created++;
			}
		}
		for (u64 s = 0; s < ns; s++) {
			aspace_switch(&spaces[s]);
			for (u64 t = 0; t < nt; t++) {
				volatile u64 *p = (u64 *)(KL_USER_DATA_VA + t * LARGE_PAGE_SIZE +
							  (s % 512) * PAGE_SIZE);

				*p += s + t;
				sum = kl_hash(sum, *p);
			}
		}
		aspace_switch(&kl_kernel_as);
		for (u64 s = 0; s < ns; s++)
			aspace_destroy(&spaces[s]);
	}
	kl_phase_end(created, sum);
	return 0;
}
