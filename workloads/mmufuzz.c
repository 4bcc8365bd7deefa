// SPDX-License-Identifier: GPL-2.0
/*
 * mmufuzz: the guest half of the differential MMU fuzzer.
 *
 * From a seed, build random page-table graphs in a pool of 32 frames and
 * poke at them: reads, writes and instruction fetches at CPL0 and CPL3,
 * PTE writes, INVLPG, CR3 switches between four address spaces, and
 * CR0.WP, CR4.PGE and EFER.NXE toggles. Every observation (the value read,
 * or the fault's vector, error code and CR2; then the A and D bits along
 * the walk that succeeded) is folded into the checksum. One operation is
 * one op; the checksum is the log. Under nested paging the CPU walks these
 * tables itself, so its checksum is the oracle every shadow MMU must match
 * (`kvmlab fuzz mmu` compares them and, on a mismatch, bisects to the
 * first op that differs and prints the trace of the ops before it).
 *
 * What makes the graphs hostile: any pool frame can be a table at any
 * level and a data page at the same time (writes through it are PTE
 * writes the hypervisor did not see coming), tables point at themselves
 * and are shared between the address spaces, entries carry random
 * permission, A/D, PS, PAT/PCD/PWT, NX, available and reserved bits, and
 * some point at gpa 0 (1 GiB pages), or at the harness's MMIO device
 * (outside RAM).
 *
 * What keeps the log deterministic, so that any difference is a bug:
 * - Every page-table change is followed by a TLB flush (a CR3 reload), and
 *   no fuzzed entry has G set (on a non-leaf PML4E/PDPE AMD reserves bit 8
 *   while QEMU ignores it, so the oracle could not judge it). What the TLB
 *   holds is then exactly what memory says.
 * - Values read from page tables are compared with A (bit 5) masked: on a
 *   walk that faults, hardware may or may not have set A in the upper
 *   levels (QEMU does, KVM's walker does not; both are allowed).
 * - Only frames of the pool are ever written, and only entries 0-3 of
 *   them: before each access the guest walks its own tables (in software,
 *   without judging them) to see where the access will land, and turns a
 *   write or fetch that would land outside the pool into a read. Byte
 *   0xfff of every pool frame is 0xc3 (RET): fetches go there.
 * - QEMU's emulated NPT reports reserved-bit faults without P: the P bit of
 *   an error code that has RSVD set is not compared (testmachine/README.md).
 *
 * The same fuzzer runs in every paging format (mmufuzz-pae, mmufuzz-2level):
 * - 4-level: the window is PML4 slot 3; pool entries serve at any level.
 * - PAE: the window is PDPTE 3 of each space, given only values a CPU
 *   accepts at a CR3 load (present or not, a pool frame, PWT/PCD, available
 *   bits); pool entries serve as PDEs and PTEs. No entry gets bits 62:52,
 *   which AMD leaves available in PAE and Intel (and KVM) reserve.
 * - 2-level: the window is PDEs 0x300-0x303 of each space (4 MiB pages when
 *   CR4.PSE is on); pool frames are page tables of 4-byte entries.
 * The 32-bit formats add a mode switch: CR0.PG off, a physical read and a
 * page-table write with paging off, and back on (a shadow MMU must notice
 * that write). CR4.PSE stays on: the runtime's own identity map is made of
 * 4 MiB pages.
 *
 * mmufuzz-smp (4-level, `--vcpus 2`; mmufuzz-smp.c builds this file with
 * MMUFUZZ_SMP) adds a partner: CPU 1 runs in one of the same four address
 * spaces and, after each of CPU 0's ops, does one of its own that CPU 0
 * draws for it — a read or a write at a fuzzed address steered as CPU 0's
 * are (its writes land in the pool: PTE writes into tables CPU 0 walks),
 * or a switch to another space. The two take turns through a mailbox, so
 * the schedule, and the log, are the same on every run; every TLB flush of
 * CPU 0's is a shootdown (an IPI, and CPU 1 reloads CR3), so a shadow MMU
 * must keep both CPUs' views of the shared tables right, through the
 * shadow pages they share (mmu=cached) or each vCPU's own (vtlb, shadow).
 */
#include "rt.h"

KL_NOT_A_BENCHMARK("the differential MMU fuzzer: kvmlab fuzz mmu runs it");
#ifdef MMUFUZZ_SMP
KL_SMP_WORKLOAD();
#endif

