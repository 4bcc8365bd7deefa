// SPDX-License-Identifier: GPL-2.0
/*
 * kvmlab report RUN_DIR: RUN_DIR/report.md and its plots (gnuplot, PNG and
 * SVG) from runs.csv and meta.json.
 *
 * - One table per workload setting: exits, guest page faults, guest
 *   cycles and wall time per operation under each hypervisor, exits
 *   relative to kvm-shadow, and whether every checksum agreed.
 * - Bars of exits/op and ns/op for each workload run at a single setting.
 * - For each workload swept along one parameter: how exits/op, ns/op and
 *   the peak number of shadow pages grow along it, one line per hypervisor
 *   (ctxswitch spaces K, forkwait forks N, memtouch working set...).
 * - Workloads run in several paging formats: exits/op per format side by side.
 * - The published nanobenchmark anchors next to what we measured.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "results.h"
#include "runs_csv.h"
#include "../lib/util.h"

#define MAX_AGG 2048
#define MAX_NAMES 64

struct report {
	const char *dir;
	struct csv c;
	struct agg *a;
	int n;
	FILE *md, *gp;
};

/* Value of `key` in a "k=v;k=v" params string; -1 when absent. */
static double param_value(const char *params, const char *key)
{
	size_t len = strlen(key);

	for (const char *p = params; p && *p; p = strchr(p, ';') ? strchr(p, ';') + 1 : NULL)
		if (!strncmp(p, key, len) && p[len] == '=')
			return atof(p + len + 1);
	return -1;
}

/* params with `key=...` taken out: what else the setting fixes. */
static void params_without(const char *params, const char *key, char *out, size_t size)
{
	char buf[512], *save = NULL;
	size_t len = 0;

	snprintf(buf, sizeof(buf), "%s", params);
	out[0] = 0;
	for (char *kv = strtok_r(buf, ";", &save); kv; kv = strtok_r(NULL, ";", &save))
		if (strncmp(kv, key, strlen(key)) || kv[strlen(key)] != '=')
			len += snprintf(out + len, size - len, "%s%s", len ? ";" : "", kv);
}

static int add_name(const char **names, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(names[i], name))
			return n;
	if (n < MAX_NAMES)
		names[n++] = name;
	return n;
}

