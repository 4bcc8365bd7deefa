// SPDX-License-Identifier: GPL-2.0
/* kvmlab fuzz ioctl | fuzz mmu: the two fuzzers' command lines (fuzz/). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "../experiment/hv.h"
#include "../experiment/kmsg.h"
#include "../fuzz/fuzz.h"
#include "../lib/util.h"
#include "commands.h"

/*
 * fuzz ioctl: load kvmlab, fuzz /dev/kvmlab, unload, and judge the kernel
 * log: clean, and the module's page accounting back to zero.
 */
static int cmd_fuzz_ioctl(int argc, char **argv)
{
	uint64_t seed = 1, calls = 100000, threads = 2;
	const struct hv *hv = hv_find("kvmlab-vtlb");
	char bad[256] = "", rec[8192];
	bool zero = false, dry_run = false;
	int kfd, rc;

	for (int i = 2; i < argc; i++) {
		uint64_t *dst = !strcmp(argv[i], "--seed") ? &seed : !strcmp(argv[i], "--calls") ? &calls :
				!strcmp(argv[i], "--threads") ? &threads : NULL;

		if (!strcmp(argv[i], "--native"))
			continue;
		if (!strcmp(argv[i], "--dry-run")) {
			dry_run = true;
			continue;
		}
		if (!dst || i + 1 == argc || !parse_u64(argv[i + 1], dst))
			return err("fuzz ioctl: bad option '%s'", argv[i]), EXIT_USAGE;
		i++;
	}
	if (calls == 0 || threads == 0 || threads > 8)
		return err("fuzz ioctl: --calls must be positive, --threads 1..8"), EXIT_USAGE;
	if (dry_run)
		return 0;
	if (hv_prepare(hv, NULL))
		return 1;
	kfd = kmsg_open();
	rc = fuzz_ioctl(hv->device, seed, calls, (int)threads);
	hv_unload_all();
	kmsg_check(kfd, bad, sizeof(bad));
	/* The unload's own verdict on accounting comes through the log too. */
	if (kfd >= 0) {
		int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
		ssize_t n;

		while (fd >= 0 && (n = read(fd, rec, sizeof(rec) - 1)) != 0) {
			if (n < 0 && errno != EPIPE)
				break;
			if (n > 0) {
				rec[n] = 0;
				zero |= strstr(rec, "page accounting back to zero") != NULL;
			}
		}
		if (fd >= 0)
			close(fd);
	}
	if (bad[0])
		printf("kernel log: NOT clean: %s\n", bad);
	else if (kfd >= 0)
		printf("kernel log: clean; module unloaded with page accounting %s\n",
		       zero ? "back to zero" : "NOT confirmed");
	return rc || bad[0] || (kfd >= 0 && !zero) ? 1 : 0;
}


/*
 * fuzz mmu: the differential MMU fuzzer (fuzz_mmu.c). Options are checked
 * in full before anything is loaded, so --dry-run can vet them.
 */
static int cmd_fuzz_mmu(int argc, char **argv)
{
	struct fuzz_mmu_options o = { .oracle = hv_find("kvmlab-npt"), .seed = 1, .ops = 100000,
				      .mem_mb = 64, .timeout_s = 3000, .paging = "4level",
				      .vcpus = 1 };
	uint64_t timeout = o.timeout_s, vcpus = 1;
	bool dry_run = false;

	for (int i = 2; i < argc; i++) {
		uint64_t *dst = !strcmp(argv[i], "--seed") ? &o.seed : !strcmp(argv[i], "--ops") ? &o.ops :
				!strcmp(argv[i], "--mem") ? &o.mem_mb :
				!strcmp(argv[i], "--timeout") ? &timeout :
				!strcmp(argv[i], "--vcpus") ? &vcpus : NULL;

		if (!strcmp(argv[i], "--native"))
			continue;
		if (!strcmp(argv[i], "--dry-run")) {
			dry_run = true;
			continue;
		}
		if (i + 1 < argc && !strcmp(argv[i], "--paging")) {
			o.paging = argv[++i];
			if (strcmp(o.paging, "4level") && strcmp(o.paging, "pae") &&
			    strcmp(o.paging, "2level"))
				return err("fuzz mmu: --paging is 4level, pae or 2level, not '%s'",
					   o.paging), EXIT_USAGE;
			continue;
		}
		if (i + 1 < argc && !strcmp(argv[i], "--oracle")) {
			o.oracle = hv_find(argv[++i]);
			if (!o.oracle)
				return err("fuzz mmu: unknown oracle '%s'", argv[i]), EXIT_USAGE;
			continue;
		}
		if (i + 1 < argc && !strcmp(argv[i], "--hv")) {
			char *items[FUZZ_MAX_HVS + 1];
			int n = split_list(argv[++i], items, FUZZ_MAX_HVS);

			for (int k = 0; k < n; k++) {
				o.hvs[o.nhvs] = hv_find(items[k]);
				if (!o.hvs[o.nhvs++])
					return err("fuzz mmu: unknown hypervisor '%s' (see kvmlab list)",
						   items[k]), EXIT_USAGE;
			}
			continue;
		}
		if (!dst || i + 1 == argc || !parse_u64(argv[i + 1], dst))
			return err("fuzz mmu: bad option '%s'", argv[i]), EXIT_USAGE;
		i++;
	}
	if (!o.nhvs)
		return err("usage: kvmlab fuzz mmu --hv H[,H...] [--oracle H] [--paging 4level|pae|2level] "
			   "[--vcpus 1|2] [--seed S] [--ops N] [--mem MB] [--timeout S]"), EXIT_USAGE;
	if (!o.oracle->hw_paging)
		return err("fuzz mmu: the oracle must use nested paging (%s does not)",
			   o.oracle->name), EXIT_USAGE;
	if (o.ops == 0 || o.ops > 100000000 || o.mem_mb < 16 || o.mem_mb > 4096 ||
	    timeout == 0 || timeout > 86400)
		return err("fuzz mmu: --ops 1..100000000, --mem 16..4096, --timeout 1..86400"),
		       EXIT_USAGE;
	if (vcpus != 1 && vcpus != 2)
		return err("fuzz mmu: --vcpus is 1 or 2 (a partner CPU), not %llu",
			   (unsigned long long)vcpus), EXIT_USAGE;
	if (vcpus == 2 && strcmp(o.paging, "4level"))
		return err("fuzz mmu: --vcpus 2 fuzzes 4-level paging (the runtime starts "
			   "secondary CPUs in 64-bit images only)"), EXIT_USAGE;
	o.vcpus = (int)vcpus;
	o.timeout_s = (unsigned int)timeout;
	if (dry_run)
		return 0;
	return fuzz_mmu(&o) ? 1 : 0;
}

int cmd_fuzz(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "ioctl"))
		return cmd_fuzz_ioctl(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "mmu"))
		return cmd_fuzz_mmu(argc, argv);
	err("usage: kvmlab fuzz ioctl [--seed S] [--calls N] [--threads T]\n"
	    "       kvmlab fuzz mmu --hv H[,H...] [--oracle H] [--vcpus 1|2] [--seed S] [--ops N]");
	return EXIT_USAGE;
}

