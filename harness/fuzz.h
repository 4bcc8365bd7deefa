/* SPDX-License-Identifier: GPL-2.0 */
#ifndef KVMLAB_FUZZ_H
#define KVMLAB_FUZZ_H

#include <stdint.h>

/* Random and boundary ioctls on device from `threads` threads; 0 when done. */
int fuzz_ioctl(const char *device, uint64_t seed, unsigned long calls, int threads);

#endif
