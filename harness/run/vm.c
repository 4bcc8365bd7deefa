// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <unistd.h>
#include <kvmlab/kvmlab.h>
#include <kvmlab/x86.h>
#include "../lib/stats.h"
#include "../lib/util.h"
#include "../experiment/pmu.h"
#include "../migrate/migrate.h"
#include "vm.h"
#include "vm_priv.h"

/* Boot page tables: PML4, PDPT, PD at fixed pages below the image. */
#define BOOT_PML4	0x2000ULL
#define BOOT_PT_END	0x8000ULL	/* PML4, PDPT, 4 PDs: up to 4 GiB of 2 MiB pages */
#define BOOT_GDT	0x1800ULL

volatile sig_atomic_t vm_timed_out;
static struct kvm_run *volatile current_run;

static void on_alarm(int sig)
{
	(void)sig;
	vm_timed_out = 1;
	/* KVM_RUN returns at once if entered after the signal was handled. */
	if (current_run)
		current_run->immediate_exit = 1;
}

static void write_boot_info(struct vm *vm, const struct image *img)
{
	struct kl_boot_info *bi = (void *)(vm->kc.mem + KL_BOOT_INFO_GPA);

	*bi = (struct kl_boot_info) {
		.magic = KL_BOOT_MAGIC, .mem_bytes = vm->kc.mem_bytes,
		.image_end = img->image_end, .boot_pt_end = BOOT_PT_END,
		.nr_cpus = vm->cfg->vcpus > 1 ? (uint32_t)vm->cfg->vcpus : 1,
	};
	if (vm->fb.mode != FB_NONE) {
		bi->fb_gpa = FB_GPA;
		bi->fb_width = FB_WIDTH;
		bi->fb_height = FB_HEIGHT;
		bi->fb_pitch = FB_PITCH;
		bi->fb_bpp = FB_BPP;
	}
}

/* A boot guest's CPUID offers the local APIC if its descriptor says so, and always to an SMP guest. */
static bool guest_apic(const struct vm *vm, const struct image *img)
{
	return img->apic || vm->cfg->vcpus > 1;
}

int set_cpuid(struct vm *vm, const struct image *img)
{
	if (kc_set_cpuid(vm->kc.sys_fd, vm->vcpu->fd, img->boot, guest_apic(vm, img)))
		return err_errno("cannot set the guest CPUID");
	return 0;
}

/* Straight into 64-bit mode on an identity map of RAM in 2 MiB pages: just enough to run _start. */
static int set_long_mode(struct vm *vm, const struct image *img)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = {
		.rip = img->entry, .rdi = KL_BOOT_INFO_GPA, .rflags = 2,
	};

	kc_write_identity_map(vm->kc.mem, BOOT_PML4, vm->kc.mem_bytes);
	if (ioctl(vm->vcpu->fd, KVM_GET_SREGS, &sregs))
		return err_errno("KVM_GET_SREGS");
	kc_flat_segments(&sregs, vm->kc.mem + BOOT_GDT, BOOT_GDT, 8, true);
	sregs.tr.type = 11;	/* busy 64-bit TSS: the guest loads its own */
	sregs.tr.present = 1;
	sregs.tr.limit = 0x67;
	kc_long_mode_paging(&sregs, BOOT_PML4);
	sregs.cr0 |= KL_CR0_MP | KL_CR0_NE | KL_CR0_WP;
	if (ioctl(vm->vcpu->fd, KVM_SET_SREGS, &sregs))
		return err_errno("KVM_SET_SREGS (64-bit mode)");
	if (ioctl(vm->vcpu->fd, KVM_SET_REGS, &regs))
		return err_errno("KVM_SET_REGS");
	return 0;
}

/* A real-mode workload: CS=0 at its entry, paging off, the harness's ports as ever. */
static int set_real_mode(struct vm *vm, const struct image *img)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = img->entry, .rflags = 2 };

	if (img->entry > 0xffff)
		return err("%s: a real-mode entry must be below 64 KiB, not 0x%llx", img->path,
			   (unsigned long long)img->entry);
	if (ioctl(vm->vcpu->fd, KVM_GET_SREGS, &sregs))
		return err_errno("KVM_GET_SREGS");
	sregs.cs.selector = 0;
	sregs.cs.base = 0;
	sregs.cr0 = KL_CR0_ET;
	if (ioctl(vm->vcpu->fd, KVM_SET_SREGS, &sregs))
		return err_errno("KVM_SET_SREGS (real mode)");
	if (ioctl(vm->vcpu->fd, KVM_SET_REGS, &regs))
		return err_errno("KVM_SET_REGS");
	return 0;
}

