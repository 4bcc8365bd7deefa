// SPDX-License-Identifier: GPL-2.0
/*
 * kvmlab kselftest --hv H[,H...] [--dir DIR] [--test NAME]... [--timeout S]
 *                  [--results DIR] [--run-id ID]
 *
 * Runs Linux's own KVM selftests (built by testmachine/mkkselftest, never
 * by us) under each hypervisor: load it, point /dev/kvm at its device (the
 * tests open that path and nothing else), run every test with a timeout,
 * unload. One row per (test, hv) in RUN_DIR/kselftest.csv, each test's
 * output in RUN_DIR/kselftest/HV/NAME.log. A selftest exits 0 when it
 * passed and 4 (KSFT_SKIP) when a requirement is missing.
 *
 * kvmlab kselftest-table RUN_DIR prints the tests x hypervisors table and
 * writes it to RUN_DIR/kselftest.md.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "../experiment/hv.h"
#include "../experiment/kmsg.h"
#include "../experiment/results.h"
#include "../lib/util.h"
#include "commands.h"

#define KSFT_SKIP	4
#define MAX_TESTS	256
#define MAX_HVS		16
#define ERR_LEN		240

struct ks_opts {
	const struct hv *hvs[MAX_HVS];
	int nhv;
	char *tests[MAX_TESTS];
	int ntests;
	const char *dir, *results, *run_id;
	uint64_t timeout_s;
};

/* "x86_64/state_test" -> "state_test": a test may be named either way. */
static const char *base_name(const char *test)
{
	const char *slash = strrchr(test, '/');

	return slash ? slash + 1 : test;
}

/* The build's list of x86_64 and generic tests, one relative path per line. */
static int load_list(struct ks_opts *o, char *want[], int nwant)
{
	char path[4200], *text, *save = NULL;
	size_t len;

	snprintf(path, sizeof(path), "%s/list", o->dir);
	text = read_file(path, &len);
	if (!text)
		return err("kselftest: no test list in %s (is the kselftest layer in this boot?)", o->dir);
	for (char *t = strtok_r(text, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
		bool take = nwant == 0;

		for (int i = 0; i < nwant && !take; i++)
			take = !strcmp(want[i], t) || !strcmp(want[i], base_name(t));
		if (take && o->ntests < MAX_TESTS)
			o->tests[o->ntests++] = t;
	}
	for (int i = 0; i < nwant; i++) {
		bool found = false;

		for (int k = 0; k < o->ntests && !found; k++)
			found = !strcmp(want[i], o->tests[k]) ||
				!strcmp(want[i], base_name(o->tests[k]));
		if (!found)
			return err("kselftest: no test '%s' in %s", want[i], path);
	}
	return o->ntests ? 0 : err("kselftest: %s lists no tests", path);
}

static int parse(int argc, char **argv, struct ks_opts *o, char *want[], int *nwant)
{
	char *hvlist = NULL, *names[MAX_HVS];

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--native"))
			continue;
		if (!v)
			return err("kselftest: option '%s' needs a value", a);
		if (!strcmp(a, "--hv"))
			hvlist = argv[i + 1];
		else if (!strcmp(a, "--dir"))
			o->dir = v;
		else if (!strcmp(a, "--results"))
			o->results = v;
		else if (!strcmp(a, "--run-id"))
			o->run_id = v;
		else if (!strcmp(a, "--test") && *nwant < MAX_TESTS)
			want[(*nwant)++] = argv[i + 1];
		else if (!strcmp(a, "--timeout")) {
			if (!parse_u64(v, &o->timeout_s) || !o->timeout_s)
				return err("kselftest: bad --timeout '%s'", v);
		} else
			return err("kselftest: unknown option '%s'", a);
		i++;
	}
	if (!hvlist)
		return err("kselftest: --hv is required");
	o->nhv = split_list(hvlist, names, MAX_HVS);
	for (int i = 0; i < o->nhv; i++) {
		o->hvs[i] = hv_find(names[i]);
		if (!o->hvs[i] || !o->hvs[i]->module)
			return err("kselftest: unknown hypervisor '%s' (see 'kvmlab list')", names[i]);
	}
	return 0;
}

