// SPDX-License-Identifier: GPL-2.0
/*
 * kvmlab run: hypervisors x workloads x parameters x repetitions, one
 * fresh VM per run (run/vm.c), results as CSV and a summary table
 * (experiment/results.c); with --plan, exactly the runs a sweep lists.
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
#include "../devices/fb.h"
#include "../experiment/hv.h"
#include "../loaders/image.h"
#include "../experiment/kmsg.h"
#include "../experiment/pmu.h"
#include "../experiment/results.h"
#include "../experiment/sweep.h"
#include "../lib/kvmclient.h"
#include "../lib/util.h"
#include "../run/vm.h"
#include "commands.h"

#define MAX_ITEMS 32

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
	uint64_t reps, mem_mb, timeout_s, dirty_log_ms, fb_fps, vcpus, hop_exits;
	int fb_mode;
	const char *fb_snapshot;
	char run_id[128];
	const char *results_dir;
	char workloads_dir[PATH_MAX];
	bool dry_run, verbose;
	const char *plan;		/* --plan: exactly the runs listed (sweeps) */
	uint64_t progress_done, progress_total;	/* --progress D/T: where in a sweep */
	int argc;
	char **argv;
};

static int open_workloads(struct options *o, char *list)
{
	static char names[MAX_WORKLOADS][64];
	char *items[MAX_WORKLOADS + 1];
	int avail = image_list(o->workloads_dir, names, MAX_WORKLOADS), n;

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
		o->images[o->nimages].vcpus = (int)o->vcpus;
		if (o->vcpus > 1 && o->images[o->nimages].real_mode)
			return err("--vcpus %d: %s is a real-mode workload, which runs one CPU",
				   (int)o->vcpus, items[i]);
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
		{ "dirty-log", required_argument, NULL, 'D' },
		{ "fb", required_argument, NULL, 'F' },
		{ "fb-fps", required_argument, NULL, 'S' },
		{ "fb-snapshot", required_argument, NULL, 'K' },
		{ "vcpus", required_argument, NULL, 'U' },
		{ "hop-exits", required_argument, NULL, 'H' },
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
		case 'F':
			o->fb_mode = fb_parse_mode(optarg);
			if (o->fb_mode < 0)
				return err("--fb is mmio or dirty, not '%s'", optarg);
			break;
		case 'S':
			if (!parse_u64(optarg, &o->fb_fps) || !o->fb_fps || o->fb_fps > 1000)
				return err("--fb-fps needs 1 to 1000, not '%s'", optarg);
			break;
		case 'K': o->fb_snapshot = optarg; break;
		case 'U':
			if (!parse_u64(optarg, &o->vcpus) || !o->vcpus || o->vcpus > KC_MAX_VCPUS)
				return err("--vcpus needs 1 to %d, not '%s'", KC_MAX_VCPUS, optarg);
			break;
		case 'H':
			if (!parse_u64(optarg, &o->hop_exits) || !o->hop_exits ||
			    o->hop_exits > 1000000000)
				return err("--hop-exits needs a count from 1 to 1000000000, not '%s'",
					   optarg);
			break;
		case 'D':
			if (!parse_u64(optarg, &o->dirty_log_ms) || !o->dirty_log_ms ||
			    o->dirty_log_ms > 60000)
				return err("--dirty-log needs a period from 1 to 60000 ms, not '%s'",
					   optarg);
			break;
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
	if ((o->fb_fps || o->fb_snapshot) && !o->fb_mode)
		return err("--fb-fps and --fb-snapshot need --fb mmio|dirty");
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
	/* Which hardware virtualization ran the runs: kvm-npt and kvmlab-npt mean NPT or EPT. */
	fprintf(f, ",\n  \"virtualization\": \"%s\"",
		hv_cpu_is_intel() ? "Intel VT-x (nested paging: EPT)" : "AMD SVM (nested paging: NPT)");
	if (o->dirty_log_ms)
		fprintf(f, ",\n  \"dirty_log_ms\": %llu", (unsigned long long)o->dirty_log_ms);
	if (o->hop_exits)
		fprintf(f, ",\n  \"hop_exits\": %llu", (unsigned long long)o->hop_exits);
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
		.dirty_log_ms = (unsigned int)o->dirty_log_ms,
		.hop_exits = (unsigned int)o->hop_exits,
		.fb_mode = o->fb_mode, .fb_fps = (unsigned int)o->fb_fps,
		.fb_snapshot = o->fb_snapshot, .vcpus = img->vcpus,
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
		if (img)
			img->vcpus = 1;		/* unless the params say vcpus=N */
		if (!img || image_set_params(img, params)) {
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

int cmd_run(int argc, char **argv)
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

