// SPDX-License-Identifier: GPL-2.0
/* kvmlab list: the hypervisors and the workloads with their parameters. */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include "../experiment/hv.h"
#include "../loaders/image.h"
#include "../lib/util.h"
#include "commands.h"


int cmd_list(void)
{
	char dir[PATH_MAX], names[MAX_WORKLOADS][64];
	int n;

	printf("hypervisors:\n");
	for (int i = 0; hv_at(i); i++)
		printf("  %-12s %s\n", hv_at(i)->name, hv_at(i)->about);
	workloads_dir(dir, sizeof(dir));
	n = image_list(dir, names, MAX_WORKLOADS);
	if (n < 0)
		return 1;
	printf("workloads (%s):\n", dir);
	for (int i = 0; i < n; i++) {
		char path[PATH_MAX + 80];
		struct image img;

		snprintf(path, sizeof(path), "%s/%s.elf", dir, names[i]);
		if (image_open(&img, path, names[i]))
			return 1;
		printf("  %s%s%s\n", names[i], img.tool ? "   (a tool: not in 'all')" : "",
		       img.not_in_all ? "   (boots an OS: not in 'all')" : "");
		for (int p = 0; p < img.nparams; p++)
			printf("      %-10s default %-8llu [%llu..%llu]  %s\n", img.params[p].name,
			       (unsigned long long)img.params[p].def,
			       (unsigned long long)img.params[p].min,
			       (unsigned long long)img.params[p].max, img.params[p].help);
		image_close(&img);
	}
	return 0;
}

