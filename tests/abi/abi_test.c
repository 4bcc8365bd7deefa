// SPDX-License-Identifier: GPL-2.0
/*
 * kvmlab-abi-test DEVICE: the KVM ioctl ABI's error paths and basics,
 * checked against any device that claims to speak it. Each check prints
 * PASS or FAIL with its name; the last line is "N passed, M failed".
 * Run against /dev/kvm too: the expectations are the KVM API document's.
 *
 * kvmlab-abi-test --expect-busy DEVICE: KVM_CREATE_VM must fail with EBUSY
 * (another hypervisor owns SVM).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <kvmlab/x86.h>
#include "../../harness/lib/kvmclient.h"

static int passed, failed;
static bool kvmlab_device;	/* the device is kvmlab's (not Linux KVM's) */

/* alarm() bounds each guest run: KVM_RUN returns (EINTR) and the check fails. */
static void on_alarm(int sig)
{
	(void)sig;
}

static void check(const char *name, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void check(const char *name, bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s %s", ok ? "PASS" : "FAIL", name);
	if (!ok) {
		printf(": ");
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
	}
	printf("\n");
	ok ? passed++ : failed++;
}

/* An ioctl expected to fail with `want`. */
static void expect_errno(const char *name, int rc, int want)
{
	int e = errno;

	check(name, rc == -1 && e == want, "returned %d, errno %d (%s); expected errno %d (%s)",
	      rc, rc == -1 ? e : 0, rc == -1 ? strerror(e) : "-", want, strerror(want));
}

/* KVM_RUN under a 10 s watchdog: a guest that never exits fails the test, not the boot. */
static int run_vcpu(int vcpu)
{
	int r;

	alarm(10);
	r = ioctl(vcpu, KVM_RUN, 0);
	alarm(0);
	return r;
}

static int set_slot(int vm, uint32_t slot, uint32_t flags, uint64_t gpa, uint64_t size,
		    uint64_t hva)
{
	return kc_set_memslot(vm, slot, flags, gpa, size, (void *)(uintptr_t)hva);
}

/* Dirty logging's bad arguments, on slot 1 (2 MiB at 8 MiB). */
static void dirty_log(int vm, uint64_t hva)
{
	uint64_t mb = 1 << 20, bitmap[8] = { 0 };
	struct kvm_dirty_log log = { .slot = 1, .dirty_bitmap = bitmap };
	struct kvm_enable_cap cap = { .cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, .args = { 1 << 7 } };

	check("cap_manual_dirty_log_protect2",
	      (ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) & 3) == 3, "%s", "");
	expect_errno("dirty_log_no_slot", ioctl(vm, KVM_GET_DIRTY_LOG, &log), ENOENT);
	check("dirty_log_slot", set_slot(vm, 1, KVM_MEM_LOG_DIRTY_PAGES, 8 * mb, 2 * mb,
					 hva + 2 * mb) == 0, "errno %d", errno);
	check("dirty_log_get", ioctl(vm, KVM_GET_DIRTY_LOG, &log) == 0 && !bitmap[0], "errno %d",
	      errno);
	log.slot = 1 | (1 << 16);	/* address space 1: SMM's, not offered */
	expect_errno("dirty_log_other_address_space", ioctl(vm, KVM_GET_DIRTY_LOG, &log), EINVAL);
	log.slot = 40000;
	expect_errno("dirty_log_bad_slot", ioctl(vm, KVM_GET_DIRTY_LOG, &log), EINVAL);
	log = (struct kvm_dirty_log) { .slot = 1, .dirty_bitmap = (void *)8 };
	expect_errno("dirty_log_bad_bitmap", ioctl(vm, KVM_GET_DIRTY_LOG, &log), EFAULT);
	expect_errno("dirty_log_bad_pointer", ioctl(vm, KVM_GET_DIRTY_LOG, (void *)8), EFAULT);
	expect_errno("clear_dirty_log_unaligned",
		     kc_clear_dirty_log(vm, 1, 3, 64, bitmap), EINVAL);
	expect_errno("clear_dirty_log_past_end",
		     kc_clear_dirty_log(vm, 1, 448, 128, bitmap), EINVAL);
	expect_errno("clear_dirty_log_bad_bitmap",
		     kc_clear_dirty_log(vm, 1, 0, 64, (void *)8), EFAULT);
	expect_errno("manual_dirty_log_unknown_flag", ioctl(vm, KVM_ENABLE_CAP, &cap), EINVAL);
	expect_errno("dirty_log_readonly_change",
		     set_slot(vm, 1, KVM_MEM_READONLY, 8 * mb, 2 * mb, hva + 2 * mb), EINVAL);
	check("dirty_log_off", set_slot(vm, 1, 0, 8 * mb, 2 * mb, hva + 2 * mb) == 0 &&
	      ioctl(vm, KVM_GET_DIRTY_LOG, &(struct kvm_dirty_log){ .slot = 1, .dirty_bitmap = bitmap })
	      == -1 && errno == ENOENT, "errno %d", errno);
	check("dirty_log_slot_delete", set_slot(vm, 1, 0, 8 * mb, 0, hva + 2 * mb) == 0,
	      "errno %d", errno);
}

static void memslots(int vm, uint8_t *mem)
{
	uint64_t hva = (uint64_t)mem, mb = 1 << 20;

	expect_errno("memslot_unaligned_gpa", set_slot(vm, 0, 0, 0x1001, mb, hva), EINVAL);
	expect_errno("memslot_unaligned_size", set_slot(vm, 0, 0, 0, mb + 1, hva), EINVAL);
	expect_errno("memslot_unaligned_hva", set_slot(vm, 0, 0, 0, mb, hva + 8), EINVAL);
	expect_errno("memslot_bad_slot_id", set_slot(vm, 40000, 0, 0, mb, hva), EINVAL);
	expect_errno("memslot_unknown_flags", set_slot(vm, 0, 0x80, 0, mb, hva), EINVAL);
	expect_errno("memslot_kernel_hva", set_slot(vm, 0, 0, 0, mb, 0xffff888000000000ULL), EINVAL);
	expect_errno("memslot_bad_pointer", ioctl(vm, KVM_SET_USER_MEMORY_REGION, (void *)8), EFAULT);
	check("memslot_create", set_slot(vm, 0, 0, 0, 2 * mb, hva) == 0, "errno %d", errno);
	expect_errno("memslot_overlap", set_slot(vm, 1, 0, mb, 2 * mb, hva + 2 * mb), EEXIST);
	check("memslot_second", set_slot(vm, 1, 0, 2 * mb, 2 * mb, hva + 2 * mb) == 0,
	      "errno %d", errno);
	expect_errno("memslot_resize_refused", set_slot(vm, 1, 0, 2 * mb, mb, hva + 2 * mb), EINVAL);
	check("memslot_move", set_slot(vm, 1, 0, 8 * mb, 2 * mb, hva + 2 * mb) == 0,
	      "errno %d", errno);
	check("memslot_delete", set_slot(vm, 1, 0, 8 * mb, 0, hva + 2 * mb) == 0, "errno %d", errno);
	dirty_log(vm, hva);
}

