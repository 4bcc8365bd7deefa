/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvmlab core: the objects every part of the module shares.
 *
 * A VM is a set of memslots plus vCPUs. The vCPU keeps the architectural
 * guest state that is vendor-neutral (general registers, the guest-visible
 * control registers, CPUID); the vendor backend (SVM) keeps the rest in its
 * own control block and turns the two into what the hardware runs. The MMU
 * strategy chosen at load time (mmu=) sits behind struct kl_mmu_ops and
 * never sees the vendor.
 */
#ifndef KVMLAB_H
#define KVMLAB_H

#include <linux/kvm.h>
#include <linux/mm_types.h>
#include <linux/mutex.h>
#include <linux/kref.h>
#include <linux/types.h>

#define KL_MAX_SLOTS		32
#define KL_MAX_VCPUS		8
#define KL_MAX_CPUID		80
#define KL_MAX_MEM_BYTES	(64ULL << 30)

/* Guest register numbers, in the encoding instructions use. */
enum kl_reg {
	KL_RAX, KL_RCX, KL_RDX, KL_RBX, KL_RSP, KL_RBP, KL_RSI, KL_RDI,
	KL_R8, KL_R9, KL_R10, KL_R11, KL_R12, KL_R13, KL_R14, KL_R15,
	KL_NR_REGS
};

/* Page-table and #PF error-code bits, guest and shadow alike. */
#define KL_PT_P		BIT_ULL(0)
#define KL_PT_W		BIT_ULL(1)
#define KL_PT_U		BIT_ULL(2)
#define KL_PT_A		BIT_ULL(5)
#define KL_PT_D		BIT_ULL(6)
#define KL_PT_PS	BIT_ULL(7)
#define KL_PT_G		BIT_ULL(8)
#define KL_PT_NX	BIT_ULL(63)
#define KL_PT_ADDR	0x000ffffffffff000ULL

/* The CR4 bits a guest may set: what the shadow MMUs and SVM both handle. */
#define KL_CR4_SUPPORTED	(X86_CR4_VME | X86_CR4_PVI | X86_CR4_TSD | X86_CR4_DE | \
				 X86_CR4_PSE | X86_CR4_PAE | X86_CR4_MCE | X86_CR4_PGE | \
				 X86_CR4_PCE | X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT | \
				 X86_CR4_FSGSBASE)

#define KL_PF_P		BIT(0)
#define KL_PF_W		BIT(1)
#define KL_PF_U		BIT(2)
#define KL_PF_RSVD	BIT(3)
#define KL_PF_ID	BIT(4)

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
	u64 mmu_resync;		/* naive resync: shadows re-walked */
	u64 mmu_resync_checked;	/* ...entries compared with the guest's */
	u64 mmu_resync_changed;	/* ...entries found stale and dropped */
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
	u64 irq_window_exits;	/* the guest became interruptible (VINTR) */
	u64 request_irq_exits;	/* ...and userspace had asked to hear of it */
};

struct kl_memslot {
	bool used;
	u32 flags;
	u64 base_gfn;
	u64 npages;
	unsigned long hva;
};

struct kl_vm {
	struct kref ref;		/* the VM fd and every vCPU fd */
	struct mm_struct *mm;		/* guest memory lives in this address space */
	struct mutex lock;		/* memslots, vCPU creation */
	struct kl_memslot slots[KL_MAX_SLOTS];
	struct kl_vcpu *vcpus[KL_MAX_VCPUS];
	int nr_vcpus;
	const struct kl_mmu_ops *mmu;
	void *mmu_priv;
	u64 memslots_gen;		/* bumped by every memslot change */
	struct kl_vm_stat stat;
};

/*
 * A shadow PML4 and the tables under it, owned by one vCPU (vtlb, naive
 * resync) or one VM (nested tables). Zapping never flushes the hardware
 * TLB: the caller knows which vCPUs must.
 */
struct kl_stree {
	struct page *root;
	unsigned int nr_pages;		/* every page it holds: root, tables, tag pages */
	bool track_gpa;			/* keep the gpa each leaf maps (a tag page per PT) */
};

struct kl_pending_event {
	bool valid;
	u8 vector;
	bool has_error;
	u32 error;
	bool is_exception;
	bool delivering;	/* the CPU was delivering it when the exit came */
};

