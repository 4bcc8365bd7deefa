// SPDX-License-Identifier: GPL-2.0
/*
 * The guest page walker (kmod/mmu/paging.c) over a fake guest memory:
 * 4 KiB, 2 MiB and 1 GiB pages, A/D bits, U/S, R/W with CR0.WP, NX with
 * EFER.NXE, reserved bits, non-canonical addresses, a guest that races
 * the A/D update, tables outside memory.
 */
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "../../kmod/mmu/paging.h"

#define MEM_BYTES	(4u << 20)	/* the fake guest's RAM: gpa 0 .. 4 MiB */
#define PML4	0x1000
#define PDPT	0x2000
#define PD	0x3000
#define PT	0x4000
#define RW	(KL_PT_P | KL_PT_W)
#define URW	(KL_PT_P | KL_PT_W | KL_PT_U)

static u8 *mem;
static int cmpxchg_calls, races_left;
static struct kl_paging pg;

static u64 *entry(u64 gpa)
{
	return (u64 *)(mem + gpa);
}

static int read_pte(void *ctx, u64 gpa, u64 *pte)
{
	(void)ctx;
	if (gpa + 8 > MEM_BYTES)
		return -ENOENT;
	*pte = *entry(gpa);
	return 0;
}

/* A guest CPU that changes the entry just before our cmpxchg, races_left times. */
static int cmpxchg_pte(void *ctx, u64 gpa, u64 old, u64 new)
{
	(void)ctx;
	cmpxchg_calls++;
	if (races_left > 0) {
		races_left--;
		*entry(gpa) |= KL_PT_A;		/* the guest's own walk set A meanwhile */
		return -EAGAIN;
	}
	if (*entry(gpa) != old)
		return -EAGAIN;
	*entry(gpa) = new;
	return 0;
}

static const struct kl_guest_mem gm = { .read_pte = read_pte, .cmpxchg_pte = cmpxchg_pte };

/*
 * gva 0x400000 -> PML4[0] -> PDPT[0] -> PD[2] -> PT[0] -> gpa 0x200000, all user, writable.
 * gva 0x600000 (PD[3]) is a 2 MiB page at gpa 0; PDPT[1] is a 1 GiB page at gpa 0.
 */
static void setup(void)
{
	memset(mem, 0, MEM_BYTES);
	*entry(PML4) = PDPT | URW;
	*entry(PDPT) = PD | URW;
	*entry(PDPT + 8) = 0 | URW | KL_PT_PS;
	*entry(PD + 2 * 8) = PT | URW;
	*entry(PD + 3 * 8) = 0 | URW | KL_PT_PS;
	*entry(PT) = 0x200000 | URW;
	pg = (struct kl_paging) {
		.cr0 = KL_CR0_PE | KL_CR0_PG | KL_CR0_WP, .cr3 = PML4, .cr4 = KL_CR4_PAE,
		.efer = KL_EFER_LME | KL_EFER_LMA | KL_EFER_NX, .maxphyaddr = 40,
	};
	cmpxchg_calls = races_left = 0;
}

static int walk(u64 gva, u32 access, bool set_ad, struct kl_walk *w)
{
	return kl_paging_walk(&pg, &gm, gva, access, set_ad, w);
}

static void four_kib_page(void)
{
	struct kl_walk w;

	CHECK_EQ(walk(0x400123, 0, false, &w), 0);
	CHECK_EQ(w.gpa, 0x200123);
	CHECK_EQ(w.level, 1);
	CHECK_EQ(w.pte_gpa, PT);
	CHECK_EQ(w.table[4], PML4);
	CHECK_EQ(w.table[1], PT);
	CHECK(w.writable && w.user && !w.nx && !w.accessed);
	CHECK_EQ(cmpxchg_calls, 0);		/* set_ad false: nothing written */
}

