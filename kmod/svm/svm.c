// SPDX-License-Identifier: GPL-2.0
/*
 * The AMD SVM backend: everything that knows what a VMCB is, and nothing
 * of what an exit means.
 *
 * SVM is switched on (EFER.SVME, VM_HSAVE_PA) on every CPU while at least
 * one VM exists. Each vCPU owns a VMCB; before each VMRUN the vendor-neutral
 * state in struct kl_vcpu is written into it, with the paging registers the
 * MMU layer chose (kl_mmu_hw_paging) and the event the x86 layer chose
 * (kl_next_injection); after the exit it is read back and the exit code is
 * turned into a call of an x86 handler (kl_handle_*) or the MMU's fault
 * handler (kl_mmu_page_fault).
 *
 * The test machine's SVM (QEMU TCG) has neither NRIPS nor decode assists,
 * so the handlers fetch and decode intercepted instructions themselves
 * (x86/emulate.c), as KVM did in 2007; the lengths of the fixed-length
 * instructions (RDMSR, CPUID, HLT, VMMCALL) are passed from here.
 */
#include <linux/cpuhotplug.h>
#include <linux/kvm.h>
#include <linux/mm.h>
#include <linux/percpu.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <asm/fpu/api.h>
#include <asm/io.h>
#include <asm/msr.h>
#include <asm/svm.h>
#include <asm/traps.h>
#include <asm/trapnr.h>
#include "../x86/vendor.h"

#define IOPM_ORDER	2	/* 12 KiB used */
#define MSRPM_ORDER	1	/* 8 KiB */
#define GUEST_ASID	1

struct svm_cpu {
	struct page *hsave;		/* VM_HSAVE_PA: VMRUN's host state */
	struct page *host_vmsave;	/* VMSAVE/VMLOAD of the host's other state */
	struct vmcb *last_vmcb;		/* TLB may hold its translations */
	int error;
};

struct svm_vcpu {
	struct vmcb *vmcb;
	u64 vmcb_pa;
	int last_cpu;
	/*
	 * SVM has no "NMI blocked" flag to read and no NMI-window exit. While
	 * an NMI is masked we intercept IRET; the exit comes before the IRET
	 * runs, so we let it run and unmask at the first exit with RIP moved
	 * on. When another NMI waits, that exit must come right after the
	 * IRET, as the CPU would take the NMI there: we single-step the IRET
	 * (our TF in RFLAGS, #DB intercepted), as KVM does without vNMI.
	 */
	bool awaiting_iret;
	bool nmi_singlestep;
	u64 iret_rip;
};

static DEFINE_PER_CPU(struct svm_cpu, svm_cpus);
static struct page *iopm, *msrpm;

void kl_svm_vmrun(u64 vmcb_pa, u64 *regs, u64 host_save_pa);

static inline struct svm_vcpu *to_svm(struct kl_vcpu *vcpu)
{
	return vcpu->vendor;
}

static void set_intercept(struct vmcb *vmcb, int bit)
{
	vmcb->control.intercepts[bit / 32] |= 1U << (bit % 32);
}

static void clear_intercept(struct vmcb *vmcb, int bit)
{
	vmcb->control.intercepts[bit / 32] &= ~(1U << (bit % 32));
}

/* ---- switching SVM on and off ---- */

/*
 * SVM is on while VMs exist, on every online CPU and on each CPU that comes
 * online meanwhile: a CPU-hotplug state whose callbacks run on the CPU
 * being plugged or unplugged (and, when the state is set up or removed, on
 * every online CPU in turn). A CPU onlined with SVME clear would fault on
 * its first VMRUN.
 */
static enum cpuhp_state svm_hp_state;

static const char *enable_error(int e)
{
	return e == -EBUSY ? "another hypervisor (kvm_amd?) is using it"
			   : "disabled by the firmware (VM_CR.SVMDIS)";
}

