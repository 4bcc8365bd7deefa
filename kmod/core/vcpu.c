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
#include <asm/msr.h>
#include <asm/processor.h>
#include "../mmu/mmu.h"
#include "../x86/vendor.h"

void kl_internal_error(struct kl_vcpu *vcpu, u32 suberror, u64 data0, u64 data1)
{
	vcpu->run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
	vcpu->run->internal.suberror = suberror;
	vcpu->run->internal.ndata = 2;
	vcpu->run->internal.data[0] = data0;
	vcpu->run->internal.data[1] = data1;
}

void kl_get_regs(struct kl_vcpu *vcpu, struct kvm_regs *r)
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

void kl_set_regs(struct kl_vcpu *vcpu, const struct kvm_regs *r)
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
	kl_complete_msr_exit(vcpu);
	if (vcpu->pio_in.pending)
		kl_complete_string_in(vcpu);
	if (!vcpu->mmio_pending)
		return;
	if (vcpu->pending_is_pio && vcpu->rip != vcpu->pio_in_rip)
		goto done;	/* userspace moved RIP: the IN is void (handlers.c) */
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
done:
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
	run->cr8 = vcpu->cr8;
}

static void kick_ipi(void *unused)
{
	/* Nothing to do: the interrupt itself made the guest exit. */
}

/* True when the vCPU was in guest mode on another CPU and an IPI went to it. */
static bool kick(struct kl_vcpu *vcpu, enum kl_request req, bool wait)
{
	int cpu, me;
	bool sent = false;

	kl_make_request(vcpu, req);
	/* Pairs with the barrier in kl_enter_guest_mode: one of us sees the other. */
	smp_mb__after_atomic();
	wake_up_interruptible(&vcpu->wq);
	me = get_cpu();
	/*
	 * Mode first, then the CPU: kl_enter_guest_mode writes them in the
	 * other order, so a vCPU seen in guest mode has its CPU written. Read
	 * the other way round, a first entry between the two reads paired
	 * "in guest mode" with the -1 of a vCPU that never ran, and
	 * cpu_online(-1) read outside the mask (an oops the ioctl fuzzer and
	 * the stress test found). The bound check is as KVM's.
	 */
	if (READ_ONCE(vcpu->mode) != KL_IN_GUEST_MODE) {
		put_cpu();
		return false;
	}
	smp_rmb();
	cpu = READ_ONCE(vcpu->cpu);
	if (cpu != me && (unsigned int)cpu < nr_cpu_ids && cpu_online(cpu)) {
		smp_call_function_single(cpu, kick_ipi, NULL, wait);
		sent = true;
	}
	put_cpu();
	return sent;
}

void kl_vcpu_kick(struct kl_vcpu *vcpu, enum kl_request req)
{
	kick(vcpu, req, false);
}

/*
 * The IPI handler runs on the vCPU's CPU only once the interrupt has made
 * the guest exit, so waiting for it means: that CPU no longer runs guest
 * code entered before the request was made.
 */
bool kl_vcpu_kick_wait(struct kl_vcpu *vcpu, enum kl_request req)
{
	return kick(vcpu, req, true);
}

/*
 * Requests that stop an entry rather than being handled before one. The
 * kicker clears it once it holds the vCPU's lock: a VMM that re-enters at
 * once keeps leaving until then.
 */
static bool exit_requested(struct kl_vcpu *vcpu)
{
	return test_bit(KL_REQ_EXIT_TO_USER, &vcpu->requests);
}

bool kl_enter_guest_mode(struct kl_vcpu *vcpu)
{
	WRITE_ONCE(vcpu->cpu, smp_processor_id());
	smp_wmb();	/* the CPU before the mode: kick() reads them the other way */
	WRITE_ONCE(vcpu->mode, KL_IN_GUEST_MODE);
	smp_mb();
	if (!exit_requested(vcpu))
		return true;
	WRITE_ONCE(vcpu->mode, KL_OUTSIDE_GUEST_MODE);
	return false;
}

void kl_exit_guest_mode(struct kl_vcpu *vcpu)
{
	WRITE_ONCE(vcpu->mode, KL_OUTSIDE_GUEST_MODE);
}

/* Why KVM_RUN must return to userspace now: a signal, immediate_exit or a kick. */
static bool must_leave(struct kl_vcpu *vcpu)
{
	return READ_ONCE(vcpu->run->immediate_exit) || signal_pending(current) ||
	       exit_requested(vcpu);
}

