// SPDX-License-Identifier: GPL-2.0
/*
 * pvcheck: the paravirtual MMU's contract (<kvmlab/pv_mmu.h>) from the
 * guest's side. Where it is offered (mmu=pv): valid batches take effect,
 * and every kind of hostile or malformed batch is refused with its error
 * and changes nothing — then thousands of random broken batches, after
 * which the guest still runs. Where it is not: no CPUID leaf, and the
 * hypercall gets KVM's answer to an unknown number. One operation; the
 * checksum says only whether every check passed, so it is the same under
 * every hypervisor.
 */
#include "rt.h"
#include <kvmlab/pv_mmu.h>

KL_PARAM(p_garbage, "garbage", 2000, 0, 10000000, "random broken batches thrown at the hypercall");

#define KVM_ENOSYS	1000
#define VA_A		(KL_KERNEL_AREA_VA + 0x100000)
#define VA_MMIO		(VA_A + PAGE_SIZE)
#define VA_RSVD		(VA_A + 2 * PAGE_SIZE)
#define MAX_OPS		KL_PV_MMU_MAX_OPS

static struct kl_pv_mmu_op ops[2 * PAGE_SIZE / sizeof(struct kl_pv_mmu_op)]
	__attribute__((aligned(PAGE_SIZE)));
static u32 hc_nr = KL_HC_PV_MMU;
static bool all_ok = true;

static long hypercall(ulong nr, ulong a0, ulong a1)
{
	long r;

	asm volatile("vmmcall" : "=a"(r) : "a"(nr), "b"(a0), "c"(a1) : "memory");
	return r;
}

static long batch(ulong gpa, ulong n)
{
	return hypercall(hc_nr, gpa, n);
}

static void expect(const char *name, long got, long want, const char *what)
{
	bool ok = got == want;

	all_ok &= ok;
	kl_check(name, ok, "%s (returned %ld, expected %ld)", what, got, want);
}

static void op(int i, u32 code, u64 addr, u64 val)
{
	ops[i] = (struct kl_pv_mmu_op) { .op = code, .addr = addr, .val = val };
}

/* The hypercall from CPL 3: its result is the exit code. */
USER_CODE void user_hypercall(u64 nr)
{
	long r;

	asm volatile("vmmcall" : "=a"(r) : "a"(nr), "b"(0UL), "c"(0UL) : "memory");
	user_exit(r);
}

static void refusals(pte_t *pte_a, ulong frame_a)
{
	u64 mem = kl_mem_bytes();

	expect("pv_huge_count", batch((ulong)ops, MAX_OPS + 1), -KL_PV_E2BIG,
	       "more operations than a batch may hold");
	expect("pv_batch_in_mmio", batch(KL_MMIO_SCRATCH_GPA, 1), -KL_PV_EFAULT,
	       "a batch in MMIO space");
	expect("pv_batch_past_ram", batch(mem + 0x100000, 1), -KL_PV_EFAULT,
	       "a batch past the end of RAM");
	expect("pv_batch_crosses_page", batch((ulong)ops + PAGE_SIZE - 8, 1), -KL_PV_EINVAL,
	       "a batch that crosses a page");
	op(0, 99, 0, 0);
	expect("pv_unknown_op", batch((ulong)ops, 1), -KL_PV_EINVAL, "an unknown operation");
	op(0, KL_PV_MMU_FLUSH, 0, 0);
	ops[0].reserved = 1;
	expect("pv_reserved_field", batch((ulong)ops, 1), -KL_PV_EINVAL, "a reserved field set");
	op(0, KL_PV_MMU_WRITE_PTE, (ulong)pte_a + 4, 0);
	expect("pv_misaligned_pte", batch((ulong)ops, 1), -KL_PV_EINVAL, "a misaligned entry");
	op(0, KL_PV_MMU_WRITE_PTE32, (ulong)pte_a, 0);
	expect("pv_pte32_in_long_mode", batch((ulong)ops, 1), -KL_PV_EINVAL,
	       "a 4-byte entry in 4-level paging");
	op(0, KL_PV_MMU_WRITE_PTE, KL_MMIO_SCRATCH_GPA, 0);
	expect("pv_pte_in_mmio", batch((ulong)ops, 1), -KL_PV_EFAULT,
	       "an entry in a page that cannot be a table (MMIO)");
	op(0, KL_PV_MMU_INVLPG, 0x8000000000000000UL, 0);
	expect("pv_invlpg_noncanonical", batch((ulong)ops, 1), -KL_PV_EINVAL,
	       "INVLPG of a non-canonical address");
	op(0, KL_PV_MMU_SWITCH_CR3, 0, KL_MMIO_SCRATCH_GPA);
	expect("pv_cr3_in_mmio", batch((ulong)ops, 1), -KL_PV_EFAULT, "a CR3 outside RAM");
	op(0, KL_PV_MMU_RELEASE, frame_a + 8, 0);
	expect("pv_release_misaligned", batch((ulong)ops, 1), -KL_PV_EINVAL,
	       "RELEASE of an address inside a page");

	/* All or nothing: a good write before a bad operation is not applied. */
	op(0, KL_PV_MMU_WRITE_PTE, (ulong)pte_a, 0);
	op(1, KL_PV_MMU_INVLPG, VA_A, 0);
	op(2, 99, 0, 0);
	expect("pv_refused_batch_applies_nothing", batch((ulong)ops, 3), -KL_PV_EINVAL,
	       "a batch with a bad operation last");
	kl_check("pv_refused_batch_left_the_pte", (read_pte(pte_a) & PTE_ADDR_MASK) == frame_a &&
		 *(volatile u64 *)VA_A == 0xa, "the PTE and the mapping are unchanged");
}

