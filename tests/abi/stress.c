// SPDX-License-Identifier: GPL-2.0
/*
 * kvmlab-stress DEVICE VM_TYPE VCPUS ROUNDS: several vCPU threads of one VM,
 * spread over the host's CPUs, fault, flush and take MMIO exits while
 * another thread keeps changing a memslot under them — the locking test of
 * the MMU layer (kmod/README.md, "Locking").
 *
 * Each vCPU runs stress_guest.S in 64-bit mode over an identity map of
 * guest memory: every round it writes and reads back each page of its own
 * area, drops each translation with INVLPG, reloads CR3, and reads one word
 * of a window whose memslot the host thread maps (buffer A), deletes,
 * maps again (buffer B), moves away and deletes, round after round. What
 * the guest reads there must be A's word, B's word, or (no memslot) the
 * word this program answers MMIO reads with.
 *
 * Prints one line; exit status 1 on any failure. The test machine's kernel
 * log check and kvmlab's unload ("page accounting back to zero") judge the
 * rest.
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

#define RAM_BYTES	(64ULL << 20)
#define GDT_GPA		0x1800ULL
#define PML4_GPA	0x2000ULL
#define CODE_GPA	0x100000ULL
#define AREA_GPA(i)	((4ULL << 20) + (uint64_t)(i) * (1ULL << 20))
#define AREA_PAGES	32
#define WINDOW_GPA	(256ULL << 20)
#define WINDOW_BYTES	(2ULL << 20)
#define WORD_A		0xa1a1a1a1a1a1a1a1ULL
#define WORD_B		0xb2b2b2b2b2b2b2b2ULL
#define WORD_MMIO	0x5a5a5a5a5a5a5a5aULL

extern const uint8_t stress_guest_start[], stress_guest_end[];

struct stress {
	struct kc_vm vm;
	uint8_t *buf_a, *buf_b;
	uint64_t rounds;
	atomic_int running;		/* vCPU threads not finished */
	atomic_long memslot_changes, mmio_reads, rounds_seen;
	atomic_int failed;
};

struct vcpu_thread {
	struct stress *s;
	struct kc_vcpu *v;
	pthread_t thread;
	char why[256];
};

static int fail(struct vcpu_thread *t, const char *fmt, unsigned long long a)
{
	snprintf(t->why, sizeof(t->why), fmt, a);
	atomic_store(&t->s->failed, 1);
	return -1;
}

static int on_exit_(void *ctx, struct kvm_run *run)
{
	struct vcpu_thread *t = ctx;
	uint32_t val;

	if (run->exit_reason == KVM_EXIT_MMIO && !run->mmio.is_write &&
	    run->mmio.phys_addr == WINDOW_GPA) {
		uint64_t w = WORD_MMIO;

		memcpy(run->mmio.data, &w, run->mmio.len);
		atomic_fetch_add(&t->s->mmio_reads, 1);
		return 0;
	}
	if (run->exit_reason != KVM_EXIT_IO || run->io.direction != KVM_EXIT_IO_OUT) {
		/* Where the guest was tells which of its instructions went wrong. */
		struct kvm_regs regs = { 0 };

		ioctl(t->v->fd, KVM_GET_REGS, &regs);
		snprintf(t->why, sizeof(t->why), "unexpected exit %u at rip 0x%llx (rbx 0x%llx, "
			 "rsi 0x%llx, rcx %llu, r9 %llu; internal %u: 0x%llx 0x%llx)", run->exit_reason,
			 regs.rip, regs.rbx, regs.rsi, regs.rcx, regs.r9,
			 run->exit_reason == KVM_EXIT_INTERNAL_ERROR ? run->internal.suberror : 0,
			 run->internal.ndata ? run->internal.data[0] : 0ULL,
			 run->internal.ndata > 1 ? run->internal.data[1] : 0ULL);
		atomic_store(&t->s->failed, 1);
		return -1;
	}
	memcpy(&val, (uint8_t *)run + run->io.data_offset, 4);
	switch (run->io.port) {
	case 0x10:
		atomic_fetch_add(&t->s->rounds_seen, 1);
		if (val != (uint32_t)WORD_A && val != (uint32_t)WORD_B && val != (uint32_t)WORD_MMIO)
			return fail(t, "the window read 0x%llx", val);
		return atomic_load(&t->s->failed) ? -1 : 0;
	case 0x11:
		return 1;
	case 0x12:
		return fail(t, "a page did not read back what the guest wrote (round %llu)",
			    val);
	}
	return fail(t, "unexpected port 0x%llx", run->io.port);
}

static void *vcpu_main(void *arg)
{
	struct vcpu_thread *t = arg;
	const struct kc_loop loop = { .exit = on_exit_ };

	pin_to_nth_allowed_cpu(t->v->id);
	if (kc_run_loop(t->v, &loop, t) && !t->why[0])
		fail(t, "KVM_RUN failed: errno %llu", errno);
	atomic_fetch_sub(&t->s->running, 1);
	return NULL;
}

