// SPDX-License-Identifier: GPL-2.0
/*
 * The device model as the run loop sees it: route an access to its device,
 * advance the timers, and answer "which vector would the CPU take now"
 * (the local APIC's own first, then the PIC's through LINT0).
 */
#include <string.h>
#include "devices.h"
#include "../lib/util.h"

void devices_init(struct devices *d, FILE *console)
{
	memset(d, 0, sizeof(*d));
	d->uart.out = console;
	d->pic[0].base = 0x08;		/* the BIOS default; every guest reprograms it */
	d->pic[1].base = 0x70;
	lapic_init(&d->lapic, 0);
}

static bool debug_exit_io(struct devices *d, uint16_t port, bool out, uint8_t *val)
{
	if (port != PORT_DEBUG_EXIT)
		return false;
	if (out) {
		d->exit_requested = true;
		d->exit_value = *val;
	} else {
		*val = 0;
	}
	return true;
}

/* One byte at a time: the devices are byte-wide; wider accesses are split. */
bool devices_pio(struct devices *d, uint16_t port, bool out, uint8_t *data, int size)
{
	bool handled = true;

	for (int i = 0; i < size; i++) {
		uint16_t p = port + i;
		uint8_t *v = &data[i];

		if (!(pic_io(d, p, out, v) || pit_io(d, p, out, v) || uart_io(d, p, out, v) ||
		      cmos_io(d, p, out, v) || debug_exit_io(d, p, out, v))) {
			handled = false;
			if (!out)
				*v = 0xff;	/* nothing there: the bus floats high */
		}
	}
	return handled;
}

/* ISA IRQ 0 is wired to pin 2 of the I/O APIC, as on every PC (mptable.c says so). */
void devices_set_irq(struct devices *d, int irq, bool level)
{
	pic_set_irq(d, irq, level);
	ioapic_set_irq(&d->ioapic, irq ? irq : 2, level);
}

bool devices_mmio(struct devices *d, uint64_t gpa, bool write, uint8_t *data, int len)
{
	uint32_t val = 0;

	if (ioapic_mmio(&d->ioapic, gpa, write, data, len))
		return true;
	if (gpa < LAPIC_GPA || gpa >= LAPIC_GPA + 0x1000)
		return false;
	/* Registers are 32-bit and 16-byte aligned; other widths are undefined. */
	if (write) {
		memcpy(&val, data, len < 4 ? len : 4);
		lapic_mmio(&d->lapic, gpa - LAPIC_GPA, true, &val);
	} else {
		lapic_mmio(&d->lapic, gpa - LAPIC_GPA, false, &val);
		memset(data, 0, len);
		memcpy(data, &val, len < 4 ? len : 4);
	}
	return true;
}

void devices_tick(struct devices *d)
{
	uint64_t now = now_ns();

	pit_tick(d, now);
	lapic_tick(&d->lapic, now);
}

uint64_t devices_next_deadline(struct devices *d)
{
	uint64_t a = pit_next_deadline(d), b = lapic_next_deadline(&d->lapic);

	return a < b ? a : b;
}

int devices_pending_vector(struct devices *d)
{
	int v = lapic_pending_vector(&d->lapic), irq;

	if (v >= 0)
		return v;
	irq = pic_pending_irq(d);
	if (irq < 0 || !lapic_accepts_extint(&d->lapic))
		return -1;
	return irq >= 8 ? d->pic[1].base + irq - 8 : d->pic[0].base + irq;
}

void devices_describe(struct devices *d, char *buf, size_t len)
{
	const struct pic *m = &d->pic[0], *sl = &d->pic[1];

	snprintf(buf, len, "UART IER %#x, %u input bytes unread; PIC IRR %#x/%#x ISR %#x/%#x "
		 "IMR %#x/%#x lines %#x/%#x; local APIC %s, LINT0 %#x; pending vector %d",
		 d->uart.ier, d->uart.rx_len, m->irr, sl->irr, m->isr, sl->isr, m->imr, sl->imr,
		 m->lines, sl->lines, lapic_enabled(&d->lapic) ? "on" : "off",
		 lapic_lvt0(&d->lapic), devices_pending_vector(d));
}

void devices_ack(struct devices *d, int vector)
{
	if (vector == lapic_pending_vector(&d->lapic))
		lapic_ack(&d->lapic, vector);
	else
		pic_ack(d);
}