static int run_loop(struct kl_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	int r;

	complete_mmio(vcpu);
	kl_pv_steal_update(vcpu);
	/* KVM_EXIT_IO "in": userspace has put the data in place; nothing to do. */
	/*
	 * immediate_exit at entry: the I/O above is completed and nothing
	 * else happens. As KVM, exit_reason keeps the last exit's, so a VMM
	 * that completes an exit this way still reads what it was.
	 */
	if (READ_ONCE(run->immediate_exit))
		return -EINTR;
	for (;;) {
		if (must_leave(vcpu)) {
			run->exit_reason = KVM_EXIT_INTR;
			return -EINTR;
		}
		cond_resched();
		vcpu->has_run = true;
		r = kl_x86_run_once(vcpu);
		if (r <= 0)
			return r;
	}
}

/*
 * A vCPU that is not RUNNABLE does not enter the guest. The local APIC is
 * userspace's, so INIT and SIPI are too: userspace parks a vCPU
 * (KVM_SET_MP_STATE: INIT_RECEIVED applies INIT's register state,
 * UNINITIALIZED leaves them), then starts it at the SIPI vector with
 * KVM_SET_SREGS and RUNNABLE, as QEMU does with its own APIC. KVM_RUN on a
 * parked vCPU sleeps until a signal, as Linux KVM's does, or a kick. A HALTED one
 * (restored so) wakes when an interrupt or NMI is queued, and otherwise exits
 * with KVM_EXIT_HLT for userspace to wait on its devices.
 */
static int run_parked(struct kl_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;

	if (vcpu->mp_state == KVM_MP_STATE_HALTED) {
		if (vcpu->irq_pending || vcpu->nmi_pending) {
			vcpu->mp_state = KVM_MP_STATE_RUNNABLE;
			return run_loop(vcpu);
		}
		run->exit_reason = KVM_EXIT_HLT;
		return 0;
	}
	/* immediate_exit is userspace's to set at any time: look at it now and then. */
	while (!must_leave(vcpu))
		wait_event_interruptible_timeout(vcpu->wq, exit_requested(vcpu), HZ / 10);
	run->exit_reason = KVM_EXIT_INTR;
	return -EINTR;
}

int kl_vcpu_run(struct kl_vcpu *vcpu)
{
	sigset_t saved;
	int r;

	/* The TPR comes from kvm_run, where userspace's APIC keeps it (as KVM). */
	if (vcpu->run->cr8 > 15)
		return -EINVAL;
	r = kl_sync_regs_in(vcpu);
	if (r)
		return r;
	vcpu->cr8 = vcpu->run->cr8;
	if (vcpu->sigset_active)
		sigprocmask(SIG_SETMASK, &vcpu->sigset, &saved);
	r = vcpu->mp_state == KVM_MP_STATE_RUNNABLE ? run_loop(vcpu) : run_parked(vcpu);
	if (vcpu->sigset_active)
		sigprocmask(SIG_SETMASK, &saved, NULL);
	report_interruptibility(vcpu);
	kl_sync_regs_out(vcpu);
	return r;
}

/*
 * KVM_SET_SIGNAL_MASK: the signals blocked while the vCPU runs (a VMM
 * without immediate_exit kicks a vCPU with one it unblocks only there); a
 * NULL argument drops the mask. SIGKILL and SIGSTOP are never blocked.
 */
static int set_signal_mask(struct kl_vcpu *vcpu, struct kvm_signal_mask __user *argp)
{
	struct kvm_signal_mask head;
	sigset_t set;

	if (!argp) {
		vcpu->sigset_active = false;
		return 0;
	}
	if (copy_from_user(&head, argp, sizeof(head)))
		return -EFAULT;
	if (head.len != sizeof(set))
		return -EINVAL;
	if (copy_from_user(&set, argp->sigset, sizeof(set)))
		return -EFAULT;
	sigdelsetmask(&set, sigmask(SIGKILL) | sigmask(SIGSTOP));
	vcpu->sigset = set;
	vcpu->sigset_active = true;
	return 0;
}

