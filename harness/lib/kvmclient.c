// SPDX-License-Identifier: GPL-2.0
/* The KVM-client library (see kvmclient.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <kvmlab/x86.h>
#include "kvmclient.h"

int kc_open(const char *device)
{
	int fd = open(device, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (ioctl(fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		close(fd);
		errno = EPROTONOSUPPORT;
		return -1;
	}
	return fd;
}

/*
 * VT-x without unrestricted guest (kvm_intel ept=0) runs real mode in
 * virtual-8086 mode on a three-page TSS it keeps in guest-physical space,
 * and refuses to run until told where: there, where QEMU puts it (below the
 * BIOS at the top of 4 GiB, above the local APIC). Elsewhere it is a no-op.
 */
#define KC_TSS_ADDR	0xfeffd000UL

int kc_create_vm(struct kc_vm *vm, int sys_fd, unsigned long type)
{
	*vm = (struct kc_vm) { .sys_fd = sys_fd, .fd = -1 };
	vm->fd = ioctl(sys_fd, KVM_CREATE_VM, type);
	if (vm->fd < 0)
		return -1;
	if (ioctl(vm->fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_TSS_ADDR) > 0 &&
	    ioctl(vm->fd, KVM_SET_TSS_ADDR, KC_TSS_ADDR)) {
		int e = errno;

		close(vm->fd);
		vm->fd = -1;
		errno = e;
		return -1;
	}
	return 0;
}

int kc_set_memslot(int vm_fd, uint32_t slot, uint32_t flags, uint64_t gpa, uint64_t bytes,
		   void *hva)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot, .flags = flags, .guest_phys_addr = gpa, .memory_size = bytes,
		.userspace_addr = (uintptr_t)hva,
	};

	return ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r);
}

int kc_get_dirty_log(int vm_fd, uint32_t slot, uint64_t *bitmap)
{
	struct kvm_dirty_log log = { .slot = slot, .dirty_bitmap = bitmap };

	return ioctl(vm_fd, KVM_GET_DIRTY_LOG, &log);
}

int kc_clear_dirty_log(int vm_fd, uint32_t slot, uint64_t first, uint32_t n, uint64_t *bitmap)
{
	struct kvm_clear_dirty_log log = {
		.slot = slot, .first_page = first, .num_pages = n, .dirty_bitmap = bitmap,
	};

	return ioctl(vm_fd, KVM_CLEAR_DIRTY_LOG, &log);
}

int kc_add_ram(struct kc_vm *vm, uint32_t slot, uint64_t gpa, uint64_t bytes)
{
	void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (mem == MAP_FAILED)
		return -1;
	if (kc_set_memslot(vm->fd, slot, 0, gpa, bytes, mem)) {
		int e = errno;

		munmap(mem, bytes);
		errno = e;
		return -1;
	}
	vm->mem = mem;
	vm->mem_bytes = bytes;
	vm->ram_gpa = gpa;
	return 0;
}

struct kc_vcpu *kc_create_vcpu(struct kc_vm *vm, int id)
{
	struct kc_vcpu *v;
	int size;

	if (vm->nr_vcpus >= KC_MAX_VCPUS) {
		errno = ENOSPC;
		return NULL;
	}
	size = ioctl(vm->sys_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size < (int)sizeof(struct kvm_run)) {
		errno = size < 0 ? errno : EPROTO;
		return NULL;
	}
	v = &vm->vcpus[vm->nr_vcpus];
	*v = (struct kc_vcpu) { .id = id, .run_size = size };
	v->fd = ioctl(vm->fd, KVM_CREATE_VCPU, id);
	if (v->fd < 0)
		return NULL;
	v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		int e = errno;

		close(v->fd);
		errno = e;
		return NULL;
	}
	vm->nr_vcpus++;
	return v;
}

void kc_vm_close(struct kc_vm *vm)
{
	for (int i = 0; i < vm->nr_vcpus; i++) {
		munmap(vm->vcpus[i].run, vm->vcpus[i].run_size);
		close(vm->vcpus[i].fd);
	}
	vm->nr_vcpus = 0;
	if (vm->fd >= 0)
		close(vm->fd);
	vm->fd = -1;
	if (vm->mem)
		munmap(vm->mem, vm->mem_bytes);
	vm->mem = NULL;
}