KL_PARAM(p_seed, "seed", 1, 0, 0x7fffffffffffffffULL, "random seed: the same seed, the same ops");
KL_PARAM(p_ops, "ops", 20000, 1, 100000000, "operations to run");
KL_PARAM(p_trace, "trace_from", 0, 0, 100000000,
	 "print each op from this one on (1-based; 0: none)");

#define CHECKPOINT_OPS	1000			/* the harness bisects between these */
#define POOL_FRAMES	32
#define NR_ROOTS	4
#define RET_OPCODE	0xc3
#define MMIO_GPA	KL_MMIO_SCRATCH_GPA	/* 32 MiB-aligned: any large page's base */
#define PTE_PAT_LARGE	(1ULL << 12)		/* PAT in a large leaf */
#define EFER_NXE	(1ULL << 11)
#define CR0_WP		(1UL << 16)
#define CR0_PG		(1UL << 31)
#define CR4_PSE		(1UL << 4)
#define CR4_PGE		(1UL << 7)
#define MSR_EFER	0xc0000080
#define USER_ARG_VA	KL_USER_DATA_VA		/* value a CPL3 write stores */

/*
 * The fuzzed window: the top-level entries WINDOW_FIRST.. of each space
 * (WINDOW_ENTRIES of them) and what hangs below. An address in it picks an
 * index 0..3 at each level from FUZZ_TOP down to 1.
 */
#if KL_PAGING_LEVELS == 4
#define WINDOW_FIRST	3
#define WINDOW_ENTRIES	1
#define FUZZ_TOP	3
#elif KL_PAGING_LEVELS == 3
#define WINDOW_FIRST	3
#define WINDOW_ENTRIES	1
#define FUZZ_TOP	2
#else
#define WINDOW_FIRST	0x300
#define WINDOW_ENTRIES	4
#define FUZZ_TOP	2
#endif
#define FUZZ_VA		((ulong)WINDOW_FIRST << (12 + PT_INDEX_BITS * (KL_PAGING_LEVELS - 1)))

enum access_kind { READ, WRITE, FETCH };
static const char *const kind_names[] = { "read", "write", "fetch" };

static ulong pool;			/* gpa of the large block; frames 0..31 fuzzed */
static unsigned int pool_l2;		/* PD index that reaches the pool in a 1 GiB page */
static struct aspace roots[NR_ROOTS];
static int cur_root;
static u64 *user_arg;			/* the kernel's view of USER_ARG_VA's frame */
static u64 phys_mask;			/* address bits below MAXPHYADDR */
static bool gbpages;
static u64 rng_state, op_index, checksum;
static bool tracing;

/* ---- randomness and the log ---- */

static u64 rnd(u64 n)
{
	return kl_rand64(&rng_state) % n;
}

static void observe(u64 v)
{
	checksum = kl_hash(checksum, v);
}

/* ---- entries ---- */

static ulong pool_frame(unsigned int i)
{
	return pool + i * PAGE_SIZE;
}

static bool in_pool(u64 gpa)
{
	return gpa >= pool && gpa < pool_frame(POOL_FRAMES);
}

static bool pse(void)
{
	return KL_PAGING_LEVELS != 2 || (read_cr4() & CR4_PSE);
}

