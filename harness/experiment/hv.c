// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <kvmlab/kvmlab.h>
#include "hv.h"
#include "../lib/util.h"

static const struct hv hvs[] = {
	{
		.name = "kvm-shadow", .device = "/dev/kvm",
		.module = "kvm_amd", .params = "npt=0",
		.check_param = "npt", .check_value = "N",
		.about = "Linux KVM, shadow page tables (kvm_amd npt=0)",
	},
	{
		.name = "kvm-npt", .device = "/dev/kvm",
		.module = "kvm_amd", .params = "npt=1",
		.check_param = "npt", .check_value = "Y",
		.about = "Linux KVM, nested paging (kvm_amd npt=1)",
		.hw_paging = 1,
	},
	/*
	 * kvmlab: one module serves every strategy; each VM names its own
	 * in KVM_CREATE_VM's type, so a loaded module is reused as it is.
	 */
	{
		.name = "kvmlab-vtlb", .device = "/dev/kvmlab",
		.module = "kvmlab", .ko = "kvmlab.ko", .params = "mmu=vtlb",
		.vm_type = KVMLAB_VM_TYPE_MMU(KVMLAB_MMU_VTLB),
		.about = "kvmlab, virtual TLB (mmu=vtlb)",
	},
	{
		.name = "kvmlab-shadow", .device = "/dev/kvmlab",
		.module = "kvmlab", .ko = "kvmlab.ko", .params = "mmu=shadow",
		.vm_type = KVMLAB_VM_TYPE_MMU(KVMLAB_MMU_SHADOW),
		.about = "kvmlab, shadow tables per root with naive resync (mmu=shadow)",
	},
	{
		.name = "kvmlab-cached", .device = "/dev/kvmlab",
		.module = "kvmlab", .ko = "kvmlab.ko", .params = "mmu=cached",
		.vm_type = KVMLAB_VM_TYPE_MMU(KVMLAB_MMU_CACHED),
		.about = "kvmlab, write-protected shadow caching, KVM 2007 (mmu=cached)",
	},
	{
		.name = "kvmlab-npt", .device = "/dev/kvmlab",
		.module = "kvmlab", .ko = "kvmlab.ko", .params = "mmu=npt",
		.vm_type = KVMLAB_VM_TYPE_MMU(KVMLAB_MMU_NPT),
		.about = "kvmlab, nested paging (mmu=npt)", .hw_paging = 1,
	},
	{
		.name = "kvmlab-unsync", .device = "/dev/kvmlab",
		.module = "kvmlab", .ko = "kvmlab.ko", .params = "mmu=unsync",
		.vm_type = KVMLAB_VM_TYPE_MMU(KVMLAB_MMU_UNSYNC),
		.about = "kvmlab, shadow caching with out-of-sync leaf tables, KVM 2008 (mmu=unsync)",
	},
	{
		.name = "kvmlab-pv", .device = "/dev/kvmlab",
		.module = "kvmlab", .ko = "kvmlab.ko", .params = "mmu=pv",
		.vm_type = KVMLAB_VM_TYPE_MMU(KVMLAB_MMU_PV),
		.about = "kvmlab, shadow caching with a paravirtual MMU (mmu=pv)",
	},
	{
		.name = "kvm", .device = "/dev/kvm",
		.about = "whatever already serves /dev/kvm; nothing is loaded",
	},
};

/* Modules that own SVM/VMX and must go before another one loads. */
static const char *const rivals[] = { "kvm_amd", "kvm_intel", "kvmlab", NULL };

/*
 * QEMU >= 7.0 (TCG) reports reserved-bit #PFs without the P bit
 * (target/i386/tcg/sysemu/excp_helper.c, do_fault_rsvd). Under nested
 * paging that walk is the guest's hardware, so the test machine shows it.
 */
static const char *const qemu_tcg_hw_paging_deviations[] = {
	"pf_reserved_bit_pte_sets_p",
	"pf_reserved_bit_2m_pde_sets_p",
	"pf_reserved_bit_4m_pde_sets_p",
	/* ...and loads no PAE PDPTEs at MOV CR3, so none is checked there. */
	"pae_pdpte_reserved_gp",
	NULL,
};
static const char *const no_deviations[] = { NULL };

static int cpu_is_qemu_tcg(void)
{
	char line[512];
	int found = 0;
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f && !found && fgets(line, sizeof(line), f))
		found = !strncmp(line, "model name", 10) && strstr(line, "QEMU TCG");
	if (f)
		fclose(f);
	return found;
}

const char *const *hv_known_deviations(const struct hv *hv)
{
	return hv->hw_paging && cpu_is_qemu_tcg() ? qemu_tcg_hw_paging_deviations
						  : no_deviations;
}

/*
 * On an Intel CPU the yardstick is kvm_intel under the same names: its
 * ept parameter is kvm_amd's npt. kvmlab picks its vendor itself.
 */
