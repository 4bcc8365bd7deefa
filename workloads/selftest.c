// SPDX-License-Identifier: GPL-2.0
/*
 * selftest: the MMU semantics every strategy must honour, one named check
 * each. A check sets up fresh page tables, performs one access, and compares
 * what the CPU did (value seen, exception vector, error code, CR2, A/D bits
 * written back) with what the AMD64 architecture says it must do. Things the
 * architecture leaves open (whether a stale TLB entry is still used) are
 * never asserted.
 *
 * Every observation is folded into the checksum, so two hypervisors agree on
 * the checksum only if they agree on every detail.
 */
#include "rt.h"

KL_PARAM(p_verbose, "verbose", 0, 0, 1, "print every check's detail to the log");

/* I/D is reported only when NX is in force (EFER.NXE, which needs PAE). */
#if KL_PAGING_LEVELS >= 3
#define FETCH_ERR	PFERR_ID
#else
#define FETCH_ERR	0
#endif

static u64 checksum = 0xcbf29ce484222325ULL;
static int failures, checks;
static ulong next_kernel_va = KL_KERNEL_AREA_VA;
static struct aspace uas;	/* the user address space for CPL3 checks */
static ulong next_user_va = KL_USER_DATA_VA;

#define PATTERN(pa)	(0x5eed000000000000ULL | (pa))

static void check(const char *name, bool ok, u64 a, u64 b, const char *what)
{
	checksum = kl_hash(kl_hash(kl_hash(checksum, ok), a), b);
	failures += !ok;
	checks++;
	kl_check(name, ok, "%s (observed %llx, %llx)", what, (unsigned long long)a,
		 (unsigned long long)b);
	if (p_verbose.value)
		kl_printf("%s %s: %s\n", ok ? "PASS" : "FAIL", name, what);
}

/*
 * Fault checks: the probe's vector, error code and CR2 against expectation.
 * Error-code bits in `ignore` are left to a check of their own.
 */
static void check_fault_ignoring(const char *name, int vec, int want_vec, u64 want_err,
				 u64 want_cr2, u64 ignore)
{
	u64 error = vec == VEC_PF ? kl_last_fault.error & ~ignore : 0;
	bool ok = vec == want_vec;

	if (want_vec == VEC_PF)
		ok = ok && error == (want_err & ~ignore) && kl_last_fault.cr2 == want_cr2;
	checksum = kl_hash(checksum, kl_last_fault.cr2 - want_cr2);
	check(name, ok, (u64)vec, error,
	      want_vec == VEC_PF ? "#PF with the architectural error code and CR2"
				 : "the architectural exception");
}

static void check_fault(const char *name, int vec, int want_vec, u64 want_err, u64 want_cr2)
{
	check_fault_ignoring(name, vec, want_vec, want_err, want_cr2, 0);
}

/*
 * A check the harness judges with the platform's known deviations
 * (hv.c): it stays out of the checksum, which compares hypervisors, not
 * the emulators under them.
 */
#define platform_check(name, ok, ...) do {					\
	bool ok_ = (ok);						\
									\
	failures += !ok_;						\
	checks++;							\
	kl_check(name, ok_, __VA_ARGS__);				\
} while (0)

/*
 * A reserved-bit fault is a fault on a present entry, so P is set along
 * with RSVD. QEMU 7.x's emulated page walk leaves P out; under nested
 * paging in the test machine that walk is the "hardware", so P gets its own
 * check (the harness knows the deviation) and stays out of the checksum,
 * which compares hypervisors, not emulators.
 */
static void check_reserved_fault(const char *name, const char *p_name, int vec,
				 u64 want_err, u64 want_cr2)
{
	bool p = vec == VEC_PF && (kl_last_fault.error & PFERR_P);

	check_fault_ignoring(name, vec, VEC_PF, want_err, want_cr2, PFERR_P);
	platform_check(p_name, p, "RSVD faults report P=1 (observed error %llx)",
		       (unsigned long long)kl_last_fault.error);
}

/*
 * A fresh kernel VA whose tables below the shared slot are new, never
 * cached: 1 GiB apart in 4-level (new PD and PT), a large page apart in
 * 32-bit formats (new PT).
 */
