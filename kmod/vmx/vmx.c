// SPDX-License-Identifier: GPL-2.0
/*
 * The Intel VT-x backend: everything that knows what a VMCS is, and nothing
 * of what an exit means. It is the SVM backend's twin (svm/svm.c): the same
 * vendor-neutral state in struct kl_vcpu goes in before each entry, the
 * exit comes back as a call of an x86 handler (kl_handle_*) or the MMU's
 * fault handler, and the strategies never know which of the two ran them.
 *
 * What differs from SVM, and why the code looks the way it does:
 *
 *  - VMX operation (CR4.VMXE, VMXON) is per CPU, on while VMs exist, like
 *    EFER.SVME; if CR4.VMXE is already set, kvm_intel holds it: -EBUSY.
 *  - A VMCS is not memory the host may touch: it is read and written with
 *    VMREAD/VMWRITE, only on the CPU where it is current, and a VMCS that
 *    was active on one CPU must be VMCLEARed there before another CPU may
 *    load it. So every VMCS access happens inside vmx_run with preemption
 *    off (kernel_fpu_begin), after vmcs_load() has made it current here —
 *    clearing it on its old CPU by IPI when the thread moved, as Linux
 *    does. Between runs the guest state the x86 layer asks about
 *    (segments, interrupt shadow) lives in a copy, written at each entry
 *    and read back at each exit.
 *  - The exit reports an instruction length and, for CR, I/O and EPT exits,
 *    a qualification: the lengths go to the handlers; CR and DR accesses are
 *    still decoded by the shared code (x86/emulate.c), one decoder for both.
 *  - The SYSCALL MSRs and KernelGsBase are not in the VMCS: the VM-entry
 *    MSR-load list puts the guest's in, the exit's store list saves them,
 *    and the exit's load list restores the host's.
 *  - CR2 is not in the VMCS either: it is loaded before VMLAUNCH and read
 *    after the exit, with interrupts off.
 *  - Virtual NMIs give NMI blocking and an NMI-window exit that SVM lacks
 *    (svm.c single-steps the IRET instead).
 *  - Nested paging is EPT: the nested strategy builds its table in EPT's
 *    format (kl_tdp, set at load), and a guest without paging or in real
 *    mode runs as it is ("unrestricted guest"). A shadowed guest needs
 *    CR0.PE and PG in the hardware, so while its paging is off (real mode
 *    included) it runs under EPT too, on the MMU layer's physical-mode
 *    tree built in EPT's format (phys.c, kl_phys_nested): EPT is switched
 *    on per entry, whenever the MMU layer hands over a nested root. Without
 *    unrestricted guest, real mode would need virtual-8086 mode, which is
 *    not built: it is refused with an internal error.
 *  - VPID tags the guest's TLB entries (one VPID for every vCPU, as the SVM
 *    backend uses one ASID), so an exit does not flush them; they are
 *    flushed when another VMCS ran on this CPU, on a move, or on request.
 */
#include <linux/cpuhotplug.h>
#include <linux/kvm.h>
#include <linux/mm.h>
#include <linux/percpu.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <asm/apic.h>
#include <asm/cpu_entry_area.h>
#include <asm/debugreg.h>
#include <asm/desc.h>
#include <asm/fpu/api.h>
#include <asm/io.h>
#include <asm/msr.h>
#include <asm/mtrr.h>
#include <asm/tlbflush.h>
#include <asm/traps.h>
#include <asm/trapnr.h>
#include <asm/vmx.h>
#include "../x86/vendor.h"

#define GUEST_VPID	1
/*
 * The longest a guest with interrupts off runs before an exit gives the
 * host its pending interrupts (see inject_events), in milliseconds.
 */
#define SLICE_MS	10
#ifndef EXIT_REASON_GETSEC
#define EXIT_REASON_GETSEC	11	/* exits unconditionally; <uapi/asm/vmx.h> lacks it */
#endif

/* What this CPU's VMX offers us, read once at hardware_enable. */
struct vmx_config {
	u32 revision;
	u32 pin, cpu, cpu2, exit, entry;
	bool ept, vpid, unrestricted;
	bool invept_single, invvpid_single;
	u32 preemption_slice;		/* 0: no VMX-preemption timer */
	u64 cr0_fixed0, cr0_fixed1, cr4_fixed0, cr4_fixed1;
};

struct vmx_cpu {
	struct page *vmxon_region;
	struct list_head loaded;	/* VMCSs active on this CPU: VMCLEAR before VMXOFF */
	struct vmx_vcpu *current_vmcs;	/* the one VMPTRLD made current */
	struct vmx_vcpu *last_run;	/* the TLB may hold its guest's VPID-tagged entries */
	int state;			/* 1: in VMX operation by us; <0: why not */
};

struct vmx_exit {
	u32 reason, intr_info, intr_error, idt_info, idt_error, insn_len;
	u64 qual, gpa;
};

struct vmx_vcpu {
	struct kl_vcpu *vcpu;
	struct page *vmcs;
	int cpu;			/* where the VMCS is active; -1: clear */
	bool launched;			/* VMRESUME, not VMLAUNCH (VMCLEAR resets it) */
	u32 cpu2;			/* secondary controls, EPT's switched per entry */
	bool controls_set;		/* the VMCS holds our constant fields */
	struct list_head loaded_link;	/* on vmx_cpu.loaded of vmx->cpu */

	/* Guest state between runs (VMREAD only works with the VMCS current). */
	struct kvm_segment seg[8];	/* indexed like the VMCS: ES CS SS DS FS GS LDTR TR */
	struct kvm_dtable gdt, idt;
	u32 interruptibility;		/* GUEST_INTERRUPTIBILITY_INFO at the exit */
	u64 exit_rip;			/* the shadow covers the instruction there */
	u64 pdptr[4];			/* PAE guest under EPT: PDPTEs as the CPU loaded them */
	u64 pdptr_cr3, pdptr_cr0, pdptr_cr4;	/* what they were loaded for */

	struct vmx_exit exit;
	/* MSR switch lists: guest (entry load, exit store) and host (exit load). */
	struct vmx_msr_entry *guest_msrs, *host_msrs;
	u8 *vapic;			/* TPR shadow: CR8 without exits */
};

/* The MSRs the VMCS does not switch and a 64-bit guest uses. */
static const u32 switched_msrs[] = {
	MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_SYSCALL_MASK, MSR_KERNEL_GS_BASE,
};
#define NR_SWITCHED	ARRAY_SIZE(switched_msrs)

static struct vmx_config vmx_cfg;
static DEFINE_PER_CPU(struct vmx_cpu, vmx_cpus);
static enum cpuhp_state vmx_hp_state;

int kl_vmx_vmrun(u64 *regs, bool launched);
extern const char kl_vmx_vmexit[];

static inline struct vmx_vcpu *to_vmx(struct kl_vcpu *vcpu)
{
	return vcpu->vendor;
}

/* ---- the VMX instructions (CF or ZF set: VMfailInvalid / VMfailValid) ---- */

static int vmxon(u64 pa)
{
	bool fail;

	asm volatile("vmxon %1; setna %0" : "=q"(fail) : "m"(pa) : "cc", "memory");
	return fail ? -EIO : 0;
}

static void vmxoff(void)
{
	asm volatile("vmxoff" ::: "cc", "memory");
}

static int vmclear(u64 pa)
{
	bool fail;

	asm volatile("vmclear %1; setna %0" : "=q"(fail) : "m"(pa) : "cc", "memory");
	return fail ? -EIO : 0;
}

static int vmptrld(u64 pa)
{
	bool fail;

	asm volatile("vmptrld %1; setna %0" : "=q"(fail) : "m"(pa) : "cc", "memory");
	return fail ? -EIO : 0;
}

static u64 vmread(unsigned long field)
{
	u64 v;

	asm volatile("vmread %1, %0" : "=rm"(v) : "r"(field) : "cc");
	return v;
}

