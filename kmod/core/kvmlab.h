/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvmlab core: the objects every part of the module shares.
 *
 * A VM is a set of memslots plus vCPUs. The vCPU keeps the architectural
 * guest state that is vendor-neutral (general registers, the guest-visible
 * control registers, the MSRs the x86 layer emulates, CPUID); the vendor
 * backend (kmod/svm) keeps the rest (segments, interrupt shadow) in its own
 * control block and turns the two into what the hardware runs. Each VM
 * runs one MMU strategy (chosen at KVM_CREATE_VM, default mmu=), behind
 * kmod/mmu's dispatch; a strategy never sees the vendor.
 *
 * Headers: core/kvmlab.h (this: objects, requests, core services),
 * mmu/mmu.h (what a strategy sees), x86/x86.h (what a vendor sees).
 * Locking: kmod/README.md, "Locking".
 */
#ifndef KVMLAB_H
#define KVMLAB_H

#include <linux/bitops.h>
#include <linux/kvm.h>
#include <linux/signal_types.h>
#include <linux/mm_types.h>
#include <linux/mutex.h>
#include <linux/kref.h>
#include <linux/types.h>
#include <linux/wait.h>
#include <kvmlab/x86.h>

#define KL_MAX_SLOTS		32
#define KL_MAX_VCPUS		8
#define KL_MAX_MCE_BANKS	32	/* as KVM_MAX_MCE_BANKS */
#define KL_MAX_CPUID		80
#define KL_MAX_MEM_BYTES	(64ULL << 30)

/* Guest register numbers, in the encoding instructions use. */
enum kl_reg {
	KL_RAX, KL_RCX, KL_RDX, KL_RBX, KL_RSP, KL_RBP, KL_RSI, KL_RDI,
	KL_R8, KL_R9, KL_R10, KL_R11, KL_R12, KL_R13, KL_R14, KL_R15,
	KL_NR_REGS
};

/* The CR4 bits a guest may set: what the shadow MMUs and SVM both handle. */
#define KL_CR4_SUPPORTED	(X86_CR4_VME | X86_CR4_PVI | X86_CR4_TSD | X86_CR4_DE | \
				 X86_CR4_PSE | X86_CR4_PAE | X86_CR4_MCE | X86_CR4_PGE | \
				 X86_CR4_PCE | X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT | \
				 X86_CR4_FSGSBASE)

/*
 * Statistics. The names (stats.c) are Linux KVM's where the meaning is the
 * same, so the harness reads both hypervisors with one list.
 */
struct kl_vm_stat {
	u64 mmu_shadow_zapped;	/* shadow table pages dropped */
	u64 mmu_pte_write;	/* guest page-table writes trapped */
	u64 mmu_flooded;
	u64 mmu_recycled;	/* dropped to stay under the shadow cap */
	u64 mmu_cache_miss;	/* shadow table had to be built */
	u64 pages_4k;		/* instant: 4 KiB translations in shadow/NPT tables */
	u64 shadow_pages;	/* instant: shadow table pages held */
	u64 shadow_pages_peak;	/* peak: the most ever held at once */
	u64 shadow_pages_alloc;
	u64 shadow_pages_freed;
	u64 pinned_pages;	/* instant: guest pages referenced by sptes */
	u64 mmu_root_hit;	/* CR3 load found its shadow root cached */
	u64 mmu_root_miss;
	u64 mmu_resync;		/* shadows brought back in sync with the guest (shadow, unsync) */
	u64 mmu_resync_checked;	/* ...entries compared with the guest's */
	u64 mmu_resync_changed;	/* ...entries found stale: updated or dropped */
	u64 mmu_unsync;		/* instant: shadow pages out of sync now (KVM's meaning) */
	u64 mmu_unsync_marks;	/* times a shadow page went out of sync */
	u64 mmu_prefetched;	/* leaves filled ahead of a fault (unsync's pte prefetch) */
	u64 pv_mmu_ops;		/* paravirtual MMU operations applied */
	u64 pv_mmu_refused;	/* paravirtual MMU batches refused (hostile or malformed) */
	u64 remote_tlb_flush_requests;	/* every vCPU asked to flush */
	u64 remote_tlb_flush;	/* ...of which some vCPU was in guest mode and kicked */
	u64 remote_tlb_kicks;	/* ...the IPIs sent (one per vCPU in guest mode elsewhere) */
	u64 dirty_wrprot;	/* writable sptes made read-only for dirty logging */
	u64 dirty_faults;	/* write faults that logged their page dirty */
};

