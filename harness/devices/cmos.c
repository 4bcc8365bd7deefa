// SPDX-License-Identifier: GPL-2.0
/*
 * CMOS RTC at 0x70/0x71: the host's UTC time in BCD, 24-hour mode, never
 * "update in progress". No alarm, periodic or update interrupts (IRQ 8):
 * the guests we boot read the time once. The NMI-mask bit of the index
 * port is ignored. Other CMOS bytes read as zero.
 */
#define _POSIX_C_SOURCE 200809L
#include <time.h>
#include "devices.h"

static uint8_t bcd(int v)
{
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

static uint8_t cmos_read(uint8_t index)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	switch (index) {
	case 0x00: return bcd(tm.tm_sec);
	case 0x02: return bcd(tm.tm_min);
	case 0x04: return bcd(tm.tm_hour);
	case 0x06: return bcd(tm.tm_wday + 1);
	case 0x07: return bcd(tm.tm_mday);
	case 0x08: return bcd(tm.tm_mon + 1);
	case 0x09: return bcd(tm.tm_year % 100);
	case 0x32: return bcd(tm.tm_year / 100 + 19);	/* century */
	case 0x0a: return 0x26;		/* 32.768 kHz base, UIP clear */
	case 0x0b: return 0x02;		/* 24-hour, BCD, no interrupts */
	case 0x0d: return 0x80;		/* battery good */
	default: return 0;
	}
}

bool cmos_io(struct devices *d, uint16_t port, bool out, uint8_t *val)
{
	if (port == 0x70) {
		if (out)
			d->cmos_index = *val & 0x7f;
		else
			*val = 0xff;
		return true;
	}
	if (port == 0x71) {
		if (!out)
			*val = cmos_read(d->cmos_index);
		return true;	/* writes (alarm setup, NVRAM) are ignored */
	}
	return false;
}
