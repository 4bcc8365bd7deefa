/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What a run writes under results/<run-id>/:
 *   runs.csv      one row per (hv, workload, params, rep): status, ops,
 *                 checksum, wall_ns and the counter columns below
 *   counters.csv  every statistic the hypervisor exposes, long format
 *   checks.csv    each named PASS/FAIL check a workload reported
 *   meta.json     kernel, machine, versions, arguments
 */
#ifndef KVMLAB_RESULTS_H
#define KVMLAB_RESULTS_H

#include <stdio.h>
#include "../run/vm.h"

/* runs.csv counter columns, KVM's stat names; empty where a hv lacks one. */
extern const char *const csv_counters[];

struct results {
	char dir[4096];
	FILE *runs, *counters, *checks;
};

struct run_key {
	const char *hv, *workload, *params;
	int rep;
};

int results_open(struct results *res, const char *dir);
void results_add(struct results *res, const struct run_key *key, const struct run_result *r);
int results_close(struct results *res);

/* Summary table of runs.csv, per (hv, workload): means over reps. */
int results_print_table(const char *dir);
/* gnuplot PNG of exits per operation: dir/exits_per_op.png. */
int results_plot(const char *dir);
/* dir/report.md with tables, PNG+SVG plots and the published anchors (report.c). */
int results_report(const char *dir);
/* Run gnuplot on dir/script inside dir; 0 when it succeeded. */
int run_gnuplot(const char *dir, const char *script);

#endif
