// SPDX-License-Identifier: GPL-2.0
/*
 * kvmlab: a hypervisor as a character device. /dev/kvmlab speaks Linux
 * KVM's ioctl ABI (<linux/kvm.h>): the system fd creates VMs, a VM fd
 * creates vCPUs and memslots, a vCPU fd runs the guest. Each VM runs the
 * MMU strategy its KVM_CREATE_VM type names, or the module's default (mmu=).
 */
#include <linux/anon_inodes.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include "../mmu/mmu.h"
#include "../x86/vendor.h"
#include <kvmlab/kvmlab.h>

static char *mmu = "vtlb";
module_param(mmu, charp, 0444);
MODULE_PARM_DESC(mmu, "default MMU virtualization strategy: vtlb, shadow, cached, npt, unsync, pv");

atomic_long_t kl_table_pages_live = ATOMIC_LONG_INIT(0);
atomic_long_t kl_pinned_pages_live = ATOMIC_LONG_INIT(0);

/* Chosen at load from the CPU: the strategies never know which. */
const struct kl_vendor_ops *kl_vendor;
static const struct kl_mmu_ops *kl_mmu;

/* Indexed by enum kvmlab_mmu - 1: the order is ABI (KVMLAB_VM_TYPE_MMU). */
static const struct kl_mmu_ops *const strategies[] = {
	[KVMLAB_MMU_VTLB - 1] = &kl_vtlb_ops,
	[KVMLAB_MMU_SHADOW - 1] = &kl_shadow_ops,
	[KVMLAB_MMU_CACHED - 1] = &kl_cached_ops,
	[KVMLAB_MMU_NPT - 1] = &kl_npt_ops,
	[KVMLAB_MMU_UNSYNC - 1] = &kl_unsync_ops,
	[KVMLAB_MMU_PV - 1] = &kl_pv_ops,
};

const struct kl_mmu_ops *kl_mmu_find(const char *name)
{
	for (int i = 0; i < ARRAY_SIZE(strategies); i++)
		if (strategies[i] && !strcmp(strategies[i]->name, name))
			return strategies[i];
	return NULL;
}

int kl_mmu_index(const struct kl_mmu_ops *mmu)
{
	for (int i = 0; i < ARRAY_SIZE(strategies); i++)
		if (strategies[i] == mmu)
			return i + 1;
	return 0;
}

/* KVM_CREATE_VM's type: 0 for the default, or KVMLAB_VM_TYPE_MMU(n). */
static const struct kl_mmu_ops *mmu_for_type(unsigned long type)
{
	unsigned long n = type & 0xffff;

	if (type == 0)
		return kl_mmu;
	if ((type & ~0xffffUL) != KVMLAB_VM_TYPE_BASE || n < 1 || n > ARRAY_SIZE(strategies))
		return NULL;
	if (strategies[n - 1] && strategies[n - 1]->hw_paging && !kl_vendor->has_tdp())
		return NULL;
	return strategies[n - 1];
}

/* SVM or VMX is on only while VMs exist, so kvm_amd or kvm_intel can use it in between. */
static DEFINE_MUTEX(hw_lock);
static int hw_users;

static int hardware_get(void)
{
	int r = 0;

	mutex_lock(&hw_lock);
	if (hw_users == 0)
		r = kl_vendor->hardware_enable();
	if (!r)
		hw_users++;
	mutex_unlock(&hw_lock);
	return r;
}

static void hardware_put(void)
{
	mutex_lock(&hw_lock);
	if (--hw_users == 0)
		kl_vendor->hardware_disable();
	mutex_unlock(&hw_lock);
}

/*
 * The last fd is closed. vCPUs are unpublished first, so that tearing one
 * down (a strategy flushing "every vCPU") never reaches one already freed.
 */