struct kl_vcpu {
	struct kl_vm *vm;
	int id;
	struct kvm_run *run;
	struct mutex lock;		/* one ioctl at a time */

	/* Vendor-neutral guest state, authoritative between exits. */
	u64 regs[KL_NR_REGS];		/* RSP and RAX live here too */
	u64 rip, rflags;
	u64 cr0, cr2, cr3, cr4, efer;	/* as the guest sees them */
	u64 dr[8];			/* emulated; never loaded into hardware */
	struct kl_pending_event event;	/* to inject at the next entry */
	bool triple_fault;		/* a fault while delivering #DF: shut down */
	bool irq_pending;		/* KVM_INTERRUPT: waiting for the guest's IF */
	u8 irq_vector;

	int ncpuid;
	struct kvm_cpuid_entry2 cpuid[KL_MAX_CPUID];

	void *vendor;			/* the backend's per-vCPU state */
	void *mmu_priv;
	/* Physical mode (phys.c): paging off under a shadow strategy. */
	struct kl_stree phys;
	struct page *phys_pae_root;
	u64 phys_gen;
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
};

/* ---- vendor backend (svm.c) ---- */
struct kl_vendor_ops {
	const char *name;
	int (*hardware_enable)(void);	/* on every CPU; refuse if busy */
	void (*hardware_disable)(void);
	int (*vcpu_create)(struct kl_vcpu *vcpu);
	void (*vcpu_free)(struct kl_vcpu *vcpu);
	void (*get_sregs)(struct kl_vcpu *vcpu, struct kvm_sregs *sregs);
	int (*set_sregs)(struct kl_vcpu *vcpu, const struct kvm_sregs *sregs);
	int (*get_cpl)(struct kl_vcpu *vcpu);
	/* RFLAGS.IF set and no interrupt shadow (STI, MOV SS) in effect. */
	bool (*interrupt_allowed)(struct kl_vcpu *vcpu);
	/* Enter the guest once and handle the exit: 1 = go on, 0 = to userspace. */
	int (*run_once)(struct kl_vcpu *vcpu);
	/* The MMU changed the root, or the guest TLB must be flushed. */
	void (*mmu_reload)(struct kl_vcpu *vcpu);
	void (*flush_guest_tlb)(struct kl_vcpu *vcpu);
};

extern const struct kl_vendor_ops kl_svm_ops;
extern const struct kl_vendor_ops *kl_vendor;

/* ---- MMU strategies ---- */
enum kl_pf_result {
	KL_PF_FIXED,		/* shadow entry filled: re-enter */
	KL_PF_GUEST,		/* a real guest fault: inject #PF */
	KL_PF_MMIO,		/* no memory there: emulate the access */
	KL_PF_RETRY,		/* nothing to do (spurious): re-enter */
};

struct kl_pf_info {
	u64 addr;		/* gva (or gpa with hw paging) */
	u32 error;		/* #PF error code from the hardware */
	/*
	 * The CPU faulted while delivering an event (pushing its frame,
	 * reading the IDT), not while running the instruction at RIP: that
	 * instruction must not be emulated.
	 */
	bool vectoring;
	u32 guest_error;	/* out: error code to inject, for KL_PF_GUEST */
	u64 gpa;		/* out: the gpa, for KL_PF_MMIO */
};

struct kl_mmu_ops {
	const char *name;
	bool hw_paging;		/* the CPU walks the guest's tables (NPT) */
	int (*vm_init)(struct kl_vm *vm);
	void (*vm_destroy)(struct kl_vm *vm);
	int (*vcpu_init)(struct kl_vcpu *vcpu);
	void (*vcpu_destroy)(struct kl_vcpu *vcpu);
	/* Root for the hardware: shadow CR3, or nested CR3 with hw_paging. */
	u64 (*root_hpa)(struct kl_vcpu *vcpu);
	int (*page_fault)(struct kl_vcpu *vcpu, struct kl_pf_info *pf);
	/* Guest events; each may flush what the strategy keeps. */
	void (*load_cr3)(struct kl_vcpu *vcpu);
	void (*invlpg)(struct kl_vcpu *vcpu, u64 gva);
	void (*flush_tlb)(struct kl_vcpu *vcpu);	/* CR4.PGE toggle etc. */
	void (*mode_changed)(struct kl_vcpu *vcpu);	/* CR0/CR4/EFER paging bits */
	void (*memslots_changed)(struct kl_vm *vm);
};