static void vmwrite(unsigned long field, u64 v)
{
	bool fail;

	asm volatile("vmwrite %1, %2; setna %0" : "=q"(fail) : "rm"(v), "r"(field) : "cc");
	if (unlikely(fail))
		pr_err_ratelimited("kvmlab: VMWRITE %#lx=%#llx failed (error %llu)\n",
				   field, v, vmread(VM_INSTRUCTION_ERROR));
}

static void invept(int type, u64 eptp)
{
	struct { u64 eptp, zero; } desc = { eptp, 0 };

	asm volatile("invept %0, %1" :: "m"(desc), "r"((u64)type) : "cc", "memory");
}

static void invvpid(int type, u16 vpid)
{
	struct { u64 vpid, gva; } desc = { vpid, 0 };

	asm volatile("invvpid %0, %1" :: "m"(desc), "r"((u64)type) : "cc", "memory");
}

static void flush_vpid(void)
{
	if (vmx_cfg.invvpid_single)
		invvpid(VMX_VPID_EXTENT_SINGLE_CONTEXT, GUEST_VPID);
	else
		invvpid(VMX_VPID_EXTENT_ALL_CONTEXT, 0);
}

/* ---- what the CPU offers ---- */

/* Controls we need (min) and would like (opt) against an allowed-0/1 MSR. */
static int adjust_controls(u32 min, u32 opt, u32 msr, u32 *result)
{
	u32 lo, hi, ctl = min | opt;

	rdmsr(msr, lo, hi);
	ctl &= hi;		/* allowed to be 1 */
	ctl |= lo;		/* must be 1 */
	if (min & ~ctl)
		return -EIO;
	*result = ctl;
	return 0;
}

static int setup_config(void)
{
	struct vmx_config *c = &vmx_cfg;
	u64 basic, ept_vpid = 0, vpid_caps;
	bool true_msrs;
	u32 opt2 = 0;

	rdmsrl(MSR_IA32_VMX_BASIC, basic);
	true_msrs = basic & VMX_BASIC_TRUE_CTLS;
	c->revision = basic & 0x7fffffff;
	if (adjust_controls(PIN_BASED_EXT_INTR_MASK | PIN_BASED_NMI_EXITING | PIN_BASED_VIRTUAL_NMIS,
			    PIN_BASED_VMX_PREEMPTION_TIMER,
			    true_msrs ? MSR_IA32_VMX_TRUE_PINBASED_CTLS : MSR_IA32_VMX_PINBASED_CTLS,
			    &c->pin))
		return -EIO;
	if (c->pin & PIN_BASED_VMX_PREEMPTION_TIMER) {
		u64 misc, ticks = (u64)tsc_khz * SLICE_MS;

		rdmsrl(MSR_IA32_VMX_MISC, misc);
		ticks >>= misc & VMX_MISC_PREEMPTION_TIMER_RATE_MASK;
		c->preemption_slice = clamp_t(u64, ticks, 1, U32_MAX);
		c->pin &= ~PIN_BASED_VMX_PREEMPTION_TIMER;	/* switched on per entry */
	}
	/*
	 * Every port, every MSR (no bitmaps), HLT, MOV DR, MONITOR/MWAIT exit;
	 * CR8 goes through the TPR shadow. INVLPG and CR3 exits are added per
	 * VM when its strategy shadows (vmcs_setup).
	 */
	if (adjust_controls(CPU_BASED_HLT_EXITING | CPU_BASED_UNCOND_IO_EXITING |
			    CPU_BASED_MOV_DR_EXITING | CPU_BASED_MWAIT_EXITING |
			    CPU_BASED_MONITOR_EXITING | CPU_BASED_USE_TSC_OFFSETTING |
			    CPU_BASED_TPR_SHADOW,
			    CPU_BASED_ACTIVATE_SECONDARY_CONTROLS,
			    true_msrs ? MSR_IA32_VMX_TRUE_PROCBASED_CTLS : MSR_IA32_VMX_PROCBASED_CTLS,
			    &c->cpu))
		return -EIO;
	if (c->cpu & CPU_BASED_ACTIVATE_SECONDARY_CONTROLS) {
		opt2 = SECONDARY_EXEC_ENABLE_EPT | SECONDARY_EXEC_ENABLE_VPID |
		       SECONDARY_EXEC_UNRESTRICTED_GUEST;
		if (adjust_controls(0, opt2, MSR_IA32_VMX_PROCBASED_CTLS2, &c->cpu2))
			return -EIO;
		if (c->cpu2 & (SECONDARY_EXEC_ENABLE_EPT | SECONDARY_EXEC_ENABLE_VPID))
			rdmsrl(MSR_IA32_VMX_EPT_VPID_CAP, ept_vpid);
	}
	c->ept = (c->cpu2 & SECONDARY_EXEC_ENABLE_EPT) && (ept_vpid & VMX_EPT_PAGE_WALK_4_BIT) &&
		 (ept_vpid & VMX_EPTP_WB_BIT) && (ept_vpid & VMX_EPT_INVEPT_BIT) &&
		 (ept_vpid & VMX_EPT_EXTENT_GLOBAL_BIT);
	c->invept_single = ept_vpid & VMX_EPT_EXTENT_CONTEXT_BIT;
	/* The VPID capabilities are the MSR's high half (<asm/vmx.h> counts from bit 32). */
	vpid_caps = ept_vpid >> 32;
	c->vpid = (c->cpu2 & SECONDARY_EXEC_ENABLE_VPID) && (vpid_caps & VMX_VPID_INVVPID_BIT) &&
		  (vpid_caps & (VMX_VPID_EXTENT_GLOBAL_CONTEXT_BIT |
				VMX_VPID_EXTENT_SINGLE_CONTEXT_BIT));
	c->invvpid_single = vpid_caps & VMX_VPID_EXTENT_SINGLE_CONTEXT_BIT;
	c->unrestricted = c->ept && (c->cpu2 & SECONDARY_EXEC_UNRESTRICTED_GUEST);
	if (!c->ept)
		c->cpu2 &= ~(SECONDARY_EXEC_ENABLE_EPT | SECONDARY_EXEC_UNRESTRICTED_GUEST);
	if (!c->vpid)
		c->cpu2 &= ~SECONDARY_EXEC_ENABLE_VPID;
	if (adjust_controls(VM_EXIT_HOST_ADDR_SPACE_SIZE | VM_EXIT_SAVE_IA32_PAT |
			    VM_EXIT_LOAD_IA32_PAT | VM_EXIT_SAVE_IA32_EFER | VM_EXIT_LOAD_IA32_EFER |
			    VM_EXIT_SAVE_DEBUG_CONTROLS, 0,
			    true_msrs ? MSR_IA32_VMX_TRUE_EXIT_CTLS : MSR_IA32_VMX_EXIT_CTLS, &c->exit))
		return -EIO;
	if (adjust_controls(VM_ENTRY_LOAD_IA32_PAT | VM_ENTRY_LOAD_IA32_EFER |
			    VM_ENTRY_LOAD_DEBUG_CONTROLS, 0,
			    true_msrs ? MSR_IA32_VMX_TRUE_ENTRY_CTLS : MSR_IA32_VMX_ENTRY_CTLS,
			    &c->entry))
		return -EIO;
	rdmsrl(MSR_IA32_VMX_CR0_FIXED0, c->cr0_fixed0);
	rdmsrl(MSR_IA32_VMX_CR0_FIXED1, c->cr0_fixed1);
	rdmsrl(MSR_IA32_VMX_CR4_FIXED0, c->cr4_fixed0);
	rdmsrl(MSR_IA32_VMX_CR4_FIXED1, c->cr4_fixed1);
	if (c->unrestricted)
		c->cr0_fixed0 &= ~(X86_CR0_PE | X86_CR0_PG);
	return 0;
}

/* ---- switching VMX on and off ---- */

