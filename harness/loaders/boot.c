// SPDX-License-Identifier: GPL-2.0
/*
 * Boot protocols: put a kernel file into guest memory and the vCPU into
 * the state its protocol promises.
 *
 *  - Multiboot v1 (as QEMU's -kernel loads it): an ELF32/ELF64 kernel, or
 *    any file with the header's address fields. 32-bit protected mode,
 *    paging off, EAX = 0x2BADB002, EBX = the information structure (memory
 *    sizes and map, command line, one module, loader name).
 *  - Linux x86 boot protocol, 64-bit entry (Documentation/arch/x86/boot.rst):
 *    a bzImage's protected-mode part at its preferred address, the zero page
 *    (boot_params: the setup header, command line, initrd, e820 map), long
 *    mode on identity-mapped page tables, RSI = the zero page.
 *
 * Guest memory below 640 KiB holds what we build (fixed addresses below);
 * the e820 map and the Multiboot memory map say the same.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include "boot.h"
#include "mptable.h"
#include "../lib/util.h"
#include <kvmlab/x86.h>
#include "../run/vm_priv.h"

#define BOOT_GDT	0x1000ULL
#define ZERO_PAGE	0x2000ULL
#define CMDLINE		0x3000ULL
#define CMDLINE_MAX	2048
#define PML4		0x4000ULL	/* then the PDPT and 4 PDs: 0x5000-0x9fff */
#define LOW_RAM_END	0x9fc00ULL	/* the top of conventional memory */
#define HIGH_RAM	0x100000ULL

#define MB_MAGIC	0x1badb002U
#define MB_BOOT_MAGIC	0x2badb002U
#define MB_ADDR_FIELDS	(1U << 16)
#define MB_UNSUPPORTED	(~(0x7U | MB_ADDR_FIELDS))	/* bits 0-2 and 16 are all we know */


/* Find file in guest memory's bounds: [gpa, gpa + len) inside RAM. */
static bool fits(const struct vm *vm, uint64_t gpa, uint64_t len)
{
	return gpa <= vm->kc.mem_bytes && len <= vm->kc.mem_bytes - gpa;
}

static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put_u64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static void put_u16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static uint16_t get_u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t get_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get_u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/*
 * The guest's memory map, as both protocols give it: conventional memory,
 * the BIOS area (reserved), and RAM from 1 MiB. Entry i in e820 form:
 * base, length (u64 each), type (u32: 1 RAM, 2 reserved).
 */
#define RAM_MAP_ENTRIES	3

static void put_ram_map_entry(const struct vm *vm, int i, uint8_t *e)
{
	const uint64_t map[RAM_MAP_ENTRIES][3] = {
		{ 0, LOW_RAM_END, 1 }, { 0xf0000, 0x10000, 2 },
		{ HIGH_RAM, vm->kc.mem_bytes - HIGH_RAM, 1 },
	};

	put_u64(e, map[i][0]);
	put_u64(e + 8, map[i][1]);
	put_u32(e + 16, (uint32_t)map[i][2]);
}

/* Flat segments in a GDT at BOOT_GDT: code at `code_sel`, data right after it. */
static int set_segments(struct vm *vm, struct kvm_sregs *sr, uint16_t code_sel, bool long64)
{
	if (ioctl(vm->vcpu->fd, KVM_GET_SREGS, sr))
		return err_errno("KVM_GET_SREGS");
	kc_flat_segments(sr, vm->kc.mem + BOOT_GDT, BOOT_GDT, code_sel, long64);
	sr->tr = (struct kvm_segment) { .type = 11, .present = 1, .limit = 0xffff };
	sr->ldt = (struct kvm_segment) { .type = 2, .present = 1, .limit = 0xffff };
	sr->idt.base = 0;
	sr->idt.limit = 0;
	return 0;
}

static int set_cpu(struct vm *vm, const struct kvm_sregs *sr, const struct kvm_regs *regs)
{
	if (ioctl(vm->vcpu->fd, KVM_SET_SREGS, sr))
		return err_errno("KVM_SET_SREGS");
	if (ioctl(vm->vcpu->fd, KVM_SET_REGS, regs))
		return err_errno("KVM_SET_REGS");
	return 0;
}

