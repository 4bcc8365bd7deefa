// SPDX-License-Identifier: GPL-2.0
/*
 * kvmlab-lifecycle DEVICE CYCLES [VM_TYPE]: create and destroy VMs over and
 * over, closing their pieces in every order.
 *
 * Each cycle creates a VM with a memslot, one or two vCPUs and their
 * mmap'd kvm_run, runs each vCPU once (a real-mode HLT: an exit under
 * nested paging, an internal error under the shadow MMUs, which model
 * 64-bit paging only; both are clean returns), then releases the four
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

#define MEM_SIZE	(2UL << 20)
#define MAX_VCPUS	2

struct vm_pieces {
	int vm_fd;
	int vcpu_fd[MAX_VCPUS];
	struct kvm_run *run[MAX_VCPUS];
	size_t run_size;
	uint8_t *mem;
	int nr_vcpus;
};

static int fail(const char *what, int cycle)
{
	fprintf(stderr, "kvmlab-lifecycle: cycle %d: %s: %s\n", cycle, what, strerror(errno));
	return -1;
}

static int build(int dev, unsigned long type, int cycle, int nr_vcpus, struct vm_pieces *p)
{
	struct kvm_userspace_memory_region slot = { .slot = 0, .memory_size = MEM_SIZE };
	struct kvm_sregs sregs;

	p->nr_vcpus = nr_vcpus;
	p->vm_fd = ioctl(dev, KVM_CREATE_VM, type);
	if (p->vm_fd < 0)
		return fail("KVM_CREATE_VM", cycle);
	p->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p->mem == MAP_FAILED)
		return fail("mmap guest memory", cycle);
	p->mem[0xfff0] = 0xf4;				/* HLT at the reset vector's offset */
	slot.userspace_addr = (uintptr_t)p->mem;
	if (ioctl(p->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot))
		return fail("KVM_SET_USER_MEMORY_REGION", cycle);
	p->run_size = (size_t)ioctl(dev, KVM_GET_VCPU_MMAP_SIZE, 0);
	for (int i = 0; i < nr_vcpus; i++) {
		p->vcpu_fd[i] = ioctl(p->vm_fd, KVM_CREATE_VCPU, i);
		if (p->vcpu_fd[i] < 0)
			return fail("KVM_CREATE_VCPU", cycle);
		p->run[i] = mmap(NULL, p->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
				 p->vcpu_fd[i], 0);
		if (p->run[i] == MAP_FAILED)
			return fail("mmap kvm_run", cycle);
		/* Real mode, CS base 0: the HLT at 0xfff0. */
		if (ioctl(p->vcpu_fd[i], KVM_GET_SREGS, &sregs))
			return fail("KVM_GET_SREGS", cycle);
		sregs.cs.base = 0;
		sregs.cs.selector = 0;
		if (ioctl(p->vcpu_fd[i], KVM_SET_SREGS, &sregs))
			return fail("KVM_SET_SREGS", cycle);
	}
	return 0;
}

static int run_once(struct vm_pieces *p, int cycle)
{
	for (int i = 0; i < p->nr_vcpus; i++) {
		if (ioctl(p->vcpu_fd[i], KVM_RUN, 0) && errno != EINTR)
			return fail("KVM_RUN", cycle);
		if (p->run[i]->exit_reason != KVM_EXIT_HLT &&
		    p->run[i]->exit_reason != KVM_EXIT_INTERNAL_ERROR) {
			errno = 0;
			fprintf(stderr, "kvmlab-lifecycle: cycle %d: unexpected exit %u\n", cycle,
				p->run[i]->exit_reason);
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
			close(p->vcpu_fd[i]);
		if (which == 1)
			munmap(p->run[i], p->run_size);
	}
	if (which == 2)
		close(p->vm_fd);
	if (which == 3)
		munmap(p->mem, MEM_SIZE);
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
	/* The cached strategy (type ...03) allows one vCPU per VM. */
	int max_vcpus = (type & 0xffff) == 3 ? 1 : MAX_VCPUS;

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
