// SPDX-License-Identifier: GPL-2.0
/*
 * vCPU files: registers, CPUID, and KVM_RUN — the middle level of the
 * three-level loop. Userspace calls KVM_RUN; the kernel enters the guest
 * over and over, handling what it can, and returns to userspace only for
 * what only userspace can do (port and MMIO I/O, a halt, an error) or when
 * a signal is pending.
 */
#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <asm/processor.h>
#include "kvmlab.h"

#define CR0_RESERVED	(~0xe005003fULL)
#define EFER_SUPPORTED	(EFER_SCE | EFER_LME | EFER_LMA | EFER_NX)

static bool contributory(u8 vector)
{
	return vector == DE_VECTOR || (vector >= TS_VECTOR && vector <= GP_VECTOR);
}

/*
 * An exception raised while the CPU was delivering another one combines
 * with it as the CPU's rules say (SDM, "Interrupt 8—Double Fault"): a
 * contributory fault during a contributory fault, or a contributory fault
 * or #PF during a #PF, becomes #DF; either during a #DF shuts the guest
 * down. Otherwise the two are handled one after the other: the new one is
 * delivered, and the old one recurs when its instruction restarts (an
 * external interrupt is lost, as on the hardware).
 */
void kl_queue_exception(struct kl_vcpu *vcpu, u8 vector, bool has_error, u32 error)
{
	const struct kl_pending_event *old = &vcpu->event;
	bool serious = contributory(vector) || vector == PF_VECTOR;

	if (old->valid && old->delivering && old->is_exception && serious) {
		if (old->vector == DF_VECTOR) {
			vcpu->event.valid = false;
			vcpu->triple_fault = true;
			return;
		}
		if (old->vector == PF_VECTOR || (contributory(old->vector) && contributory(vector))) {
			vector = DF_VECTOR;
			has_error = true;
			error = 0;
		}
	}
	vcpu->event = (struct kl_pending_event) {
		.valid = true, .vector = vector, .has_error = has_error,
		.error = error, .is_exception = true,
	};
}

void kl_inject_page_fault(struct kl_vcpu *vcpu, u64 addr, u32 error)
{
	vcpu->cr2 = addr;
	kl_queue_exception(vcpu, PF_VECTOR, true, error);
	vcpu->stat.pf_guest++;
}

void kl_internal_error(struct kl_vcpu *vcpu, u32 suberror, u64 data0, u64 data1)
{
	vcpu->run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
	vcpu->run->internal.suberror = suberror;
	vcpu->run->internal.ndata = 2;
	vcpu->run->internal.data[0] = data0;
	vcpu->run->internal.data[1] = data1;
}

bool kl_guest_paging(struct kl_vcpu *vcpu)
{
	return vcpu->cr0 & X86_CR0_PG;
}

bool kl_guest_long_mode(struct kl_vcpu *vcpu)
{
	return vcpu->efer & EFER_LMA;
}

/* Paging-relevant bits: a change means the MMU's view is stale. */
static void paging_changed(struct kl_vcpu *vcpu, u64 old_cr0, u64 old_cr4, u64 old_efer)
{
	u64 cr0_bits = X86_CR0_PG | X86_CR0_WP, cr4_bits = X86_CR4_PAE | X86_CR4_PSE;

	if ((old_cr4 ^ vcpu->cr4) & X86_CR4_PGE) {
		vcpu->stat.tlb_flush++;
		vcpu->vm->mmu->flush_tlb(vcpu);
	}
	if (((old_cr0 ^ vcpu->cr0) & cr0_bits) || ((old_cr4 ^ vcpu->cr4) & cr4_bits) ||
	    ((old_efer ^ vcpu->efer) & (EFER_NX | EFER_LMA)))
		vcpu->vm->mmu->mode_changed(vcpu);
}

/* CS.L: 64-bit code in long mode, and a state no CR0 write may leave or enter. */
static bool code64(struct kl_vcpu *vcpu)
{
	struct kvm_sregs sr;

	kl_vendor->get_sregs(vcpu, &sr);
	return sr.cs.l;
}

