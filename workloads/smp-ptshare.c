// SPDX-License-Identifier: GPL-2.0
/*
 * smp-ptshare: CPUs write the PTEs of a table another CPU is running on.
 *
 * One page table maps a window in the shared kernel area. CPU 0 only
 * reads the window, through that table. Every other CPU owns some of its
 * entries and remaps them: write a newer generation into the
 * frame not mapped, point the PTE at it (a plain store into a page table
 * that, under a shadow MMU, is shadowed for CPU 0 and write-protected),
 * shoot the old translation down, publish. CPU 0 checks that no page it
 * reads is older than what was published before it read it. With one CPU,
 * CPU 0 remaps the entries itself. Each entry gets the same number of
 * remaps whoever owns it, so the checksum, over the final generations,
 * depends neither on the interleaving nor on the number of CPUs.
 */
#include "rt.h"

KL_SMP_WORKLOAD();

KL_PARAM(p_ops, "ops", 1000, 1, 1000000, "PTE rewrites, a shootdown each");
KL_PARAM(p_pages, "pages", 16, 1, 64, "entries of the shared table in use");

#define WINDOW_VA	(KL_KERNEL_AREA_VA + 0x600000UL)
#define MAX_PAGES	64

static ulong frames[MAX_PAGES][2];
static volatile u64 published[MAX_PAGES];
static volatile int writers_done;
static volatile u64 stale, reads;

static ulong page_va(u64 i)
{
	return WINDOW_VA + i * PAGE_SIZE;
}

/*
 * Writer `w` of `nw` owns entries w, w+nw, …, and rewrites them in turn
 * until each has had its share of the ops (entry i: ops / pages, one more
 * for the first ops % pages): the same final state for any number of writers.
 */
static void remap(int w, int nw)
{
	u64 pages = p_pages.value, ops = p_ops.value;

	for (u64 k = 0;; k++) {
		bool any = false;

		for (u64 i = (u64)w; i < pages; i += (u64)nw) {
			u64 quota = ops / pages + (i < ops % pages), g = published[i] + 1;
			ulong next = frames[i][g & 1];
			int level;

			if (k >= quota)
				continue;
			any = true;
			*(volatile u64 *)next = g;
			write_pte(pt_leaf(kl_kernel_as.root, page_va(i), &level),
				  next | PTE_P | PTE_W | PTE_NX);
			kl_tlb_shootdown(page_va(i));
			__atomic_store_n(&published[i], g, __ATOMIC_RELEASE);
		}
		if (!any)
			return;
	}
}

static void writer(int cpu, void *arg)
{
	(void)arg;
	remap(cpu - 1, kl_ncpus() - 1);
	__atomic_add_fetch(&writers_done, 1, __ATOMIC_RELEASE);
}

int workload_main(void)
{
	u64 pages = p_pages.value, h = 0;
	int n = kl_smp_start();

	for (u64 i = 0; i < pages; i++) {
		frames[i][0] = page_alloc();
		frames[i][1] = page_alloc();
		pt_map(kl_kernel_as.root, page_va(i), frames[i][0], PTE_P | PTE_W | PTE_NX);
	}
	kl_phase_begin();
	if (n == 1) {
		remap(0, 1);
	} else {
		kl_smp_run(writer, NULL);
		while (__atomic_load_n(&writers_done, __ATOMIC_ACQUIRE) < n - 1) {
			for (u64 i = 0; i < pages; i++) {
				u64 min = __atomic_load_n(&published[i], __ATOMIC_ACQUIRE);

				stale += *(volatile u64 *)page_va(i) < min;
				reads++;
			}
		}
		kl_smp_wait();
	}
	for (u64 i = 0; i < pages; i++) {
		u64 v = *(volatile u64 *)page_va(i);

		h = kl_hash(h, i);
		h = kl_hash(h, v == published[i] ? v : ~v);
	}
	kl_phase_end(p_ops.value, h);
	kl_printf("%d CPUs, %llu PTE rewrites, %llu reads by CPU 0\n", n,
		  (unsigned long long)p_ops.value, (unsigned long long)reads);
	kl_check("no_stale_reads", stale == 0, "%llu of %llu reads by CPU 0 saw an old page",
		 (unsigned long long)stale, (unsigned long long)reads);
	return 0;
}
