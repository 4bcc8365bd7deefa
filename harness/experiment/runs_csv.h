/* SPDX-License-Identifier: GPL-2.0 */
/* Reading a run directory's runs.csv back, for the table, the plots and the report. */
#ifndef KVMLAB_RUNS_CSV_H
#define KVMLAB_RUNS_CSV_H

#include <stdbool.h>

#define MAX_ROWS 4096
#define MAX_COLS 64

struct csv {
	int ncols, nrows;
	char *cols[MAX_COLS];
	char **cells;		/* nrows * MAX_COLS */
	char *text;
};

int csv_load(struct csv *c, const char *dir);
void csv_free(struct csv *c);
int csv_col(const struct csv *c, const char *name);	/* -1 when absent */
const char *cell(const struct csv *c, int row, int col);	/* "" when absent */

/* The counters the table shows, in struct agg's counter[] order; [0] is exits. */
extern const char *const table_counters[];

/* One aggregated line per (hv, workload, params): sums over ok reps. */
struct agg {
	const char *hv, *workload, *params, *checksum;
	int reps, ok;
	double ops, wall, cycles, counter[8];
	bool have[8];
	bool checksum_differs;
};

int aggregate(const struct csv *c, struct agg *out, int max);

#endif
