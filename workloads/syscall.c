// SPDX-License-Identifier: GPL-2.0
/*
 * syscall (Adams & Agesen): a CPL3 loop of SYSCALL/SYSRET round trips into
 * the guest kernel. One operation is one system call. No hypervisor should
 * see it: SYSCALL is not intercepted.
 */
#include "rt.h"

KL_PARAM(p_n, "n", 20000, 1, 100000000, "system calls");

USER_CODE void syscall_loop(u64 n)
{
	long sum = 0;

	for (u64 i = 0; i < n; i++)
		sum = user_syscall3(SYS_ADD3, sum, (long)i, 1);
	user_exit(sum);
}

int workload_main(void)
{
	struct aspace as;
	bool faulted;
	long v;

	aspace_init(&as);
	aspace_map_user_text(&as);
	pt_map(as.root, KL_USER_STACK_VA, page_alloc(), PTE_P | PTE_W | PTE_U | PTE_NX);
	aspace_switch(&as);
	user_run(USER_VA(syscall_loop), KL_USER_STACK_VA + PAGE_SIZE - 8, 1, &faulted);
	kl_phase_begin();
	v = user_run(USER_VA(syscall_loop), KL_USER_STACK_VA + PAGE_SIZE - 8, p_n.value, &faulted);
	kl_phase_end(p_n.value, kl_hash(0, (u64)v));
	aspace_switch(&kl_kernel_as);
	aspace_destroy(&as);
	return faulted ? 1 : 0;
}