static void vcpu_checks(int dev, int vm)
{
	struct kvm_sregs sregs;
	int vcpu, mmap_size = ioctl(dev, KVM_GET_VCPU_MMAP_SIZE, 0);
	struct {
		struct kvm_cpuid2 head;
		struct kvm_cpuid_entry2 e[1];
	} cpuid = { .head.nent = 100000 };
	void *run;

	expect_errno("vcpu_id_too_large", ioctl(vm, KVM_CREATE_VCPU, 100000), EINVAL);
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	check("vcpu_create", vcpu >= 0, "errno %d", errno);
	if (vcpu < 0)
		return;
	expect_errno("vcpu_duplicate_id", ioctl(vm, KVM_CREATE_VCPU, 0), EEXIST);
	expect_errno("vcpu_unknown_ioctl", ioctl(vcpu, _IO(KVMIO, 0xfe)), ENOTTY);
	check("vcpu_mmap_size", mmap_size >= 4096, "size %d", mmap_size);
	run = mmap(NULL, mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	check("vcpu_mmap_run", run != MAP_FAILED, "errno %d", errno);
	expect_errno("vcpu_get_regs_bad_pointer", ioctl(vcpu, KVM_GET_REGS, (void *)8), EFAULT);
	expect_errno("vcpu_cpuid_too_many", ioctl(vcpu, KVM_SET_CPUID2, &cpuid), E2BIG);
	ioctl(vcpu, KVM_GET_SREGS, &sregs);
	sregs.cr0 = 0x80000000;		/* PG without PE */
	expect_errno("sregs_pg_without_pe", ioctl(vcpu, KVM_SET_SREGS, &sregs), EINVAL);
	ioctl(vcpu, KVM_GET_SREGS, &sregs);
	sregs.efer = 0x400;		/* LMA without LME and paging */
	expect_errno("sregs_lma_without_lme", ioctl(vcpu, KVM_SET_SREGS, &sregs), EINVAL);
	ioctl(vcpu, KVM_GET_SREGS, &sregs);
	sregs.cs.l = 1;			/* 64-bit code segment, but paging off */
	sregs.efer = 0x100;
	expect_errno("sregs_cs_l_outside_long_mode", ioctl(vcpu, KVM_SET_SREGS, &sregs), EINVAL);
	expect_errno("run_with_argument", ioctl(vcpu, KVM_RUN, 1), EINVAL);
	if (run != MAP_FAILED)
		munmap(run, mmap_size);
	close(vcpu);
}

/* A vCPU in 64-bit mode whose page tables point at memory that is not there. */
static void run_without_memory(int dev)
{
	struct kvm_regs regs = { .rip = 0x100000, .rflags = 2 };
	struct kc_vcpu *v = NULL;
	struct kvm_sregs sregs;
	struct kc_vm vm;
	int rc;

	if (kc_create_vm(&vm, dev, 0) == 0)
		v = kc_create_vcpu(&vm, 0);
	if (!v) {
		check("run_without_memory", false, "setup failed: errno %d", errno);
		goto out;
	}
	ioctl(v->fd, KVM_GET_SREGS, &sregs);
	kc_long_mode_paging(&sregs, 0x2000);
	sregs.cr0 |= KL_CR0_MP | KL_CR0_NE | KL_CR0_WP;
	sregs.cs = kc_flat_segment(8, true, true);
	ioctl(v->fd, KVM_SET_SREGS, &sregs);
	ioctl(v->fd, KVM_SET_REGS, &regs);
	rc = run_vcpu(v->fd);
	check("run_without_memory", rc == 0 && (v->run->exit_reason == KVM_EXIT_INTERNAL_ERROR ||
					       v->run->exit_reason == KVM_EXIT_MMIO ||
					       v->run->exit_reason == KVM_EXIT_SHUTDOWN ||
					       v->run->exit_reason == KVM_EXIT_FAIL_ENTRY),
	      "rc %d errno %d exit_reason %u", rc, errno, v->run->exit_reason);
out:
	kc_vm_close(&vm);
}

/* One VM of a type with 64 KiB of memory at gpa 0 and one vCPU, its kvm_run mapped. */
struct guest {
	struct kc_vm kc;
	int vm, vcpu;
	uint8_t *mem;
	struct kvm_run *run;
};

/*
 * false when there is nothing to run: the device has no such VM type (not
 * a failure: kvmlab's types on another device), or the setup failed
 * (reported as a failed `what`).
 */
static bool guest_open(struct guest *g, int dev, unsigned long type, const char *what)
{
	struct kc_vcpu *v = NULL;

	*g = (struct guest) { .vm = -1, .vcpu = -1 };
	if (kc_create_vm(&g->kc, dev, type))
		return type ? false : (check(what, false, "KVM_CREATE_VM: errno %d", errno), false);
	if (kc_add_ram(&g->kc, 0, 0, 1 << 16) == 0)
		v = kc_create_vcpu(&g->kc, 0);
	if (!v) {
		check(what, false, "setup failed: errno %d", errno);
		kc_vm_close(&g->kc);
		return false;
	}
	g->vm = g->kc.fd;
	g->vcpu = v->fd;
	g->mem = g->kc.mem;
	g->run = v->run;
	return true;
}

static void guest_close(struct guest *g)
{
	kc_vm_close(&g->kc);
}

static void set_gate(uint8_t *idt, bool long64, int vector, uint32_t handler, int ist)
{
	kc_set_gate(idt, long64, vector, handler, ist);
}

/*
 * 64-bit flat state, paging on: GDT at 0x1c00 (code 8, data 16), IDT at
 * 0x1800, PML4 0x2000 -> PDPT 0x3000 -> PD 0x4000 -> PT 0x5000, which maps
 * the 64 KiB one to one. The caller changes what its test needs.
 */
static void long_mode_state(struct guest *g, struct kvm_sregs *sregs)
{
	uint64_t *pt = (uint64_t *)(g->mem + 0x5000);

	*(uint64_t *)(g->mem + 0x2000) = 0x3000 | KL_PT_P | KL_PT_W;
	*(uint64_t *)(g->mem + 0x3000) = 0x4000 | KL_PT_P | KL_PT_W;
	*(uint64_t *)(g->mem + 0x4000) = 0x5000 | KL_PT_P | KL_PT_W;
	for (int i = 0; i < 16; i++)
		pt[i] = ((uint64_t)i << 12) | KL_PT_P | KL_PT_W;
	ioctl(g->vcpu, KVM_GET_SREGS, sregs);
	kc_flat_segments(sregs, g->mem + 0x1c00, 0x1c00, 8, true);
	sregs->idt = (struct kvm_dtable) { .base = 0x1800, .limit = 0xfff };
	kc_long_mode_paging(sregs, 0x2000);
	sregs->cr0 |= KL_CR0_MP | KL_CR0_NE | KL_CR0_WP;
}

/*
 * 32-bit code at 0x1000 with paging off (every strategy can run it), a
 * handler for `vector` at 0x1100, an IDT at 0x2000, a GDT at 0x3000.
 */
static void protected_mode_guest(struct guest *g, const uint8_t *code, size_t code_len,
				 const uint8_t *handler, size_t handler_len, int vector)
{
	struct kvm_regs regs = { .rip = 0x1000, .rflags = 2, .rsp = 0x8000 };
	struct kvm_sregs sregs;

	memcpy(g->mem + 0x1000, code, code_len);
	memcpy(g->mem + 0x1100, handler, handler_len);
	set_gate(g->mem + 0x2000, false, vector, 0x1100, 0);
	ioctl(g->vcpu, KVM_GET_SREGS, &sregs);
	kc_flat_segments(&sregs, g->mem + 0x3000, 0x3000, 8, false);
	sregs.idt = (struct kvm_dtable) { .base = 0x2000, .limit = 0x1ff };
	sregs.cr0 = KL_CR0_PE | KL_CR0_ET;
	ioctl(g->vcpu, KVM_SET_SREGS, &sregs);
	ioctl(g->vcpu, KVM_SET_REGS, &regs);
}

/*
 * Interrupt injection with a userspace interrupt controller, the protocol
 * a device model follows: inject only when ready, else ask for the window.
 * The guest runs 32-bit code with paging off (every strategy can):
 *   0x1000: cli; out 0x10; sti; nop; nop; out 0x11; hlt
 *   0x1100: out 0x12; iret           (vector 0x30)
 */
static void interrupts(int dev)
{
	static const uint8_t code[] = { 0xfa, 0xe6, 0x10, 0xfb, 0x90, 0x90, 0xe6, 0x11, 0xf4 };
	static const uint8_t handler[] = { 0xe6, 0x12, 0xcf };
	struct kvm_interrupt irq = { .irq = 0x30 };
	struct kvm_run *run;
	struct guest g;
	int vcpu;

	if (!guest_open(&g, dev, 0, "irq_setup"))
		goto out;
	vcpu = g.vcpu;
	run = g.run;
	protected_mode_guest(&g, code, sizeof(code), handler, sizeof(handler), 0x30);
	expect_errno("irq_vector_too_large", ioctl(vcpu, KVM_INTERRUPT, &(struct kvm_interrupt){ 256 }),
		     EINVAL);

	alarm(10);
	ioctl(vcpu, KVM_RUN, 0);
	check("irq_not_ready_with_if_clear", run->exit_reason == KVM_EXIT_IO && run->io.port == 0x10 &&
	      !run->if_flag && !run->ready_for_interrupt_injection, "exit %u port 0x%x if %u ready %u",
	      run->exit_reason, run->io.port, run->if_flag, run->ready_for_interrupt_injection);
	run->request_interrupt_window = 1;
	ioctl(vcpu, KVM_RUN, 0);
	check("irq_window_opens_after_sti", run->exit_reason == KVM_EXIT_IRQ_WINDOW_OPEN &&
	      run->if_flag && run->ready_for_interrupt_injection, "exit %u if %u ready %u",
	      run->exit_reason, run->if_flag, run->ready_for_interrupt_injection);
	run->request_interrupt_window = 0;
	check("irq_inject", ioctl(vcpu, KVM_INTERRUPT, &irq) == 0, "errno %d", errno);
	ioctl(vcpu, KVM_RUN, 0);
	check("irq_handler_runs", run->exit_reason == KVM_EXIT_IO && run->io.port == 0x12,
	      "exit %u port 0x%x", run->exit_reason, run->io.port);
	ioctl(vcpu, KVM_RUN, 0);
	check("irq_handler_returns", run->exit_reason == KVM_EXIT_IO && run->io.port == 0x11,
	      "exit %u port 0x%x", run->exit_reason, run->io.port);
	ioctl(vcpu, KVM_RUN, 0);
	check("irq_halt_exits", run->exit_reason == KVM_EXIT_HLT, "exit %u", run->exit_reason);
	alarm(0);
out:
	guest_close(&g);
}

static bool port_exit(struct kvm_run *run, uint16_t port)
{
	return run->exit_reason == KVM_EXIT_IO && run->io.port == port;
}

static void nmi_state(int vcpu, const char *name, const char *what, bool pending, bool masked)
{
	struct kvm_vcpu_events ev = { 0 };
	char full[96];
	int rc = ioctl(vcpu, KVM_GET_VCPU_EVENTS, &ev);

	snprintf(full, sizeof(full), "nmi_%s_%s", what, name);
	check(full, rc == 0 && (ev.flags & KVM_VCPUEVENT_VALID_NMI_PENDING) &&
	      ev.nmi.pending == pending && ev.nmi.masked == masked && !ev.nmi.injected,
	      "rc %d errno %d flags %#x pending %u masked %u injected %u", rc, errno, ev.flags,
	      ev.nmi.pending, ev.nmi.masked, ev.nmi.injected);
}

/*
 * KVM_NMI with a userspace interrupt controller (what an NMI IPI becomes):
 * an NMI goes in whatever IF says; while its handler runs, NMIs are masked
 * and a second one waits for the handler's IRET, never nesting, and is
 * taken right after it, before the next instruction (as a CPU takes an
 * NMI that IRET unblocks); one restored with KVM_SET_VCPU_EVENTS is
 * delivered too. 32-bit code, paging off, interrupts off throughout:
 *   0x1000: cli; out 0x10; 1: out 0x11; jmp 1b
 *   0x1100: out 0x12; out 0x13; iret        (the NMI handler, vector 2)
 */
static void nmi(int dev, unsigned long type, const char *name)
{
	static const uint8_t code[] = { 0xfa, 0xe6, 0x10, 0xe6, 0x11, 0xeb, 0xfc };
	static const uint8_t handler[] = { 0xe6, 0x12, 0xe6, 0x13, 0xcf };
	struct kvm_vcpu_events ev;
	struct kvm_run *run;
	struct guest g;
	char what[96];
	int vcpu;

	snprintf(what, sizeof(what), "nmi_setup_%s", name);
	if (!guest_open(&g, dev, type, what))
		goto out;
	vcpu = g.vcpu;
	run = g.run;
	protected_mode_guest(&g, code, sizeof(code), handler, sizeof(handler), 2);

	run_vcpu(vcpu);
	snprintf(what, sizeof(what), "nmi_goes_in_with_if_clear_%s", name);
	check(what, port_exit(run, 0x10) && ioctl(vcpu, KVM_NMI, 0) == 0, "exit %u port 0x%x "
	      "errno %d", run->exit_reason, run->io.port, errno);
	nmi_state(vcpu, name, "queued", true, false);
	run_vcpu(vcpu);
	check(what, port_exit(run, 0x12) && !run->if_flag, "exit %u port 0x%x if %u",
	      run->exit_reason, run->io.port, run->if_flag);
	nmi_state(vcpu, name, "masked_in_handler", false, true);
	ioctl(vcpu, KVM_NMI, 0);			/* the second waits for the IRET */
	run_vcpu(vcpu);
	snprintf(what, sizeof(what), "nmi_never_nests_%s", name);
	check(what, port_exit(run, 0x13), "exit %u port 0x%x", run->exit_reason, run->io.port);
	run_vcpu(vcpu);
	snprintf(what, sizeof(what), "nmi_second_right_after_iret_%s", name);
	check(what, port_exit(run, 0x12), "exit %u port 0x%x", run->exit_reason, run->io.port);
	run_vcpu(vcpu);
	run_vcpu(vcpu);
	check(what, port_exit(run, 0x11), "exit %u port 0x%x", run->exit_reason, run->io.port);
	nmi_state(vcpu, name, "unmasked_after_iret", false, false);
	ioctl(vcpu, KVM_GET_VCPU_EVENTS, &ev);
	ev.flags = KVM_VCPUEVENT_VALID_NMI_PENDING;
	ev.nmi.pending = 1;
	snprintf(what, sizeof(what), "nmi_restored_pending_%s", name);
	check(what, ioctl(vcpu, KVM_SET_VCPU_EVENTS, &ev) == 0, "errno %d", errno);
	run_vcpu(vcpu);
	check(what, port_exit(run, 0x12), "exit %u port 0x%x", run->exit_reason, run->io.port);
out:
	guest_close(&g);
}

/*
 * Long mode entered the way a 32-bit loader does it: EFER.LME set while
 * paging is off and CR4.PAE still clear, then PAE, then CR0.PG. Every exit
 * in between leaves the guest in "long mode enabled, not active". QEMU's
 * SVM (7.2) cannot #VMEXIT from that state: it restores the host's CR0.PG
 * with the guest's PAE=0 still loaded, skips the CR0 write, and the host
 * goes on with the guest's CR0 (paging off) until the machine hangs. A
 * hypervisor must keep that state out of the VMCB (kmod/README.md).
 *   0x1000: mov cr4,eax; or eax,0x20; mov eax,cr4
 *           mov cr0,eax; or eax,0x80000000; mov eax,cr0; hlt
 * Page tables at 0x2000 (PML4) → 0x3000 (PDPT) → 0x4000 (PD): 2 MiB identity.
 */
static void long_mode_entry(int dev, unsigned long type, const char *name)
{
	static const uint8_t code[] = {
		0x0f, 0x20, 0xe0, 0x83, 0xc8, 0x20, 0x0f, 0x22, 0xe0,
		0x0f, 0x20, 0xc0, 0x0d, 0x00, 0x00, 0x00, 0x80, 0x0f, 0x22, 0xc0, 0xf4,
	};
	struct kvm_segment cs = { .limit = 0xffffffff, .selector = 8, .type = 11, .present = 1,
				  .s = 1, .db = 1, .g = 1 };
	struct kvm_segment ds = cs;
	struct kvm_regs regs = { .rip = 0x1000, .rflags = 2, .rsp = 0x8000 };
	struct kvm_sregs sregs;
	struct guest g;
	char what[80];
	int rc;

	snprintf(what, sizeof(what), "long_mode_entry_from_lme_without_pae_%s", name);
	if (!guest_open(&g, dev, type, what))
		goto out;
	memcpy(g.mem + 0x1000, code, sizeof(code));
	*(uint64_t *)(g.mem + 0x2000) = 0x3003;
	*(uint64_t *)(g.mem + 0x3000) = 0x4003;
	*(uint64_t *)(g.mem + 0x4000) = 0x83;
	ioctl(g.vcpu, KVM_GET_SREGS, &sregs);
	ds.selector = 16;
	ds.type = 3;
	sregs.cs = cs;
	sregs.ds = sregs.es = sregs.ss = ds;
	sregs.cr0 = 0x11;
	sregs.cr3 = 0x2000;
	sregs.cr4 = 0;
	sregs.efer = 0x100;		/* LME */
	rc = ioctl(g.vcpu, KVM_SET_SREGS, &sregs);
	ioctl(g.vcpu, KVM_SET_REGS, &regs);
	alarm(10);
	if (rc == 0)
		rc = ioctl(g.vcpu, KVM_RUN, 0);
	alarm(0);
	ioctl(g.vcpu, KVM_GET_SREGS, &sregs);
	check(what, rc == 0 && g.run->exit_reason == KVM_EXIT_HLT && sregs.efer == 0x500 &&
	      (sregs.cr0 & 0x80000001) == 0x80000001 && (sregs.cr4 & 0x20),
	      "rc %d errno %d exit %u, efer 0x%llx cr0 0x%llx cr4 0x%llx", rc, errno,
	      g.run->exit_reason, (unsigned long long)sregs.efer, (unsigned long long)sregs.cr0,
	      (unsigned long long)sregs.cr4);
out:
	guest_close(&g);
}

/*
 * An interrupt whose frame lands on a page table. An interrupt arrives just
 * before a store; the guest's stack is on a page that is also one of its
 * last-level page tables. A strategy that write-protects page tables takes
 * a fault while the CPU pushes the frame: the instruction at RIP has not
 * run and must not be emulated. The frame must land, the handler run, and
 * the store after it still happen.
 *   0x1000: mov rdx,[rcx]; out 0x10; mov [rbx],rax; out 0x11; hlt
 *   0x1100: out 0x12; iretq          (vector 0x30)
 * Tables: 0x2000 PML4, 0x3000 PDPT, 0x4000 PD; PD[0] -> PT 0x5000 (VA 0..64K
 * identity), PD[1] -> PT 0x7000 (VA 2M..2M+64K onto the same 64 KiB), which
 * the first instruction puts to use. The stack is on the page of the
 * 0x7000 table, or with `self` on the page of the 0x5000 table, which
 * translates the stack's own address. That one mmu=cached cannot shadow
 * and let the CPU write at once: it must end the run with
 * KVM_INTERNAL_ERROR_DELIVERY_EV, as Linux KVM does for what it cannot
 * emulate while delivering an event, never loop or corrupt memory.
 */
static void irq_frame_on_page_table(int dev, unsigned long type, const char *name, bool self)
{
	static const uint8_t code[] = {
		0x48, 0x8b, 0x11, 0xe6, 0x10, 0x48, 0x89, 0x03, 0xe6, 0x11, 0xf4,
	};
	static const uint8_t handler[] = { 0xe6, 0x12, 0x48, 0xcf };
	uint64_t stack = self ? 0x5000 : 0x7000, *pt2, *frame;
	bool expect_error = self && !strcmp(name, "cached");
	struct kvm_regs regs = { .rip = 0x1000, .rsp = stack + 0x800, .rflags = 0x202,
				 .rax = 0x1234, .rbx = 0x6000, .rcx = 0x200000 };
	struct kvm_sregs sregs;
	struct kvm_run *run;
	unsigned int ports[3] = { 0 };
	bool stored, pushed, ok;
	struct guest g;
	char what[80];

	snprintf(what, sizeof(what), "irq_frame_on_%s_page_table_%s", self ? "its_own" : "a", name);
	if (!guest_open(&g, dev, type, what))
		goto out;
	run = g.run;
	pt2 = (uint64_t *)(g.mem + 0x7000);
	frame = (uint64_t *)(g.mem + stack);
	long_mode_state(&g, &sregs);
	memcpy(g.mem + 0x1000, code, sizeof(code));
	memcpy(g.mem + 0x1100, handler, sizeof(handler));
	set_gate(g.mem + 0x1800, true, 0x30, 0x1100, 0);
	*(uint64_t *)(g.mem + 0x4008) = 0x7003;		/* PD[1]: the second table */
	for (int i = 0; i < 16; i++)
		pt2[i] = ((uint64_t)i << 12) | 3;
	ioctl(g.vcpu, KVM_SET_SREGS, &sregs);
	ioctl(g.vcpu, KVM_SET_REGS, &regs);
	alarm(10);
	ioctl(g.vcpu, KVM_RUN, 0);
	if (run->exit_reason == KVM_EXIT_IO && run->io.port == 0x10 && run->ready_for_interrupt_injection)
		ioctl(g.vcpu, KVM_INTERRUPT, &(struct kvm_interrupt){ 0x30 });
	for (int i = 0; i < 3; i++) {
		if (ioctl(g.vcpu, KVM_RUN, 0) || run->exit_reason != KVM_EXIT_IO)
			break;
		ports[i] = run->io.port;
	}
	alarm(0);
	stored = *(uint64_t *)(g.mem + 0x6000) == 0x1234;
	pushed = frame[255] == 0x10 && frame[254] == stack + 0x800 && frame[253] == 0x202;
	if (expect_error)
		ok = run->exit_reason == KVM_EXIT_INTERNAL_ERROR &&
		     run->internal.suberror == KVM_INTERNAL_ERROR_DELIVERY_EV && !stored;
	else
		ok = ports[0] == 0x12 && ports[1] == 0x11 && run->exit_reason == KVM_EXIT_HLT &&
		     stored && pushed;
	check(what, ok, "ports 0x%x 0x%x, exit %u (suberror %u), store %s, frame %s", ports[0],
	      ports[1], run->exit_reason, run->exit_reason == KVM_EXIT_INTERNAL_ERROR ?
	      run->internal.suberror : 0, stored ? "done" : "not done", pushed ? "pushed" : "missing");
out:
	guest_close(&g);
}

/*
 * A fault while the CPU delivers a fault: a load from an unmapped address
 * raises #PF, whose frame goes onto an unmapped stack — a second #PF during
 * the first one's delivery, which the CPU turns into #DF (error code 0).
 * With `ist` the #DF gate has a stack of its own (IST1, in a 64-bit TSS)
 * and its handler runs; without, #DF's own delivery faults again: a triple
 * fault, KVM_EXIT_SHUTDOWN. A shadow MMU sees each of these faults and must
 * combine them as the CPU would, not deliver #PF forever.
 *   0x1000: mov rax,[rcx]             rcx = 10 MiB, not mapped
 *   0x1100: out 0x14; hlt             #PF handler (must not run)
 *   0x1200: out 0x13; hlt             #DF handler
 * Stack top 0x9000, its page 0x8000 not mapped; IST1 top 0x7800.
 */
static void fault_during_fault_delivery(int dev, unsigned long type, const char *name, bool ist)
{
	static const uint8_t code[] = { 0x48, 0x8b, 0x01 };
	static const uint8_t pf_handler[] = { 0xe6, 0x14, 0xf4 }, df_handler[] = { 0xe6, 0x13, 0xf4 };
	struct kvm_segment tr = { .selector = 24, .base = 0x1e00, .limit = 0x67, .type = 11,
				  .present = 1 };
	struct kvm_regs regs = { .rip = 0x1000, .rsp = 0x9000, .rflags = 2, .rcx = 0xa00000 };
	struct kvm_sregs sregs;
	uint64_t *df_frame;
	struct guest g;
	char what[80];
	bool ok;

	snprintf(what, sizeof(what), "%s_%s", ist ? "double_fault_from_fault_delivery" :
		 "triple_fault_shuts_down", name);
	if (!guest_open(&g, dev, type, what))
		goto out;
	df_frame = (uint64_t *)(g.mem + 0x7800);
	long_mode_state(&g, &sregs);
	memcpy(g.mem + 0x1000, code, sizeof(code));
	memcpy(g.mem + 0x1100, pf_handler, sizeof(pf_handler));
	memcpy(g.mem + 0x1200, df_handler, sizeof(df_handler));
	((uint64_t *)(g.mem + 0x1c00))[3] = 0x67 | (0x1e00ULL << 16) | (0x89ULL << 40); /* TSS */
	*(uint64_t *)(g.mem + 0x1e00 + 0x24) = 0x7800;		/* its IST1 */
	set_gate(g.mem + 0x1800, true, 14, 0x1100, 0);
	set_gate(g.mem + 0x1800, true, 8, 0x1200, ist);
	((uint64_t *)(g.mem + 0x5000))[8] = 0;			/* the stack's page */
	sregs.tr = tr;
	sregs.gdt.limit = 39;
	ioctl(g.vcpu, KVM_SET_SREGS, &sregs);
	ioctl(g.vcpu, KVM_SET_REGS, &regs);
	run_vcpu(g.vcpu);
	if (ist)	/* #DF frame on IST1: error code 0, RIP of the load */
		ok = g.run->exit_reason == KVM_EXIT_IO && g.run->io.port == 0x13 &&
		     df_frame[-6] == 0 && df_frame[-5] == 0x1000;
	else
		ok = g.run->exit_reason == KVM_EXIT_SHUTDOWN;
	check(what, ok, "exit %u port 0x%x, #DF frame: error %llu rip 0x%llx", g.run->exit_reason,
	      g.run->exit_reason == KVM_EXIT_IO ? g.run->io.port : 0,
	      (unsigned long long)df_frame[-6], (unsigned long long)df_frame[-5]);
out:
	guest_close(&g);
}

/* Real mode at 0000:ip, as after a BIOS: CS base 0, paging off. */
static void start_real_mode(int vcpu, uint64_t ip)
{
	struct kvm_regs regs = { .rip = ip, .rflags = 2 };
	struct kvm_sregs sregs;

	ioctl(vcpu, KVM_GET_SREGS, &sregs);
	sregs.cs.selector = 0;
	sregs.cs.base = 0;
	ioctl(vcpu, KVM_SET_SREGS, &sregs);
	ioctl(vcpu, KVM_SET_REGS, &regs);
}

/*
 * Real mode under every strategy (paged real mode for the shadow MMUs):
 * segment arithmetic, a store through a moffs16, an MMIO store through a
 * segment override (decoded as 16-bit code), a far jump, port I/O, HLT.
 *   0x1000: mov $0x200,%ax; mov %ax,%ds; mov $0xbeef,%ax; mov %ax,0x10
 *           mov $0xf000,%bx; mov %bx,%es; mov %ax,%es:0x20; ljmp $0x100,$0x50
 *   0x1050: out %al,$0x10; hlt
 */
static void real_mode(int dev, unsigned long type, const char *name)
{
	static const uint8_t code[] = {
		0xb8, 0x00, 0x02, 0x8e, 0xd8, 0xb8, 0xef, 0xbe, 0xa3, 0x10, 0x00,
		0xbb, 0x00, 0xf0, 0x8e, 0xc3, 0x26, 0x89, 0x06, 0x20, 0x00,
		0xea, 0x50, 0x00, 0x00, 0x01,
	};
	static const uint8_t far[] = { 0xe6, 0x10, 0xf4 };
	char what[64];
	struct kvm_sregs sregs;
	struct guest g;
	bool mmio = false, io = false, hlt = false;
	uint16_t word;

	snprintf(what, sizeof(what), "real_mode_%s", name);
	if (!guest_open(&g, dev, type, what))
		return;
	memcpy(g.mem + 0x1000, code, sizeof(code));
	memcpy(g.mem + 0x1050, far, sizeof(far));
	start_real_mode(g.vcpu, 0x1000);
	for (int i = 0; i < 4 && !hlt; i++) {
		if (run_vcpu(g.vcpu))
			break;
		switch (g.run->exit_reason) {
		case KVM_EXIT_MMIO:
			memcpy(&word, g.run->mmio.data, 2);
			mmio = g.run->mmio.is_write && g.run->mmio.phys_addr == 0xf0020 &&
			       g.run->mmio.len == 2 && word == 0xbeef;
			break;
		case KVM_EXIT_IO:
			io = g.run->io.port == 0x10 && g.run->io.direction == KVM_EXIT_IO_OUT &&
			     *((uint8_t *)g.run + g.run->io.data_offset) == 0xef;
			break;
		case KVM_EXIT_HLT:
			hlt = true;
			break;
		default:
			i = 4;
		}
	}
	alarm(0);
	ioctl(g.vcpu, KVM_GET_SREGS, &sregs);
	memcpy(&word, g.mem + 0x2010, 2);
	check(what, mmio && io && hlt && word == 0xbeef && sregs.cs.selector == 0x100 &&
	      sregs.cs.base == 0x1000 && sregs.ds.base == 0x2000 && !(sregs.cr0 & 1),
	      "mmio %d io %d hlt %d (exit %u) word %#x cs %#x/%#llx ds base %#llx cr0 %#llx",
	      mmio, io, hlt, g.run->exit_reason, word, sregs.cs.selector,
	      (unsigned long long)sregs.cs.base, (unsigned long long)sregs.ds.base,
	      (unsigned long long)sregs.cr0);
	guest_close(&g);
}

/*
 * String port I/O, REP OUTS and REP INS in both directions, in real mode
 * (16-bit registers) or long mode (through page tables):
 *   cld; rsi=0x6000 rcx=3000 dx=0x10 rep outsb; rdi=0x8000 rcx=3000 dx=0x11
 *   rep insb; std; rdi=0xa063 rcx=100 rep insb; cld; [64-bit: rsi=0x6000
 *   rcx=10 dx=0x12 rep outsl;] hlt
 * The bytes OUTS sends must be memory's, INS must store what this program
 * answers (a running byte counter), downward with DF=1, in batches of
 * io.count elements that add up.
 */
static void string_io(int dev, unsigned long type, const char *name, bool long64)
{
	static const uint8_t code16[] = {
		0xfc, 0xbe, 0x00, 0x60, 0xb9, 0xb8, 0x0b, 0xba, 0x10, 0x00, 0xf3, 0x6e,
		0xbf, 0x00, 0x80, 0xb9, 0xb8, 0x0b, 0xba, 0x11, 0x00, 0xf3, 0x6c,
		0xfd, 0xbf, 0x63, 0xa0, 0xb9, 0x64, 0x00, 0xf3, 0x6c, 0xfc, 0xf4,
	};
	static const uint8_t code64[] = {
		0xfc, 0xbe, 0x00, 0x60, 0, 0, 0xb9, 0xb8, 0x0b, 0, 0, 0xba, 0x10, 0, 0, 0, 0xf3, 0x6e,
		0xbf, 0x00, 0x80, 0, 0, 0xb9, 0xb8, 0x0b, 0, 0, 0xba, 0x11, 0, 0, 0, 0xf3, 0x6c,
		0xfd, 0xbf, 0x63, 0xa0, 0, 0, 0xb9, 0x64, 0, 0, 0, 0xf3, 0x6c, 0xfc,
		0xbe, 0x00, 0x60, 0, 0, 0xb9, 0x0a, 0, 0, 0, 0xba, 0x12, 0, 0, 0, 0xf3, 0x6f, 0xf4,
	};
	struct kvm_regs regs = { .rip = 0x1000, .rflags = 2 };
	uint8_t out[3000], out32[40];
	unsigned int nout = 0, nout32 = 0, nin = 0, max_count = 0;
	bool hlt = false, bad = false;
	struct kvm_sregs sregs;
	char what[64];
	struct guest g;

	snprintf(what, sizeof(what), "string_io_%s_%s", long64 ? "long" : "real", name);
	if (!guest_open(&g, dev, type, what))
		return;
	if (long64) {
		long_mode_state(&g, &sregs);
		memcpy(g.mem + 0x1000, code64, sizeof(code64));
	} else {
		ioctl(g.vcpu, KVM_GET_SREGS, &sregs);
		sregs.cs.selector = 0;
		sregs.cs.base = 0;
		memcpy(g.mem + 0x1000, code16, sizeof(code16));
	}
	for (int i = 0; i < 3000; i++)
		g.mem[0x6000 + i] = (uint8_t)(i * 7 + 3);
	ioctl(g.vcpu, KVM_SET_SREGS, &sregs);
	ioctl(g.vcpu, KVM_SET_REGS, &regs);
	for (int i = 0; i < 10000 && !hlt && !bad; i++) {
		unsigned int bytes;
		uint8_t *data;

		bad = run_vcpu(g.vcpu) != 0;
		if (bad || g.run->exit_reason == KVM_EXIT_HLT) {
			hlt = !bad;
			break;
		}
		data = (uint8_t *)g.run + g.run->io.data_offset;
		bytes = g.run->io.size * g.run->io.count;
		bad = g.run->exit_reason != KVM_EXIT_IO;
		if (!bad && g.run->io.count > max_count)
			max_count = g.run->io.count;
		if (!bad && g.run->io.port == 0x10 && nout + bytes <= sizeof(out)) {
			memcpy(out + nout, data, bytes);
			nout += bytes;
		} else if (!bad && g.run->io.port == 0x12 && nout32 + bytes <= sizeof(out32)) {
			memcpy(out32 + nout32, data, bytes);
			nout32 += bytes;
		} else if (!bad && g.run->io.port == 0x11 && g.run->io.direction == KVM_EXIT_IO_IN) {
			for (unsigned int k = 0; k < bytes; k++)
				data[k] = (uint8_t)(nin + k);
			nin += bytes;
		} else {
			bad = true;
		}
	}
	ioctl(g.vcpu, KVM_GET_REGS, &regs);
	for (int k = 0; k < 3000 && !bad; k++)
		bad = g.mem[0x8000 + k] != (uint8_t)k;
	for (int k = 0; k < 100 && !bad; k++)
		bad = g.mem[0xa063 - k] != (uint8_t)(3000 + k);
	/* kvmlab batches up to a page; Linux KVM 6.1 sends OUTS one element per exit. */
	check(what, !bad && hlt && nout == 3000 && !memcmp(out, g.mem + 0x6000, 3000) &&
	      nin == 3100 && (max_count > 1 || !kvmlab_device) && regs.rdi == 0x9fff &&
	      regs.rcx == 0 &&
	      (!long64 || (nout32 == 40 && !memcmp(out32, g.mem + 0x6000, 40) &&
			   regs.rsi == 0x6028)) && (long64 || regs.rsi == 0x6bb8),
	      "bad %d hlt %d (exit %u) out %u in %u out32 %u max count %u rsi %#llx rdi %#llx "
	      "rcx %#llx", bad, hlt, g.run->exit_reason, nout, nin, nout32, max_count,
	      regs.rsi, regs.rdi, regs.rcx);
	guest_close(&g);
}

/*
 * A 32-bit guest image (NAME_guest.c) at 0x10000, entered in flat 32-bit
 * protected mode with paging off and the stack at 0x80000; the GDT at
 * 0x8000 (code 8, data 16). 0, or -1 with errno.
 */
static int start_guest32(int dev, struct kc_vm *vm, struct kc_vcpu *v, const uint8_t *start,
			 const uint8_t *end)
{
	struct kvm_regs regs = { .rip = 0x10000, .rsp = 0x80000, .rflags = 2 };
	struct kvm_sregs sregs;

	if (kc_set_cpuid(dev, v->fd, true, false) || ioctl(v->fd, KVM_GET_SREGS, &sregs))
		return -1;
	memcpy(vm->mem + 0x10000, start, end - start);
	kc_flat_segments(&sregs, vm->mem + 0x8000, 0x8000, 8, false);
	sregs.cr0 = KL_CR0_PE | KL_CR0_ET;
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) || ioctl(v->fd, KVM_SET_REGS, &regs))
		return -1;
	return 0;
}