/* A batch with one bad operation somewhere and random fields everywhere else. */
static void garbage(u64 *seed, pte_t *pte_a)
{
	static const long allowed[] = { -KL_PV_E2BIG, -KL_PV_EFAULT, -KL_PV_EINVAL };
	u64 bad = 0;

	/* Zeroes decode as operation 0, invalid: no stale good operation is ever read. */
	memset(ops, 0, sizeof(ops));
	for (u64 g = 0; g < p_garbage.value; g++) {
		ulong n = kl_rand64(seed) % 8 == 0 ? 1 + kl_rand64(seed) % 4096 : 1 + kl_rand64(seed) % 8;
		ulong at = (ulong)ops + (kl_rand64(seed) % 2 ? 0 : kl_rand64(seed) % PAGE_SIZE);
		long r;

		for (ulong i = 0; i < n && i < MAX_OPS; i++)
			op(i, kl_rand64(seed) % 8, kl_rand64(seed), kl_rand64(seed));
		ops[kl_rand64(seed) % (n < MAX_OPS ? n : MAX_OPS)].reserved = 1 + kl_rand64(seed) % 7;
		if (kl_rand64(seed) % 16 == 0)
			at = kl_rand64(seed);		/* anywhere at all */
		r = batch(at, n);
		bad += r != allowed[0] && r != allowed[1] && r != allowed[2];
	}
	kl_check("pv_garbage_refused", bad == 0, "%llu of %llu random broken batches were not refused",
		 (unsigned long long)bad, (unsigned long long)p_garbage.value);
	all_ok &= bad == 0;
	kl_check("pv_garbage_changed_nothing", (read_pte(pte_a) & PTE_ADDR_MASK) != 0 &&
		 *(volatile u64 *)VA_A == 0xb, "the guest's mapping survived the garbage");
}

