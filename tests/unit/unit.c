// SPDX-License-Identifier: GPL-2.0
/*
 * kvmlab-unit: host-side unit tests that boot nothing — the instruction
 * decoder and the guest page walker (the module's own source files, built
 * for userspace), the device models and the sweep-spec parser (the
 * harness's). `make unit` runs it; `make test` runs it first.
 *
 *   kvmlab-unit [-v]       -v: a PASS line for every test too
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

int main(int argc, char **argv)
{
	verbose = argc > 1 && !strcmp(argv[1], "-v");
	suite_decode();
	suite_walk();
	suite_devices();
	suite_sweep();
	printf("unit: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