static void vm_release(struct kref *ref)
{
	struct kl_vm *vm = container_of(ref, struct kl_vm, ref);
	struct kl_vcpu *vcpus[KL_MAX_VCPUS];
	int n;

	kl_stats_vm_retire(vm);
	mutex_lock(&vm->mmu_lock);
	n = vm->nr_vcpus;
	memcpy(vcpus, vm->vcpus, n * sizeof(vcpus[0]));
	memset(vm->vcpus, 0, sizeof(vm->vcpus));
	vm->nr_vcpus = 0;
	mutex_unlock(&vm->mmu_lock);
	for (int i = 0; i < n; i++)
		kl_vcpu_free(vcpus[i]);
	kl_mmu_vm_destroy(vm);
	for (int i = 0; i < KL_MAX_SLOTS; i++)
		kl_dirty_log_stop(&vm->slots[i]);
	kl_free_gsi_routing(vm);
	kl_free_msr_filter(vm);
	WARN_ON(vm->stat.shadow_pages || vm->stat.pinned_pages);
	mmdrop(vm->mm);
	kfree(vm);
	hardware_put();
	module_put(THIS_MODULE);
}

void kl_vm_get(struct kl_vm *vm)
{
	kref_get(&vm->ref);
}

void kl_vm_put(struct kl_vm *vm)
{
	kref_put(&vm->ref, vm_release);
}

static int vm_release_file(struct inode *inode, struct file *filp)
{
	kl_vm_put(filp->private_data);
	return 0;
}

static long vm_ioctl(struct file *filp, unsigned int ioctl, unsigned long arg);

static const struct file_operations vm_fops = {
	.owner = THIS_MODULE,
	.release = vm_release_file,
	.unlocked_ioctl = vm_ioctl,
	.llseek = noop_llseek,
};

int kl_create_vm(unsigned long type)
{
	const struct kl_mmu_ops *mmu = mmu_for_type(type);
	struct kl_vm *vm;
	int r, fd;

	if (!mmu)
		return -EINVAL;
	r = hardware_get();
	if (r)
		return r;
	r = -ENOMEM;
	vm = kzalloc(sizeof(*vm), GFP_KERNEL_ACCOUNT);
	if (!vm)
		goto out_hw;
	kref_init(&vm->ref);
	INIT_LIST_HEAD(&vm->stats_node);
	mutex_init(&vm->lock);
	mutex_init(&vm->mmu_lock);
	spin_lock_init(&vm->tsc_lock);
	vm->mmu = mmu;
	kl_kvmclock_init(vm);
	vm->mm = current->mm;
	mmgrab(vm->mm);
	r = kl_mmu_vm_init(vm);
	if (r)
		goto out_mm;
	__module_get(THIS_MODULE);
	kl_stats_vm_add(vm);
	fd = anon_inode_getfd("kvmlab-vm", &vm_fops, vm, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		kl_vm_put(vm);	/* undoes everything, hardware and module ref included */
		return fd;
	}
	return fd;

out_mm:
	mmdrop(vm->mm);
	kfree(vm);
out_hw:
	hardware_put();
	return r;
}

static bool slots_overlap(const struct kl_memslot *s, u64 gfn, u64 npages)
{
	return s->used && gfn < s->base_gfn + s->npages && s->base_gfn < gfn + npages;
}

/*
 * Only KVM_MEM_LOG_DIRTY_PAGES changes on a slot that stays where it is:
 * logging starts or stops, and the mappings stay.
 */
static int set_slot_flags(struct kl_vm *vm, struct kl_memslot *slot, u32 flags)
{
	int r = 0;

	if ((flags & KVM_MEM_LOG_DIRTY_PAGES) && !slot->dirty_bitmap)
		r = kl_dirty_log_start(vm, slot);
	else if (!(flags & KVM_MEM_LOG_DIRTY_PAGES))
		kl_dirty_log_stop(slot);
	if (!r)
		slot->flags = flags;
	return r;
}

/*
 * KVM_SET_USER_MEMORY_REGION: create, move, change the logging flag,
 * delete. Every vCPU is out of KVM_RUN (the caller holds their locks).
 */
