// SPDX-License-Identifier: GPL-2.0
/*
 * kvmlab: run guest workloads under hypervisors that speak the KVM ABI and
 * record what each one did.
 *
 *   kvmlab run --hv H[,H..] --workload W[,W..]|all [--param [W.]K=V]...
 *              [--reps N] [--mem MB] [--timeout S] [--run-id ID]
 *              [--results DIR] [--meta K=V]... [--modparam K=V]...
 *              [--dry-run] [--verbose]
 *   kvmlab fuzz ioctl [--seed S] [--calls N] [--threads T]
 *   kvmlab fuzz mmu --hv H[,H..] [--oracle H] [--seed S] [--ops N] [--mem MB]
 *   kvmlab sweep-plan SPEC RUN_DIR [--check]   (what ./kvmlab sweep still has to run)
 *   kvmlab sweep-merge RUN_DIR CHUNK_DIR
 *   kvmlab list
 *   kvmlab table RUN_DIR
 *   kvmlab plot RUN_DIR
 *
 * This program always runs where it is started. The ./kvmlab script at the
 * top of the repository boots the test machine and runs it there.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include "boot_cmd.h"
#include "fuzz.h"
#include "hv.h"
#include "image.h"
#include "kmsg.h"
#include "pmu.h"
#include "results.h"
#include "sweep.h"
#include "util.h"
#include "vm.h"

#define MAX_ITEMS 32
#define EXIT_USAGE 2

struct options {
	const struct hv *hvs[MAX_ITEMS];
	int nhvs;
	struct image *images;
	int nimages;
	char *params[MAX_ITEMS];
	int nparams;
	char *meta[MAX_ITEMS];
	int nmeta;
	char *modparams[MAX_ITEMS + 1];
	int nmodparams;
	uint64_t reps, mem_mb, timeout_s;
	char run_id[128];
	const char *results_dir;
	char workloads_dir[PATH_MAX];
	bool dry_run, verbose;
	const char *plan;		/* --plan: exactly the runs listed (sweeps) */
	uint64_t progress_done, progress_total;	/* --progress D/T: where in a sweep */
	int argc;
	char **argv;
};

static int usage(void)
{
	fprintf(stderr,
		"usage: kvmlab run --hv H[,H...] --workload W[,W...]|all [--param [W.]K=V]...\n"
		"                  [--reps N] [--mem MB] [--timeout S] [--run-id ID]\n"
		"                  [--results DIR] [--meta K=V]... [--modparam K=V]... [--dry-run] [--verbose]\n"
		"       kvmlab boot --hv H --kernel FILE [--initrd FILE] [--append STR] [--mem MB]\n"
		"                   [--timeout S] [--apic]\n"
		"       kvmlab fuzz ioctl [--seed S] [--calls N] [--threads T]\n"
		"       kvmlab fuzz mmu --hv H[,H...] [--oracle H] [--seed S] [--ops N] [--mem MB]\n"
		"       kvmlab list | table RUN_DIR | plot RUN_DIR | report RUN_DIR\n"
		"       kvmlab sweep-plan SPEC RUN_DIR [--check] | sweep-merge RUN_DIR CHUNK_DIR\n"
		"       ./kvmlab (the script) runs this inside the test machine; --native here\n");
	return EXIT_USAGE;
}

/* Names of the workload images in dir, sorted. */
static int list_workloads(const char *dir, char names[][64], int max)
{
	struct dirent **ents;
	int n = scandir(dir, &ents, NULL, alphasort), count = 0;

	if (n < 0)
		return err_errno("cannot list workloads in %s", dir);
	for (int i = 0; i < n; i++) {
		size_t len = strlen(ents[i]->d_name);

		size_t stem = len > 5 && !strcmp(ents[i]->d_name + len - 5, ".boot") ? len - 5 :
			      len > 4 && !strcmp(ents[i]->d_name + len - 4, ".elf") ? len - 4 : 0;

		if (stem && stem < 64 && count < max) {
			memcpy(names[count], ents[i]->d_name, stem);
			names[count++][stem] = 0;
		}
		free(ents[i]);
	}
	free(ents);
	return count;
}