void kc_cpuid_policy(struct kvm_cpuid2 *c, bool apic)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 e = c->entries[i];

		if (e.function >= 0x40000000 && e.function < 0x50000000)
			continue;	/* paravirtual leaves (kvmclock & co.) */
		if (e.function != 0 && e.function < 0x80000000 && e.function != 1 && e.function != 7)
			continue;
		if (e.function == 0 && e.eax > KL_CPUID_POLICY_MAX_BASIC)
			e.eax = KL_CPUID_POLICY_MAX_BASIC;
		if (e.function == 1) {
			e.ecx &= KL_CPUID_1_ECX_KEEP & ~KL_CPUID_1_ECX_XSAVE;
			e.ecx |= KL_CPUID_1_ECX_HYPERVISOR;
			e.edx &= ~KL_CPUID_1_EDX_DROP;
			if (apic)
				e.edx |= KL_CPUID_1_EDX_APIC;
		}
		if (e.function == 7) {
			if (e.index != 0)
				continue;
			e.eax = 0;
			e.ebx &= KL_CPUID_7_EBX_KEEP;
			e.ecx = e.edx = 0;
		}
		if (e.function == 0x80000001) {
			e.ecx &= KL_CPUID_E1_ECX_KEEP;
			e.edx &= KL_CPUID_E1_EDX_KEEP;
		}
		c->entries[n++] = e;
	}
	c->nent = n;
}

int kc_set_cpuid(int sys_fd, int vcpu_fd, bool policy, bool apic)
{
	return kc_set_vcpu_cpuid(sys_fd, vcpu_fd, policy, apic, 0);
}

/* As a PC's CPUs, each vCPU's leaf 1 says its initial APIC ID (EBX[31:24]), as QEMU sets it. */
int kc_set_vcpu_cpuid(int sys_fd, int vcpu_fd, bool policy, bool apic, uint8_t apic_id)
{
	int n = 128, rc, e;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));

	if (!c)
		return -1;
	c->nent = n;
	rc = ioctl(sys_fd, KVM_GET_SUPPORTED_CPUID, c);
	if (rc == 0 && policy)
		kc_cpuid_policy(c, apic);
	for (uint32_t i = 0; rc == 0 && i < c->nent; i++)
		if (c->entries[i].function == 1)
			c->entries[i].ebx = (c->entries[i].ebx & 0x00ffffff) | (uint32_t)apic_id << 24;
	if (rc == 0)
		rc = ioctl(vcpu_fd, KVM_SET_CPUID2, c);
	e = errno;
	free(c);
	errno = e;
	return rc;
}

struct kvm_segment kc_flat_segment(uint16_t selector, bool code, bool long64)
{
	return (struct kvm_segment) {
		.base = 0, .limit = 0xffffffff, .selector = selector, .type = code ? 11 : 3,
		.present = 1, .s = 1, .g = 1, .l = code && long64, .db = !(code && long64),
	};
}

void kc_flat_segments(struct kvm_sregs *s, void *gdt, uint64_t gdt_gpa, uint16_t code_sel,
		      bool long64)
{
	uint64_t *e = (uint64_t *)gdt + code_sel / 8;

	e[0] = long64 ? KL_GDT_CODE64 : KL_GDT_CODE32;
	e[1] = KL_GDT_DATA;
	s->cs = kc_flat_segment(code_sel, true, long64);
	s->ds = s->es = s->fs = s->gs = s->ss = kc_flat_segment(code_sel + 8, false, long64);
	s->gdt.base = gdt_gpa;
	s->gdt.limit = code_sel + 16 - 1;
}

void kc_long_mode_paging(struct kvm_sregs *s, uint64_t cr3)
{
	s->cr0 = KL_CR0_PE | KL_CR0_ET | KL_CR0_PG;
	s->cr3 = cr3;
	s->cr4 = KL_CR4_PAE;
	s->efer = KL_EFER_LME | KL_EFER_LMA;
}

