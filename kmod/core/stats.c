// SPDX-License-Identifier: GPL-2.0
/*
 * KVM binary statistics (KVM_GET_STATS_FD, Documentation/virt/kvm/api.rst):
 * a read-only file holding a header, an id string, one descriptor per
 * statistic and the values. The tables below are the single list of what
 * kvmlab counts; names follow Linux KVM where the meaning is the same.
 */
#include <linux/anon_inodes.h>
#include <linux/debugfs.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include "../mmu/mmu.h"

/* KVM_STATS_NAME_SIZE, which only kvm_host.h defines: the ABI fixes it. */
#define NAME_SIZE	48

struct stat_def {
	const char *name;
	u32 flags;
	u32 offset;		/* into struct kl_vm_stat or kl_vcpu_stat */
};

#define CUMUL	(KVM_STATS_TYPE_CUMULATIVE | KVM_STATS_UNIT_NONE | KVM_STATS_BASE_POW10)
#define INSTANT	(KVM_STATS_TYPE_INSTANT | KVM_STATS_UNIT_NONE | KVM_STATS_BASE_POW10)
#define PEAK	(KVM_STATS_TYPE_PEAK | KVM_STATS_UNIT_NONE | KVM_STATS_BASE_POW10)
#define VM_STAT(n, f)	{ #n, f, offsetof(struct kl_vm_stat, n) }
#define VCPU_STAT(n)	{ #n, CUMUL, offsetof(struct kl_vcpu_stat, n) }

static const struct stat_def vm_stats[] = {
	VM_STAT(mmu_shadow_zapped, CUMUL),
	VM_STAT(mmu_pte_write, CUMUL),
	VM_STAT(mmu_flooded, CUMUL),
	VM_STAT(mmu_recycled, CUMUL),
	VM_STAT(mmu_cache_miss, CUMUL),
	VM_STAT(pages_4k, INSTANT),
	VM_STAT(shadow_pages, INSTANT),
	VM_STAT(shadow_pages_peak, PEAK),
	VM_STAT(shadow_pages_alloc, CUMUL),
	VM_STAT(shadow_pages_freed, CUMUL),
	VM_STAT(pinned_pages, INSTANT),
	VM_STAT(mmu_root_hit, CUMUL),
	VM_STAT(mmu_root_miss, CUMUL),
	VM_STAT(mmu_resync, CUMUL),
	VM_STAT(mmu_resync_checked, CUMUL),
	VM_STAT(mmu_resync_changed, CUMUL),
	VM_STAT(mmu_unsync, INSTANT),
	VM_STAT(mmu_unsync_marks, CUMUL),
	VM_STAT(mmu_prefetched, CUMUL),
	VM_STAT(pv_mmu_ops, CUMUL),
	VM_STAT(pv_mmu_refused, CUMUL),
	VM_STAT(remote_tlb_flush_requests, CUMUL),
	VM_STAT(remote_tlb_flush, CUMUL),
	VM_STAT(remote_tlb_kicks, CUMUL),
	VM_STAT(dirty_wrprot, CUMUL),
	VM_STAT(dirty_faults, CUMUL),
};

static const struct stat_def vcpu_stats[] = {
	VCPU_STAT(exits), VCPU_STAT(io_exits), VCPU_STAT(mmio_exits),
	VCPU_STAT(halt_exits), VCPU_STAT(irq_exits), VCPU_STAT(pf_taken),
	VCPU_STAT(pf_fixed), VCPU_STAT(pf_guest), VCPU_STAT(tlb_flush),
	VCPU_STAT(invlpg), VCPU_STAT(insn_emulation), VCPU_STAT(insn_emulation_fail),
	VCPU_STAT(hypercalls), VCPU_STAT(cr_exits), VCPU_STAT(msr_exits),
	VCPU_STAT(cpuid_exits), VCPU_STAT(npf_exits), VCPU_STAT(cpu_migrations),
	VCPU_STAT(irq_injections), VCPU_STAT(irq_window_exits), VCPU_STAT(request_irq_exits),
	VCPU_STAT(nmi_injections), VCPU_STAT(pv_mmu_batches),
};

