// SPDX-License-Identifier: GPL-2.0
/*
 * smp-ctxswitch: every CPU switches among address spaces of its own.
 *
 * CPU 0 builds, for each CPU, `spaces` address spaces with `pages` user
 * pages each at the same virtual addresses, every page holding a value of
 * its own. Then every CPU at once, for `rounds` rounds, loads the CR3 of
 * each of its spaces in turn and reads its pages. Under a shadow MMU that
 * is a CR3 switch per operation on every vCPU, each with its own set of
 * roots; under nested paging it is nothing the hypervisor sees. Each CPU
 * folds what it read; the checksum folds the CPUs' results in CPU order,
 * so it does not depend on the interleaving (it does on the CPU count).
 */
#include "rt.h"

KL_SMP_WORKLOAD();

KL_PARAM(p_rounds, "rounds", 200, 1, 1000000, "rounds over each CPU's spaces");
KL_PARAM(p_spaces, "spaces", 4, 1, 32, "address spaces per CPU");
KL_PARAM(p_pages, "pages", 8, 1, 64, "pages read in each space");

#define MAX_SPACES	32

static struct aspace spaces[KL_MAX_CPUS][MAX_SPACES];
static u64 result[KL_MAX_CPUS];

static u64 value(int cpu, u64 k, u64 j)
{
	return kl_hash(kl_hash((u64)cpu + 1, k), j);
}

static void work(int cpu, void *arg)
{
	u64 h = 0;

	(void)arg;
	for (u64 r = 0; r < p_rounds.value; r++) {
		for (u64 k = 0; k < p_spaces.value; k++) {
			aspace_switch(&spaces[cpu][k]);
			for (u64 j = 0; j < p_pages.value; j++)
				h = kl_hash(h, *(volatile u64 *)(KL_USER_DATA_VA + j * PAGE_SIZE));
		}
	}
	aspace_switch(&kl_kernel_as);
	result[cpu] = h;
}

int workload_main(void)
{
	int n = kl_smp_start();
	u64 h = 0;

	for (int c = 0; c < n; c++) {
		for (u64 k = 0; k < p_spaces.value; k++) {
			aspace_init(&spaces[c][k]);
			for (u64 j = 0; j < p_pages.value; j++) {
				ulong pa = page_alloc();

				*(u64 *)pa = value(c, k, j);
				pt_map(spaces[c][k].root, KL_USER_DATA_VA + j * PAGE_SIZE, pa,
				       PTE_P | PTE_W | PTE_U | PTE_NX);
			}
		}
	}
	kl_phase_begin();
	kl_smp_run(work, NULL);
	work(0, NULL);
	kl_smp_wait();
	for (int c = 0; c < n; c++)
		h = kl_hash(h, result[c]);
	kl_phase_end((u64)n * p_rounds.value * p_spaces.value, h);
	return 0;
}