extern const struct kl_mmu_ops kl_vtlb_ops, kl_shadow_ops, kl_cached_ops, kl_npt_ops;
const struct kl_mmu_ops *kl_mmu_find(const char *name);
int kl_mmu_index(const struct kl_mmu_ops *mmu);	/* KVMLAB_MMU_* number */

/* ---- core services (mmu.c) ---- */
struct kl_memslot *kl_gfn_to_memslot(struct kl_vm *vm, u64 gfn);
int kl_read_guest(struct kl_vm *vm, u64 gpa, void *buf, unsigned int len);
int kl_write_guest(struct kl_vm *vm, u64 gpa, const void *buf, unsigned int len);
/* Pin the host page backing gfn; -ENOENT when no memslot covers it. */
int kl_pin_gfn(struct kl_vm *vm, u64 gfn, bool write, struct page **page);
void kl_unpin_page(struct kl_vm *vm, struct page *page, bool dirty);

/* Shadow/nested table pages, accounted per VM and module-wide. */
struct page *kl_table_page_alloc(struct kl_vm *vm);
void kl_table_page_free(struct kl_vm *vm, struct page *page);

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
 * Walk the guest's page tables for gva the way the CPU would for an access
 * described by `access` (KL_PF_W/U/ID bits): permissions, reserved bits,
 * CR0.WP, EFER.NXE, and the A/D bits written back atomically. Returns 0, or
 * -EFAULT with w->error set for a guest fault, or another errno.
 */
int kl_walk_guest(struct kl_vcpu *vcpu, u64 gva, u32 access, bool set_ad, struct kl_walk *w);
bool kl_guest_paging(struct kl_vcpu *vcpu);
bool kl_guest_long_mode(struct kl_vcpu *vcpu);

/* ---- private shadow trees (shadow.c) ---- */

/* The most pages one fill can add: three tables and a PT's tag page. */
#define KL_STREE_FILL_PAGES	4

/*
 * Whether a strategy holding `pages` shadow pages must reclaim before its
 * next fill to stay within `cap`. A cap below root + one fill cannot be
 * kept, so that is the smallest one honoured.
 */
static inline bool kl_stree_over_cap(unsigned int pages, unsigned int cap)
{
	return pages + KL_STREE_FILL_PAGES > max(cap, 1U + KL_STREE_FILL_PAGES);
}

/* Software bit in a shadow leaf: filled from a guest 2 MiB/1 GiB page. */
#define KL_SPTE_FROM_LARGE	BIT_ULL(9)

typedef void (*kl_leaf_fn)(struct kl_vcpu *vcpu, u64 gva, u64 *spte, u64 gpa, void *ctx);

u64 kl_shadow_leaf_flags(struct kl_vcpu *vcpu, const struct kl_walk *w, u32 access);
/* Walk for a shadow #PF: 0 = fix it, KL_PF_GUEST / KL_PF_MMIO, or -errno. */
int kl_shadow_walk(struct kl_vcpu *vcpu, struct kl_pf_info *pf, struct kl_walk *w);
void kl_drop_leaf(struct kl_vm *vm, u64 *spte);
int kl_stree_init(struct kl_vm *vm, struct kl_stree *t, bool track_gpa);
void kl_stree_destroy(struct kl_vm *vm, struct kl_stree *t);
void kl_stree_zap_all(struct kl_vm *vm, struct kl_stree *t);
void kl_stree_zap_gva(struct kl_vm *vm, struct kl_stree *t, u64 gva);
/* Shadow leaf for gva; tables are built on the way when `build`. */
u64 *kl_stree_pte(struct kl_vm *vm, struct kl_stree *t, u64 gva, bool build, struct page **pt);
/* Pin gpa's page and install the leaf for gva with `flags`. */
int kl_stree_install(struct kl_vm *vm, struct kl_stree *t, u64 gva, u64 gpa, u64 flags,
		     bool from_large);