int open_stats(struct vm *vm)
{
	int vm_sfd, vcpu_sfd;

	if (kc_stats_fds(&vm->kc, vm->vcpu, &vm_sfd, &vcpu_sfd))
		return err_errno("KVM_GET_STATS_FD");
	if (stats_open(&vm->vm_stats, vm_sfd) || stats_open(&vm->vcpu_stats, vcpu_sfd))
		return -1;
	vm->snap = calloc(vm->vm_stats.count + vm->vcpu_stats.count + 1, sizeof(uint64_t));
	return vm->snap ? 0 : err("out of memory");
}

static int vm_setup(struct vm *vm, const struct run_config *cfg, const struct image *img)
{
	uint64_t mem_bytes = cfg->mem_bytes;
	int sys_fd = kc_open(cfg->device);

	if (sys_fd < 0)
		return errno == EPROTONOSUPPORT ?
			err("%s does not speak KVM API %d", cfg->device, KVM_API_VERSION) :
			err_errno("cannot open %s", cfg->device);
	if (kc_create_vm(&vm->kc, sys_fd, cfg->vm_type)) {
		return err_errno("KVM_CREATE_VM(type 0x%lx) on %s", cfg->vm_type, cfg->device);
	}
	/* A kvmlab VM type names a strategy: make sure that is the one we got. */
	if ((cfg->vm_type & ~0xffffUL) == KVMLAB_VM_TYPE_BASE &&
	    ioctl(vm->kc.fd, KVM_CHECK_EXTENSION, KVMLAB_CAP_MMU) != (int)(cfg->vm_type & 0xffff))
		return err("%s did not create the VM with MMU strategy %lu", cfg->device,
			   cfg->vm_type & 0xffff);
	if (img->boot && img->boot_mem_bytes > mem_bytes)
		mem_bytes = img->boot_mem_bytes;	/* what the boot workload needs */
	if (cfg->incoming)
		mem_bytes = mig_incoming_hello(cfg->incoming)->mem_bytes;	/* the source's */
	if (kc_add_ram(&vm->kc, 0, 0, mem_bytes))
		return err_errno("cannot give the guest %llu MiB of memory",
				 (unsigned long long)mem_bytes >> 20);
	if (cfg->fb_mode && fb_setup(&vm->fb, &vm->kc, cfg->fb_mode, cfg->fb_fps))
		return -1;
	vm->vcpu = kc_create_vcpu(&vm->kc, 0);
	if (!vm->vcpu)
		return err_errno("KVM_CREATE_VCPU and its kvm_run");
	if (cfg->incoming) {
		if (set_cpuid(vm, img))	/* the guest's memory and registers come from the stream */
			return -1;
	} else if (img->boot) {
		if (boot_load(vm, img))
			return -1;
	} else {
		if (image_load(img, vm->kc.mem, vm->kc.mem_bytes))
			return -1;
		write_boot_info(vm, img);
		if (set_cpuid(vm, img) ||
		    (img->real_mode ? set_real_mode(vm, img) : set_long_mode(vm, img)))
			return -1;
	}
	return open_stats(vm);
}

/*
 * vCPUs 1..N-1 of a workload run: created now, CPUID as vCPU 0's, held in
 * userspace until the guest sends them INIT and SIPI (smp.c).
 */
static int setup_vcpus(struct vm *vm, const struct run_config *cfg, const struct image *img,
		       struct run_result *r)
{
	int n = cfg->vcpus > 0 ? cfg->vcpus : 1;

	if (n > KC_MAX_VCPUS)
		return err("--vcpus %d: at most %d", n, KC_MAX_VCPUS);
	if (n > 1 && img->real_mode)
		return err("--vcpus %d: the real-mode workloads run one CPU", n);
	if (n > 1 && (cfg->migrate_to || cfg->incoming))
		return err("--vcpus %d: live migration moves one vCPU so far", n);
	if (smp_setup(vm, n, n > 1 || img->smp, r))
		return -1;
	for (int i = 1; i < n; i++)
		if (kc_set_vcpu_cpuid(vm->kc.sys_fd, vm->smp.cpu[i].v->fd, img->boot,
				      guest_apic(vm, img), (uint8_t)i))
			return err_errno("cannot set vCPU %d's CPUID", i);
	return 0;
}

