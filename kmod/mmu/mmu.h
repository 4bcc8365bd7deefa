/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The MMU layer: what an MMU strategy implements (struct kl_mmu_ops), the
 * machinery strategies share (guest memory and pinning, accounted table
 * pages, the guest walker, private shadow trees, the instruction emulator's
 * store helpers), and the dispatch the x86 layer and the vendor call
 * (kl_mmu_*). This is the only header a strategy includes: it has no
 * vendor in it, so a strategy cannot call one. To flush a vCPU's TLB a
 * strategy makes a request (kl_flush_tlb, kl_flush_remote_tlbs).
 *
 * Every kl_mmu_ops callback runs with vm->mmu_lock held (mmu.c takes it).
 */
#ifndef KL_MMU_H
#define KL_MMU_H

#include "../core/kvmlab.h"
#include "../x86/decode.h"
#include "paging.h"

/* What a strategy's #PF handler found. Errors are not results: see pf->err. */
enum kl_pf_result {
	KL_PF_FIXED,		/* shadow entry filled (a hidden fault): re-enter */
	KL_PF_RETRY,		/* nothing to do (spurious, or raced): re-enter */
	KL_PF_GUEST,		/* a real guest fault: inject #PF with pf->guest_error */
	KL_PF_MMIO,		/* no memory at pf->gpa: emulate the access */
	KL_PF_EMULATE_FAILED,	/* a write the strategy must emulate and cannot */
	KL_PF_ERROR,		/* pf->err: -ENOMEM, -EFAULT, -ELOOP (event delivery stuck) ... */
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
	int err;		/* out: the -errno, for KL_PF_ERROR */
};

/* A negative errno as a #PF result (for a strategy's error paths). */
static inline enum kl_pf_result kl_pf_error(struct kl_pf_info *pf, int err)
{
	pf->err = err;
	return KL_PF_ERROR;
}

struct kl_mmu_ops {
	const char *name;
	bool hw_paging;		/* the CPU walks the guest's tables (NPT) */
	/* The guest paging formats it shadows: BIT(KL_PAGING_*); paging off always works. */
	unsigned int formats;
	/*
	 * The module parameter capping its shadow pages, which
	 * KVM_SET_NR_MMU_PAGES overrides per VM (kl_mmu_pages_cap); NULL
	 * when it keeps no shadow tables (nested paging, as KVM's TDP).
	 */
	const unsigned int *max_pages;
	/* vCPUs per VM it runs (KVM_CAP_MAX_VCPUS); 0: KL_MAX_VCPUS. */
	unsigned int max_vcpus;
	int (*vm_init)(struct kl_vm *vm);
	void (*vm_destroy)(struct kl_vm *vm);
	int (*vcpu_init)(struct kl_vcpu *vcpu);
	void (*vcpu_destroy)(struct kl_vcpu *vcpu);
	/* Root for the hardware: shadow CR3, or nested CR3 with hw_paging; 0 = no memory. */
	u64 (*root_hpa)(struct kl_vcpu *vcpu);
	enum kl_pf_result (*page_fault)(struct kl_vcpu *vcpu, struct kl_pf_info *pf);
	/* Guest events; each may flush what the strategy keeps. */
	void (*load_cr3)(struct kl_vcpu *vcpu);
	void (*invlpg)(struct kl_vcpu *vcpu, u64 gva);
	void (*flush_tlb)(struct kl_vcpu *vcpu);	/* CR4.PGE toggle etc. */
	void (*mode_changed)(struct kl_vcpu *vcpu);	/* CR0/CR4/EFER paging bits */
	void (*memslots_changed)(struct kl_vm *vm);
	/*
	 * Dirty logging (mmu/dirty.c): make read-only every leaf that maps a
	 * page of slot whose bit is set in bits, so the next write to it
	 * faults and is logged (kl_leaf_writable). Vcpus may be in guest
	 * mode: change entries atomically, free nothing. Returns how many
	 * entries changed; the caller flushes every vCPU's TLB.
	 */
	unsigned long (*write_protect)(struct kl_vm *vm, const struct kl_memslot *slot,
				       const unsigned long *bits);
	/*
	 * Optional: the hypervisor wrote [gpa, gpa + len) of guest memory for
	 * the guest (an emulated INS), behind the strategy's back; one that
	 * shadows tables from guest memory brings its shadows up to date.
	 */
	void (*guest_written)(struct kl_vcpu *vcpu, u64 gpa, unsigned int len);
	/*
	 * Optional: the paravirtual MMU's hypercall (<kvmlab/pv_mmu.h>): a
	 * batch of `count` operations at gpa. Runs WITHOUT mmu_lock, since
	 * an operation may load CR3 (which takes it); returns 0 or a
	 * negative KL_PV_E* error for the guest's RAX. A VM whose strategy
	 * has it is offered the pv CPUID leaves.
	 */
	long (*pv_mmu)(struct kl_vcpu *vcpu, u64 gpa, u64 count);
};

