// SPDX-License-Identifier: GPL-2.0
/*
 * The sweep-spec parser and planner (harness/experiment/sweep.c): a good
 * spec plans hypervisors x workloads x parameter values x repetitions,
 * runs already ok in runs.csv are left out, and each kind of bad line is
 * refused with its line number. Needs the built workload images
 * ($KVMLAB_WORKLOADS, set by the Makefile).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "../../harness/experiment/sweep.h"

static char dir[64];

static char *plan(const char *spec, int *rc, int *lines)
{
	char path[128], *out = NULL;
	size_t len = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/spec.sweep", dir);
	f = fopen(path, "w");
	fputs(spec, f);
	fclose(f);
	f = open_memstream(&out, &len);
	*rc = sweep_plan(path, dir, f);
	fclose(f);
	*lines = 0;
	for (char *p = out; *p; p++)
		*lines += *p == '\n';
	return out;
}

static void good_spec_plans_the_product(void)
{
	int rc, lines;
	char *out = plan("# a comment\nhv = kvmlab-vtlb, kvm-npt\nworkload = ctxswitch, syscall\n"
			 "reps = 2\nparam ctxswitch.spaces = 1, 4, 16\n", &rc, &lines);

	CHECK_EQ(rc, 0);
	CHECK_EQ(lines, 2 * (3 + 1) * 2);		/* hv x (3 spaces + syscall) x reps */
	CHECK(strstr(out, "kvmlab-vtlb\tctxswitch\t") != NULL);
	CHECK(strstr(out, "spaces=16") != NULL);
	free(out);
}

/* A vcpus axis: every run at each count, vcpus=N in the params above 1 (as runs.csv has them). */
static void vcpus_axis_multiplies_the_runs(void)
{
	int rc, lines;
	char *out = plan("hv = kvm-npt\nworkload = smp-shootdown, syscall\nvcpus = 1, 2, 4\n"
			 "param smp-shootdown.ops = 10, 20\n", &rc, &lines);

	CHECK_EQ(rc, 0);
	CHECK_EQ(lines, (2 + 1) * 3);			/* (2 ops + syscall) x 3 counts */
	CHECK(strstr(out, "smp-shootdown\tpages=8;ops=10\t1") != NULL);
	CHECK(strstr(out, "smp-shootdown\tpages=8;ops=20;vcpus=4\t1") != NULL);
	CHECK(strstr(out, "syscall\tn=20000;vcpus=2\t") != NULL);
	free(out);
}

static void runs_already_ok_are_not_planned(void)
{
	char path[128], *out;
	int rc, lines, before;
	FILE *f;

	out = plan("hv = kvm-npt\nworkload = syscall\nreps = 3\n", &rc, &before);
	CHECK_EQ(rc, 0);
	CHECK_EQ(before, 3);
	/* The first planned run, as a row of runs.csv with status ok. */
	snprintf(path, sizeof(path), "%s/runs.csv", dir);
	f = fopen(path, "w");
	{
		char *tab1 = strchr(out, '\t'), *tab2 = strchr(tab1 + 1, '\t');
		char *tab3 = strchr(tab2 + 1, '\t'), *nl = strchr(tab3, '\n');

		fprintf(f, "hv,workload,params,rep,status,ops\n%.*s,%.*s,%.*s,%.*s,ok,1\n",
			(int)(tab1 - out), out, (int)(tab2 - tab1 - 1), tab1 + 1,
			(int)(tab3 - tab2 - 1), tab2 + 1, (int)(nl - tab3 - 1), tab3 + 1);
	}
	fclose(f);
	free(out);
	out = plan("hv = kvm-npt\nworkload = syscall\nreps = 3\n", &rc, &lines);
	CHECK_EQ(rc, 0);
	CHECK_EQ(lines, before - 1);
	unlink(path);
	free(out);
}

static void bad_lines_are_refused(void)
{
	static const char *const bad[] = {
		"frob = 1\n",
		"hv = kvm-bogus\nworkload = ctxswitch\n",
		"hv = kvm-npt\nworkload = ctxswitch, nope\n",
		"hv = kvm-npt\nparam ctxswitch.spaces = 1\nworkload = ctxswitch\n",
		"hv = kvm-npt\nworkload = ctxswitch\nparam ctxswitch.bogus = 1\n",
		"hv = kvm-npt\nworkload = ctxswitch\nparam ctxswitch.spaces = 1, 0\n",
		"hv = kvm-npt\nworkload = ctxswitch\nparam ctxswitch.spaces = lots\n",
		"hv = kvm-npt\nworkload = ctxswitch\nparam ctxswitch.spaces = 1,,2\n",
		"workload = ctxswitch\n",
		"hv = kvm-npt\nworkload = ctxswitch\nreps = 0\n",
		"hv = kvm-npt\nworkload ctxswitch\n",
		"hv = kvm-npt\nhv = kvm-shadow\n",
		"hv = kvm-npt\nworkload = ctxswitch\nvcpus = 0\n",
		"hv = kvm-npt\nworkload = ctxswitch\nvcpus = 9\n",
		"hv = kvm-npt\nvcpus = 2\nworkload = ctxswitch\n",
		"hv = kvm-npt\nworkload = realmode\nvcpus = 1, 2\n",
	};
	FILE *saved = stderr;

	stderr = fopen("/dev/null", "w");		/* the messages are the pytest's to read */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc, lines;
		char *out = plan(bad[i], &rc, &lines);

		if (rc != -1 || lines != 0)
			printf("FAIL %s: spec %zu planned (rc %d, %d lines)\n", unit_test, i, rc, lines);
		unit_ok &= rc == -1 && lines == 0;
		free(out);
	}
	fclose(stderr);
	stderr = saved;
}

void suite_sweep(void)
{
	strcpy(dir, "/tmp/kvmlab-unit-XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return;
	}
	unit_run("sweep_good_spec_plans_the_product", good_spec_plans_the_product);
	unit_run("sweep_vcpus_axis_multiplies_the_runs", vcpus_axis_multiplies_the_runs);
	unit_run("sweep_runs_already_ok_are_not_planned", runs_already_ok_are_not_planned);
	unit_run("sweep_bad_lines_are_refused", bad_lines_are_refused);
	rmdir(dir);
}
