// SPDX-License-Identifier: GPL-2.0
/*
 * multiboot-hello: a Multiboot kernel that checks what the boot loader and
 * the devices give it, in 32-bit protected mode with paging off — the state
 * Multiboot hands over, which the shadow strategies run on their physical-
 * mode tables (kmod/mmu/phys.c).
 *
 *   1. the Multiboot information: magic, memory sizes, memory map, command
 *      line, module;
 *   2. the PIC and PIT: `ticks` timer interrupts at 1 kHz, HLT between them;
 *   3. the local APIC timer: `apic_ticks` periodic interrupts, with EOI;
 *   4. optionally, `flood` bytes of console output as fast as it can;
 *   5. optionally (`nointr=1`), a halt with interrupts off, which nothing
 *      can end: the harness must see that and stop.
 *
 * Every line goes out on the UART; the result is the status written to
 * port 0xf4 (0 = every check passed). Parameters come on the command line
 * as kvmlab.NAME=VALUE.
 */
#include <stdint.h>
#include <kvmlab/guest_abi.h>

#define COM1		0x3f8
#define PIT_HZ		1193182
#define TIMER_HZ	1000
#define LAPIC		0xfee00000U
#define VEC_PIT		32
#define VEC_UART	36
#define VEC_SPURIOUS	39
#define VEC_LAPIC	64
#define VEC_APIC_SPUR	255

struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
	uint32_t syms[4], mmap_length, mmap_addr;
	uint32_t drives_length, drives_addr, config_table, boot_loader_name, apm_table;
	uint32_t vbe[4];
	uint64_t fb_addr;
	uint32_t fb_pitch, fb_width, fb_height;
	uint8_t fb_bpp, fb_type, fb_color[6];
} __attribute__((packed));

struct mb_module {
	uint32_t start, end, string, reserved;
};

static volatile uint32_t pit_ticks, apic_ticks, spurious;
static uint32_t failures;
static uint64_t checksum = 14695981039346656037ULL;

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" :: "a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" :: "a"(v), "Nd"(port)); }
static inline uint32_t inl(uint16_t port) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint64_t rdtsc(void) { uint32_t lo, hi; __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi)); return lo | (uint64_t)hi << 32; }
static inline void lapic_write(uint32_t reg, uint32_t v) { *(volatile uint32_t *)(LAPIC + reg) = v; }
static inline uint32_t lapic_read(uint32_t reg) { return *(volatile uint32_t *)(LAPIC + reg); }

static void mix(uint64_t v)
{
	checksum = (checksum ^ v) * 1099511628211ULL;
}

static void putc(char c)
{
	while (!(inb(COM1 + 5) & 0x20))
		;
	outb(COM1, (uint8_t)c);
}

static void puts(const char *s)
{
	while (*s)
		putc(*s++);
}

static void putu(uint64_t v)
{
	char buf[24];
	int n = 0;

	do
		buf[n++] = (char)('0' + v % 10);
	while ((v /= 10));
	while (n)
		putc(buf[--n]);
}

static void puthex(uint64_t v)
{
	puts("0x");
	for (int s = 60; s >= 0; s -= 4)
		if (v >> s || s == 0)
			putc("0123456789abcdef"[(v >> s) & 15]);
}

static void check(int ok, const char *what)
{
	puts(ok ? "PASS " : "FAIL ");
	puts(what);
	putc('\n');
	failures += !ok;
}

static void exit_status(uint8_t status)
{
	outb(0xf4, status);
}

/* "kvmlab.NAME=VALUE" on the command line, or def. */
static uint32_t param(const char *cmdline, const char *name, uint32_t def)
{
	for (const char *p = cmdline; p && *p; p++) {
		const char *k = "kvmlab.", *n = name, *q = p;
		uint32_t v = 0;

		while (*k && *q == *k)
			k++, q++;
		while (!*k && *n && *q == *n)
			n++, q++;
		if (*k || *n || *q != '=' || (p != cmdline && p[-1] != ' '))
			continue;
		for (q++; *q >= '0' && *q <= '9'; q++)
			v = v * 10 + (uint32_t)(*q - '0');
		return v;
	}
	return def;
}

