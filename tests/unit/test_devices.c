// SPDX-License-Identifier: GPL-2.0
/*
 * The device models of harness/devices, driven directly with no VM: the
 * i8259 pair (initialisation, priorities, EOI, masking, the cascade, edge
 * triggering, auto-EOI), the i8254 (periodic and one-shot channel 0 at
 * explicit times, latches), the 16550A (output, interrupts and their
 * wiring through OUT2, input, loopback, the divisor latch) and the local
 * APIC (enable, the timer in both modes, priorities, EOI), the I/O APIC and
 * the MP table that announces it.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "../../harness/devices/devices.h"
#include "../../harness/loaders/mptable.h"

static struct devices dev;
static char *console;
static size_t console_len;
static FILE *console_f;

static uint8_t in8(uint16_t port)
{
	uint8_t v = 0;

	CHECK(devices_pio(&dev, port, false, &v, 1));
	return v;
}

static void out8(uint16_t port, uint8_t v)
{
	CHECK(devices_pio(&dev, port, true, &v, 1));
}

static void setup(void)
{
	if (console_f)
		fclose(console_f);
	free(console);
	console = NULL;
	console_f = open_memstream(&console, &console_len);
	devices_init(&dev, console_f);
}

/* As Linux programs the pair: vectors 0x20 and 0x28, normal EOI, all unmasked. */
static void pic_init(bool auto_eoi)
{
	out8(0x20, 0x11); out8(0x21, 0x20); out8(0x21, 0x04); out8(0x21, auto_eoi ? 0x03 : 0x01);
	out8(0xa0, 0x11); out8(0xa1, 0x28); out8(0xa1, 0x02); out8(0xa1, auto_eoi ? 0x03 : 0x01);
	out8(0x21, 0x00);
	out8(0xa1, 0x00);
}

static void pulse(int irq)
{
	pic_set_irq(&dev, irq, true);
	pic_set_irq(&dev, irq, false);
}

static void pic_priorities_and_eoi(void)
{
	pic_init(false);
	CHECK_EQ(pic_pending_irq(&dev), -1);
	pulse(3);
	CHECK_EQ(pic_pending_irq(&dev), 3);
	CHECK_EQ(pic_ack(&dev), 0x23);
	pulse(5);
	CHECK_EQ(pic_pending_irq(&dev), -1);		/* IRQ 3 in service blocks lower 5 */
	pulse(1);
	CHECK_EQ(pic_pending_irq(&dev), 1);		/* higher priority nests */
	CHECK_EQ(pic_ack(&dev), 0x21);
	out8(0x20, 0x20);				/* EOI: the highest in service, 1 */
	CHECK_EQ(pic_pending_irq(&dev), -1);		/* 3 still in service */
	out8(0x20, 0x63);				/* specific EOI for 3 */
	CHECK_EQ(pic_pending_irq(&dev), 5);
	out8(0x20, 0x0b);				/* OCW3: read ISR */
	CHECK_EQ(in8(0x20), 0);
	out8(0x20, 0x0a);				/* OCW3: read IRR */
	CHECK_EQ(in8(0x20), 1 << 5);
}

static void pic_mask_edge_and_auto_eoi(void)
{
	pic_init(true);
	out8(0x21, 1 << 4);				/* mask IRQ 4 */
	CHECK_EQ(in8(0x21), 1 << 4);
	pulse(4);
	CHECK_EQ(pic_pending_irq(&dev), -1);
	out8(0x21, 0);
	CHECK_EQ(pic_pending_irq(&dev), 4);		/* the request waited in IRR */
	CHECK_EQ(pic_ack(&dev), 0x24);
	CHECK_EQ(dev.pic[0].isr, 0);			/* auto-EOI: nothing in service */
	pic_set_irq(&dev, 6, true);
	CHECK_EQ(pic_ack(&dev), 0x26);
	pic_set_irq(&dev, 6, true);			/* still high: no new edge */
	CHECK_EQ(pic_pending_irq(&dev), -1);
	pic_set_irq(&dev, 6, false);
	pic_set_irq(&dev, 6, true);
	CHECK_EQ(pic_pending_irq(&dev), 6);
}