extern const struct kl_mmu_ops kl_vtlb_ops, kl_shadow_ops, kl_cached_ops, kl_npt_ops;
extern const struct kl_mmu_ops kl_unsync_ops, kl_pv_ops;

static inline unsigned int kl_mmu_max_vcpus(const struct kl_mmu_ops *mmu)
{
	return mmu->max_vcpus ? mmu->max_vcpus : KL_MAX_VCPUS;
}

/* The shadow page cap in force: the VM's (KVM_SET_NR_MMU_PAGES) or the module's. */
static inline unsigned int kl_mmu_pages_cap(struct kl_vm *vm)
{
	unsigned int n = READ_ONCE(vm->nr_mmu_pages);

	return n ? n : vm->mmu->max_pages ? READ_ONCE(*vm->mmu->max_pages) : 0;
}

/* ---- dispatch (mmu.c): the x86 layer and the vendor call these ---- */

/*
 * The nested table's entry bits (stree.c): the x86 format for AMD's NPT,
 * EPT's for Intel. levels is what the hardware walks (5 when AMD's host
 * runs 5-level paging; EPT here always walks 4).
 */
struct kl_tdp_format {
	u64 leaf;		/* a 4 KiB leaf granting read, write, execute */
	u64 nonleaf;
	int levels;
	const char *name;	/* "npt" or "ept", for the report */
};
extern struct kl_tdp_format kl_tdp;
void kl_tdp_set_format(const struct kl_tdp_format *f);

/* What the hardware runs on: paging registers, and the nested root (0: none). */
struct kl_hw_paging {
	u64 cr0, cr3, cr4, efer;
	u64 nested_cr3;
};

static inline bool kl_mmu_tdp(struct kl_vm *vm)
{
	return vm->mmu->hw_paging;
}

int kl_mmu_vm_init(struct kl_vm *vm);
void kl_mmu_vm_destroy(struct kl_vm *vm);
int kl_mmu_vcpu_init(struct kl_vcpu *vcpu);
void kl_mmu_vcpu_destroy(struct kl_vcpu *vcpu);
/* Whether the VM's MMU can run the guest's current paging mode. */
bool kl_mmu_mode_supported(struct kl_vcpu *vcpu);
int kl_mmu_hw_paging(struct kl_vcpu *vcpu, struct kl_hw_paging *hw);
/*
 * A PAE root for the hardware over a 4-level shadow whose PML4 is at
 * pml4_hpa (a guest not in long mode only uses its first 1 GiB x 4), or 0.
 */
u64 kl_pae_root(struct kl_vcpu *vcpu, u64 pml4_hpa);
/* The guest's paging format now. */
enum kl_paging_format kl_guest_format(struct kl_vcpu *vcpu);
/* A #PF (or nested #PF) exit: 1 = re-enter, 0 = to userspace (run->exit_reason set). */
int kl_mmu_page_fault(struct kl_vcpu *vcpu, u64 addr, u32 error, bool vectoring);
void kl_mmu_load_cr3(struct kl_vcpu *vcpu);
void kl_mmu_invlpg(struct kl_vcpu *vcpu, u64 gva);
void kl_mmu_flush_tlb(struct kl_vcpu *vcpu);
void kl_mmu_mode_changed(struct kl_vcpu *vcpu);
void kl_mmu_memslots_changed(struct kl_vm *vm);

/*
 * The translation of gva for an access the emulator makes on the guest's
 * behalf, with A/D bits set as the CPU would (under mmu_lock): 0, -EFAULT
 * (w->error holds the #PF error code), -EINVAL (non-canonical: #GP).
 */
