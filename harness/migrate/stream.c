// SPDX-License-Identifier: GPL-2.0
/* The migration stream's records (stream.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include "../lib/util.h"
#include "stream.h"

static const char *const rec_names[MIG_NR_RECS] = {
	[MIG_HELLO] = "HELLO", [MIG_PAGES] = "PAGES", [MIG_ROUND] = "ROUND",
	[MIG_VCPU] = "VCPU", [MIG_CLOCK] = "CLOCK", [MIG_DEVICES] = "DEVICES",
	[MIG_RUNSTATE] = "RUNSTATE", [MIG_END] = "END", [MIG_ACK] = "ACK",
	[MIG_RESULT] = "RESULT",
};

const char *mig_rec_name(uint32_t type)
{
	return type && type < MIG_NR_RECS ? rec_names[type] : "unknown";
}

void mig_stream_init(struct mig_stream *s, int fd)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->copy_fd = -1;
}

void mig_throttle_reset(struct mig_stream *s)
{
	s->throttle_t0 = now_ns();
	s->throttle_bytes = 0;
}

/* Hold the writer to the bandwidth: sleep until the window's bytes are due. */
static void throttle(struct mig_stream *s, size_t len)
{
	uint64_t due, now;

	s->throttle_bytes += len;
	if (!s->bandwidth)
		return;
	due = s->throttle_t0 + s->throttle_bytes * 1000000000ULL / s->bandwidth;
	while ((now = now_ns()) < due && !(s->abort && *s->abort)) {
		uint64_t ns = due - now > 20000000 ? 20000000 : due - now;
		struct timespec ts = { 0, (long)ns };

		nanosleep(&ts, NULL);
	}
}

static int write_all(struct mig_stream *s, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	throttle(s, len);
	if (s->copy_fd >= 0 && write_full(s->copy_fd, buf, len)) {
		snprintf(s->error, sizeof(s->error), "cannot write the stream's copy: %s",
			 strerror(errno));
		return -1;
	}
	while (len) {
		/* MSG_NOSIGNAL: a destination that died is an error here, not SIGPIPE. */
		ssize_t n = send(s->fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == ENOTSOCK)
			n = write(s->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(s->error, sizeof(s->error), "cannot send: %s",
				 n < 0 ? strerror(errno) : "connection closed");
			return -1;
		}
		p += n;
		len -= (size_t)n;
		s->bytes += (uint64_t)n;
	}
	return 0;
}

int mig_put(struct mig_stream *s, uint32_t type, const void *a, size_t alen, const void *b,
	    size_t blen)
{
	uint32_t hdr[2] = { type, (uint32_t)(alen + blen) };
	uLong crc = crc32(0L, (const Bytef *)hdr, sizeof(hdr));

	if (alen + blen > MIG_MAX_PAYLOAD) {
		snprintf(s->error, sizeof(s->error), "record %s too large", mig_rec_name(type));
		return -1;
	}
	if (alen)
		crc = crc32(crc, a, (uInt)alen);
	if (blen)
		crc = crc32(crc, b, (uInt)blen);
	hdr[1] = (uint32_t)(alen + blen);
	if (write_all(s, hdr, sizeof(hdr)) || (alen && write_all(s, a, alen)) ||
	    (blen && write_all(s, b, blen)))
		return -1;
	{
		uint32_t c = (uint32_t)crc;

		if (write_all(s, &c, sizeof(c)))
			return -1;
	}
	s->records++;
	return 0;
}

/* 0: all read; 1: EOF before the first byte; -1: error or EOF part-way. */
static int read_all(struct mig_stream *s, void *buf, size_t len)
{
	uint8_t *p = buf;
	size_t want = len;

	while (len) {
		ssize_t n = read(s->fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(s->error, sizeof(s->error), "cannot read: %s", strerror(errno));
			return -1;
		}
		if (n == 0) {
			s->eof = true;
			return len == want ? 1 : -1;
		}
		p += n;
		len -= (size_t)n;
		s->bytes += (uint64_t)n;
	}
	return 0;
}

int mig_get(struct mig_stream *s, uint32_t *type, void **payload, uint32_t *len, bool eof_ok)
{
	static uint8_t *buf;
	uint32_t hdr[2], crc;
	uLong want;
	int rc = read_all(s, hdr, sizeof(hdr));

	if (rc == 1 && eof_ok)
		return 1;
	if (rc) {
		if (!s->error[0] || rc == 1)
			snprintf(s->error, sizeof(s->error),
				 "the stream ended %s (after %llu records, %llu bytes)",
				 rc == 1 ? "before the migration was complete" : "inside a record header",
				 (unsigned long long)s->records, (unsigned long long)s->bytes);
		return -1;
	}
	if (!hdr[0] || hdr[0] >= MIG_NR_RECS || hdr[1] > MIG_MAX_PAYLOAD) {
		snprintf(s->error, sizeof(s->error),
			 "record %llu at byte %llu is not a migration record (type %u, length %u)",
			 (unsigned long long)s->records + 1, (unsigned long long)s->bytes - 8,
			 hdr[0], hdr[1]);
		return -1;
	}
	if (!buf && !(buf = malloc(MIG_MAX_PAYLOAD))) {
		snprintf(s->error, sizeof(s->error), "out of memory");
		return -1;
	}
	if (read_all(s, buf, hdr[1]) || read_all(s, &crc, sizeof(crc))) {
		snprintf(s->error, sizeof(s->error),
			 "the stream is truncated inside record %llu (%s, %u bytes)",
			 (unsigned long long)s->records + 1, mig_rec_name(hdr[0]), hdr[1]);
		return -1;
	}
	want = crc32(crc32(0L, (const Bytef *)hdr, sizeof(hdr)), buf, hdr[1]);
	if ((uint32_t)want != crc) {
		snprintf(s->error, sizeof(s->error),
			 "record %llu (%s, %u bytes) is corrupt: CRC 0x%08x, expected 0x%08x",
			 (unsigned long long)s->records + 1, mig_rec_name(hdr[0]), hdr[1], crc,
			 (uint32_t)want);
		return -1;
	}
	s->records++;
	*type = hdr[0];
	*payload = buf;
	*len = hdr[1];
	return 0;
}
