// SPDX-License-Identifier: GPL-2.0
/*
 * The run loop of a boot guest: the top level of the paper's three-level
 * loop, with the devices (devices.h) in it.
 *
 * Before each KVM_RUN: bring the timers up to date, and if the devices
 * have an interrupt for the CPU, inject it when the last exit said the
 * vCPU is ready (KVM_INTERRUPT), or else ask to hear when it is
 * (request_interrupt_window). A POSIX timer armed for the devices' next
 * deadline sends a signal that ends KVM_RUN (immediate_exit covers the
 * signal that lands just before the call). A halted guest is woken here:
 * we sleep until the next deadline or console input.
 *
 * The guest ends the run by writing its status to port 0xf4; a guest that
 * halts with interrupts off can never wake, and ends it too.
 *
 * Boot guests mark their measured phase with two ports (guest_abi.h):
 * begin and end, with the guest's TSC, operations and checksum.
 *
 * With several vCPUs (`--vcpus N`) the bootstrap processor runs this loop
 * on the run's thread and each application processor, once INIT and SIPI
 * started it (smp.c), runs the AP loop below on its own thread: its own
 * local APIC and APIC timer (a POSIX timer that signals that thread), the
 * shared devices for everything else. The MP table (loaders/mptable.c)
 * and the I/O APIC route the ISA interrupts to any CPU. Every exit and
 * injection of every vCPU is served under smp.lock, which guards the
 * device model; nobody holds it across KVM_RUN or a sleep. A halted vCPU
 * sleeps in poll() on its eventfd, which an IPI or I/O APIC message
 * writes, until its next timer deadline.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include "../devices/devices.h"
#include "../lib/util.h"
#include "../migrate/migrate.h"
#include "vm_priv.h"

struct machine {
	struct vm *vm;
	const struct run_config *cfg;
	struct run_result *r;
	struct devices dev;
	timer_t timer;
	bool input_eof;
	bool user_quit;		/* the console's escape byte arrived */
	uint8_t pending[256];	/* console input the guest's UART has no room for yet */
	size_t pending_len;
	unsigned int spins;	/* KVM_RUN calls: console input is polled every 64 */
};

static struct kvm_run *volatile kick_run;

static void on_kick(int sig)
{
	(void)sig;
	if (kick_run)
		kick_run->immediate_exit = 1;
}

static int start_timer(struct machine *m)
{
	struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1 };
	/*
	 * SA_RESTART: the tick must end KVM_RUN (it does: KVM_RUN is never
	 * restarted, and immediate_exit covers a tick just before it) and the
	 * halted wait in poll(), but not a console write blocked on a slow
	 * terminal. Without it, that write failed with EINTR and stdio dropped
	 * the guest's line: whole lines of output went missing under load.
	 */
	struct sigaction sa = { .sa_handler = on_kick, .sa_flags = SA_RESTART };

	sigaction(SIGUSR1, &sa, NULL);
	kick_run = m->vm->vcpu->run;
	if (timer_create(CLOCK_MONOTONIC, &sev, &m->timer))
		return err_errno("timer_create");
	return 0;
}

/* Arm (or, with NO_DEADLINE, disarm) a CLOCK_MONOTONIC timer for an absolute deadline. */
static int set_deadline(timer_t t, uint64_t deadline)
{
	struct itimerspec its = { 0 };

	if (deadline != NO_DEADLINE) {
		its.it_value.tv_sec = deadline / 1000000000ULL;
		its.it_value.tv_nsec = deadline % 1000000000ULL;
	}
	return timer_settime(t, TIMER_ABSTIME, &its, NULL);
}

static void arm_timer(struct machine *m, uint64_t deadline)
{
	set_deadline(m->timer, deadline);
}

static void stop_timer(struct machine *m)
{
	timer_delete(m->timer);
	kick_run = NULL;
	signal(SIGUSR1, SIG_IGN);
}

/*
 * Console input into the UART, as much as it has room for. Only while the
 * guest listens (receive interrupts on and wired to the PIC through OUT2):
 * a driver probing or starting up reads and flushes the FIFO, and piped
 * input must not be lost to that. What arrives before the guest listens
 * waits in m->pending; the rest stays unread in the pipe. The escape byte
 * of a terminal (Ctrl-]) is never the guest's: it ends the run.
 */