static void vmclear_local(struct vmx_vcpu *vmx)
{
	struct vmx_cpu *vc = this_cpu_ptr(&vmx_cpus);

	vmclear(page_to_phys(vmx->vmcs));
	list_del_init(&vmx->loaded_link);
	if (vc->current_vmcs == vmx)
		vc->current_vmcs = NULL;
	if (vc->last_run == vmx)
		vc->last_run = NULL;
	vmx->cpu = -1;
	vmx->launched = false;
}

static void vmclear_ipi(void *data)
{
	struct vmx_vcpu *vmx = data;

	if (vmx->cpu == smp_processor_id())
		vmclear_local(vmx);
}

/* Wherever the VMCS is active, make it clear (its state goes to memory). */
static void vmclear_anywhere(struct vmx_vcpu *vmx)
{
	int cpu = READ_ONCE(vmx->cpu);

	if (cpu >= 0)
		smp_call_function_single(cpu, vmclear_ipi, vmx, 1);
}

static const char *enable_error(int e)
{
	return e == -EBUSY ? "another hypervisor (kvm_intel?) is using it" :
	       e == -ENODEV ? "disabled by the firmware (IA32_FEATURE_CONTROL)" :
			      "VMXON failed";
}

static int vmx_cpu_online(unsigned int cpu)
{
	struct vmx_cpu *vc = per_cpu_ptr(&vmx_cpus, cpu);
	u64 feature;
	int r = 0;

	INIT_LIST_HEAD(&vc->loaded);
	vc->current_vmcs = vc->last_run = NULL;
	rdmsrl(MSR_IA32_FEAT_CTL, feature);
	if (cr4_read_shadow() & X86_CR4_VMXE)
		r = -EBUSY;	/* someone else (kvm_intel?) runs VMs here */
	else if (!(feature & FEAT_CTL_LOCKED) || !(feature & FEAT_CTL_VMX_ENABLED_OUTSIDE_SMX))
		r = -ENODEV;
	if (!r) {
		cr4_set_bits(X86_CR4_VMXE);
		r = vmxon(page_to_phys(vc->vmxon_region));
		if (r)
			cr4_clear_bits(X86_CR4_VMXE);
	}
	if (r) {
		vc->state = r;
		pr_err("kvmlab: cannot enable VMX on CPU %u: %s\n", cpu, enable_error(r));
		return r;
	}
	/* Whatever an earlier user left tagged is not ours to trust. */
	if (vmx_cfg.ept)
		invept(VMX_EPT_EXTENT_GLOBAL, 0);
	if (vmx_cfg.vpid)
		flush_vpid();
	vc->state = 1;
	return 0;
}

static int vmx_cpu_offline(unsigned int cpu)
{
	struct vmx_cpu *vc = per_cpu_ptr(&vmx_cpus, cpu);
	struct vmx_vcpu *vmx, *tmp;

	if (vc->state != 1)
		return 0;
	/* A vCPU that ran here moves its VMCS out through memory. */
	list_for_each_entry_safe(vmx, tmp, &vc->loaded, loaded_link)
		vmclear_local(vmx);
	vmxoff();
	cr4_clear_bits(X86_CR4_VMXE);
	vc->state = 0;
	return 0;
}

static void free_cpu_pages(void)
{
	int cpu;

	for_each_possible_cpu(cpu) {
		struct vmx_cpu *vc = per_cpu_ptr(&vmx_cpus, cpu);

		if (vc->vmxon_region)
			__free_page(vc->vmxon_region);
		vc->vmxon_region = NULL;
	}
}

static int vmx_hardware_enable(void)
{
	int cpu, r = 0;

	for_each_possible_cpu(cpu) {
		struct vmx_cpu *vc = per_cpu_ptr(&vmx_cpus, cpu);

		vc->vmxon_region = alloc_page(GFP_KERNEL | __GFP_ZERO);
		vc->state = 0;
		if (!vc->vmxon_region)
			r = -ENOMEM;
		else
			*(u32 *)page_address(vc->vmxon_region) = vmx_cfg.revision;
	}
	if (r)
		goto fail;
	/* On every online CPU now; a failure on one undoes the others. */
	r = cpuhp_setup_state(CPUHP_AP_ONLINE_DYN, "kvmlab/vmx:online", vmx_cpu_online,
			      vmx_cpu_offline);
	if (r < 0)
		goto fail;
	vmx_hp_state = r;
	return 0;
fail:
	free_cpu_pages();
	return r;
}

static void vmx_hardware_disable(void)
{
	cpuhp_remove_state(vmx_hp_state);
	free_cpu_pages();
}

/* ---- segments: the x86 layer's view, kept here between runs ---- */

enum { SEG_ES, SEG_CS, SEG_SS, SEG_DS, SEG_FS, SEG_GS, SEG_LDTR, SEG_TR };

static const struct {
	u32 selector, base, limit, ar;
} seg_fields[8] = {
	[SEG_ES] = { GUEST_ES_SELECTOR, GUEST_ES_BASE, GUEST_ES_LIMIT, GUEST_ES_AR_BYTES },
	[SEG_CS] = { GUEST_CS_SELECTOR, GUEST_CS_BASE, GUEST_CS_LIMIT, GUEST_CS_AR_BYTES },
	[SEG_SS] = { GUEST_SS_SELECTOR, GUEST_SS_BASE, GUEST_SS_LIMIT, GUEST_SS_AR_BYTES },
	[SEG_DS] = { GUEST_DS_SELECTOR, GUEST_DS_BASE, GUEST_DS_LIMIT, GUEST_DS_AR_BYTES },
	[SEG_FS] = { GUEST_FS_SELECTOR, GUEST_FS_BASE, GUEST_FS_LIMIT, GUEST_FS_AR_BYTES },
	[SEG_GS] = { GUEST_GS_SELECTOR, GUEST_GS_BASE, GUEST_GS_LIMIT, GUEST_GS_AR_BYTES },
	[SEG_LDTR] = { GUEST_LDTR_SELECTOR, GUEST_LDTR_BASE, GUEST_LDTR_LIMIT, GUEST_LDTR_AR_BYTES },
	[SEG_TR] = { GUEST_TR_SELECTOR, GUEST_TR_BASE, GUEST_TR_LIMIT, GUEST_TR_AR_BYTES },
};

/*
 * VMX's access rights: the descriptor's attribute bits, plus "unusable"
 * (bit 16) for a null or not-present segment. A usable code or data
 * segment always has its accessed bit set once loaded, and VM entry
 * insists on it; userspace's sregs sometimes lack it, as KVM also fixes.
 */
static u32 seg_to_ar(const struct kvm_segment *s, int idx)
{
	u32 type = s->type;

	if (s->unusable || !s->present)
		return VMX_AR_UNUSABLE_MASK;
	if (s->s && idx != SEG_LDTR && idx != SEG_TR)
		type |= VMX_AR_TYPE_ACCESSES_MASK;
	return (type & 0xf) | (s->s << 4) | (s->dpl << 5) | (s->present << 7) | (s->avl << 12) |
	       (s->l << 13) | (s->db << 14) | (s->g << 15);
}

static void seg_from_vmcs(struct kvm_segment *s, int idx)
{
	u32 ar = vmread(seg_fields[idx].ar);

	*s = (struct kvm_segment) {
		.selector = vmread(seg_fields[idx].selector), .base = vmread(seg_fields[idx].base),
		.limit = vmread(seg_fields[idx].limit),
		.type = ar & 0xf, .s = (ar >> 4) & 1, .dpl = (ar >> 5) & 3,
		.present = (ar >> 7) & 1, .avl = (ar >> 12) & 1, .l = (ar >> 13) & 1,
		.db = (ar >> 14) & 1, .g = (ar >> 15) & 1, .unusable = (ar >> 16) & 1,
	};
	if (s->unusable)
		s->present = 0;
}