int kl_mmu_translate(struct kl_vcpu *vcpu, u64 gva, u32 access, struct kl_walk *w);
/* Write guest memory for the guest and tell the strategy (guest_written). */
int kl_mmu_write_guest(struct kl_vcpu *vcpu, u64 gpa, const void *buf, unsigned int len);

/*
 * A guest's MOV to CR3, with its checks (x86/x86.c): 0, or -EINVAL where
 * the CPU raises #GP. Takes mmu_lock: for the paravirtual MMU's
 * SWITCH_CR3, which mmu=pv applies outside it.
 */
int kl_set_cr3(struct kl_vcpu *vcpu, u64 val);

/* Ask a vCPU, or every vCPU of the VM, to flush its guest TLB before it re-enters. */
void kl_flush_tlb(struct kl_vcpu *vcpu);
void kl_flush_remote_tlbs(struct kl_vm *vm);

/* ---- dirty-page logging (dirty.c): the VM ioctls call these ---- */
/* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: the KVM_DIRTY_LOG_* flags offered. */
u64 kl_dirty_log_manual_caps(void);
int kl_dirty_log_enable_manual(struct kl_vm *vm, u64 flags);
/* A slot starts or stops logging (vm->lock held, every vCPU out of KVM_RUN). */
int kl_dirty_log_start(struct kl_vm *vm, struct kl_memslot *slot);
void kl_dirty_log_stop(struct kl_memslot *slot);
/* KVM_GET_DIRTY_LOG, KVM_CLEAR_DIRTY_LOG: while vCPUs run. */
long kl_dirty_log_ioctl(struct kl_vm *vm, unsigned int ioctl, void __user *argp);

/* ---- guest memory (memory.c) ---- */
struct kl_memslot *kl_gfn_to_memslot(struct kl_vm *vm, u64 gfn);
/* Memory at gfn for a read (write=false) or a write: no slot, or a ROM written, is MMIO. */
bool kl_gfn_is_ram(struct kl_vm *vm, u64 gfn, bool write);
int kl_read_guest(struct kl_vm *vm, u64 gpa, void *buf, unsigned int len);
int kl_write_guest(struct kl_vm *vm, u64 gpa, const void *buf, unsigned int len);
/* The hypervisor wrote gfn for the guest: log it if its slot logs dirty pages. */
void kl_mark_page_dirty(struct kl_vm *vm, u64 gfn);
/*
 * Whether a leaf mapping gfn may be writable, for a write access or not:
 * never in a ROM; under dirty logging only once the page is logged dirty
 * (a write access logs it: a dirty fault).
 */
bool kl_leaf_writable(struct kl_vm *vm, u64 gfn, bool write);
/* Pin the host page backing gfn; -ENOENT when no memslot covers it. */
int kl_pin_gfn(struct kl_vm *vm, u64 gfn, bool write, struct page **page);
void kl_unpin_page(struct kl_vm *vm, struct page *page, bool dirty);
/* Shadow/nested table pages, accounted per VM and module-wide. */
struct page *kl_table_page_alloc(struct kl_vm *vm);
void kl_table_page_free(struct kl_vm *vm, struct page *page);

/* ---- the guest walker on a vCPU (walk.c over paging.c) ---- */
int kl_walk_guest(struct kl_vcpu *vcpu, u64 gva, u32 access, bool set_ad, struct kl_walk *w);
bool kl_guest_paging(struct kl_vcpu *vcpu);
bool kl_guest_long_mode(struct kl_vcpu *vcpu);

/* ---- private shadow trees (stree.c) ---- */

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

/* Software bit in a shadow leaf: filled from a guest 2 MiB/4 MiB/1 GiB page. */
#define KL_SPTE_FROM_LARGE	BIT_ULL(9)
/* Software bit in a shadow leaf: the guest's entry was global (G, with CR4.PGE on). */
#define KL_SPTE_GLOBAL		BIT_ULL(10)

typedef void (*kl_leaf_fn)(struct kl_vcpu *vcpu, u64 gva, u64 *spte, u64 gpa, void *ctx);

u64 kl_shadow_leaf_flags(struct kl_vcpu *vcpu, const struct kl_walk *w, u32 access);
/*
 * A prefetch (KVM's word): the shadow leaf for guest entry gpte under
 * tables that allow `access` (bits W=1, U=2, X=4), made without a fault and
 * so without setting A or D. False when gpte cannot be mapped that way: not
 * present, never accessed (the guest must see A set by its next access),
 * or reserved bits set (the access must fault). Otherwise *gfn and *flags
 * (no W while the guest entry is clean, as a fill does for a read).
 */
