// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz mmu: the host half of the differential MMU fuzzer.
 *
 * The guest (workloads/mmufuzz.c) turns a seed into page-table graphs and
 * accesses, and folds what it observes into a checksum, printing it every
 * 1000 ops. We run it once under the oracle (a nested-paging hypervisor:
 * the CPU walks the guest's tables itself) and once under each hypervisor
 * named; every checkpoint must agree. When one does not, the two are run
 * again up to that checkpoint with tracing on from the previous one, and
 * the first op whose trace differs is printed with the ops before it: the
 * seed and that op number reproduce it.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz.h"
#include "../experiment/hv.h"
#include "../loaders/image.h"
#include "../lib/util.h"
#include "../run/vm.h"

#define CONTEXT_LINES 12

struct checkpoint {
	uint64_t op, checksum;
};

struct fuzz_log {
	struct checkpoint *ckpt;
	size_t nckpt, ckpt_cap;
	char **trace;
	size_t ntrace, trace_cap;
	struct run_result result;
};

static void grow(void **p, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return;
	*cap = *cap ? *cap * 2 : 256;
	*p = realloc(*p, *cap * size);
	if (!*p) {
		err("out of memory");
		exit(1);
	}
}

static void on_note(void *ctx, const char *text)
{
	struct fuzz_log *log = ctx;
	unsigned long long op, sum;

	if (sscanf(text, "checkpoint %llu %llx", &op, &sum) == 2) {
		grow((void **)&log->ckpt, &log->ckpt_cap, log->nckpt, sizeof(*log->ckpt));
		log->ckpt[log->nckpt++] = (struct checkpoint) { op, sum };
	} else if (!strncmp(text, "op ", 3)) {
		grow((void **)&log->trace, &log->trace_cap, log->ntrace, sizeof(char *));
		log->trace[log->ntrace++] = strdup(text);
	}
}

static void log_free(struct fuzz_log *log)
{
	for (size_t i = 0; i < log->ntrace; i++)
		free(log->trace[i]);
	free(log->trace);
	free(log->ckpt);
	memset(log, 0, sizeof(*log));
}

static int set_param(struct image *img, const char *name, uint64_t value)
{
	struct kl_param *p = image_param(img, name);

	if (!p || value < p->min || value > p->max)
		return err("fuzz mmu: %s=%llu is out of range", name, (unsigned long long)value);
	p->value = value;
	return 0;
}

/* One run of the fuzzer under hv; false when it did not run to the end. */
static bool fuzz_run(const struct hv *hv, struct image *img, const struct fuzz_mmu_options *o,
		     uint64_t ops, uint64_t trace_from, struct fuzz_log *log)
{
	struct run_config cfg = {
		.device = hv->device, .vm_type = hv->vm_type, .mem_bytes = o->mem_mb << 20,
		.timeout_s = o->timeout_s, .known_deviations = hv_known_deviations(hv),
		.on_note = on_note, .note_ctx = log, .vcpus = o->vcpus,
	};

	log_free(log);
	if (set_param(img, "seed", o->seed) || set_param(img, "ops", ops) ||
	    set_param(img, "trace_from", trace_from) || hv_prepare(hv, NULL))
		return false;
	if (vm_run(&cfg, img, &log->result))
		return false;
	if (strcmp(log->result.status, "ok")) {
		printf("  %s: the fuzzer did not finish: %s %s\n", hv->name, log->result.status,
		       log->result.detail);
		return false;
	}
	return true;
}

/* Index of the first checkpoint that differs; -1 when none does. */
static long first_difference(const struct fuzz_log *a, const struct fuzz_log *b)
{
	size_t n = a->nckpt < b->nckpt ? a->nckpt : b->nckpt;

	for (size_t i = 0; i < n; i++)
		if (a->ckpt[i].op != b->ckpt[i].op || a->ckpt[i].checksum != b->ckpt[i].checksum)
			return (long)i;
	return a->nckpt == b->nckpt && a->result.checksum == b->result.checksum ? -1 : (long)n;
}

static void show_divergence(const struct hv *oracle, const struct hv *hv,
			    const struct fuzz_log *a, const struct fuzz_log *b,
			    const struct fuzz_mmu_options *o, uint64_t ops)
{
	size_t i = 0, from;
	unsigned long long op = 0;

	while (i < a->ntrace && i < b->ntrace && !strcmp(a->trace[i], b->trace[i]))
		i++;
	if (i == a->ntrace && i == b->ntrace && !strcmp(b->result.status, "ok")) {
		printf("  the traces agree but the checksums do not (a difference in what the trace "
		       "does not print)\n");
		return;
	}
	sscanf(i < a->ntrace ? a->trace[i] : b->trace[i], "op %llu", &op);
	from = i > CONTEXT_LINES ? i - CONTEXT_LINES : 0;
	printf("  first difference at op %llu; the ops before it, then both versions:\n", op);
	for (size_t k = from; k < i; k++)
		printf("      %s\n", a->trace[k]);
	printf("    %-14s %s\n", oracle->name, i < a->ntrace ? a->trace[i] : "(no more ops)");
	if (i < b->ntrace)
		printf("    %-14s %s\n", hv->name, b->trace[i]);
	else
		printf("    %-14s (no more ops: %s %s)\n", hv->name, b->result.status,
		       b->result.detail);
	printf("  reproduce: kvmlab fuzz mmu --hv %s --oracle %s --paging %s%s --seed %llu "
	       "--ops %llu\n", hv->name, oracle->name, o->paging, o->vcpus > 1 ? " --vcpus 2" : "",
	       (unsigned long long)o->seed,
	       op ? op : (unsigned long long)ops);
}

/* Runs hv against the oracle's log; true when they agree. */
static bool compare_with(const struct hv *oracle, const struct hv *hv, struct image *img,
			 const struct fuzz_mmu_options *o, struct fuzz_log *ref)
{
	struct fuzz_log got = {0}, ref_trace = {0}, got_trace = {0};
	uint64_t from, to;
	bool finished = fuzz_run(hv, img, o, o->ops, 0, &got);
	long i = first_difference(ref, &got);

	if (finished && i < 0) {
		printf("%s: seed %llu: %llu ops, 0 mismatches (%llu checkpoints agree with %s)\n",
		       hv->name, (unsigned long long)o->seed, (unsigned long long)o->ops,
		       (unsigned long long)ref->nckpt, oracle->name);
		log_free(&got);
		return true;
	}
	/* A run that failed is judged by the checkpoints it reached. */
	if (i < 0)
		i = (long)got.nckpt;
	from = i > 0 ? ref->ckpt[i - 1].op + 1 : 1;
	to = (size_t)i < ref->nckpt ? ref->ckpt[i].op : o->ops;
	printf("%s: seed %llu: 1 mismatch: the log differs from %s's between op %llu and op %llu%s\n",
	       hv->name, (unsigned long long)o->seed, oracle->name, (unsigned long long)from,
	       (unsigned long long)to, finished ? "" : " (where the run stopped)");
	if (fuzz_run(oracle, img, o, to, from, &ref_trace)) {
		fuzz_run(hv, img, o, to, from, &got_trace);
		show_divergence(oracle, hv, &ref_trace, &got_trace, o, to);
	}
	log_free(&got);
	log_free(&ref_trace);
	log_free(&got_trace);
	return false;
}

int fuzz_mmu(const struct fuzz_mmu_options *o)
{
	struct fuzz_log ref = {0};
	struct image img;
	char dir[PATH_MAX], path[PATH_MAX + 32], name[32];
	int mismatches = 0;

	workloads_dir(dir, sizeof(dir));
	/* One guest image per paging format (workloads/Makefile), and the partner's. */
	if (o->vcpus > 1)
		snprintf(name, sizeof(name), "mmufuzz-smp");
	else if (strcmp(o->paging, "4level"))
		snprintf(name, sizeof(name), "mmufuzz-%s", o->paging);
	else
		snprintf(name, sizeof(name), "mmufuzz");
	snprintf(path, sizeof(path), "%s/%s.elf", dir, name);
	if (image_open(&img, path, name))
		return -1;
	if (!fuzz_run(o->oracle, &img, o, o->ops, 0, &ref)) {
		err("fuzz mmu: the oracle %s could not run the fuzzer", o->oracle->name);
		image_close(&img);
		return -1;
	}
	printf("%s (oracle): %s paging%s, seed %llu: %llu ops, checksum %016llx\n",
	       o->oracle->name, o->paging, o->vcpus > 1 ? " with a partner vCPU" : "",
	       (unsigned long long)o->seed, (unsigned long long)o->ops,
	       (unsigned long long)ref.result.checksum);
	for (int h = 0; h < o->nhvs; h++)
		mismatches += !compare_with(o->oracle, o->hvs[h], &img, o, &ref);
	log_free(&ref);
	image_close(&img);
	printf("fuzz mmu: %s paging, seed %llu, %llu ops per hypervisor, %d hypervisor%s with mismatches\n",
	       o->paging, (unsigned long long)o->seed, (unsigned long long)o->ops, mismatches,
	       mismatches == 1 ? "" : "s");
	return mismatches ? 1 : 0;
}