static int svm_cpu_online(unsigned int cpu)
{
	struct svm_cpu *sd = per_cpu_ptr(&svm_cpus, cpu);
	u64 efer, vm_cr;

	rdmsrl(MSR_EFER, efer);
	rdmsrl(MSR_VM_CR, vm_cr);
	sd->error = efer & EFER_SVME ? -EBUSY :	/* someone else (kvm_amd?) runs VMs here */
		    vm_cr & (1 << SVM_VM_CR_SVM_DISABLE) ? -ENODEV : 0;
	if (sd->error) {
		pr_err("kvmlab: cannot enable SVM on CPU %u: %s\n", cpu, enable_error(sd->error));
		return sd->error;
	}
	wrmsrl(MSR_VM_HSAVE_PA, page_to_phys(sd->hsave));
	wrmsrl(MSR_EFER, efer | EFER_SVME);
	sd->last_vmcb = NULL;
	sd->error = 1;		/* enabled by us */
	return 0;
}

static int svm_cpu_offline(unsigned int cpu)
{
	struct svm_cpu *sd = per_cpu_ptr(&svm_cpus, cpu);
	u64 efer;

	if (sd->error != 1)
		return 0;
	wrmsrl(MSR_VM_HSAVE_PA, 0);
	rdmsrl(MSR_EFER, efer);
	wrmsrl(MSR_EFER, efer & ~EFER_SVME);
	sd->error = 0;
	return 0;
}

static void free_cpu_pages(void)
{
	int cpu;

	for_each_possible_cpu(cpu) {
		struct svm_cpu *sd = per_cpu_ptr(&svm_cpus, cpu);

		if (sd->hsave)
			__free_page(sd->hsave);
		if (sd->host_vmsave)
			__free_page(sd->host_vmsave);
		sd->hsave = sd->host_vmsave = NULL;
	}
	if (iopm)
		__free_pages(iopm, IOPM_ORDER);
	if (msrpm)
		__free_pages(msrpm, MSRPM_ORDER);
	iopm = msrpm = NULL;
}

static int svm_hardware_enable(void)
{
	int cpu, r = 0;

	for_each_possible_cpu(cpu) {
		struct svm_cpu *sd = per_cpu_ptr(&svm_cpus, cpu);

		sd->hsave = alloc_page(GFP_KERNEL | __GFP_ZERO);
		sd->host_vmsave = alloc_page(GFP_KERNEL | __GFP_ZERO);
		sd->error = 0;
		if (!sd->hsave || !sd->host_vmsave)
			r = -ENOMEM;
	}
	/* Every port and every MSR exits: the guest touches nothing of the host's. */
	iopm = alloc_pages(GFP_KERNEL, IOPM_ORDER);
	msrpm = alloc_pages(GFP_KERNEL, MSRPM_ORDER);
	if (!iopm || !msrpm)
		r = -ENOMEM;
	if (r)
		goto fail;
	memset(page_address(iopm), 0xff, PAGE_SIZE << IOPM_ORDER);
	memset(page_address(msrpm), 0xff, PAGE_SIZE << MSRPM_ORDER);
	/* On every online CPU now; a failure on one undoes the others. */
	r = cpuhp_setup_state(CPUHP_AP_ONLINE_DYN, "kvmlab/svm:online", svm_cpu_online,
			      svm_cpu_offline);
	if (r < 0)
		goto fail;
	svm_hp_state = r;
	return 0;
fail:
	free_cpu_pages();
	return r;
}

static void svm_hardware_disable(void)
{
	cpuhp_remove_state(svm_hp_state);
	free_cpu_pages();
}

/* ---- segments ---- */

static void seg_to_vmcb(struct vmcb_seg *v, const struct kvm_segment *s)
{
	v->selector = s->selector;
	v->base = s->base;
	v->limit = s->limit;
	v->attrib = s->unusable || !s->present ? 0 :
		(s->type & 0xf) | (s->s << 4) | (s->dpl << 5) | (s->present << 7) |
		(s->avl << 8) | (s->l << 9) | (s->db << 10) | (s->g << 11);
}

static void seg_from_vmcb(struct kvm_segment *s, const struct vmcb_seg *v)
{
	*s = (struct kvm_segment) {
		.selector = v->selector, .base = v->base, .limit = v->limit,
		.type = v->attrib & 0xf, .s = (v->attrib >> 4) & 1,
		.dpl = (v->attrib >> 5) & 3, .present = (v->attrib >> 7) & 1,
		.avl = (v->attrib >> 8) & 1, .l = (v->attrib >> 9) & 1,
		.db = (v->attrib >> 10) & 1, .g = (v->attrib >> 11) & 1,
	};
	s->unusable = !s->present;
}

