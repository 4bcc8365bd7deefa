/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One workload run in a fresh VM through the KVM ioctl ABI, on any device
 * that speaks it (/dev/kvm, /dev/kvmlab). The vCPU starts in 64-bit mode;
 * the run loop serves the guest's ports (guest_abi.h) and snapshots every
 * VM and vCPU statistic at the guest's phase marks.
 */
#ifndef KVMLAB_VM_H
#define KVMLAB_VM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "../loaders/image.h"

struct mig_source_cfg;
struct mig_incoming;

#define MAX_COUNTERS 256
#define MAX_CHECKS 128

struct check_result {
	char name[64];
	char detail[KL_MSG_TEXT_LEN];
	bool pass;
	bool known_deviation;	/* failed the way the platform is known to */
};

/* Where a boot guest's console goes and comes from (UART on COM1). */
struct boot_io {
	FILE *console;
	int input_fd;		/* -1: no input */
	unsigned char escape;	/* this input byte ends the run (0: none) */
};

struct run_config {
	const char *device;
	unsigned long vm_type;	/* KVM_CREATE_VM's argument */
	int vcpus;		/* workloads: vCPUs, 0 meaning 1 (run/smp.c) */
	uint64_t mem_bytes;
	unsigned int timeout_s;
	bool verbose;		/* echo guest notes as they arrive */
	/* Checks that fail on this platform for reasons outside the hypervisor. */
	const char *const *known_deviations;
	/* Called with each line the guest prints (kl_printf), when set. */
	void (*on_note)(void *ctx, const char *text);
	void *note_ctx;
	const struct boot_io *boot_io;	/* boot guests; NULL: console kept, shown on failure */
	/* Live migration (migrate/migrate.h): this run is its source, or its destination. */
	const struct mig_source_cfg *migrate_to;
	unsigned int dirty_log_ms;	/* >0: log dirty pages, read the log this often */
	/*
	 * >0: the (first) vCPU's thread moves to the next CPU it may run on
	 * every hop_exits exits, so the hypervisor's per-CPU state of the vCPU
	 * (VMCS, VMCB, ASID) must follow it; the module counts cpu_migrations.
	 */
	unsigned int hop_exits;
	/* A framebuffer (devices/fb.h): mode 0 none, FB_MMIO or FB_DIRTY. */
	int fb_mode;
	unsigned int fb_fps;
	const char *fb_snapshot;	/* PNG of the screen at the end, or NULL */
	struct mig_incoming *incoming;
};

struct run_result {
	char status[16];	/* ok, fail, error, timeout */
	char detail[256];	/* why, when status is not ok */
	int exit_code;		/* the guest's own */
	bool measured;		/* the guest closed its phase */
	uint64_t ops, checksum, wall_ns;
	uint64_t guest_cycles;	/* the guest's TSC over the phase */
	uint64_t host[3];	/* host cycles, instructions, dTLB misses (pmu.h) */
	bool host_have[3];	/* false: no PMU here, the CSV says n/a */
	int ncounters;
	char counter_names[MAX_COUNTERS][64];
	int64_t counters[MAX_COUNTERS];	/* deltas over the measured phase */
	int nchecks;
	struct check_result checks[MAX_CHECKS];
};

/* Runs img once. Returns 0 when the run happened (see r->status), -1 when
 * the VM could not even be set up (message printed). */
int vm_run(const struct run_config *cfg, const struct image *img, struct run_result *r);
/* A counter of the harness's own (a device's, the dirty-log reader's) after the run's. */
void run_add_counter(struct run_result *r, const char *name, int64_t value);
/* Counter delta by KVM stat name; false when the hypervisor lacks it. */
bool run_counter(const struct run_result *r, const char *name, int64_t *value);

#endif
