// SPDX-License-Identifier: GPL-2.0
/*
 * kvmlab fuzz ioctl: random and boundary ioctl sequences against a KVM-ABI
 * device, from several threads sharing the same VMs. Every call must
 * return (an errno where it is invalid); the kernel log must stay clean;
 * the module must unload afterwards with its page accounting at zero.
 *
 * What it throws: VM types of every kind, memslots with unaligned, huge,
 * overlapping and kernel addresses, vCPU ids out of range, register and
 * segment state of random bytes, random CPUID tables, KVM_RUN on random
 * guest memory (so the guest executes garbage), stats reads at random
 * offsets, mmaps of odd sizes, closes in any order, and ioctl numbers and
 * pointers that mean nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <kvmlab/kvmlab.h>
#include <kvmlab/x86.h>
#include "../lib/kvmclient.h"
#include "fuzz.h"
#include "../lib/util.h"

#define POOL		8
#define GUEST_MEM	(2 << 20)

struct pool {
	pthread_mutex_t lock;
	int vm[POOL], vcpu[POOL];
	uint8_t *mem;			/* shared guest memory, random bytes */
	atomic_ulong calls, ok;
	atomic_ulong errnos[256];
	const char *device;
	unsigned long budget;		/* calls per thread */
};

static __thread uint64_t rng;
/* Per thread: a process-wide alarm could interrupt another thread's ioctl. */
static __thread timer_t run_timer;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t pick(const uint64_t *v, int n)
{
	return v[next() % n];
}

/* Values that find off-by-ones: around alignments, sizes and limits. */
static uint64_t boundary(void)
{
	static const uint64_t v[] = {
		0, 1, 0xfff, 0x1000, 0x1001, 0x200000, 0xfffff000, 0x100000000ULL,
		0xfe000000, 1ULL << 47, (1ULL << 48) - 0x1000, 1ULL << 48, 1ULL << 52,
		~0ULL, ~0xfffULL, 0x8000000000000000ULL, 0xffff888000000000ULL,
	};

	return next() & 1 ? pick(v, sizeof(v) / sizeof(v[0])) : next();
}

static void record(struct pool *p, long rc)
{
	p->calls++;
	if (rc >= 0)
		p->ok++;
	else
		p->errnos[errno & 255]++;
}

static int take(struct pool *p, int *slot)
{
	int fd;

	pthread_mutex_lock(&p->lock);
	fd = *slot;
	pthread_mutex_unlock(&p->lock);
	return fd;
}

static void put(struct pool *p, int *slot, int fd)
{
	int old;

	pthread_mutex_lock(&p->lock);
	old = *slot;
	*slot = fd;
	pthread_mutex_unlock(&p->lock);
	if (old > 2)
		close(old);
}

static volatile sig_atomic_t alarmed;
static void on_alarm(int sig)
{
	(void)sig;
	alarmed = 1;
}

static void fuzz_run(struct pool *p, int vcpu)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_run *run;
	struct itimerspec t = { .it_value = { .tv_nsec = 20000000 } };
	long rc;

	for (size_t i = 0; i < sizeof(regs) / 8; i++)
		((uint64_t *)&regs)[i] = next() & 3 ? next() : boundary();
	if (next() & 1)
		regs.rip = next() % GUEST_MEM;
	record(p, ioctl(vcpu, KVM_SET_REGS, &regs));
	if (ioctl(vcpu, KVM_GET_SREGS, &sregs) == 0) {
		if (next() & 1) {	/* plausible 64-bit state, then perturbed */
			kc_long_mode_paging(&sregs, (next() % 64) << 12);
			sregs.cr0 |= KL_CR0_MP | KL_CR0_NE | KL_CR0_WP;
			sregs.efer |= KL_EFER_NX;
			sregs.cs.l = 1;
			sregs.cs.db = 0;
		}
		for (int k = next() % 4; k > 0; k--)
			((uint8_t *)&sregs)[next() % sizeof(sregs)] ^= 1 << (next() % 8);
		record(p, ioctl(vcpu, KVM_SET_SREGS, &sregs));
	}
	run = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	timer_settime(run_timer, 0, &t, NULL);
	rc = ioctl(vcpu, KVM_RUN, 0);	/* the alarm ends a guest that loops */
	memset(&t, 0, sizeof(t));
	timer_settime(run_timer, 0, &t, NULL);
	record(p, rc);
	if (run != MAP_FAILED)
		munmap(run, 4096);
}

