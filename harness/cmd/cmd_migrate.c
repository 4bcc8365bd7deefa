// SPDX-License-Identifier: GPL-2.0
/*
 * kvmlab migrate: run a workload and move it, while it runs, to a second
 * VM in a second kvmlab process (`kvmlab incoming`), over a Unix socket.
 * kvmlab incoming: that second process; or, with --from, a restore from a
 * stream kept with --stream-copy. The engine is migrate/migrate.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "../experiment/hv.h"
#include "../experiment/kmsg.h"
#include "../experiment/results.h"
#include "../lib/util.h"
#include "../loaders/image.h"
#include "../migrate/migrate.h"
#include "../run/vm.h"
#include "commands.h"

#define MAX_PARAMS_ARGS 32

struct mopts {
	const struct hv *src, *dst;
	char workload[64];
	char *params[MAX_PARAMS_ARGS];
	int nparams;
	uint64_t mem_mb, timeout_s, bandwidth_mb, downtime_ms, max_rounds, after_ms;
	const char *to, *copy, *results_dir, *listen, *from;
	char run_id[128];
	char workloads_dir[PATH_MAX];
	bool verbose;
};

static const struct hv *find_hv(const char *name)
{
	const struct hv *hv = hv_find(name);

	if (!hv)
		err("unknown hypervisor '%s' (see 'kvmlab list')", name);
	return hv;
}

/* Two hypervisors that can be loaded at once: one kvmlab module, or the same Linux KVM mode. */
static int check_pair(const struct hv *a, const struct hv *b)
{
	if (a == b || (a->ko && b->ko))
		return 0;
	return err("cannot migrate from %s to %s: both need SVM at the same time, and only "
		   "kvmlab's strategies share one module (Linux KVM: the same mode at both ends)",
		   a->name, b->name);
}

static int number(const char *opt, const char *s, uint64_t max, uint64_t *out)
{
	if (!parse_u64(s, out) || *out > max)
		return err("--%s needs a number from 0 to %llu, not '%s'", opt,
			   (unsigned long long)max, s);
	return 0;
}

