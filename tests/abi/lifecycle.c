// SPDX-License-Identifier: GPL-2.0
/*
 * kvmlab-lifecycle DEVICE CYCLES [VM_TYPE]: create and destroy VMs over and
 * over, closing their pieces in every order.
 *
 * Each cycle creates a VM with a memslot, one or two vCPUs and their
 * mmap'd kvm_run, runs each vCPU once (a real-mode HLT: an exit under
 * every strategy, paged real mode for the shadow MMUs; an internal error
 * would be a clean return too), then releases the four
 * resources (vCPU fds, run mappings, VM fd, guest memory) in the cycle's
 * permutation of the 24 possible orders. Every 7th cycle closes without
 * running. Prints one line; exit status 1 on any unexpected failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include "../../harness/lib/kvmclient.h"

#define MEM_SIZE	(2UL << 20)
#define MAX_VCPUS	2

/* The pieces the library made; released here one kind at a time, in a chosen order. */
struct vm_pieces {
	struct kc_vm kc;
	int nr_vcpus;
};

static int fail(const char *what, int cycle)
{
	fprintf(stderr, "kvmlab-lifecycle: cycle %d: %s: %s\n", cycle, what, strerror(errno));
	return -1;
}

static int build(int dev, unsigned long type, int cycle, int nr_vcpus, struct vm_pieces *p)
{
	struct kvm_sregs sregs;

	p->nr_vcpus = 0;
	if (kc_create_vm(&p->kc, dev, type))
		return fail("KVM_CREATE_VM", cycle);
	if (kc_add_ram(&p->kc, 0, 0, MEM_SIZE))
		return fail("guest memory and its memslot", cycle);
	p->kc.mem[0xfff0] = 0xf4;			/* HLT at the reset vector's offset */
	for (int i = 0; i < nr_vcpus; i++) {
		struct kc_vcpu *v = kc_create_vcpu(&p->kc, i);

		if (!v)
			return fail("KVM_CREATE_VCPU and its kvm_run", cycle);
		p->nr_vcpus++;
		/* Real mode, CS base 0: the HLT at 0xfff0. */
		if (ioctl(v->fd, KVM_GET_SREGS, &sregs))
			return fail("KVM_GET_SREGS", cycle);
		sregs.cs.base = 0;
		sregs.cs.selector = 0;
		if (ioctl(v->fd, KVM_SET_SREGS, &sregs))
			return fail("KVM_SET_SREGS", cycle);
	}
	return 0;
}

static int run_once(struct vm_pieces *p, int cycle)
{
	for (int i = 0; i < p->nr_vcpus; i++) {
		struct kc_vcpu *v = &p->kc.vcpus[i];

		if (ioctl(v->fd, KVM_RUN, 0) && errno != EINTR)
			return fail("KVM_RUN", cycle);
		if (v->run->exit_reason != KVM_EXIT_HLT &&
		    v->run->exit_reason != KVM_EXIT_INTERNAL_ERROR) {
			errno = 0;
			fprintf(stderr, "kvmlab-lifecycle: cycle %d: unexpected exit %u\n", cycle,
				v->run->exit_reason);
			return -1;
		}
	}
	return 0;
}

/* Release piece `which` (0 vCPU fds, 1 run mappings, 2 VM fd, 3 memory). */
static void release(struct vm_pieces *p, int which)
{
	for (int i = 0; i < p->nr_vcpus; i++) {
		if (which == 0)
			close(p->kc.vcpus[i].fd);
		if (which == 1)
			munmap(p->kc.vcpus[i].run, p->kc.vcpus[i].run_size);
	}
	if (which == 2)
		close(p->kc.fd);
	if (which == 3)
		munmap(p->kc.mem, p->kc.mem_bytes);
}

/* The k-th of the 24 orders of four pieces (Lehmer code). */
static void order(int k, int out[4])
{
	int left[4] = { 0, 1, 2, 3 }, n = 4;

	for (int i = 0; i < 4; i++) {
		int f = i == 0 ? 6 : i == 1 ? 2 : 1, pick = (k / f) % n;

		k %= f;
		out[i] = left[pick];
		memmove(&left[pick], &left[pick + 1], (size_t)(n - pick - 1) * sizeof(int));
		n--;
	}
}

int main(int argc, char **argv)
{
	unsigned long type = argc == 4 ? strtoul(argv[3], NULL, 0) : 0;
	int cycles = argc >= 3 ? atoi(argv[2]) : 0, dev, ran = 0;
	int max_vcpus = MAX_VCPUS;

	if (argc < 3 || argc > 4 || cycles <= 0) {
		fprintf(stderr, "usage: kvmlab-lifecycle DEVICE CYCLES [VM_TYPE]\n");
		return 2;
	}
	dev = open(argv[1], O_RDWR | O_CLOEXEC);
	if (dev < 0) {
		perror(argv[1]);
		return 1;
	}
	for (int c = 0; c < cycles; c++) {
		struct vm_pieces p = { 0 };
		int ord[4];

		if (build(dev, type, c, 1 + c % max_vcpus, &p))
			return 1;
		if (c % 7 && run_once(&p, c))
			return 1;
		ran += c % 7 != 0;
		order(c % 24, ord);
		for (int i = 0; i < 4; i++)
			release(&p, ord[i]);
	}
	close(dev);
	printf("lifecycle: %d VMs created and destroyed (%d ran), every close order, type %#lx\n",
	       cycles, ran, type);
	return 0;
}
