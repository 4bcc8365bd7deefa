/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Watches the kernel log while runs happen, so that an oops or WARN is
 * pinned on the run that caused it. Where the log cannot be read (not
 * root), watching is silently off and the test machine's own end-of-boot
 * check still applies.
 */
#ifndef KVMLAB_KMSG_H
#define KVMLAB_KMSG_H

#include <stddef.h>

int kmsg_open(void);		/* fd positioned at the end of the log, or -1 */
/* Copies the first alarming line logged since the last call into bad (or ""). */
void kmsg_check(int fd, char *bad, size_t size);

#endif