static void pic_cascade(void)
{
	pic_init(false);
	pulse(10);
	CHECK_EQ(pic_pending_irq(&dev), 10);
	CHECK_EQ(pic_ack(&dev), 0x2a);
	CHECK(dev.pic[0].isr & (1 << 2));		/* the master's cascade input in service */
	CHECK(dev.pic[1].isr & (1 << 2));
	out8(0xa0, 0x20);
	out8(0x20, 0x20);
	CHECK_EQ(dev.pic[0].isr | dev.pic[1].isr, 0);
	out8(0xa1, 0xff);				/* slave masked: nothing cascades */
	pulse(9);
	CHECK_EQ(pic_pending_irq(&dev), -1);
}

/* When the k-th period of `reload` counts at 1.193182 MHz ends (rounded up to a ns). */
static uint64_t pit_ns(uint64_t k, uint64_t reload)
{
	return (k * reload * 1000000000ULL + 1193182 - 1) / 1193182;
}

/* Channel 0, mode `mode`, `reload` counts, via ports 0x43 and 0x40. */
static void pit_program(int mode, uint16_t reload)
{
	out8(0x43, 0x30 | (mode << 1));
	out8(0x40, reload & 0xff);
	out8(0x40, reload >> 8);
}

static void pit_periodic_channel0(void)
{
	uint64_t t0, period;

	pic_init(false);
	pit_program(2, 1193);				/* about 1 ms */
	t0 = dev.pit.ch[0].start_ns;
	period = pit_next_deadline(&dev) - t0;
	CHECK_EQ(period, pit_ns(1, 1193));		/* 1193 counts: 999847 ns */
	pit_tick(&dev, t0 + period - 1000);
	CHECK_EQ(pic_pending_irq(&dev), -1);
	pit_tick(&dev, t0 + period);
	CHECK_EQ(pic_pending_irq(&dev), 0);
	CHECK_EQ(pic_ack(&dev), 0x20);
	out8(0x20, 0x20);
	CHECK_EQ(pit_next_deadline(&dev), t0 + pit_ns(2, 1193));
	pit_tick(&dev, t0 + 5 * period + 10);		/* missed ticks collapse into one */
	CHECK_EQ(pic_pending_irq(&dev), 0);
	CHECK_EQ(pit_next_deadline(&dev), t0 + pit_ns(6, 1193));
}

static void pit_one_shot_and_latch(void)
{
	uint64_t t0;
	uint16_t count;

	pic_init(false);
	pit_program(0, 0x8000);
	t0 = dev.pit.ch[0].start_ns;
	pit_tick(&dev, pit_next_deadline(&dev));
	CHECK_EQ(pic_pending_irq(&dev), 0);
	CHECK_EQ(pit_next_deadline(&dev), NO_DEADLINE);	/* mode 0 fires once */
	pit_program(2, 0x8000);
	out8(0x43, 0x00);				/* latch channel 0 */
	count = in8(0x40);
	count |= in8(0x40) << 8;
	CHECK(count > 0 && count <= 0x8000);
	(void)t0;
	out8(0x43, 0xb6);				/* channel 2, mode 3, as Linux calibrates */
	out8(0x42, 0xff);
	out8(0x42, 0xff);
	out8(0x61, 0x01);				/* gate on */
	CHECK(in8(0x61) & 0x01);
}

static void uart_output_and_thre_interrupt(void)
{
	pic_init(false);
	out8(0x3f8, 'h');
	out8(0x3f8, 'i');
	out8(0x3f8, '\n');
	fflush(console_f);
	CHECK(console_len == 3 && !memcmp(console, "hi\n", 3));
	CHECK_EQ(in8(0x3fd) & 0x60, 0x60);		/* THRE and TEMT */
	out8(0x3fc, 0x08);				/* OUT2: wired to the PIC */
	out8(0x3f9, 0x02);				/* THRI */
	CHECK_EQ(in8(0x3fa) & 0x0f, 0x02);		/* THR empty, and IIR acknowledges it */
	CHECK_EQ(in8(0x3fa) & 0x0f, 0x01);
	CHECK_EQ(pic_pending_irq(&dev), 4);
}

