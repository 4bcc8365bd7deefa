// SPDX-License-Identifier: GPL-2.0
/*
 * KVM's paravirtual clock and steal time, as a guest of Linux KVM finds
 * them (CPUID 0x40000001: CLOCKSOURCE, CLOCKSOURCE2, STEAL_TIME):
 *
 *  - kvmclock: the VM's clock is the host's CLOCK_BOOTTIME plus an offset
 *    (KVM_GET_CLOCK / KVM_SET_CLOCK move it; it starts at 0 with the VM).
 *    A guest names a page with MSR_KVM_SYSTEM_TIME(_NEW); we write there a
 *    pvclock_vcpu_time_info — a (guest TSC, clock) pair and the TSC's rate
 *    as a 32-bit fraction and a shift — from which the guest extrapolates
 *    with RDTSC alone. MSR_KVM_WALL_CLOCK(_NEW) gets the wall time at
 *    clock zero. No TSC_STABLE flag: each vCPU's pair is taken on its own,
 *    so a guest keeps its clock monotonic across vCPUs itself.
 *  - steal time: MSR_KVM_STEAL_TIME names a 64-byte kvm_steal_time; at
 *    each KVM_RUN we add how long the vCPU's thread waited runnable for a
 *    host CPU since the last update (the scheduler's run_delay).
 *
 * The records are written when they may have changed: the clock before
 * the entry after the MSR write, after KVM_SET_CLOCK or when the vCPU
 * moved to another host CPU; steal time at every KVM_RUN. Writes go through kl_mmu_write_guest
 * (dirty-logged, seen by a shadow MMU), each record's version odd while
 * it is being written, as the guest's readers expect.
 *
 * With KVM_CAP_ENFORCE_PV_FEATURE_CPUID on, a guest MSR access faults
 * unless the vCPU's CPUID offers the feature it belongs to.
 */
#include <linux/math64.h>
#include <linux/sched.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>
#include <asm/kvm_para.h>
#include <asm/pvclock-abi.h>
#include <asm/tsc.h>
#include "vendor.h"

#define KL_CLOCK_FLAGS	(KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC)

static u64 kvmclock_ns(struct kl_vm *vm, u64 boot_ns)
{
	return boot_ns + READ_ONCE(vm->kvmclock_offset);
}

void kl_kvmclock_init(struct kl_vm *vm)
{
	vm->kvmclock_offset = -ktime_get_boottime_ns();	/* the clock starts at 0 */
}

/* KVM_GET_CLOCK: the clock now, with the wall time and host TSC of the same instant. */
int kl_get_clock(struct kl_vm *vm, struct kvm_clock_data __user *argp)
{
	struct kvm_clock_data d = { .flags = KL_CLOCK_FLAGS };
	unsigned long irqs;

	local_irq_save(irqs);
	d.host_tsc = rdtsc();
	d.clock = kvmclock_ns(vm, ktime_get_boottime_ns());
	d.realtime = ktime_get_real_ns();
	local_irq_restore(irqs);
	return copy_to_user(argp, &d, sizeof(d)) ? -EFAULT : 0;
}

/*
 * KVM_SET_CLOCK: the clock is d.clock now, or, with KVM_CLOCK_REALTIME, was
 * d.clock when the wall time was d.realtime (as KVM: time only moves on).
 */
int kl_set_clock(struct kl_vm *vm, const struct kvm_clock_data __user *argp)
{
	struct kvm_clock_data d;
	u64 ns, now_real;

	if (copy_from_user(&d, argp, sizeof(d)))
		return -EFAULT;
	if (d.flags & ~(KL_CLOCK_FLAGS | KVM_CLOCK_TSC_STABLE))
		return -EINVAL;
	ns = d.clock;
	now_real = ktime_get_real_ns();
	if ((d.flags & KVM_CLOCK_REALTIME) && now_real > d.realtime)
		ns += now_real - d.realtime;
	WRITE_ONCE(vm->kvmclock_offset, ns - ktime_get_boottime_ns());
	atomic_inc(&vm->kvmclock_gen);
	return 0;
}