static void svm_get_segments(struct kl_vcpu *vcpu, struct kvm_sregs *sr)
{
	struct vmcb_save_area *save = &to_svm(vcpu)->vmcb->save;

	seg_from_vmcb(&sr->cs, &save->cs);
	seg_from_vmcb(&sr->ds, &save->ds);
	seg_from_vmcb(&sr->es, &save->es);
	seg_from_vmcb(&sr->fs, &save->fs);
	seg_from_vmcb(&sr->gs, &save->gs);
	seg_from_vmcb(&sr->ss, &save->ss);
	seg_from_vmcb(&sr->tr, &save->tr);
	seg_from_vmcb(&sr->ldt, &save->ldtr);
	sr->gdt.base = save->gdtr.base;
	sr->gdt.limit = save->gdtr.limit;
	sr->idt.base = save->idtr.base;
	sr->idt.limit = save->idtr.limit;
}

static void svm_set_segments(struct kl_vcpu *vcpu, const struct kvm_sregs *sr)
{
	struct vmcb_save_area *save = &to_svm(vcpu)->vmcb->save;

	seg_to_vmcb(&save->cs, &sr->cs);
	seg_to_vmcb(&save->ds, &sr->ds);
	seg_to_vmcb(&save->es, &sr->es);
	seg_to_vmcb(&save->fs, &sr->fs);
	seg_to_vmcb(&save->gs, &sr->gs);
	seg_to_vmcb(&save->ss, &sr->ss);
	seg_to_vmcb(&save->tr, &sr->tr);
	seg_to_vmcb(&save->ldtr, &sr->ldt);
	save->gdtr.base = sr->gdt.base;
	save->gdtr.limit = sr->gdt.limit;
	save->idtr.base = sr->idt.base;
	save->idtr.limit = sr->idt.limit;
	save->cpl = sr->ss.dpl;
}

static int svm_get_cpl(struct kl_vcpu *vcpu)
{
	return to_svm(vcpu)->vmcb->save.cpl;
}

/*
 * The interrupt shadow (after STI or MOV SS) covers one instruction. The
 * VMCB reports it at the exit; once we have moved RIP past an intercepted
 * instruction ourselves, that instruction has completed and the shadow is over.
 */
static bool svm_interrupt_shadow(struct kl_vcpu *vcpu)
{
	struct vmcb *vmcb = to_svm(vcpu)->vmcb;

	return (vmcb->control.int_state & SVM_INTERRUPT_SHADOW_MASK) &&
	       vcpu->rip == vmcb->save.rip;
}

static void svm_set_interrupt_shadow(struct kl_vcpu *vcpu, bool on)
{
	struct vmcb *vmcb = to_svm(vcpu)->vmcb;

	vmcb->control.int_state = on ? SVM_INTERRUPT_SHADOW_MASK : 0;
	vmcb->save.rip = vcpu->rip;	/* the shadow covers the instruction at RIP */
}

/* ---- the VMCB ---- */

