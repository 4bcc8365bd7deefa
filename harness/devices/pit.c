// SPDX-License-Identifier: GPL-2.0
/*
 * The i8254 PIT at 1.193182 MHz. Channel 0 drives IRQ 0: modes 2 and 3
 * fire every `reload` counts, modes 0, 1 and 4 once. Channel 2 is what
 * Linux's TSC calibration reads, gated by bit 0 of port 0x61, its output
 * readable in bit 5. Counters are not stepped: their value is computed from
 * the time since they were loaded. Ticks the guest was too slow to see (it
 * was not scheduled, or a tick handler ran long) collapse into one: a guest
 * with a reference clock (the TSC) corrects for them, as on a busy host.
 */
#include "devices.h"
#include "../lib/util.h"

#define PIT_HZ		1193182ULL

static uint64_t counts_since(const struct pit_channel *c, uint64_t now)
{
	return now > c->start_ns ? (now - c->start_ns) * PIT_HZ / 1000000000ULL : 0;
}

static uint64_t ns_for_counts(uint64_t counts)
{
	return (counts * 1000000000ULL + PIT_HZ - 1) / PIT_HZ;
}

static uint32_t reload_of(const struct pit_channel *c)
{
	return c->reload ? c->reload : 0x10000;
}

static bool periodic(const struct pit_channel *c)
{
	return c->mode == 2 || c->mode == 3;
}

static uint16_t current_count(const struct pit_channel *c, uint64_t now)
{
	uint64_t n = counts_since(c, now), r = reload_of(c);

	if (!c->armed)
		return (uint16_t)c->reload;
	if (periodic(c))
		return (uint16_t)(r - n % r);
	return (uint16_t)(n >= r ? (0x10000 - (n - r) % 0x10000) : r - n);
}

static bool output_high(const struct pit_channel *c, uint64_t now)
{
	uint64_t n = counts_since(c, now), r = reload_of(c);

	if (!c->armed)
		return c->mode != 0;
	if (c->mode == 3)
		return n % r < r / 2;
	if (c->mode == 2)
		return n % r != r - 1;
	return n >= r;		/* modes 0, 1, 4: high at terminal count */
}

static void load_counter(struct pit_channel *c, uint64_t now)
{
	c->start_ns = now;
	c->armed = true;
	c->fired = 0;
}

static void write_control(struct pit *p, uint8_t v, uint64_t now)
{
	int sel = v >> 6;
	struct pit_channel *c;

	if (sel == 3) {			/* read-back: latch the counts asked for */
		for (int i = 0; i < 3; i++)
			if (!(v & 0x20) && (v & (2 << i))) {
				p->ch[i].latch = current_count(&p->ch[i], now);
				p->ch[i].latched = true;
				p->ch[i].read_msb = false;
			}
		return;
	}
	c = &p->ch[sel];
	if ((v & 0x30) == 0) {		/* counter latch */
		c->latch = current_count(c, now);
		c->latched = true;
		c->read_msb = false;
		return;
	}
	c->rw = (v >> 4) & 3;
	c->mode = (v >> 1) & 7;
	if (c->mode > 5)
		c->mode -= 4;		/* 6 and 7 are 2 and 3 */
	c->write_msb = c->read_msb = c->latched = false;
	c->armed = false;
}

static void write_count(struct pit_channel *c, uint8_t v, uint64_t now)
{
	if (c->rw == 1) {
		c->reload = v;
	} else if (c->rw == 2) {
		c->reload = (uint32_t)v << 8;
	} else if (!c->write_msb) {
		c->reload = (c->reload & 0xff00) | v;
		c->write_msb = true;
		return;
	} else {
		c->reload = (c->reload & 0xff) | ((uint32_t)v << 8);
		c->write_msb = false;
	}
	load_counter(c, now);
}

static uint8_t read_count(struct pit_channel *c, uint64_t now)
{
	uint16_t v = c->latched ? c->latch : current_count(c, now);
	uint8_t out;

	if (c->rw == 1 || (c->rw == 3 && !c->read_msb)) {
		out = v & 0xff;
	} else {
		out = v >> 8;
	}
	if (c->rw == 3)
		c->read_msb = !c->read_msb;
	if (c->latched && (c->rw != 3 || !c->read_msb))
		c->latched = false;
	return out;
}

bool pit_io(struct devices *d, uint16_t port, bool out, uint8_t *val)
{
	struct pit *p = &d->pit;
	uint64_t now = now_ns();

	if (port == 0x61) {
		if (out) {
			/* Raising the gate restarts channel 2's count. */
			if ((*val & 1) && !(p->port61 & 1) && p->ch[2].armed)
				load_counter(&p->ch[2], now);
			p->port61 = *val & 0x0f;
		} else {
			p->port61 ^= 0x10;	/* refresh toggle: some code polls it */
			*val = p->port61 | (((p->port61 & 1) && output_high(&p->ch[2], now)) ? 0x20 : 0);
		}
		return true;
	}
	if (port < 0x40 || port > 0x43)
		return false;
	if (port == 0x43) {
		if (out)
			write_control(p, *val, now);
		else
			*val = 0xff;
		return true;
	}
	if (out)
		write_count(&p->ch[port - 0x40], *val, now);
	else
		*val = read_count(&p->ch[port - 0x40], now);
	return true;
}

/* Channel 0: pulse IRQ 0 for each period reached (several collapse into one). */
void pit_tick(struct devices *d, uint64_t now)
{
	struct pit_channel *c = &d->pit.ch[0];
	uint64_t n, periods;

	if (!c->armed)
		return;
	n = counts_since(c, now);
	periods = periodic(c) ? n / reload_of(c) : n >= reload_of(c);
	if (periods > c->fired) {
		c->fired = periods;
		devices_set_irq(d, 0, true);
		devices_set_irq(d, 0, false);
	}
}

uint64_t pit_next_deadline(struct devices *d)
{
	struct pit_channel *c = &d->pit.ch[0];

	if (!c->armed || (!periodic(c) && c->fired))
		return NO_DEADLINE;
	return c->start_ns + ns_for_counts((c->fired + 1) * reload_of(c));
}