u32 kl_kvmclock_caps(void)
{
	return KL_CLOCK_FLAGS;
}

/* ns = ((tsc delta << shift) * mul) >> 32, shifting right for a negative shift. */
static void tsc_scale(u64 tsc_hz, u32 *mul, s8 *shift)
{
	u64 n = NSEC_PER_SEC, d = tsc_hz;
	s8 s = 0;

	while (n >= d) {	/* mul must stay below 2^32 */
		d <<= 1;
		s++;
	}
	while (n < d / 2) {	/* ...and above 2^31, for precision */
		n <<= 1;
		s--;
	}
	*mul = mul_u64_u64_div_u64(n, 1ULL << 32, d);
	*shift = s;
}

/*
 * A versioned record at gpa, its version at vers_off: version odd, the body
 * [off, off + len), version even (the guest retries while it is odd).
 */
static void write_record(struct kl_vcpu *vcpu, u64 gpa, unsigned int vers_off, u32 *version,
			 const void *body, unsigned int off, unsigned int len)
{
	*version |= 1;
	kl_mmu_write_guest(vcpu, gpa + vers_off, version, sizeof(*version));
	smp_wmb();
	kl_mmu_write_guest(vcpu, gpa + off, body, len);
	smp_wmb();
	++*version;
	kl_mmu_write_guest(vcpu, gpa + vers_off, version, sizeof(*version));
}

static bool fits_in_page(u64 gpa, unsigned int len)
{
	return (gpa & ~PAGE_MASK) + len <= PAGE_SIZE;
}

static void update_clock(struct kl_vcpu *vcpu)
{
	struct pvclock_vcpu_time_info t = { 0 };
	u64 gpa = vcpu->pv.system_time & ~1ULL, boot_ns;
	unsigned long irqs;

	if (!fits_in_page(gpa, sizeof(t)))
		return;		/* as KVM: accepted, but no clock there */
	local_irq_save(irqs);
	t.tsc_timestamp = rdtsc() + vcpu->msrs.tsc_offset;
	boot_ns = ktime_get_boottime_ns();
	local_irq_restore(irqs);
	t.system_time = kvmclock_ns(vcpu->vm, boot_ns);
	tsc_scale((u64)tsc_khz * 1000, &t.tsc_to_system_mul, &t.tsc_shift);
	write_record(vcpu, gpa, 0, &vcpu->pv.clock_version, &t.tsc_timestamp,
		     offsetof(struct pvclock_vcpu_time_info, tsc_timestamp),
		     sizeof(t) - offsetof(struct pvclock_vcpu_time_info, tsc_timestamp));
	vcpu->pv.clock_gen = atomic_read(&vcpu->vm->kvmclock_gen);
	vcpu->pv.clock_cpu = raw_smp_processor_id();
}

static void write_wall_clock(struct kl_vcpu *vcpu, u64 gpa)
{
	struct pvclock_wall_clock w = { 0 };
	u64 wall_ns, boot_ns;
	u32 nsec;

	if (!fits_in_page(gpa, sizeof(w)))
		return;
	boot_ns = ktime_get_boottime_ns();
	wall_ns = ktime_get_real_ns() - kvmclock_ns(vcpu->vm, boot_ns);
	w.sec = div_u64_rem(wall_ns, NSEC_PER_SEC, &nsec);
	w.nsec = nsec;
	write_record(vcpu, gpa, 0, &vcpu->pv.wall_version, &w.sec,
		     offsetof(struct pvclock_wall_clock, sec),
		     sizeof(w) - offsetof(struct pvclock_wall_clock, sec));
}

/* Steal time: the vCPU thread's wait for a host CPU since the last update, added. */
static void update_steal(struct kl_vcpu *vcpu)
{
	u64 gpa = vcpu->pv.steal_msr & KVM_STEAL_VALID_BITS, delay = 0, steal;
	struct kvm_steal_time st;

#ifdef CONFIG_SCHED_INFO
	delay = current->sched_info.run_delay;
#endif
	if (!vcpu->pv.steal_started) {	/* counting starts now, on the vCPU's own thread */
		vcpu->pv.steal_started = true;
		vcpu->pv.steal_last = delay;
	}
	if (kl_read_guest(vcpu->vm, gpa, &st, sizeof(st)))
		return;
	vcpu->pv.steal_version = st.version;
	steal = st.steal + (delay - vcpu->pv.steal_last);
	vcpu->pv.steal_last = delay;
	write_record(vcpu, gpa, offsetof(struct kvm_steal_time, version), &vcpu->pv.steal_version,
		     &steal, 0, sizeof(steal));
}