/*
 * /dev/kvm is the only path the selftests open. For kvmlab it becomes a
 * node with /dev/kvmlab's numbers, removed again afterwards so that
 * devtmpfs can create KVM's own when kvm.ko loads.
 */
static int point_dev_kvm(const struct hv *hv)
{
	struct stat st;

	if (!strcmp(hv->device, "/dev/kvm"))
		return access("/dev/kvm", R_OK | W_OK) ? err_errno("%s: no /dev/kvm", hv->name) : 0;
	if (stat(hv->device, &st))
		return err_errno("%s: no %s", hv->name, hv->device);
	unlink("/dev/kvm");
	if (mknod("/dev/kvm", S_IFCHR | 0666, st.st_rdev))
		return err_errno("%s: cannot make /dev/kvm", hv->name);
	return 0;
}

static void trim(char *s)
{
	size_t n = strlen(s);

	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = 0;
	memmove(s, s + strspn(s, " \t"), strlen(s + strspn(s, " \t")) + 1);
}

/*
 * The line a reader wants first: for a failed TEST_ASSERT, where it failed
 * and its message (the stack trace between them skipped); for a skip, the
 * requirement that was not met; otherwise the last line printed.
 */
static void first_error(const char *log, bool skipped, char *out, size_t size)
{
	char *text = read_file(log, &(size_t){ 0 }), *save = NULL, last[ERR_LEN] = "";
	char where[ERR_LEN] = "";
	int state = 0;	/* 1: after the assertion banner, 2: after its location */

	out[0] = 0;
	if (!text)
		return;
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char line[ERR_LEN];

		snprintf(line, sizeof(line), "%s", l);
		trim(line);
		if (!line[0])
			continue;
		if (skipped && strstr(line, "SKIP")) {
			const char *m = strstr(line, "SKIP");

			m += strspn(m + 4, " -:") + 4;
			snprintf(out, size, "%s", *m ? m : line);
			break;
		}
		if (strstr(line, "Test Assertion Failure")) {
			state = 1;
			continue;
		}
		if (state == 1) {
			snprintf(where, sizeof(where), "%s", line);
			state = 2;
			continue;
		}
		if (state == 2) {
			unsigned long frame;
			char c;

			/* The stack trace, or the shell's word that addr2line is missing. */
			if (!strncmp(line, "pid=", 4) || sscanf(line, "%lu 0x%c", &frame, &c) == 2 ||
			    strstr(line, "addr2line"))
				continue;
			snprintf(out, size, "%s: %s", where, line);
			break;
		}
		snprintf(last, sizeof(last), "%s", line);
	}
	if (!out[0])
		snprintf(out, size, "%s", where[0] ? where : last);
	free(text);
}

/* Runs one test with its output in log; 0 pass, KSFT_SKIP, or fail (-1, reason in why). */
static int run_test(const struct ks_opts *o, const char *test, const char *log, char *why, size_t size)
{
	char path[4200];
	uint64_t deadline = now_ns() + o->timeout_s * 1000000000ull;
	int status;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/%s", o->dir, test);
	why[0] = 0;
	pid = fork();
	if (pid < 0)
		return snprintf(why, size, "fork: %s", strerror(errno)), -1;
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		setpgid(0, 0);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0 || chdir(o->dir))
			_exit(127);
		execl(path, path, (char *)NULL);
		fprintf(stderr, "cannot run %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			return snprintf(why, size, "waitpid: %s", strerror(errno)), -1;
		if (now_ns() > deadline) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			snprintf(why, size, "timeout after %llu s", (unsigned long long)o->timeout_s);
			return -1;
		}
		nanosleep(&(struct timespec){ .tv_nsec = 20000000 }, NULL);
	}
	/* Threads a test left behind must not outlive it. */
	kill(-pid, SIGKILL);
	if (WIFSIGNALED(status))
		return snprintf(why, size, "killed by signal %d", WTERMSIG(status)), -1;
	if (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == KSFT_SKIP)
		return WEXITSTATUS(status);
	return -1;
}

