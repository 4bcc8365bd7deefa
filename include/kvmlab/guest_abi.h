/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The contract between a kvmlab guest image (workloads/) and the harness
 * that runs it (harness/). It is independent of the hypervisor: everything
 * here travels through guest memory and port I/O, which every KVM-ABI
 * hypervisor forwards to userspace as KVM_EXIT_IO.
 *
 * Boot: the harness loads the ELF image by physical address, writes a
 * struct kl_boot_info at KL_BOOT_INFO_GPA, fills in the parameter values
 * (see struct kl_param), and starts the vCPU in 64-bit mode at the ELF entry
 * with RDI = KL_BOOT_INFO_GPA and identity-mapped boot page tables. The guest
 * then builds and loads its own page tables.
 *
 * Talking back: the guest writes a struct kl_msg somewhere in its memory
 * below 4 GiB and does `outl <gpa>, KL_PORT_MSG`. One port I/O exit per
 * message keeps the channel cheap and its cost easy to account for.
 */
#ifndef KVMLAB_GUEST_ABI_H
#define KVMLAB_GUEST_ABI_H

#include <stdint.h>

#define KL_PORT_CONSOLE		0x0500	/* outb: one character of console text */
#define KL_PORT_MSG		0x0504	/* outl: gpa of a struct kl_msg */
#define KL_PORT_ECHO		0x0508	/* out stores a value; in returns it */
/*
 * inl: the host's CLOCK_MONOTONIC in microseconds (low 32 bits). One exit
 * per read: a guest calibrates its TSC against it once, then paces itself
 * with RDTSC (dirtyrate). It keeps running across a migration.
 */
#define KL_PORT_CLOCK		0x0514

/*
 * Boot guests (a Multiboot kernel, a Linux guest's user programs) cannot
 * hand us a gpa; they mark their measured phase with ports instead: each
 * 32-bit argument is an outl to KL_PORT_MARK_ARG, then the mark is an outl
 * to KL_PORT_MARK. BEGIN takes the guest's TSC (low, high); END takes the
 * TSC, the operations done and a checksum (each low, high).
 */
#define KL_PORT_MARK		0x050c
#define KL_PORT_MARK_ARG	0x0510
#define KL_MARK_BEGIN		1
#define KL_MARK_END		2

/*
 * A scratch MMIO device in the harness: a page of registers that keep
 * what is written, outside RAM, so every access is an MMIO exit.
 */
#define KL_MMIO_SCRATCH_GPA	0xfe000000ULL
#define KL_MMIO_SCRATCH_SIZE	0x1000

#define KL_BOOT_INFO_GPA	0x1000ULL
#define KL_BOOT_MAGIC		0x6b766d6c61623031ULL	/* "kvmlab01" */

struct kl_boot_info {
	uint64_t magic;
	uint64_t mem_bytes;	/* guest RAM: one slot at gpa 0 */
	uint64_t image_end;	/* first gpa past the loaded image */
	uint64_t boot_pt_end;	/* first gpa past the boot page tables */
	/* A linear framebuffer (`--fb`), 0 when there is none: 32-bit xRGB pixels. */
	uint64_t fb_gpa;
	uint32_t fb_width, fb_height, fb_pitch, fb_bpp;
	/*
	 * vCPUs (`--vcpus`), the bootstrap processor included. Each has a
	 * local APIC at 0xfee00000 (xAPIC, ID = its index); the others wait
	 * for INIT and a Startup IPI, as a PC's application processors do.
	 */
	uint32_t nr_cpus;
	uint32_t reserved;
};

enum kl_msg_type {
	KL_MSG_PHASE_BEGIN = 1,	/* measured phase starts: counters snapshot */
	KL_MSG_PHASE_END,	/* measured phase ends: a = ops, b = checksum, c = guest TSC cycles */
	KL_MSG_CHECK,		/* a named check: status 0 = pass, text = name */
	KL_MSG_NOTE,		/* free text for the log */
	KL_MSG_EXIT,		/* done: status = exit code (0 = success) */
};

#define KL_MSG_TEXT_LEN		112

struct kl_msg {
	uint32_t type;
	uint32_t status;
	uint64_t a;
	uint64_t b;
	uint64_t c;
	char text[KL_MSG_TEXT_LEN];	/* NUL-terminated */
};

/*
 * Workload parameters. Each one is a descriptor in the ELF section
 * KL_PARAM_SECTION; the harness reads the section to validate --param
 * names before any VM exists, and writes the final value into `value` in
 * guest memory before the first instruction runs.
 */
#define KL_PARAM_SECTION	".kl_params"
/*
 * A workload whose image has this (unloaded) section is a tool, not a
 * benchmark (the MMU fuzzer's guest, isolation probes, garbage code):
 * `--workload all` leaves it out; naming it still runs it.
 */
#define KL_TOOL_SECTION		".kl_tool"
/*
 * A workload whose image has this (unloaded) section starts in real mode
 * at its ELF entry (below 64 KiB, CS=0), paging off and no boot tables,
 * as a PC's code after the BIOS does; it talks through the same ports.
 */
#define KL_REALMODE_SECTION	".kl_realmode"
/*
 * A workload whose image has this (unloaded) section has a local APIC per
 * vCPU at 0xfee00000 even with one vCPU (`--vcpus`: see kl_boot_info); it
 * may start secondary CPUs. Any other image has no APIC unless it is given
 * several vCPUs: its gpa 0xfee00000 is outside RAM like any other.
 */
#define KL_SMP_SECTION		".kl_smp"

#define KL_PARAM_NAME_LEN	24
#define KL_PARAM_HELP_LEN	80

struct kl_param {
	char name[KL_PARAM_NAME_LEN];
	char help[KL_PARAM_HELP_LEN];
	uint64_t def;
	uint64_t min;
	uint64_t max;
	uint64_t value;
};

#endif
