// SPDX-License-Identifier: GPL-2.0
/*
 * kvmlab table | plot | report RUN_DIR: a finished run's summary table,
 * its gnuplot chart, or report.md with every plot (experiment/results.c,
 * experiment/report.c), drawn again from runs.csv.
 */
#include "../experiment/results.h"
#include "commands.h"

int cmd_table(const char *dir)
{
	return results_print_table(dir) ? 1 : 0;
}

int cmd_plot(const char *dir)
{
	return results_plot(dir) ? 1 : 0;
}

int cmd_report(const char *dir)
{
	return results_report(dir) ? 1 : 0;
}
