/* SPDX-License-Identifier: GPL-2.0 */
/* The MP table of an SMP boot guest (mptable.c). */
#ifndef KVMLAB_MPTABLE_H
#define KVMLAB_MPTABLE_H

#include <stddef.h>
#include <stdint.h>
#include "../devices/devices.h"

/* Where boot.c puts it: in the reserved BIOS area, past the real-mode BIOS. */
#define MPTABLE_GPA	0xf1000U

size_t mptable_size(int ncpus);
/* The floating pointer and the configuration table at p, which the guest sees at gpa. */
void mptable_write(uint8_t *p, uint32_t gpa, int ncpus);

#endif
