// SPDX-License-Identifier: GPL-2.0
/*
 * Several vCPUs in one workload run (`--vcpus N`): one thread per vCPU, a
 * local APIC per vCPU at 0xfee00000, and the APIC "bus" between them.
 *
 * The bootstrap processor (vCPU 0) is the run's own thread and starts at
 * the image's entry as ever. The others start as a PC's application
 * processors do: held in userspace until the BSP sends them INIT and then
 * a Startup IPI, which puts them in real mode at CS = vector << 8, IP 0 —
 * KVM_SET_SREGS/KVM_SET_REGS and KVM_SET_MP_STATE(RUNNABLE), as QEMU does
 * with a userspace interrupt controller (KVM's MP states other than
 * RUNNABLE need its in-kernel APIC).
 *
 * An IPI is an MMIO write of the sender's ICR: under `lock` it sets the
 * vector in the receiver's IRR, then kicks the receiver's thread, with a
 * signal that ends its KVM_RUN (immediate_exit covers the moment before
 * it enters), or a condition variable when it waits in HLT. Before each
 * KVM_RUN a vCPU injects its highest pending vector with KVM_INTERRUPT, or
 * asks for an interrupt window. Everything the vCPUs share — the APICs,
 * the run's result, the console, the measured phase — changes under
 * `lock`; it is never held across KVM_RUN.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <kvmlab/x86.h>
#include "../lib/util.h"
#include "vm_priv.h"

enum { DM_FIXED = 0, DM_LOWEST = 1, DM_SMI = 2, DM_NMI = 4, DM_INIT = 5, DM_SIPI = 6 };
enum { SH_NONE = 0, SH_SELF = 1, SH_ALL = 2, SH_OTHERS = 3 };

static __thread struct kvm_run *kick_run;	/* this thread's vCPU */

static void on_kick(int sig)
{
	(void)sig;
	if (kick_run)
		kick_run->immediate_exit = 1;
}

void smp_kick(struct smp_cpu *c)
{
	uint64_t one = 1;

	pthread_cond_signal(&c->wake);
	if (c->wake_fd >= 0 && write(c->wake_fd, &one, sizeof(one)) < 0) {
		/* the counter is full: it is awake anyway */
	}
	if (c->has_thread && !pthread_equal(c->thread, pthread_self()))
		pthread_kill(c->thread, SMP_KICK_SIGNAL);
}

static void deliver(struct smp *s, struct smp_cpu *c, unsigned int mode, int vector)
{
	switch (mode) {
	case DM_FIXED:
	case DM_LOWEST:
		lapic_raise(c->apic, vector);
		break;
	case DM_NMI:
		c->nmi = true;
		break;
	case DM_INIT:
		c->wait_sipi = true;
		c->sipi = false;
		s->inits++;
		break;
	case DM_SIPI:
		if (!c->wait_sipi)
			return;		/* a running CPU ignores SIPI */
		c->sipi = true;
		c->sipi_vector = vector;
		s->sipis++;
		break;
	default:
		return;			/* SMI and reserved modes: nothing here to take them */
	}
	smp_kick(c);
}

static bool addressed(const struct smp_cpu *src, const struct smp_cpu *c, uint32_t lo, uint8_t dest)
{
	switch ((lo >> 18) & 3) {
	case SH_SELF:
		return c == src;
	case SH_ALL:
		return true;
	case SH_OTHERS:
		return c != src;
	}
	if (lo & (1U << 11))
		return lapic_match_logical(c->apic, dest);
	return dest == 0xff || c->apic->id == dest;
}

/*
 * The APIC bus: a message in the ICR's format, from a CPU's ICR (src) or
 * from the I/O APIC (src NULL, no shorthand). Called under smp->lock.
 */
static void bus_message(struct smp *s, struct smp_cpu *src, uint32_t lo, uint32_t hi)
{
	struct smp_cpu *lowest = NULL;
	unsigned int mode = (lo >> 8) & 7;
	uint8_t dest = hi >> 24;

	for (int i = 0; i < s->n; i++) {
		struct smp_cpu *c = &s->cpu[i];

		if (!addressed(src, c, lo, dest))
			continue;
		/* Lowest priority: one receiver, the lowest task priority (then the lowest ID). */
		if (mode == DM_LOWEST) {
			if (!lowest || lapic_tpr(c->apic) < lapic_tpr(lowest->apic))
				lowest = c;
			continue;
		}
		deliver(s, c, mode, lo & 0xff);
	}
	if (lowest)
		deliver(s, lowest, DM_FIXED, lo & 0xff);
}

