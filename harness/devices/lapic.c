// SPDX-License-Identifier: GPL-2.0
/*
 * A local APIC in xAPIC mode at 0xfee00000, one per vCPU: task priority,
 * IRR/ISR with EOI, the spurious-vector enable, and the timer (one-shot and
 * periodic; a 1 GHz bus clock, as KVM uses, over the divide configuration).
 * LINT0 in ExtINT mode passes the PIC's interrupts through, which is how a
 * PC with no I/O APIC wires them. A write of the ICR's low half sends an
 * IPI through the owner's hook (lapic.send_ipi; the APIC "bus" of an SMP
 * run decides who receives it); without a hook there is no other CPU. No
 * TSC-deadline mode (CPUID does not offer it), no x2APIC. CR8 is not tied
 * to the TPR here: kvmlab leaves CR8 to the CPU's virtual TPR, so a guest
 * should use one or the other.
 */
#include "devices.h"
#include "../lib/util.h"

#define REG(off)	((off) >> 4)
#define APIC_ID		0x20
#define APIC_LVR	0x30
#define APIC_TPR	0x80
#define APIC_PPR	0xa0
#define APIC_EOI	0xb0
#define APIC_LDR	0xd0
#define APIC_DFR	0xe0
#define APIC_SVR	0xf0
#define APIC_ISR	0x100
#define APIC_TMR	0x180
#define APIC_IRR	0x200
#define APIC_ESR	0x280
#define APIC_ICR	0x300
#define APIC_ICR2	0x310
#define APIC_LVTT	0x320
#define APIC_LVT0	0x350
#define APIC_LVTERR	0x370
#define APIC_TMICT	0x380
#define APIC_TMCCT	0x390
#define APIC_TDCR	0x3e0
#define LVT_MASKED	(1U << 16)
#define LVT_PERIODIC	(1U << 17)
#define SVR_ENABLED	(1U << 8)

static uint32_t *reg(struct lapic *l, uint32_t off)
{
	return &l->regs[REG(off)];
}

void lapic_init(struct lapic *l, uint8_t id)
{
	*l = (struct lapic) { .id = id };
	*reg(l, APIC_LVR) = 0x00050014;		/* version 0x14, 6 LVT entries */
	*reg(l, APIC_DFR) = 0xffffffff;
	*reg(l, APIC_SVR) = 0xff;
	for (uint32_t off = APIC_LVTT; off <= APIC_LVTERR; off += 0x10)
		*reg(l, off) = LVT_MASKED;
}

bool lapic_enabled(const struct lapic *l)
{
	return l->regs[REG(APIC_SVR)] & SVR_ENABLED;
}

uint32_t lapic_lvt0(const struct lapic *l)
{
	return l->regs[REG(APIC_LVT0)];
}

bool lapic_accepts_extint(const struct lapic *l)
{
	uint32_t lint0 = lapic_lvt0(l);

	return !lapic_enabled(l) || (!(lint0 & LVT_MASKED) && (lint0 & 0x700) == 0x700);
}

static bool test_bit(const struct lapic *l, uint32_t base, int v)
{
	return l->regs[REG(base) + v / 32] & (1U << (v % 32));
}

static void set_bit(struct lapic *l, uint32_t base, int v, bool on)
{
	if (on)
		l->regs[REG(base) + v / 32] |= 1U << (v % 32);
	else
		l->regs[REG(base) + v / 32] &= ~(1U << (v % 32));
}

static int highest(const struct lapic *l, uint32_t base)
{
	for (int v = 255; v >= 16; v--)
		if (test_bit(l, base, v))
			return v;
	return -1;
}

static uint32_t ppr(const struct lapic *l)
{
	uint32_t tpr = l->regs[REG(APIC_TPR)] & 0xff;
	int isr = highest(l, APIC_ISR);

	return isr >= 0 && (uint32_t)(isr & 0xf0) > (tpr & 0xf0) ? (uint32_t)isr & 0xf0 : tpr;
}

static uint64_t divisor(const struct lapic *l)
{
	uint32_t v = l->regs[REG(APIC_TDCR)];
	uint32_t code = (v & 3) | ((v & 8) >> 1);

	return code == 7 ? 1 : 2ULL << code;
}

static uint64_t timer_ns(const struct lapic *l)
{
	return (uint64_t)l->regs[REG(APIC_TMICT)] * divisor(l);
}