/* A random entry; the same value may serve at any level, as leaf or table. */
static pte_t random_entry(void)
{
	u64 e = 0, k = rnd(100);

	e |= rnd(100) < 88 ? PTE_P : 0;
	e |= rnd(2) ? PTE_W : 0;
	e |= rnd(100) < 65 ? PTE_U : 0;
	e |= rnd(8) == 0 ? PTE_PWT : 0;
	e |= rnd(8) == 0 ? PTE_PCD : 0;
	e |= rnd(4) == 0 ? PTE_A : 0;
	e |= rnd(4) == 0 ? PTE_D : 0;
	e |= rnd(100) < 15 ? PTE_PS : 0;
	e |= rnd(4) == 0 ? PTE_NX : 0;
	e |= rnd(8) << 9;				/* available */
	if (KL_PAGING_LEVELS == 4 && rnd(16) == 0)
		e |= rnd(128) << 52;			/* available in long mode only */
	if (KL_PAGING_LEVELS == 2) {
		/*
		 * Pool entries are only ever PTEs here: they may name the device
		 * with or without PS (PAT in a PTE). A window PDE is a table
		 * without PS (random_window_entry keeps it off the device) or a
		 * 4 MiB page with it: of the pool, of gpa 0, of the device, or
		 * with reserved bit 21.
		 */
		if (k < 12)
			e |= MMIO_GPA;
		else if (!(e & PTE_PS))
			e |= k < 95 ? pool_frame(rnd(POOL_FRAMES)) : 0;
		else if (k < 60)
			e |= pool | (rnd(10) == 0 ? PTE_PAT_LARGE : 0);
		else if (k < 80)
			e |= 0;
		else
			e |= pool | 1ULL << 21;
		return (pte_t)e;
	}
	if (e & PTE_PS) {
		/* A leaf at level 2 or 3, or PAT at level 1, or reserved at 4. */
		if (k < 50)
			e |= pool | (rnd(10) == 0 ? PTE_PAT_LARGE : 0);
		else if (k < 65)
			e |= pool_frame(rnd(POOL_FRAMES));	/* misaligned: reserved bits */
		else if (k < 82)
			e |= 0;					/* gpa 0: a large page of RAM */
		else
			e |= MMIO_GPA;				/* outside RAM */
	} else {
		/* Never MMIO without PS: no walk may read a table from a device. */
		e |= k < 95 ? pool_frame(rnd(POOL_FRAMES)) : 0;
	}
	if (rnd(100) < 3)				/* reserved: above MAXPHYADDR */
		e |= ~phys_mask & PTE_ADDR_MASK & (1ULL << (51 - rnd(4)));
	return (pte_t)e;
}

/*
 * Random entry e made fit for the window. PAE PDPTEs take only what a CR3
 * load accepts: a pool frame or nothing, PWT/PCD and the available bits.
 * A 2-level PDE without PS names a table: never one on the device. (The
 * 4-level window takes e as it is, drawing nothing more: seeds keep their
 * meaning across versions.)
 */
static pte_t window_value(pte_t e)
{
	if (KL_PAGING_LEVELS == 3)
		return (rnd(8) ? PTE_P : 0) | pool_frame(rnd(POOL_FRAMES)) |
		       (rnd(8) == 0 ? PTE_PWT : 0) | (rnd(8) == 0 ? PTE_PCD : 0) |
		       rnd(8) << 9;
	if (KL_PAGING_LEVELS == 2 && !(e & PTE_PS) && (e & PTE_ADDR_MASK) == MMIO_GPA)
		e = (e & ~(pte_t)PTE_ADDR_MASK) | pool_frame(rnd(POOL_FRAMES));
	return e;
}

static unsigned int random_window_index(void)
{
	return WINDOW_ENTRIES > 1 ? rnd(WINDOW_ENTRIES) : 0;
}

static pte_t *window_entry(int root, unsigned int i)
{
	return &((pte_t *)roots[root].root)[WINDOW_FIRST + i];
}

/* ---- the guest's own walk: where will an access land? ---- */

struct walk {
	int levels;		/* entries on the path */
	pte_t *entry[4];	/* [0] is the top-level entry */
	int leaf_level;		/* 1..3, or 0: no translation */
	u64 base;		/* the leaf's frame */
};

static pte_t *table_at(pte_t e)
{
	u64 pa = e & PTE_ADDR_MASK;

	/* Anything else faults on reserved bits before the CPU reads it. */
	return in_pool(pa) || pa == 0 ? (pte_t *)(ulong)pa : NULL;
}

static u64 large_size(int level)
{
#if KL_PAGING_LEVELS == 4
	if (level == 3)
		return HUGE_PAGE_SIZE;
#endif
	return level == 2 ? LARGE_PAGE_SIZE : PAGE_SIZE;
}

/* Does a walk stop at this present entry as a leaf (or a reserved PS)? */
static bool walk_stops(pte_t e, int level)
{
	if (level == 1)
		return true;
	if (!(e & PTE_PS))
		return false;
	if (KL_PAGING_LEVELS == 4)
		return true;	/* a large page, or (PML4E) reserved: either way the walk ends */
	if (KL_PAGING_LEVELS == 3)
		return level == 2;			/* PDPTEs have no PS */
	return pse();
}