static int open_workloads(struct options *o, char *list)
{
	char names[MAX_ITEMS][64], *items[MAX_ITEMS + 1];
	int avail = list_workloads(o->workloads_dir, names, MAX_ITEMS), n;

	if (avail < 0)
		return -1;
	if (!strcmp(list, "all")) {
		for (n = 0; n < avail; n++)
			items[n] = names[n];
	} else if ((n = split_list(list, items, MAX_ITEMS)) <= 0) {
		return err("--workload needs at least one name");
	}
	o->images = calloc(n, sizeof(*o->images));
	if (!o->images)
		return err("out of memory");
	for (int i = 0; i < n; i++) {
		char path[PATH_MAX + 80];
		bool known = false;

		for (int a = 0; a < avail; a++)
			known |= !strcmp(names[a], items[i]);
		if (!known) {
			err("unknown workload '%s' (known:", items[i]);
			for (int a = 0; a < avail; a++)
				fprintf(stderr, " %s", names[a]);
			fprintf(stderr, ")\n");
			return -1;
		}
		snprintf(path, sizeof(path), "%s/%s.elf", o->workloads_dir, items[i]);
		if (image_open(&o->images[o->nimages], path, items[i]))
			return -1;
		if (!strcmp(list, "all") &&
		    (o->images[o->nimages].tool || o->images[o->nimages].not_in_all)) {
			image_close(&o->images[o->nimages]);	/* a tool, or a whole OS */
			continue;
		}
		o->nimages++;
	}
	return 0;
}

static int parse_hvs(struct options *o, char *list)
{
	char *items[MAX_ITEMS + 1];
	int n = split_list(list, items, MAX_ITEMS);

	if (n <= 0)
		return err("--hv needs at least one name");
	for (int i = 0; i < n; i++) {
		o->hvs[i] = hv_find(items[i]);
		if (!o->hvs[i]) {
			err("unknown hypervisor '%s' (known:", items[i]);
			for (int k = 0; hv_at(k); k++)
				fprintf(stderr, " %s", hv_at(k)->name);
			fprintf(stderr, ")\n");
			return -1;
		}
	}
	o->nhvs = n;
	return 0;
}

/* "[workload.]name=value": set in every selected workload that has it. */
static int apply_param(struct options *o, const char *spec)
{
	char buf[256], *eq, *name, *scope = NULL;
	uint64_t v;
	int hits = 0;

	snprintf(buf, sizeof(buf), "%s", spec);
	eq = strchr(buf, '=');
	if (!eq || eq == buf)
		return err("--param '%s' is not NAME=VALUE", spec);
	*eq = 0;
	name = buf;
	if (strchr(name, '.')) {
		scope = name;
		name = strchr(name, '.');
		*name++ = 0;
	}
	if (!parse_u64(eq + 1, &v))
		return err("--param %s: '%s' is not a non-negative integer", spec, eq + 1);
	for (int i = 0; i < o->nimages; i++) {
		struct kl_param *p;

		if (scope && strcmp(scope, o->images[i].name))
			continue;
		p = image_param(&o->images[i], name);
		if (!p)
			continue;
		if (v < p->min || v > p->max)
			return err("--param %s: %s.%s must be in [%llu, %llu]", spec,
				   o->images[i].name, name, (unsigned long long)p->min,
				   (unsigned long long)p->max);
		p->value = v;
		hits++;
	}
	if (!hits)
		return err("--param %s: no selected workload has a parameter '%s' (see 'kvmlab list')",
			   spec, name);
	return 0;
}

