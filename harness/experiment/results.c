// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "pmu.h"
#include "results.h"
#include "runs_csv.h"
#include "../lib/util.h"

const char *const csv_counters[] = {
	"exits", "io_exits", "mmio_exits", "halt_exits", "irq_exits",
	"irq_injections", "irq_window_exits",
	"insn_emulation", "insn_emulation_fail", "hypercalls",
	"pf_taken", "pf_fixed", "pf_emulate", "pf_spurious", "pf_guest",
	"tlb_flush", "invlpg", "remote_tlb_flush", "remote_tlb_flush_requests",
	"mmu_shadow_zapped", "mmu_pte_write", "mmu_pde_zapped", "mmu_flooded",
	"mmu_recycled", "mmu_cache_miss", "mmu_unsync", "mmu_unsync_marks", "mmu_resync",
	"mmu_resync_checked", "pv_mmu_batches", "pv_mmu_ops", "pages_4k", "pages_2m",
	"shadow_pages_peak", "dirty_wrprot", "dirty_faults", "log_reads", "log_dirty_pages",
	"fb_refreshes", "fb_dirty_pages",
	NULL,
};

static FILE *open_csv(const char *dir, const char *name, const char *header)
{
	char path[4200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f) {
		err_errno("cannot write %s", path);
		return NULL;
	}
	fputs(header, f);
	return f;
}

int results_open(struct results *res, const char *dir)
{
	char header[2048];
	size_t len;

	memset(res, 0, sizeof(*res));
	snprintf(res->dir, sizeof(res->dir), "%s", dir);
	if (mkdir_p(dir))
		return -1;
	len = snprintf(header, sizeof(header),
		       "hv,workload,params,rep,status,ops,checksum,wall_ns,guest_cycles");
	for (int i = 0; csv_counters[i]; i++)
		len += snprintf(header + len, sizeof(header) - len, ",%s", csv_counters[i]);
	for (int i = 0; i < PMU_EVENTS; i++)
		len += snprintf(header + len, sizeof(header) - len, ",%s", pmu_columns[i]);
	snprintf(header + len, sizeof(header) - len, "\n");
	res->runs = open_csv(dir, "runs.csv", header);
	res->counters = open_csv(dir, "counters.csv", "hv,workload,params,rep,counter,delta\n");
	res->checks = open_csv(dir, "checks.csv", "hv,workload,params,rep,check,result,detail\n");
	if (!res->runs || !res->counters || !res->checks) {
		results_close(res);
		return -1;
	}
	return 0;
}