static void soft_walk(ulong root, ulong va, struct walk *w)
{
	pte_t *table = (pte_t *)root;

	w->levels = 0;
	w->leaf_level = 0;
	for (int level = KL_PAGING_LEVELS; level >= 1; level--) {
		unsigned int idx = (va >> (12 + PT_INDEX_BITS * (level - 1))) & (PT_ENTRIES - 1);
		pte_t e = table[idx];

		w->entry[w->levels++] = &table[idx];
		if (!(e & PTE_P) || (KL_PAGING_LEVELS == 4 && level == 4 && (e & PTE_PS)))
			return;
		if (walk_stops(e, level)) {
			u64 size = large_size(level);

			w->leaf_level = level;
			w->base = e & PTE_ADDR_MASK & ~(size - 1);
			if (KL_PAGING_LEVELS == 2 && level == 2)
				w->base = e & 0xffc00000ULL;	/* PSE-36 bits: reserved or 0 */
			return;
		}
		table = table_at(e);
		if (!table)
			return;
	}
}

static ulong fuzz_va(unsigned int l3, unsigned int l2, unsigned int l1, ulong off)
{
	ulong va = FUZZ_VA | (ulong)l2 << (12 + PT_INDEX_BITS) | (ulong)l1 << 12 | off;

#if FUZZ_TOP == 3
	va |= (ulong)l3 << (12 + 2 * PT_INDEX_BITS);
#else
	(void)l3;
#endif
	return va;
}

/*
 * Pick the access; steer it so that writes and fetches land in the pool
 * (or, for writes, the MMIO device) and reads land in the pool, the device
 * or frame 0 (zeros). The hardware then decides whether it faults.
 */
static ulong steer(int root, enum access_kind *kind, struct walk *w)
{
	unsigned int l3 = FUZZ_TOP == 3 ? rnd(4) : 0, l2 = rnd(4), l1 = rnd(4);
	ulong off = *kind == FETCH ? PAGE_SIZE - 1 : rnd(5) * 8;
	ulong va;
	u64 gpa;

	if (off == 32)				/* the RET byte's word: reads only */
		off = *kind == READ ? PAGE_SIZE - 8 : 0;
	va = fuzz_va(l3, l2, l1, off);
	soft_walk(roots[root].root, va, w);
	if (!w->leaf_level)
		return va;				/* it will fault */
	if (w->leaf_level == 3 && w->base == 0)
		l2 = pool_l2;				/* inside 1 GiB of RAM: the pool */
	if (w->leaf_level >= 2 && w->base != pool)
		l1 = 0;
	va = fuzz_va(l3, l2, l1, off);
	gpa = w->leaf_level == 1 ? w->base + off : w->base + (va & (large_size(w->leaf_level) - 1));
	if (*kind == FETCH && !in_pool(gpa)) {
		*kind = READ;
		va -= 7;				/* an aligned word in that page */
		gpa -= 7;
	}
	if (*kind == WRITE && !in_pool(gpa) && (gpa & ~(PAGE_SIZE - 1)) != MMIO_GPA)
		*kind = READ;
	return va;
}

/* ---- operations ---- */

/* One word, as the CPU accesses it in one instruction. */
static int probe_read_word(ulong va, u64 *out)
{
#if KL_PAGING_LEVELS == 4
	return probe_read64(va, out);
#else
	u32 v = 0;
	int vector = probe_read32(va, &v);

	*out = v;
	return vector;
#endif
}

static int probe_write_word(ulong va, u64 value)
{
#if KL_PAGING_LEVELS == 4
	return probe_write64(va, value);
#else
	return probe_write32(va, (u32)value);
#endif
}

static void flush_tlb(void)
{
#ifdef MMUFUZZ_SMP
	kl_tlb_shootdown(KL_FLUSH_ALL);		/* here, and on the partner */
#else
	write_cr3(read_cr3());
#endif
}

#define trace(...) do {							\
	if (tracing) {							\
		char line_[200];					\
									\
		kl_snprintf(line_, sizeof(line_), __VA_ARGS__);		\
		kl_printf("op %llu: %s\n", (unsigned long long)op_index, line_); \
	}								\
} while (0)