/*
 * Multiboot kernels load where their headers say, as with QEMU's -kernel,
 * below 1 MiB too — anywhere in RAM but the GDT page the harness builds
 * (BOOT_GDT) and the hole the memory map reserves below 1 MiB (the VGA and
 * BIOS area, LOW_RAM_END to HIGH_RAM).
 */
static int mb_place_error(struct vm *vm, const char *path, uint64_t pa, uint64_t len)
{
	if (!fits(vm, pa, len))
		return err("%s: 0x%llx+0x%llx is outside the guest's RAM", path,
			   (unsigned long long)pa, (unsigned long long)len);
	if (pa < BOOT_GDT + 0x1000 && pa + len > BOOT_GDT)
		return err("%s: 0x%llx+0x%llx overlaps the page the harness keeps for its GDT "
			   "(0x%llx)", path, (unsigned long long)pa, (unsigned long long)len,
			   (unsigned long long)BOOT_GDT);
	if (pa < HIGH_RAM && pa + len > LOW_RAM_END)
		return err("%s: 0x%llx+0x%llx overlaps the VGA/BIOS hole (0x%llx-0x%llx), "
			   "which is not RAM in the guest's memory map", path,
			   (unsigned long long)pa, (unsigned long long)len,
			   (unsigned long long)LOW_RAM_END, (unsigned long long)HIGH_RAM);
	return 0;
}

/* ---- Multiboot v1 ---- */

static int mb_load_elf(struct vm *vm, const char *path, const uint8_t *f, size_t size,
		       uint64_t *entry, uint64_t *end)
{
	bool is64 = f[EI_CLASS] == ELFCLASS64;
	const Elf32_Ehdr *e32 = (const void *)f;
	const Elf64_Ehdr *e64 = (const void *)f;
	uint64_t phoff = is64 ? e64->e_phoff : e32->e_phoff;
	int phnum = is64 ? e64->e_phnum : e32->e_phnum;
	size_t phsize = is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);

	if (size < sizeof(Elf64_Ehdr) || (f[EI_CLASS] != ELFCLASS32 && !is64) ||
	    phoff + (uint64_t)phnum * phsize > size)
		return err("%s: malformed ELF headers", path);
	*entry = is64 ? e64->e_entry : e32->e_entry;
	*end = 0;
	for (int i = 0; i < phnum; i++) {
		const uint8_t *ph = f + phoff + i * phsize;
		uint64_t type, off, pa, filesz, memsz;

		if (is64) {
			const Elf64_Phdr *p = (const void *)ph;

			type = p->p_type; off = p->p_offset; pa = p->p_paddr;
			filesz = p->p_filesz; memsz = p->p_memsz;
		} else {
			const Elf32_Phdr *p = (const void *)ph;

			type = p->p_type; off = p->p_offset; pa = p->p_paddr;
			filesz = p->p_filesz; memsz = p->p_memsz;
		}
		if (type != PT_LOAD)
			continue;
		if (off + filesz > size || filesz > memsz)
			return err("%s: segment %d lies outside the file", path, i);
		if (mb_place_error(vm, path, pa, memsz))
			return -1;
		memcpy(vm->kc.mem + pa, f + off, filesz);
		memset(vm->kc.mem + pa + filesz, 0, memsz - filesz);
		if (pa + memsz > *end)
			*end = pa + memsz;
	}
	if (!*end)
		return err("%s: no loadable segment", path);
	return 0;
}

/* The a.out kludge: where to put the file is in the header itself. */
static int mb_load_fields(struct vm *vm, const char *path, const uint8_t *f, size_t size,
			  const uint8_t *hdr, uint64_t *entry, uint64_t *end)
{
	uint32_t header_addr = get_u32(hdr + 12), load_addr = get_u32(hdr + 16);
	uint32_t load_end = get_u32(hdr + 20), bss_end = get_u32(hdr + 24);
	uint64_t hoff = hdr - f, off, len;

	if (header_addr < load_addr || header_addr - load_addr > hoff)
		return err("%s: Multiboot header addresses are inconsistent", path);
	off = hoff - (header_addr - load_addr);
	len = load_end ? (uint64_t)load_end - load_addr : size - off;
	if (load_end && load_end < load_addr)
		return err("%s: Multiboot load_end_addr below load_addr", path);
	if (off + len > size)
		len = size - off;
	*end = bss_end > load_addr + len ? bss_end : load_addr + len;
	if (mb_place_error(vm, path, load_addr, *end - load_addr))
		return -1;
	memcpy(vm->kc.mem + load_addr, f + off, len);
	memset(vm->kc.mem + load_addr + len, 0, *end - load_addr - len);
	*entry = get_u32(hdr + 28);
	return 0;
}

