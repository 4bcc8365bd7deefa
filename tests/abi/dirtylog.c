// SPDX-License-Identifier: GPL-2.0
/*
 * kvmlab-dirtylog DEVICE VM_TYPE VCPUS ROUNDS: dirty-page logging, checked
 * for exactness against any KVM device (kvmlab's strategies, Linux KVM).
 *
 * exact: one vCPU runs dirtylog_guest.S over an identity map of 2 MiB
 * pages, mapped twice (ALIAS_VA); each round the host picks random pages
 * of a logged slot for the guest to write, to read, and one to fill by
 * REP INSB (a write the hypervisor emulates), each through either of the
 * page's two VAs, and
 * KVM_GET_DIRTY_LOG must return exactly the written pages (the code,
 * tables and mailbox live in a slot that does not log, so nothing else is
 * written there). Then the same with KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2
 * (pages initially dirty, KVM_CLEAR_DIRTY_LOG of half the log at a time),
 * and with logging switched off and on again on the live slot.
 *
 * live: VCPUS threads keep writing a rising counter to their pages while
 * the host copies the slot to a buffer and then, round after round, copies
 * again the pages the log reports, as a pre-copy migration does. Once the
 * vCPUs are stopped, a last round makes the copy equal to guest memory:
 * a write the log missed shows up as a difference.
 *
 * Under kvmlab the exact part also checks the VM's dirty_faults counter:
 * one write fault per page the guest writes in a round, none for the
 * pages REP INSB filled (logged by the emulator, not by a fault).
 *
 * With `superset`, a page reported that was not written is counted, not a
 * failure: Linux KVM maps a page writable on a read fault and logs it
 * then, so it reports pages that were only read; kvmlab is exact.
 *
 * Prints one line per part; exit status 1 on any failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <kvmlab/x86.h>
#include "../../harness/lib/kvmclient.h"
#include "../../harness/lib/util.h"
#include "../../harness/lib/stats.h"

#define RAM_BYTES	(16ULL << 20)
#define GDT_GPA		0x1800ULL
#define PML4_GPA	0x2000ULL
#define MBOX_GPA	0x10000ULL
#define CODE_GPA	0x100000ULL
#define LOG_SLOT	1
#define LOG_GPA		(64ULL << 20)
#define LOG_PAGES	1000	/* not a multiple of 64: the last CLEAR is short */
#define INS_BYTES	16
/*
 * The guest's tables map the low 512 GiB twice: at 0 and again at this VA
 * (a second PML4 entry to the same PDPT, 2 MiB pages). A page written
 * through either VA is one gfn: a shadow MMU holds an spte for each, and
 * write-protection for the log must reach both.
 */
#define ALIAS_VA	(1ULL << 39)

extern const uint8_t dirtylog_guest_start[], dirtylog_guest_end[];

struct mbox {
	uint64_t op, count, base, stop;
	uint64_t list[LOG_PAGES];
};

static int superset;	/* extra pages reported are counted (Linux KVM), not failures */
static long extra;

struct dl {
	struct kc_vm vm;
	uint8_t *logged;		/* the logged slot's memory */
	volatile struct mbox *mbox;
	const char *part;
	int failed;
};

#define BITMAP_LONGS	((LOG_PAGES + 63) / 64)

static int fail(struct dl *d, const char *fmt, unsigned long long a, unsigned long long b)
{
	fprintf(stderr, "kvmlab-dirtylog: %s: ", d->part);
	fprintf(stderr, fmt, a, b);
	fputc('\n', stderr);
	d->failed = 1;
	return -1;
}

static int setup_vcpu(struct dl *d, struct kc_vcpu *v, int nvcpus)
{
	struct kvm_regs regs = {
		.rip = CODE_GPA, .rflags = 2, .rdi = MBOX_GPA, .rsi = v->id, .rdx = nvcpus,
	};

	return kc_start_long_mode(&d->vm, v, GDT_GPA, PML4_GPA, &regs);
}