static void init_vmcb(struct kl_vcpu *vcpu)
{
	struct vmcb *vmcb = to_svm(vcpu)->vmcb;
	struct vmcb_control_area *c = &vmcb->control;
	static const int always[] = {
		INTERCEPT_CR0_READ, INTERCEPT_CR4_READ, INTERCEPT_CR0_WRITE,
		INTERCEPT_CR4_WRITE, INTERCEPT_INTR, INTERCEPT_NMI, INTERCEPT_SMI,
		INTERCEPT_CPUID, INTERCEPT_HLT, INTERCEPT_INVLPGA, INTERCEPT_IOIO_PROT,
		INTERCEPT_MSR_PROT, INTERCEPT_SHUTDOWN, INTERCEPT_VMRUN,
		INTERCEPT_VMMCALL, INTERCEPT_VMLOAD, INTERCEPT_VMSAVE, INTERCEPT_STGI,
		INTERCEPT_CLGI, INTERCEPT_SKINIT, INTERCEPT_RDTSCP, INTERCEPT_MONITOR,
		INTERCEPT_MWAIT, INTERCEPT_XSETBV, INTERCEPT_RDPRU,
	};

	memset(vmcb, 0, PAGE_SIZE);
	to_svm(vcpu)->awaiting_iret = false;
	to_svm(vcpu)->nmi_singlestep = false;
	for (int i = 0; i < ARRAY_SIZE(always); i++)
		set_intercept(vmcb, always[i]);
	/* #UD: a VMCALL (Intel's hypercall) is rewritten to VMMCALL (x86/handlers.c). */
	set_intercept(vmcb, INTERCEPT_EXCEPTION_OFFSET + UD_VECTOR);
	for (int dr = 0; dr < 8; dr++) {
		set_intercept(vmcb, INTERCEPT_DR0_READ + dr);
		set_intercept(vmcb, INTERCEPT_DR0_WRITE + dr);
	}
	if (!kl_mmu_tdp(vcpu->vm)) {
		/* Shadow paging: the guest's CR3, #PF and INVLPG are ours to see. */
		set_intercept(vmcb, INTERCEPT_CR3_READ);
		set_intercept(vmcb, INTERCEPT_CR3_WRITE);
		set_intercept(vmcb, INTERCEPT_EXCEPTION_OFFSET + PF_VECTOR);
		set_intercept(vmcb, INTERCEPT_INVLPG);
	} else {
		c->nested_ctl = SVM_NESTED_CTL_NP_ENABLE;
	}
	c->iopm_base_pa = page_to_phys(iopm);
	c->msrpm_base_pa = page_to_phys(msrpm);
	c->asid = GUEST_ASID;
	c->int_ctl = V_INTR_MASKING_MASK;	/* host IF governs physical interrupts */
	vmcb->save.dr6 = 0xffff0ff0;
	vmcb->save.dr7 = 0x400;
	/* Reset segments: real mode, CS at the reset vector's segment. */
	vmcb->save.cs = (struct vmcb_seg) { .selector = 0xf000, .base = 0xffff0000,
					    .limit = 0xffff, .attrib = 0x9b };
	vmcb->save.ds = vmcb->save.es = vmcb->save.ss = vmcb->save.fs = vmcb->save.gs =
		(struct vmcb_seg) { .limit = 0xffff, .attrib = 0x93 };
	vmcb->save.gdtr.limit = vmcb->save.idtr.limit = 0xffff;
	vmcb->save.ldtr = (struct vmcb_seg) { .limit = 0xffff, .attrib = 0x82 };
	vmcb->save.tr = (struct vmcb_seg) { .limit = 0xffff, .attrib = 0x8b };
}

static int svm_vcpu_create(struct kl_vcpu *vcpu)
{
	struct svm_vcpu *svm = kzalloc(sizeof(*svm), GFP_KERNEL_ACCOUNT);
	struct page *page;

	if (!svm)
		return -ENOMEM;
	page = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
	if (!page) {
		kfree(svm);
		return -ENOMEM;
	}
	svm->vmcb = page_address(page);
	svm->vmcb_pa = page_to_phys(page);
	svm->last_cpu = -1;
	vcpu->vendor = svm;
	init_vmcb(vcpu);
	return 0;
}

static void svm_vcpu_free(struct kl_vcpu *vcpu)
{
	struct svm_vcpu *svm = to_svm(vcpu);
	int cpu;

	/* A freed VMCB must not be mistaken for the next one at this address. */
	for_each_possible_cpu(cpu)
		cmpxchg(&per_cpu_ptr(&svm_cpus, cpu)->last_vmcb, svm->vmcb, NULL);
	__free_page(virt_to_page(svm->vmcb));
	kfree(svm);
}

/* ---- entering the guest ---- */

