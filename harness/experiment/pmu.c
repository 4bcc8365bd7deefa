// SPDX-License-Identifier: GPL-2.0
/* Host hardware counters through libpfm4 and perf_event_open (see pmu.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <perfmon/pfmlib_perf_event.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "pmu.h"

const char *const pmu_columns[PMU_EVENTS] = {
	"host_cycles", "host_instructions", "host_dtlb_misses",
};

/* libpfm4's names for the kernel's generic events: they resolve on any x86 PMU. */
static const char *const events[PMU_EVENTS] = {
	"perf::CYCLES", "perf::INSTRUCTIONS", "perf::PERF_COUNT_HW_CACHE_DTLB:READ:MISS",
};

static char status[160] = "not tried";
static int initialized;		/* 0 not yet, 1 ok, -1 failed */

static int open_event(const char *name)
{
	struct perf_event_attr attr;
	pfm_perf_encode_arg_t arg;
	int r, fd;

	memset(&attr, 0, sizeof(attr));
	memset(&arg, 0, sizeof(arg));
	arg.attr = &attr;
	arg.size = sizeof(arg);
	r = pfm_get_os_event_encoding(name, PFM_PLM0 | PFM_PLM3, PFM_OS_PERF_EVENT, &arg);
	if (r != PFM_SUCCESS) {
		snprintf(status, sizeof(status), "libpfm4 cannot resolve %s: %s", name, pfm_strerror(r));
		return -1;
	}
	attr.disabled = 1;
	fd = (int)syscall(SYS_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
	if (fd < 0)
		snprintf(status, sizeof(status), "perf_event_open(%s): %s (no PMU here?)", name,
			 strerror(errno));
	return fd;
}

void pmu_open(struct pmu *p)
{
	for (int i = 0; i < PMU_EVENTS; i++)
		p->fd[i] = -1;
	if (!initialized) {
		int r = pfm_initialize();

		initialized = r == PFM_SUCCESS ? 1 : -1;
		if (r != PFM_SUCCESS)
			snprintf(status, sizeof(status), "libpfm4: %s", pfm_strerror(r));
	}
	if (initialized < 0)
		return;
	for (int i = 0; i < PMU_EVENTS; i++) {
		p->fd[i] = open_event(events[i]);
		if (p->fd[i] < 0) {
			pmu_close(p);		/* all or none: a partial row would mislead */
			return;
		}
	}
	status[0] = 0;
}

void pmu_start(struct pmu *p)
{
	for (int i = 0; i < PMU_EVENTS; i++)
		if (p->fd[i] >= 0) {
			ioctl(p->fd[i], PERF_EVENT_IOC_RESET, 0);
			ioctl(p->fd[i], PERF_EVENT_IOC_ENABLE, 0);
		}
}

void pmu_stop(struct pmu *p, uint64_t value[PMU_EVENTS], bool have[PMU_EVENTS])
{
	for (int i = 0; i < PMU_EVENTS; i++) {
		have[i] = false;
		if (p->fd[i] < 0)
			continue;
		ioctl(p->fd[i], PERF_EVENT_IOC_DISABLE, 0);
		have[i] = read(p->fd[i], &value[i], sizeof(value[i])) == sizeof(value[i]);
	}
}

void pmu_close(struct pmu *p)
{
	for (int i = 0; i < PMU_EVENTS; i++) {
		if (p->fd[i] >= 0)
			close(p->fd[i]);
		p->fd[i] = -1;
	}
}

const char *pmu_status(void)
{
	return status;
}