/* The 32-bit paging guest (paging32_guest.c), a flat binary linked in. */
extern const uint8_t _binary_paging32_bin_start[], _binary_paging32_bin_end[];

struct paging32_results {
	uint32_t failures, checks, checksum, pf_count;
	uint32_t fail_line[16];
};

/*
 * The 32-bit paging guest in 2-level or PAE format. It checks itself;
 * its checksum (of the values, CR2s and error codes it saw) is printed
 * for the pytest to compare across hypervisors.
 */
static void paging32(int dev, unsigned long type, const char *name, bool pae)
{
	bool out = false, hlt = false;
	const struct paging32_results *res;
	struct kc_vcpu *v = NULL;
	struct kc_vm vm;
	char what[64];

	snprintf(what, sizeof(what), "paging32_%s_%s", pae ? "pae" : "2level", name);
	if (kc_create_vm(&vm, dev, type) && type)
		return;		/* not a type this device has */
	if (vm.fd >= 0 && !kc_add_ram(&vm, 0, 0, 16 << 20))
		v = kc_create_vcpu(&vm, 0);
	if (!v || start_guest32(dev, &vm, v, _binary_paging32_bin_start, _binary_paging32_bin_end)) {
		check(what, false, "setup failed: errno %d", errno);
		goto out;
	}
	*(uint32_t *)(vm.mem + 0x9000) = pae;
	for (int i = 0; i < 100 && !hlt; i++) {
		alarm(20);
		if (ioctl(v->fd, KVM_RUN, 0))
			break;
		alarm(0);
		if (v->run->exit_reason == KVM_EXIT_IO && v->run->io.port == 0x10)
			out = true;
		else if (v->run->exit_reason == KVM_EXIT_HLT)
			hlt = true;
		else
			break;
	}
	alarm(0);
	res = (const void *)(vm.mem + 0x9100);
	check(what, out && hlt && res->failures == 0 && res->checks >= 20,
	      "out %d hlt %d (exit %u, internal %u %#llx %#llx) failures %u of %u checks "
	      "(lines %u %u %u) pf %u", out, hlt, v->run->exit_reason, v->run->internal.suberror,
	      (unsigned long long)v->run->internal.data[0],
	      (unsigned long long)v->run->internal.data[1], res->failures, res->checks,
	      res->fail_line[0], res->fail_line[1], res->fail_line[2], res->pf_count);
	if (out && hlt)
		printf("SUM %s checksum=%08x checks=%u faults=%u\n", what, res->checksum,
		       res->checks, res->pf_count);
out:
	kc_vm_close(&vm);
}

