/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kvmlab guest runtime: a tiny kernel that each workload links
 * against. It gives a workload what an OS kernel would: descriptor tables,
 * exception handling, a physical page allocator, page tables, address
 * spaces with CPL3 code and system calls, and a line to the harness.
 *
 * It is built in three paging formats, one image each (workloads/README.md):
 * 4-level long mode (x86-64 code, NAME.elf), and 32-bit protected mode with
 * PAE (NAME-pae.elf) or 2-level tables (NAME-2level.elf). Workloads written
 * against the types below (ulong for addresses, pte_t for entries) build in
 * every format.
 *
 * A workload defines `int workload_main(void)`; its return value is the
 * exit status reported to the harness (0 = success).
 */
#ifndef KVMLAB_RT_H
#define KVMLAB_RT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <kvmlab/guest_abi.h>

typedef uint64_t u64;
typedef uint32_t u32;
typedef uint16_t u16;
typedef uint8_t u8;
typedef unsigned long ulong;	/* a virtual or physical address: 32 or 64 bits */

#if defined(__x86_64__)
#define KL_PAGING_LEVELS	4
#define KL_PAGING_NAME		"4level"
#elif defined(KL_PAGING_PAE)
#define KL_PAGING_LEVELS	3
#define KL_PAGING_NAME		"pae"
#else
#define KL_PAGING_LEVELS	2
#define KL_PAGING_NAME		"2level"
#endif

#define PAGE_SIZE	4096UL

#if KL_PAGING_LEVELS == 2
typedef u32 pte_t;		/* 1024 entries of 4 bytes per table */
#define PT_INDEX_BITS	10
#define LARGE_PAGE_SIZE	(4UL << 20)	/* a PDE with PS, under CR4.PSE */
#else
typedef u64 pte_t;		/* 512 entries of 8 bytes per table */
#define PT_INDEX_BITS	9
#define LARGE_PAGE_SIZE	(2UL << 20)
#endif
#define PT_ENTRIES	(1U << PT_INDEX_BITS)
#if KL_PAGING_LEVELS == 4
#define HUGE_PAGE_SIZE	(1UL << 30)	/* a PDPTE with PS */
#endif

/* Page-table entry bits (AMD64 APM vol. 2, 5.3 and 5.4). */
#define PTE_P		(1ULL << 0)
#define PTE_W		(1ULL << 1)
#define PTE_U		(1ULL << 2)
#define PTE_PWT		(1ULL << 3)
#define PTE_PCD		(1ULL << 4)
#define PTE_A		(1ULL << 5)
#define PTE_D		(1ULL << 6)
#define PTE_PS		(1ULL << 7)
#define PTE_G		(1ULL << 8)
#if KL_PAGING_LEVELS == 2
#define PTE_NX		0ULL		/* no NX without PAE: the bit does not exist */
#define PTE_ADDR_MASK	0xfffff000ULL
#else
#define PTE_NX		(1ULL << 63)
#define PTE_ADDR_MASK	0x000ffffffffff000ULL
#endif
/* Software bit (ignored by hardware): the runtime's copy-on-write marker. */
#define PTE_COW		(1ULL << 9)

/* #PF error code bits. */
#define PFERR_P		(1U << 0)
#define PFERR_W		(1U << 1)
#define PFERR_U		(1U << 2)
#define PFERR_RSVD	(1U << 3)
#define PFERR_ID	(1U << 4)

/* Exception vectors the workloads look for. */
#define VEC_DE		0
#define VEC_BP		3
#define VEC_UD		6
#define VEC_GP		13
#define VEC_PF		14
#define NO_FAULT	(-1)

/*
 * Virtual address map, in "slots" of the top-level table. Slot 0 is the
 * kernel's identity map of RAM (large pages, global); slot 1 is a kernel
 * area that workloads map with 4 KiB pages and that every address space
 * shares; the slots above are per address space and user-accessible.
 *   4-level: a slot is a PML4E (512 GiB); user text at 1 TiB.
 *   PAE:     a slot is a PDPTE (1 GiB); user text at 2 GiB.
 *   2-level: the same 1 GiB ranges, 256 PDEs each; user text at 2 GiB.
 */
#if KL_PAGING_LEVELS == 4
#define KL_KERNEL_AREA_VA	0x0000008000000000UL	/* 512 GiB: slot 1 */
#define KL_USER_TEXT_VA		0x0000010000000000UL	/* 1 TiB: slot 2 */
#define KL_USER_DATA_VA		0x0000010040000000UL	/* user data, heap */
#define KL_USER_STACK_VA	0x000001007fff0000UL	/* one stack page */
#define KL_IDENTITY_MAX		(512UL << 30)		/* RAM the identity map covers */
#else
#define KL_KERNEL_AREA_VA	0x40000000UL
#define KL_USER_TEXT_VA		0x80000000UL
#define KL_USER_DATA_VA		0x90000000UL
#define KL_USER_STACK_VA	0xbfff0000UL
#define KL_IDENTITY_MAX		(1UL << 30)
#endif