/* The event the x86 layer chose: EVENTINJ, or a V_IRQ with VINTR for the window. */
static void inject_events(struct kl_vcpu *vcpu)
{
	struct vmcb *vmcb = to_svm(vcpu)->vmcb;
	struct vmcb_control_area *c = &vmcb->control;
	struct kl_injection inj;

	c->event_inj = 0;
	c->int_ctl &= ~(V_IRQ_MASK | V_INTR_PRIO_MASK | V_IGN_TPR_MASK);
	clear_intercept(vmcb, INTERCEPT_VINTR);
	if (vcpu->rip != vmcb->save.rip)
		c->int_state &= ~SVM_INTERRUPT_SHADOW_MASK;
	kl_next_injection(vcpu, &inj);
	if (inj.inject) {
		c->event_inj = inj.vector | SVM_EVTINJ_VALID |
			(inj.exception ? SVM_EVTINJ_TYPE_EXEPT : SVM_EVTINJ_TYPE_INTR) |
			(inj.has_error ? SVM_EVTINJ_VALID_ERR : 0);
		c->event_inj_err = inj.error;
	} else if (inj.nmi) {
		c->event_inj = NMI_VECTOR | SVM_EVTINJ_VALID | SVM_EVTINJ_TYPE_NMI;
	}
	/* Masked and its IRET not yet seen: watch for it. */
	if (vcpu->nmi_masked && !to_svm(vcpu)->awaiting_iret)
		set_intercept(vmcb, INTERCEPT_IRET);
	else
		clear_intercept(vmcb, INTERCEPT_IRET);
	/*
	 * An NMI held back by an interrupt shadow has no window of its own
	 * here: the interrupt window, or any exit after the shadowed
	 * instruction, is the next chance. One waiting for the IRET goes at
	 * the first exit after it (check_iret_done).
	 */
	if (inj.irq_window || inj.nmi_window) {
		/* Priority 15, TPR ignored: the CPU exits at the first interruptible boundary. */
		c->int_ctl |= V_IRQ_MASK | (0xf << V_INTR_PRIO_SHIFT) | V_IGN_TPR_MASK;
		set_intercept(vmcb, INTERCEPT_VINTR);
	}
}

static int load_paging(struct kl_vcpu *vcpu)
{
	struct vmcb *vmcb = to_svm(vcpu)->vmcb;
	struct kl_hw_paging hw;
	int r = kl_mmu_hw_paging(vcpu, &hw);

	if (r)
		return r;
	vmcb->save.cr0 = hw.cr0;
	vmcb->save.cr3 = hw.cr3;
	vmcb->save.cr4 = hw.cr4;
	vmcb->save.efer = hw.efer | EFER_SVME;
	if (kl_mmu_tdp(vcpu->vm))
		vmcb->control.nested_cr3 = hw.nested_cr3;
	return 0;
}

/* The MSRs VMLOAD/VMRUN take from the VMCB; vcpu->msrs holds their values. */
static void load_msrs(struct vmcb_save_area *save, const struct kl_msrs *m)
{
	save->star = m->star;
	save->lstar = m->lstar;
	save->cstar = m->cstar;
	save->sfmask = m->sfmask;
	save->kernel_gs_base = m->kernel_gs_base;
	save->sysenter_cs = m->sysenter_cs;
	save->sysenter_esp = m->sysenter_esp;
	save->sysenter_eip = m->sysenter_eip;
	save->g_pat = m->pat;
}

static int load_state(struct kl_vcpu *vcpu)
{
	struct vmcb *vmcb = to_svm(vcpu)->vmcb;
	int r = load_paging(vcpu);

	if (r)
		return r;
	inject_events(vcpu);	/* before RIP: it compares the exit's */
	load_msrs(&vmcb->save, &vcpu->msrs);
	vmcb->save.rip = vcpu->rip;
	vmcb->save.rsp = vcpu->regs[KL_RSP];
	vmcb->save.rax = vcpu->regs[KL_RAX];
	vmcb->save.rflags = vcpu->rflags | (to_svm(vcpu)->nmi_singlestep ? X86_EFLAGS_TF : 0);
	vmcb->save.cr2 = vcpu->cr2;
	vmcb->control.int_ctl = (vmcb->control.int_ctl & ~V_TPR_MASK) | (vcpu->cr8 & V_TPR_MASK);
	vmcb->control.tsc_offset = vcpu->msrs.tsc_offset;
	return 0;
}