static void vmx_get_segments(struct kl_vcpu *vcpu, struct kvm_sregs *sr)
{
	struct vmx_vcpu *vmx = to_vmx(vcpu);

	sr->es = vmx->seg[SEG_ES];
	sr->cs = vmx->seg[SEG_CS];
	sr->ss = vmx->seg[SEG_SS];
	sr->ds = vmx->seg[SEG_DS];
	sr->fs = vmx->seg[SEG_FS];
	sr->gs = vmx->seg[SEG_GS];
	sr->ldt = vmx->seg[SEG_LDTR];
	sr->tr = vmx->seg[SEG_TR];
	sr->gdt = vmx->gdt;
	sr->idt = vmx->idt;
}

static void vmx_set_segments(struct kl_vcpu *vcpu, const struct kvm_sregs *sr)
{
	struct vmx_vcpu *vmx = to_vmx(vcpu);

	vmx->seg[SEG_ES] = sr->es;
	vmx->seg[SEG_CS] = sr->cs;
	vmx->seg[SEG_SS] = sr->ss;
	vmx->seg[SEG_DS] = sr->ds;
	vmx->seg[SEG_FS] = sr->fs;
	vmx->seg[SEG_GS] = sr->gs;
	vmx->seg[SEG_LDTR] = sr->ldt;
	vmx->seg[SEG_TR] = sr->tr;
	vmx->gdt = sr->gdt;
	vmx->idt = sr->idt;
}

/* VMX keeps CPL in SS.DPL (real mode: 0). */
static int vmx_get_cpl(struct kl_vcpu *vcpu)
{
	if (!(vcpu->cr0 & X86_CR0_PE))
		return 0;
	return to_vmx(vcpu)->seg[SEG_SS].dpl;
}

static bool vmx_interrupt_shadow(struct kl_vcpu *vcpu)
{
	struct vmx_vcpu *vmx = to_vmx(vcpu);

	return (vmx->interruptibility & (GUEST_INTR_STATE_STI | GUEST_INTR_STATE_MOV_SS)) &&
	       vcpu->rip == vmx->exit_rip;
}

static void vmx_set_interrupt_shadow(struct kl_vcpu *vcpu, bool on)
{
	struct vmx_vcpu *vmx = to_vmx(vcpu);

	vmx->interruptibility &= ~(GUEST_INTR_STATE_STI | GUEST_INTR_STATE_MOV_SS);
	if (on)
		vmx->interruptibility |= GUEST_INTR_STATE_STI;
	vmx->exit_rip = vcpu->rip;	/* the shadow covers the instruction at RIP */
}

/* RESET: real mode, CS at the reset vector's segment, no events. */
static void vmx_vcpu_reset(struct kl_vcpu *vcpu)
{
	struct vmx_vcpu *vmx = to_vmx(vcpu);
	struct kvm_segment data = { .limit = 0xffff, .type = 3, .s = 1, .present = 1 };

	for (int i = SEG_ES; i <= SEG_GS; i++)
		vmx->seg[i] = data;
	vmx->seg[SEG_CS] = (struct kvm_segment) { .selector = 0xf000, .base = 0xffff0000,
						  .limit = 0xffff, .type = 0xb, .s = 1, .present = 1 };
	vmx->seg[SEG_LDTR] = (struct kvm_segment) { .limit = 0xffff, .type = 2, .present = 1 };
	vmx->seg[SEG_TR] = (struct kvm_segment) { .limit = 0xffff, .type = 0xb, .present = 1 };
	vmx->gdt = vmx->idt = (struct kvm_dtable) { .limit = 0xffff };
	vmx->interruptibility = 0;
	vmx->pdptr_cr3 = ~0ull;
}

/* ---- VMCS life cycle ---- */

static int vmx_vcpu_create(struct kl_vcpu *vcpu)
{
	struct vmx_vcpu *vmx = kzalloc(sizeof(*vmx), GFP_KERNEL_ACCOUNT);
	struct page *msrs, *vapic;

	if (!vmx)
		return -ENOMEM;
	vmx->vmcs = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
	msrs = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
	vapic = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
	if (!vmx->vmcs || !msrs || !vapic)
		goto fail;
	*(u32 *)page_address(vmx->vmcs) = vmx_cfg.revision;
	vmx->guest_msrs = page_address(msrs);
	vmx->host_msrs = vmx->guest_msrs + NR_SWITCHED;
	vmx->vapic = page_address(vapic);
	vmx->vcpu = vcpu;
	vmx->cpu = -1;
	INIT_LIST_HEAD(&vmx->loaded_link);
	/* A new VMCS is made clear (launch state "clear") before its first VMPTRLD. */
	if (vmclear(page_to_phys(vmx->vmcs)))
		goto fail;
	vcpu->vendor = vmx;
	vmx_vcpu_reset(vcpu);
	return 0;
fail:
	if (vmx->vmcs)
		__free_page(vmx->vmcs);
	if (msrs)
		__free_page(msrs);
	if (vapic)
		__free_page(vapic);
	kfree(vmx);
	return -ENOMEM;
}

static void forget_everywhere(void *data)
{
	struct vmx_cpu *vc = this_cpu_ptr(&vmx_cpus);

	/* A freed VMCS must not be mistaken for the next one at this address. */
	cmpxchg(&vc->last_run, (struct vmx_vcpu *)data, NULL);
}

static void vmx_vcpu_free(struct kl_vcpu *vcpu)
{
	struct vmx_vcpu *vmx = to_vmx(vcpu);

	vmclear_anywhere(vmx);
	on_each_cpu(forget_everywhere, vmx, 1);
	__free_page(vmx->vmcs);
	free_page((unsigned long)vmx->guest_msrs);
	free_page((unsigned long)vmx->vapic);
	kfree(vmx);
}

/* What stays the same for the VMCS's life: controls, host constants, lists. */
static void vmcs_setup(struct kl_vcpu *vcpu)
{
	struct vmx_vcpu *vmx = to_vmx(vcpu);
	bool tdp = kl_mmu_tdp(vcpu->vm);
	u32 cpu = vmx_cfg.cpu, cpu2 = vmx_cfg.cpu2;
	u32 exceptions = BIT(UD_VECTOR);	/* VMMCALL (AMD's hypercall) is rewritten */

	if (tdp) {
		cpu &= ~(CPU_BASED_CR3_LOAD_EXITING | CPU_BASED_CR3_STORE_EXITING |
			 CPU_BASED_INVLPG_EXITING);
	} else {
		/* Shadow paging: the guest's CR3, #PF and INVLPG are ours to see. */
		cpu |= CPU_BASED_CR3_LOAD_EXITING | CPU_BASED_CR3_STORE_EXITING |
		       CPU_BASED_INVLPG_EXITING;
		exceptions |= BIT(PF_VECTOR);
	}
	vmwrite(PIN_BASED_VM_EXEC_CONTROL, vmx_cfg.pin);
	vmwrite(CPU_BASED_VM_EXEC_CONTROL, cpu);
	vmx->cpu2 = cpu2;
	vmwrite(VM_EXIT_CONTROLS, vmx_cfg.exit);
	vmwrite(EXCEPTION_BITMAP, exceptions);
	vmwrite(PAGE_FAULT_ERROR_CODE_MASK, 0);
	vmwrite(PAGE_FAULT_ERROR_CODE_MATCH, 0);
	vmwrite(CR3_TARGET_COUNT, 0);
	/* Every CR0 and CR4 bit is the host's: writes exit, reads see the shadow. */
	vmwrite(CR0_GUEST_HOST_MASK, ~0ul);
	vmwrite(CR4_GUEST_HOST_MASK, ~0ul);
	vmwrite(VIRTUAL_APIC_PAGE_ADDR, virt_to_phys(vmx->vapic));
	vmwrite(TPR_THRESHOLD, 0);
	if (vmx_cfg.vpid)
		vmwrite(VIRTUAL_PROCESSOR_ID, GUEST_VPID);
	vmwrite(VMCS_LINK_POINTER, ~0ull);
	vmwrite(GUEST_IA32_DEBUGCTL, 0);
	vmwrite(GUEST_DR7, 0x400);	/* guest DR accesses exit and are emulated */
	vmwrite(GUEST_PENDING_DBG_EXCEPTIONS, 0);
	vmwrite(GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_ACTIVE);

	for (int i = 0; i < NR_SWITCHED; i++) {
		vmx->guest_msrs[i].index = switched_msrs[i];
		vmx->host_msrs[i].index = switched_msrs[i];
	}
	vmwrite(VM_ENTRY_MSR_LOAD_ADDR, virt_to_phys(vmx->guest_msrs));
	vmwrite(VM_ENTRY_MSR_LOAD_COUNT, NR_SWITCHED);
	vmwrite(VM_EXIT_MSR_STORE_ADDR, virt_to_phys(vmx->guest_msrs));
	vmwrite(VM_EXIT_MSR_STORE_COUNT, NR_SWITCHED);
	vmwrite(VM_EXIT_MSR_LOAD_ADDR, virt_to_phys(vmx->host_msrs));
	vmwrite(VM_EXIT_MSR_LOAD_COUNT, NR_SWITCHED);

	vmwrite(HOST_CS_SELECTOR, __KERNEL_CS);
	vmwrite(HOST_SS_SELECTOR, __KERNEL_DS);
	vmwrite(HOST_DS_SELECTOR, 0);
	vmwrite(HOST_ES_SELECTOR, 0);
	vmwrite(HOST_FS_SELECTOR, 0);
	vmwrite(HOST_GS_SELECTOR, 0);
	vmwrite(HOST_TR_SELECTOR, GDT_ENTRY_TSS * 8);
	vmwrite(HOST_RIP, (unsigned long)kl_vmx_vmexit);
	vmx->controls_set = true;
}

