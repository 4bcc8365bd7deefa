// SPDX-License-Identifier: GPL-2.0
/*
 * Live migration, both ends (migrate.h). The stream's records are in
 * stream.h; the vCPU's state is KVM's own structures, so any device that
 * speaks the ABI can send or receive it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include "../devices/devices.h"
#include "../lib/util.h"
#include "../run/vm_priv.h"
#include "migrate.h"
#include "stream.h"

#define MIG_MAGIC	"KVMLAB-MIGRATE"
#define MIG_VERSION	1
#define PAGE		4096ULL
#define BATCH		64		/* pages per PAGES record */
#define ZERO_FLAG	1ULL		/* in a PAGES entry: the page is all zeroes */
#define MAX_MSRS	256
/* The rate assumed before a round has measured one (QEMU's default cap). */
#define DEFAULT_RATE	(128ULL << 20)

struct mig_vcpu {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xsave xsave;
	struct kvm_fpu fpu;
	struct kvm_xcrs xcrs;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp_state;
	struct kvm_debugregs debugregs;
	uint32_t has_xsave, has_xcrs, has_debugregs, nmsrs;
	struct kvm_msr_entry msrs[MAX_MSRS];
};

/* The run's own state: the phase, the ports' state, what the guest reported so far. */
struct mig_runstate {
	uint64_t pause_ns;
	uint64_t t0, begin_tsc;
	uint32_t in_phase, nargs, mark_args[8], echo, console_len;
	char console[256];
	uint8_t scratch[KL_MMIO_SCRATCH_SIZE];
	struct run_result partial;	/* checks so far; counters: the phase's deltas */
};

struct mig_round {
	uint32_t round, last;
	uint64_t pages, bytes;
};

struct mig_ack {
	int32_t ok;
	uint32_t pad;
	uint64_t resume_ns;
	char error[256];
};

#define STRUCT_SIZES ((uint32_t)(sizeof(struct mig_vcpu) ^ sizeof(struct mig_runstate) << 8 ^ \
				 sizeof(struct devices) << 16 ^ sizeof(struct run_result)))

/* ---- vCPU state, through KVM's ioctls ---- */

static int save_msrs(struct vm *vm, struct mig_vcpu *v)
{
	struct kvm_msr_list *list = calloc(1, sizeof(*list) + MAX_MSRS * sizeof(uint32_t));
	struct { struct kvm_msrs h; struct kvm_msr_entry e[MAX_MSRS]; } *m = calloc(1, sizeof(*m));
	uint32_t i = 0;
	int rc = -1;

	if (!list || !m)
		goto out;
	list->nmsrs = MAX_MSRS;
	if (ioctl(vm->kc.sys_fd, KVM_GET_MSR_INDEX_LIST, list))
		goto out;
	/* KVM_GET_MSRS stops at the first MSR it cannot read: skip that one. */
	while (i < list->nmsrs) {
		int n;

		m->h.nmsrs = list->nmsrs - i;
		for (uint32_t k = 0; k < m->h.nmsrs; k++)
			m->e[k] = (struct kvm_msr_entry) { .index = list->indices[i + k] };
		n = ioctl(vm->vcpu->fd, KVM_GET_MSRS, m);
		if (n < 0)
			goto out;
		for (int k = 0; k < n && v->nmsrs < MAX_MSRS; k++)
			v->msrs[v->nmsrs++] = m->e[k];
		i += (uint32_t)n + 1;
	}
	rc = 0;
out:
	free(list);
	free(m);
	return rc;
}

