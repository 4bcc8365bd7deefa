// SPDX-License-Identifier: GPL-2.0
/*
 * Interrupt routing without an in-kernel irqchip. The PIC, IOAPIC and
 * local APIC are userspace's (QEMU's with kernel_irqchip=off, the
 * harness's devices); interrupts arrive through KVM_INTERRUPT. KVM x86
 * still reports KVM_CAP_IRQ_ROUTING, and QEMU refuses to start without it,
 * so KVM_SET_GSI_ROUTING is offered for what it can mean here: a validated
 * table of MSI routes, kept per VM and replaced whole by each call.
 * IRQCHIP routes are refused (there is no chip to route to). Nothing
 * delivers through the table: no irqfd, KVM_IRQ_LINE or KVM_SIGNAL_MSI is
 * offered, and KVM_CHECK_EXTENSION says so.
 */
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include "kvmlab.h"

#define KL_MAX_IRQ_ROUTES	4096	/* KVM's KVM_MAX_IRQ_ROUTES */

static int check_entry(const struct kvm_irq_routing_entry *e)
{
	if (e->gsi >= KL_MAX_IRQ_ROUTES || e->flags || e->type != KVM_IRQ_ROUTING_MSI)
		return -EINVAL;
	if (e->u.msi.devid || e->u.msi.address_hi)	/* no devid, no x2APIC destination */
		return -EINVAL;
	return 0;
}

int kl_set_gsi_routing(struct kl_vm *vm, struct kvm_irq_routing __user *argp)
{
	struct kvm_irq_routing head;
	struct kvm_irq_routing_entry *entries = NULL;
	int r = 0;

	if (copy_from_user(&head, argp, sizeof(head)))
		return -EFAULT;
	if (head.flags || head.nr > KL_MAX_IRQ_ROUTES)
		return -EINVAL;
	if (head.nr) {
		entries = vmemdup_user(argp->entries, array_size(sizeof(*entries), head.nr));
		if (IS_ERR(entries))
			return PTR_ERR(entries);
	}
	for (u32 i = 0; i < head.nr && !r; i++)
		r = check_entry(&entries[i]);
	if (r) {
		kvfree(entries);
		return r;
	}
	mutex_lock(&vm->lock);
	swap(vm->irq_routes, entries);
	vm->nr_irq_routes = head.nr;
	mutex_unlock(&vm->lock);
	kvfree(entries);
	return 0;
}

void kl_free_gsi_routing(struct kl_vm *vm)
{
	kvfree(vm->irq_routes);
	vm->irq_routes = NULL;
	vm->nr_irq_routes = 0;
}