int kc_start_long_mode(struct kc_vm *vm, struct kc_vcpu *v, uint64_t gdt_gpa, uint64_t pml4_gpa,
		       const struct kvm_regs *regs)
{
	struct kvm_sregs sregs;

	if (kc_set_cpuid(vm->sys_fd, v->fd, true, false) || ioctl(v->fd, KVM_GET_SREGS, &sregs))
		return -1;
	kc_flat_segments(&sregs, vm->mem + (gdt_gpa - vm->ram_gpa), gdt_gpa, 8, true);
	kc_long_mode_paging(&sregs, pml4_gpa);
	sregs.cr0 |= KL_CR0_MP | KL_CR0_NE | KL_CR0_WP;
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) || ioctl(v->fd, KVM_SET_REGS, regs))
		return -1;
	return 0;
}

void kc_set_gate(uint8_t *idt, bool long64, int vector, uint64_t handler, int ist)
{
	uint64_t gate = (handler & 0xffff) | (8ULL << 16) | ((uint64_t)ist << 32) |
			(0x8eULL << 40) | ((uint64_t)((handler >> 16) & 0xffff) << 48);

	memcpy(idt + vector * (long64 ? 16 : 8), &gate, 8);
	if (long64)
		memset(idt + vector * 16 + 8, 0, 8);	/* handler bits 63:32 are 0 here */
}

void kc_write_identity_map(uint8_t *mem, uint64_t pml4_gpa, uint64_t bytes)
{
	uint64_t *pml4 = (void *)(mem + pml4_gpa);
	uint64_t *pdpt = (void *)(mem + pml4_gpa + 0x1000);
	uint64_t *pd = (void *)(mem + pml4_gpa + 0x2000);

	memset(pml4, 0, 6 * 0x1000);
	pml4[0] = (pml4_gpa + 0x1000) | KL_PT_P | KL_PT_W;
	for (int i = 0; i < 4; i++)
		pdpt[i] = (pml4_gpa + 0x2000 + i * 0x1000) | KL_PT_P | KL_PT_W;
	for (uint64_t pa = 0, i = 0; pa < bytes && i < 2048; pa += 2ULL << 20, i++)
		pd[i] = pa | KL_PT_P | KL_PT_W | KL_PT_PS;
}

int kc_stats_fds(const struct kc_vm *vm, const struct kc_vcpu *v, int *vm_sfd, int *vcpu_sfd)
{
	*vm_sfd = *vcpu_sfd = -1;
	if (ioctl(vm->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_BINARY_STATS_FD) <= 0)
		return 0;
	*vm_sfd = ioctl(vm->fd, KVM_GET_STATS_FD, NULL);
	*vcpu_sfd = ioctl(v->fd, KVM_GET_STATS_FD, NULL);
	if (*vm_sfd >= 0 && *vcpu_sfd >= 0)
		return 0;
	if (*vm_sfd >= 0)
		close(*vm_sfd);
	if (*vcpu_sfd >= 0)
		close(*vcpu_sfd);
	*vm_sfd = *vcpu_sfd = -1;
	return -1;
}

int kc_run_loop(struct kc_vcpu *v, const struct kc_loop *loop, void *ctx)
{
	for (;;) {
		int rc;

		if (loop->before) {
			rc = loop->before(ctx);
			if (rc)
				return rc > 0 ? 0 : -1;
		}
		rc = ioctl(v->fd, KVM_RUN, 0);
		v->run->immediate_exit = 0;
		if (loop->stop && loop->stop(ctx))
			return -1;
		if (rc < 0 && errno != EINTR) {
			if (loop->run_failed)
				loop->run_failed(ctx, errno);
			return -1;
		}
		if (rc < 0 || v->run->exit_reason == KVM_EXIT_INTR) {
			rc = loop->interrupted ? loop->interrupted(ctx) : 0;
			if (rc)
				return rc > 0 ? 0 : -1;
			continue;
		}
		rc = loop->exit(ctx, v->run);
		if (rc)
			return rc > 0 ? 0 : -1;
	}
}
