// SPDX-License-Identifier: GPL-2.0
/*
 * The paravirtual MMU, guest side (<kvmlab/pv_mmu.h>; the module's side is
 * kmod/mmu-pv). At start the runtime asks CPUID for kvmlab's pv leaf; when
 * the hypervisor offers it, rt.h's write_pte, invlpg and write_cr3 come
 * here instead of storing to a page table or a control register.
 *
 * Each CPU has a page of queued operations. An operation is handed over at
 * once (one VMMCALL), unless the CPU is inside a lazy section: then PTE
 * writes and INVLPGs collect until the section ends, a CR3 write goes, or
 * the page is full — fork's dozens of PTE updates and their INVLPGs
 * become one exit. Sections nest; the outermost end submits.
 */
#include "rt.h"
#include <kvmlab/pv_mmu.h>

#if KL_PAGING_LEVELS == 4
#define PV_CPUS		KL_MAX_CPUS
#else
#define PV_CPUS		1
#endif

bool kl_pv_mmu;
static u32 hc_nr, max_ops;
static bool intel;	/* VMCALL, not AMD's VMMCALL */

/* One page per CPU: the operations first, so a batch never crosses a page. */
struct pv_queue {
	struct kl_pv_mmu_op ops[KL_PV_MMU_MAX_OPS];
	u32 n;
	u32 lazy;
} __attribute__((aligned(PAGE_SIZE)));

static struct pv_queue queues[PV_CPUS];

static struct pv_queue *mine(void)
{
#if KL_PAGING_LEVELS == 4
	return &queues[kl_ncpus() > 1 ? kl_cpu_id() : 0];
#else
	return &queues[0];
#endif
}

void kl_pv_init(void)
{
	u32 a, b, c, d, sig[3];

	cpuid(KL_CPUID_PV_BASE, &a, &sig[0], &sig[1], &sig[2]);
	if (a < KL_CPUID_PV_FEATURES || memcmp(sig, KL_CPUID_PV_SIGNATURE, 12))
		return;
	cpuid(KL_CPUID_PV_FEATURES, &a, &b, &c, &d);
	if (!(a & KL_PV_FEATURE_MMU) || c == 0)
		return;
	hc_nr = b;
	max_ops = c < KL_PV_MMU_MAX_OPS ? c : KL_PV_MMU_MAX_OPS;
	/*
	 * The hypercall instruction is the CPU vendor's, as Linux picks it:
	 * the other one would #UD and be rewritten by the hypervisor, an
	 * emulated instruction that would show in the counters.
	 */
	cpuid(0, &a, &sig[0], &sig[2], &sig[1]);
	intel = !memcmp(sig, "GenuineIntel", 12);
	kl_pv_mmu = true;
}

static void submit(struct pv_queue *q)
{
	long r;

	if (!q->n)
		return;
	/* The tables and the queue are identity-mapped: the pointer is the gpa. */
	if (intel)
		asm volatile("vmcall" : "=a"(r) : "a"((ulong)hc_nr), "b"((ulong)q->ops),
			     "c"((ulong)q->n) : "memory");
	else
		asm volatile("vmmcall" : "=a"(r) : "a"((ulong)hc_nr), "b"((ulong)q->ops),
			     "c"((ulong)q->n) : "memory");
	if (r)
		kl_panic("pv mmu: a batch of %u operations was refused (%ld)", q->n, r);
	q->n = 0;
}

static void queue(u32 op, u64 addr, u64 val, bool now)
{
	struct pv_queue *q = mine();

	q->ops[q->n++] = (struct kl_pv_mmu_op) { .op = op, .addr = addr, .val = val };
	if (now || !q->lazy || q->n == max_ops)
		submit(q);
}

void kl_pv_write_pte(ulong pte_pa, u64 v)
{
	queue(sizeof(pte_t) == 4 ? KL_PV_MMU_WRITE_PTE32 : KL_PV_MMU_WRITE_PTE, pte_pa, v, false);
}

void kl_pv_invlpg(ulong va)
{
	queue(KL_PV_MMU_INVLPG, va, 0, false);
}

void kl_pv_release(ulong table_pa)
{
	queue(KL_PV_MMU_RELEASE, table_pa, 0, false);
}

void kl_pv_write_cr3(ulong v)
{
	queue(KL_PV_MMU_SWITCH_CR3, 0, v, true);
}

bool kl_pv_queued_pte(ulong pte_pa, u64 *v)
{
	struct pv_queue *q = mine();

	for (u32 i = q->n; i-- > 0;) {
		if ((q->ops[i].op == KL_PV_MMU_WRITE_PTE || q->ops[i].op == KL_PV_MMU_WRITE_PTE32) &&
		    q->ops[i].addr == pte_pa) {
			*v = q->ops[i].val;
			return true;
		}
	}
	return false;
}

void kl_pv_lazy_begin(void)
{
	if (kl_pv_mmu)
		mine()->lazy++;
}

void kl_pv_lazy_end(void)
{
	struct pv_queue *q;

	if (!kl_pv_mmu)
		return;
	q = mine();
	if (--q->lazy == 0)
		submit(q);
}