static const uint8_t *mb_header(const uint8_t *f, size_t size)
{
	for (size_t off = 0; off + 32 <= size && off < 8192; off += 4) {
		uint32_t magic = get_u32(f + off), flags = get_u32(f + off + 4);

		if (magic == MB_MAGIC && magic + flags + get_u32(f + off + 8) == 0)
			return f + off;
	}
	return NULL;
}

/* Copy s to gpa (NUL-terminated), return the next free gpa. */
static uint64_t put_string(struct vm *vm, uint64_t gpa, const char *s)
{
	size_t n = strlen(s) + 1;

	memcpy(vm->kc.mem + gpa, s, n);
	return (gpa + n + 7) & ~7ULL;
}

/* The framebuffer fields of the information (flags bit 12): direct RGB, xRGB in memory. */
static void mb_framebuffer(struct vm *vm, uint8_t *m)
{
	static const uint8_t rgb[6] = { 16, 8, 8, 8, 0, 8 };	/* position, size: R, G, B */

	if (vm->fb.mode == FB_NONE)
		return;
	put_u32(m + 88, (uint32_t)FB_GPA);
	put_u32(m + 92, (uint32_t)(FB_GPA >> 32));
	put_u32(m + 96, FB_PITCH);
	put_u32(m + 100, FB_WIDTH);
	put_u32(m + 104, FB_HEIGHT);
	m[108] = FB_BPP;
	m[109] = 1;
	memcpy(m + 110, rgb, sizeof(rgb));
}

static int mb_boot(struct vm *vm, const struct image *img, const char *cmdline,
		   const uint8_t *f, size_t size, const uint8_t *hdr)
{
	uint32_t flags = get_u32(hdr + 4);
	uint64_t entry = 0, end = 0, mbi, at, mod_start = 0, mod_len = 0;
	uint8_t *initrd = NULL, *m;
	struct kvm_sregs sr;
	struct kvm_regs regs = { .rflags = 2, .rax = MB_BOOT_MAGIC };
	int rc;

	if (flags & MB_UNSUPPORTED & 0xffff)
		return err("%s: Multiboot header asks for features we lack (flags 0x%x)",
			   img->kernel, flags);
	rc = (flags & MB_ADDR_FIELDS) ? mb_load_fields(vm, img->kernel, f, size, hdr, &entry, &end)
				      : memcmp(f, ELFMAG, SELFMAG) ?
					err("%s: not ELF, and no Multiboot address fields", img->kernel) :
					mb_load_elf(vm, img->kernel, f, size, &entry, &end);
	if (rc)
		return -1;
	if (entry >= (1ULL << 32) || !fits(vm, entry, 1))
		return err("%s: entry point 0x%llx is not in the guest's RAM", img->kernel,
			   (unsigned long long)entry);
	/* The module and the information go after the kernel, or from 1 MiB on if it is below. */
	at = end < HIGH_RAM ? HIGH_RAM : (end + 0xfff) & ~0xfffULL;
	if (img->initrd[0]) {		/* the one module, page-aligned */
		initrd = (uint8_t *)read_file(img->initrd, &mod_len);
		if (!initrd)
			return -1;
		if (!fits(vm, at, mod_len + 0x10000)) {
			free(initrd);
			return err("%s does not fit in the guest's RAM after the kernel", img->initrd);
		}
		memcpy(vm->kc.mem + at, initrd, mod_len);
		free(initrd);
		mod_start = at;
		at = (at + mod_len + 0xfff) & ~0xfffULL;
	}
	if (!fits(vm, at, 0x2000 + strlen(cmdline) + strlen(img->initrd)))
		return err("the guest's RAM is too small for the Multiboot information");
	/* The information structure, then what it points to. */
	mbi = at;
	m = vm->kc.mem + mbi;
	memset(m, 0, 128);
	at += 128;
	put_u32(m + 0, (1U << 0) | (1U << 2) | (1U << 3) | (1U << 6) | (1U << 9) |
		    (vm->fb.mode != FB_NONE ? 1U << 12 : 0));
	mb_framebuffer(vm, m);
	put_u32(m + 4, LOW_RAM_END >> 10);
	put_u32(m + 8, (uint32_t)((vm->kc.mem_bytes - HIGH_RAM) >> 10));
	put_u32(m + 16, (uint32_t)at);
	at = put_string(vm, at, cmdline);
	put_u32(m + 20, img->initrd[0] ? 1 : 0);
	put_u32(m + 24, (uint32_t)at);
	if (img->initrd[0]) {
		uint8_t *mod = vm->kc.mem + at;

		put_u32(mod + 0, (uint32_t)mod_start);
		put_u32(mod + 4, (uint32_t)(mod_start + mod_len));
		put_u32(mod + 12, 0);
		at += 16;
		put_u32(mod + 8, (uint32_t)at);
		at = put_string(vm, at, img->initrd);
	}
	/* Memory map: each entry is its size (20), then an e820 entry. */
	put_u32(m + 44, RAM_MAP_ENTRIES * 24);
	put_u32(m + 48, (uint32_t)at);
	for (int i = 0; i < RAM_MAP_ENTRIES; i++, at += 24) {
		put_u32(vm->kc.mem + at, 20);
		put_ram_map_entry(vm, i, vm->kc.mem + at + 4);
	}
	put_u32(m + 64, (uint32_t)at);
	put_string(vm, at, "kvmlab");
	regs.rbx = mbi;
	regs.rip = entry;
	if (set_segments(vm, &sr, 8, false))
		return -1;
	sr.cr0 = KL_CR0_PE | KL_CR0_ET;
	sr.cr3 = sr.cr4 = sr.efer = 0;
	return set_cpu(vm, &sr, &regs);
}

