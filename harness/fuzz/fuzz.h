/* SPDX-License-Identifier: GPL-2.0 */
#ifndef KVMLAB_FUZZ_H
#define KVMLAB_FUZZ_H

#include <stdint.h>

/* Random and boundary ioctls on device from `threads` threads; 0 when done. */
int fuzz_ioctl(const char *device, uint64_t seed, unsigned long calls, int threads);

#define FUZZ_MAX_HVS 16

struct fuzz_mmu_options {
	const struct hv *oracle;	/* nested paging: the CPU's own walk */
	const struct hv *hvs[FUZZ_MAX_HVS];
	int nhvs;
	uint64_t seed, ops, mem_mb;
	unsigned int timeout_s;
	const char *paging;		/* the guest's paging format: 4level, pae, 2level */
	int vcpus;			/* 2: mmufuzz-smp, with a partner CPU */
};

/*
 * The differential MMU fuzzer: workloads/mmufuzz under the oracle and under
 * each hypervisor; prints what it ran and the first mismatch. 0 when every
 * log agrees, 1 on a mismatch, -1 when the oracle itself could not run.
 */
int fuzz_mmu(const struct fuzz_mmu_options *o);

#endif