static uint32_t current_count(const struct lapic *l, uint64_t now)
{
	uint64_t period = timer_ns(l), elapsed;

	if (!l->timer_armed || !period)
		return 0;
	elapsed = now - l->timer_start_ns;
	if (l->regs[REG(APIC_LVTT)] & LVT_PERIODIC)
		elapsed %= period;
	else if (elapsed >= period)
		return 0;
	return (uint32_t)((period - elapsed) / divisor(l));
}

void lapic_raise(struct lapic *l, int v)
{
	if (v >= 16)
		set_bit(l, APIC_IRR, v, true);
}

void lapic_tick(struct lapic *l, uint64_t now)
{
	uint32_t lvtt = l->regs[REG(APIC_LVTT)];
	uint64_t period = timer_ns(l);

	if (!l->timer_armed || !period || now < l->timer_start_ns + period)
		return;
	if (lvtt & LVT_PERIODIC)	/* missed periods collapse into one */
		l->timer_start_ns += (now - l->timer_start_ns) / period * period;
	else
		l->timer_armed = false;
	if (!(lvtt & LVT_MASKED) && lapic_enabled(l))
		lapic_raise(l, lvtt & 0xff);
}

uint64_t lapic_next_deadline(const struct lapic *l)
{
	uint64_t period = timer_ns(l);

	return l->timer_armed && period ? l->timer_start_ns + period : NO_DEADLINE;
}

int lapic_pending_vector(const struct lapic *l)
{
	int v = highest(l, APIC_IRR);

	if (!lapic_enabled(l) || v < 0 || (uint32_t)(v & 0xf0) <= (ppr(l) & 0xf0))
		return -1;
	return v;
}

void lapic_ack(struct lapic *l, int vector)
{
	set_bit(l, APIC_IRR, vector, false);
	set_bit(l, APIC_ISR, vector, true);
}

static void lapic_write(struct lapic *l, uint32_t off, uint32_t v)
{
	int isr;

	switch (off) {
	case APIC_ID:
		l->id = v >> 24;
		break;
	case APIC_TPR: case APIC_LDR: case APIC_DFR: case APIC_ICR2:
		*reg(l, off) = v;
		break;
	case APIC_ICR:
		/* Delivered at once: the delivery-status bit never reads busy. */
		*reg(l, off) = v & ~(1U << 12);
		if (l->send_ipi)
			l->send_ipi(l->ipi_ctx, v, *reg(l, APIC_ICR2));
		break;
	case APIC_EOI:
		isr = highest(l, APIC_ISR);
		if (isr >= 0)
			set_bit(l, APIC_ISR, isr, false);
		break;
	case APIC_SVR:
		*reg(l, off) = v & 0x1ff;
		if (!(v & SVR_ENABLED))	/* software disable masks every LVT */
			for (uint32_t o = APIC_LVTT; o <= APIC_LVTERR; o += 0x10)
				*reg(l, o) |= LVT_MASKED;
		break;
	case APIC_ESR:
		break;
	case APIC_TMICT:
		*reg(l, off) = v;
		l->timer_start_ns = now_ns();
		l->timer_armed = v != 0;
		break;
	case APIC_TDCR:
		*reg(l, off) = v & 0xb;
		break;
	default:
		if (off >= APIC_LVTT && off <= APIC_LVTERR) {
			if (!lapic_enabled(l))
				v |= LVT_MASKED;
			*reg(l, off) = v & 0x3f7ff;
		}
		break;		/* read-only and reserved registers ignore writes */
	}
}

void lapic_mmio(struct lapic *l, uint32_t offset, bool write, uint32_t *val)
{
	uint32_t off = offset & 0xff0;

	if (write) {
		lapic_write(l, off, *val);
		return;
	}
	switch (off) {
	case APIC_ID: *val = (uint32_t)l->id << 24; break;
	case APIC_PPR: *val = ppr(l); break;
	case APIC_TMCCT: *val = current_count(l, now_ns()); break;
	case APIC_EOI: case APIC_ESR: *val = 0; break;
	default: *val = *reg(l, off); break;
	}
}

uint8_t lapic_tpr(const struct lapic *l)
{
	return l->regs[REG(APIC_TPR)] & 0xff;
}

/* Logical destination: the flat model matches bits, the cluster model a cluster's bits. */
bool lapic_match_logical(const struct lapic *l, uint8_t dest)
{
	uint8_t ldr = l->regs[REG(APIC_LDR)] >> 24;

	if ((l->regs[REG(APIC_DFR)] >> 28) == 0xf)
		return ldr & dest;
	return (ldr >> 4) == (dest >> 4) && (ldr & dest & 0xf);
}