/*
 * String instructions against MMIO in real mode (the VGA-style window at
 * 0xb8000 is outside the 64 KiB of RAM): rep stosw, lodsw, rep movsw from
 * MMIO to RAM and back, std; rep stosb. One access per exit, in order:
 *   es=b800 di=0 ax=0x0741 cx=3 rep stosw; ds=b800 si=0x10 lodsw; out %ax,$0x10
 *   es=0 di=0x3000 si=0x20 cx=2 rep movsw; ds=0 es=b800 si=0x3000 di=0x40
 *   cx=2 rep movsw; di=0x61 al=0x42 cx=2 std; rep stosb; cld; hlt
 */
static void string_mmio(int dev, unsigned long type, const char *name)
{
	static const uint8_t code[] = {
		0xfc, 0xb8, 0x00, 0xb8, 0x8e, 0xc0, 0x31, 0xff, 0xb8, 0x41, 0x07, 0xb9, 0x03, 0x00,
		0xf3, 0xab, 0xb8, 0x00, 0xb8, 0x8e, 0xd8, 0xbe, 0x10, 0x00, 0xad, 0xe7, 0x10,
		0x31, 0xc0, 0x8e, 0xc0, 0xbf, 0x00, 0x30, 0xbe, 0x20, 0x00, 0xb9, 0x02, 0x00,
		0xf3, 0xa5, 0x31, 0xc0, 0x8e, 0xd8, 0xb8, 0x00, 0xb8, 0x8e, 0xc0, 0xbe, 0x00, 0x30,
		0xbf, 0x40, 0x00, 0xb9, 0x02, 0x00, 0xf3, 0xa5, 0xbf, 0x61, 0x00, 0xb0, 0x42,
		0xb9, 0x02, 0x00, 0xfd, 0xf3, 0xaa, 0xfc, 0xf4,
	};
	/* The accesses expected, in order: write?, address, length, value. */
	static const struct { bool write; uint32_t addr, len, val; } want[] = {
		{ 1, 0xb8000, 2, 0x0741 }, { 1, 0xb8002, 2, 0x0741 }, { 1, 0xb8004, 2, 0x0741 },
		{ 0, 0xb8010, 2, 0x1234 }, { 0, 0xb8020, 2, 0x5678 }, { 0, 0xb8022, 2, 0x9abc },
		{ 1, 0xb8040, 2, 0x5678 }, { 1, 0xb8042, 2, 0x9abc }, { 1, 0xb8061, 1, 0x42 },
		{ 1, 0xb8060, 1, 0x42 },
	};
	struct kvm_regs regs;
	unsigned int n = 0, out = 0;
	bool hlt = false, bad = false;
	char what[64];
	struct guest g;

	snprintf(what, sizeof(what), "string_mmio_%s", name);
	if (!guest_open(&g, dev, type, what))
		return;
	memcpy(g.mem + 0x1000, code, sizeof(code));
	start_real_mode(g.vcpu, 0x1000);
	for (int i = 0; i < 40 && !hlt && !bad; i++) {
		uint32_t v = 0;

		bad = run_vcpu(g.vcpu) != 0;
		if (bad)
			break;
		if (g.run->exit_reason == KVM_EXIT_HLT) {
			hlt = true;
		} else if (g.run->exit_reason == KVM_EXIT_IO && g.run->io.port == 0x10) {
			memcpy(&out, (uint8_t *)g.run + g.run->io.data_offset, 2);
		} else if (g.run->exit_reason == KVM_EXIT_MMIO && n < 10) {
			bad = g.run->mmio.is_write != want[n].write ||
			      g.run->mmio.phys_addr != want[n].addr || g.run->mmio.len != want[n].len;
			if (g.run->mmio.is_write)
				memcpy(&v, g.run->mmio.data, g.run->mmio.len);
			else
				memcpy(g.run->mmio.data, &want[n].val, want[n].len);
			bad |= g.run->mmio.is_write && v != want[n].val;
			n++;
		} else {
			bad = true;
		}
	}
	ioctl(g.vcpu, KVM_GET_REGS, &regs);
	check(what, !bad && hlt && n == 10 && out == 0x1234 &&
	      !memcmp(g.mem + 0x3000, "\x78\x56\xbc\x9a", 4) && regs.rcx == 0 &&
	      regs.rsi == 0x3004 && regs.rdi == 0x5f && !(regs.rflags & 0x400),
	      "bad %d hlt %d (exit %u, access %u at %#llx) accesses %u out %#x rsi %#llx "
	      "rdi %#llx rcx %#llx", bad, hlt, g.run->exit_reason, n,
	      (unsigned long long)g.run->mmio.phys_addr, n, out, regs.rsi, regs.rdi, regs.rcx);
	guest_close(&g);
}

/*
 * CMPS and SCAS against MMIO in real mode: the comparison finishes when the
 * read's data comes back, and REPNE/REPE stop on ZF with rCX left over.
 *   es=b800 di=0 ax=0x1111 cx=4 repne scasw   (reads 1, 2, 0x1111: stops, cx=1)
 *   pushf; pop bx; ds=0 si=0x3000 ("AB") di=0x20 cx=2 repe cmpsb
 *   (reads 'A', 'C': 'B' - 'C' stops it, cx=0); pushf; pop dx; hlt
 */
