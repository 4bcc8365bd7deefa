// SPDX-License-Identifier: GPL-2.0
/*
 * Secondary CPUs, IPIs and TLB shootdown (64-bit images).
 *
 * Start-up is a PC's: CPU 0 copies the real-mode trampoline (smp_tramp.S)
 * to KL_TRAMP_PA and, one CPU at a time, fills in its stack and per-CPU
 * area, sends INIT and then a Startup IPI with vector KL_TRAMP_PA >> 12
 * through its local APIC, and waits until the new CPU says it is online.
 * A started CPU loads the shared GDT and IDT, points GS at its struct
 * kl_cpu (kl_cpu_id reads it), switches its APIC on and idles: HLT until
 * an IPI, then any function kl_smp_run left for it.
 *
 * Shootdown is the textbook one (and Linux's, in miniature): change the
 * PTE, INVLPG here, send KL_VEC_SHOOTDOWN to every other CPU and spin until
 * each has run INVLPG and cleared its bit. Every APIC access is an MMIO
 * exit to the harness's APIC; that cost belongs to the measurement.
 */
#include "rt.h"

#if KL_PAGING_LEVELS == 4

#define KL_TRAMP_PA	0x8000UL
#define LAPIC_BASE	0xfee00000UL
#define APIC_ID		0x20
#define APIC_EOI	0xb0
#define APIC_SVR	0xf0
#define APIC_ICR	0x300
#define APIC_ICR2	0x310
#define ICR_INIT	(5U << 8)
#define ICR_STARTUP	(6U << 8)
#define ICR_LEVEL_ASSERT (1U << 14)
#define ICR_OTHERS	(3U << 18)
#define MSR_GS_BASE	0xc0000101

struct kl_cpu {
	int id;			/* first: kl_cpu_id reads %gs:0 */
	volatile int online;
	kl_cpu_fn fn;		/* work from kl_smp_run, NULL when idle */
	void *arg;
	volatile u64 work_gen, done_gen;
};

extern char kl_tramp_start[], kl_tramp_end[];
extern u64 kl_tramp_cr3, kl_tramp_stack, kl_tramp_entry, kl_tramp_arg;

static struct kl_cpu cpus[KL_MAX_CPUS];
static int ncpus = 1;
static volatile u64 work_gen;
static volatile u32 shootdown_pending;	/* CPUs yet to ack, one bit each */
static volatile ulong shootdown_va;
static struct kl_spinlock shootdown_lock;
u64 kl_shootdown_ipis;

static volatile u32 *apic(u32 reg)
{
	return (volatile u32 *)(LAPIC_BASE + reg);
}

static void send_ipi(u32 dest, u32 icr)
{
	*apic(APIC_ICR2) = dest << 24;
	*apic(APIC_ICR) = icr;
}

int kl_ncpus(void)
{
	return ncpus;
}

int kl_cpu_id(void)
{
	int id;

	asm volatile("movl %%gs:0, %0" : "=r"(id));
	return id;
}

static void cpu_enter(struct kl_cpu *c)
{
	wrmsr(MSR_GS_BASE, (u64)c);
	*apic(APIC_SVR) = 0x100 | KL_VEC_SPURIOUS;	/* APIC on */
}

void kl_irq(int vector)
{
	int me = kl_cpu_id();

	switch (vector) {
	case KL_VEC_SHOOTDOWN:
		if (shootdown_va == KL_FLUSH_ALL)
			write_cr3(read_cr3());
		else
			invlpg(shootdown_va);
		__atomic_and_fetch(&shootdown_pending, ~(1U << me), __ATOMIC_RELEASE);
		break;
	case KL_VEC_WAKE:
		break;		/* the idle loop looks for work */
	case KL_VEC_SPURIOUS:
		return;		/* no EOI for the spurious vector */
	default:
		kl_panic("CPU %d: unexpected interrupt vector %d", me, vector);
	}
	*apic(APIC_EOI) = 0;
}