/* ---- interrupts ---- */

struct idt_entry {
	uint16_t off_lo, sel;
	uint8_t zero, type;
	uint16_t off_hi;
} __attribute__((packed));

static struct idt_entry idt[256];

#define STUB(v) extern void isr_##v(void);
STUB(0) STUB(1) STUB(2) STUB(3) STUB(4) STUB(5) STUB(6) STUB(7) STUB(8) STUB(9)
STUB(10) STUB(11) STUB(12) STUB(13) STUB(14) STUB(15) STUB(16) STUB(17) STUB(18) STUB(19)
STUB(32) STUB(36) STUB(39) STUB(64) STUB(255)

static void set_gate(int vec, void (*fn)(void))
{
	uint32_t a = (uint32_t)fn;
	uint16_t cs;

	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	idt[vec] = (struct idt_entry) { (uint16_t)a, cs, 0, 0x8e, (uint16_t)(a >> 16) };
}

static void setup_idt(void)
{
	void (*exc[20])(void) = {
		isr_0, isr_1, isr_2, isr_3, isr_4, isr_5, isr_6, isr_7, isr_8, isr_9,
		isr_10, isr_11, isr_12, isr_13, isr_14, isr_15, isr_16, isr_17, isr_18, isr_19,
	};
	struct { uint16_t limit; uint32_t base; } __attribute__((packed)) idtr = {
		sizeof(idt) - 1, (uint32_t)idt,
	};

	for (int v = 0; v < 20; v++)
		set_gate(v, exc[v]);
	set_gate(VEC_PIT, isr_32);
	set_gate(VEC_UART, isr_36);
	set_gate(VEC_SPURIOUS, isr_39);
	set_gate(VEC_LAPIC, isr_64);
	set_gate(VEC_APIC_SPUR, isr_255);
	__asm__ volatile("lidt %0" :: "m"(idtr));
}

void isr(uint32_t vec, uint32_t err);
void isr(uint32_t vec, uint32_t err)
{
	switch (vec) {
	case VEC_PIT:
		pit_ticks++;
		outb(0x20, 0x20);
		return;
	case VEC_LAPIC:
		apic_ticks++;
		lapic_write(0xb0, 0);
		return;
	case VEC_SPURIOUS: case VEC_APIC_SPUR: case VEC_UART:
		spurious++;
		return;
	}
	puts("FAIL unexpected exception ");
	putu(vec);
	puts(" error ");
	puthex(err);
	putc('\n');
	exit_status(3);
	for (;;)
		__asm__ volatile("cli; hlt");
}

static void setup_pic(void)
{
	outb(0x20, 0x11); outb(0xa0, 0x11);	/* ICW1: edge, cascade, ICW4 */
	outb(0x21, 0x20); outb(0xa1, 0x28);	/* ICW2: vectors 32.. and 40.. */
	outb(0x21, 0x04); outb(0xa1, 0x02);	/* ICW3: slave on IRQ 2 */
	outb(0x21, 0x01); outb(0xa1, 0x01);	/* ICW4: 8086 mode */
	outb(0x21, 0xfe); outb(0xa1, 0xff);	/* only IRQ 0 */
}

/* Sleep in HLT until *counter reaches n; interrupts on only while waiting. */
static void wait_for(volatile uint32_t *counter, uint32_t n)
{
	while (*counter < n)
		__asm__ volatile("sti; hlt; cli" ::: "memory");
}