static void one_call(struct pool *p)
{
	int i = next() % POOL, dev, vm = take(p, &p->vm[i]), vcpu = take(p, &p->vcpu[i]);
	struct kvm_userspace_memory_region region;

	switch (next() % 16) {
	case 0: {
		static const uint64_t types[] = {
			0, 1, KVMLAB_VM_TYPE_MMU(1), KVMLAB_VM_TYPE_MMU(2), KVMLAB_VM_TYPE_MMU(3),
			KVMLAB_VM_TYPE_MMU(4), KVMLAB_VM_TYPE_MMU(5), KVMLAB_VM_TYPE_MMU(0), ~0ULL,
		};
		dev = open(p->device, O_RDWR | O_CLOEXEC);
		if (dev < 0)
			break;
		vm = ioctl(dev, KVM_CREATE_VM, pick(types, 9));
		record(p, vm);
		close(dev);
		if (vm >= 0)
			put(p, &p->vm[i], vm);
		break;
	}
	case 1: case 2: case 3:
		region = (struct kvm_userspace_memory_region) {
			.slot = next() & 1 ? next() % 4 : (uint32_t)boundary(),
			.flags = next() % 8 ? 0 : (uint32_t)next(),
			.guest_phys_addr = next() & 1 ? (next() % 8) << 20 : boundary(),
			.memory_size = next() % 4 ? (next() % 3) << 20 : boundary(),
			.userspace_addr = next() % 4 ? (uint64_t)p->mem + ((next() % 2) << 20) : boundary(),
		};
		record(p, ioctl(vm, KVM_SET_USER_MEMORY_REGION, next() % 16 ? &region : (void *)boundary()));
		break;
	case 4:
		vcpu = ioctl(vm, KVM_CREATE_VCPU, next() & 1 ? next() % 3 : boundary());
		record(p, vcpu);
		if (vcpu >= 0)
			put(p, &p->vcpu[i], vcpu);
		break;
	case 5: case 6: case 7:
		if (vcpu > 2)
			fuzz_run(p, vcpu);
		break;
	case 8: {
		uint8_t buf[4096];

		for (size_t k = 0; k < sizeof(buf); k++)
			buf[k] = next();
		record(p, ioctl(vcpu, next() & 1 ? KVM_SET_REGS : KVM_SET_SREGS, buf));
		record(p, ioctl(vcpu, next() & 1 ? KVM_GET_REGS : KVM_GET_SREGS,
				next() % 4 ? buf : (void *)boundary()));
		break;
	}
	case 9: {
		struct { struct kvm_cpuid2 h; struct kvm_cpuid_entry2 e[100]; } c;

		for (size_t k = 0; k < sizeof(c); k++)
			((uint8_t *)&c)[k] = next();
		c.h.nent = next() & 1 ? next() % 100 : (uint32_t)boundary();
		record(p, ioctl(vcpu, KVM_SET_CPUID2, &c));
		c.h.nent = next() % 120;
		dev = open(p->device, O_RDWR | O_CLOEXEC);
		record(p, ioctl(dev, KVM_GET_SUPPORTED_CPUID, &c));
		close(dev);
		break;
	}
	case 10: {
		int fd = ioctl(next() & 1 ? vm : vcpu, KVM_GET_STATS_FD, NULL);
		char buf[8192];

		record(p, fd);
		if (fd >= 0) {
			record(p, pread(fd, buf, next() % sizeof(buf), next() & 1 ? next() % 4096 : boundary()));
			close(fd);
		}
		break;
	}
	case 11: {
		size_t len = next() & 1 ? 4096 * (next() % 4) : next() % 10000;
		void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu,
			       next() & 1 ? 0 : (next() % 4) * 4096);

		record(p, m == MAP_FAILED ? -1 : 0);
		if (m != MAP_FAILED)
			munmap(m, len);
		break;
	}
	case 12:
		if (next() % 4 == 0)
			put(p, next() & 1 ? &p->vm[i] : &p->vcpu[i], -1);
		break;
	case 13:
		record(p, ioctl(next() & 1 ? vm : vcpu, _IOC(next() & 3, KVMIO, next() & 0xff, next() & 0x3fff),
				boundary()));
		break;
	case 14:
		record(p, ioctl(vm, KVM_CHECK_EXTENSION, boundary()));
		break;
	case 15:	/* new guest bytes: the next run executes something else */
		for (int k = 0; k < 64; k++)
			p->mem[next() % GUEST_MEM] = next();
		break;
	}
}

struct thread_arg {
	struct pool *pool;
	uint64_t seed;
};

static void *worker(void *arg)
{
	struct thread_arg *a = arg;

	struct sigevent ev = {
		.sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGALRM,
		._sigev_un._tid = (pid_t)syscall(SYS_gettid),
	};

	if (timer_create(CLOCK_MONOTONIC, &ev, &run_timer))
		return NULL;
	rng = a->seed * 0x9e3779b97f4a7c15ULL + 1;
	for (unsigned long n = 0; n < a->pool->budget; n++)
		one_call(a->pool);
	timer_delete(run_timer);
	return NULL;
}

int fuzz_ioctl(const char *device, uint64_t seed, unsigned long calls, int threads)
{
	struct pool p = { .device = device };
	struct sigaction sa = { .sa_handler = on_alarm };
	pthread_t tid[8];
	struct thread_arg args[8];
	unsigned long hist_total = 0;

	if (threads < 1 || threads > 8)
		return err("--threads must be 1..8");
	pthread_mutex_init(&p.lock, NULL);
	p.mem = mmap(NULL, 2 * GUEST_MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p.mem == MAP_FAILED)
		return err_errno("cannot map guest memory");
	rng = seed + 7;
	for (size_t k = 0; k < 2 * GUEST_MEM; k += 8)
		*(uint64_t *)(p.mem + k) = next();
	sigaction(SIGALRM, &sa, NULL);
	p.budget = calls / threads;
	for (int t = 0; t < threads; t++) {
		args[t] = (struct thread_arg) { &p, seed * 31 + t };
		pthread_create(&tid[t], NULL, worker, &args[t]);
	}
	for (int t = 0; t < threads; t++)
		pthread_join(tid[t], NULL);
	for (int i = 0; i < POOL; i++) {	/* close in an order the fuzz chose */
		put(&p, &p.vm[(i * 5) % POOL], -1);
		put(&p, &p.vcpu[(i * 3) % POOL], -1);
	}
	printf("fuzz ioctl: seed %llu, %lu calls (%lu succeeded)", (unsigned long long)seed,
	       (unsigned long)p.calls, (unsigned long)p.ok);
	for (int e = 1; e < 256; e++) {
		if (!p.errnos[e])
			continue;
		printf("%s%s %lu", hist_total ? ", " : "; errors: ", strerrorname_np(e) ?: "?",
		       (unsigned long)p.errnos[e]);
		hist_total += p.errnos[e];
	}
	printf("\n");
	munmap(p.mem, 2 * GUEST_MEM);
	return 0;
}