static int save_vcpu(struct vm *vm, struct mig_vcpu *v, char *why, size_t size)
{
	int fd = vm->vcpu->fd, sys = vm->kc.sys_fd;

	memset(v, 0, sizeof(*v));
	v->has_xsave = ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) > 0;
	v->has_xcrs = ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0;
	v->has_debugregs = ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_DEBUGREGS) > 0;
	if (ioctl(fd, KVM_GET_REGS, &v->regs) || ioctl(fd, KVM_GET_SREGS, &v->sregs) ||
	    ioctl(fd, KVM_GET_FPU, &v->fpu) ||
	    (v->has_xsave && ioctl(fd, KVM_GET_XSAVE, &v->xsave)) ||
	    (v->has_xcrs && ioctl(fd, KVM_GET_XCRS, &v->xcrs)) ||
	    ioctl(fd, KVM_GET_VCPU_EVENTS, &v->events) ||
	    ioctl(fd, KVM_GET_MP_STATE, &v->mp_state) ||
	    (v->has_debugregs && ioctl(fd, KVM_GET_DEBUGREGS, &v->debugregs)) ||
	    save_msrs(vm, v)) {
		snprintf(why, size, "cannot read the vCPU's state: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* The MSR at `index` of the destination's vCPU, or -1 when it cannot be read. */
static int read_msr(int fd, uint32_t index, uint64_t *val)
{
	struct { struct kvm_msrs h; struct kvm_msr_entry e; } one = {
		.h.nmsrs = 1, .e.index = index,
	};

	if (ioctl(fd, KVM_GET_MSRS, &one) != 1)
		return -1;
	*val = one.e.data;
	return 0;
}

/*
 * KVM_SET_MSRS stops at the first MSR it refuses. Linux KVM refuses some
 * paravirtual MSRs whose feature the guest's CPUID lacks, even at the value
 * they already have: a refused MSR that already holds the source's value
 * has nothing to carry and is passed over; any other refusal fails.
 */
static int restore_msrs(int fd, const struct mig_vcpu *v, char *why, size_t size)
{
	struct { struct kvm_msrs h; struct kvm_msr_entry e[MAX_MSRS]; } *m = calloc(1, sizeof(*m));
	uint32_t i = 0;
	int rc = 0;

	if (!m)
		return snprintf(why, size, "out of memory"), -1;
	while (i < v->nmsrs && !rc) {
		uint64_t now;
		int n;

		m->h.nmsrs = v->nmsrs - i;
		memcpy(m->e, v->msrs + i, m->h.nmsrs * sizeof(m->e[0]));
		n = ioctl(fd, KVM_SET_MSRS, m);
		if (n < 0 || (uint32_t)n > m->h.nmsrs) {
			snprintf(why, size, "KVM_SET_MSRS: %s", strerror(errno));
			rc = -1;
		} else if ((i += (uint32_t)n) < v->nmsrs &&
			   (read_msr(fd, v->msrs[i].index, &now) || now != v->msrs[i].data)) {
			snprintf(why, size, "the destination refused MSR 0x%x = 0x%llx",
				 v->msrs[i].index, (unsigned long long)v->msrs[i].data);
			rc = -1;
		} else {
			i++;
		}
	}
	free(m);
	return rc;
}

/* What the source had, in the order QEMU restores it (MSRs after the modes they need). */
static int restore_vcpu(struct vm *vm, const struct mig_vcpu *v, char *why, size_t size)
{
	int fd = vm->vcpu->fd, sys = vm->kc.sys_fd;
	const char *what = NULL;

	if (v->nmsrs > MAX_MSRS)
		return snprintf(why, size, "the vCPU record holds %u MSRs", v->nmsrs), -1;
	if (ioctl(fd, KVM_SET_SREGS, &v->sregs))
		what = "KVM_SET_SREGS";
	else if (ioctl(fd, KVM_SET_REGS, &v->regs))
		what = "KVM_SET_REGS";
	else if (v->has_xsave && ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) > 0 ?
		 ioctl(fd, KVM_SET_XSAVE, &v->xsave) : ioctl(fd, KVM_SET_FPU, &v->fpu))
		what = "KVM_SET_XSAVE/KVM_SET_FPU";
	else if (v->has_xcrs && ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0 &&
		 ioctl(fd, KVM_SET_XCRS, &v->xcrs))
		what = "KVM_SET_XCRS";
	if (what)
		return snprintf(why, size, "%s refused the source's state: %s", what,
				strerror(errno)), -1;
	if (restore_msrs(fd, v, why, size))
		return -1;
	if (ioctl(fd, KVM_SET_VCPU_EVENTS, &v->events))
		what = "KVM_SET_VCPU_EVENTS";
	else if (ioctl(fd, KVM_SET_MP_STATE, &v->mp_state))
		what = "KVM_SET_MP_STATE";
	else if (v->has_debugregs && ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_DEBUGREGS) > 0 &&
		 ioctl(fd, KVM_SET_DEBUGREGS, &v->debugregs))
		what = "KVM_SET_DEBUGREGS";
	if (what)
		return snprintf(why, size, "%s refused the source's state: %s", what,
				strerror(errno)), -1;
	return 0;
}

/* ---- source ---- */

enum { VERDICT_NONE, VERDICT_MIGRATED, VERDICT_RESUME };

struct mig_source {
	struct vm *vm;
	struct mig_source_cfg cfg;
	struct mig_report *rep;
	struct mig_stream st;
	pthread_t thread, vcpu_thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int pause_req;		/* the thread asks the vCPU to stop */
	bool paused;		/* the vCPU waits, its state saved */
	int verdict;
	char pause_error[256];
	volatile int guest_ended;
	uint64_t pause_ns;
	struct mig_vcpu vstate;
	struct mig_runstate rstate;
	struct devices dstate;
	bool has_dev;
	uint64_t npages, *dirty, *sendmap;
	uint8_t *batch;
	uint64_t batch_gpa[BATCH];
	int batch_n, batch_data;
};

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ULL), (long)(ns % 1000000000ULL) };

	nanosleep(&ts, NULL);
}

