// SPDX-License-Identifier: GPL-2.0
/*
 * `kvmlab run --dirty-log MS`: what dirty logging costs a workload, without
 * a migration around it. The guest's RAM slot logs from the start, and a
 * thread reads (and so clears and write-protects again) the log every MS
 * milliseconds, as a migration's rounds or a framebuffer's refresh would.
 * The run's counters then include each strategy's price: dirty_wrprot,
 * dirty_faults, remote_tlb_flush, and the exits they cost; the logger adds
 * log_reads and log_dirty_pages (pages reported, over the whole run).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../lib/util.h"
#include "../run/vm_priv.h"
#include "migrate.h"

struct dirty_logger {
	struct vm *vm;
	uint64_t period_ns;
	pthread_t thread;
	volatile int stop;
	uint64_t reads, pages;
	uint64_t *bitmap;
	int error;
};

static void *logger_thread(void *arg)
{
	struct dirty_logger *l = arg;
	size_t words = (l->vm->kc.mem_bytes / 4096 + 63) / 64;

	while (!l->stop) {
		struct timespec ts = { (time_t)(l->period_ns / 1000000000ULL),
				       (long)(l->period_ns % 1000000000ULL) };

		nanosleep(&ts, NULL);
		if (kc_get_dirty_log(l->vm->kc.fd, 0, l->bitmap)) {
			l->error = errno;
			break;
		}
		l->reads++;
		for (size_t i = 0; i < words; i++)
			l->pages += (uint64_t)__builtin_popcountll(l->bitmap[i]);
	}
	return NULL;
}

struct dirty_logger *dirty_logger_start(struct vm *vm, unsigned int period_ms)
{
	struct dirty_logger *l = calloc(1, sizeof(*l));

	if (!l || !(l->bitmap = calloc((vm->kc.mem_bytes / 4096 + 63) / 64, 8))) {
		free(l);
		err("out of memory");
		return NULL;
	}
	l->vm = vm;
	l->period_ns = (uint64_t)period_ms * 1000000ULL;
	if (kc_set_memslot(vm->kc.fd, 0, KVM_MEM_LOG_DIRTY_PAGES, vm->kc.ram_gpa,
			   vm->kc.mem_bytes, vm->kc.mem)) {
		err_errno("cannot turn dirty logging on");
		goto fail;
	}
	if (start_helper_thread(&l->thread, logger_thread, l)) {
		err_errno("cannot start the dirty-log thread");
		goto fail;
	}
	return l;
fail:
	free(l->bitmap);
	free(l);
	return NULL;
}

void dirty_logger_stop(struct dirty_logger *l, struct run_result *r)
{
	if (!l)
		return;
	l->stop = 1;
	pthread_join(l->thread, NULL);
	if (l->error && !r->status[0])
		set_status(r, "error", "KVM_GET_DIRTY_LOG: %s", strerror(l->error));
	run_add_counter(r, "log_reads", (int64_t)l->reads);
	run_add_counter(r, "log_dirty_pages", (int64_t)l->pages);
	free(l->bitmap);
	free(l);
}
