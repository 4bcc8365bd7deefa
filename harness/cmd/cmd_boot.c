// SPDX-License-Identifier: GPL-2.0
/*
 * kvmlab boot --hv H --kernel FILE [--initrd FILE] [--append STR] [--mem MB]
 *             [--timeout S] [--apic] [--real-mode-entry] [--dry-run]
 *
 * Boots any Multiboot kernel or Linux bzImage under one hypervisor with the
 * device model (a bzImage at its 64-bit entry, or with --real-mode-entry at
 * its 16-bit setup code with a minimal BIOS, as a BIOS boot loader would):
 * the guest's console on stdout, stdin as its console input, and the
 * counters of the whole run on stderr at the end. A terminal on stdin is put
 * in raw mode while the guest runs, so every key goes to the guest (Ctrl-C
 * included); Ctrl-] ends the run. The exit status follows QEMU's
 * isa-debug-exit: 2v+1 when the guest wrote v to port 0xf4; 130 when Ctrl-]
 * ended it; 2 when it could not (an error, a timeout, a reset), with the
 * reason.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include "../devices/fb.h"
#include "../loaders/boot.h"
#include "commands.h"
#include "../experiment/hv.h"
#include "../lib/kvmclient.h"
#include "../loaders/image.h"
#include "../experiment/kmsg.h"
#include "../lib/util.h"
#include "../run/vm.h"

#define EXIT_BOOT_FAILED	2
#define EXIT_BOOT_STOPPED	130	/* as a shell reports a program ended from the terminal */
#define CONSOLE_ESCAPE		0x1d	/* Ctrl-], as telnet and virsh console */
#define EXIT_USAGE_BOOT		64

struct boot_opts {
	const struct hv *hv;
	struct image img;
	uint64_t mem_mb, timeout_s, fb_fps, vcpus;
	int fb_mode;
	const char *fb_snapshot;
	bool dry_run;
};

static int usage(void)
{
	fprintf(stderr, "usage: kvmlab boot --hv H --kernel FILE [--initrd FILE] [--append STR]\n"
			"                   [--mem MB] [--timeout S] [--vcpus N] [--apic] [--real-mode-entry]\n"
			"                   [--fb mmio|dirty] [--fb-fps N] [--fb-snapshot FILE.png]\n");
	return EXIT_USAGE_BOOT;
}

static int parse(int argc, char **argv, struct boot_opts *o)
{
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--native"))
			continue;
		if (!strcmp(a, "--dry-run") || !strcmp(a, "--apic")) {
			*(a[2] == 'd' ? &o->dry_run : &o->img.apic) = true;
			continue;
		}
		if (!strcmp(a, "--real-mode-entry")) {
			o->img.real_mode_entry = true;
			continue;
		}
		if (!v)
			return err("boot: %s needs a value", a);
		i++;
		if (!strcmp(a, "--hv")) {
			o->hv = hv_find(v);
			if (!o->hv)
				return err("boot: unknown hypervisor '%s' (see kvmlab list)", v);
		} else if (!strcmp(a, "--kernel")) {
			snprintf(o->img.kernel, sizeof(o->img.kernel), "%s", v);
		} else if (!strcmp(a, "--initrd")) {
			snprintf(o->img.initrd, sizeof(o->img.initrd), "%s", v);
		} else if (!strcmp(a, "--append")) {
			if (strlen(v) >= sizeof(o->img.append))
				return err("boot: --append is longer than %zu bytes",
					   sizeof(o->img.append) - 1);
			snprintf(o->img.append, sizeof(o->img.append), "%s", v);
		} else if (!strcmp(a, "--mem")) {
			if (!parse_u64(v, &o->mem_mb) || o->mem_mb < 2 || o->mem_mb > 65536)
				return err("boot: --mem takes 2..65536 (MiB), not '%s'", v);
		} else if (!strcmp(a, "--vcpus")) {
			if (!parse_u64(v, &o->vcpus) || !o->vcpus || o->vcpus > KC_MAX_VCPUS)
				return err("boot: --vcpus takes 1..%d, not '%s'", KC_MAX_VCPUS, v);
		} else if (!strcmp(a, "--timeout")) {
			if (!parse_u64(v, &o->timeout_s) || !o->timeout_s || o->timeout_s > 86400)
				return err("boot: --timeout takes 1..86400 (seconds), not '%s'", v);
		} else if (!strcmp(a, "--fb")) {
			o->fb_mode = fb_parse_mode(v);
			if (o->fb_mode < 0)
				return err("boot: --fb is mmio or dirty, not '%s'", v);
		} else if (!strcmp(a, "--fb-fps")) {
			if (!parse_u64(v, &o->fb_fps) || !o->fb_fps || o->fb_fps > 1000)
				return err("boot: --fb-fps takes 1..1000, not '%s'", v);
		} else if (!strcmp(a, "--fb-snapshot")) {
			o->fb_snapshot = v;
		} else {
			return err("boot: unknown option '%s'", a);
		}
	}
	if ((o->fb_fps || o->fb_snapshot) && !o->fb_mode)
		return err("boot: --fb-fps and --fb-snapshot need --fb mmio|dirty");
	if (!o->hv || !o->img.kernel[0])
		return err("boot: --hv and --kernel are required");
	if (access(o->img.kernel, R_OK))
		return err_errno("boot: cannot read the kernel %s", o->img.kernel);
	if (boot_check_kernel(o->img.kernel))
		return -1;
	if (o->img.initrd[0] && access(o->img.initrd, R_OK))
		return err_errno("boot: cannot read the initrd %s", o->img.initrd);
	return 0;
}