/* ---- Linux boot protocol ---- */

#define HDR_SETUP_SECTS		0x1f1
#define HDR_MAGIC		0x202
#define HDR_VERSION		0x206
#define HDR_TYPE_OF_LOADER	0x210
#define HDR_LOADFLAGS		0x211
#define HDR_RAMDISK_IMAGE	0x218
#define HDR_RAMDISK_SIZE	0x21c
#define HDR_CMD_LINE_PTR	0x228
#define HDR_INITRD_ADDR_MAX	0x22c
#define HDR_XLOADFLAGS		0x236
#define HDR_CMDLINE_SIZE	0x238
#define HDR_PREF_ADDRESS	0x258
#define HDR_INIT_SIZE		0x260
#define BP_EXT_RAMDISK_IMAGE	0x0c0
#define BP_EXT_RAMDISK_SIZE	0x0c4
#define BP_E820_ENTRIES		0x1e8
#define BP_E820_TABLE		0x2d0
#define XLF_KERNEL_64		(1U << 0)

static bool is_bzimage(const uint8_t *f, size_t size)
{
	return size > 0x1000 && !memcmp(f + HDR_MAGIC, "HdrS", 4);
}

/*
 * screen_info at the start of the zero page: a VESA linear framebuffer, as
 * a BIOS loader reports after setting a VBE mode (lfb_size in 64 KiB).
 */
#define VIDEO_TYPE_VLFB	0x23

static void linux_screen_info(struct vm *vm, uint8_t *bp)
{
	if (vm->fb.mode == FB_NONE)
		return;
	bp[0x06] = 3;				/* orig_video_mode */
	bp[0x07] = FB_WIDTH / 8;		/* orig_video_cols */
	bp[0x0e] = FB_HEIGHT / 16;		/* orig_video_lines */
	bp[0x0f] = VIDEO_TYPE_VLFB;		/* orig_video_isVGA */
	put_u16(bp + 0x10, 16);			/* orig_video_points: font height */
	put_u16(bp + 0x12, FB_WIDTH);
	put_u16(bp + 0x14, FB_HEIGHT);
	put_u16(bp + 0x16, FB_BPP);
	put_u32(bp + 0x18, (uint32_t)FB_GPA);
	put_u32(bp + 0x1c, (uint32_t)(FB_BYTES >> 16));
	put_u16(bp + 0x24, FB_PITCH);
	bp[0x26] = 8; bp[0x27] = 16;		/* red: size, position */
	bp[0x28] = 8; bp[0x29] = 8;		/* green */
	bp[0x2a] = 8; bp[0x2b] = 0;		/* blue */
	bp[0x2c] = 8; bp[0x2d] = 24;		/* reserved */
}