static void uart_input_needs_out2(void)
{
	static const uint8_t line[] = "ls\n";

	pic_init(false);
	out8(0x3f9, 0x01);				/* RDI, but OUT2 clear */
	CHECK(!uart_listening(&dev));
	devices_uart_input(&dev, line, 3);
	CHECK(in8(0x3fd) & 0x01);			/* data ready */
	CHECK_EQ(pic_pending_irq(&dev), -1);		/* not wired */
	out8(0x3fc, 0x08);
	CHECK(uart_listening(&dev));
	CHECK_EQ(in8(0x3fa) & 0x0f, 0x04);
	CHECK_EQ(pic_pending_irq(&dev), 4);
	CHECK_EQ(in8(0x3f8), 'l');
	CHECK_EQ(in8(0x3f8), 's');
	CHECK_EQ(in8(0x3f8), '\n');
	CHECK(!(in8(0x3fd) & 0x01));
	CHECK_EQ(in8(0x3fa) & 0x0f, 0x01);
}

static void uart_loopback_and_divisor(void)
{
	out8(0x3fc, 0x10);				/* loopback */
	out8(0x3f8, 0x5a);
	fflush(console_f);
	CHECK_EQ(console_len, 0);			/* not sent out */
	CHECK_EQ(in8(0x3f8), 0x5a);			/* but received */
	out8(0x3fb, 0x80);				/* DLAB */
	out8(0x3f8, 0x01);
	out8(0x3f9, 0x00);
	CHECK_EQ(in8(0x3f8), 0x01);
	out8(0x3fb, 0x03);
	CHECK_EQ(in8(0x3fb), 0x03);
	out8(0x3ff, 0xa5);				/* scratch */
	CHECK_EQ(in8(0x3ff), 0xa5);
}

static uint32_t apic_read(uint32_t off)
{
	uint32_t v = 0;

	lapic_mmio(&dev.lapic, off, false, &v);
	return v;
}

static void apic_write(uint32_t off, uint32_t v)
{
	lapic_mmio(&dev.lapic, off, true, &v);
}

static void lapic_enable_and_lvt_masking(void)
{
	CHECK(!lapic_enabled(&dev.lapic));
	CHECK_EQ(apic_read(0x30) & 0xff, 0x14);		/* version */
	apic_write(0x320, 0x40);			/* LVT timer while disabled: stays masked */
	CHECK(apic_read(0x320) & (1 << 16));
	apic_write(0xf0, 0x1ff);
	CHECK(lapic_enabled(&dev.lapic));
	apic_write(0x320, 0x40);
	CHECK_EQ(apic_read(0x320), 0x40);
	apic_write(0xf0, 0x0ff);			/* software disable masks every LVT */
	CHECK(apic_read(0x320) & (1 << 16));
}

static void lapic_timer_priorities_and_eoi(void)
{
	uint64_t t0;

	apic_write(0xf0, 0x1ff);
	apic_write(0x3e0, 0x0b);			/* divide by 1: 1 ns per count */
	apic_write(0x320, 0x40 | (1 << 17));		/* vector 0x40, periodic */
	apic_write(0x380, 1000);
	t0 = dev.lapic.timer_start_ns;
	CHECK_EQ(lapic_next_deadline(&dev.lapic), t0 + 1000);
	lapic_tick(&dev.lapic, t0 + 999);
	CHECK_EQ(lapic_pending_vector(&dev.lapic), -1);
	lapic_tick(&dev.lapic, t0 + 1000);
	CHECK_EQ(lapic_pending_vector(&dev.lapic), 0x40);
	CHECK_EQ(lapic_next_deadline(&dev.lapic), t0 + 2000);
	apic_write(0x80, 0x50);				/* TPR above the vector's class */
	CHECK_EQ(lapic_pending_vector(&dev.lapic), -1);
	apic_write(0x80, 0x00);
	lapic_ack(&dev.lapic, 0x40);
	CHECK_EQ(lapic_pending_vector(&dev.lapic), -1);
	CHECK_EQ(apic_read(0xa0), 0x40);		/* PPR follows the vector in service */
	apic_write(0xb0, 0);				/* EOI */
	CHECK_EQ(apic_read(0xa0), 0x00);
	apic_write(0x320, 0x41);			/* one-shot */
	apic_write(0x380, 500);
	t0 = dev.lapic.timer_start_ns;
	lapic_tick(&dev.lapic, t0 + 500);
	CHECK_EQ(lapic_pending_vector(&dev.lapic), 0x41);
	CHECK_EQ(lapic_next_deadline(&dev.lapic), NO_DEADLINE);
}