static const struct hv intel_hvs[] = {
	{
		.name = "kvm-shadow", .device = "/dev/kvm",
		.module = "kvm_intel", .params = "ept=0",
		.check_param = "ept", .check_value = "N",
		.about = "Linux KVM, shadow page tables (kvm_intel ept=0)",
	},
	{
		.name = "kvm-npt", .device = "/dev/kvm",
		.module = "kvm_intel", .params = "ept=1",
		.check_param = "ept", .check_value = "Y",
		.about = "Linux KVM, nested paging (kvm_intel ept=1)",
		.hw_paging = 1,
	},
};

int hv_cpu_is_intel(void)
{
	static int intel = -1;
	char line[512];
	FILE *f;

	if (intel >= 0)
		return intel;
	intel = 0;
	f = fopen("/proc/cpuinfo", "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "vendor_id", 9)) {
			intel = strstr(line, "GenuineIntel") != NULL;
			break;
		}
	if (f)
		fclose(f);
	return intel;
}

static const struct hv *for_this_cpu(const struct hv *hv)
{
	if (hv_cpu_is_intel())
		for (size_t i = 0; i < sizeof(intel_hvs) / sizeof(intel_hvs[0]); i++)
			if (!strcmp(intel_hvs[i].name, hv->name))
				return &intel_hvs[i];
	return hv;
}

const struct hv *hv_find(const char *name)
{
	for (size_t i = 0; i < sizeof(hvs) / sizeof(hvs[0]); i++)
		if (!strcmp(hvs[i].name, name))
			return for_this_cpu(&hvs[i]);
	return NULL;
}

const struct hv *hv_at(int i)
{
	return i >= 0 && (size_t)i < sizeof(hvs) / sizeof(hvs[0]) ? for_this_cpu(&hvs[i]) : NULL;
}

static int run_cmd(char *const argv[])
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return err_errno("fork");
	if (pid == 0) {
		execvp(argv[0], argv);
		fprintf(stderr, "kvmlab: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return err_errno("waitpid");
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int module_loaded(const char *module)
{
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), "/sys/module/%s", module);
	return stat(path, &st) == 0;
}

static int unload(const char *module)
{
	/* kvmlab is not installed under /lib/modules: rmmod, not modprobe -r. */
	char *argv[] = { "modprobe", "-r", (char *)module, NULL };
	char *rmmod[] = { "rmmod", (char *)module, NULL };

	if (!module_loaded(module))
		return 0;
	if (run_cmd(strcmp(module, "kvmlab") ? argv : rmmod) || module_loaded(module))
		return err("cannot unload %s (is a VM still running?)", module);
	return 0;
}

void hv_unload_all(void)
{
	for (int i = 0; rivals[i]; i++)
		unload(rivals[i]);
}

static int check_mode(const struct hv *hv)
{
	char path[256], value[64] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/%s/parameters/%s", hv->module, hv->check_param);
	f = fopen(path, "r");
	if (!f)
		return err_errno("cannot read %s", path);
	if (!fgets(value, sizeof(value), f))
		value[0] = 0;
	fclose(f);
	value[strcspn(value, "\n")] = 0;
	if (strcmp(value, hv->check_value))
		return err("%s: %s reads '%s' after loading %s %s, not '%s' (this CPU lacks the feature?)",
			   hv->name, path, value, hv->module, hv->params, hv->check_value);
	return 0;
}

void hv_ko_path(const struct hv *hv, char *out, size_t size)
{
	const char *env = getenv("KVMLAB_KO");
	char dir[4096];

	if (env) {
		snprintf(out, size, "%s", env);
		return;
	}
	exe_dir(dir, sizeof(dir));
	snprintf(out, size, "%s/../kmod/%s", dir, hv->ko);
}

int hv_prepare(const struct hv *hv, char *const *extra_params)
{
	char params[256], ko[4096];
	char *argv[16] = { "modprobe", (char *)hv->module };
	int argc = 2;

	if (!hv->module)
		return 0;
	if (hv->ko && module_loaded(hv->module) && !(extra_params && extra_params[0])) {
		/* Our module is there: its VMs pick their strategy; only rivals go. */
		for (int i = 0; rivals[i]; i++)
			if (strcmp(rivals[i], hv->module) && unload(rivals[i]))
				return -1;
		return 0;
	}
	for (int i = 0; rivals[i]; i++)
		if (unload(rivals[i]))
			return -1;
	if (hv->ko) {
		hv_ko_path(hv, ko, sizeof(ko));
		argv[0] = "insmod";
		argv[1] = ko;
		if (access(ko, R_OK))
			return err_errno("%s: cannot read %s (run 'make kmod')", hv->name, ko);
	}
	snprintf(params, sizeof(params), "%s", hv->params ? hv->params : "");
	for (char *tok = strtok(params, " "); tok && argc < 15; tok = strtok(NULL, " "))
		argv[argc++] = tok;
	for (int i = 0; hv->ko && extra_params && extra_params[i] && argc < 15; i++)
		argv[argc++] = extra_params[i];
	argv[argc] = NULL;
	if (run_cmd(argv))
		return err("cannot load %s %s (no SVM/VMX on this machine, or another hypervisor owns it)",
			   argv[1], hv->params ? hv->params : "");
	return hv->check_param ? check_mode(hv) : 0;
}
