// SPDX-License-Identifier: GPL-2.0
/*
 * Sweeps: hypervisors x workloads x parameter values x repetitions, from a
 * small spec file (sweeps/default.sweep says what each line means).
 *
 * The ./kvmlab script drives a sweep in three steps, so that an interrupted
 * sweep loses at most the boot it was in:
 *   kvmlab sweep-plan SPEC DIR    (here) the runs of SPEC that DIR/runs.csv
 *                                 does not hold as ok yet, one per line
 *   kvmlab run --plan FILE ...    (in the test machine, one boot per
 *                                 hypervisor) exactly those runs
 *   kvmlab sweep-merge DIR CHUNK  (here) CHUNK's rows into DIR's CSV files,
 *                                 replacing rows of the same run
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "hv.h"
#include "../loaders/image.h"
#include "sweep.h"
#include "../lib/kvmclient.h"
#include "../lib/util.h"

#define MAX_LIST 32
#define MAX_IMAGES 64		/* listed workloads and their paging-format builds */
#define MAX_AXES 32
#define MAX_VALUES 64

/* Paging formats a workload may be built in (workloads/Makefile): NAME, NAME-pae, NAME-2level. */
static const char *const formats[] = { "4level", "pae", "2level" };
#define NFORMATS 3

struct axis {
	int workload;			/* index into spec.workloads */
	char name[KL_PARAM_NAME_LEN];
	uint64_t values[MAX_VALUES];
	int nvalues;
};

struct spec {
	const char *path;
	const struct hv *hvs[MAX_LIST];
	int nhvs;
	struct image images[MAX_IMAGES];
	int nimages;
	int base[MAX_IMAGES];		/* the listed workload an image is a build of */
	bool skip[MAX_IMAGES];		/* a 4-level build the paging line leaves out */
	struct axis axes[MAX_AXES];
	int naxes;
	int vcpus[KC_MAX_VCPUS];	/* the vcpus axis: each run at each count; {1} without one */
	int nvcpus;
	uint64_t reps;
	bool seen_hv, seen_workload, seen_reps, seen_paging, seen_param, seen_vcpus;
};

static int spec_err(const struct spec *s, int line, const char *fmt, const char *arg)
{
	fprintf(stderr, "kvmlab: %s:%d: ", s->path, line);
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	return -1;
}

static char *trim(char *p)
{
	char *end;

	while (isspace((unsigned char)*p))
		p++;
	end = p + strlen(p);
	while (end > p && isspace((unsigned char)end[-1]))
		*--end = 0;
	return p;
}

/* Split a comma list into trimmed, non-empty items. */
static int split_items(const struct spec *s, int line, char *list, char **items)
{
	int n = 0;

	for (char *tok; (tok = strsep(&list, ",")) != NULL;) {
		if (n == MAX_LIST)
			return spec_err(s, line, "more than 32 items in %s", "a list");
		items[n] = trim(tok);
		if (!*items[n])
			return spec_err(s, line, "an empty item in the list%s", "");
		n++;
	}
	if (!n)
		return spec_err(s, line, "the list is empty%s", "");
	return n;
}

static int open_image(struct spec *s, int line, const char *name)
{
	char dir[PATH_MAX], path[PATH_MAX + 80];
	struct stat st;

	if (s->nimages == MAX_IMAGES)
		return spec_err(s, line, "more than 64 workload images%s", "");
	workloads_dir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/%s.boot", dir, name);
	if (stat(path, &st)) {
		snprintf(path, sizeof(path), "%s/%s.elf", dir, name);
		if (stat(path, &st))
			return spec_err(s, line, "unknown workload '%s' (see kvmlab list)", name);
	}
	snprintf(path, sizeof(path), "%s/%s.elf", dir, name);	/* image_open finds NAME.boot too */
	if (image_open(&s->images[s->nimages], path, name))
		return -1;
	s->base[s->nimages] = s->nimages;
	s->nimages++;
	return 0;
}

/*
 * "paging = 4level, pae, 2level": each listed workload built in several
 * paging formats runs in the listed ones (its NAME-pae and NAME-2level
 * images; NAME is the 4-level one). Workloads built in one format only run
 * as they are. Param lines for NAME apply to all of its builds.
 */