int kl_set_cr0(struct kl_vcpu *vcpu, u64 val)
{
	u64 old = vcpu->cr0;

	if (val & CR0_RESERVED)
		return -EINVAL;
	if ((val & X86_CR0_PG) && !(val & X86_CR0_PE))
		return -EINVAL;
	if ((val & X86_CR0_NW) && !(val & X86_CR0_CD))
		return -EINVAL;
	/*
	 * Paging on with EFER.LME set enters long mode: it needs PAE, and it
	 * must happen from 32-bit code. Paging off leaves long mode, which
	 * 64-bit code cannot do (the CPU raises #GP for both).
	 */
	if ((val & X86_CR0_PG) && !(old & X86_CR0_PG) && (vcpu->efer & EFER_LME)) {
		if (!(vcpu->cr4 & X86_CR4_PAE) || code64(vcpu))
			return -EINVAL;
		vcpu->efer |= EFER_LMA;
	}
	if (!(val & X86_CR0_PG) && (old & X86_CR0_PG) && (vcpu->efer & EFER_LMA)) {
		if (code64(vcpu))
			return -EINVAL;
		vcpu->efer &= ~EFER_LMA;
	}
	vcpu->cr0 = val | X86_CR0_ET;
	paging_changed(vcpu, old, vcpu->cr4, vcpu->efer);
	return 0;
}

int kl_set_cr3(struct kl_vcpu *vcpu, u64 val)
{
	if (kl_guest_long_mode(vcpu) && (val & ~0x000ffffffffffff8ULL & ~0x18ULL))
		return -EINVAL;
	vcpu->cr3 = val;
	vcpu->stat.tlb_flush++;
	vcpu->vm->mmu->load_cr3(vcpu);
	return 0;
}

int kl_set_cr4(struct kl_vcpu *vcpu, u64 val)
{
	u64 old = vcpu->cr4;

	if (val & ~KL_CR4_SUPPORTED)
		return -EINVAL;
	if (kl_guest_long_mode(vcpu) && !(val & X86_CR4_PAE))
		return -EINVAL;
	vcpu->cr4 = val;
	paging_changed(vcpu, vcpu->cr0, old, vcpu->efer);
	return 0;
}

int kl_set_efer(struct kl_vcpu *vcpu, u64 val)
{
	u64 old = vcpu->efer;

	if (val & ~EFER_SUPPORTED)
		return -EINVAL;
	/* LME may not change while paging is on; LMA is the CPU's to set. */
	if ((vcpu->cr0 & X86_CR0_PG) && ((val ^ old) & EFER_LME))
		return -EINVAL;
	vcpu->efer = (val & ~EFER_LMA) | (old & EFER_LMA);
	paging_changed(vcpu, vcpu->cr0, vcpu->cr4, old);
	return 0;
}

u64 kl_apic_base(struct kl_vcpu *vcpu)
{
	return 0xfee00000ULL | BIT(11) | (vcpu->id == 0 ? BIT(8) : 0);
}

const struct kvm_cpuid_entry2 *kl_find_cpuid(struct kl_vcpu *vcpu, u32 func, u32 index)
{
	for (int i = 0; i < vcpu->ncpuid; i++) {
		const struct kvm_cpuid_entry2 *e = &vcpu->cpuid[i];

		if (e->function == func &&
		    (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == index))
			return e;
	}
	return NULL;
}

/*
 * What a guest may be told it has: only features the hypervisor handles.
 * No XSAVE/AVX (XSETBV is refused), no PCID/SMEP/SMAP/PKU/LA57 (the shadow
 * MMUs do not model them), no VMX/SVM, no x2APIC or APIC (no local APIC).
 */
static void supported_entry(struct kvm_cpuid_entry2 *e, u32 func, u32 index)
{
	e->function = func;
	e->index = index;
	e->flags = 0;
	cpuid_count(func, index, &e->eax, &e->ebx, &e->ecx, &e->edx);
	switch (func) {
	case 1:
		e->ecx &= BIT(0) | BIT(9) | BIT(13) | BIT(19) | BIT(20) | BIT(23);	/* SSE3 SSSE3 CX16 SSE4.1/2 POPCNT */
		e->ecx |= BIT(31);							/* hypervisor */
		e->edx &= ~(BIT(9) | BIT(21) | BIT(22) | BIT(28));			/* APIC DS ACPI HTT */
		e->ebx &= 0xffff;
		break;
	case 7:
		e->flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
		e->eax = 0;
		e->ebx &= BIT(0) | BIT(3) | BIT(8) | BIT(9);	/* FSGSBASE BMI1 BMI2 ERMS */
		e->ecx = 0;
		e->edx = 0;
		break;
	case 0x80000001:
		e->ecx &= BIT(0) | BIT(5) | BIT(8);		/* LAHF ABM PREFETCHW */
		e->edx &= BIT(11) | BIT(20) | BIT(26) | BIT(29) | 0x0183f3ff;	/* SYSCALL NX 1GB LM + base */
		e->edx &= ~BIT(27);				/* RDTSCP: no TSC_AUX */
		break;
	case 0x80000008:
		e->ebx = 0;
		e->ecx = 0;
		break;
	}
}