static struct termios saved_tty;

static void restore_tty(void)
{
	tcsetattr(0, TCSANOW, &saved_tty);
}

/*
 * A terminal on stdin: raw mode, so keys go to the guest as typed (no line
 * editing, echo or signals here: the guest echoes, and Ctrl-C is the
 * guest's); the escape byte ends the run. atexit restores the terminal on
 * every way out of main.
 */
static bool raw_tty(void)
{
	struct termios t;

	if (!isatty(0) || tcgetattr(0, &saved_tty))
		return false;
	t = saved_tty;
	t.c_lflag &= ~(ICANON | ECHO | ISIG | IEXTEN);
	t.c_iflag &= ~(ICRNL | INLCR | IXON);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(0, TCSANOW, &t))
		return false;
	atexit(restore_tty);
	fprintf(stderr, "kvmlab boot: console attached (Ctrl-] ends the run)\r\n");
	return true;
}

static void print_counters(const struct run_result *r)
{
	fprintf(stderr, "kvmlab boot: %s, %.2f s", r->status, r->wall_ns / 1e9);
	if (r->detail[0])
		fprintf(stderr, " (%s)", r->detail);
	fprintf(stderr, "\n");
	for (int i = 0; i < r->ncounters; i++)
		if (r->counters[i])
			fprintf(stderr, "  %-22s %lld\n", r->counter_names[i],
				(long long)r->counters[i]);
}

int cmd_boot(int argc, char **argv)
{
	struct boot_opts *o = calloc(1, sizeof(*o));
	struct run_result *r = calloc(1, sizeof(*r));
	struct boot_io io = { .console = stdout, .input_fd = 0 };
	char bad[256] = "";
	int rc = EXIT_BOOT_FAILED, kfd;

	if (!o || !r)
		return err("out of memory"), EXIT_BOOT_FAILED;
	o->mem_mb = 256;
	o->timeout_s = 600;
	snprintf(o->img.name, sizeof(o->img.name), "boot");
	o->img.boot = true;
	o->img.phase_from_start = true;
	if (parse(argc, argv, o)) {
		rc = usage();
		goto out;
	}
	if (o->dry_run) {
		rc = 0;
		goto out;
	}
	if (hv_prepare(o->hv, NULL))
		goto out;
	if (raw_tty())
		io.escape = CONSOLE_ESCAPE;
	kfd = kmsg_open();
	{
		struct run_config cfg = {
			.device = o->hv->device, .vm_type = o->hv->vm_type,
			.mem_bytes = o->mem_mb << 20, .timeout_s = (unsigned int)o->timeout_s,
			.boot_io = &io, .fb_mode = o->fb_mode, .fb_fps = (unsigned int)o->fb_fps,
			.fb_snapshot = o->fb_snapshot, .vcpus = (int)o->vcpus,
		};

		if (vm_run(&cfg, &o->img, r))
			goto out;
	}
	kmsg_check(kfd, bad, sizeof(bad));
	fflush(stdout);
	if (bad[0])
		snprintf(r->status, sizeof(r->status), "kernel");
	print_counters(r);
	if (bad[0])
		fprintf(stderr, "kvmlab boot: the host's kernel log is not clean: %s\n", bad);
	else if (!strcmp(r->status, "stopped"))
		rc = EXIT_BOOT_STOPPED;
	else if (r->exit_code >= 0 && strcmp(r->status, "timeout") && strcmp(r->status, "error"))
		rc = ((r->exit_code << 1) | 1) & 0xff;	/* as QEMU's process would exit */
out:
	free(o);
	free(r);
	return rc;
}