static ulong kernel_va(void)
{
	ulong va = next_kernel_va;

#if KL_PAGING_LEVELS == 4
	next_kernel_va += HUGE_PAGE_SIZE;
#else
	next_kernel_va += LARGE_PAGE_SIZE;
#endif
	return va;
}

static ulong user_va(void)
{
	ulong va = next_user_va;

	next_user_va += LARGE_PAGE_SIZE;
	return va;
}

/* A data frame whose first word names it. */
static ulong data_frame(void)
{
	ulong pa = page_alloc();

	*(u64 *)pa = PATTERN(pa);
	return pa;
}

static pte_t *map_page(ulong root, ulong va, pte_t flags, ulong *pa_out)
{
	ulong pa = data_frame();

	pt_map(root, va, pa, flags);
	if (pa_out)
		*pa_out = pa;
	return pt_entry(root, va, 1, 0);
}

static pte_t *kmap(ulong va, pte_t flags, ulong *pa)
{
	return map_page(kl_kernel_as.root, va, flags, pa);
}

/* ---------------- exceptions ---------------- */

static void exceptions(void)
{
	check_fault("exc_divide_error", probe_div0(), VEC_DE, 0, 0);
	check_fault("exc_breakpoint", probe_int3(), VEC_BP, 0, 0);
	check_fault("exc_invalid_opcode", probe_ud2(), VEC_UD, 0, 0);
#if KL_PAGING_LEVELS == 4
	u64 v;

	check_fault("exc_gp_noncanonical", probe_read64(0x8000000000000000UL, &v), VEC_GP, 0, 0);
#endif
}

/* ---------------- #PF error codes at CPL0 ---------------- */

static void supervisor_faults(void)
{
	ulong va;
	u64 v;
	pte_t *pte;

	va = kernel_va();
	check_fault("pf_not_present_read", probe_read64(va + 0x7f8, &v), VEC_PF, 0, va + 0x7f8);
	check_fault("pf_not_present_write", probe_write64(va, 1), VEC_PF, PFERR_W, va);
	check_fault("pf_not_present_fetch", probe_exec(va), VEC_PF, FETCH_ERR, va);

	va = kernel_va();
	kmap(va, PTE_P, NULL);
	check_fault("pf_readonly_write_wp1", probe_write64(va + 8, 1), VEC_PF,
		    PFERR_P | PFERR_W, va + 8);

#if KL_PAGING_LEVELS >= 3	/* NX exists only in PAE formats */
	va = kernel_va();
	pte = kmap(va, PTE_P | PTE_W | PTE_NX, NULL);
	*(u8 *)(ulong)(read_pte(pte) & PTE_ADDR_MASK) = 0xc3;	/* ret */
	check_fault("pf_nx_fetch", probe_exec(va), VEC_PF, PFERR_P | PFERR_ID, va);

	/* NX in a PDE applies to every page below it. */
	va = kernel_va();
	pte = kmap(va, PTE_P | PTE_W, NULL);
	*(u8 *)(ulong)(read_pte(pte) & PTE_ADDR_MASK) = 0xc3;
	*pt_entry(kl_kernel_as.root, va, 2, 0) |= PTE_NX;
	check_fault("pf_nx_in_pde", probe_exec(va), VEC_PF, PFERR_P | PFERR_ID, va);
#else
	/* Without PAE there is no NX: a fetch from any present page works. */
	va = kernel_va();
	pte = kmap(va, PTE_P, NULL);
	*(u8 *)(ulong)(read_pte(pte) & PTE_ADDR_MASK) = 0xc3;
	check_fault("fetch_without_nx", probe_exec(va), NO_FAULT, 0, 0);
#endif

	/* R/W clear in a PDE makes the page read-only whatever the PTE says. */
	va = kernel_va();
	kmap(va, PTE_P | PTE_W, NULL);
	*pt_entry(kl_kernel_as.root, va, 2, 0) &= ~PTE_W;
	check_fault("pf_rw_clear_in_pde", probe_write64(va, 1), VEC_PF, PFERR_P | PFERR_W, va);
}