static void on_mig_kick(int sig)
{
	(void)sig;	/* its only job: make KVM_RUN return EINTR */
}

static bool page_is_zero(const uint8_t *p)
{
	const uint64_t *q = (const uint64_t *)p;

	for (size_t i = 0; i < PAGE / 8; i++)
		if (q[i])
			return false;
	return true;
}

static int flush_batch(struct mig_source *s)
{
	uint32_t n = (uint32_t)s->batch_n;
	uint8_t head[4 + BATCH * 8];
	int rc;

	if (!n)
		return 0;
	memcpy(head, &n, 4);
	memcpy(head + 4, s->batch_gpa, n * 8);
	rc = mig_put(&s->st, MIG_PAGES, head, 4 + n * 8, s->batch, (size_t)s->batch_data * PAGE);
	s->batch_n = s->batch_data = 0;
	return rc;
}

/* Queue one page (copied now: what the guest writes later goes in a later round). */
static int send_page(struct mig_source *s, uint64_t gfn)
{
	const uint8_t *p = s->vm->kc.mem + gfn * PAGE;

	if (page_is_zero(p)) {
		s->batch_gpa[s->batch_n++] = gfn * PAGE | ZERO_FLAG;
		s->rep->zero_pages++;
	} else {
		s->batch_gpa[s->batch_n++] = gfn * PAGE;
		memcpy(s->batch + (size_t)s->batch_data++ * PAGE, p, PAGE);
	}
	return s->batch_n == BATCH ? flush_batch(s) : 0;
}

/* Every page whose bit is set in map (NULL: every page); the count sent. */
static int send_round(struct mig_source *s, const uint64_t *map, unsigned int round, bool last,
		      uint64_t *count)
{
	struct mig_round rr = { .round = round, .last = last };
	uint64_t before = s->st.bytes;

	*count = 0;
	for (uint64_t gfn = 0; gfn < s->npages; gfn++) {
		if (map && !(map[gfn / 64] >> (gfn % 64) & 1))
			continue;
		if (s->guest_ended && !last)
			return -1;
		if (send_page(s, gfn))
			return -1;
		++*count;
	}
	if (flush_batch(s))
		return -1;
	rr.pages = *count;
	rr.bytes = s->st.bytes - before;
	return mig_put(&s->st, MIG_ROUND, &rr, sizeof(rr), NULL, 0);
}

static int set_logging(struct mig_source *s, bool on)
{
	struct vm *vm = s->vm;

	return kc_set_memslot(vm->kc.fd, 0, on ? KVM_MEM_LOG_DIRTY_PAGES : 0, vm->kc.ram_gpa,
			      vm->kc.mem_bytes, vm->kc.mem);
}

/* The dirty log since the last read, ORed into s->dirty; the number of pages set. */
static int read_dirty(struct mig_source *s, uint64_t *count)
{
	size_t words = (s->npages + 63) / 64;

	memset(s->sendmap, 0, words * 8);
	if (kc_get_dirty_log(s->vm->kc.fd, 0, s->sendmap))
		return -1;
	*count = 0;
	for (size_t i = 0; i < words; i++) {
		s->dirty[i] |= s->sendmap[i];
		*count += (uint64_t)__builtin_popcountll(s->dirty[i]);
	}
	return 0;
}

static void fail(struct mig_source *s, const char *status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail(struct mig_source *s, const char *status, const char *fmt, ...)
{
	va_list ap;

	if (s->rep->status[0])
		return;
	snprintf(s->rep->status, sizeof(s->rep->status), "%s", status);
	va_start(ap, fmt);
	vsnprintf(s->rep->detail, sizeof(s->rep->detail), fmt, ap);
	va_end(ap);
}

/* Ask the vCPU to stop at its next instruction boundary; false if the guest ended first. */
static bool pause_vcpu(struct mig_source *s)
{
	pthread_mutex_lock(&s->lock);
	__atomic_store_n(&s->pause_req, 1, __ATOMIC_RELEASE);
	while (!s->paused && !s->guest_ended) {
		struct timespec ts;

		s->vm->vcpu->run->immediate_exit = 1;
		pthread_kill(s->vcpu_thread, SIGUSR2);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&s->cond, &s->lock, &ts);
	}
	pthread_mutex_unlock(&s->lock);
	return s->paused;
}