/* The parameter a workload's rows vary along, or NULL (one setting, or several axes). */
static const char *swept_param(const struct report *r, const char *wl, char *key, size_t size)
{
	const char *first = NULL;
	int axes = 0;

	key[0] = 0;
	for (int i = 0; i < r->n; i++) {
		char buf[512], *save = NULL;

		if (strcmp(r->a[i].workload, wl))
			continue;
		if (!first) {
			first = r->a[i].params;
			continue;
		}
		snprintf(buf, sizeof(buf), "%s", r->a[i].params);
		for (char *kv = strtok_r(buf, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
			char *eq = strchr(kv, '=');

			if (!eq)
				continue;
			*eq = 0;
			if (param_value(first, kv) != atof(eq + 1) && strcmp(key, kv)) {
				axes++;
				snprintf(key, size, "%s", kv);
			}
		}
	}
	return axes == 1 ? key : NULL;
}

/* Peak shadow pages of a setting: the largest over its ok reps. */
static double shadow_peak(const struct report *r, const struct agg *a)
{
	int chv = csv_col(&r->c, "hv"), cwl = csv_col(&r->c, "workload"),
	    cpar = csv_col(&r->c, "params"), cpk = csv_col(&r->c, "shadow_pages_peak");
	double peak = -1;

	for (int row = 0; row < r->c.nrows; row++)
		if (!strcmp(cell(&r->c, row, chv), a->hv) &&
		    !strcmp(cell(&r->c, row, cwl), a->workload) &&
		    !strcmp(cell(&r->c, row, cpar), a->params) && *cell(&r->c, row, cpk) &&
		    atof(cell(&r->c, row, cpk)) > peak)
			peak = atof(cell(&r->c, row, cpk));
	return peak;
}

static void table(struct report *r, const char *wl, const char *params)
{
	const struct agg *base = NULL;
	const char *sum = NULL;
	bool agree = true;

	for (int i = 0; i < r->n; i++)
		if (!strcmp(r->a[i].workload, wl) && !strcmp(r->a[i].params, params) &&
		    !strcmp(r->a[i].hv, "kvm-shadow") && r->a[i].ok)
			base = &r->a[i];
	fprintf(r->md, "\n**%s** `%s`\n\n| hypervisor | ok | exits/op | vs kvm-shadow | "
		"guest #PF/op | cycles/op | ns/op |\n|---|---|---|---|---|---|---|\n", wl, params);
	for (int i = 0; i < r->n; i++) {
		const struct agg *a = &r->a[i];
		double e;

		if (strcmp(a->workload, wl) || strcmp(a->params, params))
			continue;
		if (!a->ok || a->ops <= 0) {
			fprintf(r->md, "| %s | 0/%d | – | – | – | – | – |\n", a->hv, a->reps);
			continue;
		}
		e = a->counter[0] / a->ops;
		fprintf(r->md, "| %s | %d/%d | %.3f | ", a->hv, a->ok, a->reps, e);
		if (base && base->counter[0] / base->ops >= 0.01)
			fprintf(r->md, "%.2f", e / (base->counter[0] / base->ops));
		else
			fprintf(r->md, "–");
		fprintf(r->md, " | %.3f | %.0f | %.0f |\n", a->counter[1] / a->ops, a->cycles / a->ops,
			a->wall / a->ops);
		agree &= !a->checksum_differs && (!sum || !strcmp(sum, a->checksum));
		sum = sum ? sum : a->checksum;
	}
	fprintf(r->md, "\nChecksums: %s.\n", agree ? "every hypervisor saw the same thing"
		: "**they differ**: a hypervisor changed what the guest observed");
}

/* Bars per hypervisor for the workloads run at one setting. */
static void bars(struct report *r, const char **wls, int nwl, const char *name,
		 const char *title, int what)
{
	char path[4200];
	FILE *dat;

	snprintf(path, sizeof(path), "%s/%s.dat", r->dir, name);
	dat = fopen(path, "w");
	if (!dat)
		return;
	for (int w = 0; w < nwl; w++) {
		fprintf(dat, "# %s\n", wls[w]);
		for (int i = 0; i < r->n; i++)
			if (!strcmp(r->a[i].workload, wls[w]) && r->a[i].ok && r->a[i].ops > 0)
				fprintf(dat, "%s %.6g\n", r->a[i].hv, (what ? r->a[i].wall
						: r->a[i].counter[0]) / r->a[i].ops);
		fprintf(dat, "\n\n");
	}
	fclose(dat);
	for (int t = 0; t < 2; t++) {
		fprintf(r->gp, "set terminal %s size 1200,%d font ',10'\nset output '%s.%s'\n"
			"set multiplot layout %d,%d title '%s'\nset style data histograms\n"
			"set style fill solid 0.8 border -1\nset boxwidth 0.7\nset grid ytics\n"
			"set yrange [0:*]\nunset key\nset xtics autofreq rotate by -30 noenhanced\n",
			t ? "svg" : "pngcairo", nwl > 4 ? 900 : 450, name, t ? "svg" : "png",
			nwl > 4 ? 2 : 1, nwl > 4 ? (nwl + 1) / 2 : nwl, title);
		for (int w = 0; w < nwl; w++)
			fprintf(r->gp, "set title '%s' noenhanced\nplot '%s.dat' index %d using "
				"2:xtic(1) lc rgb '#4878a8'\n", wls[w], name, w);
		fprintf(r->gp, "unset multiplot\n");
	}
	fprintf(r->md, "\n![%s](%s.svg)\n", title, name);
}

/* Lines along `key` for workload wl: exits/op, ns/op and peak shadow pages. */
static void growth(struct report *r, const char *wl, const char *key)
{
	static const char *const ylabel[] = { "exits per op", "ns per op", "peak shadow pages" };
	const char *series[MAX_NAMES];
	char name[160], path[4400], rest[512], xtics[1024];
	int ns = 0;
	FILE *dat;

	snprintf(name, sizeof(name), "growth_%s_%s", wl, key);
	snprintf(path, sizeof(path), "%s/%s.dat", r->dir, name);
	dat = fopen(path, "w");
	if (!dat)
		return;
	for (int i = 0; i < r->n; i++)
		if (!strcmp(r->a[i].workload, wl))
			ns = add_name(series, ns, r->a[i].hv);
	for (int s = 0; s < ns; s++) {
		fprintf(dat, "# %s: %s exits/op ns/op shadow_pages_peak\n", series[s], key);
		for (int i = 0; i < r->n; i++) {
			const struct agg *a = &r->a[i];

			if (strcmp(a->workload, wl) || strcmp(a->hv, series[s]) || !a->ok || a->ops <= 0)
				continue;
			params_without(a->params, key, rest, sizeof(rest));
			fprintf(dat, "%g %.6g %.6g %g\n", param_value(a->params, key),
				a->counter[0] / a->ops, a->wall / a->ops, shadow_peak(r, a));
		}
		fprintf(dat, "\n\n");
	}
	fclose(dat);
	/* Ticks at exactly the values swept: autoticks on a log axis collide. */
	xtics[0] = 0;
	for (int i = 0, len = 0; i < r->n && len < (int)sizeof(xtics) - 40; i++) {
		char tick[64];
		double v = param_value(r->a[i].params, key);

		if (strcmp(r->a[i].workload, wl))
			continue;
		if (v >= 1048576 && (long)v % 1048576 == 0)
			snprintf(tick, sizeof(tick), "\"%gMi\" %.0f", v / 1048576, v);
		else if (v >= 1024 && (long)v % 1024 == 0)
			snprintf(tick, sizeof(tick), "\"%gKi\" %.0f", v / 1024, v);
		else
			snprintf(tick, sizeof(tick), "\"%.0f\" %.0f", v, v);
		if (!strstr(xtics, tick))
			len += snprintf(xtics + len, sizeof(xtics) - len, "%s%s", len ? ", " : "", tick);
	}
	for (int t = 0; t < 2; t++) {
		fprintf(r->gp, "set terminal %s size 1200,420 font ',10'\nset output '%s.%s'\n"
			"set multiplot layout 1,3 title '%s: cost as %s grows (other parameters: %s)' "
			"noenhanced\nset style data linespoints\nset grid\nset key top left "
			"noenhanced\nset logscale x 2\nset xtics norotate (%s)\n"
			"set xlabel '%s' noenhanced\n",
			t ? "svg" : "pngcairo", name, t ? "svg" : "png", wl, key, rest, xtics, key);
		for (int y = 0; y < 3; y++) {
			fprintf(r->gp, "set title '%s'\nset ylabel '%s'\nset yrange [0:*]\nplot ",
				ylabel[y], ylabel[y]);
			for (int s = 0; s < ns; s++)
				fprintf(r->gp, "%s'%s.dat' index %d using 1:($%d >= 0 ? $%d : 1/0) "
					"title '%s'", s ? ", " : "", name, s, y + 2, y + 2, series[s]);
			fprintf(r->gp, "\n");
		}
		fprintf(r->gp, "unset multiplot\nunset logscale x\nunset xlabel\nunset ylabel\n");
	}
	fprintf(r->md, "\n![%s as %s grows](%s.svg)\n", wl, key, name);
}

/* exits/op of hv running workload wl at params, or -1 when it has no ok run. */
static double exits_per_op(const struct report *r, const char *hv, const char *wl,
			   const char *params)
{
	for (int i = 0; i < r->n; i++)
		if (!strcmp(r->a[i].hv, hv) && !strcmp(r->a[i].workload, wl) &&
		    !strcmp(r->a[i].params, params) && r->a[i].ok && r->a[i].ops > 0)
			return r->a[i].counter[0] / r->a[i].ops;
	return -1;
}

static const char *const format_suffix[] = { "", "-pae", "-2level" };

/* The workloads run in a 32-bit paging format: their 4-level names. */
static int paging_bases(const struct report *r, char bases[][64])
{
	int nbases = 0;

	for (int i = 0; i < r->n; i++) {
		const char *wl = r->a[i].workload, *dash = strrchr(wl, '-');
		bool dup = false;

		if (!dash || (strcmp(dash, "-pae") && strcmp(dash, "-2level")) ||
		    dash - wl >= 64 || nbases == MAX_NAMES)
			continue;
		for (int b = 0; b < nbases; b++)
			dup |= !strncmp(bases[b], wl, dash - wl) && !bases[b][dash - wl];
		if (!dup)
			snprintf(bases[nbases++], 64, "%.*s", (int)(dash - wl), wl);
	}
	return nbases;
}

static void paging_table(struct report *r, const char *base, const char *params,
			 const char **hvs, int nhv)
{
	fprintf(r->md, "\n**%s** `%s`\n\n| hypervisor | 4level | pae | 2level | "
		"pae / 4level | 2level / 4level |\n|---|---|---|---|---|---|\n", base, params);
	for (int h = 0; h < nhv; h++) {
		double e[3];

		for (int f = 0; f < 3; f++) {
			char wl[96];

			snprintf(wl, sizeof(wl), "%s%s", base, format_suffix[f]);
			e[f] = exits_per_op(r, hvs[h], wl, params);
		}
		fprintf(r->md, "| %s |", hvs[h]);
		for (int f = 0; f < 3; f++)
			fprintf(r->md, e[f] < 0 ? " – |" : " %.3f |", e[f]);
		for (int f = 1; f < 3; f++)
			fprintf(r->md, e[0] >= 0.01 && e[f] >= 0 ? " %.2f |" : " – |", e[f] / e[0]);
		fprintf(r->md, "\n");
	}
}

/*
 * The workloads run in several paging formats (NAME, NAME-pae, NAME-2level:
 * the sweep's paging line): exits/op per hypervisor per format, setting by
 * setting, and the 32-bit formats relative to 4-level.
 */
static void paging_formats(struct report *r)
{
	char bases[MAX_NAMES][64];
	int nbases = paging_bases(r, bases);

	if (!nbases)
		return;
	fprintf(r->md, "\n## Paging formats\n\nThe same workload as a 64-bit guest with 4-level "
		"paging and as a 32-bit guest with PAE or 2-level paging: exits per operation. "
		"Under nested paging the guest's walk is the hardware's, so only the shadow "
		"strategies should move.\n");
	for (int b = 0; b < nbases; b++) {
		const char *settings[MAX_NAMES], *hvs[MAX_NAMES];
		int nset = 0, nhv = 0;

		for (int i = 0; i < r->n; i++) {
			for (int f = 0; f < 3; f++) {
				char wl[96];

				snprintf(wl, sizeof(wl), "%s%s", bases[b], format_suffix[f]);
				if (strcmp(r->a[i].workload, wl))
					continue;
				nset = add_name(settings, nset, r->a[i].params);
				nhv = add_name(hvs, nhv, r->a[i].hv);
			}
		}
		for (int s = 0; s < nset; s++)
			paging_table(r, bases[b], settings[s], hvs, nhv);
	}
}

/* Adams & Agesen (ASPLOS 2006), cycles: native / software VMM / hardware VMM. */
static void anchors(struct report *r)
{
	static const struct { const char *wl, *published; } pub[] = {
		{ "pgfault", "1093 / 3927 / 11242" }, { "ptemod", "a store / 391 / 12733" },
		{ "in", "3209 / – / 15826" }, { "divzero", "889 / 3223 / 1014" },
		{ "callret", "11 / 51 / 11" },
	};

	fprintf(r->md, "\n## Against the published nanobenchmarks\n\nAdams & Agesen, ASPLOS 2006, "
		"cycles per operation on a 2006 CPU (native / software VMM / hardware VMM), next to "
		"our guest cycles per operation. Under QEMU TCG an emulated cycle is not a real one: "
		"compare the ratios between columns, not the absolute numbers.\n\n"
		"| workload | published | ours (guest cycles/op per hypervisor) |\n|---|---|---|\n");
	for (size_t k = 0; k < sizeof(pub) / sizeof(pub[0]); k++) {
		fprintf(r->md, "| %s | %s | ", pub[k].wl, pub[k].published);
		for (int i = 0; i < r->n; i++)
			if (!strcmp(r->a[i].workload, pub[k].wl) && r->a[i].ok && r->a[i].ops > 0)
				fprintf(r->md, "%s %.0f; ", r->a[i].hv, r->a[i].cycles / r->a[i].ops);
		fprintf(r->md, "|\n");
	}
}

/*
 * A sweep whose boots ran as Slurm array tasks says where (nodes.csv, one
 * row per run): counters compare across nodes, times do not.
 */
static void nodes(struct report *r)
{
	char path[4200], line[1024], names[16][128];
	int counts[16] = { 0 }, n = 0, more = 0, rows = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/nodes.csv", r->dir);
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *node = strrchr(line, ',');
		int i;

		if (!rows++ || !node)
			continue;		/* the header */
		node[strcspn(node, "\r\n")] = 0;
		node++;
		for (i = 0; i < n && strcmp(names[i], node); i++)
			;
		if (i == n && n == 16) {
			more++;
			continue;
		}
		if (i == n)
			snprintf(names[n++], sizeof(names[0]), "%s", node);
		counts[i]++;
	}
	fclose(f);
	if (!n)
		return;
	fprintf(r->md, "\nThe runs came from %s%d node%s of a Slurm cluster (", more ? "more than " : "",
		n, n == 1 && !more ? "" : "s");
	for (int i = 0; i < n; i++)
		fprintf(r->md, "%s%s: %d run%s", i ? ", " : "", names[i], counts[i],
			counts[i] == 1 ? "" : "s");
	if (more)
		fprintf(r->md, ", %d more on other nodes", more);
	fprintf(r->md, "; nodes.csv says which ran what).%s\n",
		n > 1 || more ? " Counters and checksums compare across nodes; times do not." : "");
}

