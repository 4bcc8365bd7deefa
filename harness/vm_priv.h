/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Inside a run: the VM as vm.c sets it up, shared with the boot-guest side
 * (boot.c loads kernels into it, machine.c runs it with devices).
 */
#ifndef KVMLAB_VM_PRIV_H
#define KVMLAB_VM_PRIV_H

#include <linux/kvm.h>
#include <signal.h>
#include <kvmlab/guest_abi.h>
#include "pmu.h"
#include "stats.h"
#include "vm.h"

struct vm {
	int sys_fd, vm_fd, vcpu_fd;
	uint8_t *mem;
	uint64_t mem_bytes;
	struct kvm_run *run;
	size_t run_size;
	struct stats vm_stats, vcpu_stats;
	uint64_t *snap;		/* vm stats then vcpu stats */
	char console[256];
	size_t console_len;
	uint8_t scratch[KL_MMIO_SCRATCH_SIZE];	/* the scratch MMIO device */
	uint32_t echo;				/* the echo port */
	struct pmu pmu;				/* host counters over the phase */
};

/* Set by the run's SIGALRM: the run is over. */
extern volatile sig_atomic_t vm_timed_out;

int set_cpuid(struct vm *vm);
int snapshot(struct vm *vm, uint64_t *out);
/* Counter deltas from vm->snap to end; `harness_exits` exits were our own marks. */
void record_deltas(struct vm *vm, const uint64_t *end, struct run_result *r, int harness_exits);
void set_status(struct run_result *r, const char *status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void describe_exit(struct vm *vm, struct run_result *r);

/* boot.c: put a Multiboot kernel or a Linux bzImage (and initrd) into the VM. */
int boot_load(struct vm *vm, const struct image *img);
/* machine.c: run a booted kernel with the device model until it exits. */
int machine_run(struct vm *vm, const struct run_config *cfg, const struct image *img,
		struct run_result *r);

#endif
