// SPDX-License-Identifier: GPL-2.0
/*
 * The Intel MultiProcessor Specification (1.4) table: how a guest OS
 * without ACPI finds the CPUs of an SMP boot guest, its I/O APIC, and how
 * the ISA interrupts are wired to it. The kernel scans the BIOS area
 * (0xf0000-0xfffff, reserved in e820) for the floating pointer "_MP_",
 * which points at the configuration table "PCMP" right after it.
 *
 * What it describes is what the harness builds: CPU i has local APIC ID i
 * (CPU 0 the bootstrap processor), the I/O APIC (devices/ioapic.c) has
 * the next ID, ISA IRQ n is on its pin n except IRQ 0 on pin 2, and every
 * CPU's LINT0 takes the PIC (ExtINT) and LINT1 NMIs. No IMCR: the PIC
 * reaches the CPUs through LINT0, "virtual wire" mode.
 */
#include <string.h>
#include "mptable.h"

#define MPC_OFFSET	16		/* the configuration table, after the floating pointer */
#define MPC_HEADER	44

enum { MP_PROCESSOR = 0, MP_BUS = 1, MP_IOAPIC = 2, MP_INTSRC = 3, MP_LINTSRC = 4 };
enum { MP_INT = 0, MP_NMI = 1, MP_EXTINT = 3 };

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* The byte that makes the bytes [p, p + len) sum to zero. */
static uint8_t checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum += p[i];
	return (uint8_t)-sum;
}

static uint8_t *processor(uint8_t *e, int id)
{
	e[0] = MP_PROCESSOR;
	e[1] = (uint8_t)id;
	e[2] = 0x14;			/* local APIC version, as devices/lapic.c reports */
	e[3] = 1 | (id == 0 ? 2 : 0);	/* enabled; CPU 0 the bootstrap processor */
	put32(e + 4, 0x600);		/* CPU signature: family 6 (the kernel reads CPUID itself) */
	put32(e + 8, 0x201);		/* feature flags: FPU, APIC */
	return e + 20;
}

static uint8_t *intsrc(uint8_t *e, uint8_t type, uint8_t irq, uint8_t apic, uint8_t pin)
{
	e[0] = MP_INTSRC;
	e[1] = type;
	put16(e + 2, 0);		/* polarity and trigger: the bus's (ISA: high, edge) */
	e[4] = 0;			/* source bus: ISA */
	e[5] = irq;
	e[6] = apic;
	e[7] = pin;
	return e + 8;
}

static uint8_t *lintsrc(uint8_t *e, uint8_t type, uint8_t lint)
{
	e[0] = MP_LINTSRC;
	e[1] = type;
	put16(e + 2, 0);
	e[4] = 0;
	e[5] = 0;
	e[6] = 0xff;			/* every local APIC */
	e[7] = lint;
	return e + 8;
}

size_t mptable_size(int ncpus)
{
	return MPC_OFFSET + MPC_HEADER + 20 * (size_t)ncpus + 8 + 8 + 8 * 15 + 8 * 2;
}

void mptable_write(uint8_t *p, uint32_t gpa, int ncpus)
{
	uint8_t *mpc = p + MPC_OFFSET, *e = mpc + MPC_HEADER;
	uint8_t ioapic_id = (uint8_t)ncpus;
	/* CPUs, the bus, the I/O APIC, 15 ISA interrupts, LINT0 and LINT1. */
	uint16_t entries = (uint16_t)(ncpus + 1 + 1 + 15 + 2);

	memset(p, 0, mptable_size(ncpus));
	for (int i = 0; i < ncpus; i++)
		e = processor(e, i);
	e[0] = MP_BUS;
	memcpy(e + 2, "ISA   ", 6);
	e += 8;
	e[0] = MP_IOAPIC;
	e[1] = ioapic_id;
	e[2] = 0x11;			/* the 82093AA's version, as devices/ioapic.c reports */
	e[3] = 1;			/* enabled */
	put32(e + 4, IOAPIC_GPA);
	e += 8;
	for (int irq = 0; irq < 16; irq++)
		if (irq != 2)		/* IRQ 2 is the PICs' cascade, not an ISA interrupt */
			e = intsrc(e, MP_INT, (uint8_t)irq, ioapic_id, (uint8_t)(irq ? irq : 2));
	e = lintsrc(e, MP_EXTINT, 0);
	e = lintsrc(e, MP_NMI, 1);

	memcpy(mpc, "PCMP", 4);
	put16(mpc + 4, (uint16_t)(e - mpc));
	mpc[6] = 4;			/* specification 1.4 */
	memcpy(mpc + 8, "KVMLAB  ", 8);
	memcpy(mpc + 16, "KVMLAB SMP  ", 12);
	put16(mpc + 34, entries);
	put32(mpc + 36, LAPIC_GPA);
	mpc[7] = checksum(mpc, (size_t)(e - mpc));

	memcpy(p, "_MP_", 4);
	put32(p + 4, gpa + MPC_OFFSET);
	p[8] = 1;			/* length in 16-byte units */
	p[9] = 4;
	p[11] = 0;			/* feature byte 1: the table is there, no default configuration */
	p[12] = 0;			/* feature byte 2: no IMCR (virtual wire) */
	p[10] = checksum(p, 16);
}