int kl_get_supported_cpuid(struct kvm_cpuid2 __user *argp)
{
	static const u32 leaves[] = { 0, 1, 7, 0x80000000, 0x80000001, 0x80000002,
				      0x80000003, 0x80000004, 0x80000008 };
	struct kvm_cpuid2 head;
	struct kvm_cpuid_entry2 e;
	u32 n = 0, max_basic = cpuid_eax(0), max_ext = cpuid_eax(0x80000000);

	if (copy_from_user(&head, argp, sizeof(head)))
		return -EFAULT;
	if (head.nent < ARRAY_SIZE(leaves))
		return -E2BIG;
	for (int i = 0; i < ARRAY_SIZE(leaves); i++) {
		u32 f = leaves[i];

		if ((f < 0x80000000 && f > max_basic) || (f >= 0x80000000 && f > max_ext))
			continue;
		supported_entry(&e, f, 0);
		if (f == 0)
			e.eax = min_t(u32, e.eax, 7);
		if (f == 0x80000000)
			e.eax = min_t(u32, e.eax, 0x80000008);
		if (copy_to_user(&argp->entries[n++], &e, sizeof(e)))
			return -EFAULT;
	}
	if (put_user(n, &argp->nent))
		return -EFAULT;
	return 0;
}

static int set_cpuid2(struct kl_vcpu *vcpu, struct kvm_cpuid2 __user *argp)
{
	struct kvm_cpuid2 head;

	if (copy_from_user(&head, argp, sizeof(head)))
		return -EFAULT;
	if (head.nent > KL_MAX_CPUID)
		return -E2BIG;
	if (copy_from_user(vcpu->cpuid, argp->entries, head.nent * sizeof(vcpu->cpuid[0])))
		return -EFAULT;
	vcpu->ncpuid = head.nent;
	return 0;
}

/*
 * The architectural state after RESET, vendor-neutral part: real mode at
 * the reset vector, paging off. The vendor resets its own (segments).
 */
void kl_vcpu_reset(struct kl_vcpu *vcpu)
{
	memset(vcpu->regs, 0, sizeof(vcpu->regs));
	vcpu->rip = 0xfff0;
	vcpu->rflags = 2;
	vcpu->cr0 = X86_CR0_ET | X86_CR0_NW | X86_CR0_CD;
	vcpu->cr2 = vcpu->cr3 = vcpu->cr4 = vcpu->efer = 0;
	memset(vcpu->dr, 0, sizeof(vcpu->dr));
	vcpu->dr[6] = 0xffff0ff0;
	vcpu->dr[7] = 0x400;
	vcpu->event.valid = false;
	vcpu->triple_fault = false;
	vcpu->irq_pending = false;
	vcpu->mmio_pending = false;
}

static void get_regs(struct kl_vcpu *vcpu, struct kvm_regs *r)
{
	*r = (struct kvm_regs) {
		.rax = vcpu->regs[KL_RAX], .rbx = vcpu->regs[KL_RBX],
		.rcx = vcpu->regs[KL_RCX], .rdx = vcpu->regs[KL_RDX],
		.rsi = vcpu->regs[KL_RSI], .rdi = vcpu->regs[KL_RDI],
		.rsp = vcpu->regs[KL_RSP], .rbp = vcpu->regs[KL_RBP],
		.r8 = vcpu->regs[KL_R8], .r9 = vcpu->regs[KL_R9],
		.r10 = vcpu->regs[KL_R10], .r11 = vcpu->regs[KL_R11],
		.r12 = vcpu->regs[KL_R12], .r13 = vcpu->regs[KL_R13],
		.r14 = vcpu->regs[KL_R14], .r15 = vcpu->regs[KL_R15],
		.rip = vcpu->rip, .rflags = vcpu->rflags,
	};
}

