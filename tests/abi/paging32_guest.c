// SPDX-License-Identifier: GPL-2.0
/*
 * A 32-bit guest that turns on 2-level (with PSE) or PAE paging itself and
 * checks what the MMU gives it: a mapping's reads and writes, A and D bits,
 * not-present and write-protection faults (CR2 and error code, fixed by the
 * handler and the access restarted), CR0.WP=0, INVLPG after a remap, a CR3
 * switch, a 4 MiB (2-level) or 2 MiB (PAE) page with INVLPG in its other
 * half, NX under PAE, and switches from paging to paging off to the other
 * format and back. Built with -m32 into a flat binary at 0x10000
 * that kvmlab-abi-test carries; entered in 32-bit protected mode with
 * paging off. Results at 0x9100: failures, checks, a checksum every
 * hypervisor must agree on; then OUT 0x10 and HLT.
 */
#include <stdint.h>

typedef uint32_t u32;
typedef uint64_t u64;

#define P	0x001u
#define W	0x002u
#define U	0x004u
#define A	0x020u
#define D	0x040u
#define PS	0x080u
#define NX	(1ULL << 63)

struct params { u32 pae; };
struct results {
	u32 failures, checks, checksum, pf_count;
	u32 fail_line[16];
	u32 last_cr2, last_err;
};

#define PARAMS	((volatile struct params *)0x9000)
#define R	((volatile struct results *)0x9100)
#define IDT	((volatile u64 *)0xa000)

#define FRAME_A	0x200000u
#define FRAME_B	0x201000u
#define FRAME_C	0x202000u
#define CODE_F	0x203000u

static int pae;
static u32 next_table = 0x100000;
static u32 *pd32;			/* 2-level: the page directory */
static u64 *pdpt, *pd64[4];		/* PAE: the PDPT and its four directories */

#define CHECK(c) do { \
	R->checks++; \
	if (!(c)) { \
		if (R->failures < 16) \
			R->fail_line[R->failures] = __LINE__; \
		R->failures++; \
	} \
} while (0)

static void mix(u32 v)
{
	R->checksum = (R->checksum ^ v) * 16777619u;
}

static void *alloc_table(void)
{
	u32 *t = (u32 *)next_table;

	next_table += 0x1000;
	for (int i = 0; i < 1024; i++)
		t[i] = 0;
	return t;
}

static inline void invlpg(u32 va) { __asm__ volatile("invlpg (%0)" :: "r"(va) : "memory"); }
static inline u32 get_cr0(void) { u32 v; __asm__ volatile("mov %%cr0,%0" : "=r"(v)); return v; }
static inline void set_cr0(u32 v) { __asm__ volatile("mov %0,%%cr0" :: "r"(v) : "memory"); }
static inline void set_cr3(u32 v) { __asm__ volatile("mov %0,%%cr3" :: "r"(v) : "memory"); }
static inline u32 get_cr3(void) { u32 v; __asm__ volatile("mov %%cr3,%0" : "=r"(v)); return v; }
static inline u32 get_cr4(void) { u32 v; __asm__ volatile("mov %%cr4,%0" : "=r"(v)); return v; }
static inline void set_cr4(u32 v) { __asm__ volatile("mov %0,%%cr4" :: "r"(v) : "memory"); }
static inline u32 peek(u32 va) { return *(volatile u32 *)va; }
static inline void poke(u32 va, u32 v) { *(volatile u32 *)va = v; }

/* The entry that maps va at `level` (1: PTE, 2: PDE), as a pointer into its table. */
static void *entry_of(u32 va, int level, int create)
{
	if (!pae) {
		u32 *pde = &pd32[va >> 22];

		if (level == 2)
			return pde;
		if (!(*pde & P)) {
			if (!create)
				return 0;
			*pde = (u32)alloc_table() | P | W | U;
		}
		return &((u32 *)(*pde & ~0xfffu))[(va >> 12) & 1023];
	} else {
		u64 *pde = &pd64[va >> 30][(va >> 21) & 511];

		if (level == 2)
			return pde;
		if (!(*pde & P)) {
			if (!create)
				return 0;
			*pde = (u32)alloc_table() | P | W | U;
		}
		return &((u64 *)(u32)(*pde & ~0xfffull))[(va >> 12) & 511];
	}
}

static u64 get_entry(u32 va, int level)
{
	void *e = entry_of(va, level, 0);

	return !e ? 0 : pae ? *(volatile u64 *)e : *(volatile u32 *)e;
}

static void set_entry(u32 va, int level, u64 v)
{
	void *e = entry_of(va, level, 1);

	if (pae)
		*(volatile u64 *)e = v;
	else
		*(volatile u32 *)e = (u32)v;
}

static void map(u32 va, u32 pa, u64 flags)
{
	set_entry(va, 1, pa | flags);
}

struct frame {
	u32 edi, esi, ebp, esp, ebx, edx, ecx, eax;
	u32 err, eip, cs, eflags;
};