static void vm_teardown(struct vm *vm)
{
	smp_teardown(vm);
	stats_close(&vm->vm_stats);
	stats_close(&vm->vcpu_stats);
	free(vm->snap);
	kc_vm_close(&vm->kc);
	fb_free(&vm->fb);	/* its slot went with the VM */
	if (vm->kc.sys_fd >= 0)
		close(vm->kc.sys_fd);
}

/* VM statistics, then vCPU statistics summed over every vCPU. */
static int snapshot(struct vm *vm, uint64_t *out)
{
	uint64_t *vcpu = out + vm->vm_stats.count, *one;
	int n = vm->vcpu_stats.count, rc = 0;

	if (stats_read(&vm->vm_stats, out) || stats_read(&vm->vcpu_stats, vcpu))
		return -1;
	if (vm->smp.n < 2)
		return 0;
	one = calloc(n + 1, sizeof(*one));
	if (!one)
		return err("out of memory");
	for (int i = 1; i < vm->smp.n && !rc; i++) {
		if (vm->smp.cpu[i].stats.count != n || stats_read(&vm->smp.cpu[i].stats, one))
			rc = err("vCPU %d's statistics differ from vCPU 0's", i);
		for (int j = 0; j < n && !rc; j++)
			vcpu[j] += one[j];
	}
	free(one);
	return rc;
}

static const char *stat_name(const struct vm *vm, int i)
{
	if (i < vm->vm_stats.count)
		return vm->vm_stats.desc[i].name;
	return vm->vcpu_stats.desc[i - vm->vm_stats.count].name;
}

/*
 * Deltas over the phase. The port write that closed the phase is one exit
 * and one I/O exit of the harness's own making: it is taken out, so a
 * workload that exits nowhere reads exits = 0. A peak statistic is a level
 * whose delta means nothing: it is reported as its value at the end.
 */
static void record_deltas(struct vm *vm, const uint64_t *end, struct run_result *r,
			  int harness_exits)
{
	int n = vm->vm_stats.count + vm->vcpu_stats.count;

	r->ncounters = 0;
	for (int i = 0; i < n && r->ncounters < MAX_COUNTERS; i++) {
		const char *name = stat_name(vm, i);
		bool vm_stat = i < vm->vm_stats.count;
		const struct stats *st = vm_stat ? &vm->vm_stats : &vm->vcpu_stats;
		int64_t d = stats_is_peak(st, vm_stat ? i : i - vm->vm_stats.count) ?
			    (int64_t)end[i] : (int64_t)(end[i] - vm->snap[i]);

		if (i >= vm->vm_stats.count && (!strcmp(name, "exits") || !strcmp(name, "io_exits")))
			d -= harness_exits;
		snprintf(r->counter_names[r->ncounters], 64, "%s", name);
		r->counters[r->ncounters++] = d;
	}
}

/*
 * A migrated phase ran on the source first: its deltas there are added by
 * name (peaks: the larger). Host counters of the source's part are not
 * carried, so the run has none.
 */
static void add_carried(const struct vm *vm, struct run_result *r)
{
	const struct run_result *c = vm->carried;

	if (!c)
		return;
	for (int i = 0; i < c->ncounters; i++) {
		int k;

		for (k = 0; k < r->ncounters; k++)
			if (!strcmp(r->counter_names[k], c->counter_names[i]))
				break;
		if (k == r->ncounters) {
			if (k == MAX_COUNTERS)
				continue;
			snprintf(r->counter_names[k], 64, "%s", c->counter_names[i]);
			r->counters[k] = 0;
			r->ncounters++;
		}
		r->counters[k] += c->counters[i];
	}
	memset(r->host_have, 0, sizeof(r->host_have));
}

int vm_phase_begin(struct vm *vm)
{
	if (snapshot(vm, vm->snap))
		return -1;
	pmu_start(&vm->pmu);
	vm->t0 = now_ns();
	vm->in_phase = true;
	return 0;
}

static int phase_deltas(struct vm *vm, int harness_exits, struct run_result *r)
{
	uint64_t *end = calloc(vm->vm_stats.count + vm->vcpu_stats.count + 1, sizeof(*end));

	r->wall_ns = now_ns() - vm->t0;
	if (!end || snapshot(vm, end)) {
		free(end);
		return -1;
	}
	record_deltas(vm, end, r, harness_exits);
	add_carried(vm, r);
	free(end);
	return 0;
}