/* The host's per-CPU state, for a VMCS newly active on this CPU. */
static void vmcs_host_per_cpu(int cpu)
{
	struct desc_ptr idt;
	u64 v;

	store_idt(&idt);
	vmwrite(HOST_IDTR_BASE, idt.address);
	vmwrite(HOST_GDTR_BASE, (unsigned long)get_current_gdt_ro());
	vmwrite(HOST_TR_BASE, (unsigned long)&get_cpu_entry_area(cpu)->tss.x86_tss);
	rdmsrl(MSR_IA32_SYSENTER_CS, v);
	vmwrite(HOST_IA32_SYSENTER_CS, v);
	rdmsrl(MSR_IA32_SYSENTER_ESP, v);
	vmwrite(HOST_IA32_SYSENTER_ESP, v);
	rdmsrl(MSR_IA32_SYSENTER_EIP, v);
	vmwrite(HOST_IA32_SYSENTER_EIP, v);
}

/*
 * Make the vCPU's VMCS current on this CPU (preemption off, interrupts
 * on: clearing it on the CPU it was active on takes an IPI). Returns true
 * when it arrived here from elsewhere.
 */
static bool vmcs_load(struct vmx_vcpu *vmx)
{
	struct vmx_cpu *vc = this_cpu_ptr(&vmx_cpus);
	int cpu = smp_processor_id();
	bool moved = false;

	if (vmx->cpu != cpu) {
		moved = vmx->cpu >= 0;
		vmclear_anywhere(vmx);
		local_irq_disable();
		list_add(&vmx->loaded_link, &vc->loaded);
		vmx->cpu = cpu;
		local_irq_enable();
	}
	if (vc->current_vmcs != vmx) {
		if (vmptrld(page_to_phys(vmx->vmcs)))
			pr_err_ratelimited("kvmlab: VMPTRLD failed on CPU %d\n", cpu);
		vc->current_vmcs = vmx;
	}
	if (!vmx->controls_set)
		vmcs_setup(vmx->vcpu);
	if (moved || vc->last_run != vmx)
		vmcs_host_per_cpu(cpu);
	return moved;
}

/* ---- entering the guest ---- */

/*
 * A PAE guest under EPT: the CPU takes its four PDPTEs from the VMCS at
 * entry, not from memory. They are read from guest memory when CR0, CR3 or
 * CR4 changed under us (our emulation, or userspace); a CR3 load the guest
 * did itself left the CPU's own in the VMCS, read back at the exit.
 */
static void load_pdptrs(struct kl_vcpu *vcpu)
{
	struct vmx_vcpu *vmx = to_vmx(vcpu);
	u64 cr3 = vcpu->cr3 & ~0x1full;

	if (!kl_mmu_tdp(vcpu->vm) || !kl_guest_paging(vcpu) || kl_guest_long_mode(vcpu) ||
	    !(vcpu->cr4 & X86_CR4_PAE))
		return;
	if (vmx->pdptr_cr3 == vcpu->cr3 && vmx->pdptr_cr0 == vcpu->cr0 &&
	    vmx->pdptr_cr4 == vcpu->cr4)
		return;
	if (kl_read_guest(vcpu->vm, cr3, vmx->pdptr, sizeof(vmx->pdptr)))
		memset(vmx->pdptr, 0, sizeof(vmx->pdptr));
	vmx->pdptr_cr3 = vcpu->cr3;
	vmx->pdptr_cr0 = vcpu->cr0;
	vmx->pdptr_cr4 = vcpu->cr4;
}

static u64 eptp_of(u64 root)
{
	return root | VMX_EPTP_MT_WB | VMX_EPTP_PWL_4;
}

static void write_paging(struct kl_vcpu *vcpu, const struct kl_hw_paging *hw)
{
	struct vmx_vcpu *vmx = to_vmx(vcpu);
	u64 cr0 = (hw->cr0 | vmx_cfg.cr0_fixed0 | X86_CR0_NE) & vmx_cfg.cr0_fixed1;
	u64 cr4 = (hw->cr4 | vmx_cfg.cr4_fixed0) & vmx_cfg.cr4_fixed1;
	u32 entry = vmx_cfg.entry & ~VM_ENTRY_IA32E_MODE;
	u32 nested = SECONDARY_EXEC_ENABLE_EPT | (vmx_cfg.unrestricted ?
						  SECONDARY_EXEC_UNRESTRICTED_GUEST : 0);

	vmwrite(GUEST_CR0, cr0);
	vmwrite(CR0_READ_SHADOW, vcpu->cr0);
	vmwrite(GUEST_CR4, cr4);
	vmwrite(CR4_READ_SHADOW, vcpu->cr4);
	vmwrite(GUEST_CR3, hw->cr3);
	vmwrite(GUEST_IA32_EFER, hw->efer);
	if (hw->efer & EFER_LMA)
		entry |= VM_ENTRY_IA32E_MODE;
	vmwrite(VM_ENTRY_CONTROLS, entry);
	/* A nested root: mmu=npt, or a shadowed guest with paging off (phys.c). */
	if (vmx_cfg.cpu & CPU_BASED_ACTIVATE_SECONDARY_CONTROLS)
		vmwrite(SECONDARY_VM_EXEC_CONTROL, hw->nested_cr3 ? vmx->cpu2 | nested :
				vmx->cpu2 & ~nested);
	if (hw->nested_cr3) {
		vmwrite(EPT_POINTER, eptp_of(hw->nested_cr3));
		for (int i = 0; i < 4; i++)
			vmwrite(GUEST_PDPTR0 + 2 * i, vmx->pdptr[i]);
	}
}