struct kl_vcpu_stat {
	u64 exits;
	u64 io_exits;
	u64 mmio_exits;
	u64 halt_exits;
	u64 irq_exits;
	u64 pf_taken;		/* #PF intercepts */
	u64 pf_fixed;		/* ...fixed by filling a shadow entry (hidden faults) */
	u64 pf_guest;		/* ...reflected into the guest */
	u64 tlb_flush;		/* guest TLB flushes emulated (CR3 load, PGE toggle) */
	u64 invlpg;
	u64 insn_emulation;
	u64 insn_emulation_fail;
	u64 hypercalls;
	u64 cr_exits;
	u64 msr_exits;
	u64 cpuid_exits;
	u64 npf_exits;		/* nested page faults */
	u64 cpu_migrations;	/* entries on another host CPU than the last */
	u64 irq_injections;	/* external interrupts (KVM_INTERRUPT) delivered */
	u64 nmi_injections;	/* NMIs (KVM_NMI) delivered */
	u64 pv_mmu_batches;	/* paravirtual MMU hypercalls (batches) applied */
	u64 irq_window_exits;	/* the guest became interruptible (VINTR) */
	u64 request_irq_exits;	/* ...and userspace had asked to hear of it */
};

struct kl_memslot {
	bool used;
	u32 flags;
	u64 base_gfn;
	u64 npages;
	unsigned long hva;
	/*
	 * KVM_MEM_LOG_DIRTY_PAGES: bit i is gfn base_gfn + i, written since
	 * userspace last collected it. Bits are set atomically by whoever
	 * writes (a fault, the emulator); collected and cleared under
	 * vm->lock + mmu_lock (mmu/dirty.c). NULL when not logging.
	 */
	unsigned long *dirty_bitmap;
};

struct kl_mmu_ops;

struct kl_vm {
	struct kref ref;		/* the VM fd and every vCPU fd (kl_vm_get/kl_vm_put) */
	struct mm_struct *mm;		/* guest memory lives in this address space */
	struct mutex lock;		/* memslots, vCPU creation */
	struct kl_memslot slots[KL_MAX_SLOTS];
	/*
	 * Shadow and nested tables, everything a strategy keeps, and the
	 * per-VM counters (stat) change under mmu_lock; so does the vCPU
	 * array, so a strategy may walk it (to flush every vCPU) from a fault.
	 */
	struct mutex mmu_lock;
	struct kl_vcpu *vcpus[KL_MAX_VCPUS];	/* published: [0, nr_vcpus) */
	int nr_vcpus;
	const struct kl_mmu_ops *mmu;
	void *mmu_priv;
	u64 memslots_gen;		/* bumped by every memslot change */
	unsigned int nr_mmu_pages;	/* KVM_SET_NR_MMU_PAGES; 0: the strategy's default */
	unsigned int max_vcpu_ids;	/* KVM_CAP_MAX_VCPU_ID, enabled; 0: KL_MAX_VCPUS */
	bool platform_info_hidden;	/* KVM_CAP_MSR_PLATFORM_INFO disabled: RDMSR 0xce #GPs */
	/* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: KVM_DIRTY_LOG_* flags enabled (under lock) */
	u64 manual_dirty_log;
	u64 disabled_quirks;		/* KVM_CAP_DISABLE_QUIRKS2: KVM_X86_QUIRK_* turned off */
	s64 kvmclock_offset;		/* kvmclock = CLOCK_BOOTTIME + this (x86/pvclock.c) */
	atomic_t kvmclock_gen;		/* bumped by KVM_SET_CLOCK: every vCPU rewrites its record */
	/*
	 * The last host-side TSC write (vCPU creation writes 0): a write of the
	 * same value within a second joins its offset, so the vCPUs of a VM
	 * share one TSC timeline, as KVM's kvm_synchronize_tsc() keeps them
	 * (x86/msr.c). Under tsc_lock.
	 */
	spinlock_t tsc_lock;
	u64 tsc_sync_val, tsc_sync_ns;
	s64 tsc_sync_offset;
	/* KVM_CAP_X86_USER_SPACE_MSR: KVM_MSR_EXIT_REASON_* that exit to userspace */
	u32 user_space_msr_mask;
	/* KVM_X86_SET_MSR_FILTER (x86/msr.c): replaced under lock, read under RCU */
	struct kl_msr_filter __rcu *msr_filter;
	struct kl_vm_stat stat;
	struct list_head stats_node;	/* on the module's VM list (core/stats.c) */
	/* Under lock: what KVM_SET_TSS_ADDR and KVM_SET_GSI_ROUTING set (core/irq.c). */
	u64 tss_addr;
	struct kvm_irq_routing_entry *irq_routes;
	u32 nr_irq_routes;
};