USER_CODE void mmufuzz_user(u64 arg)
{
	ulong va = arg & ((1ULL << 48) - 1);

	/* Accesses are one word: a 64-bit access in 32-bit code would be two. */
	switch (arg >> 56) {
	case READ:
		user_exit((long)*(volatile ulong *)va);
	case WRITE:
		*(volatile ulong *)va = *(volatile ulong *)USER_ARG_VA;
		user_exit(0);
	default:
		((void (*)(void))va)();
		user_exit(0);
	}
}

static void access(void)
{
	enum access_kind kind = rnd(100) < 45 ? READ : rnd(100) < 60 ? WRITE : FETCH;
	bool user = rnd(3) == 0, faulted;
	u64 value = random_entry(), got = 0;
	struct walk w;
	ulong va = steer(cur_root, &kind, &w);
	int vector;

	/*
	 * The path this access takes, read before it: the access itself may
	 * store into its own tables, and the path after the store can hold an
	 * entry that only a faulting walk touched (whose A is up to the CPU).
	 */
	soft_walk(roots[cur_root].root, va, &w);

	if (user) {
		*user_arg = value;
		got = (ulong)user_run(USER_VA(mmufuzz_user), KL_USER_STACK_VA + PAGE_SIZE - 8,
				      va | (u64)kind << 56, &faulted);
		vector = faulted ? kl_last_fault.vector : NO_FAULT;
		if (kind != READ)
			got = 0;
	} else if (kind == READ) {
		vector = probe_read_word(va, &got);
	} else if (kind == WRITE) {
		vector = probe_write_word(va, value);
	} else {
		vector = probe_exec(va);
	}
	observe(kind | (u64)user << 4 | (u64)va << 8);
	if (vector != NO_FAULT) {
		u64 error = kl_last_fault.error;

		if (error & PFERR_RSVD)
			error &= ~(u64)PFERR_P;		/* QEMU's NPT leaves P out */
		observe((u64)vector << 32 | error);
		observe(kl_last_fault.cr2);
		trace("%s %s %llx -> #%d err %llx cr2 %llx", user ? "cpl3" : "cpl0",
		      kind_names[kind], (unsigned long long)va, vector,
		      (unsigned long long)error, (unsigned long long)kl_last_fault.cr2);
		if (kind == WRITE)
			flush_tlb();
		return;
	}
	got &= ~PTE_A;
	observe(got);
	/* The walk that succeeded: A at every level (PAE's PDPTE has none), D at the leaf. */
	for (int i = KL_PAGING_LEVELS == 3; i < w.levels; i++)
		observe(*w.entry[i] & (i == w.levels - 1 ? PTE_A | PTE_D : PTE_A));
	trace("%s %s %llx %s %llx, leaf %llx = %llx", user ? "cpl3" : "cpl0", kind_names[kind],
	      (unsigned long long)va, kind == WRITE ? ":=" : "->",
	      (unsigned long long)(kind == WRITE ? value : got),
	      (unsigned long long)(ulong)w.entry[w.levels - 1],
	      (unsigned long long)*w.entry[w.levels - 1]);
	if (kind == WRITE)
		flush_tlb();			/* the write may have changed a table */
}

static void write_entry(void)
{
	pte_t value = random_entry(), *e;

	if (rnd(8) == 0) {
		e = window_entry(rnd(NR_ROOTS), random_window_index());
		value = window_value(value);
	} else {
		e = (pte_t *)pool_frame(rnd(POOL_FRAMES)) + rnd(4);
	}
	write_pte(e, value);
	flush_tlb();
	observe(value);
	trace("pte at %llx := %llx", (unsigned long long)(ulong)e, (unsigned long long)value);
}

/*
 * Paging off, a physical read and a page-table write, paging on again
 * (which flushes everything). The values are drawn first: nothing but the
 * accesses themselves runs with paging off.
 */
static void paging_off_op(void)
{
	pte_t *e = (pte_t *)pool_frame(rnd(POOL_FRAMES)) + rnd(4), value = random_entry();
	volatile u64 *src = (u64 *)pool_frame(rnd(POOL_FRAMES)) + rnd(4);
	ulong cr0 = read_cr0();
	u64 seen;

	write_cr0(cr0 & ~CR0_PG);
	seen = *src;
	write_pte(e, value);
	write_cr0(cr0);
	observe(seen & ~PTE_A);
	observe(value);
	trace("paging off: read %llx -> %llx, pte at %llx := %llx, paging on",
	      (unsigned long long)(ulong)src, (unsigned long long)(seen & ~PTE_A),
	      (unsigned long long)(ulong)e, (unsigned long long)value);
}