static void e820(struct vm *vm, uint8_t *bp)
{
	bp[BP_E820_ENTRIES] = RAM_MAP_ENTRIES;
	for (int i = 0; i < RAM_MAP_ENTRIES; i++)
		put_ram_map_entry(vm, i, bp + BP_E820_TABLE + 20 * i);
}

static int linux_initrd(struct vm *vm, const struct image *img, uint8_t *bp, uint64_t kernel_end)
{
	size_t len;
	uint8_t *data;
	uint64_t max = get_u32(bp + HDR_INITRD_ADDR_MAX), top = vm->kc.mem_bytes, at;

	if (!img->initrd[0])
		return 0;
	data = (uint8_t *)read_file(img->initrd, &len);
	if (!data)
		return -1;
	if (top > max + 1)
		top = max + 1;
	at = (top - len) & ~0xfffULL;
	if (len > top || at < kernel_end) {
		free(data);
		return err("%s (%zu KiB) does not fit in the guest's RAM above the kernel",
			   img->initrd, len >> 10);
	}
	memcpy(vm->kc.mem + at, data, len);
	free(data);
	put_u32(bp + HDR_RAMDISK_IMAGE, (uint32_t)at);
	put_u32(bp + HDR_RAMDISK_SIZE, (uint32_t)len);
	put_u32(bp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(at >> 32));
	put_u32(bp + BP_EXT_RAMDISK_SIZE, (uint32_t)((uint64_t)len >> 32));
	return 0;
}

static int linux_boot(struct vm *vm, const struct image *img, const char *cmdline,
		      const uint8_t *f, size_t size)
{
	uint16_t version = get_u16(f + HDR_VERSION);
	unsigned int setup_sects = f[HDR_SETUP_SECTS] ? f[HDR_SETUP_SECTS] : 4;
	uint64_t pm_off = (setup_sects + 1) * 512ULL, load, init_size;
	uint8_t *bp = vm->kc.mem + ZERO_PAGE;
	struct kvm_sregs sr;
	struct kvm_regs regs = { .rflags = 2 };
	size_t hdr_end = 0x202 + f[0x201];

	if (version < 0x20c || !(get_u16(f + HDR_XLOADFLAGS) & XLF_KERNEL_64))
		return err("%s: boot protocol %x.%02x has no 64-bit entry point (need 2.12+)",
			   img->kernel, version >> 8, version & 0xff);
	if (pm_off >= size || hdr_end > 0x1000)
		return err("%s: malformed bzImage setup header", img->kernel);
	load = get_u64(f + HDR_PREF_ADDRESS);
	init_size = get_u32(f + HDR_INIT_SIZE);
	if (load < HIGH_RAM || !fits(vm, load, init_size > size - pm_off ? init_size : size - pm_off))
		return err("%s needs %llu MiB of guest memory at 0x%llx; the VM has %llu MiB",
			   img->kernel, (unsigned long long)(init_size >> 20),
			   (unsigned long long)load, (unsigned long long)(vm->kc.mem_bytes >> 20));
	if (strlen(cmdline) >= CMDLINE_MAX || strlen(cmdline) >= get_u32(f + HDR_CMDLINE_SIZE))
		return err("the kernel command line is longer than the kernel accepts");
	memcpy(vm->kc.mem + load, f + pm_off, size - pm_off);
	memset(bp, 0, 0x1000);
	memcpy(bp + HDR_SETUP_SECTS, f + HDR_SETUP_SECTS, hdr_end - HDR_SETUP_SECTS);
	bp[HDR_TYPE_OF_LOADER] = 0xff;		/* "undefined" loader */
	bp[HDR_LOADFLAGS] |= 0x01;		/* loaded high */
	strcpy((char *)vm->kc.mem + CMDLINE, cmdline);
	put_u32(bp + HDR_CMD_LINE_PTR, CMDLINE);
	e820(vm, bp);
	linux_screen_info(vm, bp);
	if (linux_initrd(vm, img, bp, load + init_size))
		return -1;
	kc_write_identity_map(vm->kc.mem, PML4, 4ULL << 30);
	if (set_segments(vm, &sr, 0x10, true))
		return -1;
	kc_long_mode_paging(&sr, PML4);
	regs.rip = load + 0x200;		/* startup_64 */
	regs.rsi = ZERO_PAGE;
	return set_cpu(vm, &sr, &regs);
}