static void write_segments(struct vmx_vcpu *vmx)
{
	for (int i = 0; i < 8; i++) {
		const struct kvm_segment *s = &vmx->seg[i];

		vmwrite(seg_fields[i].selector, s->selector);
		vmwrite(seg_fields[i].base, s->base);
		vmwrite(seg_fields[i].limit, s->limit);
		vmwrite(seg_fields[i].ar, seg_to_ar(s, i));
	}
	vmwrite(GUEST_GDTR_BASE, vmx->gdt.base);
	vmwrite(GUEST_GDTR_LIMIT, vmx->gdt.limit);
	vmwrite(GUEST_IDTR_BASE, vmx->idt.base);
	vmwrite(GUEST_IDTR_LIMIT, vmx->idt.limit);
}

/*
 * The event the x86 layer chose goes in the entry's interruption field;
 * a window it waits for becomes an interrupt- or NMI-window exit.
 * Returns the interruption information, for cancel_entry.
 */
static u32 inject_events(struct kl_vcpu *vcpu, u32 *error)
{
	struct vmx_vcpu *vmx = to_vmx(vcpu);
	u32 info = 0, cpu = vmread(CPU_BASED_VM_EXEC_CONTROL);
	struct kl_injection inj;
	bool nmi_was_masked;

	cpu &= ~(CPU_BASED_INTR_WINDOW_EXITING | CPU_BASED_NMI_WINDOW_EXITING);
	if (vcpu->rip != vmx->exit_rip)
		vmx->interruptibility &= ~(GUEST_INTR_STATE_STI | GUEST_INTR_STATE_MOV_SS);
	nmi_was_masked = vcpu->nmi_masked;
	kl_next_injection(vcpu, &inj);
	*error = 0;
	if (inj.inject) {
		info = inj.vector | INTR_INFO_VALID_MASK |
		       (inj.exception ? INTR_TYPE_HARD_EXCEPTION : INTR_TYPE_EXT_INTR);
		/* Real mode pushes no error code, and VM entry refuses one there. */
		if (inj.has_error && (vcpu->cr0 & X86_CR0_PE)) {
			info |= INTR_INFO_DELIVER_CODE_MASK;
			*error = inj.error;
		}
	} else if (inj.nmi) {
		info = NMI_VECTOR | INTR_TYPE_NMI_INTR | INTR_INFO_VALID_MASK;
	}
	vmwrite(VM_ENTRY_INTR_INFO_FIELD, info);
	vmwrite(VM_ENTRY_EXCEPTION_ERROR_CODE, *error);
	/* Blocking by NMI is the CPU's now (virtual NMIs); the x86 layer's flag seeds it. */
	vmx->interruptibility &= ~GUEST_INTR_STATE_NMI;
	if (nmi_was_masked && !inj.nmi)
		vmx->interruptibility |= GUEST_INTR_STATE_NMI;
	vmwrite(GUEST_INTERRUPTIBILITY_INFO, vmx->interruptibility);
	if (inj.irq_window)
		cpu |= CPU_BASED_INTR_WINDOW_EXITING;
	if (vcpu->nmi_pending && !inj.nmi)
		cpu |= CPU_BASED_NMI_WINDOW_EXITING;
	vmwrite(CPU_BASED_VM_EXEC_CONTROL, cpu);
	/*
	 * A guest entered with its IF clear gets a time slice: the
	 * VMX-preemption timer ends it after SLICE_MS at most. A CPU needs
	 * none (external-interrupt exiting ignores the guest's IF), but Bochs
	 * loads the guest's RFLAGS before it counts itself in guest mode, so
	 * it masks host interrupts by the guest's IF until the guest changes
	 * IF: a guest spinning with interrupts off would keep the host's
	 * timer, and the whole machine, waiting forever. One extra exit per
	 * slice, counted in exits like any other, is all it costs elsewhere.
	 */
	if (vmx_cfg.preemption_slice && !(vcpu->rflags & X86_EFLAGS_IF)) {
		vmwrite(PIN_BASED_VM_EXEC_CONTROL, vmx_cfg.pin | PIN_BASED_VMX_PREEMPTION_TIMER);
		vmwrite(VMX_PREEMPTION_TIMER_VALUE, vmx_cfg.preemption_slice);
	} else {
		vmwrite(PIN_BASED_VM_EXEC_CONTROL, vmx_cfg.pin);
	}
	return info;
}

static void write_state(struct kl_vcpu *vcpu, const struct kl_hw_paging *hw)
{
	struct vmx_vcpu *vmx = to_vmx(vcpu);
	const struct kl_msrs *m = &vcpu->msrs;
	u64 msr_values[NR_SWITCHED] = { m->star, m->lstar, m->cstar, m->sfmask,
					m->kernel_gs_base };

	write_paging(vcpu, hw);
	write_segments(vmx);
	vmwrite(GUEST_RIP, vcpu->rip);
	vmwrite(GUEST_RSP, vcpu->regs[KL_RSP]);
	vmwrite(GUEST_RFLAGS, vcpu->rflags | X86_EFLAGS_FIXED);
	vmwrite(GUEST_SYSENTER_CS, m->sysenter_cs);
	vmwrite(GUEST_SYSENTER_ESP, m->sysenter_esp);
	vmwrite(GUEST_SYSENTER_EIP, m->sysenter_eip);
	vmwrite(GUEST_IA32_PAT, m->pat);
	vmwrite(TSC_OFFSET, m->tsc_offset);
	for (int i = 0; i < NR_SWITCHED; i++)
		vmx->guest_msrs[i].value = msr_values[i];
	vmx->vapic[0x80] = (vcpu->cr8 & 0xf) << 4;
}

/* The host state that changes from entry to entry (or cannot be trusted not to). */
static void write_host_state(struct vmx_vcpu *vmx)
{
	u64 v;

	vmwrite(HOST_CR0, read_cr0());
	vmwrite(HOST_CR3, __read_cr3());
	vmwrite(HOST_CR4, cr4_read_shadow());
	rdmsrl(MSR_FS_BASE, v);
	vmwrite(HOST_FS_BASE, v);
	rdmsrl(MSR_GS_BASE, v);
	vmwrite(HOST_GS_BASE, v);
	rdmsrl(MSR_EFER, v);
	vmwrite(HOST_IA32_EFER, v);
	rdmsrl(MSR_IA32_CR_PAT, v);
	vmwrite(HOST_IA32_PAT, v);
	for (int i = 0; i < NR_SWITCHED; i++)
		rdmsrl(switched_msrs[i], vmx->host_msrs[i].value);
}

static void read_exit(struct vmx_vcpu *vmx)
{
	struct vmx_exit *e = &vmx->exit;

	e->reason = vmread(VM_EXIT_REASON);
	e->qual = vmread(EXIT_QUALIFICATION);
	e->intr_info = vmread(VM_EXIT_INTR_INFO);
	e->intr_error = vmread(VM_EXIT_INTR_ERROR_CODE);
	e->idt_info = vmread(IDT_VECTORING_INFO_FIELD);
	e->idt_error = vmread(IDT_VECTORING_ERROR_CODE);
	e->insn_len = vmread(VM_EXIT_INSTRUCTION_LEN);
	e->gpa = vmread(GUEST_PHYSICAL_ADDRESS);
}

static void read_state(struct kl_vcpu *vcpu)
{
	struct vmx_vcpu *vmx = to_vmx(vcpu);

	for (int i = 0; i < 8; i++)
		seg_from_vmcs(&vmx->seg[i], i);
	vmx->gdt = (struct kvm_dtable) { .base = vmread(GUEST_GDTR_BASE),
					 .limit = vmread(GUEST_GDTR_LIMIT) };
	vmx->idt = (struct kvm_dtable) { .base = vmread(GUEST_IDTR_BASE),
					 .limit = vmread(GUEST_IDTR_LIMIT) };
	vcpu->rip = vmx->exit_rip = vmread(GUEST_RIP);
	vcpu->regs[KL_RSP] = vmread(GUEST_RSP);
	vcpu->rflags = vmread(GUEST_RFLAGS);
	vmx->interruptibility = vmread(GUEST_INTERRUPTIBILITY_INFO);
	vcpu->nmi_masked = vmx->interruptibility & GUEST_INTR_STATE_NMI;
	/* SWAPGS changes KernelGsBase without an exit; the exit's store list has it. */
	vcpu->msrs.kernel_gs_base = vmx->guest_msrs[NR_SWITCHED - 1].value;
	vcpu->cr8 = vmx->vapic[0x80] >> 4;
	if (kl_mmu_tdp(vcpu->vm)) {
		vcpu->cr3 = vmread(GUEST_CR3);
		for (int i = 0; i < 4; i++)
			vmx->pdptr[i] = vmread(GUEST_PDPTR0 + 2 * i);
		vmx->pdptr_cr3 = vcpu->cr3;
		vmx->pdptr_cr0 = vcpu->cr0;
		vmx->pdptr_cr4 = vcpu->cr4;
	}
}