static void reserved_bits(void)
{
	u32 a, b, c, d, maxphy;
	ulong va, pa;
	u64 v;

	cpuid(0x80000008, &a, &b, &c, &d);
	maxphy = a & 0xff;
	(void)maxphy;
#if KL_PAGING_LEVELS >= 3
	va = kernel_va();
	kmap(va, PTE_P | PTE_W, NULL);
	/* Bit 51 is reserved whenever MAXPHYADDR < 52 (always, on AMD64 today). */
	*pt_entry(kl_kernel_as.root, va, 1, 0) |= 1ULL << 51;
	invlpg(va);
	if (maxphy < 52)
		check_reserved_fault("pf_reserved_bit_pte", "pf_reserved_bit_pte_sets_p",
				     probe_read64(va, &v), PFERR_P | PFERR_RSVD, va);

	/* Bits 20:13 of a 2 MiB PDE are reserved. */
	va = kernel_va();
	pa = page_alloc_large();
	pt_map_large(kl_kernel_as.root, va, pa, PTE_P | PTE_W | (1ULL << 13));
	check_reserved_fault("pf_reserved_bit_2m_pde", "pf_reserved_bit_2m_pde_sets_p",
			     probe_write64(va + 16, 1), PFERR_P | PFERR_W | PFERR_RSVD, va + 16);
#else
	/*
	 * A 2-level PTE has no reserved bit; a 4 MiB PDE has bit 21, and under
	 * PSE-36 the address bits 20:13 above MAXPHYADDR.
	 */
	va = kernel_va();
	pa = page_alloc_large();
	pt_map_large(kl_kernel_as.root, va, pa, PTE_P | PTE_W | (1UL << 21));
	check_reserved_fault("pf_reserved_bit_4m_pde", "pf_reserved_bit_4m_pde_sets_p",
			     probe_write64(va + 16, 1), PFERR_P | PFERR_W | PFERR_RSVD, va + 16);
	(void)v;
#endif
#if KL_PAGING_LEVELS == 3
	{
		/* A PDPTE with a reserved bit (R/W) set: #GP at the CR3 load itself. */
		ulong pdpt = page_alloc(), cr3 = read_cr3();
		int vec;

		memcpy((void *)pdpt, (void *)cr3, 32);
		((pte_t *)pdpt)[3] = page_alloc() | PTE_P | PTE_W;
		vec = probe_load_cr3(pdpt);
		/* Judged apart: QEMU's nested paging loads no PDPTEs (testmachine/README.md). */
		platform_check("pae_pdpte_reserved_gp", vec == VEC_GP && read_cr3() == cr3,
			       "a CR3 load whose PDPTE has a reserved bit takes #GP(0) (observed %d)",
			       vec);
		write_cr3(cr3);
		page_free((ulong)(((pte_t *)pdpt)[3] & PTE_ADDR_MASK));
		page_free(pdpt);
	}
#endif
}

/* ---------------- accessed and dirty bits ---------------- */

