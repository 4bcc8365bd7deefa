// SPDX-License-Identifier: GPL-2.0
/*
 * The guest's RDMSR and WRMSR, and what userspace may take over of them:
 *
 *  - KVM_X86_SET_MSR_FILTER: up to 16 ranges of MSRs, each with a bitmap
 *    for reads, writes or both; the first range that covers an access
 *    decides (bit set: allowed), else the filter's default. A denied
 *    access is #GP, or an exit (reason FILTER) when userspace asked.
 *  - KVM_CAP_X86_USER_SPACE_MSR: which failures exit to userspace as
 *    KVM_EXIT_X86_RDMSR/WRMSR instead of #GP — an MSR kvmlab does not know
 *    (UNKNOWN), a value it refuses (INVAL), a filter's denial (FILTER).
 *    Userspace answers in run->msr (data, or error for #GP) and the
 *    instruction completes at the next KVM_RUN.
 *
 * Every RDMSR/WRMSR exits on SVM here (the permission map intercepts all),
 * so a filter needs nothing from the vendor. Only the guest's accesses are
 * filtered, never KVM_GET/SET_MSRS. The filter is replaced under vm->lock
 * and read under RCU: a vCPU in the middle of an exit holds vcpu->lock,
 * which nests inside vm->lock.
 */
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <asm/trapnr.h>
#include "vendor.h"

struct kl_msr_range {
	u32 flags;		/* KVM_MSR_FILTER_READ | _WRITE */
	u32 base, nmsrs;
	unsigned long *bitmap;
};

struct kl_msr_filter {
	struct rcu_head rcu;
	bool default_deny;
	int count;
	struct kl_msr_range ranges[KVM_MSR_FILTER_MAX_RANGES];
};

#define RANGE_FLAGS		(KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE)
#define KL_MSR_EXIT_REASONS	(KVM_MSR_EXIT_REASON_INVAL | KVM_MSR_EXIT_REASON_UNKNOWN | \
				 KVM_MSR_EXIT_REASON_FILTER)

static void free_filter(struct kl_msr_filter *f)
{
	if (!f)
		return;
	for (int i = 0; i < f->count; i++)
		kfree(f->ranges[i].bitmap);
	kfree(f);
}

static void free_filter_rcu(struct rcu_head *head)
{
	free_filter(container_of(head, struct kl_msr_filter, rcu));
}

/* As KVM: a range with no MSRs is skipped; otherwise flags and size must make sense. */
static int add_filter_range(struct kl_msr_filter *f, const struct kvm_msr_filter_range *r)
{
	size_t bytes = BITS_TO_LONGS(r->nmsrs) * sizeof(long);
	struct kl_msr_range *k = &f->ranges[f->count];

	if (!r->nmsrs)
		return 0;
	if (!r->flags || (r->flags & ~RANGE_FLAGS) ||
	    bytes > KVM_MSR_FILTER_MAX_BITMAP_SIZE)
		return -EINVAL;
	k->bitmap = memdup_user(r->bitmap, bytes);
	if (IS_ERR(k->bitmap)) {
		int err = PTR_ERR(k->bitmap);

		k->bitmap = NULL;
		return err;
	}
	k->flags = r->flags;
	k->base = r->base;
	k->nmsrs = r->nmsrs;
	f->count++;
	return 0;
}

int kl_set_msr_filter(struct kl_vm *vm, const struct kvm_msr_filter __user *argp)
{
	struct kl_msr_filter *f, *old;
	struct kvm_msr_filter uf;
	bool empty = true;
	int r = 0;

	if (copy_from_user(&uf, argp, sizeof(uf)))
		return -EFAULT;
	if (uf.flags & ~KVM_MSR_FILTER_DEFAULT_DENY)
		return -EINVAL;
	for (int i = 0; i < KVM_MSR_FILTER_MAX_RANGES; i++)
		empty &= !uf.ranges[i].nmsrs;
	/* Deny everything with no exception: KVM refuses that too. */
	if (empty && (uf.flags & KVM_MSR_FILTER_DEFAULT_DENY))
		return -EINVAL;
	f = kzalloc(sizeof(*f), GFP_KERNEL_ACCOUNT);
	if (!f)
		return -ENOMEM;
	f->default_deny = uf.flags & KVM_MSR_FILTER_DEFAULT_DENY;
	for (int i = 0; i < KVM_MSR_FILTER_MAX_RANGES && !r; i++)
		r = add_filter_range(f, &uf.ranges[i]);
	if (r) {
		free_filter(f);
		return r;
	}
	mutex_lock(&vm->lock);
	old = rcu_dereference_protected(vm->msr_filter, lockdep_is_held(&vm->lock));
	rcu_assign_pointer(vm->msr_filter, f);
	mutex_unlock(&vm->lock);
	if (old)
		call_rcu(&old->rcu, free_filter_rcu);
	return 0;
}

