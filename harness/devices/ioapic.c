// SPDX-License-Identifier: GPL-2.0
/*
 * An I/O APIC (82093AA, 24 pins) at 0xfec00000, for SMP boot guests: the
 * MP table (loaders/mptable.c) announces it, with the ISA interrupts on
 * its pins (IRQ 0 on pin 2, as on every PC), and Linux then routes the
 * PIT and the UART through it to any CPU instead of the PIC's one wire
 * to the bootstrap processor's LINT0.
 *
 * Registers are reached through an index (IOREGSEL, offset 0) and a
 * window (IOWIN, offset 0x10). A pin whose input rises sends its
 * redirection entry's message — vector, delivery mode, physical or
 * logical destination — to the APIC bus, in the ICR's format, through the
 * owner's hook (run/smp.c delivers it as it delivers IPIs). Every input
 * here is edge-triggered, as the ISA devices of the model are (the PIC
 * sees them the same way): a level-triggered entry is taken as an edge,
 * and remote IRR never stays set.
 */
#include <string.h>
#include "devices.h"

#define IOREGSEL	0x00
#define IOWIN		0x10
#define REG_ID		0x00
#define REG_VER		0x01
#define REG_ARB		0x02
#define REG_REDIR	0x10
#define REDIR_MASKED	(1ULL << 16)
/* The bits a guest may write: vector, delivery and destination mode, polarity, trigger, mask, destination. */
#define REDIR_WRITABLE	(0xff00000000000000ULL | 0x1abffULL)

void ioapic_init(struct ioapic *io, uint8_t id)
{
	*io = (struct ioapic) { .id = id, .present = true };
	for (int i = 0; i < IOAPIC_PINS; i++)
		io->redir[i] = REDIR_MASKED;
}

static uint32_t read_reg(const struct ioapic *io, uint32_t index)
{
	int pin = (int)(index - REG_REDIR) / 2;

	switch (index) {
	case REG_ID:
		return (uint32_t)io->id << 24;
	case REG_VER:
		return (IOAPIC_PINS - 1) << 16 | 0x11;
	case REG_ARB:
		return (uint32_t)io->id << 24;
	}
	if (index >= REG_REDIR && pin < IOAPIC_PINS)
		return index & 1 ? (uint32_t)(io->redir[pin] >> 32) : (uint32_t)io->redir[pin];
	return 0;
}

static void write_reg(struct ioapic *io, uint32_t index, uint32_t v)
{
	int pin = (int)(index - REG_REDIR) / 2;
	uint64_t e;

	if (index == REG_ID) {
		io->id = (v >> 24) & 0xf;
		return;
	}
	if (index < REG_REDIR || pin >= IOAPIC_PINS)
		return;				/* version, arbitration: read-only */
	e = io->redir[pin];
	if (index & 1)
		e = (e & 0xffffffffULL) | (uint64_t)v << 32;
	else
		e = (e & ~0xffffffffULL) | v;
	io->redir[pin] = e & REDIR_WRITABLE;
}

bool ioapic_mmio(struct ioapic *io, uint64_t gpa, bool write, uint8_t *data, int len)
{
	uint64_t off = gpa - IOAPIC_GPA;
	uint32_t v = 0;

	if (!io->present || gpa < IOAPIC_GPA || off >= 0x1000)
		return false;
	if (write)
		memcpy(&v, data, len < 4 ? len : 4);
	switch (off & ~3ULL) {
	case IOREGSEL:
		if (write)
			io->sel = v & 0xff;
		else
			v = io->sel;
		break;
	case IOWIN:
		if (write)
			write_reg(io, io->sel, v);
		else
			v = read_reg(io, io->sel);
		break;
	}
	if (!write) {
		memset(data, 0, len);
		memcpy(data, &v, len < 4 ? len : 4);
	}
	return true;
}

/* An input changes level: a rising edge on an unmasked pin sends its message. */
void ioapic_set_irq(struct ioapic *io, int pin, bool level)
{
	uint32_t bit = 1U << pin;
	uint64_t e;

	if (!io->present || pin < 0 || pin >= IOAPIC_PINS)
		return;
	if (!level) {
		io->lines &= ~bit;
		return;
	}
	if (io->lines & bit)
		return;
	io->lines |= bit;
	e = io->redir[pin];
	if (e & REDIR_MASKED || !io->deliver)
		return;
	/* Vector, delivery mode and destination mode sit where the ICR has them. */
	io->deliver(io->deliver_ctx, (uint32_t)e & 0xfff, (uint32_t)(e >> 56) << 24);
}
