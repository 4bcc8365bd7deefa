// SPDX-License-Identifier: GPL-2.0
/*
 * The AMD SVM backend: everything that knows what a VMCB is.
 *
 * SVM is switched on (EFER.SVME, VM_HSAVE_PA) on every CPU while at least
 * one VM exists. Each vCPU owns a VMCB; before each VMRUN the vendor-neutral
 * state in struct kl_vcpu is written into it (with the MMU's root in CR3 or
 * nCR3), after the exit it is read back, and the exit is handled.
 *
 * The test machine's SVM (QEMU TCG) has neither NRIPS nor decode assists,
 * so to skip or emulate an intercepted instruction we fetch and decode it
 * ourselves (emulate.c), as KVM did in 2007.
 */
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
#include "kvmlab.h"

#define IOPM_ORDER	2	/* 12 KiB used */
#define MSRPM_ORDER	1	/* 8 KiB */
#define GUEST_ASID	1
#define DEFAULT_PAT	0x0007040600070406ULL
#define KVM_ENOSYS_HC	1000	/* what KVM returns for an unknown hypercall */

struct svm_cpu {
	struct page *hsave;		/* VM_HSAVE_PA: VMRUN's host state */
	struct page *host_vmsave;	/* VMSAVE/VMLOAD of the host's other state */
	struct vmcb *last_vmcb;		/* TLB may hold its translations */
	int error;
};

