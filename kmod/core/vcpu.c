// SPDX-License-Identifier: GPL-2.0
/*
 * vCPU files: registers, KVM_RUN — the middle level of the three-level
 * loop. Userspace calls KVM_RUN; the kernel enters the guest over and over
 * (kl_x86_run_once: the vendor enters, the x86 layer and the MMU handle
 * the exit), handling what it can, and returns to userspace only for what
 * only userspace can do (port and MMIO I/O, a halt, an error) or when a
 * signal is pending.
 */
#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <asm/processor.h>
#include "../x86/vendor.h"

void kl_internal_error(struct kl_vcpu *vcpu, u32 suberror, u64 data0, u64 data1)
{
	vcpu->run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
	vcpu->run->internal.suberror = suberror;
	vcpu->run->internal.ndata = 2;
	vcpu->run->internal.data[0] = data0;
	vcpu->run->internal.data[1] = data1;
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

/* An MMIO read handed to userspace lands in its register (or, for MOVS, guest memory) now. */
static void complete_mmio(struct kl_vcpu *vcpu)
{
	if (vcpu->pio_in.pending)
		kl_complete_string_in(vcpu);
	if (!vcpu->mmio_pending)
		return;
	if (vcpu->mmio_is_read) {
		u64 v = 0;

		if (vcpu->pending_is_pio)
			memcpy(&v, (u8 *)vcpu->run + vcpu->run->io.data_offset, vcpu->mmio_len);
		else
			memcpy(&v, vcpu->run->mmio.data, vcpu->mmio_len);
		if (vcpu->mmio_compare)
			kl_complete_compare(vcpu, v);	/* sets mmio_next_rip */
		else if (vcpu->mmio_to_memory)
			kl_mmu_write_guest(vcpu, vcpu->mmio_dest_gpa, &v, vcpu->mmio_len);
		else if (vcpu->mmio_len >= 4)
			vcpu->regs[vcpu->mmio_reg] = v;	/* 32-bit results zero-extend */
		else if (vcpu->mmio_reg >= 16)		/* AH..BH: byte 1 of RAX..RBX */
			((u8 *)&vcpu->regs[vcpu->mmio_reg - 16])[1] = (u8)v;
		else
			memcpy(&vcpu->regs[vcpu->mmio_reg], &v, vcpu->mmio_len);
	}
	vcpu->rip = vcpu->mmio_next_rip;
	vcpu->mmio_pending = false;
	vcpu->mmio_to_memory = false;
	vcpu->mmio_compare = false;
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
	run->ready_for_interrupt_injection = kl_interrupt_allowed(vcpu) &&
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
		r = kl_x86_run_once(vcpu);
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

/* vCPUs are published and unpublished under vm->mmu_lock: the MMU walks the array. */
static void publish_vcpu(struct kl_vm *vm, struct kl_vcpu *vcpu)
{
	mutex_lock(&vm->mmu_lock);
	vm->vcpus[vm->nr_vcpus++] = vcpu;
	mutex_unlock(&vm->mmu_lock);
}

static void unpublish_last_vcpu(struct kl_vm *vm)
{
	mutex_lock(&vm->mmu_lock);
	vm->vcpus[--vm->nr_vcpus] = NULL;
	mutex_unlock(&vm->mmu_lock);
}

/* Called under vm->lock, so no one else creates a vCPU meanwhile. */
static struct kl_vcpu *vcpu_alloc(struct kl_vm *vm, unsigned long id, int *err)
{
	struct kl_vcpu *vcpu;
	int r = -ENOMEM;

	vcpu = kzalloc(sizeof(*vcpu), GFP_KERNEL_ACCOUNT);
	if (!vcpu)
		goto fail;
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
	r = kl_mmu_vcpu_init(vcpu);
	if (r)
		goto out_vendor;
	return vcpu;

out_vendor:
	kl_vendor->vcpu_free(vcpu);
out_run:
	free_page((unsigned long)vcpu->run);
out_free:
	kfree(vcpu);
fail:
	*err = r;
	return NULL;
}

/* The last reference is gone (or the vCPU was never published): free it. */
void kl_vcpu_free(struct kl_vcpu *vcpu)
{
	kl_mmu_vcpu_destroy(vcpu);
	kl_vendor->vcpu_free(vcpu);
	free_page((unsigned long)vcpu->run);
	kfree(vcpu);
}

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
	vcpu = vcpu_alloc(vm, id, &r);
	if (!vcpu)
		goto out_unlock;
	/* The vCPU fd holds the VM; taken before the fd exists, as its close drops it. */
	kl_vm_get(vm);
	publish_vcpu(vm, vcpu);
	fd = anon_inode_getfd("kvmlab-vcpu", &vcpu_fops, vcpu, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		unpublish_last_vcpu(vm);
		kl_vm_put(vm);		/* not the last: the VM fd is open (we are in its ioctl) */
		kl_vcpu_free(vcpu);
		r = fd;
		goto out_unlock;
	}
	mutex_unlock(&vm->lock);
	return fd;

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

		kl_get_sregs(vcpu, &sregs);
		r = copy_to_user(argp, &sregs, sizeof(sregs)) ? -EFAULT : 0;
		break;
	}
	case KVM_SET_SREGS: {
		struct kvm_sregs sregs;

		if (copy_from_user(&sregs, argp, sizeof(sregs)))
			r = -EFAULT;
		else
			r = kl_set_sregs(vcpu, &sregs);
		break;
	}
	case KVM_SET_CPUID2:
		r = kl_set_cpuid2(vcpu, argp);
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
