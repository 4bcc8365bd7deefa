/* SPDX-License-Identifier: GPL-2.0 */
/* The subcommands of the kvmlab program, one file each (cmd_*.c). */
#ifndef KVMLAB_COMMANDS_H
#define KVMLAB_COMMANDS_H

#define EXIT_USAGE 2

int cmd_run(int argc, char **argv);		/* cmd_run.c */
int cmd_list(void);				/* cmd_list.c */
int cmd_boot(int argc, char **argv);		/* cmd_boot.c */
int cmd_fuzz(int argc, char **argv);		/* cmd_fuzz.c */
int cmd_sweep_plan(int argc, char **argv);	/* cmd_sweep.c */
int cmd_sweep_merge(int argc, char **argv);
int cmd_table(const char *dir);			/* cmd_results.c */
int cmd_report(const char *dir);
int cmd_plot(const char *dir);
int cmd_kselftest(int argc, char **argv);	/* cmd_kselftest.c */
int cmd_kselftest_table(const char *dir);
int cmd_migrate(int argc, char **argv);		/* cmd_migrate.c */
int cmd_incoming(int argc, char **argv);

#endif