/*
 * A shadow PML4 and the tables under it, owned by one vCPU (vtlb, naive
 * resync, physical mode) or one VM (nested tables). Zapping never flushes
 * the hardware TLB: the caller knows which vCPUs must.
 */
struct kl_stree {
	struct page *root;
	unsigned int nr_pages;		/* every page it holds: root, tables, tag pages */
	bool track_gpa;			/* keep the gpa each leaf maps (a tag page per PT) */
	u64 max_large;			/* the largest guest page shadowed since it was emptied */
	u64 nonleaf;			/* the bits of an entry pointing at a table */
};

struct kl_pending_event {
	bool valid;
	u8 vector;
	bool has_error;
	u32 error;
	bool is_exception;
	bool delivering;	/* the CPU was delivering it when the exit came */
};

/* The MSRs the x86 layer emulates; the vendor loads them into the hardware. */
struct kl_msrs {
	u64 star, lstar, cstar, sfmask, kernel_gs_base;
	u64 sysenter_cs, sysenter_esp, sysenter_eip;
	u64 pat;
	u64 tsc_offset;			/* guest TSC = host TSC + this */
	u64 tsc_adjust;			/* IA32_TSC_ADJUST */
	u64 misc_enable;		/* IA32_MISC_ENABLE */
	u64 power_ctl;			/* MSR_IA32_POWER_CTL */
	u64 platform_info;		/* MSR_PLATFORM_INFO, as userspace set it */
	u64 mtrr_deftype, mtrr_fixed[11], mtrr_var[16];	/* kept, not applied */
};

/*
 * Requests: work for a vCPU that someone (the MMU, often on another vCPU's
 * behalf) asks for and the vCPU does before its next entry, as Linux KVM's
 * KVM_REQ_*. Bits in vcpu->requests.
 */
enum kl_request {
	KL_REQ_TLB_FLUSH,	/* the guest's hardware TLB entries are stale */
	/*
	 * Leave KVM_RUN (KVM_EXIT_INTR, -EINTR, as for a signal) so that a
	 * memslot change can take this vCPU's lock; the VMM re-enters.
	 */
	KL_REQ_EXIT_TO_USER,
};

/* vcpu->mode: whether a kick must interrupt the CPU the vCPU runs on. */
enum kl_vcpu_mode {
	KL_OUTSIDE_GUEST_MODE,
	KL_IN_GUEST_MODE,
};

/* An INS batch handed to userspace, stored at the next KVM_RUN (x86/pio.c). */
struct kl_string_in {
	bool pending;
	bool down, rep;		/* DF was set; a REP prefix */
	u8 size, addr_size, len;	/* element size, address size, instruction length */
	u32 count;
	u64 gpa;		/* the lowest byte the batch writes */
};