/* CSV field with quotes doubled, always quoted: free text may hold commas. */
static void put_quoted(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

void results_add(struct results *res, const struct run_key *k, const struct run_result *r)
{
	fprintf(res->runs, "%s,%s,%s,%d,%s,", k->hv, k->workload, k->params, k->rep, r->status);
	if (r->measured)
		fprintf(res->runs, "%" PRIu64 ",%016" PRIx64 ",%" PRIu64 ",%" PRIu64,
			r->ops, r->checksum, r->wall_ns, r->guest_cycles);
	else
		fputs(",,,", res->runs);
	for (int i = 0; csv_counters[i]; i++) {
		int64_t v;

		fputc(',', res->runs);
		if (r->measured && run_counter(r, csv_counters[i], &v))
			fprintf(res->runs, "%" PRId64, v);
	}
	/* Host counters: a number, or n/a where there is no PMU (never a fake 0). */
	for (int i = 0; i < PMU_EVENTS; i++) {
		if (!r->measured)
			fputc(',', res->runs);
		else if (r->host_have[i])
			fprintf(res->runs, ",%" PRIu64, r->host[i]);
		else
			fputs(",n/a", res->runs);
	}
	fputc('\n', res->runs);
	fflush(res->runs);

	for (int i = 0; r->measured && i < r->ncounters; i++)
		fprintf(res->counters, "%s,%s,%s,%d,%s,%" PRId64 "\n", k->hv, k->workload,
			k->params, k->rep, r->counter_names[i], r->counters[i]);
	fflush(res->counters);
	for (int i = 0; i < r->nchecks; i++) {
		fprintf(res->checks, "%s,%s,%s,%d,", k->hv, k->workload, k->params, k->rep);
		put_quoted(res->checks, r->checks[i].name);
		fprintf(res->checks, ",%s,", r->checks[i].pass ? "PASS" :
			r->checks[i].known_deviation ? "XFAIL" : "FAIL");
		put_quoted(res->checks, r->checks[i].detail);
		fputc('\n', res->checks);
	}
	fflush(res->checks);
}

int results_close(struct results *res)
{
	int rc = 0;
	FILE **files[] = { &res->runs, &res->counters, &res->checks };

	for (size_t i = 0; i < 3; i++) {
		if (*files[i] && fclose(*files[i]))
			rc = err_errno("cannot finish writing results in %s", res->dir);
		*files[i] = NULL;
	}
	return rc;
}

/* ---- reading runs.csv back: the table and the plot work on any run dir ---- */

int csv_load(struct csv *c, const char *dir)
{
	char path[4200];
	size_t len;
	char *line, *save = NULL;

	memset(c, 0, sizeof(*c));
	snprintf(path, sizeof(path), "%s/runs.csv", dir);
	c->text = read_file(path, &len);
	if (!c->text)
		return -1;
	c->cells = calloc((size_t)MAX_ROWS * MAX_COLS, sizeof(char *));
	if (!c->cells)
		return err("out of memory");
	for (line = strtok_r(c->text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char **dst = c->ncols ? &c->cells[c->nrows * MAX_COLS] : c->cols;
		int n = 0;

		for (char *p = line; n < MAX_COLS; n++) {
			char *comma = strchr(p, ',');

			dst[n] = p;
			if (!comma) {
				n++;
				break;
			}
			*comma = 0;
			p = comma + 1;
		}
		if (!c->ncols)
			c->ncols = n;
		else if (++c->nrows == MAX_ROWS)
			break;
	}
	if (!c->ncols)
		return err("%s is empty", path);
	return 0;
}

void csv_free(struct csv *c)
{
	free(c->cells);
	free(c->text);
}

int csv_col(const struct csv *c, const char *name)
{
	for (int i = 0; i < c->ncols; i++)
		if (!strcmp(c->cols[i], name))
			return i;
	return -1;
}

const char *cell(const struct csv *c, int row, int col)
{
	const char *v = col >= 0 ? c->cells[row * MAX_COLS + col] : NULL;

	return v ? v : "";
}

const char *const table_counters[] = {
	"exits", "pf_guest", "pf_fixed", "tlb_flush", "invlpg", "mmu_pte_write", NULL,
};

int aggregate(const struct csv *c, struct agg *out, int max)
{
	int n = 0, chv = csv_col(c, "hv"), cwl = csv_col(c, "workload"),
	    cpar = csv_col(c, "params"), cst = csv_col(c, "status"),
	    cops = csv_col(c, "ops"), cwall = csv_col(c, "wall_ns"),
	    ccyc = csv_col(c, "guest_cycles"),
	    csum = csv_col(c, "checksum");

	for (int row = 0; row < c->nrows; row++) {
		struct agg *a = NULL;

		for (int i = 0; i < n && !a; i++)
			if (!strcmp(out[i].hv, cell(c, row, chv)) &&
			    !strcmp(out[i].workload, cell(c, row, cwl)) &&
			    !strcmp(out[i].params, cell(c, row, cpar)))
				a = &out[i];
		if (!a) {
			if (n == max)
				break;
			a = &out[n++];
			memset(a, 0, sizeof(*a));
			a->hv = cell(c, row, chv);
			a->workload = cell(c, row, cwl);
			a->params = cell(c, row, cpar);
			a->checksum = cell(c, row, csum);
		}
		a->reps++;
		if (strcmp(cell(c, row, cst), "ok"))
			continue;
		a->ok++;
		if (strcmp(a->checksum, cell(c, row, csum)))
			a->checksum_differs = true;
		a->ops += atof(cell(c, row, cops));
		a->wall += atof(cell(c, row, cwall));
		a->cycles += atof(cell(c, row, ccyc));
		for (int k = 0; table_counters[k]; k++) {
			const char *v = cell(c, row, csv_col(c, table_counters[k]));

			a->have[k] |= *v != 0;
			a->counter[k] += atof(v);
		}
	}
	return n;
}

/*
 * Exits per operation of every hypervisor relative to Linux KVM's shadow
 * MMU, one line per workload: the benchmark's headline comparison.
 */
static void print_ratios(const struct agg *a, int n, const char *base)
{
	const char *hvs[16];
	int nhv = 0;

	for (int i = 0; i < n; i++) {
		bool seen = !strcmp(a[i].hv, base);

		for (int h = 0; h < nhv; h++)
			seen |= !strcmp(hvs[h], a[i].hv);
		if (!seen && nhv < 16)
			hvs[nhv++] = a[i].hv;
	}
	if (!nhv)
		return;
	printf("\nexits/op relative to %s (lower is fewer exits)\n%-10s", base, "workload");
	for (int h = 0; h < nhv; h++)
		printf(" %14s", hvs[h]);
	printf("\n");
	for (int i = 0; i < n; i++) {
		double b;

		if (strcmp(a[i].hv, base) || !a[i].ok || a[i].ops <= 0)
			continue;
		b = a[i].counter[0] / a[i].ops;
		printf("%-10s", a[i].workload);
		for (int h = 0; h < nhv; h++) {
			const struct agg *o = NULL;

			for (int j = 0; j < n && !o; j++)
				if (!strcmp(a[j].hv, hvs[h]) && !strcmp(a[j].workload, a[i].workload) &&
				    !strcmp(a[j].params, a[i].params))
					o = &a[j];
			if (!o || !o->ok || o->ops <= 0)
				printf(" %14s", "-");
			else if (b < 0.01 && o->counter[0] / o->ops < 0.01)
				printf(" %14s", "~0");	/* both exit-free: a ratio would be noise */
			else if (b < 0.01)
				printf(" %14s", "inf");
			else
				printf(" %14.2f", (o->counter[0] / o->ops) / b);
		}
		printf("\n");
	}
}

int results_print_table(const char *dir)
{
	struct csv c;
	struct agg *a = calloc(MAX_ROWS, sizeof(*a));
	int n;

	if (!a || csv_load(&c, dir)) {
		free(a);
		return -1;
	}
	n = aggregate(&c, a, MAX_ROWS);
	printf("\n%-13s %-10s %4s %10s", "hv", "workload", "ok", "ops");
	for (int k = 0; table_counters[k]; k++)
		printf(" %10.10s", table_counters[k]);
	printf(" %10s %10s  %s\n", "ns/op", "cycles/op", "checksum");
	printf("%-13s %-10s %4s %10s", "", "", "", "");
	for (int k = 0; table_counters[k]; k++)
		printf(" %10s", "/op");
	printf("\n");
	for (int i = 0; i < n; i++) {
		printf("%-13s %-10s %2d/%-1d %10.0f", a[i].hv, a[i].workload, a[i].ok,
		       a[i].reps, a[i].ok ? a[i].ops / a[i].ok : 0);
		for (int k = 0; table_counters[k]; k++) {
			if (!a[i].have[k] || a[i].ops == 0)
				printf(" %10s", "-");
			else
				printf(" %10.3f", a[i].counter[k] / a[i].ops);
		}
		printf(" %10.0f %10.0f  %s%s\n", a[i].ops ? a[i].wall / a[i].ops : 0,
		       a[i].ops ? a[i].cycles / a[i].ops : 0,
		       a[i].ok ? a[i].checksum : "-",
		       a[i].checksum_differs ? " (differs across reps!)" : "");
	}
	print_ratios(a, n, "kvm-shadow");
	csv_free(&c);
	free(a);
	return 0;
}

int run_gnuplot(const char *dir, const char *script)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return err_errno("fork");
	if (pid == 0) {
		/* Its warnings (an all-zero panel...) go to a log beside the plots. */
		int log = chdir(dir) == 0 ? open("gnuplot.log", O_WRONLY | O_CREAT | O_TRUNC, 0644) : -1;

		if (log >= 0) {
			dup2(log, 2);
			execlp("gnuplot", "gnuplot", script, (char *)NULL);
		}
		fprintf(stderr, "kvmlab: cannot run gnuplot: %s\n", strerror(errno));
		_exit(127);
	}
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return err("gnuplot failed on %s/%s (see %s/gnuplot.log)", dir, script, dir);
	return 0;
}

/*
 * One bar chart per workload (exits per operation, one bar per hv), each
 * with its own scale: workloads differ by orders of magnitude.
 */
int results_plot(const char *dir)
{
	struct csv c;
	struct agg *a = calloc(MAX_ROWS, sizeof(*a));
	char path[4200];
	const char *wls[64];
	int n, nwl = 0;
	FILE *gp, *dat;

	if (!a || csv_load(&c, dir)) {
		free(a);
		return -1;
	}
	n = aggregate(&c, a, MAX_ROWS);
	snprintf(path, sizeof(path), "%s/exits_per_op.dat", dir);
	dat = fopen(path, "w");
	snprintf(path, sizeof(path), "%s/exits_per_op.gp", dir);
	gp = fopen(path, "w");
	if (!dat || !gp) {
		err_errno("cannot write the plot files in %s", dir);
		goto out;
	}
	/* Workloads with at least one measured run: an empty panel breaks gnuplot. */
	for (int i = 0; i < n; i++) {
		bool seen = false;

		if (!a[i].ok || a[i].ops <= 0)
			continue;
		for (int w = 0; w < nwl; w++)
			seen |= !strcmp(wls[w], a[i].workload);
		if (!seen && nwl < 64)
			wls[nwl++] = a[i].workload;
	}
	if (!nwl) {
		err("%s: no successful run to plot", dir);
		goto out;
	}
	/* One data block per workload: "hv exits_per_op", blocks split by two blank lines. */
	for (int w = 0; w < nwl; w++) {
		fprintf(dat, "# %s\n", wls[w]);
		for (int i = 0; i < n; i++)
			if (!strcmp(a[i].workload, wls[w]) && a[i].ok && a[i].ops > 0)
				fprintf(dat, "%s %.6g\n", a[i].hv, a[i].counter[0] / a[i].ops);
		fprintf(dat, "\n\n");
	}
	fprintf(gp, "set terminal pngcairo size %d,%d font ',10'\n"
		"set output 'exits_per_op.png'\n"
		"set multiplot layout %d,%d title 'VM exits per operation (%s)'\n"
		"set style data histograms\nset style fill solid 0.8 border -1\n"
		"set boxwidth 0.7\nset grid ytics\nset yrange [0:*]\nunset key\n"
		"set xtics rotate by -30 noenhanced\n",
		nwl > 3 ? 1200 : 400 * (nwl ? nwl : 1), nwl > 3 ? 800 : 420,
		nwl > 3 ? 2 : 1, nwl > 3 ? (nwl + 1) / 2 : (nwl ? nwl : 1), dir);
	for (int w = 0; w < nwl; w++)
		fprintf(gp, "set title '%s' noenhanced\n"
			"plot 'exits_per_op.dat' index %d using 2:xtic(1) lc rgb '#4878a8'\n",
			wls[w], w);
	fprintf(gp, "unset multiplot\n");
	fclose(dat);
	dat = NULL;
	fclose(gp);
	gp = NULL;
	csv_free(&c);
	free(a);
	return run_gnuplot(dir, "exits_per_op.gp");
out:
	if (dat)
		fclose(dat);
	if (gp)
		fclose(gp);
	csv_free(&c);
	free(a);
	return -1;
}