static void deliver_input(struct machine *m)
{
	size_t room = UART_RX_SIZE - m->dev.uart.rx_len, n = m->pending_len;

	if (!n || !room || !uart_listening(&m->dev))
		return;
	n = n < room ? n : room;
	devices_uart_input(&m->dev, m->pending, n);
	memmove(m->pending, m->pending + n, m->pending_len - n);
	m->pending_len -= n;
}

/*
 * Wait up to timeout_ms for console input or a wake-up of the BSP's (an
 * IPI, a message of the I/O APIC), and take what input came into
 * m->pending. Only the BSP's thread calls it, without smp.lock: m->pending
 * is that thread's alone until deliver_input.
 */
static void wait_input(struct machine *m, int timeout_ms)
{
	const struct boot_io *io = m->cfg->boot_io;
	size_t space = sizeof(m->pending) - m->pending_len;
	struct pollfd pfd[2] = {
		{ .fd = m->vm->smp.cpu[0].wake_fd, .events = POLLIN },
		{ .fd = -1, .events = POLLIN },
	};
	uint64_t wakes;
	uint8_t *esc;
	ssize_t n;

	if (io && io->input_fd >= 0 && !m->input_eof && space)
		pfd[1].fd = io->input_fd;
	if (poll(pfd, 2, timeout_ms) <= 0)
		return;
	if (pfd[0].revents && read(pfd[0].fd, &wakes, sizeof(wakes)) < 0) {
		/* nothing to take: another poll took it */
	}
	if (!pfd[1].revents)
		return;
	n = read(io->input_fd, m->pending + m->pending_len, space);
	if (n <= 0) {
		m->input_eof = true;
		return;
	}
	esc = io->escape ? memchr(m->pending + m->pending_len, io->escape, (size_t)n) : NULL;
	if (esc) {
		n = esc - (m->pending + m->pending_len);
		m->user_quit = true;
	}
	m->pending_len += (size_t)n;
}

static void lock(struct machine *m)
{
	pthread_mutex_lock(&m->vm->smp.lock);
}

static void unlock(struct machine *m)
{
	pthread_mutex_unlock(&m->vm->smp.lock);
}

static int phase_begin(struct machine *m, uint64_t tsc)
{
	if (vm_phase_begin(m->vm))
		return -1;
	m->vm->begin_tsc = tsc;
	return 0;
}

static int phase_end(struct machine *m, uint64_t tsc, uint64_t ops, uint64_t checksum,
		     int harness_exits)
{
	uint64_t begin_tsc = m->vm->begin_tsc;

	if (!m->vm->in_phase) {
		set_status(m->r, "error", "the guest ended a measured phase it never began");
		return -1;
	}
	if (vm_phase_end(m->vm, harness_exits, m->r))
		return -1;
	m->r->ops = ops;
	m->r->checksum = checksum;
	m->r->guest_cycles = begin_tsc && tsc > begin_tsc ? tsc - begin_tsc : 0;
	m->r->measured = true;
	return 0;
}

static uint64_t arg64(const struct machine *m, int i)
{
	const struct vm *vm = m->vm;

	return i + 1 < vm->nargs ? vm->mark_args[i] | (uint64_t)vm->mark_args[i + 1] << 32 : 0;
}

/*
 * Marks: each argument is one outl to KL_PORT_MARK_ARG, then the mark.
 * The mark's exits (its argument writes and itself) are the harness's, so
 * they are taken out of the phase's exit counts.
 */
static int handle_mark(struct machine *m, uint32_t mark)
{
	int nargs = m->vm->nargs, rc;

	switch (mark) {
	case KL_MARK_BEGIN:
		rc = phase_begin(m, arg64(m, 0));
		break;
	case KL_MARK_END:
		rc = phase_end(m, arg64(m, 0), arg64(m, 2), arg64(m, 4), nargs + 1);
		break;
	default:
		set_status(m->r, "error", "unknown mark %u on port 0x%x", mark, KL_PORT_MARK);
		rc = -1;
	}
	m->vm->nargs = 0;
	return rc;
}

