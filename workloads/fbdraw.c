// SPDX-License-Identifier: GPL-2.0
/*
 * fbdraw: draw frames on the linear framebuffer (`kvmlab run --fb
 * mmio|dirty`): each frame erases the last position of a rectangle, draws
 * it a little further on, and writes the frame number in large digits in
 * the corner. One operation is one frame.
 *
 * What it shows: the price of a framebuffer. In mmio mode every 32-bit
 * store is an exit (about 2 x w x h + 1200 a frame); in dirty mode the
 * stores go to RAM and the harness pays instead at each refresh, reading
 * the dirty log; the guest's exits are the first writes to each page after
 * a refresh (one line of 1024 pixels is one page). The screens must be
 * equal: the harness's PNG snapshots of both modes are compared.
 */
#include "rt.h"

KL_NOT_A_BENCHMARK("needs a framebuffer: kvmlab run --fb mmio|dirty");

KL_PARAM(p_frames, "frames", 20, 1, 100000, "frames drawn");
KL_PARAM(p_w, "w", 96, 1, 512, "rectangle width, pixels");
KL_PARAM(p_h, "h", 64, 1, 512, "rectangle height, pixels");

#define FB_VA		(KL_KERNEL_AREA_VA + 0x80000000ULL)
#define DIGIT_SCALE	4

/* A 3x5 font of the digits, a row per 3 bits. */
static const u8 digits[10][5] = {
	{ 7, 5, 5, 5, 7 }, { 2, 6, 2, 2, 7 }, { 7, 1, 7, 4, 7 }, { 7, 1, 7, 1, 7 },
	{ 5, 5, 7, 1, 1 }, { 7, 4, 7, 1, 7 }, { 7, 4, 7, 5, 7 }, { 7, 1, 1, 1, 1 },
	{ 7, 5, 7, 5, 7 }, { 7, 5, 7, 1, 7 },
};

static u32 *fb;
static u32 pitch, width, height;
static u64 stores, sum;

static void fill(u32 x, u32 y, u32 w, u32 h, u32 color)
{
	for (u32 j = y; j < y + h && j < height; j++)
		for (u32 i = x; i < x + w && i < width; i++) {
			fb[j * (pitch / 4) + i] = color;
			stores++;
		}
	sum = kl_hash(kl_hash(kl_hash(sum, x | (u64)y << 32), w | (u64)h << 32), color);
}

static void number(u32 x, u32 y, u64 n)
{
	for (int d = 4; d >= 0; d--, n /= 10)
		for (int row = 0; row < 5; row++)
			for (int col = 0; col < 3; col++)
				fill(x + (u32)(d * 4 + col) * DIGIT_SCALE, y + (u32)row * DIGIT_SCALE,
				     DIGIT_SCALE, DIGIT_SCALE,
				     digits[n % 10][row] >> (2 - col) & 1 ? 0xffffff : 0x202020);
}

int workload_main(void)
{
	u32 w = (u32)p_w.value, h = (u32)p_h.value, px = 0, py = 0;
	u64 bytes;

	if (!kl_boot->fb_gpa || kl_boot->fb_bpp != 32) {
		kl_check("fbdraw_has_framebuffer", false, "run it with --fb mmio or --fb dirty");
		return 1;
	}
	width = kl_boot->fb_width;
	height = kl_boot->fb_height;
	pitch = kl_boot->fb_pitch;
	bytes = (u64)pitch * height;
	for (u64 off = 0; off < bytes; off += PAGE_SIZE)
		pt_map(kl_kernel_as.root, FB_VA + off, kl_boot->fb_gpa + off, PTE_P | PTE_W | PTE_NX);
	fb = (u32 *)FB_VA;
	kl_phase_begin();
	for (u64 f = 0; f < p_frames.value; f++) {
		u32 x = (u32)(100 + f * 13 % (width - w - 100)), y = (u32)(40 + f * 7 % (height - h - 40));

		if (f)
			fill(px, py, w, h, 0);
		fill(x, y, w, h, (u32)(0x3060c0 + f * 0x0a0503) & 0xffffff);
		number(8, 8, f + 1);
		px = x;
		py = y;
	}
	kl_phase_end(p_frames.value, sum);
	kl_check("fbdraw_stores", true, "%llu", (unsigned long long)stores);
	return 0;
}