static void string_compare_mmio(int dev, unsigned long type, const char *name)
{
	static const uint8_t code[] = {
		0xfc, 0xb8, 0x00, 0xb8, 0x8e, 0xc0, 0x31, 0xff, 0xb8, 0x11, 0x11, 0xb9,
		0x04, 0x00, 0xf2, 0xaf, 0x9c, 0x5b, 0x31, 0xc0, 0x8e, 0xd8, 0xbe, 0x00,
		0x30, 0xbf, 0x20, 0x00, 0xb9, 0x02, 0x00, 0xf3, 0xa6, 0x9c, 0x5a, 0xf4,
	};
	static const struct { uint32_t addr, len, val; } want[] = {
		{ 0xb8000, 2, 0x0001 }, { 0xb8002, 2, 0x0002 }, { 0xb8004, 2, 0x1111 },
		{ 0xb8020, 1, 'A' }, { 0xb8021, 1, 'C' },
	};
	const uint64_t arith = 0x8d5;	/* OF SF ZF AF PF CF */
	struct kvm_regs regs;
	unsigned int n = 0;
	bool hlt = false, bad = false;
	char what[64];
	struct guest g;

	snprintf(what, sizeof(what), "string_compare_mmio_%s", name);
	if (!guest_open(&g, dev, type, what))
		return;
	memcpy(g.mem + 0x1000, code, sizeof(code));
	memcpy(g.mem + 0x3000, "AB", 2);
	start_real_mode(g.vcpu, 0x1000);
	for (int i = 0; i < 20 && !hlt && !bad; i++) {
		bad = run_vcpu(g.vcpu) != 0;
		if (bad)
			break;
		if (g.run->exit_reason == KVM_EXIT_HLT) {
			hlt = true;
		} else if (g.run->exit_reason == KVM_EXIT_MMIO && n < 5) {
			bad = g.run->mmio.is_write || g.run->mmio.phys_addr != want[n].addr ||
			      g.run->mmio.len != want[n].len;
			memcpy(g.run->mmio.data, &want[n].val, want[n].len);
			n++;
		} else {
			bad = true;
		}
	}
	ioctl(g.vcpu, KVM_GET_REGS, &regs);
	check(what, !bad && hlt && n == 5 && (regs.rbx & arith) == 0x44 &&
	      (regs.rdx & arith) == 0x95 && (regs.rcx & 0xffff) == 0 &&
	      (regs.rsi & 0xffff) == 0x3002 && (regs.rdi & 0xffff) == 0x22,
	      "bad %d hlt %d (exit %u) accesses %u scas flags %#llx cmps flags %#llx "
	      "rcx %#llx rsi %#llx rdi %#llx", bad, hlt, g.run->exit_reason, n,
	      regs.rbx & arith, regs.rdx & arith, regs.rcx, regs.rsi, regs.rdi);
	guest_close(&g);
}

/* ---- the ioctls a VMM such as QEMU uses (userspace irqchip) ---- */

static void vmm_capabilities(int dev)
{
	static const struct { long cap; const char *name; } caps[] = {
		{ KVM_CAP_DESTROY_MEMORY_REGION_WORKS, "destroy_memory_region_works" },
		{ KVM_CAP_JOIN_MEMORY_REGIONS_WORKS, "join_memory_regions_works" },
		{ KVM_CAP_SET_TSS_ADDR, "set_tss_addr" }, { KVM_CAP_EXT_CPUID, "ext_cpuid" },
		{ KVM_CAP_MP_STATE, "mp_state" }, { KVM_CAP_IRQ_ROUTING, "irq_routing" },
		{ KVM_CAP_MCE, "mce" }, { KVM_CAP_IMMEDIATE_EXIT, "immediate_exit" },
	};
	struct { struct kvm_msr_list head; uint32_t idx[200]; } list = { .head.nmsrs = 1 };
	bool tsc = false, pat = false, sysenter = false;
	uint64_t mce_cap = 0;
	char name[64];

	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		snprintf(name, sizeof(name), "cap_%s", caps[i].name);
		check(name, ioctl(dev, KVM_CHECK_EXTENSION, caps[i].cap) > 0, "%s", "not reported");
	}
	expect_errno("msr_index_list_too_small", ioctl(dev, KVM_GET_MSR_INDEX_LIST, &list), E2BIG);
	check("msr_index_list_says_how_many", list.head.nmsrs > 1 && list.head.nmsrs <= 200,
	      "nmsrs %u", list.head.nmsrs);
	list.head.nmsrs = 200;
	check("msr_index_list", ioctl(dev, KVM_GET_MSR_INDEX_LIST, &list) == 0, "errno %d", errno);
	for (uint32_t i = 0; i < list.head.nmsrs && i < 200; i++) {
		tsc |= list.idx[i] == 0x10;
		pat |= list.idx[i] == 0x277;
		sysenter |= list.idx[i] == 0x174;
	}
	check("msr_index_list_has_tsc_pat_sysenter", tsc && pat && sysenter, "%d %d %d",
	      tsc, pat, sysenter);
	expect_errno("msr_index_list_bad_pointer", ioctl(dev, KVM_GET_MSR_INDEX_LIST, (void *)8), EFAULT);
	check("mce_cap_supported", ioctl(dev, KVM_X86_GET_MCE_CAP_SUPPORTED, &mce_cap) == 0 &&
	      (mce_cap & (1 << 8)) && ioctl(dev, KVM_CHECK_EXTENSION, KVM_CAP_MCE) >= 10,
	      "cap %#llx", (unsigned long long)mce_cap);
}

static int msrs(int vcpu, unsigned long op, struct kvm_msr_entry *e, uint32_t n)
{
	struct { struct kvm_msrs head; struct kvm_msr_entry e[8]; } m = { .head.nmsrs = n };

	memcpy(m.e, e, n * sizeof(*e));
	int r = ioctl(vcpu, op, &m);

	memcpy(e, m.e, n * sizeof(*e));
	return r;
}

static uint64_t guest_tsc(int vcpu)
{
	struct kvm_msr_entry e = { .index = 0x10 };

	return msrs(vcpu, KVM_GET_MSRS, &e, 1) == 1 ? e.data : 0;
}

static uint64_t host_tsc(void)
{
	uint32_t lo, hi;

	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

/*
 * The vCPUs of a VM share one TSC timeline, as KVM keeps them: a vCPU
 * created 50 ms after another reads the same TSC, not one 50 ms behind,
 * and so do two vCPUs whose TSC userspace sets to one value 20 ms apart.
 * (An SMP guest that saw its CPUs' TSCs apart would mark its TSC unstable.)
 */
static void tsc_timeline(int dev)
{
	int vm = ioctl(dev, KVM_CREATE_VM, 0), v0, v1;
	struct kvm_msr_entry zero = { .index = 0x10, .data = 0 };
	uint64_t h0, gap, t0, t1;

	if (vm < 0)
		return check("tsc_vm", false, "errno %d", errno);
	v0 = ioctl(vm, KVM_CREATE_VCPU, 0);
	h0 = host_tsc();
	usleep(50000);
	v1 = ioctl(vm, KVM_CREATE_VCPU, 1);
	gap = host_tsc() - h0;		/* 50 ms in TSC cycles, and some */
	t0 = guest_tsc(v0);
	t1 = guest_tsc(v1);
	check("tsc_new_vcpu_on_the_vms_timeline", v0 >= 0 && v1 >= 0 && t0 && t1 &&
	      (t0 > t1 ? t0 - t1 : t1 - t0) < gap / 4, "vcpu0 %llu vcpu1 %llu, 50 ms = %llu",
	      (unsigned long long)t0, (unsigned long long)t1, (unsigned long long)gap);
	msrs(v0, KVM_SET_MSRS, &zero, 1);
	usleep(20000);
	msrs(v1, KVM_SET_MSRS, &zero, 1);
	t0 = guest_tsc(v0);
	t1 = guest_tsc(v1);
	check("tsc_host_writes_of_one_value_match", t0 && t1 &&
	      (t0 > t1 ? t0 - t1 : t1 - t0) < gap / 4, "vcpu0 %llu vcpu1 %llu, 50 ms = %llu",
	      (unsigned long long)t0, (unsigned long long)t1, (unsigned long long)gap);
	close(v1);
	close(v0);
	close(vm);
}

static void vmm_msrs(int vcpu)
{
	struct kvm_msr_entry set[5] = {
		{ .index = 0x174, .data = 0x10 },			/* SYSENTER_CS */
		{ .index = 0x277, .data = 0x0007040600070406ULL },	/* PAT: its RESET value */
		{ .index = 0x10, .data = 1ULL << 40 },			/* TSC */
		{ .index = 0x2ff, .data = 0xc06 },			/* MTRRdefType: E FE WB */
		{ .index = 0x1b, .data = 0xfee00900 },			/* APIC base: enabled BSP */
	}, get[5], bad[3] = {
		{ .index = 0x174, .data = 0x8 },
		{ .index = 0x277, .data = 0x0202020202020202ULL },	/* PAT type 2: reserved */
		{ .index = 0x175, .data = 0x1000 },
	};
	struct { struct kvm_msrs head; struct kvm_msr_entry e[1]; } big = { .head.nmsrs = 100000 };
	uint64_t mcg = 10 | (1 << 8);

	check("set_msrs_all", msrs(vcpu, KVM_SET_MSRS, set, 5) == 5, "errno %d", errno);
	for (int i = 0; i < 5; i++)
		get[i] = (struct kvm_msr_entry) { .index = set[i].index };
	check("get_msrs_all", msrs(vcpu, KVM_GET_MSRS, get, 5) == 5, "errno %d", errno);
	check("msrs_read_back", get[0].data == 0x10 && get[1].data == set[1].data &&
	      get[2].data >= 1ULL << 40 && get[3].data == 0xc06 && get[4].data == 0xfee00900,
	      "%#llx %#llx %#llx %#llx %#llx", (unsigned long long)get[0].data,
	      (unsigned long long)get[1].data, (unsigned long long)get[2].data,
	      (unsigned long long)get[3].data, (unsigned long long)get[4].data);
	check("set_msrs_stops_at_a_bad_value", msrs(vcpu, KVM_SET_MSRS, bad, 3) == 1,
	      "errno %d", errno);
	bad[0] = (struct kvm_msr_entry) { .index = 0x4b564dff };	/* no such MSR */
	check("get_msrs_stops_at_an_unknown_msr", msrs(vcpu, KVM_GET_MSRS, bad, 1) == 0,
	      "errno %d", errno);
	expect_errno("msrs_too_many", ioctl(vcpu, KVM_SET_MSRS, &big), E2BIG);
	expect_errno("msrs_bad_pointer", ioctl(vcpu, KVM_GET_MSRS, (void *)8), EFAULT);
	/* Machine checks: KVM_MAX_MCE_BANKS (32) until KVM_X86_SETUP_MCE says how many. */
	bad[0] = (struct kvm_msr_entry) { .index = 0x179 };		/* MCG_CAP */
	check("mce_default_banks", msrs(vcpu, KVM_GET_MSRS, bad, 1) == 1 && bad[0].data == 32,
	      "cap %#llx", (unsigned long long)bad[0].data);
	mcg = 0;
	expect_errno("setup_mce_no_banks", ioctl(vcpu, KVM_X86_SETUP_MCE, &mcg), EINVAL);
	mcg = 10 | (1 << 8);
	check("setup_mce", ioctl(vcpu, KVM_X86_SETUP_MCE, &mcg) == 0, "errno %d", errno);
	bad[0] = (struct kvm_msr_entry) { .index = 0x179 };		/* MCG_CAP */
	bad[1] = (struct kvm_msr_entry) { .index = 0x400 };
	check("mce_banks_after_setup", msrs(vcpu, KVM_GET_MSRS, bad, 2) == 2 &&
	      bad[0].data == mcg && bad[1].data == ~0ULL, "cap %#llx ctl %#llx",
	      (unsigned long long)bad[0].data, (unsigned long long)bad[1].data);
	/* A corrected error injected into bank 1 is logged there, with no #MC. */
	struct kvm_x86_mce mce = { .status = (1ULL << 63) | 0x10, .addr = 0x1000, .bank = 1 };
	int injected = ioctl(vcpu, KVM_X86_SET_MCE, &mce);

	bad[0] = (struct kvm_msr_entry) { .index = 0x405 };		/* MC1_STATUS */
	check("set_mce_corrected_logged", injected == 0 && msrs(vcpu, KVM_GET_MSRS, bad, 1) == 1 &&
	      bad[0].data == mce.status, "set %d status %#llx", injected,
	      (unsigned long long)bad[0].data);
	mce.bank = 20;
	expect_errno("set_mce_no_such_bank", ioctl(vcpu, KVM_X86_SET_MCE, &mce), EINVAL);
}

static void vmm_fpu_and_state(int vm, int vcpu)
{
	struct kvm_fpu fpu = { 0 }, back = { 0 };
	struct kvm_mp_state mp;
	struct kvm_sregs sregs;
	struct {
		struct kvm_irq_routing head;
		struct kvm_irq_routing_entry e[1];
	} routes = { .head.nr = 1, .e[0] = { .gsi = 5, .type = KVM_IRQ_ROUTING_MSI,
					    .u.msi = { .address_lo = 0xfee00000, .data = 0x41 } } };

	/* kvmlab starts the FPU at its FNINIT state; KVM's reads as zeros until first used. */
	check("get_fpu", ioctl(vcpu, KVM_GET_FPU, &fpu) == 0 &&
	      (!kvmlab_device || (fpu.fcw == 0x37f && fpu.mxcsr == 0x1f80)),
	      "fcw %#x mxcsr %#x", fpu.fcw, fpu.mxcsr);
	fpu.mxcsr = 0x1f80;
	fpu.fcw = 0x27f;
	memset(fpu.xmm[3], 0xa5, 16);
	check("set_fpu", ioctl(vcpu, KVM_SET_FPU, &fpu) == 0, "errno %d", errno);
	check("fpu_reads_back", ioctl(vcpu, KVM_GET_FPU, &back) == 0 && back.fcw == 0x27f &&
	      !memcmp(back.xmm[3], fpu.xmm[3], 16), "fcw %#x", back.fcw);
	expect_errno("set_fpu_bad_pointer", ioctl(vcpu, KVM_SET_FPU, (void *)8), EFAULT);
	check("get_mp_state", ioctl(vcpu, KVM_GET_MP_STATE, &mp) == 0 &&
	      mp.mp_state == KVM_MP_STATE_RUNNABLE, "errno %d state %u", errno, mp.mp_state);
	mp.mp_state = 99;
	expect_errno("set_mp_state_unknown", ioctl(vcpu, KVM_SET_MP_STATE, &mp), EINVAL);
	check("set_tss_addr", ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000UL) == 0, "errno %d", errno);
	struct { struct kvm_signal_mask head; uint8_t set[8]; } sig = { .head.len = 8 };

	check("set_signal_mask", ioctl(vcpu, KVM_SET_SIGNAL_MASK, &sig) == 0 &&
	      ioctl(vcpu, KVM_SET_SIGNAL_MASK, NULL) == 0, "errno %d", errno);
	sig.head.len = 4;
	expect_errno("set_signal_mask_bad_length", ioctl(vcpu, KVM_SET_SIGNAL_MASK, &sig), EINVAL);
	ioctl(vcpu, KVM_GET_SREGS, &sregs);
	check("sregs_apic_base_and_cr8", sregs.apic_base == 0xfee00900 && sregs.cr8 == 0,
	      "apic_base %#llx cr8 %llu", (unsigned long long)sregs.apic_base,
	      (unsigned long long)sregs.cr8);
	if (!kvmlab_device)
		return;
	/*
	 * What kvmlab offers beyond Linux KVM without an in-kernel irqchip:
	 * INIT for a VMM's own APIC, an MSI routing table (core/irq.c), and
	 * checks KVM leaves to the hardware.
	 */
	expect_errno("set_fpu_bad_mxcsr", ({ back.mxcsr = 1U << 31;
		     ioctl(vcpu, KVM_SET_FPU, &back); }), EINVAL);
	mp.mp_state = KVM_MP_STATE_INIT_RECEIVED;
	check("set_mp_state_init", ioctl(vcpu, KVM_SET_MP_STATE, &mp) == 0, "errno %d", errno);
	ioctl(vcpu, KVM_GET_SREGS, &sregs);
	check("init_state", sregs.cs.selector == 0xf000 && sregs.cs.base == 0xffff0000 &&
	      ioctl(vcpu, KVM_GET_MP_STATE, &mp) == 0 && mp.mp_state == KVM_MP_STATE_INIT_RECEIVED,
	      "cs %#x base %#llx state %u", sregs.cs.selector,
	      (unsigned long long)sregs.cs.base, mp.mp_state);
	mp.mp_state = KVM_MP_STATE_SIPI_RECEIVED;
	expect_errno("set_mp_state_sipi_needs_an_apic", ioctl(vcpu, KVM_SET_MP_STATE, &mp), EINVAL);
	mp.mp_state = KVM_MP_STATE_RUNNABLE;
	ioctl(vcpu, KVM_SET_MP_STATE, &mp);
	expect_errno("set_tss_addr_past_4g", ioctl(vm, KVM_SET_TSS_ADDR, 0xffffffffUL), EINVAL);
	check("gsi_routing_msi", ioctl(vm, KVM_SET_GSI_ROUTING, &routes) == 0, "errno %d", errno);
	routes.e[0].type = KVM_IRQ_ROUTING_IRQCHIP;
	expect_errno("gsi_routing_irqchip_refused", ioctl(vm, KVM_SET_GSI_ROUTING, &routes), EINVAL);
	routes.head.nr = 100000;
	expect_errno("gsi_routing_too_many", ioctl(vm, KVM_SET_GSI_ROUTING, &routes), EINVAL);
	expect_errno("gsi_routing_bad_pointer", ioctl(vm, KVM_SET_GSI_ROUTING, (void *)8), EFAULT);
	ioctl(vcpu, KVM_GET_SREGS, &sregs);
	sregs.cr8 = 16;
	expect_errno("sregs_cr8_too_large", ioctl(vcpu, KVM_SET_SREGS, &sregs), EINVAL);
	sregs.cr8 = 0;
	sregs.apic_base = 0xfee00c00;		/* x2APIC mode: not offered */
	expect_errno("sregs_x2apic_refused", ioctl(vcpu, KVM_SET_SREGS, &sregs), EINVAL);
}

