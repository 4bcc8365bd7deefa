// SPDX-License-Identifier: GPL-2.0
/*
 * smp-pgfault: every CPU takes page faults into the same page tables at
 * once.
 *
 * A window of `pages` pages in the shared kernel area starts unmapped
 * (its page tables exist). In a round, CPU c writes pages c, c+n, c+2n, …
 * of it; each first touch is a #PF, and the handler maps a fresh frame
 * under a lock, so neighbouring PTEs of one table are filled by different
 * CPUs in the same moments — for a shadow MMU, guest faults and shadow
 * fills on one shadowed table from every vCPU. After the round CPU 0
 * unmaps the window, shoots it down everywhere and frees the frames. A
 * page's value depends on the round and the page only: the checksum does
 * not depend on which CPU faulted it, nor on how many CPUs there are.
 */
#include "rt.h"

KL_SMP_WORKLOAD();

KL_PARAM(p_rounds, "rounds", 100, 1, 100000, "rounds of faulting the whole window in");
KL_PARAM(p_pages, "pages", 64, 1, 512, "pages in the window (one page table)");

#define WINDOW_VA	(KL_KERNEL_AREA_VA + 0x400000UL)

static struct kl_spinlock pt_lock;	/* the window's page table */
static volatile u64 round;
static volatile u64 faults[KL_MAX_CPUS];

static ulong page_va(u64 i)
{
	return WINDOW_VA + i * PAGE_SIZE;
}

static u64 value(u64 r, u64 i)
{
	return kl_hash(r + 1, i);
}

/* Demand paging of the window, from any CPU. */
static bool window_fault(ulong cr2, u64 error, bool user)
{
	ulong va = cr2 & ~(PAGE_SIZE - 1);
	int level;

	if (user || (error & PFERR_P) || va < WINDOW_VA || va >= page_va(p_pages.value))
		return false;
	kl_spin_lock(&pt_lock);
	if (!pt_leaf(kl_kernel_as.root, va, &level))	/* another CPU may have got there */
		pt_map(kl_kernel_as.root, va, page_alloc(), PTE_P | PTE_W | PTE_NX);
	kl_spin_unlock(&pt_lock);
	faults[kl_cpu_id()]++;
	return true;
}

static void touch(int cpu, void *arg)
{
	int n = kl_ncpus();

	(void)arg;
	for (u64 i = (u64)cpu; i < p_pages.value; i += (u64)n)
		*(volatile u64 *)page_va(i) = value(round, i);
}

int workload_main(void)
{
	u64 rounds = p_rounds.value, pages = p_pages.value, h = 0, total = 0;
	int n = kl_smp_start();

	/* The window's page table exists from the start: faults fill its entries. */
	pt_map(kl_kernel_as.root, page_va(0), page_alloc(), PTE_P | PTE_W | PTE_NX);
	page_free(pt_unmap(kl_kernel_as.root, page_va(0)) & PTE_ADDR_MASK);
	invlpg(page_va(0));
	kl_pf_hook = window_fault;
	kl_phase_begin();
	for (round = 0; round < rounds; round++) {
		kl_smp_run(touch, NULL);
		touch(0, NULL);
		kl_smp_wait();
		for (u64 i = 0; i < pages; i++) {
			u64 v = *(volatile u64 *)page_va(i);

			h = kl_hash(h, v == value(round, i) ? v : ~v);
			page_free(pt_unmap(kl_kernel_as.root, page_va(i)) & PTE_ADDR_MASK);
		}
		kl_tlb_shootdown(KL_FLUSH_ALL);
	}
	kl_phase_end(rounds * pages, h);
	for (int c = 0; c < n; c++)
		total += faults[c];
	kl_printf("%d CPUs, %llu faults in %llu rounds\n", n, (unsigned long long)total,
		  (unsigned long long)rounds);
	kl_check("one_fault_per_page", total == rounds * pages,
		 "%llu faults for %llu page touches", (unsigned long long)total,
		 (unsigned long long)(rounds * pages));
	return 0;
}