static void set_regs(struct kl_vcpu *vcpu, const struct kvm_regs *r)
{
	vcpu->regs[KL_RAX] = r->rax; vcpu->regs[KL_RBX] = r->rbx;
	vcpu->regs[KL_RCX] = r->rcx; vcpu->regs[KL_RDX] = r->rdx;
	vcpu->regs[KL_RSI] = r->rsi; vcpu->regs[KL_RDI] = r->rdi;
	vcpu->regs[KL_RSP] = r->rsp; vcpu->regs[KL_RBP] = r->rbp;
	vcpu->regs[KL_R8] = r->r8; vcpu->regs[KL_R9] = r->r9;
	vcpu->regs[KL_R10] = r->r10; vcpu->regs[KL_R11] = r->r11;
	vcpu->regs[KL_R12] = r->r12; vcpu->regs[KL_R13] = r->r13;
	vcpu->regs[KL_R14] = r->r14; vcpu->regs[KL_R15] = r->r15;
	vcpu->rip = r->rip;
	vcpu->rflags = (r->rflags & 0x3f7fd7) | 2;	/* reserved bits as the CPU keeps them */
}

/* An MMIO read handed to userspace lands in its register now. */
static void complete_mmio(struct kl_vcpu *vcpu)
{
	if (!vcpu->mmio_pending)
		return;
	if (vcpu->mmio_is_read) {
		u64 v = 0;

		if (vcpu->pending_is_pio)
			memcpy(&v, (u8 *)vcpu->run + vcpu->run->io.data_offset, vcpu->mmio_len);
		else
			memcpy(&v, vcpu->run->mmio.data, vcpu->mmio_len);
		if (vcpu->mmio_len >= 4)
			vcpu->regs[vcpu->mmio_reg] = v;	/* 32-bit results zero-extend */
		else if (vcpu->mmio_reg >= 16)		/* AH..BH: byte 1 of RAX..RBX */
			((u8 *)&vcpu->regs[vcpu->mmio_reg - 16])[1] = (u8)v;
		else
			memcpy(&vcpu->regs[vcpu->mmio_reg], &v, vcpu->mmio_len);
	}
	vcpu->rip = vcpu->mmio_next_rip;
	vcpu->mmio_pending = false;
}

/*
 * What userspace needs to decide on an interrupt, told at every return
 * from KVM_RUN: a device model injects only when the vCPU is ready, and
 * otherwise sets request_interrupt_window to hear when it becomes so.
 */
static void report_interruptibility(struct kl_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;

	run->if_flag = !!(vcpu->rflags & X86_EFLAGS_IF);
	run->ready_for_interrupt_injection = kl_vendor->interrupt_allowed(vcpu) &&
					     !vcpu->irq_pending && !vcpu->event.valid;
	run->apic_base = kl_apic_base(vcpu);
}

static int run_loop(struct kl_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	int r;

	complete_mmio(vcpu);
	/* KVM_EXIT_IO "in": userspace has put the data in place; nothing to do. */
	for (;;) {
		if (READ_ONCE(run->immediate_exit) || signal_pending(current)) {
			run->exit_reason = KVM_EXIT_INTR;
			return -EINTR;
		}
		cond_resched();
		r = kl_vendor->run_once(vcpu);
		if (r <= 0)
			return r;
	}
}

int kl_vcpu_run(struct kl_vcpu *vcpu)
{
	int r = run_loop(vcpu);

	report_interruptibility(vcpu);
	return r;
}

/*
 * KVM_INTERRUPT (userspace interrupt controller): queue one external
 * interrupt. It is delivered at the first entry where the guest can take
 * it; until then the vCPU watches for that moment itself. Linux KVM lets a
 * second call overwrite an undelivered vector; we refuse it (-EBUSY) so a
 * device model cannot lose an interrupt without knowing.
 */
static int queue_interrupt(struct kl_vcpu *vcpu, const struct kvm_interrupt __user *argp)
{
	struct kvm_interrupt irq;

	if (copy_from_user(&irq, argp, sizeof(irq)))
		return -EFAULT;
	if (irq.irq > 255)
		return -EINVAL;
	if (vcpu->irq_pending)
		return -EBUSY;
	vcpu->irq_pending = true;
	vcpu->irq_vector = irq.irq;
	return 0;
}

static int vcpu_release(struct inode *inode, struct file *filp)
{
	struct kl_vcpu *vcpu = filp->private_data;

	kl_vm_put(vcpu->vm);
	return 0;
}

static vm_fault_t vcpu_fault(struct vm_fault *vmf)
{
	struct kl_vcpu *vcpu = vmf->vma->vm_file->private_data;

	if (vmf->pgoff != 0)
		return VM_FAULT_SIGBUS;
	vmf->page = virt_to_page(vcpu->run);
	get_page(vmf->page);
	return 0;
}