/* An ICR write of src's (from lapic_mmio). */
static void send_ipi(void *ctx, uint32_t lo, uint32_t hi)
{
	struct smp_cpu *src = ctx;
	struct smp *s = &src->vm->smp;

	/* INIT level de-assert: the old handshake's second half, a no-op since the P4. */
	if (((lo >> 8) & 7) == DM_INIT && (lo & (1U << 15)) && !(lo & (1U << 14)))
		return;
	s->ipis++;
	bus_message(s, src, lo, hi);
}

/* A message of the I/O APIC's: never a shorthand, and never INIT or SIPI from a PC's board. */
static void ioapic_message(void *ctx, uint32_t lo, uint32_t hi)
{
	struct smp *s = ctx;

	s->ioapic_msgs++;
	bus_message(s, NULL, lo & ~(3U << 18), hi);
}

void smp_attach_devices(struct vm *vm, struct devices *dev, const struct kc_loop *ap_loop)
{
	struct smp *s = &vm->smp;
	struct smp_cpu *bsp = &s->cpu[0];

	pthread_mutex_lock(&s->lock);
	s->ap_loop = ap_loop;
	dev->lapic.send_ipi = send_ipi;
	dev->lapic.ipi_ctx = bsp;
	bsp->apic = &dev->lapic;
	if (s->n > 1) {
		ioapic_init(&dev->ioapic, (uint8_t)s->n);	/* the ID the MP table gives it */
		dev->ioapic.deliver = ioapic_message;
		dev->ioapic.deliver_ctx = s;
	}
	pthread_mutex_unlock(&s->lock);
}

bool smp_lapic_mmio(struct smp_cpu *c, struct kvm_run *run)
{
	uint64_t off = run->mmio.phys_addr - LAPIC_GPA;
	uint32_t val = 0;

	if (!c->vm->smp.apics || run->mmio.phys_addr < LAPIC_GPA || off >= 0x1000)
		return false;
	/* Registers are 32 bits on 16-byte boundaries; other widths read zeros. */
	if (run->mmio.len != 4 || (off & 0xf))
		return !run->mmio.is_write ? (memset(run->mmio.data, 0, run->mmio.len), true) : true;
	if (run->mmio.is_write) {
		memcpy(&val, run->mmio.data, 4);
		lapic_mmio(c->apic, off, true, &val);
	} else {
		lapic_mmio(c->apic, off, false, &val);
		memcpy(run->mmio.data, &val, 4);
	}
	return true;
}

/* Under smp.lock: an NMI sent to c goes in with KVM_NMI before its next entry. */
int smp_deliver_nmi(struct smp_cpu *c)
{
	if (!c->nmi)
		return 0;
	c->nmi = false;
	if (ioctl(c->v->fd, KVM_NMI, 0))
		return smp_fail(c, "NMI IPI to vCPU %d: KVM_NMI: %s", c->id, strerror(errno));
	return 0;
}

