/* SPDX-License-Identifier: GPL-2.0 */
/* Small helpers shared by the harness: errors, time, strings. */
#ifndef KVMLAB_UTIL_H
#define KVMLAB_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Print "kvmlab: <message>" to stderr; returns -1 so callers can `return err(...)`. */
int err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Like err, with ": strerror(errno)" appended. */
int err_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

uint64_t now_ns(void);
/*
 * A thread beside a run's vCPU (migration, dirty-log reader, framebuffer
 * refresh) with every signal blocked: the run's timers signal the process,
 * and only the vCPU thread may take them (they end its KVM_RUN). 0, or -1
 * with errno.
 */
int start_helper_thread(pthread_t *t, void *(*fn)(void *), void *arg);
/*
 * Pin the calling thread to the n-th CPU (modulo their number) it may run
 * on now: its affinity and cpuset, not every online CPU, so that a test
 * machine's reserved CPU 0 stays free. 0, or -1 with errno.
 */
int pin_to_nth_allowed_cpu(unsigned int n);
/* write() until all of buf is out; 0, or -1 with errno. */
int write_full(int fd, const void *buf, size_t len);
bool parse_u64(const char *s, uint64_t *out);
/* Read a whole file; NULL (and a message) on failure. */
char *read_file(const char *path, size_t *len);
/* Split "a,b,c" into a NULL-terminated array (modifies s). */
int split_list(char *s, char **out, int max);
int mkdir_p(const char *path);
/* The directory holding this program (from /proc/self/exe). */
void exe_dir(char *out, size_t size);
/* Where the workload images are: $KVMLAB_WORKLOADS, or ../workloads beside this program. */
void workloads_dir(char *out, size_t size);

#endif
