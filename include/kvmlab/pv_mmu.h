/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvmlab's paravirtual MMU (mmu=pv, kmod/mmu-pv): the contract between a
 * guest kernel and the module. The guest's runtime (workloads/runtime/pv.c)
 * and the module both build against this file.
 *
 * Discovery. CPUID leaf KL_CPUID_PV_BASE answers, in EBX ECX EDX, the
 * signature "kvmlab-pvmmu" and in EAX the highest kvmlab leaf; leaf
 * KL_CPUID_PV_FEATURES answers in EAX the features (KL_PV_FEATURE_MMU), in
 * EBX the hypercall number and in ECX the most operations one batch may
 * hold. The module answers these two leaves itself, from the VM's strategy:
 * a VM under mmu=pv sees them whatever table userspace set, any other VM
 * sees what userspace set (nothing, normally). They sit at 0x40000100, a
 * range Linux scans for hypervisor signatures but leaves alone when the
 * signature is not one it knows.
 *
 * The hypercall. VMMCALL (or VMCALL, rewritten) at CPL 0 with
 *   RAX = KL_HC_PV_MMU, RBX = gpa of the batch, RCX = number of operations:
 * an array of struct kl_pv_mmu_op in guest RAM, not crossing a page (a
 * page per CPU is the intended use). The module copies the batch, checks
 * every operation's form, then applies them in order: no page-table write
 * traps, one exit for the lot. RAX returns 0, or a negative error:
 *   -KL_PV_EPERM   not at CPL 0 (nothing applied);
 *   -KL_PV_E2BIG   more than the most a batch may hold (nothing applied);
 *   -KL_PV_EFAULT  the batch is not in RAM, or an operation names a page
 *                  that cannot hold a page table (not RAM, or read-only
 *                  memory) (nothing applied);
 *   -KL_PV_EINVAL  a malformed operation: unknown code, reserved field
 *                  set, misaligned entry, an entry size the guest's paging
 *                  format does not have, a non-canonical INVLPG address,
 *                  or a batch crossing a page (nothing applied); or a CR3
 *                  that MOV CR3 itself would refuse (operations before
 *                  that one stay applied).
 * These are KVM's hypercall error numbers (KVM_EPERM and so on).
 *
 * An entry's value is never refused: a CPU stores anything into a table,
 * and a frame outside RAM or a reserved bit faults only when used. Values
 * are guest-physical, and the hypervisor makes shadow entries only from
 * its memslots, so no value can map a page of the hypervisor's own (its
 * shadow tables have no guest-physical address): such an entry maps MMIO,
 * or raises the reserved-bit #PF, exactly as a plain store would.
 */
#ifndef KVMLAB_PV_MMU_H
#define KVMLAB_PV_MMU_H

#define KL_CPUID_PV_BASE	0x40000100U
#define KL_CPUID_PV_FEATURES	0x40000101U
#define KL_CPUID_PV_SIGNATURE	"kvmlab-pvmmu"	/* EBX, ECX, EDX */
#define KL_PV_FEATURE_MMU	(1U << 0)

#define KL_HC_PV_MMU		0x6b6c01	/* "kl" 1: well clear of KVM's own numbers */
#define KL_PV_MMU_MAX_OPS	170		/* 170 x 24 bytes fit a 4 KiB page */

enum kl_pv_mmu_opcode {
	/*
	 * addr = gpa of an 8-byte page-table entry (PAE, 4-level), 8-byte
	 * aligned, val = its new value. Written to guest memory and to every
	 * shadow of that table at once. Not while the guest runs 2-level
	 * paging, whose entries are 4 bytes.
	 */
	KL_PV_MMU_WRITE_PTE = 1,
	KL_PV_MMU_INVLPG = 2,		/* addr = linear address, as INVLPG */
	KL_PV_MMU_FLUSH = 3,		/* the whole non-global TLB, as a CR3 reload */
	KL_PV_MMU_SWITCH_CR3 = 4,	/* val = new CR3, as MOV CR3 */
	/*
	 * The same for a 4-byte entry of a 2-level table (val fits 32 bits,
	 * addr 4-byte aligned); not in PAE or long mode. With paging off
	 * either size goes: the guest says which tables it is building.
	 */
	KL_PV_MMU_WRITE_PTE32 = 5,
	/*
	 * addr = gpa of a page (4 KiB aligned) that the guest no longer
	 * uses as a page table, val = 0: every shadow of it goes, and with
	 * them its write protection, so the guest's next stores to it (a
	 * free list, a memset) are plain stores. Xen calls this unpinning.
	 */
	KL_PV_MMU_RELEASE = 6,
};

struct kl_pv_mmu_op {
	unsigned int op;
	unsigned int reserved;		/* must be 0 */
	unsigned long long addr;
	unsigned long long val;
};

#define KL_PV_EPERM	1
#define KL_PV_E2BIG	7
#define KL_PV_EFAULT	14
#define KL_PV_EINVAL	22

#endif
