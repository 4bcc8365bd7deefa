// SPDX-License-Identifier: GPL-2.0
/*
 * forkwait: a parent process forks a child (copy-on-write), the child runs
 * at CPL3, writes some of the inherited pages, reads all of them and exits;
 * the parent reaps it and frees its address space. One operation is one
 * fork+run+reap, as in Adams & Agesen's forkwait.
 *
 * What it shows: the page-table churn of process creation — a new address
 * space, every inherited PTE made read-only, COW faults, and teardown —
 * which is where shadow paging pays most.
 */
#include "rt.h"

KL_PARAM(p_forks, "forks", 100, 1, 1000000, "processes forked and reaped");
KL_PARAM(p_pages, "pages", 16, 1, 512, "data pages the parent owns");
KL_PARAM(p_touch, "touch", 4, 0, 512, "pages the child writes (COW copies)");

static struct aspace parent;
static u64 cow_faults;

/* The child: write `touch` pages, sum all `pages`, exit with the sum. */
USER_CODE void child_main(u64 arg)
{
	ulong touch = arg & 0xffffffff, pages = arg >> 32;
	u64 sum = 0;
	volatile u64 *data = (volatile u64 *)KL_USER_DATA_VA;

	for (ulong i = 0; i < touch; i++)
		data[i * 512] += i + 1;
	for (ulong i = 0; i < pages; i++)
		sum = sum * 31 + data[i * 512];
	user_exit((long)sum);
}

/* Write fault on a COW page: copy it unless this space is the last sharer. */
static bool cow_fault(ulong cr2, u64 error, bool user)
{
	ulong va = cr2 & ~(PAGE_SIZE - 1), old, copy;
	pte_t *pte = pt_leaf(read_cr3(), va, NULL);

	if (!user || !(error & PFERR_W) || !pte || !(*pte & PTE_COW))
		return false;
	old = (ulong)(*pte & PTE_ADDR_MASK);
	kl_pv_lazy_begin();	/* the PTE and its INVLPG: one hypercall under mmu=pv */
	if (page_refs(old) == 1) {
		write_pte(pte, (*pte & ~PTE_COW) | PTE_W);
	} else {
		copy = page_alloc();
		memcpy((void *)copy, (void *)old, PAGE_SIZE);
		page_put(old);
		write_pte(pte, (*pte & ~(PTE_ADDR_MASK | PTE_COW)) | copy | PTE_W);
	}
	invlpg(va);
	kl_pv_lazy_end();
	cow_faults++;
	return true;
}

/*
 * fork(): share every data page read-only with a COW mark; copy the stack.
 * One lazy section: under mmu=pv the whole fork is one hypercall.
 */
static void fork_into(struct aspace *child)
{
	ulong pages = p_pages.value, stack = page_alloc();
	pte_t *parent_stack = pt_leaf(parent.root, KL_USER_STACK_VA, NULL);

	kl_pv_lazy_begin();
	aspace_init(child);
	aspace_map_user_text(child);
	for (ulong i = 0; i < pages; i++) {
		ulong va = KL_USER_DATA_VA + i * PAGE_SIZE;
		pte_t *pte = pt_leaf(parent.root, va, NULL), e = *pte;

		if (e & PTE_W) {
			e = (e & ~PTE_W) | PTE_COW;
			write_pte(pte, e);
			invlpg(va);
		}
		page_get((ulong)(e & PTE_ADDR_MASK));
		pt_map(child->root, va, (ulong)(e & PTE_ADDR_MASK), e & ~PTE_ADDR_MASK & ~(PTE_A | PTE_D));
	}
	memcpy((void *)stack, (void *)(ulong)(*parent_stack & PTE_ADDR_MASK), PAGE_SIZE);
	pt_map(child->root, KL_USER_STACK_VA, stack, PTE_P | PTE_W | PTE_U | PTE_NX);
	kl_pv_lazy_end();
}

int workload_main(void)
{
	ulong pages = p_pages.value, touch = p_touch.value;
	u64 sum = 0, free_before;
	struct aspace child;

	if (touch > pages)
		kl_panic("touch (%llu) must not exceed pages (%llu)",
			 (unsigned long long)touch, (unsigned long long)pages);
	aspace_init(&parent);
	aspace_map_user_text(&parent);
	for (ulong i = 0; i < pages; i++) {
		ulong pa = page_alloc();

		*(u64 *)pa = i * 1000;
		pt_map(parent.root, KL_USER_DATA_VA + i * PAGE_SIZE, pa,
		       PTE_P | PTE_W | PTE_U | PTE_NX);
	}
	pt_map(parent.root, KL_USER_STACK_VA, page_alloc(), PTE_P | PTE_W | PTE_U | PTE_NX);
	aspace_switch(&parent);
	kl_pf_hook = cow_fault;
	free_before = page_free_count();

	kl_phase_begin();
	for (u64 f = 0; f < p_forks.value; f++) {
		bool faulted;
		long v;

		fork_into(&child);
		aspace_switch(&child);
		v = user_run(USER_VA(child_main), KL_USER_STACK_VA + PAGE_SIZE - 8,
			     (u64)pages << 32 | touch, &faulted);
		if (faulted)
			kl_panic("child faulted: vector %d error %llx cr2 %llx", kl_last_fault.vector,
				 (unsigned long long)kl_last_fault.error,
				 (unsigned long long)kl_last_fault.cr2);
		aspace_switch(&parent);
		aspace_destroy(&child);		/* wait(): reap the child */
		sum = kl_hash(sum, (u64)v);
	}
	kl_phase_end(p_forks.value, kl_hash(sum, cow_faults));

	kl_pf_hook = NULL;
	if (page_free_count() != free_before)
		kl_panic("forkwait leaked %lld frames",
			 (long long)(free_before - page_free_count()));
	aspace_switch(&kl_kernel_as);
	aspace_destroy(&parent);
	return 0;
}
