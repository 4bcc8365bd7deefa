// SPDX-License-Identifier: GPL-2.0
/*
 * Exception dispatch. In order: the workload's #PF handler (demand paging,
 * copy-on-write); a fault at CPL3 ends the user task; a fault inside a probe
 * resumes at its fixup; anything else is a bug in the workload or in the
 * hypervisor under test, and ends the run with a report.
 */
#include "rt.h"

/* What the stubs in entry.S / entry32.S push, and the CPU before them. */
#if KL_PAGING_LEVELS == 4
struct trap_frame {
	u64 r15, r14, r13, r12, r11, r10, r9, r8;
	u64 rbp, rdi, rsi, rdx, rcx, rbx, rax;
	u64 vector, error;
	u64 rip, cs, rflags, rsp, ss;	/* pushed by the CPU */
};
#else
struct trap_frame {
	u32 rdi, rsi, rbp, esp_unused, rbx, rdx, rcx, rax;	/* pusha */
	u32 vector, error;
	u32 rip, cs, rflags;		/* pushed by the CPU */
	u32 rsp, ss;			/* only from CPL3 */
};
#endif

struct extable_entry {
	ulong insn, fixup;
} __attribute__((aligned(8)));

extern struct extable_entry __extable_start[], __extable_end[];
extern ulong exec_probe_target;
extern char exec_probe_fixup[];
void user_leave(long value) __attribute__((noreturn));

struct kl_fault kl_last_fault;
kl_pf_handler kl_pf_hook;

static void record(struct trap_frame *f, ulong cr2)
{
	kl_last_fault = (struct kl_fault) {
		.vector = (int)f->vector, .error = f->error,
		.cr2 = cr2, .rip = f->rip,
	};
}

static bool fixup_probe(struct trap_frame *f)
{
	for (struct extable_entry *e = __extable_start; e < __extable_end; e++) {
		if (e->insn == f->rip) {
			f->rip = e->fixup;
			f->rax = f->vector;
			return true;
		}
	}
	if (exec_probe_target && f->rip == exec_probe_target) {
		/* The fetch at the call target faulted: back into probe_exec. */
		f->rip = (ulong)exec_probe_fixup;
		f->rax = f->vector;
		exec_probe_target = 0;
		return true;
	}
	return false;
}

void kl_trap(struct trap_frame *f)
{
	bool user = (f->cs & 3) == 3;
	ulong cr2 = f->vector == VEC_PF ? read_cr2() : 0;

#if KL_PAGING_LEVELS == 4
	if (f->vector >= 32) {
		kl_irq((int)f->vector);
		return;
	}
#endif
	if (f->vector == VEC_PF && kl_pf_hook && kl_pf_hook(cr2, f->error, user))
		return;
	record(f, cr2);
	if (user)
		user_leave(-1);
	if (fixup_probe(f))
		return;
	kl_panic("unexpected exception %llu err %llx rip %llx cr2 %llx",
		 (unsigned long long)f->vector, (unsigned long long)f->error,
		 (unsigned long long)f->rip, (unsigned long long)cr2);
}