static void put_row(FILE *csv, const char *test, const char *hv, const char *result,
		    double secs, const char *error)
{
	fprintf(csv, "%s,%s,%s,%.1f,\"", test, hv, result, secs);
	for (const char *p = error; *p; p++)
		fprintf(csv, *p == '"' ? "\"\"" : "%c", *p);
	fprintf(csv, "\"\n");
	fflush(csv);
}

static int run_hv(const struct ks_opts *o, const struct hv *hv, const char *run_dir, FILE *csv,
		  int counts[3])
{
	char logdir[4200], log[4400], why[ERR_LEN], bad[ERR_LEN];
	int kfd;

	hv_unload_all();	/* kvmlab's strategy is a load-time choice for type-0 VMs */
	if (hv_prepare(hv, NULL) || point_dev_kvm(hv))
		return -1;
	snprintf(logdir, sizeof(logdir), "%s/kselftest/%s", run_dir, hv->name);
	if (mkdir_p(logdir))
		return -1;
	kfd = kmsg_open();
	for (int i = 0; i < o->ntests; i++) {
		const char *test = o->tests[i];
		uint64_t t0 = now_ns();
		const char *result;
		int rc;

		snprintf(log, sizeof(log), "%s/%s.log", logdir, base_name(test));
		rc = run_test(o, test, log, why, sizeof(why));
		kmsg_check(kfd, bad, sizeof(bad));
		if (bad[0]) {
			snprintf(why, sizeof(why), "kernel log: %s", bad);
			rc = -1;
		}
		if (!why[0])
			first_error(log, rc == KSFT_SKIP, why, sizeof(why));
		result = rc == 0 ? "pass" : rc == KSFT_SKIP ? "skip" : "fail";
		counts[rc == 0 ? 0 : rc == KSFT_SKIP ? 1 : 2]++;
		put_row(csv, test, hv->name, result, (now_ns() - t0) / 1e9, rc == 0 ? "" : why);
		printf("%-14s %-44s %s%s%s\n", hv->name, test, result, rc ? "  " : "", rc ? why : "");
	}
	if (kfd >= 0)
		close(kfd);
	if (strcmp(hv->device, "/dev/kvm"))
		unlink("/dev/kvm");
	hv_unload_all();
	return 0;
}

int cmd_kselftest(int argc, char **argv)
{
	struct ks_opts o = { .dir = "/kselftest", .results = "results", .timeout_s = 120 };
	char *want[MAX_TESTS], run_dir[4200], path[4300];
	int nwant = 0, rc = 0;
	FILE *csv;

	if (parse(argc, argv, &o, want, &nwant) || load_list(&o, want, nwant))
		return EXIT_USAGE;
	if (!o.run_id)
		o.run_id = "kselftest";
	snprintf(run_dir, sizeof(run_dir), "%s/%s", o.results, o.run_id);
	snprintf(path, sizeof(path), "%s/kselftest.csv", run_dir);
	if (mkdir_p(run_dir) || !(csv = fopen(path, "w")))
		return err_errno("kselftest: cannot write %s", path), 1;
	fprintf(csv, "test,hv,result,seconds,first_error\n");
	for (int h = 0; h < o.nhv; h++) {
		int counts[3] = { 0 };

		if (run_hv(&o, o.hvs[h], run_dir, csv, counts)) {
			rc = 1;
			continue;
		}
		printf("== %s: %d pass, %d skip, %d fail\n", o.hvs[h]->name, counts[0], counts[1],
		       counts[2]);
	}
	fclose(csv);
	return rc;
}

/* ---- the table: tests down, hypervisors across, from kselftest.csv ---- */

struct ks_row {
	char *test, *hv, *result, *error;
};

