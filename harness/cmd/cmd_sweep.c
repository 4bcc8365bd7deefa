// SPDX-License-Identifier: GPL-2.0
/*
 * kvmlab sweep-plan SPEC RUN_DIR [--check]: the runs of a sweep spec not yet
 * in RUN_DIR/runs.csv, one line each (experiment/sweep.c parses the spec);
 * kvmlab sweep-merge RUN_DIR CHUNK_DIR: one boot's rows into the sweep's.
 * The ./kvmlab script's `sweep` drives both around the test-machine boots.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include "../experiment/sweep.h"
#include "commands.h"

int cmd_sweep_plan(int argc, char **argv)
{
	bool check_only = argc == 5 && !strcmp(argv[4], "--check");

	return sweep_plan(argv[2], argv[3], check_only ? NULL : stdout) ? EXIT_USAGE : 0;
}

int cmd_sweep_merge(int argc, char **argv)
{
	(void)argc;
	return sweep_merge(argv[2], argv[3]) ? 1 : 0;
}