static int set_memory_region(struct kl_vm *vm, const struct kvm_userspace_memory_region *m)
{
	struct kl_memslot *slot;
	u64 gfn = m->guest_phys_addr >> PAGE_SHIFT, npages = m->memory_size >> PAGE_SHIFT;
	int r = 0;

	if (m->slot >= KL_MAX_SLOTS || (m->flags & ~(KVM_MEM_READONLY | KVM_MEM_LOG_DIRTY_PAGES)))
		return -EINVAL;
	if ((m->guest_phys_addr | m->memory_size | m->userspace_addr) & ~PAGE_MASK)
		return -EINVAL;
	if (m->memory_size > KL_MAX_MEM_BYTES ||
	    m->guest_phys_addr + m->memory_size < m->guest_phys_addr ||
	    m->guest_phys_addr + m->memory_size > (1ULL << 48))	/* 4-level shadows */
		return -EINVAL;
	if (m->memory_size && !access_ok((void __user *)(unsigned long)m->userspace_addr,
					 m->memory_size))
		return -EINVAL;
	slot = &vm->slots[m->slot];
	if (m->memory_size == 0) {		/* delete */
		if (!slot->used)
			return -EINVAL;
		kl_dirty_log_stop(slot);
		slot->used = false;
		goto changed;
	}
	/* Like KVM: an existing slot may move or log, not change size, memory or read-only-ness. */
	if (slot->used && (slot->npages != npages || slot->hva != m->userspace_addr ||
			   ((slot->flags ^ m->flags) & KVM_MEM_READONLY)))
		return -EINVAL;
	for (int i = 0; i < KL_MAX_SLOTS; i++)
		if (i != m->slot && slots_overlap(&vm->slots[i], gfn, npages))
			return -EEXIST;
	if (slot->used && slot->base_gfn == gfn)
		return set_slot_flags(vm, slot, m->flags);
	kl_dirty_log_stop(slot);	/* a move starts a new log */
	*slot = (struct kl_memslot) {
		.used = true, .flags = m->flags & ~KVM_MEM_LOG_DIRTY_PAGES, .base_gfn = gfn,
		.npages = npages, .hva = m->userspace_addr,
	};
	vm->memslots_gen++;
	kl_mmu_memslots_changed(vm);
	r = set_slot_flags(vm, slot, m->flags);
	if (r) {
		slot->used = false;
		goto changed;
	}
	return 0;
changed:
	vm->memslots_gen++;
	kl_mmu_memslots_changed(vm);
	return r;
}

/*
 * KVM_ENABLE_CAP on the VM: KVM_CAP_MAX_VCPU_ID lowers the vCPU id limit,
 * once, before any vCPU exists (as KVM: the same value again is no error);
 * KVM_CAP_MSR_PLATFORM_INFO says whether the guest may read that MSR.
 */
static int vm_enable_cap(struct kl_vm *vm, const struct kvm_enable_cap __user *argp)
{
	struct kvm_enable_cap cap;
	int r = 0;

	if (copy_from_user(&cap, argp, sizeof(cap)))
		return -EFAULT;
	if (cap.flags)
		return -EINVAL;
	if (cap.cap == KVM_CAP_MSR_PLATFORM_INFO) {
		WRITE_ONCE(vm->platform_info_hidden, !cap.args[0]);
		return 0;
	}
	if (cap.cap == KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2)
		return kl_dirty_log_enable_manual(vm, cap.args[0]);
	if (cap.cap == KVM_CAP_X86_USER_SPACE_MSR)
		return kl_enable_user_space_msr(vm, cap.args[0]);
	if (cap.cap == KVM_CAP_DISABLE_QUIRKS2) {
		if (cap.args[0] & ~KL_VALID_QUIRKS)
			return -EINVAL;
		WRITE_ONCE(vm->disabled_quirks, cap.args[0]);
		return 0;
	}
	if (cap.cap != KVM_CAP_MAX_VCPU_ID)
		return -EINVAL;
	if (cap.args[0] > KL_MAX_VCPUS)
		return -EINVAL;
	mutex_lock(&vm->lock);
	if (vm->nr_vcpus)
		r = -EBUSY;
	else if (vm->max_vcpu_ids && vm->max_vcpu_ids != cap.args[0])
		r = -EINVAL;
	else
		vm->max_vcpu_ids = cap.args[0];
	mutex_unlock(&vm->lock);
	return r;
}

