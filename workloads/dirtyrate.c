// SPDX-License-Identifier: GPL-2.0
/*
 * dirtyrate: write pages of a working set at a set rate, for live-migration
 * experiments (`kvmlab migrate`). One operation is one page written. The
 * pages come in a scattered order that visits the whole set before any
 * page again, so at `rate` pages per second the guest dirties
 * min(rate, pages / t) distinct pages in t seconds: a migration whose link
 * sends fewer than that per second can never converge.
 *
 * The pace comes from the TSC, calibrated once against the harness's clock
 * port; the checksum covers the working set's final contents and the
 * number of writes, so it does not depend on timing: a migrated run must
 * give the unmigrated run's checksum.
 */
#include "rt.h"

KL_NOT_A_BENCHMARK("paced by the clock, for migration experiments (kvmlab migrate)");

KL_PARAM(p_pages, "pages", 1024, 1, 16384, "working set, 4 KiB pages (up to 64 MiB)");
KL_PARAM(p_rate, "rate", 4000, 0, 100000000, "pages written per second (0: as fast as it can)");
KL_PARAM(p_writes, "writes", 20000, 1, 1000000000, "page writes in all");

#define WS_VA		(KL_KERNEL_AREA_VA + 0x40000000ULL)
#define SCATTER		1000003ULL	/* prime: i * SCATTER mod n visits every page */
#define CALIBRATE_US	20000

/* TSC ticks per microsecond, against the host's clock. */
static u64 tsc_per_us(void)
{
	u32 us0 = inl(KL_PORT_CLOCK), us;
	u64 tsc0 = rdtsc();

	while ((us = inl(KL_PORT_CLOCK)) - us0 < CALIBRATE_US)
		;
	return (rdtsc() - tsc0) / (us - us0) ?: 1;
}

int workload_main(void)
{
	u64 pages = p_pages.value, writes = p_writes.value, rate = p_rate.value;
	u64 per_us = rate ? tsc_per_us() : 0, start, sum = 0;

	for (u64 i = 0; i < pages; i++)
		pt_map(kl_kernel_as.root, WS_VA + i * PAGE_SIZE, page_alloc(), PTE_P | PTE_W | PTE_NX);
	kl_phase_begin();
	start = rdtsc();
	for (u64 n = 0; n < writes; n++) {
		u64 page = (n * SCATTER) % pages;
		volatile u64 *p = (u64 *)(WS_VA + page * PAGE_SIZE + (n % 512) * 8);

		if (rate) {
			u64 due = start + n * per_us * 1000000 / rate;

			while (rdtsc() < due)
				asm volatile("pause");
		}
		*p += n + 1;
	}
	for (u64 i = 0; i < pages; i++)
		for (u64 k = 0; k < 512; k++)
			sum = kl_hash(sum, ((u64 *)(WS_VA + i * PAGE_SIZE))[k]);
	kl_phase_end(writes, kl_hash(sum, writes));
	return 0;
}
