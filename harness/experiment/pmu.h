/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Host hardware counters around a run's measured phase (pmu.c): events
 * named as libpfm4 knows them, opened with perf_event_open on the vCPU
 * thread (user, kernel and guest mode). Where the machine has no PMU (the
 * test machine) every value is unavailable and the CSV says n/a.
 */
#ifndef KVMLAB_PMU_H
#define KVMLAB_PMU_H

#include <stdbool.h>
#include <stdint.h>

#define PMU_EVENTS 3

/* runs.csv column names, in order: host cycles, instructions, dTLB misses. */
extern const char *const pmu_columns[PMU_EVENTS];

struct pmu {
	int fd[PMU_EVENTS];		/* -1: not counting */
};

/* Open the counters (disabled) for the calling thread; never fails. */
void pmu_open(struct pmu *p);
void pmu_start(struct pmu *p);
/* Stop; have[i] says whether value[i] was counted. */
void pmu_stop(struct pmu *p, uint64_t value[PMU_EVENTS], bool have[PMU_EVENTS]);
void pmu_close(struct pmu *p);
/* Why counters are unavailable here ("" when they are available): for meta.json. */
const char *pmu_status(void);

#endif