static void accessed_dirty(void)
{
	ulong va;
	u64 v;
	pte_t *pte;
	bool ok;

	va = kernel_va();
	pte = kmap(va, PTE_P | PTE_W, NULL);
	v = *(volatile u64 *)va;
	check("ad_read_sets_accessed_only", (read_pte(pte) & (PTE_A | PTE_D)) == PTE_A,
	      read_pte(pte) & 0xfff, v == PATTERN((ulong)(read_pte(pte) & PTE_ADDR_MASK)),
	      "a read sets A and leaves D clear");
	*(volatile u64 *)va = v + 1;
	check("ad_write_sets_dirty", (read_pte(pte) & (PTE_A | PTE_D)) == (PTE_A | PTE_D),
	      read_pte(pte) & 0xfff, 0, "a write sets D");

	/* Clearing A/D and flushing makes the CPU write them again. */
	write_pte(pte, read_pte(pte) & ~(PTE_A | PTE_D));
	invlpg(va);
	v = *(volatile u64 *)va;
	ok = (read_pte(pte) & (PTE_A | PTE_D)) == PTE_A;
	*(volatile u64 *)va = v;
	ok = ok && (read_pte(pte) & PTE_D);
	check("ad_rewritten_after_clear_and_invlpg", ok, read_pte(pte) & 0xfff, 0,
	      "A, then D, set again after software cleared them");

	va = kernel_va();
	pte = kmap(va, PTE_P, NULL);
	probe_write64(va, 1);
	check("ad_no_dirty_on_faulting_write", !(read_pte(pte) & PTE_D),
	      read_pte(pte) & 0xfff, 0, "a write that faults leaves D clear");

#if KL_PAGING_LEVELS == 4
	/* A fresh PML4 slot: every level's A bit starts clear and is set by the walk. */
	pte_t *pde, *pdpte, *pml4e;

	va = 5UL << 39;
	pte = kmap(va, PTE_P | PTE_W, NULL);
	pde = pt_entry(kl_kernel_as.root, va, 2, 0);
	pdpte = pt_entry(kl_kernel_as.root, va, 3, 0);
	pml4e = pt_entry(kl_kernel_as.root, va, 4, 0);
	v = *(volatile u64 *)va;
	/* read_pte: the CPU wrote the entries, so no read may move above the access. */
	ok = (read_pte(pml4e) & PTE_A) && (read_pte(pdpte) & PTE_A) && (read_pte(pde) & PTE_A) &&
	     (read_pte(pte) & PTE_A);
	check("ad_accessed_in_every_level", ok,
	      (read_pte(pml4e) & PTE_A) << 3 | (read_pte(pdpte) & PTE_A) << 2 |
	      (read_pte(pde) & PTE_A) << 1 | (read_pte(pte) & PTE_A),
	      0, "the walk sets A in PML4E, PDPTE, PDE and PTE");
	*pml4e = 0;	/* leave slot 5 as it was */
	write_cr3(read_cr3());
#else
	/* A fresh PDE: its A bit and the PTE's start clear and are set by the walk. */
	pte_t *pde;

	va = kernel_va();
	pte = kmap(va, PTE_P | PTE_W, NULL);
	pde = pt_entry(kl_kernel_as.root, va, 2, 0);
	v = *(volatile u64 *)va;
	ok = (read_pte(pde) & PTE_A) && (read_pte(pte) & PTE_A);
	check("ad_accessed_in_every_level", ok, (read_pte(pde) & PTE_A) << 1 | (read_pte(pte) & PTE_A), 0,
	      "the walk sets A in the PDE and the PTE (PAE's PDPTEs have no A)");
#endif
}

static void write_protect(void)
{
	ulong va, cr0 = read_cr0();
	pte_t *pte;
	int vec;

	va = kernel_va();
	pte = kmap(va, PTE_P, NULL);
	write_cr0(cr0 & ~(1ULL << 16));
	vec = probe_write64(va, 0x77);
	write_cr0(cr0);
	check("cr0_wp0_supervisor_writes_readonly", vec == NO_FAULT && *(u64 *)va == 0x77 &&
	      (read_pte(pte) & PTE_D), (u64)vec, read_pte(pte) & 0xfff,
	      "with CR0.WP=0 a supervisor write to a read-only page succeeds and sets D");
	vec = probe_write64(va, 0x78);
	check_fault("cr0_wp1_restored", vec, VEC_PF, PFERR_P | PFERR_W, va);
}

/* ---------------- large pages ---------------- */

/* 2 MiB pages in 4-level and PAE, 4 MiB pages (CR4.PSE) in 2-level. */
#if KL_PAGING_LEVELS == 2
#define LARGE(what)	"large_4m_" what
#else
#define LARGE(what)	"large_2m_" what
#endif

static void large_pages(void)
{
	ulong va = kernel_va(), pa = page_alloc_large(), top = LARGE_PAGE_SIZE - PAGE_SIZE;
	u64 v;
	pte_t *pde;
	bool ok;

	/* The frame 0x12000 bytes into the large page names itself. */
	*(u64 *)(pa + 0x12000) = PATTERN(pa + 0x12000);
	pt_map_large(kl_kernel_as.root, va, pa, PTE_P | PTE_W);
	pde = pt_entry(kl_kernel_as.root, va, 2, 0);
	v = *(volatile u64 *)(va + 0x12000);
	check(LARGE("translation"), v == PATTERN(pa + 0x12000), v, 0,
	      "a large page maps va+off to pa+off");
	ok = (*pde & (PTE_A | PTE_D)) == PTE_A;
	*(volatile u64 *)(va + top) = 1;
	ok = ok && (*pde & PTE_D);
	check(LARGE("accessed_dirty"), ok, *pde & 0xfff, 0,
	      "A and D are set in the large PDE itself");
	*pde &= ~PTE_W;
	invlpg(va + top);
	check_fault(LARGE("readonly_write"), probe_write64(va + top, 2), VEC_PF,
		    PFERR_P | PFERR_W, va + top);
}