static int parse_paging(struct spec *s, int line, char *value)
{
	char *items[MAX_LIST], dir[PATH_MAX], path[PATH_MAX + 80];
	bool want[NFORMATS] = { false };
	int n = split_items(s, line, value, items), listed = s->nimages;

	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		int f = 0;

		while (f < NFORMATS && strcmp(items[i], formats[f]))
			f++;
		if (f == NFORMATS)
			return spec_err(s, line, "unknown paging format '%s' (4level, pae, 2level)",
					items[i]);
		want[f] = true;
	}
	workloads_dir(dir, sizeof(dir));
	for (int w = 0; w < listed; w++) {
		bool has_builds = false;

		for (int f = 1; f < NFORMATS; f++) {
			char name[80];
			struct stat st;

			snprintf(name, sizeof(name), "%s-%s", s->images[w].name, formats[f]);
			snprintf(path, sizeof(path), "%s/%s.elf", dir, name);
			if (stat(path, &st))
				continue;
			has_builds = true;
			if (!want[f])
				continue;
			if (open_image(s, line, name))
				return -1;
			s->base[s->nimages - 1] = w;
		}
		s->skip[w] = has_builds && !want[0];
	}
	return 0;
}

static int parse_hvs(struct spec *s, int line, char *value)
{
	char *items[MAX_LIST];
	int n = split_items(s, line, value, items);

	for (int i = 0; i < n; i++) {
		s->hvs[s->nhvs] = hv_find(items[i]);
		if (!s->hvs[s->nhvs++])
			return spec_err(s, line, "unknown hypervisor '%s' (see kvmlab list)", items[i]);
	}
	return n < 0 ? -1 : 0;
}

/*
 * "vcpus = 1, 2, 4": every run of the sweep at each vCPU count (the params
 * column says vcpus=N above 1). A real-mode workload runs one CPU only.
 */
static int parse_vcpus(struct spec *s, int line, char *value)
{
	char *items[MAX_LIST];
	int n = split_items(s, line, value, items);
	uint64_t v;

	for (int i = 0; i < n; i++) {
		if (s->nvcpus == KC_MAX_VCPUS || !parse_u64(items[i], &v) || v < 1 ||
		    v > KC_MAX_VCPUS)
			return spec_err(s, line, "vcpus are 1..8, each once, not '%s'", items[i]);
		s->vcpus[s->nvcpus++] = (int)v;
	}
	for (int w = 0; w < s->nimages && n > 0; w++)
		if (s->images[w].real_mode && (s->nvcpus > 1 || s->vcpus[0] > 1))
			return spec_err(s, line, "%s is a real-mode workload: it runs one vCPU",
					s->images[w].name);
	return n < 0 ? -1 : 0;
}

static int parse_workloads(struct spec *s, int line, char *value)
{
	char *items[MAX_LIST];
	int n = split_items(s, line, value, items);

	for (int i = 0; i < n; i++)
		if (open_image(s, line, items[i]))
			return -1;
	return n < 0 ? -1 : 0;
}

/* "param W.NAME = v1, v2, ..." */
static int parse_axis(struct spec *s, int line, char *key, char *value)
{
	char *dot = strchr(key, '.'), *items[MAX_LIST];
	struct axis *a = &s->axes[s->naxes];
	struct kl_param *p;
	int n;

	if (s->naxes == MAX_AXES)
		return spec_err(s, line, "more than 32 parameter axes%s", "");
	if (!dot)
		return spec_err(s, line, "'param %s' needs WORKLOAD.NAME", key);
	*dot = 0;
	a->workload = -1;
	for (int i = 0; i < s->nimages; i++)
		if (!strcmp(s->images[i].name, key))
			a->workload = i;
	if (a->workload < 0)
		return spec_err(s, line, "param for '%s', which is not in the workload list above", key);
	p = image_param(&s->images[a->workload], dot + 1);
	if (!p)
		return spec_err(s, line, "the workload has no parameter '%s' (see kvmlab list)", dot + 1);
	for (int i = 0; i < s->naxes; i++)
		if (s->axes[i].workload == a->workload && !strcmp(s->axes[i].name, p->name))
			return spec_err(s, line, "parameter '%s' is swept twice", p->name);
	snprintf(a->name, sizeof(a->name), "%s", p->name);
	n = split_items(s, line, value, items);
	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		if (!parse_u64(items[i], &a->values[i]))
			return spec_err(s, line, "'%s' is not a non-negative integer", items[i]);
		if (a->values[i] < p->min || a->values[i] > p->max) {
			char msg[160];

			snprintf(msg, sizeof(msg), "%s=%s is outside [%llu, %llu]", p->name, items[i],
				 (unsigned long long)p->min, (unsigned long long)p->max);
			return spec_err(s, line, "%s", msg);
		}
	}
	a->nvalues = n;
	s->naxes++;
	/* The same axis for the workload's other paging formats (parse_paging). */
	for (int i = 0; i < s->nimages; i++) {
		if (i == a->workload || s->base[i] != a->workload ||
		    !image_param(&s->images[i], a->name))
			continue;
		if (s->naxes == MAX_AXES)
			return spec_err(s, line, "more than 32 parameter axes%s", "");
		s->axes[s->naxes] = *a;
		s->axes[s->naxes++].workload = i;
	}
	return 0;
}