/* #PF: record, then repair so the access restarts and succeeds. */
void pf_handler(struct frame *f)
{
	u32 cr2;

	__asm__ volatile("mov %%cr2,%0" : "=r"(cr2));
	R->pf_count++;
	R->last_cr2 = cr2;
	R->last_err = f->err;
	mix(cr2);
	mix(f->err);
	if (!(f->err & P))
		map(cr2 & ~0xfffu, FRAME_C, P | W);
	else if (f->err & 0x10)
		set_entry(cr2, 1, get_entry(cr2, 1) & ~NX);
	else if (f->err & W)
		set_entry(cr2, 1, get_entry(cr2, 1) | W);
}

__asm__(".text\n"
	".globl pf_stub\n"
	"pf_stub:\n"
	"	pusha\n"
	"	push %esp\n"
	"	call pf_handler\n"
	"	add $4, %esp\n"
	"	popa\n"
	"	add $4, %esp\n"
	"	iret\n");
void pf_stub(void);

static void setup_idt(void)
{
	u32 h = (u32)pf_stub;
	struct { unsigned short limit; u32 base; } __attribute__((packed)) idtr = { 256 * 8 - 1, 0xa000 };

	IDT[14] = (h & 0xffff) | (8ull << 16) | (0x8eull << 40) | ((u64)(h >> 16) << 48);
	__asm__ volatile("lidt %0" :: "m"(idtr));
}

static void enable_paging(void)
{
	if (!pae) {
		pd32 = alloc_table();
		for (u32 va = 0; va < 0x400000; va += 0x1000)
			map(va, va, P | W);
		set_cr3((u32)pd32);
		set_cr4((get_cr4() & ~0x20u) | 0x10);		/* PSE, not PAE */
	} else {
		pdpt = alloc_table();
		for (int i = 0; i < 4; i++) {
			pd64[i] = alloc_table();
			pdpt[i] = (u32)pd64[i] | P;
		}
		for (u32 va = 0; va < 0x400000; va += 0x1000)
			map(va, va, P | W);
		set_cr4(get_cr4() | 0x20);			/* PAE */
		__asm__ volatile("rdmsr; or $0x800, %%eax; wrmsr" ::"c"(0xc0000080) : "eax", "edx");
		set_cr3((u32)pdpt);
	}
	set_cr0(get_cr0() | 0x80010000u);			/* PG, WP */
}

static void basic_and_accessed_dirty(void)
{
	map(0x40000000, FRAME_A, P | W);
	poke(0x40000000, 0x11111111);
	CHECK(peek(FRAME_A) == 0x11111111);
	CHECK((get_entry(0x40000000, 1) & (A | D)) == (A | D));
	map(0x40001000, FRAME_B, P | W);
	mix(peek(0x40001000));
	CHECK((get_entry(0x40001000, 1) & (A | D)) == A);	/* read: A, not D */
	CHECK(get_entry(0x40000000, 2) & A);
}

static void not_present_faults(void)
{
	poke(FRAME_C, 0x33333333);
	CHECK(peek(0x50000000) == 0x33333333);			/* the handler maps frame C */
	CHECK(R->pf_count == 1 && R->last_cr2 == 0x50000000 && R->last_err == 0);
	poke(0x50401000, 0x44444444);				/* a write, another PT */
	CHECK(R->pf_count == 2 && R->last_cr2 == 0x50401000 && R->last_err == 2);
	CHECK(peek(FRAME_C) == 0x44444444);
}

static void write_protection(void)
{
	u32 n = R->pf_count;

	map(0x40002000, FRAME_B, P);				/* read-only */
	poke(0x40002008, 0x55555555);				/* WP=1: a fault, then writable */
	CHECK(R->pf_count == n + 1 && R->last_err == (P | W) && R->last_cr2 == 0x40002008);
	CHECK(peek(FRAME_B + 8) == 0x55555555);
	map(0x40003000, FRAME_B, P);
	set_cr0(get_cr0() & ~0x10000u);				/* WP=0: supervisor writes pass */
	poke(0x4000300c, 0x66666666);
	set_cr0(get_cr0() | 0x10000u);
	CHECK(R->pf_count == n + 1);
	CHECK(peek(FRAME_B + 12) == 0x66666666);
	CHECK(!(get_entry(0x40003000, 1) & W));
}

static void invlpg_after_remap(void)
{
	map(0x40004000, FRAME_A, P | W);
	CHECK(peek(0x40004000) == 0x11111111);
	poke(FRAME_C, 0x77777777);
	map(0x40004000, FRAME_C, P | W);
	invlpg(0x40004000);
	CHECK(peek(0x40004000) == 0x77777777);
}