static void give_verdict(struct mig_source *s, int verdict)
{
	pthread_mutex_lock(&s->lock);
	__atomic_store_n(&s->pause_req, 0, __ATOMIC_RELEASE);
	s->verdict = verdict;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

/* Pre-copy rounds until the rest fits in the downtime; 0 then (logging on), -1 when not. */
static int precopy(struct mig_source *s)
{
	const struct mig_policy *p = &s->cfg.policy;
	uint64_t rate = p->bandwidth ? p->bandwidth : DEFAULT_RATE, count, t0;
	size_t words = (s->npages + 63) / 64;

	for (unsigned int round = 0;; round++) {
		uint64_t est, sent_before = s->st.bytes;

		if (round) {
			if (read_dirty(s, &count))
				return fail(s, "error", "KVM_GET_DIRTY_LOG: %s", strerror(errno)), -1;
			est = count * PAGE * 1000000000ULL / rate;
			s->rep->dirty_est_ns = est;
			if (est <= p->max_downtime_ns)
				return 0;
			if (round > p->max_rounds) {
				fail(s, "not-converged", "after %u rounds %llu pages were still dirty: "
				     "%.0f ms at %.1f MB/s, over the %.0f ms allowed",
				     round - 1, (unsigned long long)count, est / 1e6,
				     rate / 1e6, p->max_downtime_ns / 1e6);
				return -1;
			}
		}
		t0 = now_ns();
		mig_throttle_reset(&s->st);
		if (send_round(s, round ? s->dirty : NULL, round, false, &count)) {
			if (s->guest_ended)
				fail(s, "guest-ended", "the workload ended on the source during round %u",
				     round);
			else
				fail(s, "dest-failed", "during round %u: %s", round, s->st.error);
			return -1;
		}
		if (round)
			memset(s->dirty, 0, words * 8);
		if (round < MIG_MAX_ROUNDS)
			s->rep->round_pages[round] = count;
		s->rep->rounds = round + 1;
		/* The rate this link really sustains, once a round has sent enough to tell. */
		if (s->st.bytes - sent_before >= (1u << 20)) {
			uint64_t ns = now_ns() - t0, measured;

			measured = ns ? (s->st.bytes - sent_before) * 1000000000ULL / ns : rate;
			rate = p->bandwidth && p->bandwidth < measured ? p->bandwidth : measured;
		}
		s->rep->rate_bps = rate;
	}
}

static int wait_ack(struct mig_source *s)
{
	struct mig_stream in;
	uint32_t type, len;
	void *payload;
	struct mig_ack ack;

	mig_stream_init(&in, s->cfg.fd);
	if (mig_get(&in, &type, &payload, &len, false))
		return fail(s, "dest-failed", "no acknowledgement: %s", in.error), -1;
	if (type != MIG_ACK || len != sizeof(ack))
		return fail(s, "dest-failed", "expected an acknowledgement, got %s",
			    mig_rec_name(type)), -1;
	memcpy(&ack, payload, sizeof(ack));
	ack.error[sizeof(ack.error) - 1] = 0;
	if (!ack.ok)
		return fail(s, "dest-failed", "the destination refused the state: %s", ack.error), -1;
	s->rep->downtime_ns = ack.resume_ns > s->pause_ns ? ack.resume_ns - s->pause_ns : 0;
	return 0;
}

/* Stop-and-copy: the vCPU is paused; the last dirty pages and the state. */
static int stop_and_copy(struct mig_source *s, unsigned int round)
{
	uint64_t count;
	struct kvm_clock_data clock = { 0 };
	bool have_clock = ioctl(s->vm->kc.fd, KVM_GET_CLOCK, &clock) == 0;

	if (s->pause_error[0])
		return fail(s, "error", "%s", s->pause_error), -1;
	if (read_dirty(s, &count))
		return fail(s, "error", "KVM_GET_DIRTY_LOG: %s", strerror(errno)), -1;
	mig_throttle_reset(&s->st);
	if (send_round(s, s->dirty, round, true, &count) ||
	    mig_put(&s->st, MIG_VCPU, &s->vstate, sizeof(s->vstate), NULL, 0) ||
	    (have_clock && mig_put(&s->st, MIG_CLOCK, &clock, sizeof(clock), NULL, 0)) ||
	    (s->has_dev && mig_put(&s->st, MIG_DEVICES, &s->dstate, sizeof(s->dstate), NULL, 0)) ||
	    mig_put(&s->st, MIG_RUNSTATE, &s->rstate, sizeof(s->rstate), NULL, 0) ||
	    mig_put(&s->st, MIG_END, NULL, 0, NULL, 0))
		return fail(s, "dest-failed", "during stop-and-copy: %s", s->st.error), -1;
	s->rep->stop_copy_ns = now_ns() - s->pause_ns;
	s->rep->round_pages[round < MIG_MAX_ROUNDS ? round : MIG_MAX_ROUNDS] = count;
	return wait_ack(s);
}

static void *source_thread(void *arg)
{
	struct mig_source *s = arg;
	struct mig_hello h = { .magic = MIG_MAGIC, .version = MIG_VERSION,
			       .struct_sizes = STRUCT_SIZES };
	uint64_t t_start, start;
	bool paused = false;
	int verdict = VERDICT_RESUME;

	/* Mid-run: the measured phase has begun, and then --after has passed. */
	while (!s->guest_ended && !__atomic_load_n(&s->vm->in_phase, __ATOMIC_ACQUIRE))
		sleep_ns(2000000);
	start = now_ns() + s->cfg.policy.start_after_ns;
	while (!s->guest_ended && now_ns() < start)
		sleep_ns(2000000);
	if (s->guest_ended) {
		fail(s, "guest-ended", "the workload ended before the migration was to start");
		return NULL;
	}
	t_start = now_ns();
	snprintf(h.workload, sizeof(h.workload), "%s", s->cfg.workload);
	snprintf(h.params, sizeof(h.params), "%s", s->cfg.params ? s->cfg.params : "");
	snprintf(h.src_hv, sizeof(h.src_hv), "%s", s->cfg.src_hv ? s->cfg.src_hv : "");
	h.mem_bytes = s->vm->kc.mem_bytes;
	if (mig_put(&s->st, MIG_HELLO, &h, sizeof(h), NULL, 0)) {
		fail(s, "dest-failed", "%s", s->st.error);
		goto out;
	}
	if (set_logging(s, true)) {
		fail(s, "error", "cannot turn dirty logging on: %s", strerror(errno));
		goto out;
	}
	if (precopy(s))
		goto stop_logging;
	paused = pause_vcpu(s);
	if (!paused) {
		fail(s, "guest-ended", "the workload ended on the source before it could be stopped");
		goto stop_logging;
	}
	if (!stop_and_copy(s, s->rep->rounds)) {
		verdict = VERDICT_MIGRATED;
		snprintf(s->rep->status, sizeof(s->rep->status), "migrated");
	}
stop_logging:
	if (verdict != VERDICT_MIGRATED)
		set_logging(s, false);
out:
	s->rep->bytes = s->st.bytes;
	s->rep->total_ns = now_ns() - t_start;
	if (paused)
		give_verdict(s, verdict);
	return NULL;
}

int mig_source_start(struct vm *vm, const struct mig_source_cfg *cfg)
{
	struct mig_source *s = calloc(1, sizeof(*s));
	struct sigaction sa = { .sa_handler = on_mig_kick };
	size_t words = (vm->kc.mem_bytes / PAGE + 63) / 64;

	if (!s)
		return err("out of memory");
	s->vm = vm;
	s->cfg = *cfg;
	s->rep = cfg->report;
	memset(s->rep, 0, sizeof(*s->rep));
	s->npages = vm->kc.mem_bytes / PAGE;
	s->dirty = calloc(words, 8);
	s->sendmap = calloc(words, 8);
	s->batch = malloc(BATCH * PAGE);
	if (!s->dirty || !s->sendmap || !s->batch)
		return err("out of memory");
	mig_stream_init(&s->st, cfg->fd);
	s->st.copy_fd = cfg->copy_fd;
	s->st.bandwidth = cfg->policy.bandwidth;
	s->st.abort = &s->guest_ended;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->vcpu_thread = pthread_self();
	sigaction(SIGUSR2, &sa, NULL);	/* no SA_RESTART: it must end KVM_RUN */
	if (start_helper_thread(&s->thread, source_thread, s))
		return err_errno("cannot start the migration thread");
	vm->mig = s;
	return 0;
}

/* On the vCPU thread, the vCPU stopped with every exit complete: hand over if asked. */
int mig_source_checkpoint(struct vm *vm, struct run_result *r)
{
	struct mig_source *s = vm->mig;
	struct mig_runstate *rs = &s->rstate;
	int verdict;

	if (!__atomic_load_n(&s->pause_req, __ATOMIC_ACQUIRE))
		return 0;
	s->pause_error[0] = 0;
	memset(rs, 0, sizeof(*rs));
	save_vcpu(vm, &s->vstate, s->pause_error, sizeof(s->pause_error));
	rs->partial = *r;
	if (vm->in_phase && vm_phase_partial(vm, &rs->partial))
		snprintf(s->pause_error, sizeof(s->pause_error), "cannot read the statistics");
	rs->t0 = vm->t0;
	rs->begin_tsc = vm->begin_tsc;
	rs->in_phase = vm->in_phase;
	rs->nargs = (uint32_t)vm->nargs;
	memcpy(rs->mark_args, vm->mark_args, sizeof(rs->mark_args));
	rs->echo = vm->echo;
	rs->console_len = (uint32_t)vm->console_len;
	memcpy(rs->console, vm->console, sizeof(rs->console));
	memcpy(rs->scratch, vm->scratch, sizeof(rs->scratch));
	s->has_dev = vm->dev != NULL;
	if (vm->dev) {
		s->dstate = *vm->dev;
		s->dstate.uart.out = NULL;
	}
	pthread_mutex_lock(&s->lock);
	s->pause_ns = rs->pause_ns = now_ns();
	s->paused = true;
	pthread_cond_broadcast(&s->cond);
	while (s->verdict == VERDICT_NONE)
		pthread_cond_wait(&s->cond, &s->lock);
	verdict = s->verdict;
	s->verdict = VERDICT_NONE;
	s->paused = false;
	pthread_mutex_unlock(&s->lock);
	if (verdict != VERDICT_MIGRATED)
		return 0;	/* the guest goes on here */
	vm->migrated = true;
	set_status(r, "migrated", "the guest went on at the destination");
	return 1;
}

/* Keeps the vCPU from entering the guest once a pause is asked for. */
int mig_source_before(struct vm *vm)
{
	if (__atomic_load_n(&vm->mig->pause_req, __ATOMIC_ACQUIRE))
		vm->vcpu->run->immediate_exit = 1;
	return 0;
}

void mig_source_finish(struct vm *vm)
{
	struct mig_source *s = vm->mig;

	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->guest_ended = 1;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	if (!s->rep->status[0])
		fail(s, "error", "the migration stopped without a verdict");
	free(s->dirty);
	free(s->sendmap);
	free(s->batch);
	free(s);
	vm->mig = NULL;
}

int mig_source_result(int fd, struct run_result *r)
{
	struct mig_stream in;
	uint32_t type, len;
	void *payload;

	mig_stream_init(&in, fd);
	if (mig_get(&in, &type, &payload, &len, false))
		return err("no result from the destination: %s", in.error);
	if (type != MIG_RESULT || len != sizeof(*r))
		return err("expected the destination's result, got %s", mig_rec_name(type));
	memcpy(r, payload, sizeof(*r));
	r->status[sizeof(r->status) - 1] = 0;
	r->detail[sizeof(r->detail) - 1] = 0;
	if (r->ncounters < 0 || r->ncounters > MAX_COUNTERS || r->nchecks < 0 ||
	    r->nchecks > MAX_CHECKS)
		return err("the destination's result is malformed");
	return 0;
}

/* ---- destination ---- */

struct mig_incoming {
	struct mig_stream st;
	bool live;		/* a socket to the source, not a file */
	struct mig_hello hello;
	struct mig_vcpu vcpu;
	struct mig_runstate rs;
	struct devices dev;
	struct kvm_clock_data clock;
	bool has_vcpu, has_rs, has_dev, has_clock;
	uint64_t *nonzero;	/* pages that hold data: a later zero page must clear them */
};

struct mig_incoming *mig_incoming_open(int fd, bool live)
{
	struct mig_incoming *in = calloc(1, sizeof(*in));
	uint32_t type, len;
	void *payload;

	if (!in) {
		err("out of memory");
		return NULL;
	}
	mig_stream_init(&in->st, fd);
	in->live = live;
	if (mig_get(&in->st, &type, &payload, &len, false)) {
		err("migration stream: %s", in->st.error);
		goto bad;
	}
	if (type != MIG_HELLO || len != sizeof(in->hello)) {
		err("migration stream: it does not start with a kvmlab HELLO record");
		goto bad;
	}
	memcpy(&in->hello, payload, sizeof(in->hello));
	if (memcmp(in->hello.magic, MIG_MAGIC, sizeof(MIG_MAGIC)) ||
	    in->hello.version != MIG_VERSION || in->hello.struct_sizes != STRUCT_SIZES) {
		err("migration stream: format %u of another kvmlab build (this one reads %u)",
		    in->hello.version, MIG_VERSION);
		goto bad;
	}
	in->hello.workload[sizeof(in->hello.workload) - 1] = 0;
	in->hello.params[sizeof(in->hello.params) - 1] = 0;
	in->hello.src_hv[sizeof(in->hello.src_hv) - 1] = 0;
	if (!in->hello.mem_bytes || in->hello.mem_bytes % PAGE || in->hello.mem_bytes > (64ULL << 30)) {
		err("migration stream: a guest of %llu bytes", (unsigned long long)in->hello.mem_bytes);
		goto bad;
	}
	in->nonzero = calloc((in->hello.mem_bytes / PAGE + 63) / 64, 8);
	if (!in->nonzero) {
		err("out of memory");
		goto bad;
	}
	return in;
bad:
	free(in);
	return NULL;
}

const struct mig_hello *mig_incoming_hello(const struct mig_incoming *in)
{
	return &in->hello;
}

static int apply_pages(struct mig_incoming *in, struct vm *vm, const uint8_t *p, uint32_t len)
{
	uint32_t n, data = 0;
	const uint8_t *pages;

	if (len < 4)
		return err("migration stream: a PAGES record of %u bytes", len);
	memcpy(&n, p, 4);
	if (n > BATCH || len < 4 + n * 8)
		return err("migration stream: a PAGES record of %u pages in %u bytes", n, len);
	pages = p + 4 + n * 8;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t e, gpa, gfn;

		memcpy(&e, p + 4 + i * 8, 8);
		gpa = e & ~(PAGE - 1);
		gfn = gpa / PAGE;
		if ((e & (PAGE - 1) & ~ZERO_FLAG) || gpa >= vm->kc.mem_bytes)
			return err("migration stream: page entry 0x%llx lies outside the guest's %llu MiB",
				   (unsigned long long)e, (unsigned long long)vm->kc.mem_bytes >> 20);
		if (e & ZERO_FLAG) {
			if (in->nonzero[gfn / 64] >> (gfn % 64) & 1)
				memset(vm->kc.mem + gpa, 0, PAGE);
			in->nonzero[gfn / 64] &= ~(1ULL << (gfn % 64));
			continue;
		}
		if (len < 4 + n * 8 + (uint64_t)(data + 1) * PAGE)
			return err("migration stream: a PAGES record shorter than its pages");
		memcpy(vm->kc.mem + gpa, pages + (size_t)data++ * PAGE, PAGE);
		in->nonzero[gfn / 64] |= 1ULL << (gfn % 64);
	}
	if (len != 4 + n * 8 + (uint64_t)data * PAGE)
		return err("migration stream: a PAGES record longer than its pages");
	return 0;
}

