// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "stats.h"
#include "util.h"

int stats_open(struct stats *s, int fd)
{
	struct kvm_stats_header hdr;
	size_t desc_size;
	char *raw = NULL;

	memset(s, 0, sizeof(*s));
	s->fd = fd;
	if (fd < 0)
		return 0;
	if (pread(fd, &hdr, sizeof(hdr), 0) != sizeof(hdr))
		return err_errno("cannot read the stats header");
	if (hdr.name_size == 0 || hdr.name_size > sizeof(s->desc[0].name))
		return err("stats: unsupported name size %u", hdr.name_size);
	desc_size = sizeof(struct kvm_stats_desc) + hdr.name_size;
	raw = malloc(desc_size * hdr.num_desc);
	s->desc = calloc(hdr.num_desc, sizeof(*s->desc));
	if (!raw || !s->desc)
		goto fail;
	if (pread(fd, raw, desc_size * hdr.num_desc, hdr.desc_offset) !=
	    (ssize_t)(desc_size * hdr.num_desc)) {
		err_errno("cannot read the stats descriptors");
		goto fail;
	}
	for (uint32_t i = 0; i < hdr.num_desc; i++) {
		struct kvm_stats_desc *d = (void *)(raw + i * desc_size);
		uint32_t end = d->offset + d->size * sizeof(uint64_t);

		memcpy(s->desc[i].name, d->name, hdr.name_size);
		s->desc[i].name[hdr.name_size - 1] = 0;
		s->desc[i].flags = d->flags;
		s->desc[i].offset = d->offset;
		if (end > s->data_size)
			s->data_size = end;
	}
	s->count = hdr.num_desc;
	s->data_offset = hdr.data_offset;
	free(raw);
	return 0;
fail:
	free(raw);
	free(s->desc);
	s->desc = NULL;
	return -1;
}

void stats_close(struct stats *s)
{
	if (s->fd >= 0)
		close(s->fd);
	free(s->desc);
	memset(s, 0, sizeof(*s));
	s->fd = -1;
}

int stats_read(const struct stats *s, uint64_t *values)
{
	uint8_t *data;

	if (s->fd < 0 || s->count == 0)
		return 0;
	data = malloc(s->data_size);
	if (!data)
		return err("out of memory");
	if (pread(s->fd, data, s->data_size, s->data_offset) != s->data_size) {
		free(data);
		return err_errno("cannot read stats data");
	}
	for (int i = 0; i < s->count; i++)
		memcpy(&values[i], data + s->desc[i].offset, sizeof(uint64_t));
	free(data);
	return 0;
}

int stats_is_peak(const struct stats *s, int i)
{
	return (s->desc[i].flags & KVM_STATS_TYPE_MASK) == KVM_STATS_TYPE_PEAK;
}