struct stats_file {
	const struct stat_def *defs;
	int count;
	const void *values;		/* the live struct */
	char id[NAME_SIZE];
	struct kl_vm *vm;		/* holds the VM alive */
};

static ssize_t stats_read(struct file *file, char __user *buf, size_t size, loff_t *ppos)
{
	struct stats_file *sf = file->private_data;
	size_t desc_size = sizeof(struct kvm_stats_desc) + NAME_SIZE;
	size_t desc_off = sizeof(struct kvm_stats_header) + NAME_SIZE;
	size_t data_off = desc_off + desc_size * sf->count;
	size_t total = data_off + sizeof(u64) * sf->count;
	ssize_t r;
	u8 *img;

	if (*ppos >= total)
		return 0;
	img = kzalloc(total, GFP_KERNEL);
	if (!img)
		return -ENOMEM;
	*(struct kvm_stats_header *)img = (struct kvm_stats_header) {
		.name_size = NAME_SIZE, .num_desc = sf->count,
		.id_offset = sizeof(struct kvm_stats_header),
		.desc_offset = desc_off, .data_offset = data_off,
	};
	memcpy(img + sizeof(struct kvm_stats_header), sf->id, NAME_SIZE);
	for (int i = 0; i < sf->count; i++) {
		struct kvm_stats_desc *d = (void *)(img + desc_off + i * desc_size);

		d->flags = sf->defs[i].flags;
		d->size = 1;
		d->offset = i * sizeof(u64);
		strscpy(d->name, sf->defs[i].name, NAME_SIZE);
		memcpy(img + data_off + i * sizeof(u64),
		       (const u8 *)sf->values + sf->defs[i].offset, sizeof(u64));
	}
	size = min_t(size_t, size, total - *ppos);
	r = copy_to_user(buf, img + *ppos, size) ? -EFAULT : size;
	if (r > 0)
		*ppos += r;
	kfree(img);
	return r;
}

static int stats_release(struct inode *inode, struct file *file)
{
	struct stats_file *sf = file->private_data;

	kl_vm_put(sf->vm);
	kfree(sf);
	return 0;
}

static const struct file_operations stats_fops = {
	.owner = THIS_MODULE,
	.read = stats_read,
	.release = stats_release,
	.llseek = noop_llseek,
};

static int open_stats(struct kl_vm *vm, const struct stat_def *defs, int count,
		      const void *values, const char *id)
{
	struct stats_file *sf = kzalloc(sizeof(*sf), GFP_KERNEL_ACCOUNT);
	struct file *file;
	int fd;

	if (!sf)
		return -ENOMEM;
	*sf = (struct stats_file) { .defs = defs, .count = count, .values = values, .vm = vm };
	strscpy(sf->id, id, NAME_SIZE);
	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0)
		goto out_free;
	file = anon_inode_getfile("kvmlab-stats", &stats_fops, sf, O_RDONLY);
	if (IS_ERR(file)) {
		put_unused_fd(fd);
		fd = PTR_ERR(file);
		goto out_free;
	}
	file->f_mode |= FMODE_PREAD;	/* readers use pread at the offsets given */
	kref_get(&vm->ref);
	fd_install(fd, file);
	return fd;

out_free:
	kfree(sf);
	return fd;
}

int kl_vm_stats_fd(struct kl_vm *vm)
{
	char id[NAME_SIZE];

	snprintf(id, sizeof(id), "kvmlab-%d", task_pid_nr(current));
	return open_stats(vm, vm_stats, ARRAY_SIZE(vm_stats), &vm->stat, id);
}

int kl_vcpu_stats_fd(struct kl_vcpu *vcpu)
{
	char id[NAME_SIZE];

	snprintf(id, sizeof(id), "kvmlab-%d/vcpu-%d", task_pid_nr(current), vcpu->id);
	return open_stats(vcpu->vm, vcpu_stats, ARRAY_SIZE(vcpu_stats), &vcpu->stat, id);
}