/*
 * vCPU device attributes (KVM_{HAS,GET,SET}_DEVICE_ATTR): the TSC offset
 * (KVM_VCPU_TSC_CTRL/KVM_VCPU_TSC_OFFSET), guest TSC = host TSC + offset,
 * which a VMM sets to keep a guest's clock across migration.
 */
static int device_attr(struct kl_vcpu *vcpu, unsigned int ioctl, struct kvm_device_attr __user *argp)
{
	struct kvm_device_attr attr;
	u64 __user *addr;
	u64 offset;

	if (copy_from_user(&attr, argp, sizeof(attr)))
		return -EFAULT;
	if (attr.group != KVM_VCPU_TSC_CTRL || attr.attr != KVM_VCPU_TSC_OFFSET)
		return -ENXIO;
	addr = u64_to_user_ptr(attr.addr);
	switch (ioctl) {
	case KVM_GET_DEVICE_ATTR:
		return put_user(vcpu->msrs.tsc_offset, addr) ? -EFAULT : 0;
	case KVM_SET_DEVICE_ATTR:
		if (get_user(offset, addr))
			return -EFAULT;
		vcpu->msrs.tsc_offset = offset;
		return 0;
	}
	return 0;	/* KVM_HAS_DEVICE_ATTR */
}

/* 4 KiB each way: off the stack. */
static int xsave_ioctl(struct kl_vcpu *vcpu, struct kvm_xsave __user *argp, bool set)
{
	struct kvm_xsave *x;
	int r;

	if (set) {
		x = memdup_user(argp, sizeof(*x));
		if (IS_ERR(x))
			return PTR_ERR(x);
		r = kl_set_xsave(vcpu, x);
	} else {
		x = kmalloc(sizeof(*x), GFP_KERNEL);
		if (!x)
			return -ENOMEM;
		kl_get_xsave(vcpu, x);
		r = copy_to_user(argp, x, sizeof(*x)) ? -EFAULT : 0;
	}
	kfree(x);
	return r;
}