static uint32_t ipi_lo, ipi_hi;
static int ipis;

static void record_ipi(void *ctx, uint32_t lo, uint32_t hi)
{
	(void)ctx;
	ipi_lo = lo;
	ipi_hi = hi;
	ipis++;
}

/* The ICR's low half sends, with the high half's destination; IDs and logical matching. */
static void lapic_icr_sends_and_destinations(void)
{
	struct lapic l;

	lapic_init(&l, 3);
	l.send_ipi = record_ipi;
	lapic_mmio(&l, 0x310, true, &(uint32_t){ 2U << 24 });
	CHECK_EQ(ipis, 0);				/* ICR2 alone sends nothing */
	lapic_mmio(&l, 0x300, true, &(uint32_t){ 0x40f1 });
	CHECK_EQ(ipis, 1);
	CHECK_EQ(ipi_lo, 0x40f1);
	CHECK_EQ(ipi_hi, 2U << 24);
	uint32_t v = 0;
	lapic_mmio(&l, 0x300, false, &v);
	CHECK_EQ(v & (1U << 12), 0);			/* never reads "send pending" */
	lapic_mmio(&l, 0x20, false, &v);
	CHECK_EQ(v, 3U << 24);
	lapic_mmio(&l, 0xd0, true, &(uint32_t){ 0x04U << 24 });	/* flat model: bit 2 */
	CHECK(lapic_match_logical(&l, 0x06));
	CHECK(!lapic_match_logical(&l, 0x09));
	lapic_mmio(&l, 0xe0, true, &(uint32_t){ 0x0fffffff });	/* cluster model */
	lapic_mmio(&l, 0xd0, true, &(uint32_t){ 0x21U << 24 });	/* cluster 2, bit 0 */
	CHECK(lapic_match_logical(&l, 0x23));
	CHECK(!lapic_match_logical(&l, 0x13));
	lapic_raise(&l, 0x50);
	CHECK_EQ(lapic_pending_vector(&l), -1);		/* software-disabled: nothing taken */
	lapic_mmio(&l, 0xf0, true, &(uint32_t){ 0x1ff });
	CHECK_EQ(lapic_pending_vector(&l), 0x50);
}

static void ioapic_write(uint32_t index, uint32_t v)
{
	uint32_t sel = index;

	CHECK(devices_mmio(&dev, IOAPIC_GPA, true, (uint8_t *)&sel, 4));
	CHECK(devices_mmio(&dev, IOAPIC_GPA + 0x10, true, (uint8_t *)&v, 4));
}

static uint32_t ioapic_read(uint32_t index)
{
	uint32_t sel = index, v = 0;

	CHECK(devices_mmio(&dev, IOAPIC_GPA, true, (uint8_t *)&sel, 4));
	CHECK(devices_mmio(&dev, IOAPIC_GPA + 0x10, false, (uint8_t *)&v, 4));
	return v;
}

/*
 * The I/O APIC: absent unless announced; masked at reset; ISA IRQ 0 on pin
 * 2; a rising edge sends the entry's vector, modes and destination in the
 * ICR's format, once per edge; the ID and version registers.
 */
static void ioapic_routes_edges_to_the_bus(void)
{
	uint8_t b[4] = { 0 };

	setup();
	CHECK(!devices_mmio(&dev, IOAPIC_GPA, false, b, 4));	/* no MP table, no I/O APIC */
	ioapic_init(&dev.ioapic, 4);
	dev.ioapic.deliver = record_ipi;
	ipis = 0;
	CHECK_EQ(ioapic_read(0) >> 24, 4);
	CHECK_EQ(ioapic_read(1), 0x170011);			/* 24 pins, version 0x11 */
	CHECK_EQ(ioapic_read(0x14), 1U << 16);			/* pin 2: masked */
	devices_set_irq(&dev, 0, true);
	devices_set_irq(&dev, 0, false);
	CHECK_EQ(ipis, 0);
	ioapic_write(0x15, 2U << 24);				/* pin 2 to APIC 2, */
	ioapic_write(0x14, 0x0931);				/* vector 0x31, lowest, logical */
	devices_set_irq(&dev, 0, true);
	CHECK_EQ(ipis, 1);
	CHECK_EQ(ipi_lo, 0x931);
	CHECK_EQ(ipi_hi, 2U << 24);
	devices_set_irq(&dev, 0, true);				/* no edge: nothing more */
	CHECK_EQ(ipis, 1);
	devices_set_irq(&dev, 0, false);
	devices_set_irq(&dev, 4, true);				/* pin 4: still masked */
	CHECK_EQ(ipis, 1);
	CHECK_EQ(ioapic_read(0x14), 0x0931);
	CHECK_EQ(ioapic_read(0x15), 2U << 24);
	ioapic_write(0, 9U << 24);
	CHECK_EQ(ioapic_read(0) >> 24, 9);
	CHECK_EQ(ioapic_read(1), 0x170011);			/* read-only */
}