/* A second address space where 0x40000000 maps frame C instead of frame A. */
static void cr3_switch(void)
{
	u32 old = get_cr3(), new;

	if (!pae) {
		u32 *pd2 = alloc_table(), *pt2 = alloc_table(), *pt = (u32 *)(pd32[256] & ~0xfffu);

		for (int i = 0; i < 1024; i++) {
			pd2[i] = pd32[i];
			pt2[i] = pt[i];
		}
		pt2[0] = FRAME_C | P | W;
		pd2[256] = (u32)pt2 | P | W | U;
		new = (u32)pd2;
	} else {
		u64 *pdpt2 = alloc_table(), *pd2 = alloc_table(), *pt2 = alloc_table();
		u64 *pt = (u64 *)(u32)(pd64[1][0] & ~0xfffull);

		for (int i = 0; i < 512; i++) {
			pd2[i] = pd64[1][i];
			pt2[i] = pt[i];
		}
		pt2[0] = FRAME_C | P | W;
		pd2[0] = (u32)pt2 | P | W | U;
		for (int i = 0; i < 4; i++)
			pdpt2[i] = pdpt[i];
		pdpt2[1] = (u32)pd2 | P;
		new = (u32)pdpt2;
	}
	set_cr3(new);
	CHECK(peek(0x40000000) == 0x77777777);
	set_cr3(old);
	CHECK(peek(0x40000000) == 0x11111111);
}

/* A large page, then remapped, with INVLPG in its other 2 MiB half. */
static void large_pages(void)
{
	u32 size = pae ? 0x200000 : 0x400000, half = 0x100000;
	u32 first = 0x400000, second = 0x800000;

	map(0x41000000, first + half, P | W);			/* aliases of both backings */
	map(0x41001000, second + half, P | W);
	poke(0x41000000, 0x88888888);
	poke(0x41001000, 0x99999999);
	set_entry(0x80000000, 2, first | P | W | PS);
	CHECK(peek(0x80000000 + half) == 0x88888888);
	poke(0x80000000 + half + 4, 0xaaaaaaaa);
	CHECK(peek(0x41000004) == 0xaaaaaaaa);
	CHECK((get_entry(0x80000000, 2) & (A | D)) == (A | D));
	set_entry(0x80000000, 2, second | P | W | PS);
	invlpg(0x80000000 + size - 0x1000);			/* the far end of the large page */
	CHECK(peek(0x80000000 + half) == 0x99999999);
}

static void no_execute(void)
{
	u32 n = R->pf_count;

	*(volatile unsigned char *)CODE_F = 0xc3;		/* ret */
	map(0x40005000, CODE_F, P | W);
	set_entry(0x40005000, 1, get_entry(0x40005000, 1) | NX);
	((void (*)(void))0x40005000)();				/* #PF, NX cleared, then it runs */
	CHECK(R->pf_count == n + 1 && R->last_err == (P | 0x10) && R->last_cr2 == 0x40005000);
}

/*
 * A live page table cleared with REP STOSL, as a 32-bit kernel's
 * clear_page does: a shadow MMU that write-protects tables traps it and
 * must emulate it whole (one exit for the page), after which the
 * mapping is gone and the next access faults (the handler maps frame C).
 */
static void table_cleared_by_rep_stos(void)
{
	u32 n = R->pf_count, *pt, d0, d1;

	map(0x40c00000, FRAME_A, P | W);
	map(0x40c01000, FRAME_B, P | W);
	mix(peek(0x40c00000) ^ peek(0x40c01000));		/* the table is in use */
	pt = (u32 *)(u32)(get_entry(0x40c00000, 2) & ~0xfffull);
	__asm__ volatile("cld; rep stosl" : "=D"(d0), "=c"(d1)
			 : "D"(pt), "c"(1024), "a"(0) : "memory");
	invlpg(0x40c00000);
	invlpg(0x40c01000);
	CHECK(d1 == 0 && d0 == (u32)pt + 4096);
	CHECK(get_entry(0x40c01000, 1) == 0);
	CHECK(peek(0x40c01000) == peek(FRAME_C) && R->pf_count == n + 1 &&
	      R->last_cr2 == 0x40c01000);
}

/*
 * Mode switches both ways: paging off (linear is physical again), then
 * paging on in the other format with fresh tables, then off and back to
 * the first format. Each switch must drop or re-key every shadow.
 */
static void mode_round_trip(void)
{
	for (int round = 0; round < 2; round++) {
		u32 value = 0xabc00000u + round;

		set_cr0(get_cr0() & ~0x80000000u);		/* paging off */
		poke(FRAME_A + 0x100, value);
		CHECK(peek(FRAME_A + 0x100) == value);
		pae = !pae;
		enable_paging();
		map(0x40000000, FRAME_A, P | W);
		map(0x40800000, FRAME_B, P);
		CHECK(peek(0x40000100) == value);
		mix(peek(0x40800000));
		CHECK((get_entry(0x40000000, 1) & (A | D)) == A);
	}
}

__attribute__((section(".text.entry"))) void _start(void)
{
	pae = PARAMS->pae;
	setup_idt();
	enable_paging();
	basic_and_accessed_dirty();
	not_present_faults();
	write_protection();
	invlpg_after_remap();
	cr3_switch();
	large_pages();
	if (pae)
		no_execute();
	table_cleared_by_rep_stos();
	mode_round_trip();
	mix(R->pf_count);
	__asm__ volatile("out %%al, $0x10; hlt" :: "a"(0));
	for (;;)
		__asm__ volatile("hlt");
}