static int parse_run(struct options *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "hv", required_argument, NULL, 'h' },
		{ "workload", required_argument, NULL, 'w' },
		{ "param", required_argument, NULL, 'p' },
		{ "reps", required_argument, NULL, 'r' },
		{ "mem", required_argument, NULL, 'm' },
		{ "timeout", required_argument, NULL, 't' },
		{ "run-id", required_argument, NULL, 'i' },
		{ "results", required_argument, NULL, 'o' },
		{ "workloads", required_argument, NULL, 'W' },
		{ "meta", required_argument, NULL, 'M' },
		{ "modparam", required_argument, NULL, 'P' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "native", no_argument, NULL, 'N' },
		{ "plan", required_argument, NULL, 'L' },
		{ "progress", required_argument, NULL, 'G' },
		{ NULL, 0, NULL, 0 },
	};
	char *hv_list = NULL, *wl_list = NULL;
	int c;

	o->reps = 1;
	o->mem_mb = 128;
	o->timeout_s = 300;
	o->results_dir = "results";
	workloads_dir(o->workloads_dir, sizeof(o->workloads_dir));
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': hv_list = optarg; break;
		case 'w': wl_list = optarg; break;
		case 'p':
		case 'M':
			if ((c == 'p' ? o->nparams : o->nmeta) == MAX_ITEMS)
				return err("too many --%s options", c == 'p' ? "param" : "meta");
			if (c == 'p')
				o->params[o->nparams++] = optarg;
			else
				o->meta[o->nmeta++] = optarg;
			break;
		case 'r':
		case 'm':
		case 't': {
			uint64_t *dst = c == 'r' ? &o->reps : c == 'm' ? &o->mem_mb : &o->timeout_s;

			if (!parse_u64(optarg, dst) || *dst == 0 || *dst > 65536)
				return err("--%s needs a number from 1 to 65536, not '%s'",
					   c == 'r' ? "reps" : c == 'm' ? "mem" : "timeout", optarg);
			break;
		}
		case 'P':
			if (o->nmodparams == MAX_ITEMS)
				return err("too many --modparam options");
			if (!strchr(optarg, '=') || strchr(optarg, ' ') || *optarg == '=')
				return err("--modparam '%s' is not NAME=VALUE", optarg);
			o->modparams[o->nmodparams++] = optarg;
			break;
		case 'i':
			if (!*optarg || strchr(optarg, '/') || strlen(optarg) >= sizeof(o->run_id))
				return err("--run-id must be a plain name");
			snprintf(o->run_id, sizeof(o->run_id), "%s", optarg);
			break;
		case 'o': o->results_dir = optarg; break;
		case 'W': snprintf(o->workloads_dir, sizeof(o->workloads_dir), "%s", optarg); break;
		case 'n': o->dry_run = true; break;
		case 'v': o->verbose = true; break;
		case 'N': break;
		case 'L': o->plan = optarg; break;
		case 'G': {
			unsigned long long d, t;
			char end;

			if (sscanf(optarg, "%llu/%llu%c", &d, &t, &end) != 2 || d > t)
				return err("--progress needs DONE/TOTAL, not '%s'", optarg);
			o->progress_done = d;
			o->progress_total = t;
			break;
		}
		default:
			return err("unknown or incomplete option '%s' (try 'kvmlab run --help'?)",
				   argv[optind - 1]);
		}
	}
	if (optind < argc)
		return err("unexpected argument '%s'", argv[optind]);
	if (o->plan && (hv_list || wl_list || o->nparams))
		return err("--plan lists the runs: no --hv, --workload or --param with it");
	if (o->plan)
		goto run_id;
	if (!hv_list || !wl_list)
		return err("run needs --hv and --workload");
	if (parse_hvs(o, hv_list) || open_workloads(o, wl_list))
		return -1;
	for (int i = 0; i < o->nparams; i++)
		if (apply_param(o, o->params[i]))
			return -1;