/* A device record can be no more than what our devices could have been in. */
static int check_devices(const struct devices *d)
{
	if (d->uart.rx_head >= UART_RX_SIZE || d->uart.rx_len > UART_RX_SIZE)
		return -1;
	for (int i = 0; i < 2; i++)
		if (d->pic[i].init_step > 4)
			return -1;
	for (int i = 0; i < 3; i++)
		if (d->pit.ch[i].mode > 5 || d->pit.ch[i].rw > 3)
			return -1;
	return 0;
}

static int check_runstate(struct mig_runstate *rs)
{
	struct run_result *p = &rs->partial;

	if (rs->nargs > 8 || rs->console_len >= sizeof(rs->console) || p->ncounters < 0 ||
	    p->ncounters > MAX_COUNTERS || p->nchecks < 0 || p->nchecks > MAX_CHECKS)
		return -1;
	p->status[sizeof(p->status) - 1] = 0;
	p->detail[sizeof(p->detail) - 1] = 0;
	for (int i = 0; i < p->nchecks; i++) {
		p->checks[i].name[sizeof(p->checks[i].name) - 1] = 0;
		p->checks[i].detail[sizeof(p->checks[i].detail) - 1] = 0;
	}
	for (int i = 0; i < p->ncounters; i++)
		p->counter_names[i][63] = 0;
	return 0;
}