static void pit_test(uint32_t n)
{
	uint16_t divisor = PIT_HZ / TIMER_HZ;

	setup_pic();
	outb(0x43, 0x34);			/* channel 0, lo/hi, mode 2 */
	outb(0x40, divisor & 0xff);
	outb(0x40, divisor >> 8);
	wait_for(&pit_ticks, n);
	outb(0x21, 0xff);			/* masked again */
	check(pit_ticks >= n, "PIT interrupts arrive through the PIC and wake HLT");
	mix(n);
}

static void apic_test(uint32_t n)
{
	lapic_write(0xf0, 0x100 | VEC_APIC_SPUR);	/* software enable */
	lapic_write(0x3e0, 0xb);			/* divide by 1 */
	lapic_write(0x320, (1U << 17) | VEC_LAPIC);	/* periodic */
	lapic_write(0x380, 1000000);			/* 1 ms on a 1 GHz bus */
	check(lapic_read(0x380) == 1000000, "local APIC registers read back");
	wait_for(&apic_ticks, n);
	lapic_write(0x320, 1U << 16);			/* masked */
	lapic_write(0x380, 0);
	check(apic_ticks >= n, "local APIC timer interrupts arrive, EOI works");
	mix(n);
}

static void flood(uint32_t bytes)
{
	for (uint32_t i = 0; i < bytes; i++) {
		char c = (i % 64 == 63) ? '\n' : (char)('a' + i % 26);

		putc(c);
		mix((uint8_t)c);
	}
}

static void check_multiboot(uint32_t magic, const struct mb_info *mbi)
{
	const char *cmdline = (mbi->flags & 4) ? (const char *)mbi->cmdline : "";

	check(magic == 0x2badb002, "loader magic in EAX");
	puts("loaded at ");
	putu((uint32_t)(uintptr_t)check_multiboot);
	puts(", information at ");
	putu((uint32_t)(uintptr_t)mbi);
	puts("\ncommand line: ");
	puts(cmdline);
	puts("\nmemory: lower ");
	putu(mbi->mem_lower);
	puts(" KiB, upper ");
	putu(mbi->mem_upper);
	puts(" KiB\n");
	check((mbi->flags & 1) && mbi->mem_lower == 639 && mbi->mem_upper >= 1024,
	      "memory sizes");
	check((mbi->flags & 64) && mbi->mmap_length >= 24, "memory map present");
	if ((mbi->flags & 8) && mbi->mods_count) {
		const struct mb_module *m = (const void *)mbi->mods_addr;

		puts("module: ");
		puts((const char *)m->string);
		puts(", ");
		putu(m->end - m->start);
		puts(" bytes at ");
		puthex(m->start);
		putc('\n');
		check((m->start & 0xfff) == 0 && m->end > m->start, "module page-aligned");
	}
}

/*
 * A framebuffer in the information (flags bit 12, `kvmlab boot --fb`): say
 * so, and paint a 64x32 block of 0x00c0ff at its top-left corner, which
 * the framebuffer test finds in the harness's snapshot.
 */
static void check_framebuffer(const struct mb_info *mbi)
{
	if (!(mbi->flags & (1U << 12)))
		return;
	puts("framebuffer: ");
	putu(mbi->fb_width);
	putc('x');
	putu(mbi->fb_height);
	putc('x');
	putu(mbi->fb_bpp);
	puts(" at ");
	puthex((uint32_t)mbi->fb_addr);
	putc('\n');
	check(mbi->fb_type == 1 && mbi->fb_bpp == 32 && mbi->fb_pitch >= mbi->fb_width * 4 &&
	      !(mbi->fb_addr >> 32), "framebuffer: direct RGB, 32 bits, below 4 GiB");
	for (uint32_t y = 0; y < 32 && y < mbi->fb_height; y++)
		for (uint32_t x = 0; x < 64 && x < mbi->fb_width; x++)
			*(volatile uint32_t *)(uintptr_t)(mbi->fb_addr + y * mbi->fb_pitch + x * 4) =
				0x00c0ff;
}