static int set_mp_state(struct kl_vcpu *vcpu, const struct kvm_mp_state __user *argp)
{
	struct kvm_mp_state mp;

	if (copy_from_user(&mp, argp, sizeof(mp)))
		return -EFAULT;
	switch (mp.mp_state) {
	case KVM_MP_STATE_INIT_RECEIVED:
		kl_vcpu_init_event(vcpu);
		vcpu->run->cr8 = 0;
		fallthrough;
	case KVM_MP_STATE_RUNNABLE:
	case KVM_MP_STATE_UNINITIALIZED:
	case KVM_MP_STATE_HALTED:
		vcpu->mp_state = mp.mp_state;
		return 0;
	default:
		/* SIPI_RECEIVED needs a vector only an in-kernel APIC would have. */
		return -EINVAL;
	}
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
	vcpu->fpu = kzalloc(sizeof(*vcpu->fpu), GFP_KERNEL_ACCOUNT);	/* 512 bytes: 512-aligned */
	if (!vcpu->fpu)
		goto out_run;
	vcpu->vm = vm;
	vcpu->id = id;
	mutex_init(&vcpu->lock);
	init_waitqueue_head(&vcpu->wq);
	vcpu->cpu = -1;
	kl_vcpu_reset(vcpu);
	/*
	 * A new vCPU's TSC starts at zero, as on KVM (and a CPU at power-on),
	 * on its siblings' timeline when they were made within a second.
	 */
	kl_tsc_host_write(vcpu, 0);
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
	kfree(vcpu->fpu);
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
	kfree(vcpu->fpu);
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
	r = -EINVAL;
	if ((vm->max_vcpu_ids && id >= vm->max_vcpu_ids) ||
	    vm->nr_vcpus >= kl_mmu_max_vcpus(vm->mmu))
		goto out_unlock;
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

/*
 * KVM_ENABLE_CAP on a vCPU: KVM_CAP_ENFORCE_PV_FEATURE_CPUID. kvmlab offers
 * no KVM paravirtual feature (leaf 0x40000001 is empty), so enforcing the
 * guest's CPUID means: every KVM PV MSR faults for the guest, kvmclock's old
 * two included, which are otherwise read as 0 (hypercalls are -KVM_ENOSYS
 * either way).
 */
static int vcpu_enable_cap(struct kl_vcpu *vcpu, const struct kvm_enable_cap __user *argp)
{
	struct kvm_enable_cap cap;

	if (copy_from_user(&cap, argp, sizeof(cap)))
		return -EFAULT;
	if (cap.flags || cap.cap != KVM_CAP_ENFORCE_PV_FEATURE_CPUID)
		return -EINVAL;
	vcpu->pv_cpuid_enforce = !!cap.args[0];
	return 0;
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

		kl_get_regs(vcpu, &regs);
		r = copy_to_user(argp, &regs, sizeof(regs)) ? -EFAULT : 0;
		break;
	}
	case KVM_SET_REGS: {
		struct kvm_regs regs;

		if (copy_from_user(&regs, argp, sizeof(regs)))
			r = -EFAULT;
		else
			kl_set_regs(vcpu, &regs);
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
		if (!r)
			vcpu->run->cr8 = vcpu->cr8;	/* what the next KVM_RUN loads */
		break;
	}
	case KVM_SET_CPUID2:
		r = kl_set_cpuid2(vcpu, argp);
		break;
	case KVM_GET_CPUID2:
		r = kl_get_cpuid2(vcpu, argp);
		break;
	case KVM_GET_FPU: {
		struct kvm_fpu fpu;

		kl_get_fpu(vcpu, &fpu);
		r = copy_to_user(argp, &fpu, sizeof(fpu)) ? -EFAULT : 0;
		break;
	}
	case KVM_SET_FPU: {
		struct kvm_fpu fpu;

		r = copy_from_user(&fpu, argp, sizeof(fpu)) ? -EFAULT : kl_set_fpu(vcpu, &fpu);
		break;
	}
	case KVM_GET_VCPU_EVENTS: {
		struct kvm_vcpu_events ev;

		kl_get_vcpu_events(vcpu, &ev);
		r = copy_to_user(argp, &ev, sizeof(ev)) ? -EFAULT : 0;
		break;
	}
	case KVM_SET_VCPU_EVENTS: {
		struct kvm_vcpu_events ev;

		r = copy_from_user(&ev, argp, sizeof(ev)) ? -EFAULT : kl_set_vcpu_events(vcpu, &ev);
		break;
	}
	case KVM_GET_DEBUGREGS: {
		struct kvm_debugregs d;

		kl_get_debugregs(vcpu, &d);
		r = copy_to_user(argp, &d, sizeof(d)) ? -EFAULT : 0;
		break;
	}
	case KVM_SET_DEBUGREGS: {
		struct kvm_debugregs d;

		r = copy_from_user(&d, argp, sizeof(d)) ? -EFAULT : kl_set_debugregs(vcpu, &d);
		break;
	}
	case KVM_HAS_DEVICE_ATTR:
	case KVM_GET_DEVICE_ATTR:
	case KVM_SET_DEVICE_ATTR:
		r = device_attr(vcpu, ioctl, argp);
		break;
	case KVM_GET_XSAVE:
	case KVM_SET_XSAVE:
		r = xsave_ioctl(vcpu, argp, ioctl == KVM_SET_XSAVE);
		break;
	case KVM_ENABLE_CAP:
		r = vcpu_enable_cap(vcpu, argp);
		break;
	case KVM_GET_XCRS:
		r = kl_get_xcrs(vcpu, argp);
		break;
	case KVM_SET_XCRS:
		r = kl_set_xcrs(vcpu, argp);
		break;
	case KVM_X86_SETUP_MCE:
		r = kl_setup_mce(vcpu, argp);
		break;
	case KVM_X86_SET_MCE:
		r = kl_inject_mce(vcpu, argp);
		break;
	case KVM_GET_MSRS:
	case KVM_SET_MSRS:
		r = kl_vcpu_msrs(vcpu, argp, ioctl == KVM_SET_MSRS);
		break;
	case KVM_SET_SIGNAL_MASK:
		r = set_signal_mask(vcpu, argp);
		break;
	case KVM_GET_MP_STATE: {
		struct kvm_mp_state mp = { .mp_state = vcpu->mp_state };

		r = copy_to_user(argp, &mp, sizeof(mp)) ? -EFAULT : 0;
		break;
	}
	case KVM_SET_MP_STATE:
		r = set_mp_state(vcpu, argp);
		break;
	case KVM_INTERRUPT:
		r = queue_interrupt(vcpu, argp);
		break;
	case KVM_NMI:
		r = kl_queue_nmi(vcpu);
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