/* A state record of exactly its structure's size; false for any other size. */
static bool take(void *dst, size_t size, const void *p, uint32_t len, bool *have)
{
	if (len != size)
		return false;
	memcpy(dst, p, size);
	*have = true;
	return true;
}

/* One record of the stream; 1 at END. */
static int receive_one(struct mig_incoming *in, struct vm *vm)
{
	uint32_t type, len;
	void *p;

	if (mig_get(&in->st, &type, &p, &len, false))
		return err("migration stream: %s", in->st.error);
	switch (type) {
	case MIG_PAGES:
		return apply_pages(in, vm, p, len);
	case MIG_ROUND: {
		struct mig_round rr;

		if (len != sizeof(rr))
			break;
		memcpy(&rr, p, sizeof(rr));
		fprintf(stderr, "incoming: %s %u: %llu pages, %.1f MB so far\n",
			rr.last ? "stop-and-copy after round" : "round", rr.round,
			(unsigned long long)rr.pages, in->st.bytes / 1e6);
		return 0;
	}
	case MIG_VCPU:
		if (!take(&in->vcpu, sizeof(in->vcpu), p, len, &in->has_vcpu))
			break;
		return 0;
	case MIG_CLOCK:
		if (!take(&in->clock, sizeof(in->clock), p, len, &in->has_clock))
			break;
		return 0;
	case MIG_DEVICES:
		if (!take(&in->dev, sizeof(in->dev), p, len, &in->has_dev))
			break;
		if (check_devices(&in->dev))
			return err("migration stream: the device record holds impossible state");
		return 0;
	case MIG_RUNSTATE:
		if (!take(&in->rs, sizeof(in->rs), p, len, &in->has_rs))
			break;
		if (check_runstate(&in->rs))
			return err("migration stream: the run-state record holds impossible state");
		return 0;
	case MIG_END:
		if (!in->has_vcpu || !in->has_rs)
			return err("migration stream: it ended without the vCPU's state");
		return 1;
	}
	return err("migration stream: unexpected %s record (%u bytes)", mig_rec_name(type), len);
}

