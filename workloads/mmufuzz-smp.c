// SPDX-License-Identifier: GPL-2.0
/* mmufuzz-smp: the differential MMU fuzzer with a partner CPU (see mmufuzz.c, MMUFUZZ_SMP). */
#define MMUFUZZ_SMP
#include "mmufuzz.c"