static long check_extension(unsigned long ext, const struct kl_mmu_ops *mmu);

static long vm_ioctl(struct file *filp, unsigned int ioctl, unsigned long arg)
{
	struct kl_vm *vm = filp->private_data;
	void __user *argp = (void __user *)arg;
	long r;
	int n;

	if (vm->mm != current->mm)
		return -EIO;
	switch (ioctl) {
	case KVM_CREATE_VCPU:
		return kl_vm_create_vcpu(vm, arg);
	case KVM_SET_USER_MEMORY_REGION: {
		struct kvm_userspace_memory_region m;

		if (copy_from_user(&m, argp, sizeof(m)))
			return -EFAULT;
		/*
		 * vCPUs hold vcpu->lock while running; take them all, so no
		 * guest runs on mappings being removed. Each is kicked out of
		 * KVM_RUN first (KVM_EXIT_INTR; the VMM re-enters and waits
		 * here), so the change never waits on a guest's next exit.
		 */
		if (mutex_lock_killable(&vm->lock))
			return -EINTR;
		/* Running vCPUs are kicked out to userspace, not waited for. */
		for (n = 0; n < vm->nr_vcpus; n++)
			kl_vcpu_kick(vm->vcpus[n], KL_REQ_EXIT_TO_USER);
		for (n = 0; n < vm->nr_vcpus; n++) {
			if (mutex_lock_killable(&vm->vcpus[n]->lock))
				break;
			/* Out of KVM_RUN now: an unserved kick must not end its next one. */
			clear_bit(KL_REQ_EXIT_TO_USER, &vm->vcpus[n]->requests);
		}
		r = n == vm->nr_vcpus ? set_memory_region(vm, &m) : -EINTR;
		while (n-- > 0)
			mutex_unlock(&vm->vcpus[n]->lock);
		mutex_unlock(&vm->lock);
		return r;
	}
	case KVM_GET_DIRTY_LOG:
	case KVM_CLEAR_DIRTY_LOG:
		return kl_dirty_log_ioctl(vm, ioctl, argp);
	case KVM_GET_STATS_FD:
		return kl_vm_stats_fd(vm);
	case KVM_CHECK_EXTENSION:
		return arg == KVMLAB_CAP_MMU ? kl_mmu_index(vm->mmu) : check_extension(arg, vm->mmu);
	case KVM_ENABLE_CAP:
		return vm_enable_cap(vm, argp);
	case KVM_SET_NR_MMU_PAGES:
		/* As KVM: at least 64 pages. The next fill over the cap makes room. */
		if (arg > UINT_MAX)
			return -EINVAL;
		WRITE_ONCE(vm->nr_mmu_pages, max(arg, 64UL));
		return 0;
	case KVM_GET_NR_MMU_PAGES:
		return kl_mmu_pages_cap(vm);
	case KVM_SET_TSS_ADDR:
		/*
		 * KVM's VMX needs three pages for a real-mode TSS when it runs
		 * real mode in virtual-8086 mode; our VMX backend runs it as an
		 * unrestricted guest and SVM as it is (KVM's svm_set_tss_addr
		 * ignores it too). Kept, so a VMM's call is honoured, and the
		 * address checked as KVM does.
		 */
		if (arg > 0xfffffffful - 3 * PAGE_SIZE + 1)
			return -EINVAL;
		mutex_lock(&vm->lock);
		vm->tss_addr = arg;
		mutex_unlock(&vm->lock);
		return 0;
	case KVM_SET_GSI_ROUTING:
		return kl_set_gsi_routing(vm, argp);
	case KVM_X86_SET_MSR_FILTER:
		return kl_set_msr_filter(vm, argp);
	case KVM_GET_CLOCK:
		return kl_get_clock(vm, argp);
	case KVM_SET_CLOCK:
		return kl_set_clock(vm, argp);
	default:
		return -ENOTTY;
	}
}