static int parse(struct mopts *o, int argc, char **argv, bool incoming)
{
	static const struct option longopts[] = {
		{ "hv", required_argument, NULL, 'h' },
		{ "workload", required_argument, NULL, 'w' },
		{ "param", required_argument, NULL, 'p' },
		{ "mem", required_argument, NULL, 'm' },
		{ "timeout", required_argument, NULL, 't' },
		{ "bandwidth", required_argument, NULL, 'b' },
		{ "max-downtime", required_argument, NULL, 'd' },
		{ "max-rounds", required_argument, NULL, 'R' },
		{ "after", required_argument, NULL, 'a' },
		{ "to", required_argument, NULL, 'T' },
		{ "stream-copy", required_argument, NULL, 'c' },
		{ "results", required_argument, NULL, 'o' },
		{ "run-id", required_argument, NULL, 'i' },
		{ "workloads", required_argument, NULL, 'W' },
		{ "listen", required_argument, NULL, 'l' },
		{ "from", required_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	char *hv_list = NULL;
	int c;

	o->mem_mb = 128;
	o->timeout_s = 300;
	o->bandwidth_mb = 0;
	o->downtime_ms = 300;	/* QEMU's default */
	o->max_rounds = 30;
	o->results_dir = "results";
	workloads_dir(o->workloads_dir, sizeof(o->workloads_dir));
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': hv_list = optarg; break;
		case 'w': snprintf(o->workload, sizeof(o->workload), "%s", optarg); break;
		case 'p':
			if (o->nparams == MAX_PARAMS_ARGS)
				return err("too many --param options");
			o->params[o->nparams++] = optarg;
			break;
		case 'm': if (number("mem", optarg, 65536, &o->mem_mb) || !o->mem_mb) return -1; break;
		case 't': if (number("timeout", optarg, 86400, &o->timeout_s) || !o->timeout_s) return -1; break;
		case 'b': if (number("bandwidth", optarg, 1000000, &o->bandwidth_mb)) return -1; break;
		case 'd': if (number("max-downtime", optarg, 3600000, &o->downtime_ms)) return -1; break;
		case 'R':
			if (number("max-rounds", optarg, MIG_MAX_ROUNDS - 1, &o->max_rounds))
				return -1;
			break;
		case 'a': if (number("after", optarg, 3600000, &o->after_ms)) return -1; break;
		case 'T': o->to = optarg; break;
		case 'c': o->copy = optarg; break;
		case 'o': o->results_dir = optarg; break;
		case 'i':
			if (!*optarg || strchr(optarg, '/') || strlen(optarg) >= sizeof(o->run_id))
				return err("--run-id must be a plain name");
			snprintf(o->run_id, sizeof(o->run_id), "%s", optarg);
			break;
		case 'W': snprintf(o->workloads_dir, sizeof(o->workloads_dir), "%s", optarg); break;
		case 'l': o->listen = optarg; break;
		case 'f': o->from = optarg; break;
		case 'v': o->verbose = true; break;
		default:
			return err("unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return err("unexpected argument '%s'", argv[optind]);
	if (!hv_list)
		return err("%s needs --hv", incoming ? "incoming" : "migrate");
	if (incoming) {
		if (!!o->listen == !!o->from)
			return err("incoming needs one of --listen SOCKET and --from FILE");
		o->dst = find_hv(hv_list);
		return o->dst ? 0 : -1;
	}
	if (!o->workload[0])
		return err("migrate needs --workload");
	{
		char *comma = strchr(hv_list, ',');

		if (comma)
			*comma = 0;
		o->src = find_hv(hv_list);
		o->dst = comma ? find_hv(comma + 1) : o->src;
		if (!o->src || !o->dst)
			return -1;
	}
	if (!o->run_id[0]) {
		time_t t = time(NULL);

		strftime(o->run_id, sizeof(o->run_id), "%Y%m%d-%H%M%S", gmtime(&t));
	}
	return check_pair(o->src, o->dst);
}

static int open_image(struct image *img, const char *dir, const char *name)
{
	char path[PATH_MAX + 80];

	if (!*name || strchr(name, '/'))
		return err("no workload named '%s'", name);
	snprintf(path, sizeof(path), "%s/%s.elf", dir, name);
	return image_open(img, path, name);
}

static void make_cfg(struct run_config *cfg, const struct mopts *o, const struct hv *hv)
{
	*cfg = (struct run_config) {
		.device = hv->device, .vm_type = hv->vm_type, .mem_bytes = o->mem_mb << 20,
		.timeout_s = (unsigned int)o->timeout_s, .verbose = o->verbose,
		.known_deviations = hv_known_deviations(hv),
	};
}

/* A run whose kernel log went bad is failed, whatever the guest said. */
static void kernel_status(struct run_result *r, const char *bad)
{
	snprintf(r->status, sizeof(r->status), "kernel");
	snprintf(r->detail, sizeof(r->detail), "kernel log: %s", bad);
}

static void print_result(const char *who, const struct run_result *r)
{
	printf("%s: %s", who, r->status);
	if (r->measured)
		printf("  ops %llu  checksum 0x%llx  %.3f s", (unsigned long long)r->ops,
		       (unsigned long long)r->checksum, r->wall_ns / 1e9);
	if (strcmp(r->status, "ok") && r->detail[0])
		printf("  (%s)", r->detail);
	printf("\n");
}

/* ---- kvmlab incoming ---- */

static int accept_one(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd, c;
	struct stat st;

	if (strlen(path) >= sizeof(a.sun_path))
		return err("socket path too long: %s", path);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	/* A stale socket of an earlier run goes; anything else there is not ours to remove. */
	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
		return err("--listen %s: a file that is not a socket is there", path);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 1))
		return err_errno("cannot listen on %s", path);
	fprintf(stderr, "incoming: waiting on %s\n", path);
	c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
	close(fd);
	unlink(path);
	if (c < 0)
		return err_errno("accept on %s", path);
	return c;
}

int cmd_incoming(int argc, char **argv)
{
	struct mopts o = { 0 };
	struct image img = { 0 };
	struct run_config cfg;
	struct run_result *r = calloc(1, sizeof(*r));
	struct mig_incoming *in;
	const struct mig_hello *h;
	int fd, rc = 1, kfd;

	if (!r)
		return err("out of memory"), 1;
	if (parse(&o, argc, argv, true))
		return EXIT_USAGE;
	if (hv_prepare(o.dst, NULL))
		return 1;
	fd = o.listen ? accept_one(o.listen) : open(o.from, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (o.from)
			err_errno("cannot open %s", o.from);
		return 1;
	}
	in = mig_incoming_open(fd, o.listen != NULL);
	if (!in)
		goto out;
	h = mig_incoming_hello(in);
	fprintf(stderr, "incoming: %s (%s) from %s, %llu MiB, onto %s\n", h->workload, h->params,
		h->src_hv, (unsigned long long)h->mem_bytes >> 20, o.dst->name);
	if (open_image(&img, o.workloads_dir, h->workload) || image_set_params(&img, h->params))
		goto out;
	make_cfg(&cfg, &o, o.dst);
	cfg.incoming = in;
	kfd = kmsg_open();
	if (vm_run(&cfg, &img, r) == 0) {
		char bad[256];

		kmsg_check(kfd, bad, sizeof(bad));
		if (bad[0])
			kernel_status(r, bad);
		print_result("incoming", r);
		mig_incoming_close(in, r);
		rc = strcmp(r->status, "ok") != 0;
	}
out:
	close(fd);
	free(r);
	return rc;
}

/* ---- kvmlab migrate ---- */

static int connect_to(const char *path, pid_t child)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	uint64_t until = now_ns() + 30000000000ULL;

	if (strlen(path) >= sizeof(a.sun_path))
		return err("socket path too long: %s", path);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd >= 0 && !connect(fd, (struct sockaddr *)&a, sizeof(a)))
			return fd;
		if (fd >= 0)
			close(fd);
		if (now_ns() > until || (child > 0 && waitpid(child, NULL, WNOHANG) == child))
			return err_errno("cannot connect to the destination at %s", path);
		usleep(20000);
	}
}