/* A VM with its code slot and the logged slot; manual: the flags for MANUAL_DIRTY_LOG_PROTECT2. */
static int setup(struct dl *d, const char *device, unsigned long type, int nvcpus,
		 uint64_t manual)
{
	int sys_fd = kc_open(device);
	struct kvm_enable_cap cap = {
		.cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, .args = { manual },
	};

	if (sys_fd < 0 || kc_create_vm(&d->vm, sys_fd, type) ||
	    kc_add_ram(&d->vm, 0, 0, RAM_BYTES))
		return -1;
	if (manual && ioctl(d->vm.fd, KVM_ENABLE_CAP, &cap))
		return -1;
	d->logged = mmap(NULL, LOG_PAGES * 4096ULL, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (d->logged == MAP_FAILED ||
	    kc_set_memslot(d->vm.fd, LOG_SLOT, KVM_MEM_LOG_DIRTY_PAGES, LOG_GPA,
			   LOG_PAGES * 4096ULL, d->logged))
		return -1;
	memcpy(d->vm.mem + CODE_GPA, dirtylog_guest_start,
	       dirtylog_guest_end - dirtylog_guest_start);
	kc_write_identity_map(d->vm.mem, PML4_GPA, 1ULL << 30);
	((uint64_t *)(d->vm.mem + PML4_GPA))[ALIAS_VA >> 39] = ((uint64_t *)(d->vm.mem + PML4_GPA))[0];
	d->mbox = (volatile struct mbox *)(d->vm.mem + MBOX_GPA);
	for (int i = 0; i < nvcpus; i++) {
		struct kc_vcpu *v = kc_create_vcpu(&d->vm, i);

		if (!v || setup_vcpu(d, v, nvcpus))
			return -1;
	}
	return 0;
}

static void teardown(struct dl *d)
{
	kc_vm_close(&d->vm);
	close(d->vm.sys_fd);
	munmap(d->logged, LOG_PAGES * 4096ULL);
}

/* The VM's counter `name` (kvmlab's binary stats), or -1 when it has none. */
static long long vm_stat(struct dl *d, const char *name)
{
	int vm_sfd, vcpu_sfd;
	struct stats st;
	uint64_t v[256];
	long long r = -1;

	if (kc_stats_fds(&d->vm, &d->vm.vcpus[0], &vm_sfd, &vcpu_sfd) || vm_sfd < 0)
		return -1;
	if (vcpu_sfd >= 0)
		close(vcpu_sfd);
	if (stats_open(&st, vm_sfd) == 0 && st.count <= 256 && stats_read(&st, v) == 0)
		for (int i = 0; i < st.count; i++)
			if (!strcmp(st.desc[i].name, name))
				r = (long long)v[i];
	stats_close(&st);
	return r;
}

/* ---- exact: one vCPU, op by op ---- */

/* Run vCPU 0 through one op; REP INSB reads bytes 1, 2, 3, ... */
static int run_op(struct dl *d, uint64_t op, const uint64_t *pages, uint64_t n)
{
	struct kc_vcpu *v = &d->vm.vcpus[0];
	struct kvm_run *run = v->run;

	d->mbox->op = op;
	d->mbox->count = n;
	for (uint64_t i = 0; i < (op == 3 ? 1 : n); i++)
		d->mbox->list[i] = LOG_GPA + pages[i] * 4096 + (rand() & 1 ? ALIAS_VA : 0);
	for (;;) {
		if (ioctl(v->fd, KVM_RUN, 0)) {
			if (errno == EINTR)
				continue;
			return fail(d, "KVM_RUN: errno %llu%.0llu", errno, 0);
		}
		if (run->exit_reason != KVM_EXIT_IO)
			return fail(d, "exit %llu at op %llu", run->exit_reason, op);
		if (run->io.port == 0x10)
			return 0;
		if (run->io.port != 0x20 || run->io.direction != KVM_EXIT_IO_IN)
			return fail(d, "port 0x%llx at op %llu", run->io.port, op);
		for (uint32_t i = 0; i < run->io.count; i++)
			((uint8_t *)run + run->io.data_offset)[i] = (uint8_t)(i + 1);
	}
}

/* n random pages; each added to want, and counted in *distinct if not there yet. */
static void pick(uint64_t *pages, int n, uint64_t *want, long *distinct)
{
	for (int i = 0; i < n; i++) {
		uint64_t p = (uint64_t)rand() % LOG_PAGES, bit = 1ULL << (p % 64);

		pages[i] = p;
		if (distinct && !(want[p / 64] & bit))
			++*distinct;
		if (want)
			want[p / 64] |= bit;
	}
}

static int compare(struct dl *d, int round, const uint64_t *got, const uint64_t *want)
{
	for (int i = 0; i < BITMAP_LONGS; i++) {
		uint64_t diff = got[i] ^ want[i];
		int bit = diff ? __builtin_ctzll(diff) : 0;

		if (superset && !(diff & ~got[i])) {
			extra += __builtin_popcountll(diff);
			continue;
		}
		if (diff && (got[i] >> bit & 1))
			return fail(d, "round %llu: page %llu reported, not written", round,
				    i * 64 + bit);
		if (diff)
			return fail(d, "round %llu: page %llu written, not reported", round,
				    i * 64 + bit);
	}
	return 0;
}

/*
 * A round: the guest writes some pages, reads others, INSes into one. want
 * collects what must be reported; returns 0 or -1.
 */
static int guest_round(struct dl *d, uint64_t *want, long *faults)
{
	uint64_t w[64], r[64], ins;
	int nw = 1 + rand() % 64, nr = rand() % 64;

	pick(w, nw, want, faults);	/* each page the guest writes: one dirty fault */
	pick(r, nr, NULL, NULL);
	pick(&ins, 1, want, NULL);
	if (run_op(d, 1, w, nw) || run_op(d, 2, r, nr) || run_op(d, 3, &ins, INS_BYTES))
		return -1;
	if (d->logged[ins * 4096 + INS_BYTES - 1] != INS_BYTES)
		return fail(d, "REP INSB left %llu in page %llu",
			    d->logged[ins * 4096 + INS_BYTES - 1], ins);
	return 0;
}

static int exact(const char *device, unsigned long type, int rounds)
{
	struct dl d = { .part = "exact" };
	uint64_t got[BITMAP_LONGS], want[BITMAP_LONGS];
	long faults = 0;
	long long faults0, faults1;
	int reported = 0;

	if (setup(&d, device, type, 1, 0))
		return fail(&d, "setup: errno %llu%.0llu", errno, 0);
	faults0 = vm_stat(&d, "dirty_faults");
	/* A first GET: nothing written yet. */
	memset(want, 0, sizeof(want));
	for (int round = 0; round <= rounds && !d.failed; round++) {
		if (kc_get_dirty_log(d.vm.fd, LOG_SLOT, got))
			return fail(&d, "KVM_GET_DIRTY_LOG: errno %llu%.0llu", errno, 0);
		if (compare(&d, round, got, want))
			break;
		for (int i = 0; i < BITMAP_LONGS; i++)
			reported += __builtin_popcountll(got[i]);
		memset(want, 0, sizeof(want));
		if (round < rounds && guest_round(&d, want, &faults))
			break;
	}
	faults1 = vm_stat(&d, "dirty_faults");
	if (!d.failed && faults0 >= 0 && faults1 - faults0 != faults)
		fail(&d, "dirty_faults %llu, pages written %llu", faults1 - faults0, faults);
	/* Logging off: writes go unseen; on again: a new log, from then on. */
	if (!d.failed) {
		uint64_t p[8];

		memset(want, 0, sizeof(want));
		if (kc_set_memslot(d.vm.fd, LOG_SLOT, 0, LOG_GPA, LOG_PAGES * 4096ULL, d.logged))
			return fail(&d, "logging off: errno %llu%.0llu", errno, 0);
		if (kc_get_dirty_log(d.vm.fd, LOG_SLOT, got) == 0 || errno != ENOENT)
			fail(&d, "GET_DIRTY_LOG without logging: %llu, errno %llu", 0, errno);
		pick(p, 8, NULL, NULL);
		if (!d.failed && !run_op(&d, 1, p, 8) &&
		    !kc_set_memslot(d.vm.fd, LOG_SLOT, KVM_MEM_LOG_DIRTY_PAGES, LOG_GPA,
				    LOG_PAGES * 4096ULL, d.logged) &&
		    !guest_round(&d, want, NULL) && !kc_get_dirty_log(d.vm.fd, LOG_SLOT, got))
			compare(&d, rounds + 1, got, want);
		else if (!d.failed)
			fail(&d, "logging off and on: errno %llu%.0llu", errno, 0);
	}
	teardown(&d);
	if (!d.failed)
		printf("exact: %d rounds, %d pages reported, %ld of them not written; "
		       "dirty_faults %lld for %ld pages written\n", rounds, reported, extra,
		       faults0 >= 0 ? faults1 - faults0 : -1, faults);
	return d.failed ? -1 : 0;
}

/*
 * Manual protection, pages initially dirty: GET leaves the log alone,
 * CLEAR of some 64-page chunks write-protects those pages only.
 */
static int manual(const char *device, unsigned long type, int rounds)
{
	struct dl d = { .part = "manual" };
	uint64_t got[BITMAP_LONGS], want[BITMAP_LONGS], mask[BITMAP_LONGS];

	if (setup(&d, device, type, 1, KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE |
		  KVM_DIRTY_LOG_INITIALLY_SET))
		return fail(&d, "setup: errno %llu%.0llu", errno, 0);
	memset(want, 0xff, sizeof(want));
	want[BITMAP_LONGS - 1] = (1ULL << (LOG_PAGES % 64)) - 1;
	for (int round = 0; round <= rounds && !d.failed; round++) {
		if (kc_get_dirty_log(d.vm.fd, LOG_SLOT, got) || compare(&d, round, got, want))
			break;
		memcpy(want, got, sizeof(want));	/* with superset, its extra pages too */
		/* GET again: the same, nothing cleared by reading. */
		if (kc_get_dirty_log(d.vm.fd, LOG_SLOT, got) || compare(&d, round, got, want))
			break;
		/* Clear the odd chunks (the last, short one among them when odd). */
		memset(mask, 0, sizeof(mask));
		for (int c = 1; c < BITMAP_LONGS; c += 2) {
			uint32_t n = c == BITMAP_LONGS - 1 ? LOG_PAGES - c * 64 : 64;

			mask[c] = got[c];
			if (kc_clear_dirty_log(d.vm.fd, LOG_SLOT, c * 64, n, &mask[c]))
				return fail(&d, "KVM_CLEAR_DIRTY_LOG: errno %llu at chunk %llu",
					    errno, c);
			want[c] = 0;
		}
		if (round < rounds && guest_round(&d, want, NULL))
			break;
	}
	/* KVM's alignment rules. */
	if (!d.failed && (kc_clear_dirty_log(d.vm.fd, LOG_SLOT, 32, 64, mask) == 0 ||
			  errno != EINVAL || kc_clear_dirty_log(d.vm.fd, LOG_SLOT, 0, 40, mask) == 0 ||
			  errno != EINVAL || kc_clear_dirty_log(d.vm.fd, LOG_SLOT, 960, 64, mask) == 0 ||
			  errno != EINVAL))
		fail(&d, "misaligned KVM_CLEAR_DIRTY_LOG accepted (errno %llu)%.0llu", errno, 0);
	teardown(&d);
	if (!d.failed)
		printf("manual: %d rounds, half the log cleared each round, %ld pages reported "
		       "not written\n", rounds, extra);
	return d.failed ? -1 : 0;
}

/* ---- live: vCPUs write while the log is collected ---- */

struct live_vcpu {
	struct dl *d;
	struct kc_vcpu *v;
	pthread_t thread;
	int rc;
};

static void *live_vcpu_main(void *arg)
{
	struct live_vcpu *t = arg;

	pin_to_nth_allowed_cpu(t->v->id);
	for (;;) {
		if (ioctl(t->v->fd, KVM_RUN, 0)) {
			if (errno == EINTR)
				continue;
			t->rc = -errno;
			return NULL;
		}
		t->rc = t->v->run->exit_reason == KVM_EXIT_IO && t->v->run->io.port == 0x11 ?
			0 : 1000 + (int)t->v->run->exit_reason;
		return NULL;
	}
}

static int copy_dirty(struct dl *d, uint8_t *copy, long *pages)
{
	uint64_t got[BITMAP_LONGS];

	if (kc_get_dirty_log(d->vm.fd, LOG_SLOT, got))
		return fail(d, "KVM_GET_DIRTY_LOG: errno %llu%.0llu", errno, 0);
	*pages = 0;
	for (int p = 0; p < LOG_PAGES; p++) {
		if (got[p / 64] >> (p % 64) & 1) {
			memcpy(copy + p * 4096, d->logged + p * 4096, 4096);
			++*pages;
		}
	}
	return 0;
}

static int live(const char *device, unsigned long type, int nvcpus, int rounds)
{
	struct dl d = { .part = "live" };
	struct live_vcpu t[KC_MAX_VCPUS];
	uint8_t *copy = malloc(LOG_PAGES * 4096ULL);
	long pages, total = 0, last = 0;

	if (!copy || setup(&d, device, type, nvcpus, 0))
		return fail(&d, "setup: errno %llu%.0llu", errno, 0);
	d.mbox->op = 4;
	d.mbox->count = LOG_PAGES;
	d.mbox->base = LOG_GPA;
	memcpy(copy, d.logged, LOG_PAGES * 4096ULL);
	for (int i = 0; i < nvcpus; i++) {
		t[i] = (struct live_vcpu) { .d = &d, .v = &d.vm.vcpus[i] };
		pthread_create(&t[i].thread, NULL, live_vcpu_main, &t[i]);
	}
	for (int r = 0; r < rounds && !d.failed; r++) {
		usleep(2000);
		if (copy_dirty(&d, copy, &pages) == 0)
			total += pages;
	}
	d.mbox->stop = 1;
	for (int i = 0; i < nvcpus; i++) {
		pthread_join(t[i].thread, NULL);
		if (t[i].rc)
			fail(&d, "vCPU %llu ended with %lld", i, (long long)t[i].rc);
	}
	if (!d.failed && copy_dirty(&d, copy, &last) == 0) {
		for (int p = 0; p < LOG_PAGES; p++)
			if (memcmp(copy + p * 4096, d.logged + p * 4096, 4096)) {
				fail(&d, "page %llu was written and never reported (%llu pages)",
				     p, LOG_PAGES);
				break;
			}
	}
	teardown(&d);
	free(copy);
	if (!d.failed)
		printf("live: %d vCPUs, %d rounds, %ld pages copied again, %ld in the last round: "
		       "the copy equals guest memory\n", nvcpus, rounds, total, last);
	return d.failed ? -1 : 0;
}

int main(int argc, char **argv)
{
	unsigned long type;
	int nvcpus, rounds, bad = 0;

	if (argc == 6 && !strcmp(argv[5], "superset"))
		superset = 1;
	else if (argc != 5) {
		fprintf(stderr, "usage: kvmlab-dirtylog DEVICE VM_TYPE VCPUS ROUNDS [superset]\n");
		return 2;
	}
	type = strtoul(argv[2], NULL, 0);
	nvcpus = atoi(argv[3]);
	rounds = atoi(argv[4]);
	if (nvcpus < 1 || nvcpus > KC_MAX_VCPUS || rounds < 1) {
		fprintf(stderr, "kvmlab-dirtylog: VCPUS 1..%d, ROUNDS at least 1\n", KC_MAX_VCPUS);
		return 2;
	}
	srand(1);
	bad |= exact(argv[1], type, rounds);
	extra = 0;
	bad |= manual(argv[1], type, rounds);
	bad |= live(argv[1], type, nvcpus, rounds);
	return bad ? 1 : 0;
}