/*
 * What KVM_CHECK_EXTENSION reports, on the system fd and on a VM fd. A
 * capability reported commits to its ioctls: VMMs call them and give up
 * when they fail, so everything here is implemented in full.
 */
/* mmu: the VM's strategy, or for the system fd the default one (type-0 VMs). */
static long check_extension(unsigned long ext, const struct kl_mmu_ops *mmu)
{
	switch (ext) {
	case KVM_CAP_USER_MEMORY:
	case KVM_CAP_BINARY_STATS_FD:
	case KVM_CAP_EXT_CPUID:
	case KVM_CAP_IMMEDIATE_EXIT:
	case KVM_CAP_DESTROY_MEMORY_REGION_WORKS:	/* a zero-size region deletes a slot */
	case KVM_CAP_JOIN_MEMORY_REGIONS_WORKS:		/* adjacent slots are independent */
	case KVM_CAP_SET_TSS_ADDR:
	case KVM_CAP_IRQ_ROUTING:			/* core/irq.c says what it means here */
	case KVM_CAP_ENABLE_CAP_VM:			/* for KVM_CAP_MAX_VCPU_ID (vm_enable_cap) */
	case KVM_CAP_MP_STATE:				/* core/vcpu.c: INIT/SIPI with userspace */
	case KVM_CAP_USER_NMI:				/* KVM_NMI (x86/x86.c, the vendor's IRET) */
	case KVM_CAP_READONLY_MEM:			/* writes to such a slot exit as MMIO */
	case KVM_CAP_MMU_SHADOW_CACHE_CONTROL:		/* a per-VM cap on shadow pages */
	case KVM_CAP_VCPU_EVENTS:			/* x86/state.c: what can be */
	case KVM_CAP_DEBUGREGS:
	case KVM_CAP_XSAVE:				/* the legacy area: no XSAVE in the guest */
	case KVM_CAP_GET_MSR_FEATURES:			/* x86/msr.c: the microcode revision */
	case KVM_CAP_MSR_PLATFORM_INFO:
	case KVM_CAP_VCPU_ATTRIBUTES:			/* the TSC offset (core/vcpu.c) */
		return 1;
	case KVM_CAP_SYNC_REGS:
		return kl_sync_regs_cap();
	case KVM_CAP_ENFORCE_PV_FEATURE_CPUID:		/* no KVM PV feature to enforce: all fault */
	case KVM_CAP_X86_MSR_FILTER:			/* x86/msr_exit.c */
	case KVM_CAP_X86_USER_SPACE_MSR:		/* INVAL, UNKNOWN and FILTER exits */
		return 1;
	case KVM_CAP_ADJUST_CLOCK:			/* kvmclock (x86/pvclock.c): the flags */
		return kl_kvmclock_caps();
	case KVM_CAP_XCRS:				/* XCR0: x87 and SSE (x86/x86.c) */
		return kl_supported_xcr0() != 0;
	case KVM_CAP_DISABLE_QUIRKS2:			/* the quirks kvmlab has */
		return KL_VALID_QUIRKS;
	case KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2:		/* mmu/dirty.c */
		return kl_dirty_log_manual_caps();
	case KVM_CAP_MCE:				/* x86/mce.c */
		return KL_MAX_MCE_BANKS;
	case KVM_CAP_NR_VCPUS:
	case KVM_CAP_MAX_VCPUS:
		return kl_mmu_max_vcpus(mmu);
	case KVM_CAP_MAX_VCPU_ID:			/* vCPU ids are below this */
		return KL_MAX_VCPUS;
	case KVM_CAP_NR_MEMSLOTS:
		return KL_MAX_SLOTS;
	case KVMLAB_CAP_MMU:
		return ARRAY_SIZE(strategies);
	default:
		return 0;
	}
}