static void offered(u64 *seed)
{
	ulong frame_a = page_alloc(), frame_b = page_alloc(), stack;
	struct aspace user;
	pte_t *pte_a;
	bool faulted;
	long r;
	u64 v;

	*(u64 *)frame_a = 0xa;
	*(u64 *)frame_b = 0xb;
	pt_map(kl_kernel_as.root, VA_A, frame_a, PTE_P | PTE_W | PTE_NX);
	pte_a = pt_entry(kl_kernel_as.root, VA_A, 1, 0);
	(void)*(volatile u64 *)VA_A;		/* shadowed: the table is write-protected now */
	refusals(pte_a, frame_a);

	op(0, KL_PV_MMU_WRITE_PTE, (ulong)pte_a, frame_b | PTE_P | PTE_W | PTE_NX | PTE_A);
	op(1, KL_PV_MMU_INVLPG, VA_A, 0);
	expect("pv_write_and_invlpg", batch((ulong)ops, 2), 0, "a PTE write and its INVLPG");
	kl_check("pv_write_took_effect", *(volatile u64 *)VA_A == 0xb &&
		 (read_pte(pte_a) & PTE_ADDR_MASK) == frame_b, "the new frame shows through VA");

	/* A frame outside RAM maps MMIO, never a page of the host's. */
	pt_map(kl_kernel_as.root, VA_MMIO, frame_a, PTE_P | PTE_W | PTE_NX);
	op(0, KL_PV_MMU_WRITE_PTE, (ulong)pt_entry(kl_kernel_as.root, VA_MMIO, 1, 0),
	   KL_MMIO_SCRATCH_GPA | PTE_P | PTE_W | PTE_NX | PTE_A | PTE_D);
	op(1, KL_PV_MMU_INVLPG, VA_MMIO, 0);
	expect("pv_pte_to_mmio_accepted", batch((ulong)ops, 2), 0, "an entry naming MMIO");
	*(volatile u32 *)VA_MMIO = 0x5eedf00d;
	kl_check("pv_pte_to_mmio_reaches_the_device", *(volatile u32 *)VA_MMIO == 0x5eedf00d &&
		 *(volatile u64 *)frame_a == 0xa, "the store went to the scratch device");

	/* Reserved bits are the guest's to write: they fault at use, with RSVD. */
	pt_map(kl_kernel_as.root, VA_RSVD, frame_a, PTE_P | PTE_W | PTE_NX);
	op(0, KL_PV_MMU_WRITE_PTE, (ulong)pt_entry(kl_kernel_as.root, VA_RSVD, 1, 0),
	   (1ULL << 51) | frame_a | PTE_P | PTE_W | PTE_A);
	op(1, KL_PV_MMU_INVLPG, VA_RSVD, 0);
	expect("pv_reserved_bit_pte_accepted", batch((ulong)ops, 2), 0, "an entry with bit 51 set");
	r = probe_read64(VA_RSVD, &v);
	kl_check("pv_reserved_bit_pte_faults_at_use", r == VEC_PF && (kl_last_fault.error & PFERR_RSVD),
		 "a read through it is a #PF with RSVD (vector %ld, error %llx)", r,
		 (unsigned long long)kl_last_fault.error);

	/* From CPL 3: refused. */
	aspace_init(&user);
	aspace_map_user_text(&user);
	stack = page_alloc();
	pt_map(user.root, KL_USER_STACK_VA, stack, PTE_P | PTE_W | PTE_U | PTE_NX);
	aspace_switch(&user);
	r = user_run(USER_VA(user_hypercall), KL_USER_STACK_VA + PAGE_SIZE - 8, hc_nr, &faulted);
	aspace_switch(&kl_kernel_as);
	aspace_destroy(&user);
	expect("pv_cpl3_refused", faulted ? 1 : r, -KL_PV_EPERM, "the hypercall from user mode");

	garbage(seed, pte_a);
}

int workload_main(void)
{
	u32 a, sig[3], feat, nr, max;
	u64 seed = 17;

	cpuid(KL_CPUID_PV_BASE, &a, &sig[0], &sig[1], &sig[2]);
	cpuid(KL_CPUID_PV_FEATURES, &feat, &nr, &max, &a);
	kl_phase_begin();
	if (kl_pv_mmu) {
		kl_check("pv_leaf", !memcmp(sig, KL_CPUID_PV_SIGNATURE, 12) && (feat & KL_PV_FEATURE_MMU) &&
			 nr == KL_HC_PV_MMU && max == MAX_OPS, "the CPUID leaves describe the interface");
		offered(&seed);
	} else {
		kl_check("pv_not_offered", memcmp(sig, KL_CPUID_PV_SIGNATURE, 12) != 0,
			 "no kvmlab pv signature where the MMU is not paravirtual");
		expect("pv_hypercall_unknown", batch((ulong)ops, 1), -KVM_ENOSYS,
		       "the hypercall is an unknown number here");
	}
	kl_phase_end(1, kl_hash(0, all_ok));
	return all_ok ? 0 : 1;
}
