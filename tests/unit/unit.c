// SPDX-License-Identifier: GPL-2.0
/*
 * kvmlab-unit: host-side unit tests that boot nothing — the instruction
 * decoder and the guest page walker (the module's own source files, built
 * for userspace), the device models and the sweep-spec parser (the
 * harness's). `make unit` runs it; `make test` runs it first.
 *
 *   kvmlab-unit [-v] [SUITE...]   -v: a PASS line for every test too;
 *                                 SUITE: decode, walk, devices, sweep (all)
 *
 * `./kvmlab lab grade 2` runs the walk suite against a student's paging.c.
 */
#include <string.h>
#include "check.h"

const char *unit_test;
bool unit_ok;
static int passed, failed;
static bool verbose;

void unit_run(const char *name, void (*fn)(void))
{
	unit_test = name;
	unit_ok = true;
	fn();
	if (unit_ok)
		passed++;
	else
		failed++;
	if (unit_ok && verbose)
		printf("PASS %s\n", name);
}

static const struct {
	const char *name;
	void (*run)(void);
} suites[] = {
	{ "decode", suite_decode }, { "walk", suite_walk },
	{ "devices", suite_devices }, { "sweep", suite_sweep },
};

static bool wanted(const char *name, int argc, char **argv)
{
	bool any = false;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-v"))
			continue;
		any = true;
		if (!strcmp(argv[i], name))
			return true;
	}
	return !any;
}

int main(int argc, char **argv)
{
	int ran = 0;

	for (int i = 1; i < argc; i++)
		verbose |= !strcmp(argv[i], "-v");
	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
		if (wanted(suites[i].name, argc, argv)) {
			suites[i].run();
			ran++;
		}
	}
	if (!ran) {
		fprintf(stderr, "kvmlab-unit: no such suite (decode, walk, devices, sweep)\n");
		return 2;
	}
	printf("unit: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