static pid_t spawn_incoming(const struct mopts *o, const char *sock)
{
	char timeout[32], exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	pid_t pid;

	if (n <= 0)
		return err_errno("cannot find this program"), -1;
	exe[n] = 0;
	snprintf(timeout, sizeof(timeout), "%llu", (unsigned long long)o->timeout_s);
	pid = fork();
	if (pid == 0) {
		execl(exe, "kvmlab", "incoming", "--hv", o->dst->name, "--listen", sock,
		      "--timeout", timeout, "--workloads", o->workloads_dir,
		      o->verbose ? "--verbose" : NULL, (char *)NULL);
		_exit(127);
	}
	if (pid < 0)
		err_errno("fork");
	return pid;
}

static void print_report(const struct mopts *o, const struct mig_report *m)
{
	printf("migration %s -> %s: %s", o->src->name, o->dst->name, m->status);
	if (m->detail[0])
		printf(" (%s)", m->detail);
	printf("\n  rounds %u, pages per round:", m->rounds);
	for (unsigned int i = 0; i < m->rounds && i < MIG_MAX_ROUNDS; i++)
		printf(" %llu", (unsigned long long)m->round_pages[i]);
	if (!strcmp(m->status, "migrated"))
		printf(", stop-and-copy %llu",
		       (unsigned long long)m->round_pages[m->rounds < MIG_MAX_ROUNDS ? m->rounds :
							  MIG_MAX_ROUNDS]);
	printf("\n  %.2f MB sent (%llu zero pages as flags), %.1f ms in all", m->bytes / 1e6,
	       (unsigned long long)m->zero_pages, m->total_ns / 1e6);
	if (!strcmp(m->status, "migrated"))
		printf(", downtime %.2f ms (%.2f ms of it sending)", m->downtime_ns / 1e6,
		       m->stop_copy_ns / 1e6);
	printf(" (last prediction %.2f ms at %.1f MB/s)\n", m->dirty_est_ns / 1e6,
	       m->rate_bps / 1e6);
}

/* One row per migration in RESULTS/RUN_ID/migrations.csv, appended. */
static int write_row(const struct mopts *o, const char *params, const struct mig_report *m,
		     const struct run_result *r)
{
	char dir[4200], path[4300], pages[MIG_MAX_ROUNDS * 12 + 16] = "";
	struct stat st;
	bool fresh;
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/%s", o->results_dir, o->run_id);
	if (mkdir_p(dir))
		return err_errno("cannot create %s", dir);
	snprintf(path, sizeof(path), "%s/migrations.csv", dir);
	fresh = stat(path, &st) != 0;
	f = fopen(path, "a");
	if (!f)
		return err_errno("cannot write %s", path);
	if (fresh) {
		fprintf(f, "src,dst,workload,params,migration,status,ops,checksum,wall_ns,rounds,"
			"pages_per_round,final_pages,zero_pages,bytes,total_ns,downtime_ns,stop_copy_ns,"
			"bandwidth_mbs,max_downtime_ms");
		for (int i = 0; csv_counters[i]; i++)
			fprintf(f, ",%s", csv_counters[i]);
		fprintf(f, "\n");
	}
	for (unsigned int i = 0; i < m->rounds && i < MIG_MAX_ROUNDS; i++)
		snprintf(pages + strlen(pages), sizeof(pages) - strlen(pages), "%s%llu",
			 i ? ";" : "", (unsigned long long)m->round_pages[i]);
	fprintf(f, "%s,%s,%s,%s,%s,%s,%llu,%016llx,%llu,%u,%s,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu",
		o->src->name, o->dst->name, o->workload, params, m->status, r->status,
		(unsigned long long)r->ops, (unsigned long long)r->checksum,
		(unsigned long long)r->wall_ns, m->rounds, pages,
		!strcmp(m->status, "migrated") ? (unsigned long long)m->round_pages[
			m->rounds < MIG_MAX_ROUNDS ? m->rounds : MIG_MAX_ROUNDS] : 0ULL,
		(unsigned long long)m->zero_pages, (unsigned long long)m->bytes,
		(unsigned long long)m->total_ns, (unsigned long long)m->downtime_ns,
		(unsigned long long)m->stop_copy_ns, (unsigned long long)o->bandwidth_mb, (unsigned long long)o->downtime_ms);
	for (int i = 0; csv_counters[i]; i++) {
		int64_t v;

		if (run_counter(r, csv_counters[i], &v))
			fprintf(f, ",%lld", (long long)v);
		else
			fprintf(f, ",");
	}
	fprintf(f, "\n");
	return fclose(f) ? err_errno("cannot write %s", path) : 0;
}