/* ---------------- TLB maintenance ---------------- */

static void tlb(void)
{
	ulong va, pa1, pa2, cr4 = read_cr4();
	u64 v;
	pte_t *pte;
	int vec;

	/* INVLPG makes a changed translation visible. */
	va = kernel_va();
	pte = kmap(va, PTE_P | PTE_W, &pa1);
	v = *(volatile u64 *)va;
	pa2 = data_frame();
	write_pte(pte, pa2 | PTE_P | PTE_W);
	invlpg(va);
	v = *(volatile u64 *)va;
	check("invlpg_remap", v == PATTERN(pa2), v, PATTERN(pa2),
	      "after INVLPG the new frame is seen");

	/* Not-present to present needs no flush: non-present entries are never cached. */
	va = kernel_va();
	pte = kmap(va, PTE_P | PTE_W, &pa1);
	write_pte(pte, 0);
	invlpg(va);
	vec = probe_read64(va, &v);
	write_pte(pte, pa1 | PTE_P | PTE_W);
	vec = vec == VEC_PF ? probe_read64(va, &v) : -2;
	check("not_present_to_present_without_flush", vec == NO_FAULT && v == PATTERN(pa1),
	      (u64)vec, v, "a PTE made present is used at once");

	/* Two virtual pages, one frame: a write through one is read through the other. */
	va = kernel_va();
	kmap(va, PTE_P | PTE_W, &pa1);
	pt_map(kl_kernel_as.root, va + PAGE_SIZE, pa1, PTE_P | PTE_W);
	*(volatile u64 *)(va + 64) = 0xa11a5;
	v = *(volatile u64 *)(va + PAGE_SIZE + 64);
	check("alias_coherent", v == 0xa11a5, v, 0, "aliases of one frame see each other's writes");

	/* A PTE written through a data mapping of its page table. */
	va = kernel_va();
	pte = kmap(va, PTE_P | PTE_W, &pa1);
	v = *(volatile u64 *)va;
	pt_map(kl_kernel_as.root, va + 2 * PAGE_SIZE, (ulong)pte & ~(PAGE_SIZE - 1), PTE_P | PTE_W);
	pa2 = data_frame();
	*(volatile pte_t *)(va + 2 * PAGE_SIZE + ((ulong)pte & 0xfff)) = pa2 | PTE_P | PTE_W;
	invlpg(va);
	v = *(volatile u64 *)va;
	check("pte_written_through_alias", v == PATTERN(pa2), v, PATTERN(pa2),
	      "a PTE changed through another mapping of its table takes effect");

	/* Global pages: toggling CR4.PGE flushes them; so does INVLPG. */
	va = kernel_va();
	pte = kmap(va, PTE_P | PTE_W | PTE_G, &pa1);
	v = *(volatile u64 *)va;
	pa2 = data_frame();
	write_pte(pte, pa2 | PTE_P | PTE_W | PTE_G);
	write_cr4(cr4 & ~(1UL << 7));
	write_cr4(cr4);
	v = *(volatile u64 *)va;
	check("global_flushed_by_cr4_pge", v == PATTERN(pa2), v, PATTERN(pa2),
	      "clearing CR4.PGE flushes global translations");
	pa1 = data_frame();
	write_pte(pte, pa1 | PTE_P | PTE_W | PTE_G);
	invlpg(va);
	v = *(volatile u64 *)va;
	check("global_flushed_by_invlpg", v == PATTERN(pa1), v, PATTERN(pa1),
	      "INVLPG flushes a global translation");
}

/* ---------------- address spaces ---------------- */

