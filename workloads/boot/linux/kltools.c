// SPDX-License-Identifier: GPL-2.0
/*
 * kltools: the Linux guest's side of the linux-* workloads, one static
 * program with a subcommand each (busybox-style, called by /init):
 *
 *   kltools mark begin                  open the measured phase
 *   kltools mark end OPS CHECKSUM       close it
 *   kltools exit STATUS                 end the VM (port 0xf4)
 *   kltools forkexec N                  N x fork, exec /bin/true, wait
 *   kltools pipe N                      N round trips between two processes
 *   kltools memfill MIB PASSES          map, fill and unmap MIB MiB, PASSES times
 *   kltools pforkexec N                 N fork+exec+wait in all, one loop per online CPU
 *   kltools spipe N                     a pipe pair per two CPUs, each end pinned to its
 *                                       own CPU, N round trips each
 *
 * Each workload prints "ops=N checksum=C" on its last line; the checksum
 * depends only on the work done, so it is the same under every hypervisor.
 * Marks are port I/O from user mode, for which we need ioperm() (root). The
 * exit port is written through /dev/port, by the kernel: user-mode I/O
 * depends on the TSS I/O bitmap, which the test machine's QEMU refuses to
 * use when a hypervisor reports the TSS busy (testmachine/README.md), and
 * the VM must be able to end whatever runs it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <kvmlab/guest_abi.h>

static uint64_t fnv = 14695981039346656037ULL;

static void mix(uint64_t v)
{
	fnv = (fnv ^ v) * 1099511628211ULL;
}

static int die(const char *what)
{
	fprintf(stderr, "kltools: %s: %s\n", what, strerror(errno));
	return 1;
}

static uint64_t arg(char **argv, int i, int argc)
{
	return i < argc ? strtoull(argv[i], NULL, 0) : 0;
}

static int ports(void)
{
	if (ioperm(KL_PORT_MARK, 8, 1) || ioperm(0xf4, 1, 1))
		return die("ioperm");
	return 0;
}

static void outl_arg(uint64_t v)
{
	outl((uint32_t)v, KL_PORT_MARK_ARG);
	outl((uint32_t)(v >> 32), KL_PORT_MARK_ARG);
}

static int mark(int argc, char **argv)
{
	unsigned int lo, hi;

	if (argc < 3 || ports())
		return 1;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	outl_arg(lo | (uint64_t)hi << 32);
	if (!strcmp(argv[2], "begin")) {
		outl(KL_MARK_BEGIN, KL_PORT_MARK);
		return 0;
	}
	outl_arg(arg(argv, 3, argc));
	outl_arg(arg(argv, 4, argc));
	outl(KL_MARK_END, KL_PORT_MARK);
	return 0;
}

/* n x fork, exec /bin/true, wait: how many exited with 0 (-1: fork failed). */
static int64_t forkexec_loop(uint64_t n)
{
	int64_t ok = 0;

	for (uint64_t i = 0; i < n; i++) {
		int status;
		pid_t pid = fork();

		if (pid == 0) {
			execl("/bin/true", "true", (char *)NULL);
			_exit(127);
		}
		if (pid < 0 || waitpid(pid, &status, 0) < 0) {
			die(pid < 0 ? "fork" : "waitpid");
			return -1;
		}
		ok += WIFEXITED(status) && WEXITSTATUS(status) == 0;
	}
	return ok;
}

static int forkexec(uint64_t n)
{
	int64_t ok = forkexec_loop(n);

	if (ok < 0)
		return 1;
	mix((uint64_t)ok);
	printf("ops=%" PRIu64 " checksum=%" PRIu64 "\n", n, fnv);
	return (uint64_t)ok == n ? 0 : 1;
}

static int online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (int)n : 1;
}

/*
 * One fork+exec loop per online CPU, n in all, at once: the scheduler
 * spreads them, so the kernel forks, execs and tears down address spaces
 * on every CPU together (TLB shootdowns, shared page-table pages). The
 * checksum is forkexec's for the same n: it counts the successes only.
 */
static int pforkexec(uint64_t n)
{
	int workers = online_cpus(), res[2];
	int64_t ok = 0, got;

	if (pipe(res))
		return die("pipe");
	for (int w = 0; w < workers; w++) {
		uint64_t share = n / workers + ((uint64_t)w < n % workers);
		pid_t pid = fork();

		if (pid < 0)
			return die("fork");
		if (pid == 0) {
			got = forkexec_loop(share);
			_exit(write(res[1], &got, 8) == 8 ? 0 : 1);
		}
	}
	close(res[1]);
	for (int w = 0; w < workers; w++) {
		if (read(res[0], &got, 8) != 8 || got < 0)
			return die("a worker");
		ok += got;
	}
	while (wait(NULL) > 0)
		;
	mix((uint64_t)ok);
	printf("cpus=%d\n", workers);
	printf("ops=%" PRIu64 " checksum=%" PRIu64 "\n", n, fnv);
	return (uint64_t)ok == n ? 0 : 1;
}

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);	/* on one CPU it fails harmlessly */
}