static const struct vm_operations_struct vcpu_vm_ops = {
	.fault = vcpu_fault,
};

static int vcpu_mmap(struct file *file, struct vm_area_struct *vma)
{
	if (vma->vm_pgoff != 0 || vma->vm_end - vma->vm_start > PAGE_SIZE)
		return -EINVAL;
	vma->vm_ops = &vcpu_vm_ops;
	return 0;
}

static const struct file_operations vcpu_fops = {
	.owner = THIS_MODULE,
	.release = vcpu_release,
	.unlocked_ioctl = kl_vcpu_ioctl,
	.mmap = vcpu_mmap,
	.llseek = noop_llseek,
};

int kl_vm_create_vcpu(struct kl_vm *vm, unsigned long id)
{
	struct kl_vcpu *vcpu;
	int r, fd;

	if (id >= KL_MAX_VCPUS)
		return -EINVAL;
	if (mutex_lock_killable(&vm->lock))
		return -EINTR;
	r = -EEXIST;
	for (int i = 0; i < vm->nr_vcpus; i++)
		if (vm->vcpus[i]->id == id)
			goto out_unlock;
	r = -ENOMEM;
	vcpu = kzalloc(sizeof(*vcpu), GFP_KERNEL_ACCOUNT);
	if (!vcpu)
		goto out_unlock;
	vcpu->run = (void *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
	if (!vcpu->run)
		goto out_free;
	vcpu->vm = vm;
	vcpu->id = id;
	mutex_init(&vcpu->lock);
	kl_vcpu_reset(vcpu);
	r = kl_vendor->vcpu_create(vcpu);
	if (r)
		goto out_run;
	r = vm->mmu->vcpu_init(vcpu);
	if (r)
		goto out_vendor;
	kref_get(&vm->ref);
	fd = anon_inode_getfd("kvmlab-vcpu", &vcpu_fops, vcpu, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		refcount_dec(&vm->ref.refcount);	/* not the last: the VM fd is open */
		r = fd;
		goto out_mmu;
	}
	vm->vcpus[vm->nr_vcpus++] = vcpu;
	mutex_unlock(&vm->lock);
	return fd;

out_mmu:
	vm->mmu->vcpu_destroy(vcpu);
out_vendor:
	kl_vendor->vcpu_free(vcpu);
out_run:
	free_page((unsigned long)vcpu->run);
out_free:
	kfree(vcpu);
out_unlock:
	mutex_unlock(&vm->lock);
	return r;
}

long kl_vcpu_ioctl(struct file *filp, unsigned int ioctl, unsigned long arg)
{
	struct kl_vcpu *vcpu = filp->private_data;
	void __user *argp = (void __user *)arg;
	long r = 0;

	if (vcpu->vm->mm != current->mm)
		return -EIO;
	if (mutex_lock_killable(&vcpu->lock))
		return -EINTR;
	switch (ioctl) {
	case KVM_RUN:
		r = arg ? -EINVAL : kl_vcpu_run(vcpu);
		break;
	case KVM_GET_REGS: {
		struct kvm_regs regs;

		get_regs(vcpu, &regs);
		r = copy_to_user(argp, &regs, sizeof(regs)) ? -EFAULT : 0;
		break;
	}
	case KVM_SET_REGS: {
		struct kvm_regs regs;

		if (copy_from_user(&regs, argp, sizeof(regs)))
			r = -EFAULT;
		else
			set_regs(vcpu, &regs);
		break;
	}
	case KVM_GET_SREGS: {
		struct kvm_sregs sregs;

		kl_vendor->get_sregs(vcpu, &sregs);
		r = copy_to_user(argp, &sregs, sizeof(sregs)) ? -EFAULT : 0;
		break;
	}
	case KVM_SET_SREGS: {
		struct kvm_sregs sregs;

		if (copy_from_user(&sregs, argp, sizeof(sregs)))
			r = -EFAULT;
		else
			r = kl_vendor->set_sregs(vcpu, &sregs);
		break;
	}
	case KVM_SET_CPUID2:
		r = set_cpuid2(vcpu, argp);
		break;
	case KVM_INTERRUPT:
		r = queue_interrupt(vcpu, argp);
		break;
	case KVM_GET_STATS_FD:
		r = kl_vcpu_stats_fd(vcpu);
		break;
	default:
		r = -ENOTTY;
	}
	mutex_unlock(&vcpu->lock);
	return r;
}