/*
 * ---- module-wide totals ----
 *
 * What a VMM that is not ours leaves behind: QEMU closes its VM when it
 * exits, so its counters are read here, summed over the VMs alive now and
 * the ones that have ended (retired). Cumulative counters add up, peaks
 * take the largest, instant values count only live VMs. vm_list_lock is
 * module-wide and taken before any VM's mmu_lock (under which the vCPU
 * array is published).
 */
static DEFINE_MUTEX(vm_list_lock);
static LIST_HEAD(vm_list);
static struct kl_vm_stat retired_vm;
static struct kl_vcpu_stat retired_vcpu;
static struct dentry *debugfs_dir;

static u64 *stat_ptr(const void *values, const struct stat_def *d)
{
	return (u64 *)((u8 *)values + d->offset);
}

static void fold(void *total, const void *values, const struct stat_def *d, bool live)
{
	u64 v = *stat_ptr(values, d), *t = stat_ptr(total, d);

	switch (d->flags & KVM_STATS_TYPE_MASK) {
	case KVM_STATS_TYPE_PEAK:
		*t = max(*t, v);
		break;
	case KVM_STATS_TYPE_INSTANT:
		if (live)
			*t += v;
		break;
	default:
		*t += v;
	}
}

static void fold_vm(struct kl_vm_stat *vm_total, struct kl_vcpu_stat *vcpu_total,
		    struct kl_vm *vm, bool live)
{
	for (int i = 0; i < ARRAY_SIZE(vm_stats); i++)
		fold(vm_total, &vm->stat, &vm_stats[i], live);
	mutex_lock(&vm->mmu_lock);
	for (int v = 0; v < vm->nr_vcpus; v++)
		for (int i = 0; i < ARRAY_SIZE(vcpu_stats); i++)
			fold(vcpu_total, &vm->vcpus[v]->stat, &vcpu_stats[i], live);
	mutex_unlock(&vm->mmu_lock);
}

void kl_stats_vm_add(struct kl_vm *vm)
{
	mutex_lock(&vm_list_lock);
	list_add_tail(&vm->stats_node, &vm_list);
	mutex_unlock(&vm_list_lock);
}

/* At release, before the vCPUs go: their counts join the retired totals. */
void kl_stats_vm_retire(struct kl_vm *vm)
{
	mutex_lock(&vm_list_lock);
	if (!list_empty(&vm->stats_node)) {
		fold_vm(&retired_vm, &retired_vcpu, vm, false);
		list_del_init(&vm->stats_node);
	}
	mutex_unlock(&vm_list_lock);
}

static int total_get(void *data, u64 *val)
{
	const struct stat_def *d = data;
	bool is_vm = d >= vm_stats && d < vm_stats + ARRAY_SIZE(vm_stats);
	struct kl_vm_stat vm_total;
	struct kl_vcpu_stat vcpu_total;
	struct kl_vm *vm;

	mutex_lock(&vm_list_lock);
	vm_total = retired_vm;
	vcpu_total = retired_vcpu;
	list_for_each_entry(vm, &vm_list, stats_node)
		fold_vm(&vm_total, &vcpu_total, vm, true);
	mutex_unlock(&vm_list_lock);
	*val = *stat_ptr(is_vm ? (void *)&vm_total : (void *)&vcpu_total, d);
	return 0;
}

DEFINE_DEBUGFS_ATTRIBUTE(total_fops, total_get, NULL, "%llu\n");

void kl_stats_init(void)
{
	/* Without debugfs the totals are simply not offered; nothing else changes. */
	debugfs_dir = debugfs_create_dir("kvmlab", NULL);
	for (int i = 0; i < ARRAY_SIZE(vm_stats); i++)
		debugfs_create_file_unsafe(vm_stats[i].name, 0444, debugfs_dir,
					   (void *)&vm_stats[i], &total_fops);
	for (int i = 0; i < ARRAY_SIZE(vcpu_stats); i++)
		debugfs_create_file_unsafe(vcpu_stats[i].name, 0444, debugfs_dir,
					   (void *)&vcpu_stats[i], &total_fops);
}

void kl_stats_exit(void)
{
	debugfs_remove_recursive(debugfs_dir);
}
