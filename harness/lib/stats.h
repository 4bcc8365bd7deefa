/* SPDX-License-Identifier: GPL-2.0 */
/*
 * KVM binary statistics (KVM_GET_STATS_FD): the fd holds a header, an id
 * string, a descriptor per statistic (name, type, unit, size, offset) and
 * the data. Descriptors are read once; values are re-read with pread on
 * every snapshot. Counters are found by name, never by offset, so the same
 * code reads Linux KVM and kvmlab.
 */
#ifndef KVMLAB_STATS_H
#define KVMLAB_STATS_H

#include <stdint.h>

struct stat_desc {
	char name[64];
	uint32_t flags;
	uint32_t offset;	/* into the data block, in bytes */
};

struct stats {
	int fd;			/* -1: the hypervisor has no binary stats */
	int count;
	struct stat_desc *desc;
	uint32_t data_offset;
	uint32_t data_size;	/* bytes */
};

/* fd from KVM_GET_STATS_FD; -1 yields an empty set. */
int stats_open(struct stats *s, int fd);
void stats_close(struct stats *s);
/* values[i] = first element of descriptor i. */
int stats_read(const struct stats *s, uint64_t *values);
/* Peak statistics are reported as levels (the peak itself), not deltas. */
int stats_is_peak(const struct stats *s, int i);

#endif