/* A secondary CPU, from the trampoline: long mode on the kernel's tables. */
static void __attribute__((noreturn)) ap_entry(struct kl_cpu *c)
{
	kl_load_tables();
	cpu_enter(c);
	__atomic_store_n(&c->online, 1, __ATOMIC_RELEASE);
	for (;;) {
		u64 gen;

		asm volatile("cli");
		gen = work_gen;
		if (gen == c->done_gen) {
			asm volatile("sti; hlt");	/* STI's shadow covers HLT: no lost wake-up */
			continue;
		}
		asm volatile("sti");
		c->fn(c->id, c->arg);
		__atomic_store_n(&c->done_gen, gen, __ATOMIC_RELEASE);
	}
}

static void start_cpu(int id)
{
	struct kl_cpu *c = &cpus[id];
	u8 *tramp = (u8 *)KL_TRAMP_PA;
	u64 t0;

	c->id = id;
	*(u64 *)(tramp + ((char *)&kl_tramp_cr3 - kl_tramp_start)) = read_cr3();
	/* One page of stack: the CPU runs kl_smp_run's functions and its interrupts there. */
	*(u64 *)(tramp + ((char *)&kl_tramp_stack - kl_tramp_start)) = page_alloc() + PAGE_SIZE;
	*(u64 *)(tramp + ((char *)&kl_tramp_entry - kl_tramp_start)) = (u64)ap_entry;
	*(u64 *)(tramp + ((char *)&kl_tramp_arg - kl_tramp_start)) = (u64)c;
	send_ipi(id, ICR_INIT | ICR_LEVEL_ASSERT);
	send_ipi(id, ICR_STARTUP | (u32)(KL_TRAMP_PA >> 12));
	for (t0 = rdtsc(); !__atomic_load_n(&c->online, __ATOMIC_ACQUIRE);)
		if (rdtsc() - t0 > 100000000000ULL)
			kl_panic("CPU %d did not come up after its Startup IPI", id);
}

int kl_smp_start(void)
{
	int want = kl_boot->nr_cpus ? (int)kl_boot->nr_cpus : 1;

	if (want > KL_MAX_CPUS)
		kl_panic("%d CPUs: the runtime takes %d", want, KL_MAX_CPUS);
	/*
	 * The APIC page: uncached MMIO in the shared identity slot. No NX: a
	 * workload may turn EFER.NXE off (mmufuzz-smp does), which makes NX a
	 * reserved bit, and it must still send IPIs.
	 */
	pt_map(kl_kernel_as.root, LAPIC_BASE, LAPIC_BASE, PTE_P | PTE_W | PTE_PCD | PTE_PWT);
	cpus[0].id = 0;
	cpus[0].online = 1;
	cpu_enter(&cpus[0]);
	if ((*apic(APIC_ID) >> 24) != 0)
		kl_panic("the boot CPU's APIC ID is %u, not 0", *apic(APIC_ID) >> 24);
	memcpy((void *)KL_TRAMP_PA, kl_tramp_start, kl_tramp_end - kl_tramp_start);
	for (int id = 1; id < want; id++)
		start_cpu(id);
	ncpus = want;
	asm volatile("sti");
	return ncpus;
}

void kl_smp_run(kl_cpu_fn fn, void *arg)
{
	u64 gen = work_gen + 1;

	for (int i = 1; i < ncpus; i++) {
		cpus[i].fn = fn;
		cpus[i].arg = arg;
	}
	__atomic_store_n(&work_gen, gen, __ATOMIC_RELEASE);
	if (ncpus > 1)
		send_ipi(0, ICR_OTHERS | KL_VEC_WAKE);
}

void kl_smp_wait(void)
{
	for (int i = 1; i < ncpus; i++)
		while (__atomic_load_n(&cpus[i].done_gen, __ATOMIC_ACQUIRE) != work_gen)
			asm volatile("pause");
}

void kl_tlb_shootdown(ulong va)
{
	u32 others = ((1U << ncpus) - 1) & ~(1U << kl_cpu_id());

	if (va == KL_FLUSH_ALL)
		write_cr3(read_cr3());
	else
		invlpg(va);
	if (!others)
		return;
	kl_spin_lock(&shootdown_lock);
	shootdown_va = va;
	__atomic_store_n(&shootdown_pending, others, __ATOMIC_RELEASE);
	send_ipi(0, ICR_OTHERS | KL_VEC_SHOOTDOWN);
	kl_shootdown_ipis++;
	while (__atomic_load_n(&shootdown_pending, __ATOMIC_ACQUIRE))
		asm volatile("pause");
	kl_spin_unlock(&shootdown_lock);
}

#endif