int vm_phase_end(struct vm *vm, int harness_exits, struct run_result *r)
{
	pmu_stop(&vm->pmu, r->host, r->host_have);
	vm->in_phase = false;
	return phase_deltas(vm, harness_exits, r);
}

int vm_phase_partial(struct vm *vm, struct run_result *r)
{
	return phase_deltas(vm, 0, r);
}

void set_status(struct run_result *r, const char *status, const char *fmt, ...)
{
	va_list ap;

	snprintf(r->status, sizeof(r->status), "%s", status);
	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
}

static void add_check(const struct run_config *cfg, struct run_result *r,
		      const struct kl_msg *m)
{
	struct check_result *c;
	const char *sep = strstr(m->text, ": ");
	size_t nlen = sep ? (size_t)(sep - m->text) : strlen(m->text);

	if (r->nchecks == MAX_CHECKS)
		return;
	c = &r->checks[r->nchecks++];
	if (nlen >= sizeof(c->name))
		nlen = sizeof(c->name) - 1;
	memcpy(c->name, m->text, nlen);
	c->name[nlen] = 0;
	snprintf(c->detail, sizeof(c->detail), "%s", sep ? sep + 2 : "");
	c->pass = m->status == 0;
	for (int i = 0; !c->pass && cfg->known_deviations && cfg->known_deviations[i]; i++)
		c->known_deviation |= !strcmp(cfg->known_deviations[i], c->name);
}

/* Returns 1 when the guest is done, 0 to keep running, -1 on error. */
static int handle_msg(struct vm *vm, const struct run_config *cfg, uint32_t gpa,
		      struct run_result *r)
{
	struct kl_msg m;

	if ((uint64_t)gpa + sizeof(m) > vm->kc.mem_bytes) {
		set_status(r, "error", "guest message at gpa 0x%x lies outside RAM", gpa);
		return -1;
	}
	memcpy(&m, vm->kc.mem + gpa, sizeof(m));
	m.text[KL_MSG_TEXT_LEN - 1] = 0;
	switch (m.type) {
	case KL_MSG_PHASE_BEGIN:
		return vm_phase_begin(vm);
	case KL_MSG_PHASE_END:
		if (vm_phase_end(vm, 1, r))
			return -1;
		r->ops = m.a;
		r->checksum = m.b;
		r->guest_cycles = m.c;
		r->measured = true;
		return 0;
	case KL_MSG_CHECK:
		add_check(cfg, r, &m);
		return 0;
	case KL_MSG_NOTE:
		if (!strncmp(m.text, "guest panic: ", 13))
			set_status(r, "panic", "%s", m.text);
		if (cfg->verbose || !strcmp(r->status, "panic"))
			fprintf(stderr, "  [guest] %s\n", m.text);
		if (cfg->on_note)
			cfg->on_note(cfg->note_ctx, m.text);
		return 0;
	case KL_MSG_EXIT:
		r->exit_code = (int)m.status;
		return 1;
	default:
		set_status(r, "error", "unknown guest message type %u", m.type);
		return -1;
	}
}

static void console_out(struct vm *vm, const uint8_t *data, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++) {
		char c = (char)data[i];

		if (c == '\n' || vm->console_len == sizeof(vm->console) - 1) {
			fprintf(stderr, "  [console] %.*s\n", (int)vm->console_len, vm->console);
			vm->console_len = 0;
		}
		if (c != '\n')
			vm->console[vm->console_len++] = c;
	}
}

static int handle_io(struct vm *vm, struct kvm_run *run, const struct run_config *cfg,
		     struct run_result *r)
{
	uint8_t *data = (uint8_t *)run + run->io.data_offset;

