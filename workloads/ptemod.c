// SPDX-License-Identifier: GPL-2.0
/*
 * ptemod: the guest kernel rewrites live PTEs — each update points a page
 * at the other of two frames, is followed by INVLPG, and is verified by a
 * read. One operation is one PTE update.
 *
 * What it shows: a shadowing hypervisor must notice a write to a page
 * table (a write-protection trap per store, or a resync at INVLPG); under
 * nested paging the store is just a store. The updates go in rounds of
 * `batch` (each PTE, then its INVLPG), and the round's pages are read
 * after it: a paravirtual guest (mmu=pv) hands a round over in one
 * hypercall, as a kernel batches the PTEs of an mprotect. The default
 * stays below the 3 stores without a use in between that make mmu=cached
 * decide a table is no longer one (its flood detector): 2 updates, or 1
 * in PAE, where each entry is two 32-bit stores. Try batch=3.
 */
#include "rt.h"

KL_PARAM(p_updates, "updates", 2000, 1, 100000000, "PTE updates");
KL_PARAM(p_pages, "pages", 4, 1, 512, "pages whose PTEs are rewritten in turn");
KL_PARAM(p_batch, "batch", KL_PAGING_LEVELS == 3 ? 1 : 2, 1, 512,
	 "updates per round, read back after the round");

int workload_main(void)
{
	ulong n = p_pages.value, frames[2];
	u64 sum = 0, wrong = 0;
	pte_t *ptes[512];

	frames[0] = page_alloc();
	frames[1] = page_alloc();
	*(u64 *)frames[0] = 0xf0;
	*(u64 *)frames[1] = 0xf1;
	for (ulong i = 0; i < n; i++) {
		ulong va = KL_KERNEL_AREA_VA + i * PAGE_SIZE;

		pt_map(kl_kernel_as.root, va, frames[0], PTE_P | PTE_W | PTE_NX);
		ptes[i] = pt_entry(kl_kernel_as.root, va, 1, 0);
		sum += *(volatile u64 *)va;
	}

	kl_phase_begin();
	for (u64 round = 0; round < p_updates.value; round += p_batch.value) {
		u64 end = round + p_batch.value < p_updates.value ? round + p_batch.value :
								     p_updates.value;

		kl_pv_lazy_begin();
		for (u64 u = round; u < end; u++) {
			ulong i = u % n, which = (u / n + 1) & 1;

			write_pte(ptes[i], frames[which] | PTE_P | PTE_W | PTE_NX);
			invlpg(KL_KERNEL_AREA_VA + i * PAGE_SIZE);
		}
		kl_pv_lazy_end();
		for (u64 u = round; u < end; u++) {
			ulong i = u % n, which = (u / n + 1) & 1;
			u64 v = *(volatile u64 *)(KL_KERNEL_AREA_VA + i * PAGE_SIZE);

			wrong += v != (0xf0 | which);
			sum = kl_hash(sum, v);
		}
	}
	kl_phase_end(p_updates.value, sum);
	if (wrong)
		kl_printf("ptemod: %llu reads saw the old frame after INVLPG\n",
			  (unsigned long long)wrong);
	return wrong ? 1 : 0;
}