/* Map A, delete, map B, move B away, delete: each change under running vCPUs. */
static void *memslot_main(void *arg)
{
	struct stress *s = arg;
	int fd = s->vm.fd;

	for (unsigned long n = 0; atomic_load(&s->running) > 0; n++) {
		int rc;

		switch (n % 5) {
		case 0: rc = kc_set_memslot(fd, 1, 0, WINDOW_GPA, WINDOW_BYTES, s->buf_a); break;
		case 2: rc = kc_set_memslot(fd, 1, 0, WINDOW_GPA, WINDOW_BYTES, s->buf_b); break;
		case 3: rc = kc_set_memslot(fd, 1, 0, WINDOW_GPA + WINDOW_BYTES, WINDOW_BYTES,
					    s->buf_b); break;
		default:
			rc = kc_set_memslot(fd, 1, 0, WINDOW_GPA + (n % 5 == 4 ? WINDOW_BYTES : 0),
					    0, n % 5 == 4 ? s->buf_b : s->buf_a);
		}
		if (rc) {
			fprintf(stderr, "kvmlab-stress: memslot change %lu: %s\n", n, strerror(errno));
			atomic_store(&s->failed, 1);
			break;
		}
		atomic_fetch_add(&s->memslot_changes, 1);
		usleep(200);
	}
	return NULL;
}

static uint8_t *filled(uint64_t word)
{
	uint64_t *p = mmap(NULL, WINDOW_BYTES, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	for (size_t i = 0; i < WINDOW_BYTES / 8; i++)
		p[i] = word;
	return (uint8_t *)p;
}

static int setup_vcpu(struct stress *s, struct kc_vcpu *v)
{
	struct kvm_regs regs = {
		.rip = CODE_GPA, .rflags = 2, .rdi = AREA_GPA(v->id), .rsi = WINDOW_GPA,
		.rdx = s->rounds, .rcx = AREA_PAGES,
	};

	return kc_start_long_mode(&s->vm, v, GDT_GPA, PML4_GPA, &regs);
}

static int setup(struct stress *s, const char *device, unsigned long type, int nvcpus)
{
	int sys_fd = kc_open(device);

	if (sys_fd < 0 || kc_create_vm(&s->vm, sys_fd, type) ||
	    kc_add_ram(&s->vm, 0, 0, RAM_BYTES))
		return -1;
	memcpy(s->vm.mem + CODE_GPA, stress_guest_start, stress_guest_end - stress_guest_start);
	kc_write_identity_map(s->vm.mem, PML4_GPA, 1ULL << 30);
	s->buf_a = filled(WORD_A);
	s->buf_b = filled(WORD_B);
	if (!s->buf_a || !s->buf_b)
		return -1;
	for (int i = 0; i < nvcpus; i++) {
		struct kc_vcpu *v = kc_create_vcpu(&s->vm, i);

		if (!v || setup_vcpu(s, v))
			return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct stress s;
	struct vcpu_thread threads[KC_MAX_VCPUS] = { 0 };
	pthread_t slots;
	unsigned long type;
	int nvcpus;

	if (argc != 5) {
		fprintf(stderr, "usage: kvmlab-stress DEVICE VM_TYPE VCPUS ROUNDS\n");
		return 2;
	}
	type = strtoul(argv[2], NULL, 0);
	nvcpus = atoi(argv[3]);
	s.rounds = strtoull(argv[4], NULL, 0);
	if (nvcpus < 1 || nvcpus > KC_MAX_VCPUS || s.rounds < 1) {
		fprintf(stderr, "kvmlab-stress: VCPUS 1..%d, ROUNDS at least 1\n", KC_MAX_VCPUS);
		return 2;
	}
	if (setup(&s, argv[1], type, nvcpus)) {
		fprintf(stderr, "kvmlab-stress: setup on %s (type %#lx): %s\n", argv[1], type,
			strerror(errno));
		return 1;
	}
	atomic_store(&s.running, nvcpus);
	for (int i = 0; i < nvcpus; i++) {
		threads[i] = (struct vcpu_thread) { .s = &s, .v = &s.vm.vcpus[i] };
		pthread_create(&threads[i].thread, NULL, vcpu_main, &threads[i]);
	}
	pthread_create(&slots, NULL, memslot_main, &s);
	for (int i = 0; i < nvcpus; i++) {
		pthread_join(threads[i].thread, NULL);
		if (threads[i].why[0])
			fprintf(stderr, "kvmlab-stress: vCPU %d: %s\n", i, threads[i].why);
	}
	pthread_join(slots, NULL);
	kc_vm_close(&s.vm);
	close(s.vm.sys_fd);
	printf("stress: type %#lx, %d vCPUs x %llu rounds (%ld seen), %ld memslot changes, "
	       "%ld window reads without a memslot: %s\n", type, nvcpus,
	       (unsigned long long)s.rounds, atomic_load(&s.rounds_seen),
	       atomic_load(&s.memslot_changes), atomic_load(&s.mmio_reads),
	       atomic_load(&s.failed) ? "FAILED" : "ok");
	return atomic_load(&s.failed) ? 1 : 0;
}