/*
 * An exit in the middle of delivering an event (say, the #PF of a stack
 * page not yet shadowed) loses the event unless it is injected again. Soft
 * events (INT3, INTO, INT n) are not re-injected: without NRIPS we cannot
 * say where they return to, but RIP still points at the instruction, which
 * raises them again.
 */
static void save_exit_int_info(struct kl_vcpu *vcpu, u32 info, u32 err)
{
	u32 type = info & SVM_EXITINTINFO_TYPE_MASK;
	u8 vector = info & SVM_EXITINTINFO_VEC_MASK;

	if (!(info & SVM_EXITINTINFO_VALID))
		return;
	if ((type == SVM_EXITINTINFO_TYPE_EXEPT && vector != BP_VECTOR && vector != OF_VECTOR) ||
	    type == SVM_EXITINTINFO_TYPE_INTR)
		kl_requeue_event(vcpu, vector, type == SVM_EXITINTINFO_TYPE_EXEPT,
				 info & SVM_EXITINTINFO_VALID_ERR, err);
	if (type == SVM_EXITINTINFO_TYPE_NMI)
		kl_requeue_nmi(vcpu);
}

/* The handler's IRET ran (RIP moved past it): NMIs are unmasked. */
static void check_iret_done(struct kl_vcpu *vcpu)
{
	struct svm_vcpu *svm = to_svm(vcpu);

	if (svm->awaiting_iret && vcpu->rip != svm->iret_rip) {
		svm->awaiting_iret = false;
		vcpu->nmi_masked = false;
	}
}

static int handle_iret(struct kl_vcpu *vcpu)
{
	struct svm_vcpu *svm = to_svm(vcpu);

	svm->awaiting_iret = true;
	svm->iret_rip = vcpu->rip;
	/* A guest single-stepping itself exits on its own #DB... which we do not see: skip. */
	if (vcpu->nmi_pending && !(vcpu->rflags & X86_EFLAGS_TF)) {
		svm->nmi_singlestep = true;
		set_intercept(svm->vmcb, INTERCEPT_EXCEPTION_OFFSET + DB_VECTOR);
	}
	return 1;		/* let it run */
}

/* #DB, intercepted only to step an NMI handler's IRET: ours, or the guest's to take. */
static int handle_db(struct kl_vcpu *vcpu)
{
	struct svm_vcpu *svm = to_svm(vcpu);
	bool ours = svm->nmi_singlestep && (svm->vmcb->save.dr6 & DR_STEP);

	svm->nmi_singlestep = false;
	svm->vmcb->save.dr6 &= ~DR_STEP;
	clear_intercept(svm->vmcb, INTERCEPT_EXCEPTION_OFFSET + DB_VECTOR);
	if (!ours)
		kl_queue_exception(vcpu, DB_VECTOR, false, 0);
	return 1;		/* the waiting NMI goes in now (check_iret_done unmasked) */
}

static void save_state(struct kl_vcpu *vcpu)
{
	struct vmcb *vmcb = to_svm(vcpu)->vmcb;

	vcpu->rip = vmcb->save.rip;
	vcpu->regs[KL_RSP] = vmcb->save.rsp;
	vcpu->regs[KL_RAX] = vmcb->save.rax;
	vcpu->rflags = vmcb->save.rflags;
	/* Our TF until the IRET pops the guest's RFLAGS (handle_iret). */
	if (to_svm(vcpu)->nmi_singlestep && vcpu->rip == to_svm(vcpu)->iret_rip)
		vcpu->rflags &= ~X86_EFLAGS_TF;
	vcpu->cr2 = vmcb->save.cr2;
	/* MOV to CR8 changes V_TPR without an exit (V_INTR_MASKING). */
	vcpu->cr8 = vmcb->control.int_ctl & V_TPR_MASK;
	/* SWAPGS changes KernelGsBase without an exit. */
	vcpu->msrs.kernel_gs_base = vmcb->save.kernel_gs_base;
	if (kl_mmu_tdp(vcpu->vm))
		vcpu->cr3 = vmcb->save.cr3;
	save_exit_int_info(vcpu, vmcb->control.exit_int_info, vmcb->control.exit_int_info_err);
	check_iret_done(vcpu);
}