bool kl_prefetch_leaf(struct kl_vcpu *vcpu, u32 access, u64 gpte, u64 *gfn, u64 *flags);
/*
 * The start of every shadow #PF: walk the guest's tables. Returns true with
 * *w filled for a hidden fault to fix; false with *result set otherwise
 * (KL_PF_GUEST, KL_PF_MMIO or KL_PF_ERROR, pf filled in).
 */
bool kl_shadow_walk(struct kl_vcpu *vcpu, struct kl_pf_info *pf, struct kl_walk *w,
		    enum kl_pf_result *result);
void kl_drop_leaf(struct kl_vm *vm, u64 *spte);
int kl_stree_init(struct kl_vm *vm, struct kl_stree *t, bool track_gpa);
void kl_stree_destroy(struct kl_vm *vm, struct kl_stree *t);
void kl_stree_zap_all(struct kl_vm *vm, struct kl_stree *t);
void kl_stree_zap_gva(struct kl_vm *vm, struct kl_stree *t, u64 gva);
/* Shadow leaf for gva; tables are built on the way when `build`. */
u64 *kl_stree_pte(struct kl_vm *vm, struct kl_stree *t, u64 gva, bool build, struct page **pt);
/* Pin gpa's page and install the leaf for gva with `flags`, from a guest page of page_size. */
int kl_stree_install(struct kl_vm *vm, struct kl_stree *t, u64 gva, u64 gpa, u64 flags,
		     u64 page_size, bool write);
/* The same, with the rights a shadow strategy derives from a guest walk. */
int kl_stree_fill(struct kl_vcpu *vcpu, struct kl_stree *t, u64 gva,
		  const struct kl_walk *w, u32 access);
/*
 * Dirty logging: make read-only the writable leaves that map pages whose
 * bit is set in bits (bit i: gfn slot->base_gfn + i). identity: the tree
 * maps gva == gpa (nested, physical mode); otherwise its tags say which
 * gpa a leaf maps, and without tags every writable leaf goes read-only.
 * Returns how many leaves changed; the caller flushes.
 */
unsigned long kl_stree_write_protect(struct kl_stree *t, bool identity,
				     const struct kl_memslot *slot, const unsigned long *bits);
/* Every present leaf, with the gpa it maps when the tree tracks them. */
void kl_stree_for_each_leaf(struct kl_vcpu *vcpu, struct kl_stree *t, kl_leaf_fn fn, void *ctx);

/* ---- physical mode for shadow strategies (phys.c) ---- */
bool kl_phys_mode(struct kl_vcpu *vcpu);
/*
 * Set by a vendor that runs a guest with paging off on its nested hardware
 * (VMX's "unrestricted guest" needs EPT): the physical-mode tree is then a
 * nested table (kl_tdp's format) that kl_phys_root hands over as the nested
 * root, and the guest's own CR0, CR3 and CR4 go to the hardware as they are.
 */
extern bool kl_phys_nested;
u64 kl_phys_root(struct kl_vcpu *vcpu);
enum kl_pf_result kl_phys_page_fault(struct kl_vcpu *vcpu, struct kl_pf_info *pf);
void kl_phys_leave(struct kl_vcpu *vcpu);
void kl_phys_destroy(struct kl_vcpu *vcpu);

/* ---- the emulator's helpers a strategy may use (x86/emulate.c) ---- */

/* Decode at RIP: 0, -EOPNOTSUPP for what the decoder does not know, -EFAULT when the fetch failed. */
int kl_fetch_decode(struct kl_vcpu *vcpu, struct kl_insn *insn);
/* A decoded MOV store to memory: its width and the value it writes. */
int kl_insn_store(struct kl_vcpu *vcpu, const struct kl_insn *in, int *size, u64 *val);
/* ...or a read-modify-write of RAM at gpa (AND/OR/XOR/XCHG): flags and registers updated. */
int kl_insn_rmw(struct kl_vcpu *vcpu, const struct kl_insn *in, u64 gpa, int *size, u64 *val);
/* STOS/REP STOS into the page of gpa (a page table being cleared). */
int kl_emulate_stos(struct kl_vcpu *vcpu, const struct kl_insn *in, u64 gpa, unsigned int *bytes);

#endif