struct kl_vcpu {
	struct kl_vm *vm;
	int id;
	struct kvm_run *run;
	struct mutex lock;		/* one ioctl at a time */
	unsigned long requests;
	int mode;			/* enum kl_vcpu_mode, set by the vCPU itself */
	int cpu;			/* the host CPU of the last entry */
	wait_queue_head_t wq;		/* a parked vCPU sleeps here until kicked */

	/* Vendor-neutral guest state, authoritative between exits. */
	u64 regs[KL_NR_REGS];		/* RSP and RAX live here too */
	u64 rip, rflags;
	u64 cr0, cr2, cr3, cr4, efer;	/* as the guest sees them */
	u64 cr8;			/* the TPR (the vendor's V_TPR while the guest runs) */
	u64 xcr0;			/* XCR0, loaded around VMRUN while CR4.OSXSAVE is set */
	u64 apic_base;			/* IA32_APIC_BASE: its enable bit is userspace's LAPIC's */
	u32 mp_state;			/* KVM_MP_STATE_*: whether KVM_RUN enters the guest */
	bool has_run;			/* KVM_RUN has entered the guest: CPUID is fixed */
	bool pv_cpuid_enforce;		/* KVM_CAP_ENFORCE_PV_FEATURE_CPUID */
	struct {			/* KVM's PV clock and steal time (x86/pvclock.c) */
		u64 system_time, wall_clock, steal_msr;	/* the MSRs */
		u32 clock_version, wall_version, steal_version;
		int clock_gen, clock_cpu;	/* when and where the clock record was written */
		bool steal_started;
		u64 steal_last;		/* the thread's run_delay at the last update */
	} pv;
	bool sigset_active;		/* KVM_SET_SIGNAL_MASK: the mask while in KVM_RUN */
	sigset_t sigset;
	u64 dr[8];			/* emulated; never loaded into hardware */
	struct kl_msrs msrs;
	struct fxregs_state *fpu;	/* x87/SSE between runs: the vendor's FXSAVE image */
	struct {			/* machine-check registers (x86/mce.c) */
		u64 mcg_cap, mcg_status, mcg_ctl;
		u64 banks[KL_MAX_MCE_BANKS][4];	/* CTL, STATUS, ADDR, MISC */
	} mce;
	struct kl_pending_event event;	/* to inject at the next entry */
	bool triple_fault;		/* a fault while delivering #DF: shut down */
	bool irq_pending;		/* KVM_INTERRUPT: waiting for the guest's IF */
	u8 irq_vector;
	/*
	 * KVM_NMI: one NMI waits while another is being handled (as on a
	 * CPU, a second one while both are taken is lost). nmi_masked is the
	 * CPU's "NMI blocked" state, from delivery until the handler's IRET
	 * completes; the vendor sees the IRET (x86.h: kl_nmi_iret_done).
	 */
	bool nmi_pending;
	bool nmi_injected;		/* its delivery was cut short by an exit: again, at once */
	bool nmi_masked;

	int ncpuid;
	struct kvm_cpuid_entry2 cpuid[KL_MAX_CPUID];

	void *vendor;			/* the backend's per-vCPU state */
	void *mmu_priv;
	/* Physical mode (mmu/phys.c): paging off under a shadow strategy. */
	struct kl_stree phys;
	u64 phys_gen;
	/*
	 * Below 4 GiB: the four PDPTEs the hardware runs a shadow on when
	 * the guest is not in long mode (mmu.c, kl_pae_root).
	 */
	struct page *pae_root;
	/* PAE paging: the guest's PDPTEs as the CPU loaded them (x86.c). */
	u64 pdptrs[4];
	struct kl_vcpu_stat stat;