/* Under smp.lock, for any vCPU. 1: the guest asked to end; 0: go on; -1: error. */
static int handle_io(struct machine *m, struct kvm_run *run)
{
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool out = run->io.direction == KVM_EXIT_IO_OUT;
	uint32_t v = 0;

	if (out && run->io.size == 4 && run->io.count == 1 && run->io.port == KL_PORT_MARK_ARG) {
		memcpy(&v, data, 4);
		if (m->vm->nargs < (int)(sizeof(m->vm->mark_args) / sizeof(m->vm->mark_args[0])))
			m->vm->mark_args[m->vm->nargs++] = v;
		return 0;
	}
	if (out && run->io.size == 4 && run->io.count == 1 && run->io.port == KL_PORT_MARK) {
		memcpy(&v, data, 4);
		return handle_mark(m, v);
	}
	/* INS/OUTS come in batches of io.count elements, one after the other. */
	for (uint32_t i = 0; i < run->io.count && !m->dev.exit_requested; i++)
		devices_pio(&m->dev, run->io.port, out, data + i * run->io.size, run->io.size);
	return m->dev.exit_requested ? 1 : 0;
}

/* Milliseconds until deadline, at most cap. */
static int ms_until(uint64_t deadline, int cap)
{
	uint64_t now = now_ns();

	if (deadline == NO_DEADLINE)
		return cap;
	if (deadline <= now)
		return 0;
	return deadline - now >= (uint64_t)cap * 1000000 ? cap :
	       (int)((deadline - now + 999999) / 1000000);
}

/* The BSP halted (under smp.lock): sleep until a device deadline, input or an IPI, or give up. */
static int halted(struct machine *m)
{
	int timeout_ms;

	if (devices_pending_vector(&m->dev) >= 0 && m->vm->vcpu->run->if_flag)
		return 0;
	if (!m->vm->vcpu->run->if_flag) {
		set_status(m->r, "error", "the guest halted with interrupts disabled: "
			   "nothing can wake it");
		return -1;
	}
	fflush(m->dev.uart.out);	/* a prompt without a newline, before we sleep */
	timeout_ms = ms_until(devices_next_deadline(&m->dev), 100);
	unlock(m);
	wait_input(m, timeout_ms);
	lock(m);
	deliver_input(m);
	return 0;
}

static int inject(struct machine *m)
{
	struct kvm_run *run = m->vm->vcpu->run;
	int v;

	if (smp_deliver_nmi(&m->vm->smp.cpu[0]))
		return -1;
	devices_tick(&m->dev);
	v = devices_pending_vector(&m->dev);
	if (v >= 0 && run->ready_for_interrupt_injection) {
		struct kvm_interrupt irq = { .irq = (uint32_t)v };

		if (ioctl(m->vm->vcpu->fd, KVM_INTERRUPT, &irq) == 0) {
			devices_ack(&m->dev, v);
			run->ready_for_interrupt_injection = 0;
			v = devices_pending_vector(&m->dev);
		}
	}
	run->request_interrupt_window = v >= 0;
	return 0;
}

static int before_run(void *ctx)
{
	struct machine *m = ctx;
	uint64_t deadline;
	int rc;

	vm_hop(m->vm);
	if (++m->spins % 64 == 0)
		wait_input(m, 0);
	lock(m);
	if (m->dev.exit_requested) {	/* an AP wrote the exit port */
		unlock(m);
		return 1;
	}
	if (m->vm->mig)
		mig_source_before(m->vm);
	deliver_input(m);
	rc = inject(m);
	deadline = devices_next_deadline(&m->dev);
	unlock(m);
	arm_timer(m, deadline);
	return rc;
}

/* KVM_RUN returned EINTR: the one point where the vCPU may stop for a migration. */
static int interrupted(void *ctx)
{
	struct machine *m = ctx;

	return m->vm->mig ? mig_source_checkpoint(m->vm, m->r) : 0;
}

