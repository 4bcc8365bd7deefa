// SPDX-License-Identifier: GPL-2.0
/* CPL3 tasks and the system calls they may make. */
#include "rt.h"

long user_enter(ulong rip, ulong rsp, u64 arg);
void user_leave(long value) __attribute__((noreturn));

long user_run(ulong rip, ulong rsp, u64 arg, bool *faulted)
{
	long v;

	kl_last_fault.vector = NO_FAULT;
	v = user_enter(rip, rsp, arg);
	if (faulted)
		*faulted = kl_last_fault.vector != NO_FAULT;
	return v;
}

long kl_syscall(long a, long b, long c, long nr)
{
	switch (nr) {
	case SYS_EXIT:
		user_leave(a);
	case SYS_ADD3:
		return a + b + c;
	default:
		return -1;
	}
}