static long dev_ioctl(struct file *filp, unsigned int ioctl, unsigned long arg)
{
	switch (ioctl) {
	case KVM_GET_API_VERSION:
		return arg ? -EINVAL : KVM_API_VERSION;
	case KVM_CREATE_VM:
		return kl_create_vm(arg);
	case KVM_CHECK_EXTENSION:
		return check_extension(arg, kl_mmu);
	case KVM_GET_VCPU_MMAP_SIZE:
		return arg ? -EINVAL : PAGE_SIZE;
	case KVM_GET_SUPPORTED_CPUID:
		return kl_get_supported_cpuid((struct kvm_cpuid2 __user *)arg);
	case KVM_GET_MSR_INDEX_LIST:
		return kl_get_msr_index_list((struct kvm_msr_list __user *)arg);
	case KVM_GET_MSR_FEATURE_INDEX_LIST:
		return kl_get_msr_feature_index_list((struct kvm_msr_list __user *)arg);
	case KVM_GET_MSRS:
		return kl_get_feature_msrs((struct kvm_msrs __user *)arg);
	case KVM_X86_GET_MCE_CAP_SUPPORTED:
		return put_user(kl_mce_cap_supported(), (u64 __user *)arg) ? -EFAULT : 0;
	default:
		return -ENOTTY;
	}
}

static const struct file_operations dev_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = dev_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice kl_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "kvmlab",
	.fops = &dev_fops,
	.mode = 0600,
};

static int __init kvmlab_init(void)
{
	char valid[128] = "";
	int r;

	kl_mmu = kl_mmu_find(mmu);
	if (!kl_mmu) {
		for (int i = 0; i < ARRAY_SIZE(strategies); i++) {
			if (!strategies[i])
				continue;
			if (valid[0])
				strlcat(valid, ", ", sizeof(valid));
			strlcat(valid, strategies[i]->name, sizeof(valid));
		}
		pr_err("kvmlab: unknown mmu '%s' (valid: %s)\n", mmu, valid);
		return -EINVAL;
	}
	if (boot_cpu_has(X86_FEATURE_SVM)) {
		kl_vendor = &kl_svm_ops;
	} else if (boot_cpu_has(X86_FEATURE_VMX)) {
		kl_vendor = &kl_vmx_ops;
	} else {
		pr_err("kvmlab: this CPU has neither AMD SVM nor Intel VT-x (or the firmware disabled it)\n");
		return -ENODEV;
	}
	r = kl_vendor->setup();
	if (r)
		return r;
	if (kl_mmu->hw_paging && !kl_vendor->has_tdp()) {
		pr_err("kvmlab: mmu=%s needs nested paging, which this CPU lacks\n", kl_mmu->name);
		return -ENODEV;
	}
	pr_info("kvmlab: loaded, mmu=%s, vendor=%s, nested paging: %s\n", kl_mmu->name,
		kl_vendor->name, kl_vendor->has_tdp() ? kl_tdp.name : "none");
	kl_stats_init();
	r = misc_register(&kl_dev);
	if (r)
		kl_stats_exit();
	return r;
}

static void __exit kvmlab_exit(void)
{
	long tables = atomic_long_read(&kl_table_pages_live);
	long pinned = atomic_long_read(&kl_pinned_pages_live);

	misc_deregister(&kl_dev);
	kl_stats_exit();
	if (tables || pinned)
		pr_err("kvmlab: leaked %ld table pages and %ld pinned guest pages\n",
		       tables, pinned);
	else
		pr_info("kvmlab: unloaded, page accounting back to zero\n");
}

module_init(kvmlab_init);
module_exit(kvmlab_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kvmlab: a research testbed hypervisor with pluggable MMU strategies");