/* Before KVM_RUN: inject the APIC's highest vector, or ask to hear when we can. */
int smp_before(struct smp_cpu *c)
{
	struct smp *s = &c->vm->smp;
	struct kvm_run *run = c->v->run;
	struct kvm_interrupt irq;
	int vector, r = 0;

	if (!s->apics)		/* no APIC, nothing to inject: keep the lock off this path */
		return 0;
	pthread_mutex_lock(&s->lock);
	r = smp_deliver_nmi(c);
	vector = lapic_pending_vector(c->apic);
	run->request_interrupt_window = 0;
	if (vector >= 0 && run->if_flag && run->ready_for_interrupt_injection) {
		irq.irq = vector;
		if (ioctl(c->v->fd, KVM_INTERRUPT, &irq))
			r = smp_fail(c, "KVM_INTERRUPT on vCPU %d: %s", c->id, strerror(errno));
		else
			lapic_ack(c->apic, vector);
	} else if (vector >= 0) {
		run->request_interrupt_window = 1;
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

/*
 * HLT (KVM gives it to userspace without its own APIC): sleep until an
 * interrupt, an NMI or INIT is there for this vCPU, or the run ends.
 * 0: go on; 1: INIT came (an AP goes back to waiting for SIPI); -1: stop.
 */
int smp_halt(struct smp_cpu *c)
{
	struct smp *s = &c->vm->smp;
	struct timespec t;
	int r;

	pthread_mutex_lock(&s->lock);
	c->halts++;
	while (!s->stop && !vm_timed_out && lapic_pending_vector(c->apic) < 0 && !c->nmi &&
	       !c->wait_sipi) {
		clock_gettime(CLOCK_REALTIME, &t);
		t.tv_nsec += 50000000;	/* re-check the timeout now and then */
		if (t.tv_nsec >= 1000000000) {
			t.tv_sec++;
			t.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&c->wake, &s->lock, &t);
	}
	r = s->stop || vm_timed_out ? -1 : c->wait_sipi ? 1 : 0;
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* Called with smp->lock held: the run ends, with this reason unless it has one. */
int smp_fail(struct smp_cpu *c, const char *fmt, ...)
{
	struct smp *s = &c->vm->smp;
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (!s->result->status[0])
		set_status(s->result, "error", "%s", why);
	s->stop = true;
	for (int i = 0; i < s->n; i++)
		if (&s->cpu[i] != c)
			smp_kick(&s->cpu[i]);
	return -1;
}

/* Startup IPI: real mode at vector << 12, as after INIT. */
static int start_at_sipi(struct smp_cpu *c, uint8_t vector)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rflags = 2 };
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_RUNNABLE };
	struct kvm_segment data = {
		.limit = 0xffff, .type = 3, .present = 1, .s = 1,
	};

	if (ioctl(c->v->fd, KVM_GET_SREGS, &sregs))
		return -1;
	sregs.cs = data;
	sregs.cs.type = 11;
	sregs.cs.selector = (uint16_t)vector << 8;
	sregs.cs.base = (uint64_t)vector << 12;
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
	sregs.gdt.base = sregs.idt.base = 0;
	sregs.gdt.limit = sregs.idt.limit = 0xffff;
	sregs.cr0 = KL_CR0_ET;
	sregs.cr3 = sregs.cr4 = 0;
	sregs.efer = 0;
	if (ioctl(c->v->fd, KVM_SET_SREGS, &sregs) || ioctl(c->v->fd, KVM_SET_REGS, &regs))
		return -1;
	return ioctl(c->v->fd, KVM_SET_MP_STATE, &mp);
}

bool smp_ap_reset(struct smp_cpu *c)
{
	return c->wait_sipi;	/* INIT came: back to waiting (read without the lock: a hint) */
}

static int ap_before(void *ctx)
{
	struct smp_cpu *c = ctx;

	if (smp_ap_reset(c))
		return 1;
	return smp_before(c);
}

int smp_ap_stop(void *ctx)
{
	struct smp_cpu *c = ctx;

	return c->vm->smp.stop || vm_timed_out;
}

static int ap_exit(void *ctx, struct kvm_run *run)
{
	struct smp_cpu *c = ctx;

	if (run->exit_reason == KVM_EXIT_HLT)
		return smp_halt(c);
	return vm_serve_exit(c->vm, c, run);
}

void smp_ap_failed(void *ctx, int e)
{
	struct smp_cpu *c = ctx;

	pthread_mutex_lock(&c->vm->smp.lock);
	smp_fail(c, "KVM_RUN on vCPU %d: %s", c->id, strerror(e));
	pthread_mutex_unlock(&c->vm->smp.lock);
}

static const struct kc_loop workload_ap_loop = {
	.before = ap_before, .stop = smp_ap_stop, .exit = ap_exit, .run_failed = smp_ap_failed,
};