/*
 * A kick came between loading the VMCB and VMRUN: end as if an interrupt
 * had arrived before the first guest instruction. An event being injected
 * was not delivered, so it goes back through EXITINTINFO, as the hardware
 * reports an interrupted delivery.
 */
static void cancel_entry(struct vmcb *vmcb)
{
	struct vmcb_control_area *c = &vmcb->control;

	c->exit_code = SVM_EXIT_INTR;
	c->exit_info_1 = 0;
	c->exit_info_2 = 0;
	c->exit_int_info = c->event_inj;
	c->exit_int_info_err = c->event_inj_err;
	c->event_inj = 0;
}

static void enter_guest(struct kl_vcpu *vcpu)
{
	struct svm_vcpu *svm = to_svm(vcpu);
	struct svm_cpu *sd;
	u64 host_xcr0;
	int cpu;

	kernel_fpu_begin();		/* the task's FPU state is saved; ours to use */
	local_irq_disable();
	cpu = smp_processor_id();
	sd = this_cpu_ptr(&svm_cpus);
	asm volatile("fxrstor64 %0" :: "m"(*vcpu->fpu));
	host_xcr0 = kl_load_guest_xcr0(vcpu);
	/*
	 * Guest mode is a quiescent state for RCU, like user mode: say so, or a
	 * vCPU that keeps re-entering the guest (preemption off all the while)
	 * starves RCU grace periods on this CPU. KVM does the same.
	 */
	rcu_virt_note_context_switch(cpu);
	if (kl_enter_guest_mode(vcpu)) {
		/*
		 * One ASID for every vCPU: flush when another VMCB ran here, on
		 * a move, or when the MMU asks (read in guest mode: a later ask
		 * kicks us out and we flush on the way back in).
		 */
		if (kl_check_request(vcpu, KL_REQ_TLB_FLUSH) || sd->last_vmcb != svm->vmcb ||
		    svm->last_cpu != cpu)
			svm->vmcb->control.tlb_ctl = TLB_CONTROL_FLUSH_ALL_ASID;
		else
			svm->vmcb->control.tlb_ctl = TLB_CONTROL_DO_NOTHING;
		if (svm->last_cpu >= 0 && svm->last_cpu != cpu)
			vcpu->stat.cpu_migrations++;
		sd->last_vmcb = svm->vmcb;
		svm->last_cpu = cpu;
		asm volatile("clgi" ::: "memory");
		kl_svm_vmrun(svm->vmcb_pa, vcpu->regs, page_to_phys(sd->host_vmsave));
		asm volatile("stgi" ::: "memory");
		kl_exit_guest_mode(vcpu);
	} else {
		cancel_entry(svm->vmcb);
	}
	kl_put_guest_xcr0(vcpu, host_xcr0);
	asm volatile("fxsave64 %0" : "=m"(*vcpu->fpu));
	local_irq_enable();
	kernel_fpu_end();
}

/* ---- exits: decode, then hand to the x86 layer or the MMU ---- */

static int handle_io(struct kl_vcpu *vcpu)
{
	struct vmcb_control_area *c = &to_svm(vcpu)->vmcb->control;
	u64 info = c->exit_info_1;
	int size = (info & SVM_IOIO_SIZE_MASK) >> SVM_IOIO_SIZE_SHIFT;
	struct kl_io io = {
		.port = info >> 16, .size = size == 1 ? 1 : size == 2 ? 2 : 4,
		.in = info & SVM_IOIO_TYPE_MASK, .string = info & SVM_IOIO_STR_MASK,
		.rep = info & SVM_IOIO_REP_MASK, .next_rip = c->exit_info_2,
	};

	return kl_handle_io(vcpu, &io);
}