static void large_pages(void)
{
	struct kl_walk w;

	CHECK_EQ(walk(0x6abcde, 0, false, &w), 0);	/* 2 MiB page at gpa 0 */
	CHECK_EQ(w.level, 2);
	CHECK_EQ(w.gpa, 0x0abcde);
	CHECK_EQ(walk(0x40000000 + 0x123456, 0, false, &w), 0);	/* 1 GiB page at gpa 0 */
	CHECK_EQ(w.level, 3);
	CHECK_EQ(w.gpa, 0x123456);
}

static void accessed_and_dirty(void)
{
	struct kl_walk w;

	CHECK_EQ(walk(0x400000, 0, true, &w), 0);		/* a read: A on every level */
	CHECK(*entry(PML4) & KL_PT_A);
	CHECK(*entry(PDPT) & KL_PT_A);
	CHECK(*entry(PD + 16) & KL_PT_A);
	CHECK((*entry(PT) & (KL_PT_A | KL_PT_D)) == KL_PT_A);
	CHECK_EQ(w.pte, *entry(PT));
	CHECK_EQ(walk(0x400000, KL_PF_W, true, &w), 0);	/* a write: D on the leaf */
	CHECK(*entry(PT) & KL_PT_D);
	CHECK(!(*entry(PD + 16) & KL_PT_D));
	CHECK_EQ(walk(0x600000, KL_PF_W, true, &w), 0);	/* D on a large leaf */
	CHECK(*entry(PD + 24) & KL_PT_D);
	cmpxchg_calls = 0;
	CHECK_EQ(walk(0x400000, KL_PF_W, true, &w), 0);	/* all set already: no writes */
	CHECK_EQ(cmpxchg_calls, 0);
	CHECK(w.accessed);
}

static void not_present(void)
{
	struct kl_walk w;

	*entry(PT) = 0;
	CHECK_EQ(walk(0x400000, KL_PF_W | KL_PF_U, true, &w), -EFAULT);
	CHECK_EQ(w.error, KL_PF_W | KL_PF_U);		/* P clear: not a protection fault */
	CHECK(!(*entry(PML4) & KL_PT_A));		/* a faulting walk sets no A bits */
	CHECK_EQ(walk(0x800000, 0, false, &w), -EFAULT);	/* PD[4] empty */
	CHECK_EQ(w.error, 0);
}

static void user_supervisor(void)
{
	struct kl_walk w;

	*entry(PD + 16) = PT | RW;			/* supervisor-only table */
	CHECK_EQ(walk(0x400000, KL_PF_U, false, &w), -EFAULT);
	CHECK_EQ(w.error, KL_PF_P | KL_PF_U);
	CHECK_EQ(walk(0x400000, 0, false, &w), 0);
	CHECK(!w.user);
}

static void read_only_and_wp(void)
{
	struct kl_walk w;

	*entry(PT) = 0x200000 | KL_PT_P | KL_PT_U;	/* read-only leaf */
	CHECK_EQ(walk(0x400000, KL_PF_W | KL_PF_U, false, &w), -EFAULT);
	CHECK_EQ(w.error, KL_PF_P | KL_PF_W | KL_PF_U);
	CHECK_EQ(walk(0x400000, KL_PF_W, false, &w), -EFAULT);	/* supervisor, WP=1 */
	CHECK_EQ(w.error, KL_PF_P | KL_PF_W);
	pg.cr0 &= ~KL_CR0_WP;
	CHECK_EQ(walk(0x400000, KL_PF_W, false, &w), 0);	/* supervisor, WP=0: allowed */
	CHECK(!w.writable);
	CHECK_EQ(walk(0x400000, KL_PF_W | KL_PF_U, false, &w), -EFAULT);	/* user still not */
}

static void no_execute(void)
{
	struct kl_walk w;

	*entry(PD + 16) |= KL_PT_NX;			/* NX on an upper level covers the leaf */
	CHECK_EQ(walk(0x400000, KL_PF_ID, false, &w), -EFAULT);
	CHECK_EQ(w.error, KL_PF_P | KL_PF_ID);
	CHECK_EQ(walk(0x400000, 0, false, &w), 0);	/* reading is fine */
	CHECK(w.nx);
	pg.efer &= ~KL_EFER_NX;				/* without NXE, bit 63 is reserved */
	CHECK_EQ(walk(0x400000, 0, false, &w), -EFAULT);
	CHECK_EQ(w.error, KL_PF_P | KL_PF_RSVD);
}