run_id:
	if (!o->run_id[0]) {
		time_t t = time(NULL);

		strftime(o->run_id, sizeof(o->run_id), "%Y%m%d-%H%M%S", gmtime(&t));
	}
	return 0;
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void cpu_model(char *out, size_t size)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];

	snprintf(out, size, "unknown");
	while (f && fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
			snprintf(out, size, "%s", strchr(line, ':') + 2);
			out[strcspn(out, "\n")] = 0;
			break;
		}
	}
	if (f)
		fclose(f);
}

static int write_meta(const struct options *o, const char *dir, int failed, int total)
{
	char path[4200], cpu[256], params[512], stamp[64];
	struct utsname u;
	time_t t = time(NULL);
	FILE *f;

	snprintf(path, sizeof(path), "%s/meta.json", dir);
	f = fopen(path, "w");
	if (!f)
		return err_errno("cannot write %s", path);
	uname(&u);
	cpu_model(cpu, sizeof(cpu));
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	fprintf(f, "{\n  \"run_id\": ");
	json_str(f, o->run_id);
	fprintf(f, ",\n  \"finished\": \"%s\",\n  \"kernel\": ", stamp);
	json_str(f, u.release);
	fprintf(f, ",\n  \"machine\": ");
	json_str(f, u.machine);
	fprintf(f, ",\n  \"cpu\": ");
	json_str(f, cpu);
	fprintf(f, ",\n  \"reps\": %llu,\n  \"guest_mem_mb\": %llu,\n  \"runs\": %d,\n  \"runs_failed\": %d,\n",
		(unsigned long long)o->reps, (unsigned long long)o->mem_mb, total, failed);
	fprintf(f, "  \"hypervisors\": [");
	for (int i = 0; i < o->nhvs; i++) {
		fprintf(f, "%s{\"name\": ", i ? ", " : "");
		json_str(f, o->hvs[i]->name);
		fprintf(f, ", \"device\": ");
		json_str(f, o->hvs[i]->device);
		fprintf(f, ", \"module\": ");
		json_str(f, o->hvs[i]->module ? o->hvs[i]->module : "");
		fprintf(f, ", \"module_params\": ");
		json_str(f, o->hvs[i]->params ? o->hvs[i]->params : "");
		fprintf(f, "}");
	}
	fprintf(f, "],\n  \"host_counters\": ");
	json_str(f, pmu_status()[0] ? pmu_status() : "available (libpfm4, perf_event_open)");
	fprintf(f, ",\n  \"module_params_extra\": [");
	for (int i = 0; i < o->nmodparams; i++) {
		fprintf(f, "%s", i ? ", " : "");
		json_str(f, o->modparams[i]);
	}
	fprintf(f, "],\n  \"workloads\": {");
	for (int i = 0; i < o->nimages; i++) {
		image_params_string(&o->images[i], params, sizeof(params));
		fprintf(f, "%s", i ? ", " : "");
		json_str(f, o->images[i].name);
		fprintf(f, ": ");
		json_str(f, params);
	}
	fprintf(f, "},\n  \"argv\": [");
	for (int i = 0; i < o->argc; i++) {
		fprintf(f, "%s", i ? ", " : "");
		json_str(f, o->argv[i]);
	}
	fprintf(f, "]");
	for (int i = 0; i < o->nmeta; i++) {
		char key[128];
		const char *eq = strchr(o->meta[i], '=');

		if (!eq)
			continue;
		snprintf(key, sizeof(key), "%.*s", (int)(eq - o->meta[i]), o->meta[i]);
		fprintf(f, ",\n  ");
		json_str(f, key);
		fprintf(f, ": ");
		json_str(f, eq + 1);
	}
	fprintf(f, "\n}\n");
	return fclose(f) ? err_errno("cannot write %s", path) : 0;
}

