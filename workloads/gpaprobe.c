// SPDX-License-Identifier: GPL-2.0
/*
 * gpaprobe: read one guest-physical address through a fresh PTE. One
 * operation is the read.
 *
 * For isolation tests: a gpa outside every memslot must reach the harness
 * as MMIO (which ends the run, naming the gpa: there is no device there),
 * and a gpa at or above MAXPHYADDR must fault with RSVD in the guest. A
 * hypervisor that maps such a gpa to some host page would let the read
 * return data instead; that fails the run. Inside RAM the read must see
 * what the identity map sees.
 */
#include "rt.h"

KL_NOT_A_BENCHMARK("an isolation probe: ends in an MMIO error by design");

KL_PARAM(p_gpa, "gpa", 0x100000000ULL, 0, 0x000fffffffffffffULL,
	 "guest-physical address to read (8-byte aligned within its page)");

#define PROBE_VA	(KL_KERNEL_AREA_VA + 0x200000)

int workload_main(void)
{
	u64 gpa = p_gpa.value & ~7ULL, frame = gpa & PTE_ADDR_MASK, v = 0;
	u32 a, b, c, d;
	u64 maxphy;
	int vector;

	cpuid(0x80000008, &a, &b, &c, &d);
	maxphy = 1ULL << (a & 0xff);
	pt_map(kl_kernel_as.root, PROBE_VA, frame, PTE_P | PTE_W | PTE_NX);
	invlpg(PROBE_VA);
	kl_phase_begin();
	vector = probe_read64(PROBE_VA + (gpa & (PAGE_SIZE - 1)), &v);
	kl_phase_end(1, kl_hash(gpa, v));
	if (gpa >= maxphy) {
		kl_check("gpa_beyond_maxphyaddr_faults_rsvd",
			 vector == VEC_PF && (kl_last_fault.error & PFERR_RSVD),
			 "vector %d error %llx", vector, (unsigned long long)kl_last_fault.error);
		return !(vector == VEC_PF && (kl_last_fault.error & PFERR_RSVD));
	}
	if (gpa < kl_mem_bytes()) {
		kl_check("gpa_in_ram_reads_ram", vector == NO_FAULT && v == *(u64 *)gpa,
			 "vector %d, read %llx", vector, (unsigned long long)v);
		return !(vector == NO_FAULT && v == *(u64 *)gpa);
	}
	kl_check("gpa_outside_ram_is_not_memory", false,
		 "reading gpa %llx gave %s %llx instead of an MMIO exit", (unsigned long long)gpa,
		 vector == NO_FAULT ? "the value" : "exception", (unsigned long long)(vector == NO_FAULT ? v : (u64)vector));
	return 1;
}
