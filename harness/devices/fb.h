/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A linear framebuffer (`--fb mmio|dirty`): 1024x768, 32-bit xRGB, at
 * FB_GPA, announced to the guest in its boot information (workloads), the
 * Multiboot information, or the Linux zero page's screen_info (a VESA
 * linear framebuffer: vesafb and fbcon draw the console on it).
 *
 * Two backings, the comparison the paper draws:
 *   mmio   no memory behind it: every guest load and store is an MMIO exit
 *          that this device applies to its own buffer (KVM in 2007);
 *   dirty  plain guest memory in a slot of its own with dirty logging; each
 *          refresh reads the log and redraws only the lines of dirty pages.
 * A refresh thread copies what the guest drew to the screen image at
 * --fb-fps; --fb-snapshot writes the screen as a PNG (libpng) at the end.
 */
#ifndef KVMLAB_FB_H
#define KVMLAB_FB_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define FB_GPA		0xe0000000ULL	/* where Bochs' VBE puts its LFB */
#define FB_WIDTH	1024
#define FB_HEIGHT	768
#define FB_BPP		32
#define FB_PITCH	(FB_WIDTH * 4)
#define FB_BYTES	((uint64_t)FB_PITCH * FB_HEIGHT)
#define FB_SLOT		1

enum fb_mode { FB_NONE, FB_MMIO, FB_DIRTY };

struct kc_vm;

struct fb {
	enum fb_mode mode;
	uint8_t *pixels;	/* what the guest drew: the device's buffer, or guest RAM */
	uint8_t *screen;	/* what is shown: copied from pixels at each refresh */
	uint64_t *bitmap;	/* dirty mode: the log of the slot */
	int vm_fd;
	unsigned int fps;
	pthread_t thread;
	pthread_mutex_t lock;	/* a refresh and the final one do not overlap */
	volatile int stop;
	bool running;
	/* counters, over the whole run */
	uint64_t refreshes, dirty_pages, lines_redrawn, mmio_writes, mmio_reads;
	int error;
};

/* "mmio", "dirty" -> the mode; -1 for anything else. */
int fb_parse_mode(const char *s);
/* Make the framebuffer of a VM whose RAM is set up: a slot (dirty) or none (mmio). */
int fb_setup(struct fb *fb, struct kc_vm *vm, enum fb_mode mode, unsigned int fps);
/* An MMIO access: true when it was the framebuffer's (mmio mode). */
bool fb_mmio(struct fb *fb, uint64_t gpa, bool write, uint8_t *data, int len);
int fb_start(struct fb *fb);
/* Stop refreshing, refresh a last time; then the screen is final. */
void fb_stop(struct fb *fb);
int fb_snapshot(const struct fb *fb, const char *path);
void fb_free(struct fb *fb);

#endif