static uint8_t sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	while (len--)
		s += *p++;
	return s;
}

/* The MP table: both checksums, the pointer, every CPU with the BSP flagged, the I/O APIC. */
static void mptable_describes_cpus_and_ioapic(void)
{
	static uint8_t mem[4096];
	const uint32_t gpa = 0xf1000;
	const uint8_t *mpc = mem + 16, *e;
	uint32_t ptr, lapic;
	uint16_t len, count;
	int cpus = 0, bsp = -1, ints = 0;

	CHECK(mptable_size(3) <= sizeof(mem));
	mptable_write(mem, gpa, 3);
	CHECK(!memcmp(mem, "_MP_", 4));
	CHECK_EQ(sum(mem, 16), 0);
	memcpy(&ptr, mem + 4, 4);
	CHECK_EQ(ptr, gpa + 16);
	CHECK(!memcmp(mpc, "PCMP", 4));
	memcpy(&len, mpc + 4, 2);
	memcpy(&count, mpc + 34, 2);
	memcpy(&lapic, mpc + 36, 4);
	CHECK_EQ(sum(mpc, len), 0);
	CHECK_EQ(lapic, LAPIC_GPA);
	CHECK(16 + (size_t)len <= mptable_size(3));
	e = mpc + 44;
	for (int i = 0; i < count; i++) {
		if (e[0] == 0) {
			if (e[3] & 2)
				bsp = e[1];
			CHECK_EQ(e[1], cpus);
			cpus++;
		}
		if (e[0] == 2)
			CHECK_EQ(e[1], 3);		/* the I/O APIC's ID follows the CPUs' */
		if (e[0] == 3 && e[5] == 0)
			CHECK_EQ(e[7], 2);		/* IRQ 0 on pin 2 */
		ints += e[0] == 3;
		e += e[0] == 0 ? 20 : 8;
	}
	CHECK_EQ(e - mpc, len);
	CHECK_EQ(cpus, 3);
	CHECK_EQ(bsp, 0);
	CHECK_EQ(ints, 15);
}

void suite_devices(void)
{
	static const struct { const char *name; void (*fn)(void); } tests[] = {
		{ "pic_priorities_and_eoi", pic_priorities_and_eoi },
		{ "pic_mask_edge_and_auto_eoi", pic_mask_edge_and_auto_eoi },
		{ "pic_cascade", pic_cascade },
		{ "pit_periodic_channel0", pit_periodic_channel0 },
		{ "pit_one_shot_and_latch", pit_one_shot_and_latch },
		{ "uart_output_and_thre_interrupt", uart_output_and_thre_interrupt },
		{ "uart_input_needs_out2", uart_input_needs_out2 },
		{ "uart_loopback_and_divisor", uart_loopback_and_divisor },
		{ "lapic_enable_and_lvt_masking", lapic_enable_and_lvt_masking },
		{ "lapic_timer_priorities_and_eoi", lapic_timer_priorities_and_eoi },
		{ "lapic_icr_sends_and_destinations", lapic_icr_sends_and_destinations },
		{ "ioapic_routes_edges_to_the_bus", ioapic_routes_edges_to_the_bus },
		{ "mptable_describes_cpus_and_ioapic", mptable_describes_cpus_and_ioapic },
	};

	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		setup();
		unit_run(tests[i].name, tests[i].fn);
	}
	fclose(console_f);
	free(console);
	console_f = NULL;
}