static int parse_line(struct spec *s, int line, char *text)
{
	char *eq = strchr(text, '='), *key, *value;

	if (!eq)
		return spec_err(s, line, "expected KEY = VALUE, got '%s'", text);
	*eq = 0;
	key = trim(text);
	value = trim(eq + 1);
	if (!strncmp(key, "param ", 6)) {
		if (!s->seen_workload)
			return spec_err(s, line, "'param' lines come after the workload line%s", "");
		s->seen_param = true;
		return parse_axis(s, line, trim(key + 6), value);
	}
	if (!strcmp(key, "paging")) {
		if (s->seen_paging)
			return spec_err(s, line, "'%s' is given twice", key);
		if (!s->seen_workload || s->seen_param)
			return spec_err(s, line, "'paging' comes after the workload line, "
					"before the param lines%s", "");
		s->seen_paging = true;
		return parse_paging(s, line, value);
	}
	if (!strcmp(key, "hv")) {
		if (s->seen_hv)
			return spec_err(s, line, "'%s' is given twice", key);
		s->seen_hv = true;
		return parse_hvs(s, line, value);
	}
	if (!strcmp(key, "workload")) {
		if (s->seen_workload)
			return spec_err(s, line, "'%s' is given twice", key);
		s->seen_workload = true;
		return parse_workloads(s, line, value);
	}
	if (!strcmp(key, "vcpus")) {
		if (s->seen_vcpus)
			return spec_err(s, line, "'%s' is given twice", key);
		if (!s->seen_workload)
			return spec_err(s, line, "'vcpus' comes after the workload line%s", "");
		s->seen_vcpus = true;
		s->nvcpus = 0;
		return parse_vcpus(s, line, value);
	}
	if (!strcmp(key, "reps")) {
		if (s->seen_reps)
			return spec_err(s, line, "'%s' is given twice", key);
		s->seen_reps = true;
		if (!parse_u64(value, &s->reps) || s->reps < 1 || s->reps > 1000)
			return spec_err(s, line, "reps must be 1..1000, not '%s'", value);
		return 0;
	}
	return spec_err(s, line, "unknown key '%s' (known: hv, workload, paging, vcpus, reps, "
			"param W.NAME)", key);
}