static void *ap_main(void *arg)
{
	struct smp_cpu *c = arg;
	struct smp *s = &c->vm->smp;
	sigset_t kick_only;

	/* Helper threads start with every signal blocked; this one must end KVM_RUN. */
	sigemptyset(&kick_only);
	sigaddset(&kick_only, SMP_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &kick_only, NULL);
	kick_run = c->v->run;
	pthread_mutex_lock(&s->lock);
	for (;;) {
		uint8_t vector;

		while (!s->stop && !vm_timed_out && !(c->wait_sipi && c->sipi))
			pthread_cond_wait(&c->wake, &s->lock);
		if (s->stop || vm_timed_out)
			break;
		c->wait_sipi = c->sipi = false;
		vector = c->sipi_vector;
		if (start_at_sipi(c, vector)) {
			smp_fail(c, "starting vCPU %d at SIPI vector 0x%x: %s", c->id, vector,
				 strerror(errno));
			break;
		}
		c->started = true;
		pthread_mutex_unlock(&s->lock);
		kc_run_loop(c->v, s->ap_loop, c);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int smp_setup(struct vm *vm, int n, bool apics, struct run_result *r)
{
	struct smp *s = &vm->smp;

	s->n = n;
	s->apics = apics;
	s->result = r;
	s->ap_loop = &workload_ap_loop;
	pthread_mutex_init(&s->lock, NULL);
	for (int i = 0; i < n; i++)
		s->cpu[i].wake_fd = -1;
	for (int i = 0; i < n; i++) {
		struct smp_cpu *c = &s->cpu[i];

		c->vm = vm;
		c->id = i;
		c->v = i ? kc_create_vcpu(&vm->kc, i) : vm->vcpu;
		if (!c->v)
			return err_errno("KVM_CREATE_VCPU %d", i);
		c->apic = &c->own_apic;
		lapic_init(c->apic, (uint8_t)i);
		c->apic->send_ipi = send_ipi;
		c->apic->ipi_ctx = c;
		c->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (c->wake_fd < 0)
			return err_errno("eventfd");
		c->wait_sipi = i > 0;	/* APs wait for INIT-SIPI, as after power-on */
		pthread_cond_init(&c->wake, NULL);
		if (i && stats_open(&c->stats, ioctl(c->v->fd, KVM_GET_STATS_FD, 0)))
			return err("cannot read vCPU %d's statistics", i);
	}
	return 0;
}

int smp_start(struct vm *vm)
{
	struct smp *s = &vm->smp;
	struct sigaction sa = { .sa_handler = on_kick };

	sigaction(SMP_KICK_SIGNAL, &sa, NULL);	/* no SA_RESTART: it must end KVM_RUN */
	s->cpu[0].thread = pthread_self();
	s->cpu[0].has_thread = true;
	kick_run = vm->vcpu->run;
	for (int i = 1; i < s->n; i++) {
		if (start_helper_thread(&s->cpu[i].thread, ap_main, &s->cpu[i]))
			return err_errno("cannot start vCPU %d's thread", i);
		s->cpu[i].has_thread = true;
	}
	return 0;
}

void smp_stop(struct vm *vm)
{
	struct smp *s = &vm->smp;

	pthread_mutex_lock(&s->lock);
	s->stop = true;
	for (int i = 1; i < s->n; i++)
		if (s->cpu[i].has_thread)
			smp_kick(&s->cpu[i]);
	pthread_mutex_unlock(&s->lock);
	for (int i = 1; i < s->n; i++) {
		if (s->cpu[i].has_thread)
			pthread_join(s->cpu[i].thread, NULL);
		s->cpu[i].has_thread = false;
		if (s->cpu[i].has_timer)
			timer_delete(s->cpu[i].timer);
		s->cpu[i].has_timer = false;
	}
	s->cpu[0].has_thread = false;
	kick_run = NULL;
}

void smp_teardown(struct vm *vm)
{
	for (int i = 0; i < vm->smp.n; i++) {
		if (i)
			stats_close(&vm->smp.cpu[i].stats);
		if (vm->smp.cpu[i].wake_fd >= 0)
			close(vm->smp.cpu[i].wake_fd);
		vm->smp.cpu[i].wake_fd = -1;
	}
}

void smp_counters(struct vm *vm, struct run_result *r)
{
	struct smp *s = &vm->smp;
	int64_t halts = 0;

	if (s->n < 2 && !s->ipis)
		return;
	for (int i = 0; i < s->n; i++)
		halts += (int64_t)s->cpu[i].halts;
	run_add_counter(r, "ipis_sent", (int64_t)s->ipis);
	run_add_counter(r, "init_ipis", (int64_t)s->inits);
	run_add_counter(r, "startup_ipis", (int64_t)s->sipis);
	run_add_counter(r, "vcpu_halts", halts);
	if (s->ioapic_msgs)
		run_add_counter(r, "ioapic_interrupts", (int64_t)s->ioapic_msgs);
}