	if (run->io.direction == KVM_EXIT_IO_OUT && run->io.port == KL_PORT_CONSOLE) {
		console_out(vm, data, run->io.size * run->io.count);
		return 0;
	}
	if (run->io.direction == KVM_EXIT_IO_OUT && run->io.port == KL_PORT_MSG &&
	    run->io.size == 4 && run->io.count == 1)
		return handle_msg(vm, cfg, *(uint32_t *)data, r);
	if (run->io.port == KL_PORT_CLOCK && run->io.direction == KVM_EXIT_IO_IN &&
	    run->io.size == 4 && run->io.count == 1) {
		uint32_t us = (uint32_t)(now_ns() / 1000);

		memcpy(data, &us, 4);
		return 0;
	}
	if (run->io.port == KL_PORT_ECHO && run->io.size <= 4) {
		/* INS/OUTS: element by element; each OUT replaces, each IN reads it back. */
		for (uint32_t i = 0; i < run->io.count; i++) {
			if (run->io.direction == KVM_EXIT_IO_OUT)
				memcpy(&vm->echo, data + i * run->io.size, run->io.size);
			else
				memcpy(data + i * run->io.size, &vm->echo, run->io.size);
		}
		return 0;
	}
	set_status(r, "error", "unexpected port I/O: %s port 0x%x size %u",
		   run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in",
		   run->io.port, run->io.size);
	return -1;
}

/* MMIO to the scratch device or the framebuffer is served; anywhere else it ends the run. */
static bool handle_mmio(struct vm *vm, struct kvm_run *run)
{
	uint64_t off = run->mmio.phys_addr - KL_MMIO_SCRATCH_GPA;

	if (fb_mmio(&vm->fb, run->mmio.phys_addr, run->mmio.is_write, run->mmio.data,
		    (int)run->mmio.len))
		return true;
	if (run->mmio.phys_addr < KL_MMIO_SCRATCH_GPA || run->mmio.len > 8 ||
	    off + run->mmio.len > KL_MMIO_SCRATCH_SIZE)
		return false;
	if (run->mmio.is_write)
		memcpy(vm->scratch + off, run->mmio.data, run->mmio.len);
	else
		memcpy(run->mmio.data, vm->scratch + off, run->mmio.len);
	return true;
}

void describe_exit(struct vm *vm, struct run_result *r)
{
	describe_vcpu_exit(vm->vcpu, r);
}

void describe_vcpu_exit(struct kc_vcpu *v, struct run_result *r)
{
	struct kvm_run *run = v->run;
	struct kvm_regs regs = { 0 };

	ioctl(v->fd, KVM_GET_REGS, &regs);
	switch (run->exit_reason) {
	case KVM_EXIT_HLT:
		set_status(r, "error", "guest halted at rip 0x%llx", regs.rip);
		break;
	case KVM_EXIT_SHUTDOWN:
		set_status(r, "error", "guest shut down (triple fault) at rip 0x%llx", regs.rip);
		break;
	case KVM_EXIT_MMIO:
		set_status(r, "error", "guest MMIO %s at gpa 0x%llx (no device there), rip 0x%llx",
			   run->mmio.is_write ? "write" : "read",
			   run->mmio.phys_addr, regs.rip);
		break;
	case KVM_EXIT_FAIL_ENTRY:
		set_status(r, "error", "VM entry failed: reason 0x%llx",
			   run->fail_entry.hardware_entry_failure_reason);
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		set_status(r, "error", "hypervisor internal error: suberror %u (ndata %u, data 0x%llx 0x%llx), rip 0x%llx",
			   run->internal.suberror, run->internal.ndata,
			   run->internal.ndata ? run->internal.data[0] : 0ULL,
			   run->internal.ndata > 1 ? run->internal.data[1] : 0ULL, regs.rip);
		break;
	default:
		set_status(r, "error", "unhandled exit reason %u at rip 0x%llx",
			   run->exit_reason, regs.rip);
	}
}

/* A workload's run: its ports and the scratch MMIO device, until it says EXIT. */
struct workload_run {
	struct vm *vm;
	const struct run_config *cfg;
	struct run_result *r;
};

static int workload_stop(void *ctx)
{
	struct workload_run *w = ctx;

	if (w->vm->smp.stop)	/* another vCPU failed; it said why */
		return 1;
	if (!vm_timed_out)
		return 0;
	pthread_mutex_lock(&w->vm->smp.lock);
	set_status(w->r, "timeout", "no result within %u s", w->cfg->timeout_s);
	pthread_mutex_unlock(&w->vm->smp.lock);
	return 1;
}

/*
 * --hop-exits N: every N returns from KVM_RUN the BSP's thread moves to the
 * next CPU it may run on (sched_setaffinity on itself moves it at once), so
 * the hypervisor must carry the vCPU's per-CPU state (VMCS, VMCB, ASID)
 * along; the module counts the moves in cpu_migrations.
 */
static void hop_start(struct vm *vm)
{
	vm->since_hop = 0;
	if (!vm->cfg->hop_exits || sched_getaffinity(0, sizeof(vm->hop_cpus), &vm->hop_cpus))
		CPU_ZERO(&vm->hop_cpus);
}