static int handle_exit(struct kl_vcpu *vcpu)
{
	struct vmcb_control_area *c = &to_svm(vcpu)->vmcb->control;
	bool vectoring = c->exit_int_info & SVM_EXITINTINFO_VALID;
	u32 code = c->exit_code;

	vcpu->stat.exits++;
	if (code >= SVM_EXIT_READ_CR0 && code <= SVM_EXIT_WRITE_CR8)
		return kl_handle_cr_access(vcpu);
	if (code >= SVM_EXIT_READ_DR0 && code <= SVM_EXIT_WRITE_DR0 + 7)
		return kl_handle_dr_access(vcpu);
	switch (code) {
	case SVM_EXIT_EXCP_BASE + PF_VECTOR:
		return kl_mmu_page_fault(vcpu, c->exit_info_2, (u32)c->exit_info_1, vectoring);
	case SVM_EXIT_EXCP_BASE + UD_VECTOR:
		return kl_handle_ud(vcpu);
	case SVM_EXIT_NPF:
		vcpu->stat.npf_exits++;
		return kl_mmu_page_fault(vcpu, c->exit_info_2, (u32)c->exit_info_1, vectoring);
	case SVM_EXIT_INVLPG:
		return kl_handle_invlpg(vcpu);
	case SVM_EXIT_IOIO:
		return handle_io(vcpu);
	case SVM_EXIT_MSR:
		return kl_handle_msr(vcpu, c->exit_info_1, 2);	/* 0F 30 / 0F 32 */
	case SVM_EXIT_CPUID:
		return kl_handle_cpuid(vcpu, 2);		/* 0F A2 */
	case SVM_EXIT_HLT:
		return kl_handle_hlt(vcpu, 1);			/* F4 */
	case SVM_EXIT_VINTR:
		return kl_handle_irq_window(vcpu);
	case SVM_EXIT_IRET:
		return handle_iret(vcpu);
	case SVM_EXIT_EXCP_BASE + DB_VECTOR:
		return handle_db(vcpu);
	case SVM_EXIT_VMMCALL:
		return kl_handle_hypercall(vcpu, 3);		/* 0F 01 D9 */
	case SVM_EXIT_INTR:
		vcpu->stat.irq_exits++;
		return 1;
	case SVM_EXIT_NMI:
	case SVM_EXIT_SMI:
		return 1;
	case SVM_EXIT_SHUTDOWN:
		return kl_handle_shutdown(vcpu);
	case SVM_EXIT_VMRUN: case SVM_EXIT_VMLOAD: case SVM_EXIT_VMSAVE:
	case SVM_EXIT_STGI: case SVM_EXIT_CLGI: case SVM_EXIT_SKINIT:
	case SVM_EXIT_INVLPGA: case SVM_EXIT_RDTSCP: case SVM_EXIT_RDPRU:
		return kl_handle_invalid_opcode(vcpu);
	case SVM_EXIT_MONITOR: case SVM_EXIT_MWAIT:
		return kl_handle_monitor_mwait(vcpu, 3);	/* 0F 01 C8 / C9 */
	case SVM_EXIT_XSETBV:
		return kl_handle_xsetbv(vcpu, 3);		/* 0F 01 D1 */
	case SVM_EXIT_ERR:
		return kl_handle_entry_failure(vcpu, code);
	default:
		return kl_handle_unexpected(vcpu, code, c->exit_info_1);
	}
}

static int svm_run(struct kl_vcpu *vcpu)
{
	int r = load_state(vcpu);

	if (r)
		return r;
	enter_guest(vcpu);
	save_state(vcpu);
	return handle_exit(vcpu);
}

static bool svm_has_tdp(void)
{
	return boot_cpu_has(X86_FEATURE_NPT);
}

/* NPT walks the host's format, five levels deep when the host uses five. */
static int svm_setup(void)
{
	if (pgtable_l5_enabled())
		kl_tdp.levels = 5;
	return 0;
}

const struct kl_vendor_ops kl_svm_ops = {
	.name = "svm",
	.hypercall = { 0x0f, 0x01, 0xd9 },	/* VMMCALL */
	.setup = svm_setup,
	.has_tdp = svm_has_tdp,
	.hardware_enable = svm_hardware_enable,
	.hardware_disable = svm_hardware_disable,
	.vcpu_create = svm_vcpu_create,
	.vcpu_free = svm_vcpu_free,
	.vcpu_reset = init_vmcb,
	.get_segments = svm_get_segments,
	.set_segments = svm_set_segments,
	.get_cpl = svm_get_cpl,
	.interrupt_shadow = svm_interrupt_shadow,
	.set_interrupt_shadow = svm_set_interrupt_shadow,
	.run = svm_run,
};