int cmd_migrate(int argc, char **argv)
{
	struct mopts o = { 0 };
	struct image img = { 0 };
	struct run_config cfg;
	struct mig_report rep = { .status = "" };
	struct mig_source_cfg mc;
	struct run_result *r = calloc(1, sizeof(*r)), *dr = calloc(1, sizeof(*dr));
	char params[512], sock[PATH_MAX], tmp[] = "/tmp/kvmlab-mig-XXXXXX";
	pid_t child = -1;
	int fd = -1, copy_fd = -1, rc = 1, kfd;

	if (!r || !dr)
		return err("out of memory"), 1;
	if (parse(&o, argc, argv, false))
		return EXIT_USAGE;
	if (open_image(&img, o.workloads_dir, o.workload))
		return 1;
	for (int i = 0; i < o.nparams; i++)
		if (image_set_params(&img, o.params[i]))
			return EXIT_USAGE;
	image_params_string(&img, params, sizeof(params));
	if (hv_prepare(o.src, NULL) || (o.dst != o.src && hv_prepare(o.dst, NULL)))
		return 1;
	if (o.copy && (copy_fd = open(o.copy, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		return err_errno("cannot write %s", o.copy), 1;
	if (o.to) {
		snprintf(sock, sizeof(sock), "%s", o.to);
	} else {
		if (!mkdtemp(tmp))
			return err_errno("mkdtemp"), 1;
		snprintf(sock, sizeof(sock), "%s/sock", tmp);
		child = spawn_incoming(&o, sock);
		if (child < 0)
			return 1;
	}
	fd = connect_to(sock, child);
	if (fd < 0)
		goto out;
	mc = (struct mig_source_cfg) {
		.fd = fd, .copy_fd = copy_fd, .workload = o.workload, .params = params,
		.src_hv = o.src->name, .report = &rep,
		.policy = {
			.bandwidth = o.bandwidth_mb * 1000000ULL,
			.max_downtime_ns = o.downtime_ms * 1000000ULL,
			.max_rounds = (unsigned int)o.max_rounds,
			.start_after_ns = o.after_ms * 1000000ULL,
		},
	};
	make_cfg(&cfg, &o, o.src);
	cfg.migrate_to = &mc;
	kfd = kmsg_open();
	printf("migrate: %s (%s) from %s to %s\n", o.workload, params, o.src->name, o.dst->name);
	if (vm_run(&cfg, &img, r))
		goto out;
	if (!strcmp(rep.status, "migrated")) {
		if (mig_source_result(fd, dr))
			snprintf(dr->status, sizeof(dr->status), "error");
	} else {
		*dr = *r;	/* the guest stayed, and finished here */
	}
	{
		char bad[256];

		kmsg_check(kfd, bad, sizeof(bad));
		if (bad[0])
			kernel_status(dr, bad);
	}
	print_report(&o, &rep);
	print_result(!strcmp(rep.status, "migrated") ? "result (at the destination)" :
		     "result (the guest stayed at the source)", dr);
	write_row(&o, params, &rep, dr);
	rc = strcmp(rep.status, "migrated") || strcmp(dr->status, "ok") ? 1 : 0;
out:
	if (fd >= 0)
		close(fd);	/* a destination still waiting for the stream hears its end */
	if (child > 0) {
		waitpid(child, NULL, 0);
		rmdir(tmp);
	}
	if (copy_fd >= 0)
		close(copy_fd);
	free(r);
	free(dr);
	return rc;
}
