/* SPDX-License-Identifier: GPL-2.0 */
/* Sweeps from a spec file: planning what is left, merging what a boot ran (sweep.c). */
#ifndef KVMLAB_SWEEP_H
#define KVMLAB_SWEEP_H

#include <stdio.h>

/*
 * Check the spec at spec_path and write to out (may be NULL) the runs that
 * dir/runs.csv does not yet hold as ok: "hv TAB workload TAB params TAB
 * rep" per line. Counts go to stderr. -1 (with a message naming the spec
 * line) when the spec is bad.
 */
int sweep_plan(const char *spec_path, const char *dir, FILE *out);
/* Merge chunk's CSV rows into dir's, replacing rows of the same run. */
int sweep_merge(const char *dir, const char *chunk);

#endif
