/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The hypervisors a run can name with --hv: which device node speaks the
 * KVM ABI, and which kernel module (with which parameters) must be loaded
 * first. Only one hypervisor can own SVM at a time, so preparing one first
 * unloads the others.
 */
#ifndef KVMLAB_HV_H
#define KVMLAB_HV_H

#include <stddef.h>

struct hv {
	const char *name;
	const char *device;
	const char *module;	/* NULL: use whatever is loaded */
	const char *ko;		/* load this file (beside the harness) instead of modprobe */
	const char *params;	/* module parameters, "key=value ..." */
	const char *check_param;	/* sysfs parameter proving the mode */
	const char *check_value;
	const char *about;
	int hw_paging;		/* the CPU walks the guest's tables (NPT/EPT) */
	unsigned long vm_type;	/* KVM_CREATE_VM's argument (kvmlab: names the strategy) */
};

const struct hv *hv_find(const char *name);
const struct hv *hv_at(int i);		/* NULL past the end */
/*
 * Load the hypervisor's module as it needs (unloading rivals); extra
 * "key=value" module parameters (--modparam) go to modules loaded from a
 * file (kvmlab.ko). NULL-terminated, may be NULL.
 */
int hv_prepare(const struct hv *hv, char *const *extra_params);
/* Where the harness looks for kvmlab.ko: $KVMLAB_KO, or ../kmod/ beside itself. */
void hv_ko_path(const struct hv *hv, char *out, size_t size);
/*
 * Checks that are known to fail under hv on this machine for reasons of the
 * machine itself (an emulator's deviation from the architecture); NULL-
 * terminated, empty when there are none.
 */
const char *const *hv_known_deviations(const struct hv *hv);
/* 1 on an Intel CPU (VT-x: kvm_intel is the yardstick), 0 on AMD. */
int hv_cpu_is_intel(void);
/* Unload every module this table knows, leaving SVM free. */
void hv_unload_all(void);

#endif
