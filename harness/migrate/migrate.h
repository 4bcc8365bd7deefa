/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Live migration of a run (`kvmlab migrate`, `kvmlab incoming`): pre-copy,
 * as the paper describes KVM's and QEMU's.
 *
 * Source: the run loop (run/vm.c, run/machine.c) runs the guest on its
 * thread; a second thread turns dirty logging on, sends every page
 * (round 0), then in each round reads the dirty log and sends the pages
 * written since, while the guest runs. When the pages left would go over
 * the link within the allowed downtime, it asks the vCPU thread to stop:
 * at its next KVM_RUN the vCPU completes the instruction of the last exit
 * (KVM_RUN with immediate_exit), saves its registers, MSRs, FPU, events
 * and the run's own state, and waits. The last dirty pages and that state
 * go out; the destination restores them and acknowledges, and only then
 * does the source let its VM go. Any failure before the acknowledgement
 * (a destination that dies, refuses the state, a round limit reached
 * without converging) resumes the guest on the source: nothing is lost.
 *
 * Destination: receives pages into a fresh VM of its own hypervisor,
 * restores the state, acknowledges, runs the workload to its end and sends
 * the result back over the same socket.
 */
#ifndef KVMLAB_MIGRATE_H
#define KVMLAB_MIGRATE_H

#include <stdbool.h>
#include <stdint.h>
#include "../run/vm.h"

#define MIG_MAX_ROUNDS	64

/* The source's policy, as QEMU's migration parameters. */
struct mig_policy {
	uint64_t bandwidth;		/* bytes per second; 0: unlimited */
	uint64_t max_downtime_ns;	/* stop-and-copy once the rest fits in this */
	unsigned int max_rounds;	/* then give up: the guest did not converge */
	uint64_t start_after_ns;	/* from the start of the measured phase */
};

/* What happened, for the report and migrations.csv. */
struct mig_report {
	char status[24];	/* migrated, not-converged, dest-failed, guest-ended, error */
	char detail[256];
	unsigned int rounds;	/* pre-copy rounds, the full copy included, stop-and-copy not */
	uint64_t round_pages[MIG_MAX_ROUNDS + 1];	/* the last: stop-and-copy */
	uint64_t zero_pages;	/* sent as a flag only */
	uint64_t bytes;		/* on the wire */
	uint64_t total_ns;	/* from the first byte to the acknowledgement */
	uint64_t downtime_ns;	/* vCPU paused at the source to running at the destination */
	uint64_t stop_copy_ns;	/* of which: the pause to the last byte sent (the rest: restore) */
	uint64_t dirty_est_ns;	/* the downtime the policy predicted */
	uint64_t rate_bps;	/* the bandwidth the policy used at the end */
};

/* Source */
struct mig_source_cfg {
	int fd;				/* connected to the destination */
	int copy_fd;			/* -1, or where a copy of the stream goes */
	const char *workload, *params;	/* the destination opens the same workload */
	const char *src_hv;
	struct mig_policy policy;
	struct mig_report *report;
};

struct vm;
/* Start the pre-copy thread for a VM that is about to run. */
int mig_source_start(struct vm *vm, const struct mig_source_cfg *cfg);
/*
 * The run loop calls this when KVM_RUN returned EINTR (no exit pending,
 * the state whole). 0: run
 * on; 1: the guest now runs at the destination, end the loop (r->status
 * "migrated"); -1: error.
 */
int mig_source_checkpoint(struct vm *vm, struct run_result *r);
/* Before every KVM_RUN: once a pause is asked for, the vCPU enters no more. */
int mig_source_before(struct vm *vm);
/* The run is over on the source: stop the thread, fill the report. */
void mig_source_finish(struct vm *vm);
/* After a migration: the destination's result of the run (blocks). */
int mig_source_result(int fd, struct run_result *r);

/* Destination */
struct mig_hello {
	char magic[16];		/* MIG_MAGIC */
	uint32_t version;
	uint32_t struct_sizes;	/* a check that both sides are one build of kvmlab */
	char workload[64];
	char params[512];
	char src_hv[32];
	uint64_t mem_bytes;
};

struct devices;
struct mig_incoming;
/*
 * Read the stream's HELLO from fd: the workload to open and the memory
 * size. NULL with a message on error.
 */
struct mig_incoming *mig_incoming_open(int fd, bool live);
const struct mig_hello *mig_incoming_hello(const struct mig_incoming *in);
/*
 * Receive the pages and state into a VM set up with the hello's memory
 * (run/vm.c calls this); restores the vCPU and the run's phase. On error
 * the source is told (when live) and -1 returned with a message.
 */
int mig_incoming_receive(struct mig_incoming *in, struct vm *vm, struct run_result *r);
/* The device model as it was at the source (machine.c, boot guests). */
void mig_incoming_devices(const struct mig_incoming *in, struct devices *d);
/* The guest is about to run: acknowledge to the source (downtime ends here). */
int mig_incoming_ack(struct mig_incoming *in);
/* The run ended: send r back to the source, when live. */
void mig_incoming_close(struct mig_incoming *in, const struct run_result *r);

/* kvmlab run --dirty-log MS (logger.c): logging on, the log read every MS ms. */
struct dirty_logger;
struct dirty_logger *dirty_logger_start(struct vm *vm, unsigned int period_ms);
/* Stop it; its counters (log_reads, log_dirty_pages) go into r. */
void dirty_logger_stop(struct dirty_logger *l, struct run_result *r);

#endif
