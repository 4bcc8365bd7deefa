/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The userspace device model of a boot guest (`kvmlab boot`, the
 * multiboot-* and linux-* workloads): the few PC devices a Multiboot kernel
 * or Linux needs, as the paper's QEMU provided them. All of it lives here,
 * in userspace, because the kernel module's job is the CPU and the MMU:
 * every device access is an exit to us, and we inject interrupts with
 * KVM_INTERRUPT. That costs exits (each timer tick is a signal, an exit and
 * an injection) but keeps the module small and the devices readable, and it
 * is the same for Linux KVM run without its in-kernel irqchip.
 *
 *   port 0x3f8-0x3ff  16550A UART (COM1, IRQ 4): the console, input too
 *   port 0x20, 0xa0   i8259 PIC pair (IRQ 2 cascades), edge-triggered
 *   port 0x40-0x43    i8254 PIT (channel 0 on IRQ 0), 0x61 channel 2 gate
 *   port 0x70-0x71    CMOS RTC: wall-clock time, no alarms or periodic irq
 *   port 0xf4         exit/status (QEMU isa-debug-exit: exit code 2v+1)
 *   0xfee00000        local APIC (xAPIC MMIO) with its timer
 *   0xfec00000        I/O APIC, only in an SMP guest (its MP table says so)
 *
 * Time is the host's CLOCK_MONOTONIC: devices compute their state from it
 * when asked, and tell the run loop the next moment they will interrupt.
 */
#ifndef KVMLAB_DEVICES_H
#define KVMLAB_DEVICES_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define PORT_DEBUG_EXIT	0xf4
#define LAPIC_GPA	0xfee00000ULL
#define IOAPIC_GPA	0xfec00000ULL
#define IOAPIC_PINS	24
#define NO_DEADLINE	UINT64_MAX

struct pic {
	uint8_t irr, isr, imr;
	uint8_t base;		/* ICW2: vector of IRQ 0 */
	uint8_t lines;		/* input levels, for edge detection */
	uint8_t init_step;	/* 0: operating; 2..4: next ICW expected */
	bool icw4_needed, auto_eoi, read_isr;
};

struct pit_channel {
	uint8_t mode, rw;	/* rw: 1 lsb, 2 msb, 3 lsb then msb */
	uint32_t reload;	/* 0 means 65536 */
	uint64_t start_ns;	/* when counting began */
	bool write_msb, read_msb, latched, armed;
	uint16_t latch;
	uint64_t fired;		/* periods already signalled (channel 0) */
};

struct pit {
	struct pit_channel ch[3];
	uint8_t port61;
};

#define UART_RX_SIZE 4096

struct uart {
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
	bool thre_pending;
	uint8_t rx[UART_RX_SIZE];
	unsigned int rx_head, rx_len;
	FILE *out;		/* where the guest's console bytes go */
	uint64_t bytes_out;
};

struct lapic {
	uint32_t regs[1024];	/* the 4 KiB page, by 32-bit register */
	uint8_t id;		/* APIC ID: the vCPU's index */
	uint64_t timer_start_ns, timer_period_ns;
	bool timer_armed;
	/* An ICR write: the owner delivers it (NULL: no other CPU). */
	void (*send_ipi)(void *ctx, uint32_t icr_lo, uint32_t icr_hi);
	void *ipi_ctx;
};

/* The I/O APIC (ioapic.c): present only when the guest's MP table announces it. */
struct ioapic {
	bool present;
	uint8_t id;
	uint32_t sel;		/* IOREGSEL */
	uint64_t redir[IOAPIC_PINS];
	uint32_t lines;		/* input levels, for edge detection */
	/* A message to the APIC bus, in the ICR's format (the owner routes it). */
	void (*deliver)(void *ctx, uint32_t lo, uint32_t hi);
	void *deliver_ctx;
};

struct devices {
	struct pic pic[2];
	struct ioapic ioapic;
	struct pit pit;
	struct uart uart;
	struct lapic lapic;
	uint8_t cmos_index;
	bool exit_requested;
	int exit_value;		/* written to port 0xf4 (QEMU then exits with 2v+1) */
};

void devices_init(struct devices *d, FILE *console);
/* Port I/O; false when no device is there (reads then return all ones). */
bool devices_pio(struct devices *d, uint16_t port, bool out, uint8_t *data, int size);
bool devices_mmio(struct devices *d, uint64_t gpa, bool write, uint8_t *data, int len);
/* Bring timers up to date; raises their interrupts. */
void devices_tick(struct devices *d);
uint64_t devices_next_deadline(struct devices *d);
/* The vector the CPU would take now, or -1; ack means it was injected. */
int devices_pending_vector(struct devices *d);
/* One line on the interrupt path's state, for a run that got stuck. */
void devices_describe(struct devices *d, char *buf, size_t len);
void devices_ack(struct devices *d, int vector);
void devices_uart_input(struct devices *d, const uint8_t *buf, size_t len);
/* Receive interrupts are on: someone reads the console. */
bool uart_listening(const struct devices *d);

/* An ISA interrupt line: to the PIC, and to the I/O APIC's pin when there is one. */
void devices_set_irq(struct devices *d, int irq, bool level);

/* The parts, for devices.c and the tests of each. */
void pic_set_irq(struct devices *d, int irq, bool level);
void ioapic_init(struct ioapic *io, uint8_t id);
bool ioapic_mmio(struct ioapic *io, uint64_t gpa, bool write, uint8_t *data, int len);
void ioapic_set_irq(struct ioapic *io, int pin, bool level);
bool pic_io(struct devices *d, uint16_t port, bool out, uint8_t *val);
int pic_pending_irq(struct devices *d);
int pic_ack(struct devices *d);
bool pit_io(struct devices *d, uint16_t port, bool out, uint8_t *val);
void pit_tick(struct devices *d, uint64_t now);
uint64_t pit_next_deadline(struct devices *d);
bool uart_io(struct devices *d, uint16_t port, bool out, uint8_t *val);
bool cmos_io(struct devices *d, uint16_t port, bool out, uint8_t *val);
void lapic_init(struct lapic *l, uint8_t id);
void lapic_mmio(struct lapic *l, uint32_t offset, bool write, uint32_t *val);
void lapic_tick(struct lapic *l, uint64_t now);
uint64_t lapic_next_deadline(const struct lapic *l);
int lapic_pending_vector(const struct lapic *l);
void lapic_ack(struct lapic *l, int vector);
/* A fixed interrupt arrives (an IPI): it waits in IRR. */
void lapic_raise(struct lapic *l, int vector);
uint8_t lapic_tpr(const struct lapic *l);
bool lapic_match_logical(const struct lapic *l, uint8_t dest);
bool lapic_enabled(const struct lapic *l);
uint32_t lapic_lvt0(const struct lapic *l);
bool lapic_accepts_extint(const struct lapic *l);

#endif
