/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The KVM-client library: everything a program needs to drive a device
 * that speaks the KVM ioctl ABI (Linux KVM's /dev/kvm, kvmlab's
 * /dev/kvmlab) — the device, a VM, memslots, vCPUs with their kvm_run,
 * the CPUID policy, a flat 64-bit start, the statistics fds and a run-loop
 * skeleton. The harness, both fuzzers and the ABI tests link it
 * (libkvmclient.a).
 *
 * Functions return 0 (or an fd) on success and -1 with errno set on
 * failure, as the ioctls do; they print nothing, so each program reports
 * errors its own way.
 */
#ifndef KVMLAB_KVMCLIENT_H
#define KVMLAB_KVMCLIENT_H

#include <linux/kvm.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KC_MAX_VCPUS	8

struct kc_vcpu {
	int fd;
	int id;
	struct kvm_run *run;	/* mmap'd from the vCPU fd */
	size_t run_size;
};

struct kc_vm {
	int sys_fd;		/* the device */
	int fd;			/* the VM */
	uint8_t *mem;		/* guest RAM from kc_add_ram: gpa ram_gpa .. + mem_bytes */
	uint64_t mem_bytes, ram_gpa;
	struct kc_vcpu vcpus[KC_MAX_VCPUS];
	int nr_vcpus;
};

/* Open the device and check it speaks KVM_API_VERSION (else EPROTONOSUPPORT). */
int kc_open(const char *device);
/* KVM_CREATE_VM with `type` on an open device; vm is initialised (fds -1) even on failure. */
int kc_create_vm(struct kc_vm *vm, int sys_fd, unsigned long type);
/* KVM_SET_USER_MEMORY_REGION. */
int kc_set_memslot(int vm_fd, uint32_t slot, uint32_t flags, uint64_t gpa, uint64_t bytes,
		   void *hva);
/*
 * Dirty logging of a slot made with KVM_MEM_LOG_DIRTY_PAGES: KVM_GET_DIRTY_LOG
 * into `bitmap` (one bit per page, in longs); KVM_CLEAR_DIRTY_LOG of the bits
 * set in `bitmap` for pages [first, first + n) (manual protection enabled).
 */
int kc_get_dirty_log(int vm_fd, uint32_t slot, uint64_t *bitmap);
int kc_clear_dirty_log(int vm_fd, uint32_t slot, uint64_t first, uint32_t n, uint64_t *bitmap);
/* Anonymous memory (lazily backed) in `slot` at `gpa`; becomes vm->mem. */
int kc_add_ram(struct kc_vm *vm, uint32_t slot, uint64_t gpa, uint64_t bytes);
/* KVM_CREATE_VCPU and its kvm_run mapping: the new vCPU, or NULL with errno. */
struct kc_vcpu *kc_create_vcpu(struct kc_vm *vm, int id);
/* Everything kc_* made for this VM, in the order KVM wants; sys_fd stays open. */
void kc_vm_close(struct kc_vm *vm);

/*
 * kvmlab's CPUID policy (<kvmlab/x86.h>) applied to a supported set: the
 * same features under every hypervisor, no paravirtual leaves. The local
 * APIC bit only with `apic` (a device model that has one).
 */
void kc_cpuid_policy(struct kvm_cpuid2 *c, bool apic);
/* KVM_GET_SUPPORTED_CPUID, then the policy when `policy`, then KVM_SET_CPUID2. */
int kc_set_cpuid(int sys_fd, int vcpu_fd, bool policy, bool apic);
int kc_set_vcpu_cpuid(int sys_fd, int vcpu_fd, bool policy, bool apic, uint8_t apic_id);

/* A flat segment (base 0, limit 4 GiB): 64-bit code when code && long64. */
struct kvm_segment kc_flat_segment(uint16_t selector, bool code, bool long64);
/*
 * Flat code at `code_sel` and data right after it: the two GDT entries
 * (in the GDT at `gdt`, guest address gdt_gpa) and the segment registers
 * and GDTR in sregs (read first with KVM_GET_SREGS).
 */
void kc_flat_segments(struct kvm_sregs *s, void *gdt, uint64_t gdt_gpa, uint16_t code_sel,
		      bool long64);
/* Paging on in long mode: CR0 PE|ET|PG, CR3 = cr3, CR4.PAE, EFER LME|LMA (the caller adds more). */
void kc_long_mode_paging(struct kvm_sregs *s, uint64_t cr3);
/*
 * A vCPU ready to run 64-bit code: kvmlab's CPUID policy (no APIC), flat
 * segments with their GDT at gdt_gpa in vm->mem, long-mode paging on the
 * tables at pml4_gpa with CR0.MP|NE|WP, and `regs` (RIP and arguments).
 */
int kc_start_long_mode(struct kc_vm *vm, struct kc_vcpu *v, uint64_t gdt_gpa, uint64_t pml4_gpa,
		       const struct kvm_regs *regs);
/* An interrupt gate to `handler` at selector 8: 8 bytes in 32-bit IDTs, 16 in 64-bit ones. */
void kc_set_gate(uint8_t *idt, bool long64, int vector, uint64_t handler, int ist);
/* Identity map of [0, min(bytes, 4 GiB)) in 2 MiB pages: PML4 at pml4_gpa, PDPT and 4 PDs after. */
void kc_write_identity_map(uint8_t *mem, uint64_t pml4_gpa, uint64_t bytes);

/* KVM_GET_STATS_FD of the VM and of a vCPU when the device has binary stats, else -1 each. */
int kc_stats_fds(const struct kc_vm *vm, const struct kc_vcpu *v, int *vm_sfd, int *vcpu_sfd);

/*
 * The run-loop skeleton every client's loop has: before each KVM_RUN the
 * client's `before` (inject, arm timers); after each return `stop` (a
 * timeout), then EINTR means `interrupted` and run again, then `exit`
 * serves the exit. A
 * callback returning nonzero ends the loop: >0 done (loop returns 0),
 * <0 failed (loop returns -1). `run_failed` hears of a KVM_RUN error.
 */
struct kc_loop {
	int (*before)(void *ctx);
	int (*stop)(void *ctx);
	/*
	 * KVM_RUN returned EINTR (a signal, immediate_exit): the last exit's
	 * instruction is complete and none is pending, so the vCPU's state
	 * is whole, the one moment to save it (a migration does). Optional.
	 */
	int (*interrupted)(void *ctx);
	int (*exit)(void *ctx, struct kvm_run *run);
	void (*run_failed)(void *ctx, int err);
};

int kc_run_loop(struct kc_vcpu *v, const struct kc_loop *loop, void *ctx);

#endif