static int spec_load(struct spec *s, const char *path)
{
	FILE *f = fopen(path, "r");
	char buf[4096];
	int line = 0;

	memset(s, 0, sizeof(*s));
	s->path = path;
	s->reps = 1;
	s->vcpus[0] = 1;
	s->nvcpus = 1;
	if (!f)
		return err_errno("cannot open sweep spec %s", path);
	while (fgets(buf, sizeof(buf), f)) {
		char *text, *hash = strchr(buf, '#');

		line++;
		if (hash)
			*hash = 0;
		text = trim(buf);
		if (*text && parse_line(s, line, text)) {
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	if (!s->seen_hv || !s->seen_workload)
		return spec_err(s, line, "the spec needs an 'hv = ...' and a 'workload = ...' line%s",
				""), -1;
	return 0;
}

/* Is (hv, workload, params, rep) in runs.csv with status ok? */
static bool already_ok(char **rows, int nrows, const char *key)
{
	size_t len = strlen(key);

	for (int i = 0; i < nrows; i++)
		if (!strncmp(rows[i], key, len) && !strncmp(rows[i] + len, ",ok,", 4))
			return true;
	return false;
}

static int load_rows(const char *path, char ***rows)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	int n = 0;

	*rows = NULL;
	if (!f)
		return 0;
	while (getline(&line, &cap, f) > 0) {
		char **grown = realloc(*rows, (n + 1) * sizeof(char *));

		if (!grown)
			break;
		*rows = grown;
		(*rows)[n++] = strdup(line);
	}
	free(line);
	fclose(f);
	return n;
}

static void free_rows(char **rows, int n)
{
	for (int i = 0; i < n; i++)
		free(rows[i]);
	free(rows);
}

/* Emit every combination of workload w's axes, recursively over axes. */
static void plan_workload(struct spec *s, const struct hv *hv, int w, int axis, char **rows,
			  int nrows, FILE *out, uint64_t *total, uint64_t *done)
{
	struct image *img = &s->images[w];
	char params[512], key[1024];

	while (axis < s->naxes && s->axes[axis].workload != w)
		axis++;
	if (axis < s->naxes) {
		struct kl_param *p = image_param(img, s->axes[axis].name);
		uint64_t saved = p->value;

		for (int v = 0; v < s->axes[axis].nvalues; v++) {
			p->value = s->axes[axis].values[v];
			plan_workload(s, hv, w, axis + 1, rows, nrows, out, total, done);
		}
		p->value = saved;
		return;
	}
	for (int c = 0; c < s->nvcpus; c++) {
		img->vcpus = s->vcpus[c];
		image_params_string(img, params, sizeof(params));
		for (uint64_t rep = 1; rep <= s->reps; rep++) {
			snprintf(key, sizeof(key), "%s,%s,%s,%llu", hv->name, img->name, params,
				 (unsigned long long)rep);
			(*total)++;
			if (already_ok(rows, nrows, key))
				(*done)++;
			else if (out)
				fprintf(out, "%s\t%s\t%s\t%llu\n", hv->name, img->name, params,
					(unsigned long long)rep);
		}
	}
	img->vcpus = 1;
}

int sweep_plan(const char *spec_path, const char *dir, FILE *out)
{
	struct spec *s = calloc(1, sizeof(*s));
	char path[PATH_MAX + 16], **rows;
	uint64_t total = 0, done = 0;
	int nrows;

	if (!s)
		return err("out of memory");
	if (spec_load(s, spec_path)) {
		free(s);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/runs.csv", dir);
	nrows = load_rows(path, &rows);
	for (int h = 0; h < s->nhvs; h++)
		for (int w = 0; w < s->nimages; w++)
			if (!s->skip[w])
				plan_workload(s, s->hvs[h], w, 0, rows, nrows, out, &total, &done);
	fprintf(stderr, "sweep %s: %llu runs, %llu already done, %llu to run\n", spec_path,
		(unsigned long long)total, (unsigned long long)done,
		(unsigned long long)(total - done));
	free_rows(rows, nrows);
	for (int i = 0; i < s->nimages; i++)
		image_close(&s->images[i]);
	free(s);
	return 0;
}

/* The run a CSV row belongs to: its first four fields (hv,workload,params,rep). */
static size_t run_key_len(const char *row)
{
	const char *p = row;

	for (int commas = 0; *p; p++)
		if (*p == ',' && ++commas == 4)
			return (size_t)(p - row);
	return strlen(row);
}

static bool in_rows(char **rows, int n, const char *row)
{
	size_t len = run_key_len(row);

	for (int i = 1; i < n; i++)
		if (run_key_len(rows[i]) == len && !strncmp(rows[i], row, len))
			return true;
	return false;
}

/* dir/name := dir/name's rows not re-run in chunk/name, then chunk's rows. */
static int merge_file(const char *dir, const char *chunk, const char *name)
{
	char into[PATH_MAX + 64], from[PATH_MAX + 64], tmp[PATH_MAX + 80], **old, **add;
	int nold, nadd, rc = 0;
	FILE *f;

	snprintf(into, sizeof(into), "%s/%s", dir, name);
	snprintf(from, sizeof(from), "%s/%s", chunk, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", into);
	nadd = load_rows(from, &add);
	if (nadd == 0)
		return 0;
	nold = load_rows(into, &old);
	f = fopen(tmp, "w");
	if (!f) {
		rc = err_errno("cannot write %s", tmp);
	} else {
		fputs(add[0], f);				/* the header */
		for (int i = 1; i < nold; i++)
			if (!in_rows(add, nadd, old[i]))
				fputs(old[i], f);
		for (int i = 1; i < nadd; i++)
			fputs(add[i], f);
		if (fclose(f) || rename(tmp, into))
			rc = err_errno("cannot write %s", into);
	}
	free_rows(old, nold);
	free_rows(add, nadd);
	return rc;
}

int sweep_merge(const char *dir, const char *chunk)
{
	/* nodes.csv: which node ran each run, when the boots were Slurm array tasks. */
	static const char *const files[] = { "runs.csv", "counters.csv", "checks.csv", "nodes.csv" };
	char meta[PATH_MAX + 16], chunk_meta[PATH_MAX + 16];
	struct stat st;

	if (mkdir_p(dir))
		return -1;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (merge_file(dir, chunk, files[i]))
			return -1;
	/* The first boot's meta.json describes the sweep (machine, versions, mode). */
	snprintf(meta, sizeof(meta), "%s/meta.json", dir);
	snprintf(chunk_meta, sizeof(chunk_meta), "%s/meta.json", chunk);
	if (stat(meta, &st) && !stat(chunk_meta, &st)) {
		size_t len;
		char *text = read_file(chunk_meta, &len);
		FILE *f = text ? fopen(meta, "w") : NULL;

		if (f) {
			fwrite(text, 1, len, f);
			fclose(f);
		}
		free(text);
	}
	return 0;
}
