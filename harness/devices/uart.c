// SPDX-License-Identifier: GPL-2.0
/*
 * A 16550A UART at 0x3f8 on IRQ 4, infinitely fast: a byte written to THR
 * is on the console at once, so the transmitter is always empty and no
 * output is ever dropped, however fast the guest writes. Input waits in a
 * 4 KiB buffer (the host side stops reading while it is full). Enough of the
 * chip for Linux's 8250 driver to find a 16550A: FIFO bits in IIR, the
 * loopback test through MCR/MSR, the scratch register.
 */
#include "devices.h"

#define UART_BASE	0x3f8
#define UART_IRQ	4

#define IER_RDI		0x01	/* interrupt on received data */
#define IER_THRI	0x02	/* interrupt on transmitter empty */
#define LCR_DLAB	0x80
#define MCR_OUT2	0x08
#define MCR_LOOP	0x10
#define LSR_DR		0x01
#define LSR_THRE	0x20
#define LSR_TEMT	0x40

static bool rx_ready(const struct uart *u)
{
	return u->rx_len > 0;
}

static uint8_t iir(const struct uart *u)
{
	uint8_t fifo = (u->fcr & 1) ? 0xc0 : 0;

	if ((u->ier & IER_RDI) && rx_ready(u))
		return fifo | 0x04;
	if ((u->ier & IER_THRI) && u->thre_pending)
		return fifo | 0x02;
	return fifo | 0x01;
}

/*
 * On a PC the UART's interrupt reaches the PIC only through MCR.OUT2, and
 * not at all in loopback. Linux sets OUT2 when it opens the port; before
 * that it probes the chip (loopback, IER patterns, FIFO clears, RX reads),
 * so console input handed over then would be eaten by the probe.
 */
static bool irq_connected(const struct uart *u)
{
	return (u->mcr & MCR_OUT2) && !(u->mcr & MCR_LOOP);
}

static void update_irq(struct devices *d)
{
	devices_set_irq(d, UART_IRQ, irq_connected(&d->uart) && !(iir(&d->uart) & 1));
}

static void rx_push(struct uart *u, uint8_t c)
{
	if (u->rx_len == UART_RX_SIZE)
		return;
	u->rx[(u->rx_head + u->rx_len++) % UART_RX_SIZE] = c;
}

static uint8_t rx_pop(struct uart *u)
{
	uint8_t c;

	if (!u->rx_len)
		return 0;
	c = u->rx[u->rx_head];
	u->rx_head = (u->rx_head + 1) % UART_RX_SIZE;
	u->rx_len--;
	return c;
}

static void transmit(struct uart *u, uint8_t c)
{
	if (u->mcr & MCR_LOOP) {
		rx_push(u, c);
	} else {
		fputc(c, u->out);
		if (c == '\n')
			fflush(u->out);
		u->bytes_out++;
	}
	u->thre_pending = true;
}

/* In loopback, the modem inputs are the modem outputs, as the chip wires them. */
static uint8_t msr(const struct uart *u)
{
	uint8_t m = u->mcr;

	if (!(u->mcr & MCR_LOOP))
		return 0xb0;	/* DCD, DSR, CTS: a terminal is always there */
	return ((m & 2) << 3) | ((m & 1) << 5) | ((m & 4) << 4) | ((m & 8) << 4);
}

static void uart_write(struct uart *u, int reg, uint8_t v)
{
	switch (reg) {
	case 0:
		if (u->lcr & LCR_DLAB)
			u->dll = v;
		else
			transmit(u, v);
		break;
	case 1:
		if (u->lcr & LCR_DLAB) {
			u->dlm = v;
		} else {
			/* Enabling THRI with the transmitter empty interrupts at once. */
			if ((v & IER_THRI) && !(u->ier & IER_THRI))
				u->thre_pending = true;
			u->ier = v & 0x0f;
		}
		break;
	case 2:
		u->fcr = v & 0xc9;
		if (v & 2) {
			u->rx_len = 0;
			u->rx_head = 0;
		}
		break;
	case 3: u->lcr = v; break;
	case 4: u->mcr = v & 0x1f; break;
	case 7: u->scr = v; break;
	}
}

static uint8_t uart_read(struct uart *u, int reg)
{
	uint8_t v;

	switch (reg) {
	case 0:
		return (u->lcr & LCR_DLAB) ? u->dll : rx_pop(u);
	case 1:
		return (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
	case 2:
		v = iir(u);
		if ((v & 0x0f) == 0x02)
			u->thre_pending = false;	/* reading IIR acknowledges THRE */
		return v;
	case 3: return u->lcr;
	case 4: return u->mcr;
	case 5: return LSR_THRE | LSR_TEMT | (rx_ready(u) ? LSR_DR : 0);
	case 6: return msr(u);
	default: return u->scr;
	}
}

bool uart_io(struct devices *d, uint16_t port, bool out, uint8_t *val)
{
	if (port < UART_BASE || port > UART_BASE + 7)
		return false;
	if (out)
		uart_write(&d->uart, port - UART_BASE, *val);
	else
		*val = uart_read(&d->uart, port - UART_BASE);
	update_irq(d);
	return true;
}

bool uart_listening(const struct devices *d)
{
	return (d->uart.ier & IER_RDI) && irq_connected(&d->uart);
}

void devices_uart_input(struct devices *d, const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		rx_push(&d->uart, buf[i]);
	update_irq(d);
}
