/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The migration stream: a sequence of records, each
 *
 *   u32 type, u32 length, length bytes of payload, u32 CRC-32 (zlib) of all that
 *
 * after a HELLO record that names the format. The CRC makes a corrupted
 * stream fail at the record that went bad, with its number, instead of
 * restoring a guest from damaged pages. The writer may be held to a
 * bandwidth (bytes per second), as QEMU's migrate_set_parameter max-bandwidth,
 * and may keep a copy of everything it sends in a file (`--stream-copy`),
 * which `kvmlab incoming --from FILE` restores like a live stream.
 */
#ifndef KVMLAB_MIG_STREAM_H
#define KVMLAB_MIG_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mig_rec {
	MIG_HELLO = 1,		/* struct mig_hello */
	MIG_PAGES,		/* u32 count, count x u64 (gpa | MIG_PAGE_ZERO), then the non-zero pages */
	MIG_ROUND,		/* struct mig_round: a pre-copy round is complete */
	MIG_VCPU,		/* struct mig_vcpu */
	MIG_CLOCK,		/* struct kvm_clock_data */
	MIG_DEVICES,		/* struct devices (boot guests) */
	MIG_RUNSTATE,		/* struct mig_runstate */
	MIG_END,		/* nothing: the guest may resume at the destination */
	/* destination to source */
	MIG_ACK,		/* struct mig_ack */
	MIG_RESULT,		/* struct run_result of the run's end at the destination */
	MIG_NR_RECS
};

#define MIG_MAX_PAYLOAD	(8u << 20)

struct mig_stream {
	int fd;
	int copy_fd;		/* -1, or a file that gets every byte written */
	uint64_t bandwidth;	/* bytes per second; 0: as fast as the socket goes */
	uint64_t bytes;		/* written or read so far */
	uint64_t records;
	uint64_t throttle_t0, throttle_bytes;	/* the current throttling window */
	volatile int *abort;	/* when set, a throttled writer gives up */
	bool eof;		/* the peer closed the stream */
	char error[256];	/* why the last call failed */
};

void mig_stream_init(struct mig_stream *s, int fd);
/* One record of two parts (b may be NULL); 0, or -1 with s->error. */
int mig_put(struct mig_stream *s, uint32_t type, const void *a, size_t alen, const void *b,
	    size_t blen);
/*
 * The next record, its payload in a buffer the stream owns (valid until the
 * next call). -1 with s->error on EOF, a short record, a bad CRC or type;
 * `eof_ok` makes a clean end between records return 1.
 */
int mig_get(struct mig_stream *s, uint32_t *type, void **payload, uint32_t *len, bool eof_ok);
const char *mig_rec_name(uint32_t type);
/* Start a new bandwidth window (each round restarts it). */
void mig_throttle_reset(struct mig_stream *s);

#endif