/* ---- parameters (see struct kl_param in guest_abi.h) ---- */
#define KL_PARAM(var, pname, pdef, pmin, pmax, phelp)			\
	static volatile struct kl_param var				\
	__attribute__((section(KL_PARAM_SECTION), used, aligned(8))) = {	\
		.name = pname, .help = phelp, .def = (pdef),		\
		.min = (pmin), .max = (pmax), .value = (pdef) }

/* A tool rather than a benchmark: `--workload all` leaves it out (guest_abi.h). */
#define KL_NOT_A_BENCHMARK(why)						\
	static const char kl_tool_note[]				\
	__attribute__((section(KL_TOOL_SECTION), used)) = why

/* ---- harness line ---- */
void kl_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kl_phase_begin(void);
void kl_phase_end(u64 ops, u64 checksum);
void kl_check(const char *name, bool pass, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void kl_exit(int status) __attribute__((noreturn));
void kl_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
int kl_snprintf(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- library ---- */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
u64 kl_hash(u64 h, u64 v);	/* order-sensitive checksum step */
u64 kl_rand64(u64 *state);	/* next of a seeded pseudo-random stream */

/* ---- CPU ---- */
static inline void outl(u16 port, u32 v) { asm volatile("outl %0, %1" :: "a"(v), "Nd"(port)); }
static inline void outb(u16 port, u8 v) { asm volatile("outb %0, %1" :: "a"(v), "Nd"(port)); }
static inline u32 inl(u16 port) { u32 v; asm volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline ulong read_cr0(void) { ulong v; asm volatile("mov %%cr0, %0" : "=r"(v)); return v; }
static inline ulong read_cr2(void) { ulong v; asm volatile("mov %%cr2, %0" : "=r"(v)); return v; }
static inline ulong read_cr3(void) { ulong v; asm volatile("mov %%cr3, %0" : "=r"(v)); return v; }
static inline ulong read_cr4(void) { ulong v; asm volatile("mov %%cr4, %0" : "=r"(v)); return v; }
/*
 * The paravirtual MMU (pv.c, <kvmlab/pv_mmu.h>): when the hypervisor offers
 * it, write_pte, invlpg and write_cr3 below become operations queued in a
 * page per CPU and handed over with one hypercall. Each goes at once,
 * unless inside a lazy section: there, PTE writes and INVLPGs wait for the
 * section's end (or a CR3 write), so a section must not use the mappings
 * it makes until it ends (Linux's lazy MMU mode has the same rule), and
 * reads back the entries it wrote with read_pte, which looks in the queue.
 * Outside mmu=pv the sections do nothing.
 */
extern bool kl_pv_mmu;
void kl_pv_init(void);
void kl_pv_write_pte(ulong pte_pa, u64 v);
void kl_pv_invlpg(ulong va);
void kl_pv_write_cr3(ulong v);
void kl_pv_lazy_begin(void);
void kl_pv_lazy_end(void);
bool kl_pv_queued_pte(ulong pte_pa, u64 *v);	/* the last queued write to that entry */
void kl_pv_release(ulong table_pa);	/* the page stops being a page table */

static inline void write_cr3(ulong v)
{
	if (kl_pv_mmu)
		kl_pv_write_cr3(v);
	else
		asm volatile("mov %0, %%cr3" :: "r"(v) : "memory");
}
/*
 * The test machine's emulated nested paging (QEMU TCG) sets A, bit 5, in
 * PAE PDPTEs, where the bit is reserved; Linux KVM re-reads the PDPTEs at a
 * CR4 or CR0.PG change in PAE mode and answers #GP. So the PAE runtime
 * clears the bit, as hardware would have left it, in the same few
 * instructions as the control-register write: any TLB miss in between (the
 * first CR4 write flushes everything) has QEMU's walk set it again
 * (testmachine/README.md). The PDPT is identity-mapped, paging on or off.
 */
#if KL_PAGING_LEVELS == 3
#define KL_LOAD_CR_SCRUBBING_PDPTES(cr, v)					\
	asm volatile("mov %%cr3, %%ecx\n\t"					\
		     "and $~31, %%ecx\n\t"					\
		     "andl $~0x20, 0(%%ecx)\n\t"				\
		     "andl $~0x20, 8(%%ecx)\n\t"				\
		     "andl $~0x20, 16(%%ecx)\n\t"				\
		     "andl $~0x20, 24(%%ecx)\n\t"				\
		     "mov %0, %%" cr :: "r"(v) : "ecx", "memory")
static inline void write_cr4(ulong v) { KL_LOAD_CR_SCRUBBING_PDPTES("cr4", v); }
static inline void write_cr0(ulong v) { KL_LOAD_CR_SCRUBBING_PDPTES("cr0", v); }
#else
static inline void write_cr4(ulong v) { asm volatile("mov %0, %%cr4" :: "r"(v) : "memory"); }
static inline void write_cr0(ulong v) { asm volatile("mov %0, %%cr0" :: "r"(v) : "memory"); }
#endif
static inline void invlpg(ulong va)
{
	if (kl_pv_mmu)
		kl_pv_invlpg(va);
	else
		asm volatile("invlpg (%0)" :: "r"(va) : "memory");
}
static inline u64 rdmsr(u32 msr)
{
	u32 lo, hi;

	asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((u64)hi << 32) | lo;
}
static inline void wrmsr(u32 msr, u64 v)
{
	asm volatile("wrmsr" :: "c"(msr), "a"((u32)v), "d"((u32)(v >> 32)));
}
static inline void cpuid(u32 leaf, u32 *a, u32 *b, u32 *c, u32 *d)
{
	asm volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}
static inline u64 rdtsc(void)
{
	u32 lo, hi;

	asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((u64)hi << 32) | lo;
}
static inline pte_t read_pte(volatile pte_t *p)
{
	u64 v;

	if (kl_pv_mmu && kl_pv_queued_pte((ulong)p, &v))
		return (pte_t)v;
	return *p;
}
/*
 * Under mmu=pv one operation, whatever the width. Otherwise a PAE entry is
 * two 32-bit stores in 32-bit code: the high half first, so
 * that the entry never turns present with a stale high half (Linux's
 * set_pte does the same). The hypervisor may see either store alone.
 */
static inline void write_pte(volatile pte_t *p, pte_t v)
{
	if (kl_pv_mmu) {
		kl_pv_write_pte((ulong)p, v);	/* tables are identity-mapped: pa == va */
		return;
	}
#if KL_PAGING_LEVELS == 3
	volatile u32 *h = (volatile u32 *)p;

	h[1] = (u32)(v >> 32);
	asm volatile("" ::: "memory");
	h[0] = (u32)v;
#else
	*p = v;
#endif
}

/* ---- faults ---- */
struct kl_fault {
	int vector;
	u64 error;
	u64 cr2;
	u64 rip;
};
/* The last exception caught by a probe or a user task. */
extern struct kl_fault kl_last_fault;

/*
 * Probes touch memory in ways that may fault. Each returns NO_FAULT, or the
 * vector of the exception it caught (details in kl_last_fault).
 */
int probe_read64(ulong va, u64 *out);
int probe_write64(ulong va, u64 val);
int probe_exec(ulong va);	/* calls va; the code there must be `ret` */
int probe_div0(void);
int probe_ud2(void);
int probe_int3(void);
#if KL_PAGING_LEVELS != 4
/* 64-bit accesses are two in 32-bit code; these are one. */
int probe_read32(ulong va, u32 *out);
int probe_write32(ulong va, u32 val);
#endif
#if KL_PAGING_LEVELS == 3
int probe_load_cr3(ulong cr3);	/* #GP when a PDPTE has reserved bits set */
#endif

/*
 * A #PF handler the workload installs (e.g. demand paging, copy-on-write):
 * return true when the fault is resolved and the access should be retried.
 */
typedef bool (*kl_pf_handler)(ulong cr2, u64 error, bool user);
extern kl_pf_handler kl_pf_hook;

/* ---- physical memory ---- */
struct kl_spinlock {
	volatile u32 locked;
};

static inline void kl_spin_lock(struct kl_spinlock *l)
{
	while (__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE))
		while (l->locked)
			asm volatile("pause");
}

static inline void kl_spin_unlock(struct kl_spinlock *l)
{
	__atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE);
}
/* page_alloc and page_free are safe on any CPU; page tables are the caller's to lock. */
ulong page_alloc(void);		/* zeroed 4 KiB frame; panics when out of memory */
void page_free(ulong pa);
ulong page_alloc_large(void);	/* LARGE_PAGE_SIZE-aligned, zeroed; never freed */
u64 page_free_count(void);
void page_get(ulong pa);	/* reference counts, for sharing frames */
u32 page_put(ulong pa);		/* drops a reference; frees at zero; returns refs left */
u32 page_refs(ulong pa);
u64 kl_mem_bytes(void);

/* ---- page tables and address spaces ---- */
struct aspace {
	ulong root;		/* physical address of the top-level table (CR3) */
	struct aspace *next;	/* every live space: 2-level copies kernel PDEs into each */
};
extern struct aspace kl_kernel_as;
/* What the harness told us at boot (memory, the framebuffer if any). */
extern const struct kl_boot_info *kl_boot;

/*
 * Pointer to the entry at `level` (1 = PTE, 2 = PDE, 3 = PDPTE, 4 = PML4E)
 * that maps va; missing tables are allocated with `table_flags` when it is
 * non-zero, otherwise NULL is returned. Tables are reached through the
 * identity map, so a table's physical address is also its pointer.
 */
pte_t *pt_entry(ulong root, ulong va, int level, pte_t table_flags);
void pt_map(ulong root, ulong va, ulong pa, pte_t flags);	/* 4 KiB */
void pt_map_large(ulong root, ulong va, ulong pa, pte_t flags);	/* LARGE_PAGE_SIZE */
pte_t pt_unmap(ulong root, ulong va);			/* returns the old PTE */
pte_t *pt_leaf(ulong root, ulong va, int *level);	/* NULL when unmapped */

void aspace_init(struct aspace *as);	/* shares the kernel's slots */
void aspace_destroy(struct aspace *as);	/* frees user tables; drops frame refs */
void aspace_switch(struct aspace *as);	/* loads CR3 */
void aspace_map_user_text(struct aspace *as);

/* ---- CPL3 ---- */
/*
 * Run user code at `rip` with `rsp` in the current address space, with
 * `arg` as its one u64 argument, until it calls sys_exit (returns its
 * value, *faulted = false) or takes an exception the kernel does not
 * resolve (returns -1, *faulted = true, details in kl_last_fault).
 */
long user_run(ulong rip, ulong rsp, u64 arg, bool *faulted);

#define USER_CODE __attribute__((section(".user_text"), noinline, used))
#define USER_INLINE static inline __attribute__((always_inline))

enum { SYS_EXIT = 0, SYS_ADD3 = 1 };

/* System calls: SYSCALL in 64-bit mode, INT 0x80 in 32-bit mode (as Linux). */
USER_INLINE long user_syscall3(long nr, long a, long b, long c)
{
	long ret;

#if KL_PAGING_LEVELS == 4
	asm volatile("syscall" : "=a"(ret)
		     : "a"(nr), "D"(a), "S"(b), "d"(c)
		     : "rcx", "r11", "r8", "r9", "r10", "memory");
#else
	asm volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
#endif
	return ret;
}

USER_INLINE __attribute__((noreturn)) void user_exit(long v)
{
	user_syscall3(SYS_EXIT, v, 0, 0);
	__builtin_unreachable();
}

/*
 * Address of a symbol as an absolute value. In the 64-bit runtime kernel
 * code is linked at 1 MiB and user text at 1 TiB, too far apart for the
 * RIP-relative reference `&fn` would compile to; movabs takes a 64-bit
 * absolute address. 32-bit code is not position-independent at all.
 */
#if KL_PAGING_LEVELS == 4
#define ABS_SYM(sym)	({ ulong __v; asm("movabs $" #sym ", %0" : "=r"(__v)); __v; })
#else
#define ABS_SYM(sym)	({ ulong __v; asm("mov $" #sym ", %0" : "=r"(__v)); __v; })
#endif
#define USER_VA(fn)	ABS_SYM(fn)

#if KL_PAGING_LEVELS == 4
/*
 * Several CPUs (smp.c; 64-bit images). kl_smp_start brings up the CPUs the
 * harness gave (kl_boot->nr_cpus) with INIT and a Startup IPI each; they
 * then idle in HLT until kl_smp_run gives them a function. CPU 0 is the
 * one that ran workload_main. IPIs go through each CPU's local APIC.
 */
#define KL_MAX_CPUS		8
/* In a workload that calls kl_smp_start: it gets its local APICs (guest_abi.h). */
#define KL_SMP_WORKLOAD()						\
	static const char kl_smp_note[]					\
	__attribute__((section(KL_SMP_SECTION), used)) = "smp"
#define KL_VEC_SHOOTDOWN	240
#define KL_VEC_WAKE		241
#define KL_VEC_SPURIOUS		255
#define KL_FLUSH_ALL		(~0UL)
typedef void (*kl_cpu_fn)(int cpu, void *arg);
int kl_smp_start(void);			/* returns the number of CPUs now running */
int kl_ncpus(void);
int kl_cpu_id(void);
void kl_smp_run(kl_cpu_fn fn, void *arg);	/* on every other CPU; returns at once */
void kl_smp_wait(void);			/* until each returned from its function */
/* INVLPG va here and on every other CPU (KL_FLUSH_ALL: a CR3 reload), after their acks. */
void kl_tlb_shootdown(ulong va);
extern u64 kl_shootdown_ipis;		/* IPIs sent for shootdowns */
void kl_irq(int vector);		/* from kl_trap: vectors 32 and up */
void kl_load_tables(void);

#endif
int workload_main(void);

#endif
