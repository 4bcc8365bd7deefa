// SPDX-License-Identifier: GPL-2.0
/*
 * smp-shootdown: one CPU unmaps and remaps pages that every CPU reads; a
 * TLB shootdown per operation.
 *
 * CPU 0, per operation, on page i of a window in the shared kernel area:
 * writes generation g+1 into the frame not mapped there, clears the PTE,
 * shoots the translation down on every CPU (INVLPG here, an IPI to each
 * other CPU, wait for their acks), maps the new frame and publishes g+1.
 * The other CPUs read the window in a loop. A CPU that read "published
 * g" before it read the page must see g or later there: anything older
 * came through a translation the shootdown should have removed, from the
 * guest's TLB or from the hypervisor's shadow of it. While a page is
 * unmapped, a reader's #PF is retried. The checksum covers what CPU 0 did,
 * not the interleaving.
 */
#include "rt.h"

KL_SMP_WORKLOAD();

KL_PARAM(p_ops, "ops", 2000, 1, 1000000, "unmap-remap operations, a shootdown each");
KL_PARAM(p_pages, "pages", 8, 1, 64, "pages in the window every CPU reads");

#define WINDOW_VA	(KL_KERNEL_AREA_VA + 0x200000UL)
#define MAX_PAGES	64

static ulong frames[MAX_PAGES][2];
static volatile u64 published[MAX_PAGES];
static volatile int stop;
static volatile u64 reads[KL_MAX_CPUS], stale[KL_MAX_CPUS], faults[KL_MAX_CPUS];

static ulong page_va(u64 i)
{
	return WINDOW_VA + i * PAGE_SIZE;
}

/* A reader that touches a page while it is unmapped tries again. */
static bool window_fault(ulong cr2, u64 error, bool user)
{
	if (user || (error & PFERR_P) || cr2 < WINDOW_VA ||
	    cr2 >= page_va(p_pages.value))
		return false;
	faults[kl_cpu_id()]++;
	return true;
}

static void reader(int cpu, void *arg)
{
	u64 pages = p_pages.value;

	(void)arg;
	while (!stop) {
		for (u64 i = 0; i < pages; i++) {
			u64 min = __atomic_load_n(&published[i], __ATOMIC_ACQUIRE);
			u64 seen = *(volatile u64 *)page_va(i);

			stale[cpu] += seen < min;
			reads[cpu]++;
		}
	}
}

int workload_main(void)
{
	u64 pages = p_pages.value, ops = p_ops.value, h = 0, total_reads = 0, total_stale = 0;
	u64 total_faults = 0;
	int n = kl_smp_start();

	for (u64 i = 0; i < pages; i++) {
		frames[i][0] = page_alloc();
		frames[i][1] = page_alloc();
		*(u64 *)frames[i][0] = 0;
		pt_map(kl_kernel_as.root, page_va(i), frames[i][0], PTE_P | PTE_W | PTE_NX);
	}
	kl_pf_hook = window_fault;
	kl_smp_run(reader, NULL);
	kl_phase_begin();
	for (u64 op = 0; op < ops; op++) {
		u64 i = op % pages, g = published[i] + 1;
		ulong next = frames[i][g & 1];

		*(volatile u64 *)next = g;
		pt_unmap(kl_kernel_as.root, page_va(i));
		kl_tlb_shootdown(page_va(i));
		pt_map(kl_kernel_as.root, page_va(i), next, PTE_P | PTE_W | PTE_NX);
		__atomic_store_n(&published[i], g, __ATOMIC_RELEASE);
		h = kl_hash(h, i);
		h = kl_hash(h, g);
	}
	stop = 1;
	kl_smp_wait();
	for (u64 i = 0; i < pages; i++)
		h = kl_hash(h, *(volatile u64 *)page_va(i));
	kl_phase_end(ops, h);
	for (int c = 0; c < n; c++) {
		total_reads += reads[c];
		total_stale += stale[c];
		total_faults += faults[c];
	}
	kl_printf("%d CPUs, %llu shootdowns (%llu IPIs), %llu reads, %llu retried faults\n", n,
		  (unsigned long long)ops, (unsigned long long)kl_shootdown_ipis,
		  (unsigned long long)total_reads, (unsigned long long)total_faults);
	kl_check("no_stale_reads", total_stale == 0,
		 "%llu of %llu reads saw a page older than its last shootdown",
		 (unsigned long long)total_stale, (unsigned long long)total_reads);
	return 0;
}
