// SPDX-License-Identifier: GPL-2.0
/*
 * kvmlab: run guest workloads under hypervisors that speak the KVM ABI and
 * record what each one did.
 *
 *   kvmlab run --hv H[,H..] --workload W[,W..]|all [--param [W.]K=V]...
 *              [--reps N] [--mem MB] [--timeout S] [--run-id ID]
 *              [--results DIR] [--meta K=V]... [--modparam K=V]...
 *              [--hop-exits N] [--dry-run] [--verbose]
 *              (--hop-exits: the vCPU thread changes CPU every N exits)
 *   kvmlab fuzz ioctl [--seed S] [--calls N] [--threads T]
 *   kvmlab fuzz mmu --hv H[,H..] [--oracle H] [--paging F] [--seed S] [--ops N] [--mem MB]
 *   kvmlab sweep-plan SPEC RUN_DIR [--check]   (what ./kvmlab sweep still has to run)
 *   kvmlab sweep-merge RUN_DIR CHUNK_DIR
 *   kvmlab kselftest --hv H[,H..] [--dir DIR] [--test NAME]... [--timeout S]
 *   kvmlab kselftest-table RUN_DIR
 *   kvmlab migrate --hv SRC[,DST] --workload W [--param K=V]... [--bandwidth MB/s]
 *                  [--max-downtime MS] [--max-rounds N] [--after MS] [--to SOCKET]
 *                  [--stream-copy FILE]
 *   kvmlab incoming --hv H (--listen SOCKET | --from FILE)
 *   kvmlab list
 *   kvmlab table RUN_DIR
 *   kvmlab plot RUN_DIR
 *
 * This program always runs where it is started. The ./kvmlab script at the
 * top of the repository boots the test machine and runs it there. One file
 * per subcommand beside this one (cmd_*.c), as kvmtool's builtin-*.c.
 */
#include <stdio.h>
#include <string.h>
#include "../lib/util.h"
#include "commands.h"

static int usage(void)
{
	fprintf(stderr,
		"usage: kvmlab run --hv H[,H...] --workload W[,W...]|all [--param [W.]K=V]...\n"
		"                  [--reps N] [--mem MB] [--timeout S] [--run-id ID] [--vcpus N]\n"
		"                  [--results DIR] [--meta K=V]... [--modparam K=V]... [--dry-run] [--verbose]\n"
		"                  [--hop-exits N]   (the vCPU thread changes CPU every N exits)\n"
		"       kvmlab boot --hv H --kernel FILE [--initrd FILE] [--append STR] [--mem MB]\n"
		"                   [--timeout S] [--vcpus N] [--apic]\n"
		"       kvmlab fuzz ioctl [--seed S] [--calls N] [--threads T]\n"
		"       kvmlab fuzz mmu --hv H[,H...] [--oracle H] [--paging 4level|pae|2level]\n"
		"                       [--vcpus 1|2] [--seed S] [--ops N] [--mem MB]\n"
		"       kvmlab kselftest --hv H[,H...] [--dir DIR] [--test NAME]... [--timeout S]\n"
		"                        [--results DIR] [--run-id ID]\n"
		"       kvmlab kselftest-table RUN_DIR\n"
		"       kvmlab migrate --hv SRC[,DST] --workload W [--param K=V]... [--mem MB]\n"
		"                      [--bandwidth MB/s] [--max-downtime MS] [--max-rounds N]\n"
		"                      [--after MS] [--to SOCKET] [--stream-copy FILE] [--timeout S]\n"
		"                      [--results DIR] [--run-id ID]\n"
		"       kvmlab incoming --hv H (--listen SOCKET | --from FILE) [--timeout S]\n"
		"       kvmlab list | table RUN_DIR | plot RUN_DIR | report RUN_DIR\n"
		"       kvmlab sweep-plan SPEC RUN_DIR [--check] | sweep-merge RUN_DIR CHUNK_DIR\n"
		"       ./kvmlab (the script) runs this inside the test machine; --native here\n");
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return usage();
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(argv[1], "list"))
		return cmd_list();
	if (!strcmp(argv[1], "boot"))
		return cmd_boot(argc, argv);
	if (!strcmp(argv[1], "fuzz"))
		return cmd_fuzz(argc - 1, argv + 1);
	if (!strcmp(argv[1], "sweep-plan") && (argc == 4 || argc == 5))
		return cmd_sweep_plan(argc, argv);
	if (!strcmp(argv[1], "sweep-merge") && argc == 4)
		return cmd_sweep_merge(argc, argv);
	if (!strcmp(argv[1], "kselftest"))
		return cmd_kselftest(argc - 1, argv + 1);
	if (!strcmp(argv[1], "migrate"))
		return cmd_migrate(argc - 1, argv + 1);
	if (!strcmp(argv[1], "incoming"))
		return cmd_incoming(argc - 1, argv + 1);
	if (!strcmp(argv[1], "kselftest-table") && argc == 3)
		return cmd_kselftest_table(argv[2]);
	if (!strcmp(argv[1], "table") && argc == 3)
		return cmd_table(argv[2]);
	if (!strcmp(argv[1], "report") && argc == 3)
		return cmd_report(argv[2]);
	if (!strcmp(argv[1], "plot") && argc == 3)
		return cmd_plot(argv[2]);
	err("unknown command '%s'", argv[1]);
	return usage();
}