static void address_spaces(void)
{
	struct aspace x, y;
	ulong va = KL_USER_DATA_VA + 0x3f000000, pax, pay, pa_new, gva = kernel_va(), gpa;
	u64 vx, vy, v;
	pte_t *pte_y;

	aspace_init(&x);
	aspace_init(&y);
	map_page(x.root, va, PTE_P | PTE_W, &pax);
	pte_y = map_page(y.root, va, PTE_P | PTE_W, &pay);
	kmap(gva, PTE_P | PTE_W | PTE_G, &gpa);

	aspace_switch(&x);
	vx = *(volatile u64 *)va;
	aspace_switch(&y);
	vy = *(volatile u64 *)va;
	check("cr3_switch_selects_space", vx == PATTERN(pax) && vy == PATTERN(pay), vx, vy,
	      "one va, two address spaces, two frames");

	v = *(volatile u64 *)gva;
	aspace_switch(&x);
	v = *(volatile u64 *)gva;
	check("kernel_area_shared_across_spaces", v == PATTERN(gpa), v, 0,
	      "the shared kernel slot is mapped in every space");

	/* Change y's PTE while x is loaded; the switch to y must honour it. */
	pa_new = data_frame();
	write_pte(pte_y, pa_new | PTE_P | PTE_W);
	aspace_switch(&y);
	v = *(volatile u64 *)va;
	check("inactive_space_pte_change", v == PATTERN(pa_new), v, PATTERN(pa_new),
	      "a PTE changed while its space was inactive is used after CR3 load");

	/* Reloading the same CR3 flushes non-global translations. */
	write_pte(pte_y, pay | PTE_P | PTE_W);
	write_cr3(read_cr3());
	v = *(volatile u64 *)va;
	check("cr3_reload_flushes", v == PATTERN(pay), v, PATTERN(pay),
	      "writing CR3 flushes non-global translations");

	/*
	 * ...rights too: W taken away (A and D left set, so only the right
	 * changed) and CR3 reloaded, a write must fault. A shadow that keeps
	 * translations across CR3 loads must re-check rights, not frames only.
	 */
	*(volatile u64 *)va = PATTERN(pay);
	write_pte(pte_y, pay | PTE_P | PTE_A | PTE_D);
	write_cr3(read_cr3());
	check_fault("cr3_reload_drops_write_right", probe_write64(va, PATTERN(pay)), VEC_PF,
		    PFERR_P | PFERR_W, va);
	write_pte(pte_y, pay | PTE_P | PTE_W);
	write_cr3(read_cr3());

	/*
	 * Each space had a PML4, PDPT, PD, PT and one data frame (4-level), a
	 * PDPT, two user PDs, PT and frame (PAE), or a PD, PT and frame (2-level).
	 */
	aspace_switch(&kl_kernel_as);
	v = page_free_count();
	aspace_destroy(&x);
	aspace_destroy(&y);
	v = page_free_count() - v;
	check("aspace_destroy_frees_everything", v == (KL_PAGING_LEVELS == 2 ? 6 : 10), v, 0,
	      "destroying a space returns its tables and frames");
}

/* ---------------- CPL3 ---------------- */

USER_CODE void u_cpl(u64 unused)
{
	u16 cs;

	(void)unused;
	asm volatile("mov %%cs, %0" : "=r"(cs));
	user_exit(cs & 3);
}

USER_CODE void u_read(u64 va)
{
	user_exit((long)*(volatile u64 *)(ulong)va);
}

USER_CODE void u_write(u64 va)
{
	*(volatile u64 *)(ulong)va = 0x600d;
	user_exit(0);
}

USER_CODE void u_exec(u64 va)
{
	((void (*)(void))(ulong)va)();
	user_exit(0x3c3);
}

/* SYSCALL returns to the next instruction with the result in RAX. */
USER_CODE void u_syscall(u64 x)
{
	long a = user_syscall3(SYS_ADD3, (long)x, 20, 300);
	long b = user_syscall3(SYS_ADD3, a, a, a);

	user_exit(b);
}

static long run_user(ulong fn_va, u64 arg, bool *faulted)
{
	long v;

	aspace_switch(&uas);
	v = user_run(fn_va, KL_USER_STACK_VA + PAGE_SIZE - 8, arg, faulted);
	aspace_switch(&kl_kernel_as);
	return v;
}

static void check_user_fault(const char *name, bool faulted, u64 want_err, u64 want_cr2)
{
	check_fault(name, faulted ? kl_last_fault.vector : NO_FAULT, VEC_PF, want_err, want_cr2);
}