/* ---- the real-mode entry: the setup code, with a minimal BIOS (bios.S) ---- */

#define SETUP_SEG	0x9000ULL		/* where a BIOS loader puts the setup code */
#define SETUP_BASE	(SETUP_SEG << 4)
#define SETUP_HEAP_END	0xe000ULL		/* offsets in SETUP_SEG: heap, then the stack */
#define SETUP_CMDLINE	(SETUP_BASE + SETUP_HEAP_END)	/* 0x9e000: below LOW_RAM_END */
#define BIOS_BASE	0xf0000ULL
#define HDR_VID_MODE	0x1fa
#define HDR_HEAP_END_PTR 0x224
#define LF_CAN_USE_HEAP	0x80

extern const uint8_t bios_start[], bios_end[], bios_default[], bios_int10[], bios_int13[];
extern const uint8_t bios_int15[], bios_int16[], bios_int1a[], bios_e820[];

/* The BIOS at 0xf0000, its E820 table, and an IVT pointing at it. */
static void install_bios(struct vm *vm)
{
	static const struct { int vector; const uint8_t *handler; } services[] = {
		{ 0x10, bios_int10 }, { 0x13, bios_int13 }, { 0x15, bios_int15 },
		{ 0x16, bios_int16 }, { 0x1a, bios_int1a },
	};
	uint8_t *bios = vm->kc.mem + BIOS_BASE, *e820 = bios + (bios_e820 - bios_start);

	memcpy(bios, bios_start, bios_end - bios_start);
	put_u32(e820, RAM_MAP_ENTRIES);
	for (int i = 0; i < RAM_MAP_ENTRIES; i++)
		put_ram_map_entry(vm, i, e820 + 4 + 20 * i);
	for (int v = 0; v < 256; v++)	/* segment 0xf000, offset of the handler */
		put_u32(vm->kc.mem + 4 * v, (0xf000U << 16) | (uint32_t)(bios_default - bios_start));
	for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++)
		put_u32(vm->kc.mem + 4 * services[i].vector,
			(0xf000U << 16) | (uint32_t)(services[i].handler - bios_start));
	memset(vm->kc.mem + 0x400, 0, 0x100);	/* an empty BIOS data area */
}

static struct kvm_segment real_segment(uint16_t selector, bool code)
{
	return (struct kvm_segment) {
		.selector = selector, .base = (uint64_t)selector << 4, .limit = 0xffff,
		.type = code ? 11 : 3, .present = 1, .s = 1,
	};
}

/*
 * As a BIOS boot loader does (Documentation/x86/boot.rst): the setup
 * sectors at 0x90000, the protected-mode kernel at 1 MiB, the header told
 * where the heap ends and where the command line and initrd are, then a
 * jump to the setup code in real mode at 0x9020:0 with the stack at the top
 * of the heap. The setup code asks the BIOS for the memory map and the
 * rest, enters protected mode and then the kernel enters long mode itself.
 */