/*
 * A kick came between loading the state and VMLAUNCH: end as if an
 * interrupt had arrived before the first guest instruction. The event
 * being injected was not delivered, so it comes back through the
 * IDT-vectoring field, as the hardware reports an interrupted delivery.
 */
static void cancel_entry(struct vmx_vcpu *vmx, u32 info, u32 error)
{
	vmx->exit = (struct vmx_exit) {
		.reason = EXIT_REASON_EXTERNAL_INTERRUPT,
		.idt_info = info, .idt_error = error,
	};
}

/* The TLB entries tagged with our VPID (or, under EPT, derived from the nested table). */
static void flush_guest_tlb(struct kl_vcpu *vcpu, u64 nested_root)
{
	u64 eptp = eptp_of(nested_root);

	if (nested_root)
		invept(vmx_cfg.invept_single ? VMX_EPT_EXTENT_CONTEXT : VMX_EPT_EXTENT_GLOBAL, eptp);
	if (vmx_cfg.vpid)
		flush_vpid();
}

/* What a VM exit does not put back as the host had it. */
struct host_extra {
	u16 ds, es;
	unsigned long dr7;
	u64 debugctl;
};

static void save_host_extra(struct host_extra *h)
{
	savesegment(ds, h->ds);
	savesegment(es, h->es);
	get_debugreg(h->dr7, 7);
	rdmsrl(MSR_IA32_DEBUGCTLMSR, h->debugctl);
}

static void restore_host_extra(const struct host_extra *h)
{
	if (h->ds | h->es) {
		loadsegment(ds, h->ds);
		loadsegment(es, h->es);
	}
	if (h->dr7 != 0x400)
		set_debugreg(h->dr7, 7);
	if (h->debugctl)
		wrmsrl(MSR_IA32_DEBUGCTLMSR, h->debugctl);
	/* The exit leaves TR's limit at 0x67 and the GDT's at 0xffff. */
	invalidate_tss_limit();
	load_fixmap_gdt(smp_processor_id());
}

static void enter_guest(struct kl_vcpu *vcpu, const struct kl_hw_paging *hw)
{
	struct vmx_vcpu *vmx = to_vmx(vcpu);
	struct vmx_cpu *vc;
	struct host_extra host;
	u64 host_xcr0;
	u32 info, error;
	bool moved;
	int fail;

	kernel_fpu_begin();		/* preemption off: the VMCS stays current here */
	moved = vmcs_load(vmx);
	local_irq_disable();
	vc = this_cpu_ptr(&vmx_cpus);
	write_state(vcpu, hw);
	info = inject_events(vcpu, &error);
	write_host_state(vmx);
	save_host_extra(&host);
	asm volatile("fxrstor64 %0" :: "m"(*vcpu->fpu));
	host_xcr0 = kl_load_guest_xcr0(vcpu);
	/* Guest mode is a quiescent state for RCU, as in svm.c. */
	rcu_virt_note_context_switch(smp_processor_id());
	if (kl_enter_guest_mode(vcpu)) {
		if (kl_check_request(vcpu, KL_REQ_TLB_FLUSH) || vc->last_run != vmx || moved)
			flush_guest_tlb(vcpu, hw->nested_cr3);
		if (moved)
			vcpu->stat.cpu_migrations++;
		vc->last_run = vmx;
		native_write_cr2(vcpu->cr2);
		fail = kl_vmx_vmrun(vcpu->regs, vmx->launched);
		vcpu->cr2 = native_read_cr2();
		kl_exit_guest_mode(vcpu);
		if (fail) {
			vmx->exit = (struct vmx_exit) {
				.reason = VMX_EXIT_REASONS_FAILED_VMENTRY,
				.qual = vmread(VM_INSTRUCTION_ERROR),
			};
		} else {
			read_exit(vmx);
			/* A failed entry (bit 31) leaves the launch state as it was. */
			if (!(vmx->exit.reason & VMX_EXIT_REASONS_FAILED_VMENTRY)) {
				vmx->launched = true;
				read_state(vcpu);
			}
		}
	} else {
		cancel_entry(vmx, info, error);
	}
	restore_host_extra(&host);
	kl_put_guest_xcr0(vcpu, host_xcr0);
	asm volatile("fxsave64 %0" : "=m"(*vcpu->fpu));
	/* A host NMI ended guest mode (NMI exiting): it is the host's, raise it again. */
	if ((vmx->exit.reason & 0xffff) == EXIT_REASON_EXCEPTION_NMI &&
	    (vmx->exit.intr_info & (INTR_INFO_VALID_MASK | INTR_INFO_INTR_TYPE_MASK)) ==
	    (INTR_INFO_VALID_MASK | INTR_TYPE_NMI_INTR))
		apic->send_IPI_self(NMI_VECTOR);
	local_irq_enable();
	kernel_fpu_end();
}

/* ---- exits: decode, then hand to the x86 layer or the MMU ---- */

/*
 * An exit in the middle of delivering an event loses the event unless it is
 * injected again. Soft events (INT n, INT3, INTO) are not: RIP still points
 * at the instruction, which raises them again.
 */
static void requeue_idt_vectoring(struct kl_vcpu *vcpu)
{
	u32 info = to_vmx(vcpu)->exit.idt_info;
	u32 type = info & INTR_INFO_INTR_TYPE_MASK;
	u8 vector = info & INTR_INFO_VECTOR_MASK;

	if (!(info & INTR_INFO_VALID_MASK))
		return;
	if (type == INTR_TYPE_HARD_EXCEPTION || type == INTR_TYPE_EXT_INTR)
		kl_requeue_event(vcpu, vector, type == INTR_TYPE_HARD_EXCEPTION,
				 info & INTR_INFO_DELIVER_CODE_MASK, to_vmx(vcpu)->exit.idt_error);
	else if (type == INTR_TYPE_NMI_INTR)
		kl_requeue_nmi(vcpu);
}

static int handle_exception(struct kl_vcpu *vcpu, bool vectoring)
{
	struct vmx_exit *e = &to_vmx(vcpu)->exit;
	u32 type = e->intr_info & INTR_INFO_INTR_TYPE_MASK;
	u8 vector = e->intr_info & INTR_INFO_VECTOR_MASK;

	if (type == INTR_TYPE_NMI_INTR)
		return 1;		/* the host's, raised again in enter_guest */
	/* A fault in the IRET that unblocked NMIs: the IRET runs again, blocked until then. */
	if (e->intr_info & INTR_INFO_UNBLOCK_NMI)
		vcpu->nmi_masked = true;
	switch (vector) {
	case PF_VECTOR:
		return kl_mmu_page_fault(vcpu, e->qual, e->intr_error, vectoring);
	case UD_VECTOR:
		return kl_handle_ud(vcpu);
	default:
		return kl_handle_unexpected(vcpu, e->reason, e->intr_info);
	}
}

static int handle_io(struct kl_vcpu *vcpu)
{
	struct vmx_exit *e = &to_vmx(vcpu)->exit;
	struct kl_io io = {
		.port = e->qual >> 16, .size = (e->qual & 7) + 1, .in = e->qual & 8,
		.string = e->qual & 16, .rep = e->qual & 32, .next_rip = vcpu->rip + e->insn_len,
	};

	return kl_handle_io(vcpu, &io);
}