static void print_run_line(int n, int total, const struct run_key *k,
			   const struct run_result *r, double secs)
{
	int passed = 0;

	for (int i = 0; i < r->nchecks; i++)
		passed += r->checks[i].pass;
	printf("[%d/%d] %-11s %-10s rep %d: %-7s %6.2f s", n, total, k->hv, k->workload,
	       k->rep, r->status, secs);
	if (r->nchecks)
		printf("  checks %d/%d", passed, r->nchecks);
	if (r->measured)
		printf("  ops %llu", (unsigned long long)r->ops);
	if (strcmp(r->status, "ok") && r->detail[0])
		printf("  (%s)", r->detail);
	printf("\n");
	for (int i = 0; i < r->nchecks; i++)
		if (!r->checks[i].pass)
			printf("      %s %s: %s\n",
			       r->checks[i].known_deviation ? "XFAIL (known platform deviation)" : "FAIL",
			       r->checks[i].name, r->checks[i].detail);
	fflush(stdout);
}

/* A run whose kernel log went bad is failed, whatever the guest said. */
static void apply_kmsg(int kfd, struct run_result *r)
{
	char bad[256];

	kmsg_check(kfd, bad, sizeof(bad));
	if (bad[0]) {
		snprintf(r->status, sizeof(r->status), "kernel");
		snprintf(r->detail, sizeof(r->detail), "kernel log: %s", bad);
	}
}

/* One run of img under hv (already prepared): record it, print its line as shown/of. */
static int run_one(const struct options *o, const struct hv *hv, struct image *img,
		   const struct run_key *key, struct results *res, int kfd, int shown, int of,
		   struct run_result *r)
{
	struct run_config cfg = {
		.device = hv->device, .vm_type = hv->vm_type, .mem_bytes = o->mem_mb << 20,
		.timeout_s = (unsigned int)o->timeout_s, .verbose = o->verbose,
		.known_deviations = hv_known_deviations(hv),
	};
	uint64_t t0 = now_ns();

	if (vm_run(&cfg, img, r))
		return -1;
	apply_kmsg(kfd, r);
	results_add(res, key, r);
	print_run_line(shown, of, key, r, (now_ns() - t0) / 1e9);
	return 0;
}

static int run_hv(struct options *o, int h, struct results *res, int kfd, int *n, int total,
		  int *failed)
{
	const struct hv *hv = o->hvs[h];
	struct run_result *r = malloc(sizeof(*r));
	int rc = 0;

	if (!r)
		return err("out of memory");
	if (hv_prepare(hv, o->modparams)) {
		free(r);
		return -1;
	}
	for (int w = 0; w < o->nimages && !rc; w++) {
		char params[512];

		image_params_string(&o->images[w], params, sizeof(params));
		for (uint64_t rep = 1; rep <= o->reps && !rc; rep++) {
			struct run_key key = { hv->name, o->images[w].name, params, (int)rep };

			rc = run_one(o, hv, &o->images[w], &key, res, kfd, ++*n, total, r);
			*failed += !rc && strcmp(r->status, "ok") != 0;
		}
	}
	free(r);
	return rc;
}