void vm_hop(struct vm *vm)
{
	cpu_set_t one;
	int cpu;

	/* Before every KVM_RUN: without --hop-exits this is the whole cost. */
	if (CPU_COUNT(&vm->hop_cpus) < 2 || ++vm->since_hop < vm->cfg->hop_exits)
		return;
	cpu = sched_getcpu();
	if (cpu < 0)
		return;
	vm->since_hop = 0;
	for (int i = 1; i <= CPU_SETSIZE; i++) {
		int next = (cpu + i) % CPU_SETSIZE;

		if (CPU_ISSET(next, &vm->hop_cpus)) {
			CPU_ZERO(&one);
			CPU_SET(next, &one);
			sched_setaffinity(0, sizeof(one), &one);
			return;
		}
	}
}

/* The next run starts with the affinity this one started with. */
static void hop_end(struct vm *vm)
{
	if (CPU_COUNT(&vm->hop_cpus))
		sched_setaffinity(0, sizeof(vm->hop_cpus), &vm->hop_cpus);
}

static int workload_before(void *ctx)
{
	struct workload_run *w = ctx;

	vm_hop(w->vm);
	if (w->vm->mig && mig_source_before(w->vm))
		return -1;
	return smp_before(&w->vm->smp.cpu[0]);
}

/* KVM_RUN returned EINTR: the one point where the vCPU may stop for a migration. */
static int workload_interrupted(void *ctx)
{
	struct workload_run *w = ctx;

	return w->vm->mig ? mig_source_checkpoint(w->vm, w->r) : 0;
}

/*
 * Any vCPU's exit: its APIC, the scratch device and framebuffer, the ports.
 * Under smp.lock, which guards the result, the console and the phase.
 */
int vm_serve_exit(struct vm *vm, struct smp_cpu *c, struct kvm_run *run)
{
	struct run_result *r = vm->smp.result;
	int rc;

	pthread_mutex_lock(&vm->smp.lock);
	if (run->exit_reason == KVM_EXIT_MMIO && (smp_lapic_mmio(c, run) || handle_mmio(vm, run))) {
		rc = 0;
	} else if (run->exit_reason == KVM_EXIT_IRQ_WINDOW_OPEN) {
		rc = 0;		/* smp_before injects now */
	} else if (run->exit_reason == KVM_EXIT_IO) {
		rc = handle_io(vm, run, vm->cfg, r);
		if (rc > 0 && c->id)
			rc = smp_fail(c, "vCPU %d, not the bootstrap processor, sent EXIT", c->id);
	} else {
		describe_vcpu_exit(c->v, r);
		if (vm->smp.n > 1)
			snprintf(r->detail + strlen(r->detail), sizeof(r->detail) - strlen(r->detail),
				 " (vCPU %d)", c->id);
		rc = -1;
	}
	if (rc < 0 && c->id)
		smp_fail(c, "vCPU %d failed", c->id);	/* its reason is set: stop the others */
	pthread_mutex_unlock(&vm->smp.lock);
	return rc;
}

static int workload_exit(void *ctx, struct kvm_run *run)
{
	struct workload_run *w = ctx;
	struct smp_cpu *bsp = &w->vm->smp.cpu[0];

	/* HLT waits for an interrupt once the guest switched its APIC on; before, it is a hang. */
	if (run->exit_reason == KVM_EXIT_HLT && lapic_enabled(bsp->apic))
		return smp_halt(bsp) < 0 ? -1 : 0;
	return vm_serve_exit(w->vm, bsp, run);
}

static void run_failed(void *ctx, int e)
{
	set_status(((struct workload_run *)ctx)->r, "error", "KVM_RUN: %s", strerror(e));
}

static int run_loop(struct vm *vm, const struct run_config *cfg, struct run_result *r)
{
	struct workload_run w = { .vm = vm, .cfg = cfg, .r = r };
	const struct kc_loop loop = {
		.before = workload_before, .stop = workload_stop,
		.interrupted = workload_interrupted, .exit = workload_exit, .run_failed = run_failed,
	};

	return kc_run_loop(vm->vcpu, &loop, &w);
}