static void control_op(void)
{
	u64 k = rnd(100);

	if (k < 40) {
		ulong va = fuzz_va(rnd(4), rnd(4), rnd(4), 0);

		invlpg(va);
		trace("invlpg %llx", (unsigned long long)va);
	} else if (KL_PAGING_LEVELS != 4 && k >= 62 && k < 70) {
		paging_off_op();
	} else if (k < 70) {
		cur_root = rnd(NR_ROOTS);
		aspace_switch(&roots[cur_root]);
		trace("cr3 := space %d", cur_root);
	} else if (k < 82) {
		write_cr0(read_cr0() ^ CR0_WP);
		flush_tlb();
		trace("cr0.wp := %d", !!(read_cr0() & CR0_WP));
	} else if (k < 91 && KL_PAGING_LEVELS != 2) {	/* no NX in 2-level */
		wrmsr(MSR_EFER, rdmsr(MSR_EFER) ^ EFER_NXE);
		flush_tlb();
		trace("efer.nxe := %d", !!(rdmsr(MSR_EFER) & EFER_NXE));
	} else {
		write_cr4(read_cr4() & ~CR4_PGE);
		write_cr4(read_cr4() | CR4_PGE);
		trace("cr4.pge off and on");
	}
	observe(0x100 + k / 10);
}

#ifdef MMUFUZZ_SMP
/* ---- the partner CPU (mmufuzz-smp) ---- */

enum partner_kind { P_READ = READ, P_WRITE = WRITE, P_SWITCH = 8, P_STOP };

/* CPU 0 fills in a request and bumps seq; CPU 1 answers and sets ack to seq. */
static struct {
	volatile u64 seq, ack;
	int kind, root;
	ulong va;
	u64 value;
	int vector;
	u64 error, cr2, got;
} mbox;
static int partner_root;

static void partner(int cpu, void *arg)
{
	u64 seen = 0;

	(void)cpu, (void)arg;
	write_cr3(roots[partner_root].root);
	for (;;) {
		while (__atomic_load_n(&mbox.seq, __ATOMIC_ACQUIRE) == seen)
			asm volatile("pause");	/* interrupts on: shootdowns come in here */
		seen = mbox.seq;
		if (mbox.kind == P_STOP) {
			write_cr3(kl_kernel_as.root);
			__atomic_store_n(&mbox.ack, seen, __ATOMIC_RELEASE);
			return;
		}
		mbox.vector = NO_FAULT;
		mbox.got = 0;
		if (mbox.kind == P_SWITCH) {
			write_cr3(roots[mbox.root].root);
		} else {
			if (mbox.kind == P_READ)
				mbox.vector = probe_read_word(mbox.va, &mbox.got);
			else
				mbox.vector = probe_write_word(mbox.va, mbox.value);
			if (mbox.vector != NO_FAULT) {
				mbox.error = kl_last_fault.error;
				mbox.cr2 = kl_last_fault.cr2;
			} else if (mbox.kind == P_WRITE) {
				write_cr3(read_cr3());	/* it may have changed a table */
			}
		}
		__atomic_store_n(&mbox.ack, seen, __ATOMIC_RELEASE);
	}
}

static void partner_request(int kind)
{
	u64 seq = mbox.seq + 1;

	mbox.kind = kind;
	__atomic_store_n(&mbox.seq, seq, __ATOMIC_RELEASE);
	while (__atomic_load_n(&mbox.ack, __ATOMIC_ACQUIRE) != seq)
		asm volatile("pause");
}