static void send_ack(struct mig_incoming *in, bool ok, const char *why)
{
	struct mig_ack ack = { .ok = ok, .resume_ns = now_ns() };

	if (!in->live || in->st.eof)	/* no one is listening any more */
		return;
	snprintf(ack.error, sizeof(ack.error), "%s", why ? why : "");
	in->st.copy_fd = -1;
	if (mig_put(&in->st, MIG_ACK, &ack, sizeof(ack), NULL, 0))
		err("cannot acknowledge to the source: %s", in->st.error);
}

int mig_incoming_receive(struct mig_incoming *in, struct vm *vm, struct run_result *r)
{
	char why[256];
	int rc;

	while ((rc = receive_one(in, vm)) == 0)
		;
	if (rc < 0) {
		send_ack(in, false, "the stream was bad (see the destination's messages)");
		return -1;
	}
	if (in->has_clock) {
		struct kvm_clock_data c = { .clock = in->clock.clock };

		if (ioctl(vm->kc.fd, KVM_SET_CLOCK, &c)) {
			snprintf(why, sizeof(why), "KVM_SET_CLOCK: %s", strerror(errno));
			goto refuse;
		}
	}
	if (restore_vcpu(vm, &in->vcpu, why, sizeof(why)))
		goto refuse;
	*r = in->rs.partial;
	vm->in_phase = false;
	if (in->rs.in_phase) {
		if (vm_phase_begin(vm)) {
			snprintf(why, sizeof(why), "cannot read the statistics");
			goto refuse;
		}
		vm->t0 = in->rs.t0;
		vm->carried = &in->rs.partial;
	}
	vm->begin_tsc = in->rs.begin_tsc;
	vm->nargs = (int)in->rs.nargs;
	memcpy(vm->mark_args, in->rs.mark_args, sizeof(vm->mark_args));
	vm->echo = in->rs.echo;
	vm->console_len = in->rs.console_len;
	memcpy(vm->console, in->rs.console, sizeof(vm->console));
	memcpy(vm->scratch, in->rs.scratch, sizeof(vm->scratch));
	vm->incoming = in;
	return 0;
refuse:
	err("cannot restore the guest: %s", why);
	send_ack(in, false, why);
	return -1;
}

void mig_incoming_devices(const struct mig_incoming *in, struct devices *d)
{
	/* The guest saw no time pass while it was stopped: shift the timers by the pause. */
	uint64_t shift = now_ns() - in->rs.pause_ns;
	FILE *out = d->uart.out;

	if (!in->has_dev)
		return;
	*d = in->dev;
	d->uart.out = out;
	for (int i = 0; i < 3; i++)
		if (d->pit.ch[i].start_ns)
			d->pit.ch[i].start_ns += shift;
	if (d->lapic.timer_start_ns)
		d->lapic.timer_start_ns += shift;
}

int mig_incoming_ack(struct mig_incoming *in)
{
	uint64_t pause = in->rs.pause_ns;

	send_ack(in, true, NULL);
	fprintf(stderr, "incoming: the guest resumes here, %.1f ms after it stopped at the source\n",
		(now_ns() - pause) / 1e6);
	return 0;
}

void mig_incoming_close(struct mig_incoming *in, const struct run_result *r)
{
	if (in->live && mig_put(&in->st, MIG_RESULT, r, sizeof(*r), NULL, 0))
		err("cannot send the result to the source: %s", in->st.error);
	free(in->nonzero);
	free(in);
}