/*
 * A port read completes on top of whatever registers the VMM set during
 * the exit, unless it moved RIP, which voids the read (QEMU's vmport does
 * so), as on KVM. cr8 and apic_base come back in kvm_run at every exit.
 *   0x1000: in $0x10,%al; mov %al,%bl; hlt   0x1010: mov $0x77,%bl; hlt
 */
static void vmm_pending_in(int dev)
{
	static const uint8_t code[] = { 0xe4, 0x10, 0x88, 0xc3, 0xf4 }, other[] = { 0xb3, 0x77, 0xf4 };
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct guest g;
	bool ok[2] = { false, false };

	if (!guest_open(&g, dev, 0, "pending_in"))
		return;
	memcpy(g.mem + 0x1000, code, sizeof(code));
	memcpy(g.mem + 0x1010, other, sizeof(other));
	for (int moved = 0; moved < 2; moved++) {
		start_real_mode(g.vcpu, 0x1000);
		ioctl(g.vcpu, KVM_GET_SREGS, &sregs);
		sregs.cr8 = 3;
		ioctl(g.vcpu, KVM_SET_SREGS, &sregs);
		g.run->cr8 = 3;			/* what a VMM's APIC keeps there */
		alarm(10);
		ioctl(g.vcpu, KVM_RUN, 0);
		if (g.run->exit_reason != KVM_EXIT_IO || g.run->io.port != 0x10)
			break;
		ok[moved] = g.run->cr8 == 3 && g.run->apic_base == 0xfee00900;
		ioctl(g.vcpu, KVM_GET_REGS, &regs);
		regs.rcx = 0x1234;
		regs.rax = 0x1100;
		if (moved)
			regs.rip = 0x1010;
		ioctl(g.vcpu, KVM_SET_REGS, &regs);
		*((uint8_t *)g.run + g.run->io.data_offset) = 0x5a;
		ioctl(g.vcpu, KVM_RUN, 0);
		alarm(0);
		ioctl(g.vcpu, KVM_GET_REGS, &regs);
		ok[moved] &= g.run->exit_reason == KVM_EXIT_HLT && regs.rcx == 0x1234 &&
			     (moved ? (regs.rax & 0xffff) == 0x1100 && (regs.rbx & 0xff) == 0x77
				    : (regs.rax & 0xffff) == 0x115a && (regs.rbx & 0xff) == 0x5a);
	}
	check("in_completes_on_new_registers", ok[0], "exit %u", g.run->exit_reason);
	check("in_voided_when_rip_moved", ok[1], "exit %u", g.run->exit_reason);
	guest_close(&g);
}

/*
 * A KVM_MEM_READONLY slot (a ROM) at 1 MiB: reads come from its memory,
 * a write exits as MMIO and leaves the memory as it was.
 *   mov $0xffff,%ax; mov %ax,%ds; mov 0x10,%bx; movw $0x5678,0x10; hlt
 */
static void readonly_slot(int dev, unsigned long type, const char *name)
{
	static const uint8_t code[] = { 0xb8, 0xff, 0xff, 0x8e, 0xd8, 0x8b, 0x1e, 0x10, 0x00,
					0xc7, 0x06, 0x10, 0x00, 0x78, 0x56, 0xf4 };
	uint16_t *rom = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct kvm_regs regs = { 0 };
	bool mmio = false, hlt = false;
	char what[64];
	struct guest g;

	snprintf(what, sizeof(what), "readonly_slot_%s", name);
	if (rom == MAP_FAILED || !guest_open(&g, dev, type, what))
		return;
	rom[0] = 0x1234;
	check(what, kc_set_memslot(g.vm, 5, KVM_MEM_READONLY, 0x100000, 4096, rom) == 0,
	      "KVM_SET_USER_MEMORY_REGION: errno %d", errno);
	memcpy(g.mem + 0x1000, code, sizeof(code));
	start_real_mode(g.vcpu, 0x1000);
	for (int i = 0; i < 4 && !hlt; i++) {
		if (run_vcpu(g.vcpu))
			break;
		if (g.run->exit_reason == KVM_EXIT_MMIO)
			mmio = g.run->mmio.is_write && g.run->mmio.phys_addr == 0x100000 &&
			       g.run->mmio.len == 2 && !memcmp(g.run->mmio.data, "\x78\x56", 2);
		hlt = g.run->exit_reason == KVM_EXIT_HLT;
	}
	alarm(0);
	ioctl(g.vcpu, KVM_GET_REGS, &regs);
	check(what, mmio && hlt && (regs.rbx & 0xffff) == 0x1234 && rom[0] == 0x1234,
	      "mmio %d hlt %d (exit %u) bx %#llx rom %#x", mmio, hlt, g.run->exit_reason,
	      (unsigned long long)regs.rbx, rom[0]);
	guest_close(&g);
	munmap(rom, 4096);
}

/*
 * The state a VMM saves and restores besides registers (QEMU; Linux's
 * state_test): CPUID read back, events, debug registers, the XSAVE area,
 * registers through kvm_run (KVM_CAP_SYNC_REGS), the shadow page limit and
 * the vCPU id limit.
 */
