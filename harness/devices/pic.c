// SPDX-License-Identifier: GPL-2.0
/*
 * The i8259 pair: master at 0x20 (IRQ 0-7), slave at 0xa0 (IRQ 8-15) on
 * the master's IRQ 2. Edge-triggered, fixed priority (IRQ 0 highest),
 * normal or automatic EOI — what Linux and small kernels program. Special
 * mask mode, rotation and level-triggered inputs are not modelled.
 */
#include "devices.h"

static struct pic *pic_of(struct devices *d, uint16_t port)
{
	return &d->pic[(port & 0x80) ? 1 : 0];
}

/* The highest-priority request not masked and not blocked by one in service. */
static int pic_best(const struct pic *p)
{
	uint8_t req = p->irr & ~p->imr;

	for (int i = 0; i < 8; i++) {
		if (p->isr & (1 << i))
			return -1;	/* equal or higher priority in service */
		if (req & (1 << i))
			return i;
	}
	return -1;
}

static void update_cascade(struct devices *d)
{
	bool slave_out = pic_best(&d->pic[1]) >= 0;
	struct pic *m = &d->pic[0];

	if (slave_out && !(m->lines & 4))
		m->irr |= 4;
	if (slave_out)
		m->lines |= 4;
	else
		m->lines &= ~4;
}

void pic_set_irq(struct devices *d, int irq, bool level)
{
	struct pic *p = &d->pic[irq >> 3];
	uint8_t bit = 1 << (irq & 7);

	if (level && !(p->lines & bit))
		p->irr |= bit;		/* rising edge */
	if (level)
		p->lines |= bit;
	else
		p->lines &= ~bit;
	update_cascade(d);
}

int pic_pending_irq(struct devices *d)
{
	int irq;

	update_cascade(d);
	irq = pic_best(&d->pic[0]);
	if (irq == 2) {
		int s = pic_best(&d->pic[1]);

		return s >= 0 ? 8 + s : -1;
	}
	return irq;
}

static void in_service(struct pic *p, int irq)
{
	p->irr &= ~(1 << irq);
	if (!p->auto_eoi)
		p->isr |= 1 << irq;
}

/* INTA: the vector the CPU gets; the request moves into service. */
int pic_ack(struct devices *d)
{
	int irq = pic_pending_irq(d);

	if (irq < 0)
		return -1;
	if (irq >= 8) {
		in_service(&d->pic[1], irq - 8);
		in_service(&d->pic[0], 2);
		update_cascade(d);
		return d->pic[1].base + (irq - 8);
	}
	in_service(&d->pic[0], irq);
	return d->pic[0].base + irq;
}

static void pic_eoi(struct pic *p, int specific)
{
	if (specific >= 0) {
		p->isr &= ~(1 << specific);
		return;
	}
	for (int i = 0; i < 8; i++) {
		if (p->isr & (1 << i)) {
			p->isr &= ~(1 << i);
			return;
		}
	}
}

static void pic_write(struct pic *p, bool data_port, uint8_t v)
{
	if (!data_port && (v & 0x10)) {		/* ICW1: start over */
		*p = (struct pic) { .base = p->base, .lines = p->lines,
				    .icw4_needed = v & 1, .init_step = 2 };
		return;
	}
	if (data_port && p->init_step) {
		if (p->init_step == 2) {
			p->base = v & 0xf8;
			p->init_step = 3;
		} else if (p->init_step == 3) {
			p->init_step = p->icw4_needed ? 4 : 0;	/* ICW3: the wiring is fixed */
		} else {
			p->auto_eoi = v & 2;
			p->init_step = 0;
		}
		return;
	}
	if (data_port) {
		p->imr = v;				/* OCW1 */
	} else if ((v & 0x18) == 0) {			/* OCW2 */
		if ((v & 0xe0) == 0x20)
			pic_eoi(p, -1);
		else if ((v & 0xe0) == 0x60)
			pic_eoi(p, v & 7);
	} else if ((v & 0x18) == 0x08 && (v & 2)) {	/* OCW3: which register reads */
		p->read_isr = v & 1;
	}
}

bool pic_io(struct devices *d, uint16_t port, bool out, uint8_t *val)
{
	struct pic *p;

	if (port != 0x20 && port != 0x21 && port != 0xa0 && port != 0xa1) {
		if (port == 0x4d0 || port == 0x4d1) {	/* ELCR: every input edge-triggered */
			if (!out)
				*val = 0;
			return true;
		}
		return false;
	}
	p = pic_of(d, port);
	if (out)
		pic_write(p, port & 1, *val);
	else
		*val = (port & 1) ? p->imr : p->read_isr ? p->isr : p->irr;
	update_cascade(d);
	return true;
}