/* The last refresh, the snapshot, and the framebuffer's counters. */
static void finish_fb(struct vm *vm, const struct run_config *cfg, struct run_result *r)
{
	struct fb *fb = &vm->fb;

	if (fb->mode == FB_NONE)
		return;
	fb_stop(fb);
	if (fb->error && !r->status[0])
		set_status(r, "error", "framebuffer refresh: %s", strerror(fb->error));
	if (cfg->fb_snapshot && fb_snapshot(fb, cfg->fb_snapshot) && !r->status[0])
		set_status(r, "error", "cannot write the framebuffer snapshot %s", cfg->fb_snapshot);
	run_add_counter(r, "fb_refreshes", (int64_t)fb->refreshes);
	run_add_counter(r, "fb_dirty_pages", (int64_t)fb->dirty_pages);
	run_add_counter(r, "fb_lines_redrawn", (int64_t)fb->lines_redrawn);
	run_add_counter(r, "fb_mmio_writes", (int64_t)fb->mmio_writes);
	run_add_counter(r, "fb_mmio_reads", (int64_t)fb->mmio_reads);
}

static void finish_status(struct run_result *r)
{
	int failed = 0;

	if (r->status[0])
		return;
	for (int i = 0; i < r->nchecks; i++)
		failed += !r->checks[i].pass && !r->checks[i].known_deviation;
	if (r->exit_code)
		set_status(r, "fail", "guest exit status %d", r->exit_code);
	else if (failed)
		set_status(r, "fail", "%d of %d checks failed", failed, r->nchecks);
	else if (!r->measured)
		set_status(r, "error", "the guest never closed its measured phase");
	else
		set_status(r, "ok", "%s", "");
}

int vm_run(const struct run_config *cfg, const struct image *img, struct run_result *r)
{
	struct vm vm = { .kc = { .sys_fd = -1, .fd = -1 } };
	struct sigaction sa = { .sa_handler = on_alarm };
	struct itimerval timer = { .it_value = { .tv_sec = cfg->timeout_s } };
	struct dirty_logger *logger = NULL;
	int rc;

	memset(r, 0, sizeof(*r));
	vm.cfg = cfg;
	if (vm_setup(&vm, cfg, img) || setup_vcpus(&vm, cfg, img, r)) {
		vm_teardown(&vm);
		return -1;
	}
	pmu_open(&vm.pmu);
	if (cfg->incoming && mig_incoming_receive(cfg->incoming, &vm, r)) {
		pmu_close(&vm.pmu);
		vm_teardown(&vm);
		return -1;
	}
	if (cfg->migrate_to && mig_source_start(&vm, cfg->migrate_to)) {
		pmu_close(&vm.pmu);
		vm_teardown(&vm);
		return -1;
	}
	if (cfg->dirty_log_ms && !(logger = dirty_logger_start(&vm, cfg->dirty_log_ms))) {
		pmu_close(&vm.pmu);
		vm_teardown(&vm);
		return -1;
	}
	vm_timed_out = 0;
	current_run = vm.vcpu->run;
	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &timer, NULL);
	if (cfg->incoming)
		mig_incoming_ack(cfg->incoming);
	if (fb_start(&vm.fb))
		set_status(r, "error", "the framebuffer did not start");
	if (smp_start(&vm))
		set_status(r, "error", "the vCPU threads did not start");
	hop_start(&vm);
	rc = img->boot ? machine_run(&vm, cfg, img, r) : r->status[0] ? -1 : run_loop(&vm, cfg, r);
	hop_end(&vm);
	smp_stop(&vm);
	smp_counters(&vm, r);
	mig_source_finish(&vm);
	dirty_logger_stop(logger, r);
	finish_fb(&vm, cfg, r);
	memset(&timer, 0, sizeof(timer));
	setitimer(ITIMER_REAL, &timer, NULL);
	current_run = NULL;
	if (rc && !r->status[0])
		set_status(r, "error", "run failed");
	finish_status(r);
	pmu_close(&vm.pmu);
	vm_teardown(&vm);
	return 0;
}

void run_add_counter(struct run_result *r, const char *name, int64_t value)
{
	if (r->ncounters == MAX_COUNTERS)
		return;
	snprintf(r->counter_names[r->ncounters], 64, "%s", name);
	r->counters[r->ncounters++] = value;
}

bool run_counter(const struct run_result *r, const char *name, int64_t *value)
{
	for (int i = 0; i < r->ncounters; i++) {
		if (!strcmp(r->counter_names[i], name)) {
			*value = r->counters[i];
			return true;
		}
	}
	return false;
}
