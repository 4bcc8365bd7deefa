/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The host unit tests' whole framework: CHECK prints a FAIL line with the
 * expression and the test's name, and each test is counted once, passed or
 * failed. unit.c runs every suite and ends with "N passed, M failed".
 */
#ifndef KVMLAB_UNIT_CHECK_H
#define KVMLAB_UNIT_CHECK_H

#include <stdbool.h>
#include <stdio.h>

extern const char *unit_test;	/* the test running now */
extern bool unit_ok;		/* no CHECK of it failed yet */

#define CHECK(cond) do { \
	if (!(cond)) { \
		printf("FAIL %s: %s:%d: %s\n", unit_test, __FILE__, __LINE__, #cond); \
		unit_ok = false; \
	} \
} while (0)

#define CHECK_EQ(a, b) do { \
	unsigned long long a_ = (unsigned long long)(a), b_ = (unsigned long long)(b); \
	if (a_ != b_) { \
		printf("FAIL %s: %s:%d: %s == %s (0x%llx != 0x%llx)\n", unit_test, __FILE__, \
		       __LINE__, #a, #b, a_, b_); \
		unit_ok = false; \
	} \
} while (0)

/* Run one test function under a name. */
void unit_run(const char *name, void (*fn)(void));

void suite_decode(void);
void suite_walk(void);
void suite_devices(void);
void suite_sweep(void);

#endif
