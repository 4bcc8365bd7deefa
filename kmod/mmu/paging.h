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
	/*
	 * PAE paging: the four PDPTEs as the CPU loaded them (at the CR3
	 * write, or when paging or PAE was turned on). NULL: read them from
	 * the table at CR3 on each walk.
	 */
	const u64 *pdptes;
};

/* The guest's paging format, from CR0.PG, CR4.PAE and EFER.LMA. */
enum kl_paging_format {
	KL_PAGING_OFF,
	KL_PAGING_2LEVEL,	/* 32-bit paging: 4-byte entries, 4 KiB and (PSE) 4 MiB pages */
	KL_PAGING_PAE,		/* legacy PAE: 4 PDPTEs, then 8-byte PDs and PTs, 2 MiB pages */
	KL_PAGING_4LEVEL,	/* long mode */
};

enum kl_paging_format kl_paging_format(const struct kl_paging *p);

/* Guest-physical access for the walker (size 4 or 8 bytes): 0 or a negative errno. */
struct kl_guest_mem {
	void *ctx;
	int (*read_pte)(void *ctx, u64 gpa, int size, u64 *pte);
	/* Replace old with new atomically; -EAGAIN when the entry changed. */
	int (*cmpxchg_pte)(void *ctx, u64 gpa, int size, u64 old, u64 new);
};

struct kl_walk {
	u64 gpa;		/* of the final byte-granular address */
	u64 pte;		/* the leaf entry as the guest wrote it (after A/D) */
	u64 pte_gpa;		/* where the leaf entry lives */
	int level;		/* 1 = 4 KiB, 2 = 2 MiB (4 MiB in 2-level paging), 3 = 1 GiB */
	u64 page_size;		/* of the guest page: 4 KiB, 2 MiB, 4 MiB or 1 GiB */
	int top_level;		/* the format's top level: 2 (2-level), 3 (PAE), 4; 0 paging off */
	bool writable, user, nx;	/* effective permissions over all levels */
	bool accessed;		/* every level's A bit (and the leaf's D) already set */
	u64 table[5];		/* [level]: gpa of the guest table walked at that level */
	u64 entry[5];		/* [level]: the entry read there (PAE level 3: the PDPTE) */
	u32 error;		/* #PF error code when the walk faults */
};

/*
 * Walk the guest's tables for the linear address gva the way the CPU would
 * for an access described by `access` (KL_PF_W/U/ID bits), in any of the
 * three formats: permissions, reserved bits per format (PSE-36 in 2-level
 * 4 MiB pages; NX only with PAE or long mode and EFER.NXE), CR0.WP, and,
 * with set_ad, the A/D bits written back atomically (never in PDPTEs).
 * 2-level and PAE addresses wrap at 4 GiB. Returns 0, -EFAULT with
 * w->error set for a guest fault, -EINVAL for a non-canonical address in
 * long mode (#GP, not #PF), or the memory callbacks' errno.
 */
int kl_paging_walk(const struct kl_paging *p, const struct kl_guest_mem *m, u64 gva,
		   u32 access, bool set_ad, struct kl_walk *w);

#endif