/* After each op of CPU 0's: one of the partner's, drawn here, its outcome in the log. */
static void partner_op(void)
{
	enum access_kind kind = rnd(100) < 55 ? READ : WRITE;
	struct walk w;
	u64 value;

	if (rnd(100) < 15) {
		partner_root = rnd(NR_ROOTS);
		mbox.root = partner_root;
		partner_request(P_SWITCH);
		observe(0x300 + partner_root);
		trace("cpu1: cr3 := space %d", partner_root);
		return;
	}
	value = random_entry();
	mbox.va = steer(partner_root, &kind, &w);
	mbox.value = value;
	soft_walk(roots[partner_root].root, mbox.va, &w);
	partner_request(kind);
	observe(0x400 | kind | (u64)mbox.va << 8);
	if (mbox.vector != NO_FAULT) {
		u64 error = mbox.error & ~(mbox.error & PFERR_RSVD ? (u64)PFERR_P : 0);

		observe((u64)mbox.vector << 32 | error);
		observe(mbox.cr2);
		trace("cpu1: %s %llx -> #%d err %llx cr2 %llx", kind_names[kind],
		      (unsigned long long)mbox.va, mbox.vector, (unsigned long long)error,
		      (unsigned long long)mbox.cr2);
		return;
	}
	observe(mbox.got & ~PTE_A);
	for (int i = 0; i < w.levels; i++)
		observe(*w.entry[i] & (i == w.levels - 1 ? PTE_A | PTE_D : PTE_A));
	trace("cpu1: %s %llx %s %llx", kind_names[kind], (unsigned long long)mbox.va,
	      kind == WRITE ? ":=" : "->",
	      (unsigned long long)(kind == WRITE ? value : mbox.got & ~PTE_A));
	if (kind == WRITE)
		flush_tlb();			/* CPU 0's view of what CPU 1 wrote */
}
#endif

/* ---- set-up ---- */

static void setup(void)
{
	u32 a, b, c, d;
	ulong arg_frame = page_alloc();

	cpuid(0x80000008, &a, &b, &c, &d);
	phys_mask = ((1ULL << (a & 0xff)) - 1) & PTE_ADDR_MASK;
	cpuid(0x80000001, &a, &b, &c, &d);
	gbpages = d & (1U << 26);
	pool = page_alloc_large();
	pool_l2 = (pool >> 21) & 511;
	for (unsigned int i = 0; i < POOL_FRAMES; i++) {
		pte_t *t = (pte_t *)pool_frame(i);

		for (int j = 0; j < 4; j++)
			t[j] = random_entry();
		((u8 *)t)[PAGE_SIZE - 1] = RET_OPCODE;
	}
	user_arg = (u64 *)arg_frame;
	for (int r = 0; r < NR_ROOTS; r++) {
		aspace_init(&roots[r]);
		aspace_map_user_text(&roots[r]);
		pt_map(roots[r].root, KL_USER_STACK_VA, page_alloc(), PTE_P | PTE_W | PTE_U);
		pt_map(roots[r].root, USER_ARG_VA, arg_frame, PTE_P | PTE_U);
		for (unsigned int i = 0; i < WINDOW_ENTRIES; i++)
			write_pte(window_entry(r, i), window_value(random_entry()));
	}
	cur_root = 0;
	aspace_switch(&roots[0]);
}

int workload_main(void)
{
	u64 ops = p_ops.value;

	rng_state = p_seed.value;
#ifdef MMUFUZZ_SMP
	if (kl_smp_start() != 2)
		kl_panic("mmufuzz-smp runs on two CPUs (--vcpus 2), not %d", kl_ncpus());
#endif
	setup();
#ifdef MMUFUZZ_SMP
	kl_smp_run(partner, NULL);
#endif
	kl_printf("mmufuzz: seed %llu, %llu ops, MAXPHYADDR mask %llx, 1 GiB pages %s\n",
		  (unsigned long long)p_seed.value, (unsigned long long)ops,
		  (unsigned long long)phys_mask, gbpages ? "yes" : "no");
	kl_phase_begin();
	for (op_index = 1; op_index <= ops; op_index++) {
		u64 k = rnd(100);

		tracing = p_trace.value && op_index >= p_trace.value;
		if (k < 60)
			access();
		else if (k < 80)
			write_entry();
		else
			control_op();
#ifdef MMUFUZZ_SMP
		partner_op();
#endif
		if (op_index % CHECKPOINT_OPS == 0 || op_index == ops)
			kl_printf("checkpoint %llu %016llx\n", (unsigned long long)op_index,
				  (unsigned long long)checksum);
	}
	write_cr0(read_cr0() | CR0_WP);
	if (KL_PAGING_LEVELS != 2)
		wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_NXE);
	aspace_switch(&kl_kernel_as);
#ifdef MMUFUZZ_SMP
	partner_request(P_STOP);
	kl_smp_wait();
#endif
	kl_phase_end(ops, checksum);
	return 0;
}