/* EPT's qualification as the page-fault error code the nested strategy reads. */
static int handle_ept_violation(struct kl_vcpu *vcpu, bool vectoring)
{
	struct vmx_exit *e = &to_vmx(vcpu)->exit;
	u32 error = 0;

	if (e->qual & INTR_INFO_UNBLOCK_NMI)
		vcpu->nmi_masked = true;
	if (e->qual & EPT_VIOLATION_ACC_WRITE)
		error |= KL_PF_W;
	if (e->qual & EPT_VIOLATION_ACC_INSTR)
		error |= KL_PF_ID;
	if (e->qual & EPT_VIOLATION_RWX_MASK)
		error |= KL_PF_P;
	vcpu->stat.npf_exits++;
	return kl_mmu_page_fault(vcpu, e->gpa, error, vectoring);
}

static int skip_instruction(struct kl_vcpu *vcpu)
{
	vcpu->rip += to_vmx(vcpu)->exit.insn_len;
	return 1;
}

static int handle_exit(struct kl_vcpu *vcpu)
{
	struct vmx_exit *e = &to_vmx(vcpu)->exit;
	bool vectoring = e->idt_info & INTR_INFO_VALID_MASK;
	int len = e->insn_len;

	vcpu->stat.exits++;
	if (e->reason & VMX_EXIT_REASONS_FAILED_VMENTRY)
		return kl_handle_entry_failure(vcpu, e->reason == VMX_EXIT_REASONS_FAILED_VMENTRY ?
					       e->qual : (e->reason & 0xffff));
	requeue_idt_vectoring(vcpu);
	switch (e->reason) {
	case EXIT_REASON_EXCEPTION_NMI:
		return handle_exception(vcpu, vectoring);
	case EXIT_REASON_EXTERNAL_INTERRUPT:
		vcpu->stat.irq_exits++;
		return 1;
	case EXIT_REASON_TRIPLE_FAULT:
		return kl_handle_shutdown(vcpu);
	case EXIT_REASON_INTERRUPT_WINDOW:
		return kl_handle_irq_window(vcpu);
	case EXIT_REASON_NMI_WINDOW:
		return 1;		/* the NMI goes in at this entry */
	case EXIT_REASON_PREEMPTION_TIMER:
		return 1;		/* the slice ended: the host's interrupts run now */
	case EXIT_REASON_CPUID:
		return kl_handle_cpuid(vcpu, len);
	case EXIT_REASON_HLT:
		return kl_handle_hlt(vcpu, len);
	case EXIT_REASON_INVLPG:
		return kl_handle_invlpg(vcpu);
	case EXIT_REASON_VMCALL:
		return kl_handle_hypercall(vcpu, len);
	case EXIT_REASON_CR_ACCESS:
		return kl_handle_cr_access(vcpu);
	case EXIT_REASON_DR_ACCESS:
		return kl_handle_dr_access(vcpu);
	case EXIT_REASON_IO_INSTRUCTION:
		return handle_io(vcpu);
	case EXIT_REASON_MSR_READ:
		return kl_handle_msr(vcpu, false, len);
	case EXIT_REASON_MSR_WRITE:
		return kl_handle_msr(vcpu, true, len);
	case EXIT_REASON_MWAIT_INSTRUCTION:
	case EXIT_REASON_MONITOR_INSTRUCTION:
		return kl_handle_monitor_mwait(vcpu, len);
	case EXIT_REASON_XSETBV:
		return kl_handle_xsetbv(vcpu, len);
	case EXIT_REASON_EPT_VIOLATION:
		return handle_ept_violation(vcpu, vectoring);
	case EXIT_REASON_INVD:
	case EXIT_REASON_WBINVD:
		return skip_instruction(vcpu);	/* caches are the host's business */
	case EXIT_REASON_VMCLEAR: case EXIT_REASON_VMLAUNCH: case EXIT_REASON_VMPTRLD:
	case EXIT_REASON_VMPTRST: case EXIT_REASON_VMREAD: case EXIT_REASON_VMRESUME:
	case EXIT_REASON_VMWRITE: case EXIT_REASON_VMOFF: case EXIT_REASON_VMON:
	case EXIT_REASON_INVEPT: case EXIT_REASON_INVVPID: case EXIT_REASON_VMFUNC:
	case EXIT_REASON_GETSEC: case EXIT_REASON_RDRAND: case EXIT_REASON_RDSEED:
		return kl_handle_invalid_opcode(vcpu);
	default:
		return kl_handle_unexpected(vcpu, e->reason, e->qual);
	}
}

/*
 * Real mode without unrestricted guest needs virtual-8086 mode or an
 * instruction emulator: not built. Say so rather than fail the entry.
 */
static bool mode_runnable(struct kl_vcpu *vcpu)
{
	return (vcpu->cr0 & X86_CR0_PE) || vmx_cfg.unrestricted;
}

static int vmx_run(struct kl_vcpu *vcpu)
{
	struct kl_hw_paging hw;
	int r;

	if (!mode_runnable(vcpu)) {
		pr_info_ratelimited("kvmlab: real mode on this VMX needs unrestricted guest, which it lacks\n");
		kl_internal_error(vcpu, KVM_INTERNAL_ERROR_EMULATION, vcpu->rip, vcpu->cr0);
		return 0;
	}
	r = kl_mmu_hw_paging(vcpu, &hw);
	if (r)
		return r;
	load_pdptrs(vcpu);
	enter_guest(vcpu, &hw);
	return handle_exit(vcpu);
}

static bool vmx_has_tdp(void)
{
	return vmx_cfg.ept;
}

/* EPT's entry format: read, write, execute; write-back leaves that ignore PAT. */
static const struct kl_tdp_format ept_format = {
	.leaf = VMX_EPT_READABLE_MASK | VMX_EPT_WRITABLE_MASK | VMX_EPT_EXECUTABLE_MASK |
		(MTRR_TYPE_WRBACK << VMX_EPT_MT_EPTE_SHIFT) | VMX_EPT_IPAT_BIT,
	.nonleaf = VMX_EPT_READABLE_MASK | VMX_EPT_WRITABLE_MASK | VMX_EPT_EXECUTABLE_MASK,
	.levels = 4,
	.name = "ept",
};

static int vmx_setup(void)
{
	int r = setup_config();

	if (r) {
		pr_err("kvmlab: this CPU's VMX lacks controls kvmlab needs\n");
		return r;
	}
	if (vmx_cfg.ept)
		kl_tdp_set_format(&ept_format);
	kl_phys_nested = vmx_cfg.unrestricted;
	pr_info("kvmlab: VMX with%s EPT, with%s VPID, with%s unrestricted guest, preemption timer slice %u\n",
		vmx_cfg.ept ? "" : "out", vmx_cfg.vpid ? "" : "out",
		vmx_cfg.unrestricted ? "" : "out", vmx_cfg.preemption_slice);
	return 0;
}

const struct kl_vendor_ops kl_vmx_ops = {
	.name = "vmx",
	.hypercall = { 0x0f, 0x01, 0xc1 },	/* VMCALL */
	.setup = vmx_setup,
	.has_tdp = vmx_has_tdp,
	.hardware_enable = vmx_hardware_enable,
	.hardware_disable = vmx_hardware_disable,
	.vcpu_create = vmx_vcpu_create,
	.vcpu_free = vmx_vcpu_free,
	.vcpu_reset = vmx_vcpu_reset,
	.get_segments = vmx_get_segments,
	.set_segments = vmx_set_segments,
	.get_cpl = vmx_get_cpl,
	.interrupt_shadow = vmx_interrupt_shadow,
	.set_interrupt_shadow = vmx_set_interrupt_shadow,
	.run = vmx_run,
};
