/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Types for the "pure" files (the instruction decoder, the guest page
 * walker): code with no kernel dependencies that the module builds and the
 * host unit tests (tests/unit) build too, so both run the same lines.
 */
#ifndef KL_PURE_H
#define KL_PURE_H

#ifdef __KERNEL__
#include <linux/bits.h>
#include <linux/errno.h>
#include <linux/string.h>
#include <linux/types.h>
#else
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int8_t s8;
typedef int16_t s16;
typedef int32_t s32;
typedef int64_t s64;
#define BIT(n)		(1U << (n))
#define BIT_ULL(n)	(1ULL << (n))
#define GENMASK_ULL(h, l) ((~0ULL << (l)) & (~0ULL >> (63 - (h))))
#endif

#endif