static int linux_boot_real(struct vm *vm, const struct image *img, const char *cmdline,
			   const uint8_t *f, size_t size)
{
	unsigned int setup_sects = f[HDR_SETUP_SECTS] ? f[HDR_SETUP_SECTS] : 4;
	uint64_t pm_off = (setup_sects + 1) * 512ULL, init_size = get_u32(f + HDR_INIT_SIZE);
	uint8_t *bp = vm->kc.mem + SETUP_BASE;
	struct kvm_regs regs = { .rflags = 2, .rsp = SETUP_HEAP_END };
	struct kvm_sregs sr;

	if (get_u16(f + HDR_VERSION) < 0x202 || pm_off >= size || pm_off > SETUP_HEAP_END)
		return err("%s: no real-mode setup code we can start (boot protocol 2.02+)",
			   img->kernel);
	if (!fits(vm, HIGH_RAM, init_size > size - pm_off ? init_size : size - pm_off))
		return err("%s needs %llu MiB of guest memory; the VM has %llu MiB", img->kernel,
			   (unsigned long long)(init_size >> 20),
			   (unsigned long long)(vm->kc.mem_bytes >> 20));
	if (strlen(cmdline) >= CMDLINE_MAX || strlen(cmdline) >= get_u32(f + HDR_CMDLINE_SIZE))
		return err("the kernel command line is longer than the kernel accepts");
	memcpy(bp, f, pm_off);
	memcpy(vm->kc.mem + HIGH_RAM, f + pm_off, size - pm_off);
	bp[HDR_TYPE_OF_LOADER] = 0xff;
	bp[HDR_LOADFLAGS] |= LF_CAN_USE_HEAP;
	put_u16(bp + HDR_VID_MODE, 0xffff);	/* "normal" VGA: ask the BIOS nothing fancy */
	put_u16(bp + HDR_HEAP_END_PTR, SETUP_HEAP_END - 0x200);
	strcpy((char *)vm->kc.mem + SETUP_CMDLINE, cmdline);
	put_u32(bp + HDR_CMD_LINE_PTR, SETUP_CMDLINE);
	if (linux_initrd(vm, img, bp, HIGH_RAM + init_size))
		return -1;
	install_bios(vm);
	if (ioctl(vm->vcpu->fd, KVM_GET_SREGS, &sr))
		return err_errno("KVM_GET_SREGS");
	sr.cs = real_segment(SETUP_SEG + 0x20, true);
	sr.ds = sr.es = sr.fs = sr.gs = sr.ss = real_segment(SETUP_SEG, false);
	sr.cr0 = KL_CR0_ET;
	sr.cr3 = sr.cr4 = sr.efer = 0;
	return set_cpu(vm, &sr, &regs);
}

/* The command line: the workload's own, then its parameters as kvmlab.NAME=VALUE. */
static void build_cmdline(const struct image *img, char *out, size_t size)
{
	size_t len = snprintf(out, size, "%s", img->append);

	for (int i = 0; i < img->nparams && len < size; i++)
		len += snprintf(out + len, size - len, "%skvmlab.%s=%llu", len ? " " : "",
				img->params[i].name, (unsigned long long)img->params[i].value);
}

int boot_check_kernel(const char *path)
{
	size_t size;
	uint8_t *f = (uint8_t *)read_file(path, &size);
	int rc = 0;

	if (!f)
		return -1;
	if (!mb_header(f, size) && !is_bzimage(f, size))
		rc = err("%s is neither a Multiboot kernel nor a Linux bzImage", path);
	free(f);
	return rc;
}

int boot_load(struct vm *vm, const struct image *img)
{
	char cmdline[4096];
	size_t size;
	uint8_t *f = (uint8_t *)read_file(img->kernel, &size);
	const uint8_t *hdr;
	int rc;

	if (!f)
		return -1;
	build_cmdline(img, cmdline, sizeof(cmdline));
	if (img->real_mode_entry && vm->fb.mode != FB_NONE) {
		free(f);
		return err("the framebuffer is announced in the zero page: it needs the 64-bit "
			   "boot entry, not --real-mode-entry (whose setup code probes video itself)");
	}
	rc = set_cpuid(vm, img);
	if (!rc && vm->cfg->vcpus > 1)	/* how the guest finds its CPUs and I/O APIC */
		mptable_write(vm->kc.mem + MPTABLE_GPA, MPTABLE_GPA, vm->cfg->vcpus);
	if (!rc) {
		hdr = mb_header(f, size);
		if (hdr)
			rc = mb_boot(vm, img, cmdline, f, size, hdr);
		else if (is_bzimage(f, size))
			rc = img->real_mode_entry ? linux_boot_real(vm, img, cmdline, f, size) :
						    linux_boot(vm, img, cmdline, f, size);
		else
			rc = err("%s is neither a Multiboot kernel nor a Linux bzImage", img->kernel);
	}
	free(f);
	return rc;
}