	/*
	 * An MMIO access or port IN handed to userspace, completed at the next
	 * KVM_RUN (a read's data lands in a register then).
	 */
	bool mmio_pending;
	bool pending_is_pio;
	bool mmio_is_read;
	int mmio_reg;
	int mmio_len;
	u64 mmio_next_rip;
	u64 pio_in_rip;			/* an IN's own RIP: moved by userspace, the IN is void */
	bool mmio_to_memory;		/* MOVS from MMIO: the data goes to guest memory */
	u64 mmio_dest_gpa;		/* ...here */
	/* CMPS/SCAS with an MMIO side: the comparison ends when the data comes back. */
	bool mmio_compare;
	bool mmio_cmp_mmio_first;	/* the MMIO value is the first operand (CMPS's source) */
	u64 mmio_cmp_other;		/* the other operand */
	int mmio_cmp_rep;		/* 0, KL_REPE or KL_REPNE: a REP ends early on ZF */
	int mmio_cmp_addr_size;		/* ...or when rCX, at this width, is zero */
	u64 mmio_cmp_done_rip;		/* RIP past the instruction */
	struct kl_string_in pio_in;
	/* An RDMSR/WRMSR handed to userspace (KVM_EXIT_X86_*MSR), finished at the next KVM_RUN. */
	bool msr_exit_pending;
	bool msr_exit_read;
	u8 msr_exit_len;
};

static inline void kl_make_request(struct kl_vcpu *vcpu, enum kl_request req)
{
	set_bit(req, &vcpu->requests);
}

/* True once per request made: the caller does the work. */
static inline bool kl_check_request(struct kl_vcpu *vcpu, enum kl_request req)
{
	return test_and_clear_bit(req, &vcpu->requests);
}

/*
 * Kicks (core/vcpu.c): make a request and get the vCPU to see it now, out
 * of guest mode (an IPI to its CPU: the physical interrupt forces an exit)
 * or out of a parked sleep. The vendor brackets each entry with
 * kl_enter_guest_mode/kl_exit_guest_mode, interrupts off; false from the
 * first means a request came: do not enter. A request the vendor honours
 * at entry (KL_REQ_TLB_FLUSH) is read after the first returned true: one
 * made later finds the vCPU in guest mode and kicks it.
 */
void kl_vcpu_kick(struct kl_vcpu *vcpu, enum kl_request req);
/* ...and wait until it has left guest mode, if it was there: true when it was. */
bool kl_vcpu_kick_wait(struct kl_vcpu *vcpu, enum kl_request req);
bool kl_enter_guest_mode(struct kl_vcpu *vcpu);
void kl_exit_guest_mode(struct kl_vcpu *vcpu);

/* ---- core services (core/) ---- */
int kl_create_vm(unsigned long type);
int kl_vm_create_vcpu(struct kl_vm *vm, unsigned long id);
void kl_vm_get(struct kl_vm *vm);
void kl_vm_put(struct kl_vm *vm);
void kl_vcpu_free(struct kl_vcpu *vcpu);
int kl_vm_stats_fd(struct kl_vm *vm);
/*
 * Module-wide totals (core/stats.c), as Linux KVM's debugfs files: every
 * live VM's counters plus those of the VMs that ended since the module
 * loaded, in /sys/kernel/debug/kvmlab/<stat>.
 */
void kl_stats_init(void);
void kl_stats_exit(void);
void kl_stats_vm_add(struct kl_vm *vm);
void kl_stats_vm_retire(struct kl_vm *vm);
int kl_set_gsi_routing(struct kl_vm *vm, struct kvm_irq_routing __user *argp);
void kl_free_gsi_routing(struct kl_vm *vm);
int kl_vcpu_stats_fd(struct kl_vcpu *vcpu);
long kl_vcpu_ioctl(struct file *filp, unsigned int ioctl, unsigned long arg);
int kl_vcpu_run(struct kl_vcpu *vcpu);
void kl_internal_error(struct kl_vcpu *vcpu, u32 suberror, u64 data0, u64 data1);
const struct kl_mmu_ops *kl_mmu_find(const char *name);
int kl_mmu_index(const struct kl_mmu_ops *mmu);	/* KVMLAB_MMU_* number */

/* Module-wide accounting, checked at unload. */
extern atomic_long_t kl_table_pages_live;
extern atomic_long_t kl_pinned_pages_live;

#endif