void kl_free_msr_filter(struct kl_vm *vm)
{
	/* The VM is going: no reader is left. */
	free_filter(rcu_dereference_protected(vm->msr_filter, true));
	RCU_INIT_POINTER(vm->msr_filter, NULL);
}

int kl_enable_user_space_msr(struct kl_vm *vm, u64 mask)
{
	if (mask & ~KL_MSR_EXIT_REASONS)
		return -EINVAL;
	WRITE_ONCE(vm->user_space_msr_mask, mask);
	return 0;
}

/* May the guest make this access? The x2APIC range is never filtered, as on KVM. */
static bool msr_allowed(struct kl_vcpu *vcpu, u32 msr, bool write)
{
	u32 type = write ? KVM_MSR_FILTER_WRITE : KVM_MSR_FILTER_READ;
	struct kl_msr_filter *f;
	bool allowed = true;

	if (msr >= 0x800 && msr <= 0x8ff)
		return true;
	rcu_read_lock();
	f = rcu_dereference(vcpu->vm->msr_filter);
	if (f) {
		allowed = !f->default_deny;
		for (int i = 0; i < f->count; i++) {
			const struct kl_msr_range *r = &f->ranges[i];

			if ((r->flags & type) && msr >= r->base && msr - r->base < r->nmsrs) {
				allowed = test_bit(msr - r->base, r->bitmap);
				break;
			}
		}
	}
	rcu_read_unlock();
	return allowed;
}

static int inject_gp(struct kl_vcpu *vcpu)
{
	kl_queue_exception(vcpu, GP_VECTOR, true, 0);
	return 1;
}

/* #GP, or to userspace if it asked to hear of this kind of failure. */
static int msr_failed(struct kl_vcpu *vcpu, u32 msr, bool write, u64 val, u32 reason, int len)
{
	struct kvm_run *run = vcpu->run;

	if (!(READ_ONCE(vcpu->vm->user_space_msr_mask) & reason))
		return inject_gp(vcpu);
	run->exit_reason = write ? KVM_EXIT_X86_WRMSR : KVM_EXIT_X86_RDMSR;
	memset(&run->msr, 0, sizeof(run->msr));
	run->msr.reason = reason;
	run->msr.index = msr;
	run->msr.data = write ? val : 0;
	vcpu->msr_exit_pending = true;
	vcpu->msr_exit_read = !write;
	vcpu->msr_exit_len = len;
	return 0;
}

int kl_handle_msr(struct kl_vcpu *vcpu, bool write, int len)
{
	u32 msr = vcpu->regs[KL_RCX];
	u64 val = (vcpu->regs[KL_RDX] << 32) | (u32)vcpu->regs[KL_RAX], cur;

	vcpu->stat.msr_exits++;
	if (!msr_allowed(vcpu, msr, write))
		return msr_failed(vcpu, msr, write, val, KVM_MSR_EXIT_REASON_FILTER, len);
	if (write ? !kl_set_msr(vcpu, msr, val) : !kl_get_msr(vcpu, msr, &val)) {
		/* Known to us (userspace could read it) means the access itself was refused. */
		u32 reason = kl_host_get_msr(vcpu, msr, &cur) ? KVM_MSR_EXIT_REASON_INVAL :
								KVM_MSR_EXIT_REASON_UNKNOWN;

		return msr_failed(vcpu, msr, write, val, reason, len);
	}
	if (!write) {
		vcpu->regs[KL_RAX] = (u32)val;
		vcpu->regs[KL_RDX] = val >> 32;
	}
	vcpu->rip += len;
	return 1;
}

/* At KVM_RUN: userspace's answer to an MSR exit. */
void kl_complete_msr_exit(struct kl_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;

	if (!vcpu->msr_exit_pending)
		return;
	vcpu->msr_exit_pending = false;
	if (run->msr.error) {
		inject_gp(vcpu);
		return;
	}
	if (vcpu->msr_exit_read) {
		vcpu->regs[KL_RAX] = (u32)run->msr.data;
		vcpu->regs[KL_RDX] = run->msr.data >> 32;
	}
	vcpu->rip += vcpu->msr_exit_len;
}
