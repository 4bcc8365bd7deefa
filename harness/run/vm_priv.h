/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Inside a run: the VM as vm.c sets it up, shared with the boot-guest side
 * (boot.c loads kernels into it, machine.c runs it with devices).
 */
#ifndef KVMLAB_VM_PRIV_H
#define KVMLAB_VM_PRIV_H

#include <linux/kvm.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <time.h>
#include <kvmlab/guest_abi.h>
#include "../devices/devices.h"
#include "../devices/fb.h"
#include "../experiment/pmu.h"
#include "../lib/kvmclient.h"
#include "../lib/stats.h"
#include "../loaders/boot.h"
#include "vm.h"

struct mig_source;
struct mig_incoming;
struct vm;

/* One vCPU of a run (smp.c): its thread, its local APIC, its start-up state. */
struct smp_cpu {
	struct vm *vm;
	int id;
	struct kc_vcpu *v;
	/*
	 * Its local APIC: own_apic, except the bootstrap processor's in a boot
	 * guest, which is the device model's (devices.lapic, smp_attach_devices).
	 * Under smp.lock, as is everything below but the thread's own fields.
	 */
	struct lapic *apic;
	struct lapic own_apic;
	bool wait_sipi, sipi, nmi;	/* INIT received, SIPI received, NMI pending */
	uint8_t sipi_vector;
	bool started;
	uint64_t halts;
	pthread_t thread;
	bool has_thread;
	pthread_cond_t wake;		/* a workload's HLT and wait-for-SIPI sleep here */
	int wake_fd;			/* an eventfd: a boot guest's HLT polls it (kick writes it) */
	timer_t timer;			/* a boot guest's AP: its APIC timer's next deadline */
	bool has_timer;
	struct stats stats;		/* vCPU 1..N-1: their statistics (vCPU 0's are vm->vcpu_stats) */
};

struct smp {
	int n;
	pthread_mutex_t lock;		/* APICs, and the run's shared state: result, console, phase */
	struct smp_cpu cpu[KC_MAX_VCPUS];
	volatile bool stop;		/* the run is over: every vCPU leaves */
	bool apics;			/* the APIC page exists (several vCPUs, or an SMP image) */
	/*
	 * How a started AP runs: the workload loop (smp.c) or a boot guest's
	 * with the device model (machine.c); ctx is its struct smp_cpu.
	 */
	const struct kc_loop *ap_loop;
	struct run_result *result;
	uint64_t ipis, inits, sipis, ioapic_msgs;
};

struct vm {
	/* --hop-exits (run_config.hop_exits): the BSP thread's CPU moves, vm_hop() */
	unsigned int since_hop;		/* KVM_RUN returns since the last move */
	cpu_set_t hop_cpus;		/* the CPUs it moves between: its affinity at start */
	struct kc_vm kc;		/* device, VM, guest RAM at gpa 0 */
	struct kc_vcpu *vcpu;		/* vCPU 0, the bootstrap processor */
	struct smp smp;			/* every vCPU (smp.c) */
	const struct run_config *cfg;
	struct stats vm_stats, vcpu_stats;
	uint64_t *snap;		/* vm stats then vcpu stats */
	char console[256];
	size_t console_len;
	uint8_t scratch[KL_MMIO_SCRATCH_SIZE];	/* the scratch MMIO device */
	uint32_t echo;				/* the echo port */
	struct pmu pmu;				/* host counters over the phase */
	struct fb fb;				/* --fb: mode FB_NONE without */
	/*
	 * The measured phase, open since t0. CLOCK_MONOTONIC is one clock for
	 * every process on the machine, so a migrated phase keeps its start.
	 */
	bool in_phase;
	uint64_t t0, begin_tsc;
	/* Boot guests: the device model and the mark arguments seen so far. */
	struct devices *dev;
	uint32_t mark_args[8];
	int nargs;
	/*
	 * Live migration (migrate/migrate.h). On the source, the engine the
	 * run loop pauses for; on the destination, what the stream brought,
	 * and the counter deltas the phase had on the source (added at its end).
	 */
	struct mig_source *mig;
	const struct mig_incoming *incoming;
	const struct run_result *carried;
	bool migrated;		/* the guest went on at the destination */
};

/* Sent to a vCPU's thread to end its KVM_RUN (its handler sets immediate_exit). */
#define SMP_KICK_SIGNAL	(SIGRTMIN + 1)

/* Set by the run's SIGALRM: the run is over. */
extern volatile sig_atomic_t vm_timed_out;

/* The supported CPUID, under kvmlab's policy (kc_cpuid_policy) for a boot guest. */
int set_cpuid(struct vm *vm, const struct image *img);
/*
 * The measured phase: every VM and vCPU statistic and the host counters at
 * its start, then r gets the deltas (less `harness_exits` exits that were
 * our own marks) and the wall time at its end.
 */
int vm_phase_begin(struct vm *vm);
int vm_phase_end(struct vm *vm, int harness_exits, struct run_result *r);
/* The phase's deltas so far, the phase staying open (a migration's source hands them on). */
int vm_phase_partial(struct vm *vm, struct run_result *r);
void set_status(struct run_result *r, const char *status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void describe_exit(struct vm *vm, struct run_result *r);
void describe_vcpu_exit(struct kc_vcpu *v, struct run_result *r);

/* smp.c: the vCPUs beyond the first, their APICs and threads. */
int smp_setup(struct vm *vm, int n, bool apics, struct run_result *r);
int smp_start(struct vm *vm);
void smp_stop(struct vm *vm);
void smp_teardown(struct vm *vm);
void smp_counters(struct vm *vm, struct run_result *r);
int smp_before(struct smp_cpu *c);
int smp_deliver_nmi(struct smp_cpu *c);
int smp_halt(struct smp_cpu *c);
bool smp_lapic_mmio(struct smp_cpu *c, struct kvm_run *run);
/*
 * A boot guest: the BSP's APIC is the device model's, the I/O APIC sends
 * to the bus, and started APs run ap_loop (machine.c).
 */
void smp_attach_devices(struct vm *vm, struct devices *dev, const struct kc_loop *ap_loop);
/* Wake c: from HLT, from waiting for SIPI, or out of KVM_RUN (under smp.lock). */
void smp_kick(struct smp_cpu *c);
/* An AP's loop asks whether INIT sent it back to wait for SIPI. */
bool smp_ap_reset(struct smp_cpu *c);
/* Any AP loop's stop and run_failed (ctx: the struct smp_cpu): the run is over, or fails. */
int smp_ap_stop(void *ctx);
void smp_ap_failed(void *ctx, int e);
int smp_fail(struct smp_cpu *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* vm.c: serve one exit of any vCPU of a workload run (takes smp.lock). */
int vm_serve_exit(struct vm *vm, struct smp_cpu *c, struct kvm_run *run);

/* machine.c: run a booted kernel with the device model until it exits. */
/* Before each KVM_RUN of the BSP: move its thread when --hop-exits says so. */
void vm_hop(struct vm *vm);

int machine_run(struct vm *vm, const struct run_config *cfg, const struct image *img,
		struct run_result *r);

#endif
