/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvmlab's few additions to the KVM ABI, shared by the module and any
 * userspace that wants them. Everything else is <linux/kvm.h> unchanged.
 *
 * Choosing the MMU strategy per VM: KVM_CREATE_VM's machine-type argument
 * may name one, so a single module load can run every strategy side by
 * side. Type 0 means the module's default (the mmu= parameter).
 *
 *   KVM_CHECK_EXTENSION(KVMLAB_CAP_MMU) on /dev/kvmlab: how many strategies
 *   on a VM fd: the strategy that VM runs (a KVMLAB_MMU_* number)
 */
#ifndef KVMLAB_UAPI_H
#define KVMLAB_UAPI_H

#define KVMLAB_CAP_MMU			0x4b4c01	/* "KL": far from KVM's numbers */
#define KVMLAB_VM_TYPE_BASE		0x4b4c0000UL
#define KVMLAB_VM_TYPE_MMU(n)		(KVMLAB_VM_TYPE_BASE | (n))

enum kvmlab_mmu {
	KVMLAB_MMU_VTLB = 1,
	KVMLAB_MMU_SHADOW,
	KVMLAB_MMU_CACHED,
	KVMLAB_MMU_NPT,
	KVMLAB_MMU_UNSYNC,	/* cached + out-of-sync last-level tables */
	KVMLAB_MMU_PV,		/* cached + the paravirtual MMU (<kvmlab/pv_mmu.h>) */
};

#endif