static void reserved_bits(void)
{
	struct kl_walk w;

	*entry(PT) = (1ULL << 45) | 0x200000 | URW;	/* above MAXPHYADDR 40 */
	CHECK_EQ(walk(0x400000, 0, false, &w), -EFAULT);
	CHECK_EQ(w.error, KL_PF_P | KL_PF_RSVD);
	setup();
	*entry(PML4) |= KL_PT_PS;			/* no 512 GiB pages */
	CHECK_EQ(walk(0x400000, KL_PF_W, false, &w), -EFAULT);
	CHECK_EQ(w.error, KL_PF_P | KL_PF_RSVD | KL_PF_W);
	setup();
	*entry(PD + 24) |= 1ULL << 13;			/* a 2 MiB page's address bits 20:13 */
	CHECK_EQ(walk(0x600000, 0, false, &w), -EFAULT);
	CHECK_EQ(w.error, KL_PF_P | KL_PF_RSVD);
	setup();
	*entry(PDPT + 8) |= 1ULL << 29;			/* a 1 GiB page's bits 29:13 */
	CHECK_EQ(walk(0x40000000, 0, false, &w), -EFAULT);
	CHECK_EQ(w.error, KL_PF_P | KL_PF_RSVD);
}

static void non_canonical_and_modes(void)
{
	struct kl_walk w;

	CHECK_EQ(walk(0x0000800000000000ULL, 0, false, &w), -EINVAL);
	CHECK_EQ(walk(0xffff800000000000ULL, 0, false, &w), -EFAULT);	/* canonical, unmapped */
	pg.cr0 &= ~KL_CR0_PG;				/* paging off: gva is the gpa */
	CHECK_EQ(walk(0x1234567, KL_PF_W, true, &w), 0);
	CHECK_EQ(w.gpa, 0x1234567);
	CHECK_EQ(cmpxchg_calls, 0);
	pg.cr0 |= KL_CR0_PG;				/* 32-bit paging: not modelled here */
	pg.efer &= ~KL_EFER_LMA;
	CHECK_EQ(walk(0x400000, 0, false, &w), -EOPNOTSUPP);
}

static void racing_guest(void)
{
	struct kl_walk w;

	races_left = 2;					/* the guest wins twice, then we do */
	CHECK_EQ(walk(0x400000, KL_PF_W, true, &w), 0);
	CHECK(*entry(PT) & KL_PT_D);
	CHECK(cmpxchg_calls >= 3);
	setup();
	races_left = 100;				/* a guest that never lets go */
	CHECK_EQ(walk(0x400000, KL_PF_W, true, &w), -EAGAIN);
}

static void tables_outside_memory(void)
{
	struct kl_walk w;

	*entry(PD + 16) = 0x10000000 | URW;		/* PT at 256 MiB: no RAM there */
	CHECK_EQ(walk(0x400000, 0, false, &w), -ENOENT);
}

void suite_walk(void)
{
	static const struct { const char *name; void (*fn)(void); } tests[] = {
		{ "walk_four_kib_page", four_kib_page },
		{ "walk_large_pages", large_pages },
		{ "walk_accessed_and_dirty", accessed_and_dirty },
		{ "walk_not_present", not_present },
		{ "walk_user_supervisor", user_supervisor },
		{ "walk_read_only_and_wp", read_only_and_wp },
		{ "walk_no_execute", no_execute },
		{ "walk_reserved_bits", reserved_bits },
		{ "walk_non_canonical_and_modes", non_canonical_and_modes },
		{ "walk_racing_guest", racing_guest },
		{ "walk_tables_outside_memory", tables_outside_memory },
	};

	mem = malloc(MEM_BYTES);
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		setup();
		unit_run(tests[i].name, tests[i].fn);
	}
	free(mem);
}
