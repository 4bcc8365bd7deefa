// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "kmsg.h"

/* Keep in step with testmachine/check-dmesg. */
static const char *const alarming[] = {
	"Oops", "WARNING:", "BUG:", "Kernel panic", "general protection fault",
	"soft lockup", "hard LOCKUP", "detected stalls", "Call Trace:", "kmemleak", "refcount_t:",
	"list_add corruption", "list_del corruption", "UBSAN:", "KASAN:",
	"kvmlab: leaked", NULL,
};

int kmsg_open(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd >= 0)
		lseek(fd, 0, SEEK_END);
	return fd;
}

void kmsg_check(int fd, char *bad, size_t size)
{
	char rec[8192];
	ssize_t n;

	bad[0] = 0;
	if (fd < 0)
		return;
	/* Each read returns one record: "prio,seq,time,flags;message\n". */
	while ((n = read(fd, rec, sizeof(rec) - 1)) > 0 || (n < 0 && errno == EPIPE)) {
		char *msg;

		if (n <= 0)
			continue;	/* EPIPE: records were overwritten; go on */
		rec[n] = 0;
		msg = strchr(rec, ';');
		msg = msg ? msg + 1 : rec;
		msg[strcspn(msg, "\n")] = 0;
		for (int i = 0; alarming[i] && !bad[0]; i++)
			if (strstr(msg, alarming[i]))
				snprintf(bad, size, "%s", msg);
	}
}
