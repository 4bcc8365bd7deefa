/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The guest page walker, as pure code: it sees guest memory only through
 * two callbacks, so the module runs it on memslots and the host unit tests
 * (tests/unit/test_walk.c) run the same lines on a fake guest memory.
 */
#ifndef KL_PAGING_H
#define KL_PAGING_H

#include "../include/kl_pure.h"
#include <kvmlab/x86.h>

/* The paging state a walk depends on, as the guest sees it. */
struct kl_paging {
	u64 cr0, cr3, cr4, efer;
	int maxphyaddr;		/* CPUID 0x80000008 EAX[7:0] */
};

/* Guest-physical access for the walker: 0 or a negative errno. */
struct kl_guest_mem {
	void *ctx;
	int (*read_pte)(void *ctx, u64 gpa, u64 *pte);
	/* Replace old with new atomically; -EAGAIN when the entry changed. */
	int (*cmpxchg_pte)(void *ctx, u64 gpa, u64 old, u64 new);
};

struct kl_walk {
	u64 gpa;		/* of the final byte-granular address */
	u64 pte;		/* the leaf entry as the guest wrote it (after A/D) */
	u64 pte_gpa;		/* where the leaf entry lives */
	int level;		/* 1 = 4 KiB, 2 = 2 MiB, 3 = 1 GiB */
	bool writable, user, nx;	/* effective permissions over all levels */
	bool accessed;		/* every level's A bit (and the leaf's D) already set */
	u64 table[5];		/* [level]: gpa of the guest table walked at that level */
	u64 entry[5];		/* [level]: the entry read there */
	u32 error;		/* #PF error code when the walk faults */
};

/*
 * Walk the guest's tables for gva the way the CPU would for an access
 * described by `access` (KL_PF_W/U/ID bits): permissions, reserved bits,
 * CR0.WP, EFER.NXE, and, with set_ad, the A/D bits written back
 * atomically. Returns 0, -EFAULT with w->error set for a guest fault,
 * -EINVAL for a non-canonical address (#GP, not #PF), -EOPNOTSUPP for a
 * paging mode not modelled, or the memory callbacks' errno.
 */
int kl_paging_walk(const struct kl_paging *p, const struct kl_guest_mem *m, u64 gva,
		   u32 access, bool set_ad, struct kl_walk *w);

#endif