static int timed_out(void *ctx)
{
	struct machine *m = ctx;
	char state[256];

	if (m->user_quit) {
		set_status(m->r, "stopped", "ended from the console (Ctrl-])");
		return 1;
	}
	if (m->vm->smp.stop)		/* an AP failed; it said why */
		return 1;
	if (!vm_timed_out)
		return 0;
	lock(m);
	devices_describe(&m->dev, state, sizeof(state));
	unlock(m);
	set_status(m->r, "timeout", "the guest did not finish within %u s (%s; "
		   "console input: %s)", m->cfg->timeout_s, state,
		   m->input_eof ? "all read" : "not all read");
	return 1;
}

/*
 * An exit of vCPU c's other than HLT, under smp.lock: the devices, the
 * APICs, the framebuffer. 1: the guest asked to end; 0: go on; -1: error
 * (the run's status says why).
 */
static int serve_exit(struct machine *m, struct smp_cpu *c, struct kvm_run *run)
{
	switch (run->exit_reason) {
	case KVM_EXIT_IRQ_WINDOW_OPEN:
		return 0;
	case KVM_EXIT_IO:
		return handle_io(m, run);
	case KVM_EXIT_MMIO:
		if (smp_lapic_mmio(c, run) ||
		    devices_mmio(&m->dev, run->mmio.phys_addr, run->mmio.is_write,
				 run->mmio.data, run->mmio.len) ||
		    fb_mmio(&m->vm->fb, run->mmio.phys_addr, run->mmio.is_write,
			    run->mmio.data, (int)run->mmio.len))
			return 0;
		break;
	case KVM_EXIT_SHUTDOWN:
		set_status(m->r, "error", "the guest reset itself (triple fault or reboot)%s",
			   c->id ? " on an application processor" : "");
		return -1;
	}
	describe_vcpu_exit(c->v, m->r);
	return -1;
}

static int handle_exit(void *ctx, struct kvm_run *run)
{
	struct machine *m = ctx;
	int rc;

	lock(m);
	rc = run->exit_reason == KVM_EXIT_HLT ? halted(m) : serve_exit(m, &m->vm->smp.cpu[0], run);
	unlock(m);
	return rc;
}

/* ---- an application processor's loop (ctx: its struct smp_cpu) ---- */

static struct machine *machine_of(struct smp_cpu *c)
{
	return (struct machine *)((char *)c->vm->dev - offsetof(struct machine, dev));
}

/* Its APIC timer's next deadline ends its KVM_RUN: a timer that signals this thread. */
static int ap_timer(struct smp_cpu *c, uint64_t deadline)
{
	if (!c->has_timer) {
		struct sigevent sev = {
			.sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SMP_KICK_SIGNAL,
		};

		sev._sigev_un._tid = gettid();	/* glibc 2.36 names it only so */
		if (timer_create(CLOCK_MONOTONIC, &sev, &c->timer))
			return -1;
		c->has_timer = true;
	}
	return set_deadline(c->timer, deadline);
}

static int ap_before(void *ctx)
{
	struct smp_cpu *c = ctx;
	struct machine *m = machine_of(c);
	uint64_t deadline;

	if (smp_ap_reset(c))
		return 1;		/* INIT: back to waiting for SIPI */
	lock(m);
	if (m->dev.exit_requested) {
		unlock(m);
		return 1;
	}
	lapic_tick(c->apic, now_ns());
	deadline = lapic_next_deadline(c->apic);
	unlock(m);
	if (ap_timer(c, deadline)) {
		lock(m);
		smp_fail(c, "vCPU %d: its APIC timer: %s", c->id, strerror(errno));
		unlock(m);
		return -1;
	}
	return smp_before(c);
}

/*
 * HLT on an AP: sleep until its APIC has a vector it can take, an NMI or
 * INIT arrives (each writes its eventfd), or its timer's deadline. With
 * interrupts off only NMI or INIT wakes it (Linux parks CPUs that way).
 */
