/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A workload image: a static ELF built from workloads/. Segments are loaded
 * at their physical addresses; the .kl_params section describes the
 * workload's parameters (see guest_abi.h), so names and ranges are checked
 * here, before any VM exists.
 */
#ifndef KVMLAB_IMAGE_H
#define KVMLAB_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <kvmlab/guest_abi.h>

#define MAX_PARAMS 32

struct image {
	char name[64];
	char path[4096];
	uint8_t *file;
	size_t file_size;
	uint64_t entry;
	uint64_t image_end;		/* highest gpa the segments occupy */
	uint64_t params_gpa;		/* where .kl_params is loaded */
	bool tool;			/* a tool, not a benchmark (KL_TOOL_SECTION) */
	bool real_mode;			/* starts in real mode (KL_REALMODE_SECTION) */
	int vcpus;			/* `--vcpus`: 0 or 1 is one (a params column entry beyond) */
	bool smp;			/* local APICs even at one vCPU (KL_SMP_SECTION) */
	int nparams;
	struct kl_param params[MAX_PARAMS];	/* values: defaults, then --param */

	/*
	 * A boot workload (NAME.boot, or `kvmlab boot`): a Multiboot kernel or
	 * a Linux bzImage booted with the device model. Its parameters reach
	 * the guest on the command line, as kvmlab.NAME=VALUE.
	 */
	bool boot;
	char kernel[4096], initrd[4096];
	char append[2048];
	uint64_t boot_mem_bytes;	/* the least memory it needs */
	bool phase_from_start;		/* measured from the first instruction */
	bool apic;			/* offer the local APIC in CPUID */
	bool real_mode_entry;		/* a bzImage: start its 16-bit setup code, as a BIOS loader */
	bool not_in_all;		/* too slow for --workload all (a whole OS) */
};

/*
 * PATH is DIR/NAME.elf; a boot workload is DIR/NAME.boot, a few lines of
 * `key = value` (kernel, initrd, append, mem, phase, apic, param) — see
 * workloads/boot/README.md.
 */
int image_open(struct image *img, const char *path, const char *name);
void image_close(struct image *img);
struct kl_param *image_param(struct image *img, const char *name);
/* Copy the segments and the parameter values into guest memory. */
int image_load(const struct image *img, uint8_t *mem, uint64_t mem_bytes);
/* "k=8;m=16" — every parameter, in declaration order. */
void image_params_string(const struct image *img, char *buf, size_t size);

/* "k=v;k=v" (runs.csv's params column) onto the image's parameters, each checked. */
int image_set_params(struct image *img, const char *params);

/* Names of the workload images (NAME.elf, NAME.boot) in dir, sorted; the count or -1. */
/* Room enough for every workload image and its paging-format builds. */
#define MAX_WORKLOADS 128
int image_list(const char *dir, char names[][64], int max);

#endif