/* "k=v;k=v" (runs.csv's params column) onto img's parameters. */
static int set_params_string(struct image *img, const char *params)
{
	char buf[512], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", params);
	for (char *kv = strtok_r(buf, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
		char *eq = strchr(kv, '=');
		struct kl_param *p;
		uint64_t v;

		if (!eq)
			return err("plan: '%s' is not NAME=VALUE", kv);
		*eq = 0;
		p = image_param(img, kv);
		if (!p || !parse_u64(eq + 1, &v) || v < p->min || v > p->max)
			return err("plan: bad parameter %s=%s for %s", kv, eq + 1, img->name);
		p->value = v;
	}
	return 0;
}

/* The plan's workload `name`, opened on first use. */
static struct image *plan_image(struct options *o, const char *name)
{
	char path[PATH_MAX + 80];

	for (int i = 0; i < o->nimages; i++)
		if (!strcmp(o->images[i].name, name))
			return &o->images[i];
	if (!o->images && !(o->images = calloc(MAX_ITEMS, sizeof(*o->images)))) {
		err("out of memory");
		return NULL;
	}
	if (o->nimages == MAX_ITEMS) {
		err("plan: more than %d workloads", MAX_ITEMS);
		return NULL;
	}
	snprintf(path, sizeof(path), "%s/%s.elf", o->workloads_dir, name);
	if (image_open(&o->images[o->nimages], path, name))
		return NULL;
	return &o->images[o->nimages++];
}

/* Where the sweep stands, and its time left at this boot's pace. */
static void print_progress(const struct options *o, uint64_t ran, uint64_t t0)
{
	double secs = (now_ns() - t0) / 1e9;
	uint64_t done = o->progress_done + ran, left = o->progress_total - done;
	unsigned long eta = (unsigned long)(secs / ran * left + 0.5);

	printf("      sweep: %llu of %llu runs done; this boot %.0f s; about %lum%02lus left\n",
	       (unsigned long long)done, (unsigned long long)o->progress_total, secs,
	       eta / 60, eta % 60);
}

/* run --plan FILE: each line "hv TAB workload TAB params TAB rep", in order. */
static int run_plan(struct options *o, struct results *res, int kfd, int *n, int *total,
		    int *failed)
{
	FILE *f = fopen(o->plan, "r");
	char line[1024];
	const struct hv *loaded = NULL;
	struct run_result *r = malloc(sizeof(*r));
	uint64_t t0 = now_ns();
	struct run_key key;
	int rc = 0, of;

	if (!f || !r) {
		free(r);
		return err_errno("cannot read plan %s", o->plan);
	}
	while (fgets(line, sizeof(line), f))
		*total += line[0] != '\n' && line[0] != '#';
	of = (int)(o->progress_total ? o->progress_total : (uint64_t)*total);
	rewind(f);
	while (!rc && fgets(line, sizeof(line), f)) {
		char *hv_name = strtok(line, "\t"), *wl = strtok(NULL, "\t");
		char *params = strtok(NULL, "\t"), *rep_s = strtok(NULL, "\t\n");
		const struct hv *hv = hv_name ? hv_find(hv_name) : NULL;
		struct image *img;
		uint64_t rep;

		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (!hv || !wl || !params || !rep_s || !parse_u64(rep_s, &rep)) {
			rc = err("plan %s: malformed line", o->plan);
			break;
		}
		img = plan_image(o, wl);
		if (!img || set_params_string(img, params)) {
			rc = -1;
			break;
		}
		if (hv != loaded && hv_prepare(hv, o->modparams)) {
			rc = -1;
			break;
		}
		if (hv != loaded && o->nhvs < MAX_ITEMS)
			o->hvs[o->nhvs++] = hv;		/* for meta.json */
		loaded = hv;
		key = (struct run_key) { hv->name, img->name, params, (int)rep };
		++*n;
		rc = run_one(o, hv, img, &key, res, kfd, (int)o->progress_done + *n, of, r);
		if (rc)
			break;
		if (o->progress_total)
			print_progress(o, (uint64_t)*n, t0);
		*failed += strcmp(r->status, "ok") != 0;
	}
	fclose(f);
	free(r);
	return rc;
}

static int cmd_run(int argc, char **argv)
{
	struct options o = { .argc = argc, .argv = argv };
	struct results res;
	char dir[4096];
	int n = 0, failed = 0, total, kfd, rc = 0;

	if (parse_run(&o, argc, argv))
		return EXIT_USAGE;
	total = o.nhvs * o.nimages * (int)o.reps;
	if (o.dry_run && o.plan) {
		printf("kvmlab: runs from the plan %s\n", o.plan);
		return 0;
	}
	if (o.dry_run) {
		printf("kvmlab: %d runs (%d hypervisors x %d workloads x %llu reps)\n", total,
		       o.nhvs, o.nimages, (unsigned long long)o.reps);
		return 0;
	}
	snprintf(dir, sizeof(dir), "%s/%s", o.results_dir, o.run_id);
	if (results_open(&res, dir))
		return 1;
	kfd = kmsg_open();
	if (o.plan)
		rc = run_plan(&o, &res, kfd, &n, &total, &failed);
	else
		for (int h = 0; h < o.nhvs && !rc; h++)
			rc = run_hv(&o, h, &res, kfd, &n, total, &failed);
	hv_unload_all();
	if (kfd >= 0) {
		struct run_result tail = { .status = "ok" };

		apply_kmsg(kfd, &tail);	/* unloading can complain too */
		if (strcmp(tail.status, "ok"))
			rc = err("%s", tail.detail);
	}
	if (results_close(&res) || write_meta(&o, dir, failed + (total - n), total))
		rc = -1;
	results_print_table(dir);
	printf("\nresults: %s (%d of %d runs ok)\n", dir, n - failed, total);
	return rc || failed || n < total ? 1 : 0;
}

static int cmd_list(void)
{
	char dir[PATH_MAX], names[MAX_ITEMS][64];
	int n;

	printf("hypervisors:\n");
	for (int i = 0; hv_at(i); i++)
		printf("  %-12s %s\n", hv_at(i)->name, hv_at(i)->about);
	workloads_dir(dir, sizeof(dir));
	n = list_workloads(dir, names, MAX_ITEMS);
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
				      .mem_mb = 64, .timeout_s = 3000 };
	uint64_t timeout = o.timeout_s;
	bool dry_run = false;

	for (int i = 2; i < argc; i++) {
		uint64_t *dst = !strcmp(argv[i], "--seed") ? &o.seed : !strcmp(argv[i], "--ops") ? &o.ops :
				!strcmp(argv[i], "--mem") ? &o.mem_mb :
				!strcmp(argv[i], "--timeout") ? &timeout : NULL;

		if (!strcmp(argv[i], "--native"))
			continue;
		if (!strcmp(argv[i], "--dry-run")) {
			dry_run = true;
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
		return err("usage: kvmlab fuzz mmu --hv H[,H...] [--oracle H] [--seed S] [--ops N] "
			   "[--mem MB] [--timeout S]"), EXIT_USAGE;
	if (!o.oracle->hw_paging)
		return err("fuzz mmu: the oracle must use nested paging (%s does not)",
			   o.oracle->name), EXIT_USAGE;
	if (o.ops == 0 || o.ops > 100000000 || o.mem_mb < 16 || o.mem_mb > 4096 ||
	    timeout == 0 || timeout > 86400)
		return err("fuzz mmu: --ops 1..100000000, --mem 16..4096, --timeout 1..86400"),
		       EXIT_USAGE;
	o.timeout_s = (unsigned int)timeout;
	if (dry_run)
		return 0;
	return fuzz_mmu(&o) ? 1 : 0;
}

static int cmd_fuzz(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "ioctl"))
		return cmd_fuzz_ioctl(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "mmu"))
		return cmd_fuzz_mmu(argc, argv);
	err("usage: kvmlab fuzz ioctl [--seed S] [--calls N] [--threads T]\n"
	    "       kvmlab fuzz mmu --hv H[,H...] [--oracle H] [--seed S] [--ops N]");
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
		return sweep_plan(argv[2], argv[3], argc == 5 && !strcmp(argv[4], "--check") ?
				  NULL : stdout) ? EXIT_USAGE : 0;
	if (!strcmp(argv[1], "sweep-merge") && argc == 4)
		return sweep_merge(argv[2], argv[3]) ? 1 : 0;
	if (!strcmp(argv[1], "table") && argc == 3)
		return results_print_table(argv[2]) ? 1 : 0;
	if (!strcmp(argv[1], "report") && argc == 3)
		return results_report(argv[2]) ? 1 : 0;
	if (!strcmp(argv[1], "plot") && argc == 3)
		return results_plot(argv[2]) ? 1 : 0;
	err("unknown command '%s'", argv[1]);
	return usage();
}