static void vmm_saved_state(int dev, int vm, int vcpu)
{
	struct { struct kvm_cpuid2 head; struct kvm_cpuid_entry2 e[8]; } cpuid = {
		.head.nent = 2,
		.e = { { .function = 0, .eax = 1 }, { .function = 1, .edx = 1 } },
	}, back = { .head.nent = 1 };
	bool found = false;
	struct kvm_vcpu_events ev, ev2;
	struct kvm_debugregs dr, dr2;
	struct kvm_xsave *xs = calloc(1, sizeof(*xs));
	struct kvm_enable_cap cap = { .cap = KVM_CAP_MAX_VCPU_ID };
	int vm2;

	check("set_cpuid2", ioctl(vcpu, KVM_SET_CPUID2, &cpuid) == 0, "errno %d", errno);
	expect_errno("get_cpuid2_too_small", ioctl(vcpu, KVM_GET_CPUID2, &back), E2BIG);
	back.head.nent = 8;
	if (ioctl(vcpu, KVM_GET_CPUID2, &back) == 0)
		for (uint32_t i = 0; i < back.head.nent && i < 8; i++)
			found |= back.e[i].function == 1;
	check("get_cpuid2", found && back.head.nent >= 2, "errno %d nent %u", errno,
	      back.head.nent);
	expect_errno("get_cpuid2_bad_pointer", ioctl(vcpu, KVM_GET_CPUID2, (void *)8), EFAULT);

	check("get_vcpu_events", ioctl(vcpu, KVM_GET_VCPU_EVENTS, &ev) == 0 &&
	      !ev.exception.injected && !ev.interrupt.injected && !ev.nmi.injected,
	      "errno %d", errno);
	ev.exception.injected = 1;
	ev.exception.nr = 13;
	ev.exception.has_error_code = 1;
	ev.exception.error_code = 0x18;
	check("set_vcpu_events", ioctl(vcpu, KVM_SET_VCPU_EVENTS, &ev) == 0 &&
	      ioctl(vcpu, KVM_GET_VCPU_EVENTS, &ev2) == 0 && ev2.exception.injected &&
	      ev2.exception.nr == 13 && ev2.exception.error_code == 0x18, "errno %d nr %u", errno,
	      ev2.exception.nr);
	memset(&ev, 0, sizeof(ev));
	ioctl(vcpu, KVM_SET_VCPU_EVENTS, &ev);
	ev.flags = 1U << 31;
	expect_errno("set_vcpu_events_unknown_flag", ioctl(vcpu, KVM_SET_VCPU_EVENTS, &ev), EINVAL);
	expect_errno("vcpu_events_bad_pointer", ioctl(vcpu, KVM_SET_VCPU_EVENTS, (void *)8), EFAULT);

	check("get_debugregs", ioctl(vcpu, KVM_GET_DEBUGREGS, &dr) == 0 && dr.dr7 == 0x400,
	      "errno %d dr7 %#llx", errno, (unsigned long long)dr.dr7);
	dr.db[2] = 0x1234000;
	check("set_debugregs", ioctl(vcpu, KVM_SET_DEBUGREGS, &dr) == 0 &&
	      ioctl(vcpu, KVM_GET_DEBUGREGS, &dr2) == 0 && dr2.db[2] == 0x1234000, "errno %d",
	      errno);
	dr.dr7 = 1ULL << 40;
	expect_errno("set_debugregs_reserved_dr7", ioctl(vcpu, KVM_SET_DEBUGREGS, &dr), EINVAL);

	/* A host whose guest state outgrows 4 KiB needs KVM_GET_XSAVE2 (not offered here). */
	if (xs && ioctl(dev, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) > 0 &&
	    ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2) <= (int)sizeof(*xs)) {
		struct kvm_fpu fpu;

		check("get_xsave", ioctl(vcpu, KVM_GET_XSAVE, xs) == 0 &&
		      (*(uint64_t *)((uint8_t *)xs->region + 512) & 3) == 3, "errno %d", errno);
		memset((uint8_t *)xs->region + 160 + 16 * 5, 0x5c, 16);	/* XMM5 */
		check("set_xsave", ioctl(vcpu, KVM_SET_XSAVE, xs) == 0 &&
		      ioctl(vcpu, KVM_GET_FPU, &fpu) == 0 && fpu.xmm[5][7] == 0x5c, "errno %d",
		      errno);
		expect_errno("xsave_bad_pointer", ioctl(vcpu, KVM_SET_XSAVE, (void *)8), EFAULT);
	}
	free(xs);

	check("cap_sync_regs", (ioctl(dev, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS) & 7) == 7,
	      "%s", "regs, sregs and events not all offered");
	{
		struct { struct kvm_msr_list head; uint32_t idx[64]; } feat = { .head.nmsrs = 64 };
		struct kvm_msr_entry pi = { .index = 0xce };	/* MSR_PLATFORM_INFO */
		uint64_t off = 0, got = 1;
		struct kvm_device_attr attr = { .group = KVM_VCPU_TSC_CTRL,
						.attr = KVM_VCPU_TSC_OFFSET,
						.addr = (uint64_t)&off };

		check("msr_feature_index_list",
		      ioctl(dev, KVM_GET_MSR_FEATURE_INDEX_LIST, &feat) == 0 && feat.head.nmsrs > 0,
		      "errno %d", errno);
		pi.index = feat.idx[0];
		check("feature_msr_read", msrs(dev, KVM_GET_MSRS, &pi, 1) == 1, "errno %d msr %#x",
		      errno, pi.index);
		pi = (struct kvm_msr_entry) { .index = 0xce, .data = 0xff00 };
		check("platform_info_set_by_host", msrs(vcpu, KVM_SET_MSRS, &pi, 1) == 1 &&
		      msrs(vcpu, KVM_GET_MSRS, &pi, 1) == 1 && (pi.data & 0xff00) == 0xff00,
		      "errno %d data %#llx", errno, (unsigned long long)pi.data);
		off = 123456789;
		check("tsc_offset_attr", ioctl(vcpu, KVM_HAS_DEVICE_ATTR, &attr) == 0 &&
		      ioctl(vcpu, KVM_SET_DEVICE_ATTR, &attr) == 0 &&
		      (attr.addr = (uint64_t)&got, ioctl(vcpu, KVM_GET_DEVICE_ATTR, &attr)) == 0 &&
		      got == 123456789, "errno %d got %llu", errno, (unsigned long long)got);
		attr.attr = 99;
		expect_errno("device_attr_unknown", ioctl(vcpu, KVM_HAS_DEVICE_ATTR, &attr), ENXIO);
	}
	if (ioctl(dev, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0) {
		struct kvm_xcrs x = { .nr_xcrs = 1, .xcrs = { { .xcr = 0, .value = 1 } } };

		check("set_xcrs_x87", ioctl(vcpu, KVM_SET_XCRS, &x) == 0, "errno %d", errno);
		x.xcrs[0].value = 2;
		expect_errno("set_xcrs_without_x87", ioctl(vcpu, KVM_SET_XCRS, &x), EINVAL);
		x.xcrs[0].value = 1ULL << 62;
		expect_errno("set_xcrs_unknown_feature", ioctl(vcpu, KVM_SET_XCRS, &x), EINVAL);
		x = (struct kvm_xcrs) { .nr_xcrs = 1, .xcrs = { { .xcr = 5, .value = 1ULL << 62 } } };
		check("set_xcrs_unknown_xcr_ignored", ioctl(vcpu, KVM_SET_XCRS, &x) == 0, "errno %d",
		      errno);
		x.nr_xcrs = 100;
		expect_errno("set_xcrs_too_many", ioctl(vcpu, KVM_SET_XCRS, &x), EINVAL);
		check("get_xcrs", ioctl(vcpu, KVM_GET_XCRS, &x) == 0 && x.xcrs[0].value == 1,
		      "errno %d nr %u", errno, x.nr_xcrs);
		expect_errno("xcrs_bad_pointer", ioctl(vcpu, KVM_GET_XCRS, (void *)8), EFAULT);
	}
	if (ioctl(dev, KVM_CHECK_EXTENSION, KVM_CAP_X86_MSR_FILTER) > 0) {
		static uint8_t bits[KVM_MSR_FILTER_MAX_BITMAP_SIZE + 8];
		struct kvm_msr_filter f = { .flags = 1 << 5 };
		struct kvm_enable_cap um = { .cap = KVM_CAP_X86_USER_SPACE_MSR, .args = { 1 << 9 } };

		expect_errno("msr_filter_unknown_flag", ioctl(vm, KVM_X86_SET_MSR_FILTER, &f), EINVAL);
		f = (struct kvm_msr_filter) { .flags = KVM_MSR_FILTER_DEFAULT_DENY };
		expect_errno("msr_filter_deny_all", ioctl(vm, KVM_X86_SET_MSR_FILTER, &f), EINVAL);
		f.ranges[0] = (struct kvm_msr_filter_range) { .flags = 0, .nmsrs = 8, .bitmap = bits };
		expect_errno("msr_filter_range_no_flags", ioctl(vm, KVM_X86_SET_MSR_FILTER, &f),
			     EINVAL);
		f.ranges[0] = (struct kvm_msr_filter_range) {
			.flags = KVM_MSR_FILTER_READ, .nmsrs = 8 * (KVM_MSR_FILTER_MAX_BITMAP_SIZE + 8),
			.bitmap = bits };
		expect_errno("msr_filter_range_too_big", ioctl(vm, KVM_X86_SET_MSR_FILTER, &f),
			     EINVAL);
		f.ranges[0] = (struct kvm_msr_filter_range) {
			.flags = KVM_MSR_FILTER_READ, .nmsrs = 8, .bitmap = (void *)8 };
		expect_errno("msr_filter_bad_bitmap", ioctl(vm, KVM_X86_SET_MSR_FILTER, &f), EFAULT);
		expect_errno("msr_filter_bad_pointer", ioctl(vm, KVM_X86_SET_MSR_FILTER, (void *)8),
			     EFAULT);
		f.ranges[0].bitmap = bits;
		check("msr_filter_set", ioctl(vm, KVM_X86_SET_MSR_FILTER, &f) == 0, "errno %d", errno);
		f = (struct kvm_msr_filter) { .flags = KVM_MSR_FILTER_DEFAULT_ALLOW };
		check("msr_filter_cleared", ioctl(vm, KVM_X86_SET_MSR_FILTER, &f) == 0, "errno %d",
		      errno);
		expect_errno("user_space_msr_unknown_reason", ioctl(vm, KVM_ENABLE_CAP, &um), EINVAL);
	}
	if (ioctl(dev, KVM_CHECK_EXTENSION, KVM_CAP_ADJUST_CLOCK) > 0) {
		struct kvm_clock_data c = { .clock = 5000000000ULL };

		check("set_clock", ioctl(vm, KVM_SET_CLOCK, &c) == 0 &&
		      ioctl(vm, KVM_GET_CLOCK, &c) == 0 && c.clock >= 5000000000ULL &&
		      (c.flags & KVM_CLOCK_REALTIME), "errno %d clock %llu flags %#x", errno,
		      (unsigned long long)c.clock, c.flags);
		c.flags = 1 << 7;
		expect_errno("set_clock_unknown_flag", ioctl(vm, KVM_SET_CLOCK, &c), EINVAL);
		expect_errno("get_clock_bad_pointer", ioctl(vm, KVM_GET_CLOCK, (void *)8), EFAULT);
	}
	{
		struct kvm_enable_cap vc = { .cap = KVM_CAP_ENFORCE_PV_FEATURE_CPUID, .args = { 1 } };

		if (ioctl(dev, KVM_CHECK_EXTENSION, KVM_CAP_ENFORCE_PV_FEATURE_CPUID) > 0)
			check("enforce_pv_cpuid", ioctl(vcpu, KVM_ENABLE_CAP, &vc) == 0, "errno %d",
			      errno);
		vc.cap = 0x7fffff;
		expect_errno("vcpu_enable_cap_unknown", ioctl(vcpu, KVM_ENABLE_CAP, &vc), EINVAL);
	}
	if (ioctl(dev, KVM_CHECK_EXTENSION, KVM_CAP_DISABLE_QUIRKS2) > 0) {
		struct kvm_enable_cap q = { .cap = KVM_CAP_DISABLE_QUIRKS2, .args = { 1ULL << 60 } };

		expect_errno("disable_quirks2_unknown", ioctl(vm, KVM_ENABLE_CAP, &q), EINVAL);
	}
	check("nr_mmu_pages", ioctl(vm, KVM_SET_NR_MMU_PAGES, 100) == 0 &&
	      ioctl(vm, KVM_GET_NR_MMU_PAGES, 0) == 100, "errno %d", errno);

	vm2 = ioctl(dev, KVM_CREATE_VM, 0);
	if (vm2 < 0)
		return;
	cap.args[0] = ioctl(dev, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPU_ID) + 1;
	expect_errno("max_vcpu_id_beyond_cap", ioctl(vm2, KVM_ENABLE_CAP, &cap), EINVAL);
	cap.args[0] = 2;
	check("max_vcpu_id", ioctl(vm2, KVM_ENABLE_CAP, &cap) == 0, "errno %d", errno);
	cap.args[0] = 3;
	expect_errno("max_vcpu_id_twice", ioctl(vm2, KVM_ENABLE_CAP, &cap), EINVAL);
	expect_errno("vcpu_id_over_max", ioctl(vm2, KVM_CREATE_VCPU, 2), EINVAL);
	close(vm2);
}

/*
 * KVM_CAP_SYNC_REGS: a register written in kvm_run reaches the guest, and
 * the exit brings the guest's back.
 *   0x1000: mov %bx,%ax; out %al,$0x10; hlt
 */
static void vmm_sync_regs(int dev)
{
	static const uint8_t code[] = { 0x89, 0xd8, 0xe6, 0x10, 0xf4 };
	struct guest g;
	bool ok;

	if (!guest_open(&g, dev, 0, "sync_regs"))
		return;
	memcpy(g.mem + 0x1000, code, sizeof(code));
	start_real_mode(g.vcpu, 0x1000);
	g.run->kvm_valid_regs = KVM_SYNC_X86_REGS;
	ioctl(g.vcpu, KVM_GET_REGS, &g.run->s.regs.regs);
	g.run->s.regs.regs.rbx = 0x42;
	g.run->kvm_dirty_regs = KVM_SYNC_X86_REGS;
	ok = run_vcpu(g.vcpu) == 0 && g.run->exit_reason == KVM_EXIT_IO &&
	     *((uint8_t *)g.run + g.run->io.data_offset) == 0x42 &&
	     (g.run->s.regs.regs.rax & 0xff) == 0x42;
	check("sync_regs_both_ways", ok, "exit %u rax %#llx", g.run->exit_reason,
	      (unsigned long long)g.run->s.regs.regs.rax);
	g.run->kvm_valid_regs = 1U << 20;
	expect_errno("sync_regs_unknown_field", ioctl(g.vcpu, KVM_RUN, 0), EINVAL);
	g.run->kvm_valid_regs = 0;
	guest_close(&g);
}

/*
 * A memslot change while another thread's vCPU spins in the guest
 * (0x1000: jmp .) is done at once: the vCPU is kicked out (kvmlab) or
 * never waited for (KVM), not waited on until it exits by itself.
 */