/*
 * kvmlab.vbe=N, under QEMU's -vga std (a Bochs VBE adapter, PCI 00:02.0):
 * switch to 1024x768x32 with its linear framebuffer, let N PIT ticks pass
 * (the host takes a screendump: a mode change redraws everything), paint
 * the same block as above, say so, and let N more ticks pass. QEMU redraws
 * the block in its next screendump only if the dirty log of its VGA memory
 * (KVM_GET_DIRTY_LOG on that slot) reported the pages.
 */
static void vbe_write(uint16_t index, uint16_t value)
{
	outw(0x1ce, index);
	outw(0x1cf, value);
}

static void vbe_test(uint32_t ticks)
{
	uint32_t lfb;

	outl(0xcf8, 0x80000000U | 2U << 11 | 0x10);	/* BAR 0 of 00:02.0 */
	lfb = inl(0xcfc) & ~0xfU;
	vbe_write(4, 0);				/* disable, then set the mode */
	vbe_write(1, 1024);
	vbe_write(2, 768);
	vbe_write(3, 32);
	vbe_write(4, 0x41);				/* enabled, linear framebuffer */
	puts("vbe: mode set, framebuffer at ");
	puthex(lfb);
	putc('\n');
	pit_test(ticks);
	for (uint32_t y = 0; y < 32; y++)
		for (uint32_t x = 0; x < 64; x++)
			*(volatile uint32_t *)(uintptr_t)(lfb + y * 4096 + x * 4) = 0x00c0ff;
	puts("vbe: drawn\n");
	pit_ticks = 0;
	pit_test(ticks);
	pit_ticks = 0;
}

static void mark(uint32_t what, uint64_t tsc, uint64_t ops, uint64_t sum)
{
	uint32_t args[6] = { (uint32_t)tsc, (uint32_t)(tsc >> 32), (uint32_t)ops,
			     (uint32_t)(ops >> 32), (uint32_t)sum, (uint32_t)(sum >> 32) };

	for (int i = 0; i < (what == KL_MARK_BEGIN ? 2 : 6); i++)
		outl(KL_PORT_MARK_ARG, args[i]);
	outl(KL_PORT_MARK, what);
}

void kmain(uint32_t magic, const struct mb_info *mbi);
void kmain(uint32_t magic, const struct mb_info *mbi)
{
	const char *cmdline = (mbi->flags & 4) ? (const char *)mbi->cmdline : "";
	uint32_t ticks = param(cmdline, "ticks", 50), apic = param(cmdline, "apic_ticks", 20);
	uint32_t bytes = param(cmdline, "flood", 0);

	puts("multiboot-hello: hello from 32-bit protected mode\n");
	check_multiboot(magic, mbi);
	check_framebuffer(mbi);
	setup_idt();
	if (param(cmdline, "nointr", 0)) {
		puts("halting with interrupts off: only the harness can end this\n");
		for (;;)
			__asm__ volatile("cli; hlt");
	}
	if (param(cmdline, "vbe", 0))
		vbe_test(param(cmdline, "vbe", 0));
	mark(KL_MARK_BEGIN, rdtsc(), 0, 0);
	pit_test(ticks);
	if (apic)
		apic_test(apic);
	flood(bytes);
	/*
	 * ops counts the interrupts taken, not the ones waited for: a tick
	 * that comes due while the last one is handled is delivered at the
	 * IRET, before the PIC is masked, so 51 PIT ticks is as right as 50.
	 * IF is 0 from here to the mark, so the count matches the
	 * hypervisor's irq_injections over the measured phase exactly.
	 */
	mark(KL_MARK_END, rdtsc(), pit_ticks + apic_ticks + spurious + bytes, checksum);
	puts("\nmultiboot-hello: ");
	putu(failures);
	puts(" failures, checksum ");
	puthex(checksum);
	putc('\n');
	exit_status(failures ? 1 : (uint8_t)param(cmdline, "status", 0));
}