static int load_rows(char *text, struct ks_row *rows, int max)
{
	char *save = NULL, *line = strtok_r(text, "\n", &save);	/* the header */
	int n = 0;

	for (line = strtok_r(NULL, "\n", &save); line && n < max; line = strtok_r(NULL, "\n", &save)) {
		char *f[4], *p = line;

		for (int i = 0; i < 4; i++) {
			f[i] = p;
			p = strchr(p, ',');
			if (!p)
				break;
			*p++ = 0;
		}
		if (!p || *p != '"')
			continue;
		rows[n] = (struct ks_row){ f[0], f[1], f[2], p + 1 };
		p = rows[n].error + strlen(rows[n].error);
		if (p > rows[n].error && p[-1] == '"')
			p[-1] = 0;
		n++;
	}
	return n;
}

static int index_of(const char **names, int *n, const char *name, int max)
{
	for (int i = 0; i < *n; i++)
		if (!strcmp(names[i], name))
			return i;
	if (*n == max)
		return -1;
	names[*n] = name;
	return (*n)++;
}

int cmd_kselftest_table(const char *dir)
{
	enum { ROWS = MAX_TESTS * MAX_HVS };
	static struct ks_row rows[ROWS];
	static const char *cell_of[MAX_TESTS][MAX_HVS];
	const char *tests[MAX_TESTS], *hvs[MAX_HVS];
	int ntests = 0, nhv = 0, n, count[MAX_HVS][3] = { { 0 } };
	char path[4200], *text;
	FILE *md;

	snprintf(path, sizeof(path), "%s/kselftest.csv", dir);
	text = read_file(path, &(size_t){ 0 });
	if (!text)
		return 1;
	n = load_rows(text, rows, ROWS);
	memset(cell_of, 0, sizeof(cell_of));
	for (int i = 0; i < n; i++) {
		int t = index_of(tests, &ntests, rows[i].test, MAX_TESTS);
		int h = index_of(hvs, &nhv, rows[i].hv, MAX_HVS);
		const char *r = rows[i].result;

		if (t < 0 || h < 0)
			continue;
		cell_of[t][h] = !strcmp(r, "pass") ? "pass" : !strcmp(r, "skip") ? "skip" : "FAIL";
		count[h][!strcmp(r, "pass") ? 0 : !strcmp(r, "skip") ? 1 : 2]++;
	}
	snprintf(path, sizeof(path), "%s/kselftest.md", dir);
	md = fopen(path, "w");
	if (!md) {
		free(text);
		return err_errno("cannot write %s", path), 1;
	}
	fprintf(md, "# Linux KVM selftests\n\n| test |");
	for (int h = 0; h < nhv; h++)
		fprintf(md, " %s |", hvs[h]);
	fprintf(md, "\n|---|");
	for (int h = 0; h < nhv; h++)
		fprintf(md, "---|");
	fprintf(md, "\n");
	for (int t = 0; t < ntests; t++) {
		fprintf(md, "| %s |", tests[t]);
		for (int h = 0; h < nhv; h++)
			fprintf(md, " %s |", cell_of[t][h] ? cell_of[t][h] : "");
		fprintf(md, "\n");
	}
	fprintf(md, "| **pass / skip / fail** |");
	for (int h = 0; h < nhv; h++)
		fprintf(md, " %d / %d / %d |", count[h][0], count[h][1], count[h][2]);
	fprintf(md, "\n\n## Why each test did not pass\n\n");
	for (int i = 0; i < n; i++)
		if (strcmp(rows[i].result, "pass"))
			fprintf(md, "- %s under %s (%s): %s\n", rows[i].test, rows[i].hv, rows[i].result,
				rows[i].error);
	fclose(md);
	free(text);
	text = read_file(path, &(size_t){ 0 });
	if (text) {
		/* The table only, on the terminal; the reasons stay in the file. */
		char *end = strstr(text, "\n## ");

		if (end)
			*end = 0;
		printf("%s\nreasons: %s\n", text, path);
		free(text);
	}
	return 0;
}
