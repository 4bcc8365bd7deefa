// SPDX-License-Identifier: GPL-2.0
/*
 * The line to the harness (see guest_abi.h) plus the few libc functions a
 * freestanding kernel needs. Text goes out a whole line per message: one
 * port I/O exit per line instead of one per character.
 */
#include <stdarg.h>
#include "rt.h"

static struct kl_msg msg;	/* identity-mapped: its address is its gpa */
static char line[KL_MSG_TEXT_LEN];
static size_t line_len;

static u64 phase_tsc;

/* One message buffer for every CPU: a sender holds it until its port write is done. */
static volatile int msg_lock;

static void send3(u32 type, u32 status, u64 a, u64 b, u64 c, const char *text)
{
	size_t n = text ? strlen(text) : 0;

	while (__atomic_exchange_n(&msg_lock, 1, __ATOMIC_ACQUIRE))
		asm volatile("pause");

	if (n >= KL_MSG_TEXT_LEN)
		n = KL_MSG_TEXT_LEN - 1;
	msg.type = type;
	msg.status = status;
	msg.a = a;
	msg.b = b;
	msg.c = c;
	memcpy(msg.text, text ? text : "", n);
	msg.text[n] = 0;
	outl(KL_PORT_MSG, (u32)(ulong)&msg);
	__atomic_store_n(&msg_lock, 0, __ATOMIC_RELEASE);
}

static void send(u32 type, u32 status, u64 a, u64 b, const char *text)
{
	send3(type, status, a, b, 0, text);
}

void *memset(void *d, int c, size_t n)
{
	u8 *p = d;

	while (n--)
		*p++ = (u8)c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	u8 *dp = d;
	const u8 *sp = s;

	while (n--)
		*dp++ = *sp++;
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const u8 *x = a, *y = b;

	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

/* splitmix64: a seeded stream, the same on every hypervisor. */
u64 kl_rand64(u64 *state)
{
	u64 z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* FNV-1a over the 8 bytes of v: cheap, order-sensitive, the same everywhere. */
u64 kl_hash(u64 h, u64 v)
{
	for (int i = 0; i < 8; i++) {
		h ^= (v >> (8 * i)) & 0xff;
		h *= 0x100000001b3ULL;
	}
	return h;
}

struct out {
	char *buf;
	size_t size, len;
};

static void put(struct out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void put_num(struct out *o, unsigned long long v, int base, int width,
		    char pad, bool neg)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (neg)
		tmp[n++] = '-';
	while (width-- > n)
		put(o, pad);
	while (n)
		put(o, tmp[--n]);
}

/* printf subset: %[0][width][l|ll|z](d|u|x|s|c|p|%). */
static int kl_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = { buf, size, 0 };

	for (; *fmt; fmt++) {
		int width = 0, lng = 0;
		char pad = ' ';

		if (*fmt != '%') {
			put(&o, *fmt);
			continue;
		}
		fmt++;
		if (*fmt == '0')
			pad = '0';
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l' || *fmt == 'z') {
			lng++;
			fmt++;
		}
		/* One 'l' or 'z' is a long: 64 bits only in the 64-bit runtime. */
		lng = lng >= 2 || (lng == 1 && sizeof(long) == 8);
		switch (*fmt) {
		case 'd': {
			long long v = lng ? va_arg(ap, long long) : va_arg(ap, int);

			put_num(&o, v < 0 ? -(unsigned long long)v : (unsigned long long)v,
				10, width, pad, v < 0);
			break;
		}
		case 'u':
		case 'x': {
			unsigned long long v = lng ? va_arg(ap, unsigned long long)
						   : va_arg(ap, unsigned int);

			put_num(&o, v, *fmt == 'x' ? 16 : 10, width, pad, false);
			break;
		}
		case 'p':
			put(&o, '0');
			put(&o, 'x');
			put_num(&o, (ulong)va_arg(ap, void *), 16, width, pad, false);
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);

			while (s && *s)
				put(&o, *s++);
			break;
		}
		case 'c':
			put(&o, (char)va_arg(ap, int));
			break;
		default:
			put(&o, '%');
			if (*fmt)
				put(&o, *fmt);
			else
				fmt--;
		}
	}
	if (size)
		buf[o.len < size ? o.len : size - 1] = 0;
	return (int)o.len;
}

int kl_snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = kl_vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

static void flush_line(void)
{
	line[line_len] = 0;
	send(KL_MSG_NOTE, 0, 0, 0, line);
	line_len = 0;
}

void kl_printf(const char *fmt, ...)
{
	char tmp[256];
	va_list ap;

	va_start(ap, fmt);
	kl_vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	for (char *p = tmp; *p; p++) {
		if (*p == '\n' || line_len == sizeof(line) - 1)
			flush_line();
		if (*p != '\n')
			line[line_len++] = *p;
	}
}

/* Guest cycles exclude the two port writes that bracket the phase. */
void kl_phase_begin(void)
{
	send(KL_MSG_PHASE_BEGIN, 0, 0, 0, NULL);
	phase_tsc = rdtsc();
}

void kl_phase_end(u64 ops, u64 checksum)
{
	u64 cycles = rdtsc() - phase_tsc;

	send3(KL_MSG_PHASE_END, 0, ops, checksum, cycles, NULL);
}

void kl_check(const char *name, bool pass, const char *fmt, ...)
{
	char detail[KL_MSG_TEXT_LEN];
	char text[KL_MSG_TEXT_LEN];
	va_list ap;

	va_start(ap, fmt);
	kl_vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	/* "name: detail" — the harness splits at the first ": ". */
	kl_snprintf(text, sizeof(text), "%s: %s", name, detail);
	send(KL_MSG_CHECK, pass ? 0 : 1, 0, 0, text);
}

void kl_exit(int status)
{
	if (line_len)
		flush_line();
	send(KL_MSG_EXIT, (u32)status, 0, 0, NULL);
	for (;;)
		asm volatile("cli; hlt");
}

void kl_panic(const char *fmt, ...)
{
	char tmp[KL_MSG_TEXT_LEN], text[KL_MSG_TEXT_LEN];
	va_list ap;

	va_start(ap, fmt);
	kl_vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (line_len)
		flush_line();
	kl_snprintf(text, sizeof(text), "guest panic: %s", tmp);
	send(KL_MSG_NOTE, 0, 0, 0, text);
	kl_exit(255);
}