/* The same, with the rights a shadow strategy derives from a guest walk. */
int kl_stree_fill(struct kl_vcpu *vcpu, struct kl_stree *t, u64 gva,
		  const struct kl_walk *w, u32 access);
/* Every present leaf, with the gpa it maps when the tree tracks them. */
void kl_stree_for_each_leaf(struct kl_vcpu *vcpu, struct kl_stree *t, kl_leaf_fn fn, void *ctx);

/* ---- physical mode for shadow strategies (phys.c) ---- */
bool kl_phys_mode(struct kl_vcpu *vcpu);
u64 kl_phys_root(struct kl_vcpu *vcpu);
int kl_phys_page_fault(struct kl_vcpu *vcpu, struct kl_pf_info *pf);
void kl_phys_leave(struct kl_vcpu *vcpu);
void kl_phys_destroy(struct kl_vcpu *vcpu);

/* ---- instruction emulation (emulate.c) ---- */
struct kl_insn {
	/*
	 * At most 15 bytes are fetched; the zeroed tail lets the decoder read a
	 * displacement or immediate past a truncated instruction without
	 * leaving the buffer (the final length check then rejects it).
	 */
	u8 bytes[32];
	int len;
	bool long64;		/* 64-bit code; else 32-bit protected mode */
	bool rep;		/* F3 prefix */
	int opcode_len;
	u8 opcode[3];
	bool rex_w, rex_r, rex_x, rex_b;
	int opsize;		/* 2, 4 or 8 */
	bool has_modrm;
	u8 mod, reg, rm;
	bool mem;		/* ModRM names memory */
	u64 ea;			/* its effective (linear) address */
	u64 imm;
	int imm_len;
};

int kl_fetch_decode(struct kl_vcpu *vcpu, struct kl_insn *insn);
/* A decoded MOV store to memory: its width and the value it writes. */
int kl_insn_store(struct kl_vcpu *vcpu, const struct kl_insn *in, int *size, u64 *val);
int kl_emulate(struct kl_vcpu *vcpu, struct kl_pf_info *mmio);
/* STOS/REP STOS into the page of gpa (a page table being cleared). */
int kl_emulate_stos(struct kl_vcpu *vcpu, const struct kl_insn *in, u64 gpa, unsigned int *bytes);

/* ---- vCPU services (vcpu.c) ---- */
void kl_vcpu_reset(struct kl_vcpu *vcpu);
void kl_queue_exception(struct kl_vcpu *vcpu, u8 vector, bool has_error, u32 error);
void kl_inject_page_fault(struct kl_vcpu *vcpu, u64 addr, u32 error);
int kl_set_cr0(struct kl_vcpu *vcpu, u64 val);
int kl_set_cr3(struct kl_vcpu *vcpu, u64 val);
int kl_set_cr4(struct kl_vcpu *vcpu, u64 val);
int kl_set_efer(struct kl_vcpu *vcpu, u64 val);
void kl_internal_error(struct kl_vcpu *vcpu, u32 suberror, u64 data0, u64 data1);
const struct kvm_cpuid_entry2 *kl_find_cpuid(struct kl_vcpu *vcpu, u32 func, u32 index);
/* IA32_APIC_BASE as the guest reads it: xAPIC at 0xfee00000, enabled, vCPU 0 the BSP. */
u64 kl_apic_base(struct kl_vcpu *vcpu);

/* ---- device, VM, vCPU files and statistics ---- */
int kl_create_vm(unsigned long type);
int kl_vm_create_vcpu(struct kl_vm *vm, unsigned long id);
void kl_vm_put(struct kl_vm *vm);
int kl_vm_stats_fd(struct kl_vm *vm);
int kl_vcpu_stats_fd(struct kl_vcpu *vcpu);
long kl_vcpu_ioctl(struct file *filp, unsigned int ioctl, unsigned long arg);
int kl_get_supported_cpuid(struct kvm_cpuid2 __user *argp);
int kl_vcpu_run(struct kl_vcpu *vcpu);

/* Module-wide accounting, checked at unload. */
extern atomic_long_t kl_table_pages_live;
extern atomic_long_t kl_pinned_pages_live;


#endif