/* Before each entry: the clock record, if it may have changed. */
void kl_pv_clock_check(struct kl_vcpu *vcpu)
{
	if ((vcpu->pv.system_time & KVM_MSR_ENABLED) &&
	    (vcpu->pv.clock_gen != atomic_read(&vcpu->vm->kvmclock_gen) ||
	     vcpu->pv.clock_cpu != raw_smp_processor_id()))
		update_clock(vcpu);
}

/* At each KVM_RUN: the thread was away, maybe waiting for a CPU. */
void kl_pv_steal_update(struct kl_vcpu *vcpu)
{
	if (vcpu->pv.steal_msr & KVM_MSR_ENABLED)
		update_steal(vcpu);
}

/* The PV feature bit (KVM_FEATURE_*) an MSR belongs to, for a guest access, or -1. */
static int msr_feature(u32 msr)
{
	switch (msr) {
	case MSR_KVM_WALL_CLOCK: case MSR_KVM_SYSTEM_TIME: return KVM_FEATURE_CLOCKSOURCE;
	case MSR_KVM_WALL_CLOCK_NEW: case MSR_KVM_SYSTEM_TIME_NEW: return KVM_FEATURE_CLOCKSOURCE2;
	case MSR_KVM_STEAL_TIME: return KVM_FEATURE_STEAL_TIME;
	}
	return -1;
}

static bool guest_may(struct kl_vcpu *vcpu, u32 msr, bool host)
{
	const struct kvm_cpuid_entry2 *e;

	if (host || !vcpu->pv_cpuid_enforce)
		return true;
	e = kl_find_cpuid(vcpu, KVM_CPUID_FEATURES, 0);
	return e && (e->eax & BIT(msr_feature(msr)));
}

/* -1: not a PV MSR; else whether the access is allowed (0/1). */
int kl_pv_get_msr(struct kl_vcpu *vcpu, u32 msr, u64 *val, bool host)
{
	if (msr_feature(msr) < 0)
		return -1;
	if (!guest_may(vcpu, msr, host))
		return 0;
	switch (msr) {
	case MSR_KVM_WALL_CLOCK: case MSR_KVM_WALL_CLOCK_NEW: *val = vcpu->pv.wall_clock; break;
	case MSR_KVM_SYSTEM_TIME: case MSR_KVM_SYSTEM_TIME_NEW: *val = vcpu->pv.system_time; break;
	case MSR_KVM_STEAL_TIME: *val = vcpu->pv.steal_msr; break;
	}
	return 1;
}

int kl_pv_set_msr(struct kl_vcpu *vcpu, u32 msr, u64 val, bool host)
{
	if (msr_feature(msr) < 0)
		return -1;
	if (!guest_may(vcpu, msr, host))
		return 0;
	switch (msr) {
	case MSR_KVM_WALL_CLOCK: case MSR_KVM_WALL_CLOCK_NEW:
		vcpu->pv.wall_clock = val;
		if (!host)	/* restoring the MSR is not the guest asking */
			write_wall_clock(vcpu, val);
		break;
	case MSR_KVM_SYSTEM_TIME: case MSR_KVM_SYSTEM_TIME_NEW:
		vcpu->pv.system_time = val;
		vcpu->pv.clock_cpu = -1;	/* written at the next entry */
		break;
	case MSR_KVM_STEAL_TIME:
		if (!IS_ENABLED(CONFIG_SCHED_INFO) || (val & KVM_STEAL_RESERVED_MASK))
			return 0;
		vcpu->pv.steal_msr = val;
		vcpu->pv.steal_started = false;
		break;
	}
	return 1;
}