static void header(struct report *r)
{
	char path[4200];
	size_t len = 0;
	char *meta;

	snprintf(path, sizeof(path), "%s/meta.json", r->dir);
	meta = read_file(path, &len);
	fprintf(r->md, "# kvmlab report: %s\n\n%d settings from %d runs. Machine, versions and "
		"timing mode (wall-clock, or deterministic under QEMU -icount), as the first "
		"boot of the run recorded them:\n\n"
		"```json\n%s```\n", r->dir, r->n, r->c.nrows, meta ? meta : "(no meta.json)\n");
	free(meta);
	nodes(r);
}

int results_report(const char *dir)
{
	struct report r = { .dir = dir };
	const char *wls[MAX_NAMES], *single[MAX_NAMES];
	char path[4200], key[64];
	int nwl = 0, nsingle = 0, rc = 0;

	r.a = calloc(MAX_AGG, sizeof(*r.a));
	if (!r.a || csv_load(&r.c, dir)) {
		free(r.a);
		return -1;
	}
	r.n = aggregate(&r.c, r.a, MAX_AGG);
	snprintf(path, sizeof(path), "%s/report.md", dir);
	r.md = fopen(path, "w");
	snprintf(path, sizeof(path), "%s/report.gp", dir);
	r.gp = fopen(path, "w");
	if (!r.md || !r.gp) {
		rc = err_errno("cannot write the report in %s", dir);
		goto out;
	}
	header(&r);
	for (int i = 0; i < r.n; i++)
		nwl = add_name(wls, nwl, r.a[i].workload);
	fprintf(r.md, "\n## Per operation, per hypervisor\n");
	for (int w = 0; w < nwl; w++) {
		const char *settings[MAX_NAMES];
		int nset = 0;

		for (int i = 0; i < r.n; i++)
			if (!strcmp(r.a[i].workload, wls[w]))
				nset = add_name(settings, nset, r.a[i].params);
		for (int s = 0; s < nset; s++)
			table(&r, wls[w], settings[s]);
		if (nset == 1)
			nsingle = add_name(single, nsingle, wls[w]);
	}
	fprintf(r.md, "\n## Plots\n");
	if (nsingle) {
		bars(&r, single, nsingle, "exits_per_op_all", "VM exits per operation", 0);
		bars(&r, single, nsingle, "ns_per_op_all", "wall-clock ns per operation", 1);
	}
	for (int w = 0; w < nwl; w++)
		if (swept_param(&r, wls[w], key, sizeof(key)))
			growth(&r, wls[w], key);
	paging_formats(&r);
	anchors(&r);
	fclose(r.gp);
	r.gp = NULL;
	fclose(r.md);
	r.md = NULL;
	rc = run_gnuplot(dir, "report.gp");
out:
	if (r.md)
		fclose(r.md);
	if (r.gp)
		fclose(r.gp);
	csv_free(&r.c);
	free(r.a);
	return rc;
}
