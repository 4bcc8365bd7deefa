/* SPDX-License-Identifier: GPL-2.0 */
/*
 * x86 facts that the module, the harness and the host unit tests all need,
 * written once: control-register and EFER bits, page-table and #PF
 * error-code bits, and kvmlab's CPUID policy (which features a guest may be
 * told it has). The module uses the kernel's X86_CR0_* names where it has
 * them; code that also builds in userspace uses these.
 */
#ifndef KVMLAB_X86_H
#define KVMLAB_X86_H

#define KL_CR0_PE	(1ULL << 0)
#define KL_CR0_MP	(1ULL << 1)
#define KL_CR0_ET	(1ULL << 4)
#define KL_CR0_NE	(1ULL << 5)
#define KL_CR0_WP	(1ULL << 16)
#define KL_CR0_PG	(1ULL << 31)

#define KL_CR4_PSE	(1ULL << 4)
#define KL_CR4_PAE	(1ULL << 5)
#define KL_CR4_PGE	(1ULL << 7)

#define KL_EFER_SCE	(1ULL << 0)
#define KL_EFER_LME	(1ULL << 8)
#define KL_EFER_LMA	(1ULL << 10)
#define KL_EFER_NX	(1ULL << 11)

/* Page-table entry bits, guest and shadow alike. */
#define KL_PT_P		(1ULL << 0)
#define KL_PT_W		(1ULL << 1)
#define KL_PT_U		(1ULL << 2)
#define KL_PT_A		(1ULL << 5)
#define KL_PT_D		(1ULL << 6)
#define KL_PT_PS	(1ULL << 7)
#define KL_PT_G		(1ULL << 8)
#define KL_PT_NX	(1ULL << 63)
#define KL_PT_ADDR	0x000ffffffffff000ULL

/* #PF error-code bits (also the access a walk is asked about). */
#define KL_PF_P		(1U << 0)
#define KL_PF_W		(1U << 1)
#define KL_PF_U		(1U << 2)
#define KL_PF_RSVD	(1U << 3)
#define KL_PF_ID	(1U << 4)

/* A flat 64-bit code segment and a flat data segment, as GDT entries. */
#define KL_GDT_CODE64	0x00af9b000000ffffULL
#define KL_GDT_CODE32	0x00cf9b000000ffffULL
#define KL_GDT_DATA	0x00cf93000000ffffULL

/*
 * kvmlab's CPUID policy: what KVM_GET_SUPPORTED_CPUID keeps of the host's
 * bits, and so what every harness guest sees under every hypervisor (the
 * harness applies the same masks to Linux KVM's answer). XSAVE with x87
 * and SSE only (XCR0 at most 3: no AVX state to switch), offered to VMMs
 * (QEMU, the selftests) but kept from the harness's own guests, whose
 * counters stay comparable across versions; no PCID/SMEP/SMAP/PKU/LA57 (the
 * shadow MMUs do not model them), no VMX/SVM, no x2APIC, no TSC-deadline.
 */
/*
 * The hypervisor leaves (0x40000000 up), as Linux KVM reports them, since
 * kvmlab implements that part of KVM's paravirtual ABI: 0x40000000 gives
 * the highest such leaf and KVM's signature, 0x40000001 the features —
 * kvmclock (old and new MSRs) and steal time (kmod/x86/pvclock.c). A VMM
 * passes them on (QEMU writes its own signature and keeps the features
 * kvmlab offers); the harness's own guests get none.
 */
#define KL_CPUID_HV_BASE	0x40000000U
#define KL_CPUID_HV_MAX		0x40000001U
#define KL_CPUID_SIGNATURE	"KVMKVMKVM\0\0\0"	/* EBX, ECX, EDX */
#define KL_CPUID_HV_FEATURES	((1U << 0) | (1U << 3) | (1U << 5))	/* CLOCKSOURCE(2), STEAL_TIME */

#define KL_CPUID_MAX_BASIC	0xd	/* KVM_GET_SUPPORTED_CPUID: up to the XSAVE leaf */
#define KL_CPUID_POLICY_MAX_BASIC 7	/* the harness's guests: no XSAVE leaf */
#define KL_XCR0_SUPPORTED	3ULL	/* x87 | SSE */
#define KL_XSAVE_LEGACY_SIZE	576	/* the legacy area and the XSAVE header */
#define KL_CPUID_MAX_EXT	0x80000008U
#define KL_CPUID_1_ECX_KEEP	((1U << 0) | (1U << 9) | (1U << 13) | (1U << 19) | \
				 (1U << 20) | (1U << 23) | (1U << 26))	/* SSE3 SSSE3 CX16 SSE4.1/2 POPCNT XSAVE */
#define KL_CPUID_1_ECX_MWAIT	(1U << 3)
#define KL_CPUID_1_ECX_XSAVE	(1U << 26)
#define KL_CPUID_1_ECX_OSXSAVE	(1U << 27)	/* CR4.OSXSAVE, kept in step by the hypervisor */
#define KL_CPUID_1_ECX_HYPERVISOR (1U << 31)
#define KL_CPUID_1_EDX_APIC	(1U << 9)
#define KL_CPUID_1_EDX_DROP	(KL_CPUID_1_EDX_APIC | (1U << 21) | (1U << 22) | \
				 (1U << 28))			/* APIC DS ACPI HTT */
#define KL_CPUID_7_EBX_KEEP	((1U << 0) | (1U << 1) | (1U << 3) | (1U << 8) | \
				 (1U << 9))	/* FSGSBASE TSC_ADJUST BMI1 BMI2 ERMS */
#define KL_CPUID_E1_ECX_KEEP	((1U << 0) | (1U << 5) | (1U << 8))	/* LAHF ABM PREFETCHW */
#define KL_CPUID_E1_EDX_KEEP	(((1U << 11) | (1U << 20) | (1U << 26) | (1U << 29) | \
				  0x0183f3ffU) & ~(1U << 27))	/* SYSCALL NX 1GB LM + base; no RDTSCP */

#endif