struct svm_vcpu {
	struct vmcb *vmcb;
	u64 vmcb_pa;
	struct fxregs_state *fpu;	/* the guest's x87/SSE state between runs */
	int last_cpu;
	bool flush;			/* flush the guest's TLB at the next entry */
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

static void enable_on_cpu(void *unused)
{
	struct svm_cpu *sd = this_cpu_ptr(&svm_cpus);
	u64 efer, vm_cr;

	rdmsrl(MSR_EFER, efer);
	rdmsrl(MSR_VM_CR, vm_cr);
	if (efer & EFER_SVME) {
		sd->error = -EBUSY;	/* someone else (kvm_amd?) runs VMs here */
		return;
	}
	if (vm_cr & (1 << SVM_VM_CR_SVM_DISABLE)) {
		sd->error = -ENODEV;
		return;
	}
	wrmsrl(MSR_VM_HSAVE_PA, page_to_phys(sd->hsave));
	wrmsrl(MSR_EFER, efer | EFER_SVME);
	sd->last_vmcb = NULL;
	sd->error = 1;		/* enabled by us */
}

static void disable_on_cpu(void *unused)
{
	struct svm_cpu *sd = this_cpu_ptr(&svm_cpus);
	u64 efer;

	if (sd->error != 1)
		return;
	wrmsrl(MSR_VM_HSAVE_PA, 0);
	rdmsrl(MSR_EFER, efer);
	wrmsrl(MSR_EFER, efer & ~EFER_SVME);
	sd->error = 0;
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

	cpus_read_lock();
	on_each_cpu(enable_on_cpu, NULL, 1);
	for_each_online_cpu(cpu) {
		int e = per_cpu_ptr(&svm_cpus, cpu)->error;

		if (e < 0) {
			r = e;
			pr_err("kvmlab: cannot enable SVM on CPU %d: %s\n", cpu,
			       e == -EBUSY ? "another hypervisor (kvm_amd?) is using it"
					   : "disabled by the firmware (VM_CR.SVMDIS)");
		}
	}
	if (r)
		on_each_cpu(disable_on_cpu, NULL, 1);
	cpus_read_unlock();
	if (r)
		goto fail;
	return 0;
fail:
	free_cpu_pages();
	return r;
}

static void svm_hardware_disable(void)
{
	on_each_cpu(disable_on_cpu, NULL, 1);
	free_cpu_pages();
}

/* ---- segments and special registers ---- */

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

static void svm_get_sregs(struct kl_vcpu *vcpu, struct kvm_sregs *sr)
{
	struct vmcb_save_area *save = &to_svm(vcpu)->vmcb->save;

	memset(sr, 0, sizeof(*sr));
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
	sr->cr0 = vcpu->cr0;
	sr->cr2 = vcpu->cr2;
	sr->cr3 = vcpu->cr3;
	sr->cr4 = vcpu->cr4;
	sr->efer = vcpu->efer;
	sr->apic_base = kl_apic_base(vcpu);
}

/* Reject states the CPU would refuse to run, with -EINVAL. */
static int check_sregs(const struct kvm_sregs *sr)
{
	bool lma = sr->efer & EFER_LMA, lme = sr->efer & EFER_LME, pg = sr->cr0 & X86_CR0_PG;

	if ((sr->cr0 >> 32) || (pg && !(sr->cr0 & X86_CR0_PE)))
		return -EINVAL;
	if (lma != (lme && pg))
		return -EINVAL;
	/* Outside long mode CS.L must be clear, as KVM insists: QEMU's SVM runs such a state astray. */
	if (!lma && sr->cs.l)
		return -EINVAL;
	if (lma && (!(sr->cr4 & X86_CR4_PAE) || (sr->cs.l && sr->cs.db)))
		return -EINVAL;
	if (sr->efer & ~(EFER_SCE | EFER_LME | EFER_LMA | EFER_NX))
		return -EINVAL;
	if (sr->cr4 & ~KL_CR4_SUPPORTED)
		return -EINVAL;
	if (lma && (sr->cr3 & ~0x000ffffffffff018ULL))
		return -EINVAL;
	return 0;
}

static int svm_set_sregs(struct kl_vcpu *vcpu, const struct kvm_sregs *sr)
{
	struct vmcb_save_area *save = &to_svm(vcpu)->vmcb->save;
	int r = check_sregs(sr);

	if (r)
		return r;
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
	vcpu->cr0 = sr->cr0 | X86_CR0_ET;
	vcpu->cr2 = sr->cr2;
	vcpu->cr3 = sr->cr3;
	vcpu->cr4 = sr->cr4;
	vcpu->efer = sr->efer;
	vcpu->vm->mmu->mode_changed(vcpu);
	vcpu->vm->mmu->load_cr3(vcpu);
	return 0;
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
static bool in_interrupt_shadow(struct kl_vcpu *vcpu)
{
	struct vmcb *vmcb = to_svm(vcpu)->vmcb;

	return (vmcb->control.int_state & SVM_INTERRUPT_SHADOW_MASK) &&
	       vcpu->rip == vmcb->save.rip;
}

static bool svm_interrupt_allowed(struct kl_vcpu *vcpu)
{
	return (vcpu->rflags & X86_EFLAGS_IF) && !in_interrupt_shadow(vcpu);
}

static void svm_flush_guest_tlb(struct kl_vcpu *vcpu)
{
	to_svm(vcpu)->flush = true;
}

/* ---- the VMCB ---- */

static void init_vmcb(struct kl_vcpu *vcpu)
{
	struct vmcb *vmcb = to_svm(vcpu)->vmcb;
	struct vmcb_control_area *c = &vmcb->control;
	bool hw = vcpu->vm->mmu->hw_paging;
	static const int always[] = {
		INTERCEPT_CR0_READ, INTERCEPT_CR4_READ, INTERCEPT_CR0_WRITE,
		INTERCEPT_CR4_WRITE, INTERCEPT_INTR, INTERCEPT_NMI, INTERCEPT_SMI,
		INTERCEPT_CPUID, INTERCEPT_HLT, INTERCEPT_INVLPGA, INTERCEPT_IOIO_PROT,
		INTERCEPT_MSR_PROT, INTERCEPT_SHUTDOWN, INTERCEPT_VMRUN,
		INTERCEPT_VMMCALL, INTERCEPT_VMLOAD, INTERCEPT_VMSAVE, INTERCEPT_STGI,
		INTERCEPT_CLGI, INTERCEPT_SKINIT, INTERCEPT_RDTSCP, INTERCEPT_MONITOR,
		INTERCEPT_MWAIT, INTERCEPT_XSETBV, INTERCEPT_RDPRU,
	};

	for (int i = 0; i < ARRAY_SIZE(always); i++)
		set_intercept(vmcb, always[i]);
	for (int dr = 0; dr < 8; dr++) {
		set_intercept(vmcb, INTERCEPT_DR0_READ + dr);
		set_intercept(vmcb, INTERCEPT_DR0_WRITE + dr);
	}
	if (!hw) {
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
	vmcb->save.g_pat = DEFAULT_PAT;
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
	svm->fpu = kzalloc(sizeof(*svm->fpu), GFP_KERNEL_ACCOUNT);	/* 512: 512-aligned */
	if (!page || !svm->fpu) {
		if (page)
			__free_page(page);
		kfree(svm->fpu);
		kfree(svm);
		return -ENOMEM;
	}
	svm->fpu->cwd = 0x37f;
	svm->fpu->mxcsr = 0x1f80;
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
	kfree(svm->fpu);
	kfree(svm);
}

static void svm_mmu_reload(struct kl_vcpu *vcpu)
{
	to_svm(vcpu)->flush = true;
}

/* ---- entering the guest ---- */

/*
 * A queued external interrupt goes in when the guest can take it; until
 * then a virtual interrupt (V_IRQ) with the VINTR intercept makes the CPU
 * exit at the first instruction boundary where RFLAGS.IF=1 and no shadow —
 * the "interrupt window". Userspace may ask for the window too
 * (request_interrupt_window) to learn when to call KVM_INTERRUPT.
 */
static void inject_interrupts(struct kl_vcpu *vcpu)
{
	struct vmcb *vmcb = to_svm(vcpu)->vmcb;
	struct vmcb_control_area *c = &vmcb->control;

	c->event_inj = 0;
	c->int_ctl &= ~(V_IRQ_MASK | V_INTR_PRIO_MASK | V_IGN_TPR_MASK);
	clear_intercept(vmcb, INTERCEPT_VINTR);
	if (vcpu->rip != vmcb->save.rip)
		c->int_state &= ~SVM_INTERRUPT_SHADOW_MASK;
	if (vcpu->event.valid) {
		c->event_inj = vcpu->event.vector | SVM_EVTINJ_VALID |
			(vcpu->event.is_exception ? SVM_EVTINJ_TYPE_EXEPT : SVM_EVTINJ_TYPE_INTR) |
			(vcpu->event.has_error ? SVM_EVTINJ_VALID_ERR : 0);
		c->event_inj_err = vcpu->event.error;
		vcpu->event.valid = false;
	} else if (vcpu->irq_pending && svm_interrupt_allowed(vcpu)) {
		c->event_inj = vcpu->irq_vector | SVM_EVTINJ_VALID | SVM_EVTINJ_TYPE_INTR;
		vcpu->irq_pending = false;
		vcpu->stat.irq_injections++;
		return;
	}
	if (vcpu->irq_pending || vcpu->run->request_interrupt_window) {
		c->int_ctl |= V_IRQ_MASK | (0xf << V_INTR_PRIO_SHIFT) | V_IGN_TPR_MASK;
		set_intercept(vmcb, INTERCEPT_VINTR);
	}
}

static int load_paging(struct kl_vcpu *vcpu)
{
	struct vmcb *vmcb = to_svm(vcpu)->vmcb;
	const struct kl_mmu_ops *mmu = vcpu->vm->mmu;

	vmcb->save.efer = vcpu->efer | EFER_SVME;
	if (mmu->hw_paging) {
		/*
		 * EFER.LME does nothing until CR0.PG is set, and that CR0 write
		 * exits to us (kl_set_cr0 sets LMA), so while paging is off the
		 * CPU need not see LME. It must not: QEMU's SVM (7.2) #VMEXITs
		 * from "LME=1, PG=0, PAE=0" by restoring the host's CR0 while
		 * the guest's PAE=0 is still loaded, which it refuses, so the
		 * host resumes with the guest's CR0 (paging off) and the machine
		 * hangs. The guest still reads its LME (EFER reads exit).
		 */
		if (!(vcpu->cr0 & X86_CR0_PG))
			vmcb->save.efer &= ~EFER_LME;
		vmcb->save.cr0 = vcpu->cr0;
		vmcb->save.cr3 = vcpu->cr3;
		vmcb->save.cr4 = vcpu->cr4;
		vmcb->control.nested_cr3 = mmu->root_hpa(vcpu);
	} else if (kl_phys_mode(vcpu)) {
		/* Paging off: our gpa == gva tables under legacy PAE (phys.c). */
		vmcb->save.cr0 = vcpu->cr0 | X86_CR0_PG | X86_CR0_WP;
		vmcb->save.cr3 = kl_phys_root(vcpu);
		if (!vmcb->save.cr3)
			return -ENOMEM;
		vmcb->save.cr4 = vcpu->cr4 | X86_CR4_PAE;
		vmcb->save.efer &= ~(EFER_LME | EFER_LMA);
	} else {
		kl_phys_leave(vcpu);
		/* The shadow tables do the guest's WP=0 in software. */
		vmcb->save.cr0 = vcpu->cr0 | X86_CR0_PG | X86_CR0_WP | X86_CR0_PE;
		vmcb->save.cr3 = mmu->root_hpa(vcpu);
		vmcb->save.cr4 = vcpu->cr4 | X86_CR4_PAE;
	}
	return 0;
}

static int load_state(struct kl_vcpu *vcpu)
{
	struct vmcb *vmcb = to_svm(vcpu)->vmcb;
	int r = load_paging(vcpu);

	if (r)
		return r;
	inject_interrupts(vcpu);	/* before RIP: it compares the exit's */
	vmcb->save.rip = vcpu->rip;
	vmcb->save.rsp = vcpu->regs[KL_RSP];
	vmcb->save.rax = vcpu->regs[KL_RAX];
	vmcb->save.rflags = vcpu->rflags;
	vmcb->save.cr2 = vcpu->cr2;
	return 0;
}

static void save_state(struct kl_vcpu *vcpu)
{
	struct vmcb *vmcb = to_svm(vcpu)->vmcb;
	u32 info = vmcb->control.exit_int_info;

	vcpu->rip = vmcb->save.rip;
	vcpu->regs[KL_RSP] = vmcb->save.rsp;
	vcpu->regs[KL_RAX] = vmcb->save.rax;
	vcpu->rflags = vmcb->save.rflags;
	vcpu->cr2 = vmcb->save.cr2;
	if (vcpu->vm->mmu->hw_paging)
		vcpu->cr3 = vmcb->save.cr3;

	/*
	 * An exit in the middle of delivering an event (say, the #PF of a
	 * stack page not yet shadowed) loses the event unless we inject it
	 * again. Soft events (INT3, INTO, INT n) are not re-injected: without
	 * NRIPS we cannot say where they return to, but RIP still points at the
	 * instruction, which raises them again.
	 */
	if (info & SVM_EXITINTINFO_VALID) {
		u32 type = info & SVM_EXITINTINFO_TYPE_MASK;
		u8 vector = info & SVM_EXITINTINFO_VEC_MASK;

		if ((type == SVM_EXITINTINFO_TYPE_EXEPT && vector != BP_VECTOR &&
		     vector != OF_VECTOR) || type == SVM_EXITINTINFO_TYPE_INTR)
			vcpu->event = (struct kl_pending_event) {
				.valid = true, .delivering = true, .vector = vector,
				.is_exception = type == SVM_EXITINTINFO_TYPE_EXEPT,
				.has_error = info & SVM_EXITINTINFO_VALID_ERR,
				.error = vmcb->control.exit_int_info_err,
			};
	}
}

static void enter_guest(struct kl_vcpu *vcpu)
{
	struct svm_vcpu *svm = to_svm(vcpu);
	struct svm_cpu *sd;
	int cpu;

	kernel_fpu_begin();		/* the task's FPU state is saved; ours to use */
	local_irq_disable();
	cpu = smp_processor_id();
	sd = this_cpu_ptr(&svm_cpus);
	/* One ASID for every vCPU: flush when another VMCB, or a move, or the MMU asks. */
	if (svm->flush || sd->last_vmcb != svm->vmcb || svm->last_cpu != cpu)
		svm->vmcb->control.tlb_ctl = TLB_CONTROL_FLUSH_ALL_ASID;
	else
		svm->vmcb->control.tlb_ctl = TLB_CONTROL_DO_NOTHING;
	if (svm->last_cpu >= 0 && svm->last_cpu != cpu)
		vcpu->stat.cpu_migrations++;
	svm->flush = false;
	sd->last_vmcb = svm->vmcb;
	svm->last_cpu = cpu;
	asm volatile("fxrstor64 %0" :: "m"(*svm->fpu));
	/*
	 * Guest mode is a quiescent state for RCU, like user mode: say so, or a
	 * vCPU that keeps re-entering the guest (preemption off all the while)
	 * starves RCU grace periods on this CPU. KVM does the same.
	 */
	rcu_virt_note_context_switch(cpu);
	asm volatile("clgi" ::: "memory");
	kl_svm_vmrun(svm->vmcb_pa, vcpu->regs, page_to_phys(sd->host_vmsave));
	asm volatile("stgi" ::: "memory");
	asm volatile("fxsave64 %0" : "=m"(*svm->fpu));
	local_irq_enable();
	kernel_fpu_end();
}

/* ---- exits ---- */

static void skip_insn(struct kl_vcpu *vcpu, int len)
{
	vcpu->rip += len;
}

static int inject_ud(struct kl_vcpu *vcpu)
{
	kl_queue_exception(vcpu, UD_VECTOR, false, 0);
	return 1;
}

static int inject_gp(struct kl_vcpu *vcpu)
{
	kl_queue_exception(vcpu, GP_VECTOR, true, 0);
	return 1;
}

static int emulation_failed(struct kl_vcpu *vcpu, const struct kl_insn *insn)
{
	u64 bytes = 0;

	vcpu->stat.insn_emulation_fail++;
	memcpy(&bytes, insn->bytes, min(insn->len > 0 ? insn->len : 8, 8));
	kl_internal_error(vcpu, KVM_INTERNAL_ERROR_EMULATION, vcpu->rip, bytes);
	return 0;
}

static int handle_page_fault(struct kl_vcpu *vcpu, u64 addr, u32 error)
{
	struct kl_pf_info pf = {
		.addr = addr, .error = error,
		.vectoring = to_svm(vcpu)->vmcb->control.exit_int_info & SVM_EXITINTINFO_VALID,
	};
	int r;

	vcpu->stat.pf_taken++;
	r = kl_phys_mode(vcpu) ? kl_phys_page_fault(vcpu, &pf) :
				 vcpu->vm->mmu->page_fault(vcpu, &pf);
	switch (r) {
	case KL_PF_FIXED:
		vcpu->stat.pf_fixed++;
		return 1;
	case KL_PF_RETRY:
		return 1;
	case KL_PF_GUEST:
		kl_inject_page_fault(vcpu, addr, pf.guest_error);
		return 1;
	case KL_PF_MMIO:
		if (!pf.vectoring)
			return kl_emulate(vcpu, &pf);
		r = -ELOOP;	/* an event frame or IDT in MMIO: nothing at RIP to emulate */
		break;
	case -EOPNOTSUPP:	/* a write the strategy must emulate and cannot */
		vcpu->stat.insn_emulation_fail++;
		kl_internal_error(vcpu, KVM_INTERNAL_ERROR_EMULATION, vcpu->rip, addr);
		return 0;
	}
	/* -ELOOP: an event's delivery that cannot go on (as KVM reports it); else an errno. */
	kl_internal_error(vcpu, KVM_INTERNAL_ERROR_DELIVERY_EV, addr, (u64)r);
	return 0;
}

static int handle_cr(struct kl_vcpu *vcpu)
{
	struct kl_insn insn;
	int r, cr, reg;
	u64 val;

	vcpu->stat.cr_exits++;
	r = kl_fetch_decode(vcpu, &insn);
	if (r)
		return r < 0 ? emulation_failed(vcpu, &insn) : 1;
	if (insn.opcode_len == 2 && insn.opcode[1] == 0x06) {	/* CLTS */
		vcpu->cr0 &= ~X86_CR0_TS;
		skip_insn(vcpu, insn.len);
		return 1;
	}
	if (insn.opcode_len != 2 || (insn.opcode[1] != 0x20 && insn.opcode[1] != 0x22))
		return emulation_failed(vcpu, &insn);
	cr = insn.reg;
	reg = insn.rm;
	if (insn.opcode[1] == 0x20) {
		val = cr == 0 ? vcpu->cr0 : cr == 2 ? vcpu->cr2 : cr == 3 ? vcpu->cr3 :
		      cr == 4 ? vcpu->cr4 : 0;
		if (cr != 0 && cr != 2 && cr != 3 && cr != 4)
			return inject_ud(vcpu);
		vcpu->regs[reg] = val;
	} else {
		val = vcpu->regs[reg];
		r = cr == 0 ? kl_set_cr0(vcpu, val) : cr == 3 ? kl_set_cr3(vcpu, val) :
		    cr == 4 ? kl_set_cr4(vcpu, val) : cr == 2 ? (vcpu->cr2 = val, 0) : -EINVAL;
		if (r)
			return inject_gp(vcpu);
	}
	skip_insn(vcpu, insn.len);
	return 1;
}

/* Debug registers are storage only: breakpoints are not offered to guests. */
static int handle_dr(struct kl_vcpu *vcpu)
{
	struct kl_insn insn;
	int r = kl_fetch_decode(vcpu, &insn);

	if (r)
		return r < 0 ? emulation_failed(vcpu, &insn) : 1;
	if (insn.opcode_len != 2 || (insn.opcode[1] != 0x21 && insn.opcode[1] != 0x23))
		return emulation_failed(vcpu, &insn);
	if (insn.opcode[1] == 0x21)
		vcpu->regs[insn.rm] = vcpu->dr[insn.reg & 7];
	else
		vcpu->dr[insn.reg & 7] = vcpu->regs[insn.rm];
	skip_insn(vcpu, insn.len);
	return 1;
}

static int handle_invlpg(struct kl_vcpu *vcpu)
{
	struct kl_insn insn;
	int r = kl_fetch_decode(vcpu, &insn);

	if (r)
		return r < 0 ? emulation_failed(vcpu, &insn) : 1;
	if (insn.opcode_len != 2 || insn.opcode[1] != 0x01 || insn.reg != 7 || !insn.mem)
		return emulation_failed(vcpu, &insn);
	vcpu->stat.invlpg++;
	vcpu->vm->mmu->invlpg(vcpu, insn.ea);
	skip_insn(vcpu, insn.len);
	return 1;
}

/* Port I/O: the VMCB says port, size and direction, and the next RIP. */
static int handle_io(struct kl_vcpu *vcpu)
{
	struct vmcb *vmcb = to_svm(vcpu)->vmcb;
	u64 info = vmcb->control.exit_info_1;
	struct kvm_run *run = vcpu->run;
	int size = (info & SVM_IOIO_SIZE_MASK) >> SVM_IOIO_SIZE_SHIFT;
	u32 offset = ALIGN(sizeof(struct kvm_run), 64);

	vcpu->stat.io_exits++;
	if (info & (SVM_IOIO_STR_MASK | SVM_IOIO_REP_MASK)) {
		kl_internal_error(vcpu, KVM_INTERNAL_ERROR_EMULATION, vcpu->rip, info);
		return 0;	/* string I/O is not emulated */
	}
	size = size == 1 ? 1 : size == 2 ? 2 : 4;
	run->exit_reason = KVM_EXIT_IO;
	run->io.direction = (info & SVM_IOIO_TYPE_MASK) ? KVM_EXIT_IO_IN : KVM_EXIT_IO_OUT;
	run->io.size = size;
	run->io.port = info >> 16;
	run->io.count = 1;
	run->io.data_offset = offset;
	if (run->io.direction == KVM_EXIT_IO_OUT) {
		memcpy((u8 *)run + offset, &vcpu->regs[KL_RAX], size);
	} else {
		vcpu->mmio_pending = true;
		vcpu->pending_is_pio = true;
		vcpu->mmio_is_read = true;
		vcpu->mmio_reg = KL_RAX;
		vcpu->mmio_len = size;
		vcpu->mmio_next_rip = vmcb->control.exit_info_2;
		return 0;
	}
	vcpu->rip = vmcb->control.exit_info_2;
	return 0;
}

static bool msr_read(struct kl_vcpu *vcpu, u32 msr, u64 *val)
{
	struct vmcb_save_area *s = &to_svm(vcpu)->vmcb->save;

	switch (msr) {
	case MSR_EFER: *val = vcpu->efer; break;
	case MSR_STAR: *val = s->star; break;
	case MSR_LSTAR: *val = s->lstar; break;
	case MSR_CSTAR: *val = s->cstar; break;
	case MSR_SYSCALL_MASK: *val = s->sfmask; break;
	case MSR_KERNEL_GS_BASE: *val = s->kernel_gs_base; break;
	case MSR_FS_BASE: *val = s->fs.base; break;
	case MSR_GS_BASE: *val = s->gs.base; break;
	case MSR_IA32_SYSENTER_CS: *val = s->sysenter_cs; break;
	case MSR_IA32_SYSENTER_ESP: *val = s->sysenter_esp; break;
	case MSR_IA32_SYSENTER_EIP: *val = s->sysenter_eip; break;
	case MSR_IA32_CR_PAT: *val = s->g_pat; break;
	case MSR_IA32_TSC: *val = rdtsc(); break;
	case MSR_IA32_APICBASE: *val = kl_apic_base(vcpu); break;
	case MSR_IA32_MISC_ENABLE: *val = MSR_IA32_MISC_ENABLE_FAST_STRING; break;
	case MSR_MTRRcap: case MSR_MTRRdefType: case MSR_IA32_MCG_CAP:
	case MSR_IA32_MCG_STATUS: case MSR_IA32_UCODE_REV: *val = 0; break;
	default: return false;
	}
	return true;
}

static bool msr_write(struct kl_vcpu *vcpu, u32 msr, u64 val)
{
	struct vmcb_save_area *s = &to_svm(vcpu)->vmcb->save;
	bool canonical = (s64)(val << 16) >> 16 == (s64)val;

	switch (msr) {
	case MSR_EFER: return kl_set_efer(vcpu, val) == 0;
	case MSR_STAR: s->star = val; break;
	case MSR_LSTAR: if (!canonical) return false; s->lstar = val; break;
	case MSR_CSTAR: if (!canonical) return false; s->cstar = val; break;
	case MSR_SYSCALL_MASK: s->sfmask = val; break;
	case MSR_KERNEL_GS_BASE: if (!canonical) return false; s->kernel_gs_base = val; break;
	case MSR_FS_BASE: if (!canonical) return false; s->fs.base = val; break;
	case MSR_GS_BASE: if (!canonical) return false; s->gs.base = val; break;
	case MSR_IA32_SYSENTER_CS: s->sysenter_cs = val; break;
	case MSR_IA32_SYSENTER_ESP: s->sysenter_esp = val; break;
	case MSR_IA32_SYSENTER_EIP: s->sysenter_eip = val; break;
	case MSR_IA32_CR_PAT: s->g_pat = val; break;
	case MSR_IA32_MISC_ENABLE: case MSR_MTRRdefType: case MSR_IA32_UCODE_REV: break;
	default: return false;
	}
	return true;
}

static int handle_msr(struct kl_vcpu *vcpu)
{
	bool write = to_svm(vcpu)->vmcb->control.exit_info_1;
	u32 msr = vcpu->regs[KL_RCX];
	u64 val;

	vcpu->stat.msr_exits++;
	if (write) {
		val = (vcpu->regs[KL_RDX] << 32) | (u32)vcpu->regs[KL_RAX];
		if (!msr_write(vcpu, msr, val))
			return inject_gp(vcpu);
	} else {
		if (!msr_read(vcpu, msr, &val))
			return inject_gp(vcpu);
		vcpu->regs[KL_RAX] = (u32)val;
		vcpu->regs[KL_RDX] = val >> 32;
	}
	skip_insn(vcpu, 2);	/* RDMSR and WRMSR are 0F 32 / 0F 30 */
	return 1;
}

static int handle_cpuid(struct kl_vcpu *vcpu)
{
	const struct kvm_cpuid_entry2 *e;

	vcpu->stat.cpuid_exits++;
	e = kl_find_cpuid(vcpu, vcpu->regs[KL_RAX], vcpu->regs[KL_RCX]);
	vcpu->regs[KL_RAX] = e ? e->eax : 0;
	vcpu->regs[KL_RBX] = e ? e->ebx : 0;
	vcpu->regs[KL_RCX] = e ? e->ecx : 0;
	vcpu->regs[KL_RDX] = e ? e->edx : 0;
	skip_insn(vcpu, 2);
	return 1;
}

/*
 * A triple fault, the CPU's or one our exception rules reached: the VMCB is
 * undefined after it, so the vCPU starts over, as KVM does.
 */
static int shutdown(struct kl_vcpu *vcpu)
{
	vcpu->triple_fault = false;
	vcpu->run->exit_reason = KVM_EXIT_SHUTDOWN;
	memset(to_svm(vcpu)->vmcb, 0, PAGE_SIZE);
	init_vmcb(vcpu);
	kl_vcpu_reset(vcpu);
	vcpu->vm->mmu->mode_changed(vcpu);
	return 0;
}

static int handle_exit(struct kl_vcpu *vcpu)
{
	struct vmcb_control_area *c = &to_svm(vcpu)->vmcb->control;
	u32 code = c->exit_code;

	vcpu->stat.exits++;
	if (code >= SVM_EXIT_READ_CR0 && code <= SVM_EXIT_WRITE_CR8)
		return handle_cr(vcpu);
	if (code >= SVM_EXIT_READ_DR0 && code <= SVM_EXIT_WRITE_DR0 + 7)
		return handle_dr(vcpu);
	switch (code) {
	case SVM_EXIT_EXCP_BASE + PF_VECTOR:
		return handle_page_fault(vcpu, c->exit_info_2, (u32)c->exit_info_1);
	case SVM_EXIT_NPF:
		vcpu->stat.npf_exits++;
		return handle_page_fault(vcpu, c->exit_info_2, (u32)c->exit_info_1);
	case SVM_EXIT_INVLPG:
		return handle_invlpg(vcpu);
	case SVM_EXIT_IOIO:
		return handle_io(vcpu);
	case SVM_EXIT_MSR:
		return handle_msr(vcpu);
	case SVM_EXIT_CPUID:
		return handle_cpuid(vcpu);
	case SVM_EXIT_HLT:
		vcpu->stat.halt_exits++;
		skip_insn(vcpu, 1);
		/* An interrupt already queued for an interruptible guest ends the halt. */
		if (vcpu->irq_pending && svm_interrupt_allowed(vcpu))
			return 1;
		vcpu->run->exit_reason = KVM_EXIT_HLT;
		return 0;
	case SVM_EXIT_VINTR:
		vcpu->stat.irq_window_exits++;
		if (vcpu->irq_pending || !vcpu->run->request_interrupt_window)
			return 1;	/* inject_interrupts() delivers it now */
		vcpu->stat.request_irq_exits++;
		vcpu->run->exit_reason = KVM_EXIT_IRQ_WINDOW_OPEN;
		return 0;
	case SVM_EXIT_VMMCALL:
		vcpu->stat.hypercalls++;
		vcpu->regs[KL_RAX] = -KVM_ENOSYS_HC;
		skip_insn(vcpu, 3);
		return 1;
	case SVM_EXIT_INTR:
		vcpu->stat.irq_exits++;
		return 1;
	case SVM_EXIT_NMI:
	case SVM_EXIT_SMI:
		return 1;
	case SVM_EXIT_SHUTDOWN:
		return shutdown(vcpu);
	case SVM_EXIT_VMRUN: case SVM_EXIT_VMLOAD: case SVM_EXIT_VMSAVE:
	case SVM_EXIT_STGI: case SVM_EXIT_CLGI: case SVM_EXIT_SKINIT:
	case SVM_EXIT_INVLPGA: case SVM_EXIT_RDTSCP: case SVM_EXIT_MONITOR:
	case SVM_EXIT_MWAIT: case SVM_EXIT_XSETBV: case SVM_EXIT_RDPRU:
		return inject_ud(vcpu);
	case SVM_EXIT_ERR:
		vcpu->run->exit_reason = KVM_EXIT_FAIL_ENTRY;
		vcpu->run->fail_entry.hardware_entry_failure_reason = code;
		vcpu->run->fail_entry.cpu = smp_processor_id();
		return 0;
	default:
		kl_internal_error(vcpu, KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON, code,
				  c->exit_info_1);
		return 0;
	}
}

static int svm_run_once(struct kl_vcpu *vcpu)
{
	int r;
	bool unmodelled = kl_guest_paging(vcpu) ? !kl_guest_long_mode(vcpu) :
						  !(vcpu->cr0 & X86_CR0_PE);

	if (!vcpu->vm->mmu->hw_paging && unmodelled) {
		/*
		 * The shadow MMUs model 4-level paging, plus protected mode
		 * with paging off (phys.c): real mode and 32-bit or PAE paging
		 * need nested paging (see kmod/README.md).
		 */
		kl_internal_error(vcpu, KVM_INTERNAL_ERROR_EMULATION, vcpu->rip, vcpu->cr0);
		return 0;
	}
	if (vcpu->triple_fault)
		return shutdown(vcpu);
	r = load_state(vcpu);
	if (r)
		return r;
	enter_guest(vcpu);
	save_state(vcpu);
	return handle_exit(vcpu);
}

const struct kl_vendor_ops kl_svm_ops = {
	.name = "svm",
	.hardware_enable = svm_hardware_enable,
	.hardware_disable = svm_hardware_disable,
	.vcpu_create = svm_vcpu_create,
	.vcpu_free = svm_vcpu_free,
	.get_sregs = svm_get_sregs,
	.set_sregs = svm_set_sregs,
	.get_cpl = svm_get_cpl,
	.interrupt_allowed = svm_interrupt_allowed,
	.run_once = svm_run_once,
	.mmu_reload = svm_mmu_reload,
	.flush_guest_tlb = svm_flush_guest_tlb,
};