/*
 * n round trips of a token between two processes (ping on cpu_ping, pong
 * on cpu_pong; -1: anywhere); each side changes it. Returns the FNV hash
 * of the tokens ping saw, which depends on n alone.
 */
static uint64_t pingpong_loop(uint64_t n, int cpu_ping, int cpu_pong)
{
	int there[2], back[2];
	uint64_t token = 1, h = 14695981039346656037ULL;
	pid_t pid;

	if (pipe(there) || pipe(back))
		exit(die("pipe"));
	pid = fork();
	if (pid < 0)
		exit(die("fork"));
	if (pid == 0) {
		if (cpu_pong >= 0)
			pin(cpu_pong);
		for (uint64_t i = 0; i < n; i++) {
			if (read(there[0], &token, 8) != 8)
				_exit(1);
			token = token * 3 + 1;
			if (write(back[1], &token, 8) != 8)
				_exit(1);
		}
		_exit(0);
	}
	if (cpu_ping >= 0)
		pin(cpu_ping);
	for (uint64_t i = 0; i < n; i++) {
		if (write(there[1], &token, 8) != 8 || read(back[0], &token, 8) != 8)
			exit(die("pipe round trip"));
		h = (h ^ token) * 1099511628211ULL;	/* mix()'s step, on this chain's own hash */
	}
	waitpid(pid, NULL, 0);
	close(there[0]), close(there[1]), close(back[0]), close(back[1]);
	return h;
}

/* A token goes back and forth; each side adds to it. */
static int pingpong(uint64_t n)
{
	fnv = pingpong_loop(n, -1, -1);
	printf("ops=%" PRIu64 " checksum=%" PRIu64 "\n", n, fnv);
	return 0;
}

/*
 * pingpong across CPUs: pair i's two ends pinned to CPUs 2i and 2i+1, so
 * every hand-over wakes a task on another CPU (a reschedule IPI when it
 * idles). One pair per two CPUs, at least one. Every pair's hash must be
 * the same, and the checksum is pipe's for the same n.
 */
static int spipe(uint64_t n)
{
	int cpus = online_cpus(), pairs = cpus / 2 ? cpus / 2 : 1, res[2];
	uint64_t h, first = 0;

	if (pipe(res))
		return die("pipe");
	for (int p = 0; p < pairs; p++) {
		pid_t pid = fork();

		if (pid < 0)
			return die("fork");
		if (pid == 0) {
			h = pingpong_loop(n, (2 * p) % cpus, (2 * p + 1) % cpus);
			_exit(write(res[1], &h, 8) == 8 ? 0 : 1);
		}
	}
	close(res[1]);
	for (int p = 0; p < pairs; p++) {
		if (read(res[0], &h, 8) != 8)
			return die("a pair");
		if (p && h != first) {
			fprintf(stderr, "kltools: spipe: pairs disagree\n");
			return 1;
		}
		first = h;
	}
	while (wait(NULL) > 0)
		;
	fnv = first;
	printf("cpus=%d pairs=%d\n", cpus, pairs);
	printf("ops=%" PRIu64 " checksum=%" PRIu64 "\n", n * pairs, fnv);
	return 0;
}

static int memfill(uint64_t mib, uint64_t passes)
{
	size_t len = mib << 20;

	for (uint64_t p = 0; p < passes; p++) {
		uint64_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		uint64_t sum = 0;

		if (m == MAP_FAILED)
			return die("mmap");
		for (size_t i = 0; i < len / 8; i += 512)	/* one write per page */
			m[i] = i ^ p;
		for (size_t i = 0; i < len / 8; i += 512)
			sum += m[i];
		mix(sum);
		munmap(m, len);
	}
	printf("ops=%" PRIu64 " checksum=%" PRIu64 "\n", (len >> 12) * passes, fnv);
	return 0;
}

static int exit_vm(uint8_t status)
{
	int fd = open("/dev/port", O_WRONLY);

	if (fd >= 0 && pwrite(fd, &status, 1, 0xf4) == 1)
		return 0;	/* a VM that goes on did not listen on 0xf4 */
	if (ports())
		return 1;
	outb(status, 0xf4);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(cmd, "mark"))
		return mark(argc, argv);
	if (!strcmp(cmd, "exit") && argc == 3)
		return exit_vm((uint8_t)arg(argv, 2, argc));
	if (!strcmp(cmd, "forkexec"))
		return forkexec(arg(argv, 2, argc));
	if (!strcmp(cmd, "pipe"))
		return pingpong(arg(argv, 2, argc));
	if (!strcmp(cmd, "memfill"))
		return memfill(arg(argv, 2, argc), arg(argv, 3, argc));
	if (!strcmp(cmd, "pforkexec"))
		return pforkexec(arg(argv, 2, argc));
	if (!strcmp(cmd, "spipe"))
		return spipe(arg(argv, 2, argc));
	fprintf(stderr, "usage: kltools mark begin | mark end OPS CHECKSUM | exit STATUS |\n"
			"               forkexec N | pipe N | memfill MIB PASSES |\n"
			"               pforkexec N | spipe N\n");
	return 2;
}