static void user_mode(void)
{
	ulong va, pa;
	pte_t *pte;
	bool faulted;
	long v;

	aspace_init(&uas);
	aspace_map_user_text(&uas);
	map_page(uas.root, KL_USER_STACK_VA, PTE_P | PTE_W | PTE_U | PTE_NX, NULL);

	v = run_user(USER_VA(u_cpl), 0, &faulted);
	check("user_code_runs_at_cpl3", !faulted && v == 3, (u64)v, faulted, "user code sees CPL 3");
	v = run_user(USER_VA(u_syscall), 1, &faulted);
#if KL_PAGING_LEVELS == 4
	check("syscall_sysret", !faulted && v == 3 * 321, (u64)v, faulted,
	      "SYSCALL enters the kernel and SYSRET resumes the caller");
#else
	check("syscall_int80", !faulted && v == 3 * 321, (u64)v, faulted,
	      "INT 0x80 enters the kernel through a DPL3 gate and IRET resumes the caller");
#endif

	va = user_va();
	map_page(uas.root, va, PTE_P | PTE_W | PTE_U, &pa);
	v = run_user(USER_VA(u_read), va, &faulted);
	check("user_reads_user_page", !faulted && (ulong)v == (ulong)PATTERN(pa), (u64)v, faulted,
	      "CPL3 reads a U=1 page");

	va = user_va();
	map_page(uas.root, va, PTE_P | PTE_W, NULL);
	run_user(USER_VA(u_read), va + 8, &faulted);
	check_user_fault("pf_user_reads_supervisor_page", faulted, PFERR_P | PFERR_U, va + 8);

	va = user_va();
	map_page(uas.root, va, PTE_P | PTE_U, NULL);
	run_user(USER_VA(u_write), va, &faulted);
	check_user_fault("pf_user_writes_readonly", faulted, PFERR_P | PFERR_W | PFERR_U, va);

	/* CR0.WP does not matter at CPL3: read-only stays read-only. */
	write_cr0(read_cr0() & ~(1ULL << 16));
	run_user(USER_VA(u_write), va, &faulted);
	write_cr0(read_cr0() | (1ULL << 16));
	check_user_fault("pf_user_readonly_despite_wp0", faulted, PFERR_P | PFERR_W | PFERR_U, va);

	va = user_va();
	run_user(USER_VA(u_read), va, &faulted);
	check_user_fault("pf_user_not_present", faulted, PFERR_U, va);

	va = user_va();
	pte = map_page(uas.root, va, PTE_P | PTE_U | PTE_NX, &pa);
	*(u8 *)pa = 0xc3;
	run_user(USER_VA(u_exec), va, &faulted);
#if KL_PAGING_LEVELS >= 3
	check_user_fault("pf_user_nx_fetch", faulted, PFERR_P | PFERR_U | PFERR_ID, va);
#endif
	write_pte(pte, read_pte(pte) & ~PTE_NX);
	invlpg(va);	/* the kernel AS is loaded; a later CR3 load flushes anyway */
	v = run_user(USER_VA(u_exec), va, &faulted);
	check("user_exec_after_nx_cleared", !faulted && v == 0x3c3, (u64)v, faulted,
	      "clearing NX lets CPL3 execute the page");

	/* U clear in the PDE denies CPL3 even though the PTE allows it. */
	va = user_va();
	map_page(uas.root, va, PTE_P | PTE_W | PTE_U, NULL);
	*pt_entry(uas.root, va, 2, 0) &= ~PTE_U;
	run_user(USER_VA(u_read), va, &faulted);
	check_user_fault("pf_user_u_clear_in_pde", faulted, PFERR_P | PFERR_U, va);

	aspace_destroy(&uas);
}

int workload_main(void)
{
	kl_phase_begin();
	exceptions();
	supervisor_faults();
	reserved_bits();
	accessed_dirty();
	write_protect();
	large_pages();
	tlb();
	address_spaces();
	user_mode();
	kl_phase_end((u64)checks, checksum);
	kl_printf("selftest: %d of %d checks failed\n", failures, checks);
	/* Completed: the harness judges the checks (it knows platform quirks). */
	return 0;
}