static int ap_halt(struct machine *m, struct smp_cpu *c)
{
	struct pollfd pfd = { .fd = c->wake_fd, .events = POLLIN };
	bool if_flag = c->v->run->if_flag;
	uint64_t wakes;
	int timeout_ms;

	lock(m);
	c->halts++;
	lapic_tick(c->apic, now_ns());
	if ((if_flag && lapic_pending_vector(c->apic) >= 0) || c->nmi || c->wait_sipi) {
		unlock(m);
		return 0;
	}
	timeout_ms = ms_until(if_flag ? lapic_next_deadline(c->apic) : NO_DEADLINE, 50);
	unlock(m);
	if (poll(&pfd, 1, timeout_ms) > 0 && read(c->wake_fd, &wakes, sizeof(wakes)) < 0) {
		/* another poll took it */
	}
	return 0;
}

static int ap_exit(void *ctx, struct kvm_run *run)
{
	struct smp_cpu *c = ctx;
	struct machine *m = machine_of(c);
	int rc;

	if (run->exit_reason == KVM_EXIT_HLT)
		return ap_halt(m, c);
	lock(m);
	rc = serve_exit(m, c, run);
	if (rc > 0)			/* the exit port: the BSP ends the run */
		smp_kick(&m->vm->smp.cpu[0]);
	else if (rc < 0)
		smp_fail(c, "vCPU %d failed", c->id);	/* its reason is set: stop the others */
	unlock(m);
	return rc;
}

static const struct kc_loop ap_loop = {
	.before = ap_before, .stop = smp_ap_stop, .exit = ap_exit, .run_failed = smp_ap_failed,
};

static void run_failed(void *ctx, int e)
{
	set_status(((struct machine *)ctx)->r, "error", "KVM_RUN: %s", strerror(e));
}

static int loop(struct machine *m)
{
	const struct kc_loop loop = {
		.before = before_run, .stop = timed_out, .exit = handle_exit,
		.interrupted = interrupted,
		.run_failed = run_failed,
	};

	return kc_run_loop(m->vm->vcpu, &loop, m);
}

/* Without a console of its own, the run keeps it and shows the end when things went wrong. */
static void show_console_tail(const char *buf, size_t len)
{
	size_t from = len > 3000 ? len - 3000 : 0;

	fprintf(stderr, "  [console, last %zu of %zu bytes]\n%.*s\n", len - from, len,
		(int)(len - from), buf + from);
}

int machine_run(struct vm *vm, const struct run_config *cfg, const struct image *img,
		struct run_result *r)
{
	struct machine *m = calloc(1, sizeof(*m));
	char *kept = NULL;
	size_t kept_len = 0;
	FILE *console = cfg->boot_io ? cfg->boot_io->console : open_memstream(&kept, &kept_len);
	int rc = -1;

	if (!m || !console) {
		free(m);
		return err("out of memory");
	}
	m->vm = vm;
	m->cfg = cfg;
	m->r = r;
	devices_init(&m->dev, console);
	vm->dev = &m->dev;
	smp_attach_devices(vm, &m->dev, &ap_loop);
	if (vm->incoming)
		mig_incoming_devices(vm->incoming, &m->dev);
	if (start_timer(m))
		goto out;
	rc = img->phase_from_start && !vm->incoming ? phase_begin(m, 0) : 0;
	if (!rc)
		rc = loop(m);
	smp_stop(vm);		/* the APs use the devices: they go first */
	/*
	 * A phase still open when the run ends closes there (kvmlab boot: the
	 * whole run), even a failed run: its counters say where it got stuck.
	 */
	if (vm->in_phase && !vm->migrated) {
		bool measured_before = r->measured;
		int end_rc = phase_end(m, 0, 0, 0, 1);

		if (rc)
			r->measured = measured_before;	/* counters, not a result */
		else
			rc = end_rc;
	}
	stop_timer(m);
	vm->dev = NULL;
	r->exit_code = m->dev.exit_requested ? m->dev.exit_value : -1;
out:
	fflush(console);
	if (!cfg->boot_io) {
		fclose(console);
		if (!vm->migrated && (rc || r->status[0] || r->exit_code || !r->measured ||
				      cfg->verbose))
			show_console_tail(kept, kept_len);
		free(kept);
	}
	free(m);
	return rc;
}
