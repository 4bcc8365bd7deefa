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

static u32 *entry32(u64 gpa)
{
	return (u32 *)(mem + gpa);
}

static int read_pte(void *ctx, u64 gpa, int size, u64 *pte)
{
	(void)ctx;
	if (gpa + size > MEM_BYTES || gpa % size)
		return -ENOENT;
	*pte = size == 4 ? *entry32(gpa) : *entry(gpa);
	return 0;
}

/* A guest CPU that changes the entry just before our cmpxchg, races_left times. */
static int cmpxchg_pte(void *ctx, u64 gpa, int size, u64 old, u64 new)
{
	u64 now = 0;

	(void)ctx;
	cmpxchg_calls++;
	if (races_left > 0) {
		races_left--;
		if (size == 4)
			*entry32(gpa) |= KL_PT_A;	/* the guest's own walk set A meanwhile */
		else
			*entry(gpa) |= KL_PT_A;
		return -EAGAIN;
	}
	read_pte(ctx, gpa, size, &now);
	if (now != old)
		return -EAGAIN;
	if (size == 4)
		*entry32(gpa) = (u32)new;
	else
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
	pg.cr0 |= KL_CR0_PG;				/* PAE without LMA: the high bits wrap */
	pg.efer &= ~KL_EFER_LMA;
	CHECK_EQ(kl_paging_format(&pg), KL_PAGING_PAE);
	CHECK_EQ(walk(0x0000800000000000ULL, 0, false, &w), -EFAULT);	/* no #GP outside long mode */
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

/*
 * 2-level paging: CR3 -> PD at 0x5000 (1024 4-byte entries). gva 0x00401234:
 * PD[1] -> PT at 0x6000, PT[1] -> gpa 0x7000. PD[2] is a 4 MiB page at gpa 0
 * when CR4.PSE is set; PD[3] a PSE-36 4 MiB page at 0x2_0000_0000 (bits
 * 39:32 = 2 in PDE bits 20:13).
 */
static void setup_2level(void)
{
	*entry32(0x5000 + 1 * 4) = 0x6000 | URW;
	*entry32(0x6000 + 1 * 4) = 0x7000 | URW;
	*entry32(0x5000 + 2 * 4) = 0x00000000 | URW | KL_PT_PS;
	*entry32(0x5000 + 3 * 4) = (u32)(0x00c00000 | (2u << 13) | URW | KL_PT_PS);
	pg.cr0 = KL_CR0_PE | KL_CR0_PG | KL_CR0_WP;
	pg.cr3 = 0x5000;
	pg.cr4 = KL_CR4_PSE;
	pg.efer = 0;
}

static void two_level_pages(void)
{
	struct kl_walk w;

	setup_2level();
	CHECK_EQ(kl_paging_format(&pg), KL_PAGING_2LEVEL);
	CHECK_EQ(walk(0x401234, 0, false, &w), 0);
	CHECK_EQ(w.gpa, 0x7234);
	CHECK_EQ(w.level, 1);
	CHECK_EQ(w.pte_gpa, 0x6004);
	CHECK_EQ(w.table[2], 0x5000);
	CHECK_EQ(walk(0x8abcde, 0, false, &w), 0);	/* a 4 MiB page: 22 bits of offset */
	CHECK_EQ(w.level, 2);
	CHECK_EQ(w.gpa, 0x0abcde);
	CHECK_EQ(walk(0xc12345, 0, false, &w), 0);	/* PSE-36: above 4 GiB */
	CHECK_EQ(w.gpa, 0x200c12345ULL);
	CHECK_EQ(walk(0x100401234ULL, 0, false, &w), 0);	/* linear addresses wrap at 4 GiB */
	CHECK_EQ(w.gpa, 0x7234);
}

static void two_level_rules(void)
{
	struct kl_walk w;

	setup_2level();
	pg.cr4 = 0;					/* without PSE the PS bit is ignored: a table */
	*entry32(0x0000 + 0xab * 4) = 0;		/* the PTE there (table at gpa 0) */
	CHECK_EQ(walk(0x8abcde, 0, false, &w), -EFAULT);
	CHECK_EQ(w.level, 0);
	pg.cr4 = KL_CR4_PSE;
	*entry32(0x5000 + 2 * 4) |= 1u << 21;		/* bit 21 of a 4 MiB PDE is reserved */
	CHECK_EQ(walk(0x8abcde, 0, false, &w), -EFAULT);
	CHECK_EQ(w.error, KL_PF_P | KL_PF_RSVD);
	pg.maxphyaddr = 36;				/* PSE-36 bits 20:17 are reserved then */
	CHECK_EQ(walk(0xc12345, 0, false, &w), 0);	/* 2 << 13: bit 14, address bit 33 */
	*entry32(0x5000 + 3 * 4) |= 1u << 17;
	CHECK_EQ(walk(0xc12345, 0, false, &w), -EFAULT);
	CHECK_EQ(w.error, KL_PF_P | KL_PF_RSVD);
	pg.efer = KL_EFER_NX;				/* no NX in 4-byte entries: fetch allowed */
	CHECK_EQ(walk(0x401234, KL_PF_ID, false, &w), 0);
	*entry32(0x6000 + 1 * 4) &= ~KL_PT_W;		/* read-only, WP=1 */
	CHECK_EQ(walk(0x401234, KL_PF_W, false, &w), -EFAULT);
	CHECK_EQ(w.error, KL_PF_P | KL_PF_W);		/* no ID bit without PAE */
	CHECK_EQ(walk(0x401234, KL_PF_ID | KL_PF_U, false, &w), 0);
}

static void two_level_accessed_and_dirty(void)
{
	struct kl_walk w;

	setup_2level();
	*entry32(0x5000 + 5 * 4) = 0x12345678;		/* a neighbour that must stay as it is */
	CHECK_EQ(walk(0x401234, KL_PF_W, true, &w), 0);
	CHECK_EQ(*entry32(0x5004), 0x6000 | URW | KL_PT_A);
	CHECK_EQ(*entry32(0x6004), 0x7000 | URW | KL_PT_A | KL_PT_D);
	CHECK_EQ(*entry32(0x5014), 0x12345678);
	CHECK_EQ(*entry32(0x5008), URW | KL_PT_PS);
	CHECK_EQ(walk(0x812345, KL_PF_W, true, &w), 0);	/* D on a 4 MiB page */
	CHECK_EQ(*entry32(0x5008), URW | KL_PT_PS | KL_PT_A | KL_PT_D);
}

/*
 * PAE: CR3 -> PDPT at 0x5020 (32-byte aligned). PDPTE[1] -> PD at 0x6000;
 * gva 0x40201234: PD[1] -> PT at 0x7000, PT[1] -> gpa 0x9000; PD[2] a 2 MiB
 * page at 0x200000, NX.
 */
static void setup_pae(void)
{
	*entry(0x5020 + 1 * 8) = 0x6000 | KL_PT_P;
	*entry(0x6000 + 1 * 8) = 0x7000 | URW;
	*entry(0x7000 + 1 * 8) = 0x9000 | URW;
	*entry(0x6000 + 2 * 8) = 0x200000 | URW | KL_PT_PS | KL_PT_NX;
	pg.cr0 = KL_CR0_PE | KL_CR0_PG | KL_CR0_WP;
	pg.cr3 = 0x5020;
	pg.cr4 = KL_CR4_PAE;
	pg.efer = KL_EFER_NX;
}

static void pae_pages_and_pdptes(void)
{
	struct kl_walk w;
	u64 regs[4] = { 0, 0x6000 | KL_PT_P, 0, 0 };

	setup_pae();
	CHECK_EQ(kl_paging_format(&pg), KL_PAGING_PAE);
	CHECK_EQ(walk(0x40201234, 0, false, &w), 0);
	CHECK_EQ(w.gpa, 0x9234);
	CHECK_EQ(w.level, 1);
	CHECK_EQ(w.entry[3], 0x6000 | KL_PT_P);
	CHECK_EQ(walk(0x40412345, 0, false, &w), 0);	/* 2 MiB page */
	CHECK_EQ(w.level, 2);
	CHECK_EQ(w.gpa, 0x212345);
	CHECK_EQ(walk(0x00001000, 0, false, &w), -EFAULT);	/* PDPTE[0] not present */
	CHECK_EQ(w.error, 0);
	/* PDPTEs the CPU loaded at the CR3 write win over what memory says now. */
	*entry(0x5020 + 8) = 0;
	pg.pdptes = regs;
	CHECK_EQ(walk(0x40201234, 0, false, &w), 0);
	CHECK_EQ(w.gpa, 0x9234);
	pg.pdptes = NULL;
	CHECK_EQ(walk(0x40201234, 0, false, &w), -EFAULT);
}

static void pae_rules(void)
{
	struct kl_walk w;

	setup_pae();
	CHECK_EQ(walk(0x40412345, KL_PF_ID, false, &w), -EFAULT);	/* NX with NXE */
	CHECK_EQ(w.error, KL_PF_P | KL_PF_ID);
	pg.efer = 0;					/* without NXE bit 63 is reserved */
	CHECK_EQ(walk(0x40412345, 0, false, &w), -EFAULT);
	CHECK_EQ(w.error, KL_PF_P | KL_PF_RSVD);
	setup_pae();
	*entry(0x7000 + 8) |= 1ULL << 55;		/* PAE reserves 62:MAXPHYADDR */
	CHECK_EQ(walk(0x40201234, 0, false, &w), -EFAULT);
	CHECK_EQ(w.error, KL_PF_P | KL_PF_RSVD);
	setup_pae();
	*entry(0x5020 + 8) |= KL_PT_A;			/* a PDPTE's bits are checked at load, */
	CHECK_EQ(walk(0x40201234, KL_PF_W | KL_PF_U, false, &w), 0);	/* not on a walk; */
	CHECK(w.writable && w.user);			/* it grants every right */
	setup_pae();
	*entry(0x6000 + 8) &= ~KL_PT_U;			/* U/S from the PDE */
	CHECK_EQ(walk(0x40201234, KL_PF_U, false, &w), -EFAULT);
	CHECK_EQ(w.error, KL_PF_P | KL_PF_U);
}

static void pae_accessed_and_dirty(void)
{
	struct kl_walk w;

	setup_pae();
	CHECK_EQ(walk(0x40201234, KL_PF_W, true, &w), 0);
	CHECK_EQ(*entry(0x5028), 0x6000 | KL_PT_P);	/* PDPTEs get no A bit */
	CHECK_EQ(*entry(0x6008), 0x7000 | URW | KL_PT_A);
	CHECK_EQ(*entry(0x7008), 0x9000 | URW | KL_PT_A | KL_PT_D);
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
		{ "walk_two_level_pages", two_level_pages },
		{ "walk_two_level_rules", two_level_rules },
		{ "walk_two_level_accessed_and_dirty", two_level_accessed_and_dirty },
		{ "walk_pae_pages_and_pdptes", pae_pages_and_pdptes },
		{ "walk_pae_rules", pae_rules },
		{ "walk_pae_accessed_and_dirty", pae_accessed_and_dirty },
	};

	mem = malloc(MEM_BYTES);
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		setup();
		unit_run(tests[i].name, tests[i].fn);
	}
	free(mem);
}