struct spinner {
	struct guest *g;
	volatile bool stop;
	int runs;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void on_sigusr2(int sig)
{
	(void)sig;
}

static void *spin(void *arg)
{
	struct spinner *s = arg;

	while (!s->stop) {
		ioctl(s->g->vcpu, KVM_RUN, 0);
		s->runs++;
	}
	return NULL;
}

static void vmm_memslot_kick(int dev)
{
	static const uint8_t code[] = { 0xeb, 0xfe };
	struct spinner s = { 0 };
	struct guest g;
	pthread_t t;
	uint8_t *more;
	uint64_t t0;
	int r;

	more = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (more == MAP_FAILED || !guest_open(&g, dev, 0, "memslot_kick"))
		return;
	memcpy(g.mem + 0x1000, code, sizeof(code));
	start_real_mode(g.vcpu, 0x1000);
	signal(SIGUSR2, on_sigusr2);
	s.g = &g;
	pthread_create(&t, NULL, spin, &s);
	usleep(200000);				/* well inside the guest by now */
	t0 = mono_ns();
	r = ioctl(g.vm, KVM_SET_USER_MEMORY_REGION, &(struct kvm_userspace_memory_region) {
		.slot = 1, .guest_phys_addr = 1 << 20, .memory_size = 1 << 16,
		.userspace_addr = (uint64_t)more });
	check("memslot_change_while_a_vcpu_runs", r == 0 && mono_ns() - t0 < 2000000000ULL,
	      "rc %d errno %d after %llu ms", r, errno,
	      (unsigned long long)(mono_ns() - t0) / 1000000);
	s.stop = true;
	g.run->immediate_exit = 1;
	pthread_kill(t, SIGUSR2);
	pthread_join(t, NULL);
	signal(SIGUSR2, SIG_DFL);
	guest_close(&g);
	munmap(more, 1 << 16);
}

static void vmm_abi(int dev)
{
	int vm = ioctl(dev, KVM_CREATE_VM, 0), vcpu;

	vmm_capabilities(dev);
	if (vm < 0)
		return;
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu >= 0) {
		vmm_msrs(vcpu);
		vmm_fpu_and_state(vm, vcpu);
		vmm_saved_state(dev, vm, vcpu);
		close(vcpu);
	}
	close(vm);
	vmm_pending_in(dev);
	vmm_sync_regs(dev);
	vmm_memslot_kick(dev);
	readonly_slot(dev, 0, "default");
	for (unsigned long n = 1; n <= 4 && kvmlab_device; n++) {
		static const char *const names[] = { "", "vtlb", "shadow", "cached", "npt" };

		readonly_slot(dev, 0x4b4c0000UL | n, names[n]);
	}
}

extern const uint8_t modes_guest_start[], modes_guest_end[];

/*
 * Real mode, 16-bit protected mode and unreal mode (modes_guest.S): MMIO
 * through 32-bit addresses from 16-bit code in both, a RAM store at 2 MiB
 * through the 4 GiB limit real mode keeps.
 */
static void modes16(int dev, unsigned long type, const char *name)
{
	static const struct { uint64_t addr; uint16_t val; } want[] = {
		{ 0xfe000000, 0x1616 }, { 0xfe000010, 0x7777 },
	};
	unsigned int n = 0;
	bool out = false, hlt = false, bad = false;
	struct kc_vcpu *v = NULL;
	struct kvm_sregs sregs;
	struct kc_vm vm;
	uint16_t word;
	char what[64];

	snprintf(what, sizeof(what), "unreal_and_pm16_%s", name);
	if (kc_create_vm(&vm, dev, type) && type)
		return;
	if (vm.fd >= 0 && !kc_add_ram(&vm, 0, 0, 4 << 20))
		v = kc_create_vcpu(&vm, 0);
	if (!v) {
		check(what, false, "setup failed: errno %d", errno);
		goto out;
	}
	memcpy(vm.mem + 0x1000, modes_guest_start, modes_guest_end - modes_guest_start);
	start_real_mode(v->fd, 0x1000);
	for (int i = 0; i < 10 && !hlt && !bad; i++) {
		bad = run_vcpu(v->fd) != 0;
		if (bad)
			break;
		if (v->run->exit_reason == KVM_EXIT_MMIO && n < 2) {
			memcpy(&word, v->run->mmio.data, 2);
			bad = !v->run->mmio.is_write || v->run->mmio.len != 2 ||
			      v->run->mmio.phys_addr != want[n].addr || word != want[n].val;
			n++;
		} else if (v->run->exit_reason == KVM_EXIT_IO && v->run->io.port == 0x10) {
			out = true;
		} else if (v->run->exit_reason == KVM_EXIT_HLT) {
			hlt = true;
		} else {
			bad = true;
		}
	}
	ioctl(v->fd, KVM_GET_SREGS, &sregs);
	memcpy(&word, vm.mem + 0x200000, 2);
	check(what, !bad && n == 2 && out && hlt && word == 0x55aa && !(sregs.cr0 & 1) &&
	      sregs.ds.limit == 0xffffffff,
	      "bad %d (exit %u at %#llx) mmio %u out %d hlt %d word %#x cr0 %#llx ds limit %#x",
	      bad, v->run->exit_reason, (unsigned long long)v->run->mmio.phys_addr, n, out, hlt,
	      word, (unsigned long long)sregs.cr0, sregs.ds.limit);
out:
	kc_vm_close(&vm);
}

extern const uint8_t _binary_vm86_bin_start[], _binary_vm86_bin_end[];

/*
 * Virtual-8086 mode (vm86_guest.c): a 32-bit monitor IRETs into vm86 code
 * that stores to MMIO in a PC-style hole (RAM is 0-640 KiB and 1-16 MiB),
 * does OUT through the TSS's I/O bitmap and INT 0x21 back to the monitor.
 */
static void vm86(int dev, unsigned long type, const char *name)
{
	bool mmio = false, out10 = false, out11 = false, hlt = false, bad = false;
	size_t high_bytes = 15 << 20;
	struct kc_vcpu *v = NULL;
	uint8_t *high = NULL;
	struct kc_vm vm;
	uint16_t word;
	char what[64];

	snprintf(what, sizeof(what), "vm86_%s", name);
	if (kc_create_vm(&vm, dev, type) && type)
		return;
	high = mmap(NULL, high_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (vm.fd >= 0 && high != MAP_FAILED && !kc_add_ram(&vm, 0, 0, 0xa0000) &&
	    !kc_set_memslot(vm.fd, 1, 0, 1 << 20, high_bytes, high))
		v = kc_create_vcpu(&vm, 0);
	if (!v || start_guest32(dev, &vm, v, _binary_vm86_bin_start, _binary_vm86_bin_end)) {
		check(what, false, "setup failed: errno %d", errno);
		goto out;
	}
	for (int i = 0; i < 10 && !hlt && !bad; i++) {
		bad = run_vcpu(v->fd) != 0;
		if (bad)
			break;
		switch (v->run->exit_reason) {
		case KVM_EXIT_MMIO:
			memcpy(&word, v->run->mmio.data, 2);
			mmio = v->run->mmio.is_write && v->run->mmio.phys_addr == 0xb8010 &&
			       v->run->mmio.len == 2 && word == 0x2f41;
			break;
		case KVM_EXIT_IO:
			out10 |= v->run->io.port == 0x10 &&
				 *((uint8_t *)v->run + v->run->io.data_offset) == 0x86;
			out11 |= v->run->io.port == 0x11 &&
				 *((uint8_t *)v->run + v->run->io.data_offset) == 1;
			bad = v->run->io.port == 0x12;
			break;
		case KVM_EXIT_HLT:
			hlt = true;
			break;
		default:
			bad = true;
		}
	}
	check(what, !bad && mmio && out10 && out11 && hlt && *(uint32_t *)(vm.mem + 0x9100) == 0x8086,
	      "bad %d (exit %u) mmio %d out 0x10 %d out 0x11 %d hlt %d result %#x eflags %#x "
	      "#GP error %#x at %#x", bad, v->run->exit_reason, mmio, out10, out11, hlt,
	      *(uint32_t *)(vm.mem + 0x9100), *(uint32_t *)(vm.mem + 0x9108),
	      *(uint32_t *)(vm.mem + 0x9108), *(uint32_t *)(vm.mem + 0x910c));
out:
	kc_vm_close(&vm);
	if (high != MAP_FAILED && high)
		munmap(high, high_bytes);
}

static void stats(int vm)
{
	struct kvm_stats_header h;
	int fd = ioctl(vm, KVM_GET_STATS_FD, NULL);

	check("stats_fd", fd >= 0, "errno %d", errno);
	if (fd < 0)
		return;
	check("stats_header", pread(fd, &h, sizeof(h), 0) == sizeof(h) && h.name_size == 48 &&
	      h.num_desc > 0 && h.data_offset > h.desc_offset, "name_size %u num_desc %u",
	      h.name_size, h.num_desc);
	close(fd);
}

int main(int argc, char **argv)
{
	const char *path = argv[argc - 1];
	int dev, vm;
	uint8_t *mem;

	if (argc < 2) {
		fprintf(stderr, "usage: kvmlab-abi-test [--expect-busy] DEVICE\n");
		return 2;
	}
	sigaction(SIGALRM, &(struct sigaction){ .sa_handler = on_alarm }, NULL);
	kvmlab_device = strstr(path, "kvmlab") != NULL;
	dev = open(path, O_RDWR | O_CLOEXEC);
	if (dev < 0) {
		fprintf(stderr, "kvmlab-abi-test: cannot open %s: %s\n", path, strerror(errno));
		return 2;
	}
	if (argc == 3 && !strcmp(argv[1], "--expect-busy")) {
		expect_errno("create_vm_while_svm_is_taken", ioctl(dev, KVM_CREATE_VM, 0), EBUSY);
		goto done;
	}
	check("api_version", ioctl(dev, KVM_GET_API_VERSION, 0) == KVM_API_VERSION, "%s", "");
	check("extension_user_memory", ioctl(dev, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY) > 0, "%s", "");
	check("extension_unknown", ioctl(dev, KVM_CHECK_EXTENSION, 0x7fffff) == 0, "%s", "");
	expect_errno("dev_unknown_ioctl", ioctl(dev, _IO(KVMIO, 0xfe)), ENOTTY);
	expect_errno("create_vm_bad_type", ioctl(dev, KVM_CREATE_VM, 0x5a5a), EINVAL);
	vm = ioctl(dev, KVM_CREATE_VM, 0);
	check("create_vm", vm >= 0, "errno %d", errno);
	if (vm < 0)
		goto done;
	expect_errno("vm_unknown_ioctl", ioctl(vm, _IO(KVMIO, 0xfe)), ENOTTY);
	mem = mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memslots(vm, mem);
	vcpu_checks(dev, vm);
	tsc_timeline(dev);
	stats(vm);
	vmm_abi(dev);
	close(vm);
	run_without_memory(dev);
	interrupts(dev);
	check("cap_user_nmi", ioctl(dev, KVM_CHECK_EXTENSION, KVM_CAP_USER_NMI) > 0, "%s", "");
	nmi(dev, 0, "default");
	real_mode(dev, 0, "default");
	string_io(dev, 0, "default", false);
	string_io(dev, 0, "default", true);
	string_mmio(dev, 0, "default");
	string_compare_mmio(dev, 0, "default");
	modes16(dev, 0, "default");
	vm86(dev, 0, "default");
	paging32(dev, 0, "default", false);
	paging32(dev, 0, "default", true);
	/*
	 * kvmlab's VM types only, one per MMU strategy; other devices refuse
	 * them. Linux KVM with npt=1 hangs the test machine here (it hands QEMU
	 * the state described at long_mode_entry), so /dev/kvm is not asked.
	 */
	for (unsigned long n = 1; n <= 4; n++) {
		static const char *const names[] = { "", "vtlb", "shadow", "cached", "npt" };

		long_mode_entry(dev, 0x4b4c0000UL | n, names[n]);
		nmi(dev, 0x4b4c0000UL | n, names[n]);
		real_mode(dev, 0x4b4c0000UL | n, names[n]);
		string_io(dev, 0x4b4c0000UL | n, names[n], false);
		string_io(dev, 0x4b4c0000UL | n, names[n], true);
		string_mmio(dev, 0x4b4c0000UL | n, names[n]);
		string_compare_mmio(dev, 0x4b4c0000UL | n, names[n]);
		modes16(dev, 0x4b4c0000UL | n, names[n]);
		vm86(dev, 0x4b4c0000UL | n, names[n]);
		paging32(dev, 0x4b4c0000UL | n, names[n], false);
		paging32(dev, 0x4b4c0000UL | n, names[n], true);
		irq_frame_on_page_table(dev, 0x4b4c0000UL | n, names[n], false);
		irq_frame_on_page_table(dev, 0x4b4c0000UL | n, names[n], true);
		fault_during_fault_delivery(dev, 0x4b4c0000UL | n, names[n], true);
		fault_during_fault_delivery(dev, 0x4b4c0000UL | n, names[n], false);
	}
	fault_during_fault_delivery(dev, 0, "default", true);
	fault_during_fault_delivery(dev, 0, "default", false);
	irq_frame_on_page_table(dev, 0, "default", false);
	irq_frame_on_page_table(dev, 0, "default", true);
done:
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
