// SPDX-License-Identifier: GPL-2.0
/* The linear framebuffer (fb.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <png.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include "../lib/kvmclient.h"
#include "../lib/util.h"
#include "fb.h"

#define FB_PAGES	(FB_BYTES / 4096)

int fb_parse_mode(const char *s)
{
	return !strcmp(s, "mmio") ? FB_MMIO : !strcmp(s, "dirty") ? FB_DIRTY : -1;
}

int fb_setup(struct fb *fb, struct kc_vm *vm, enum fb_mode mode, unsigned int fps)
{
	memset(fb, 0, sizeof(*fb));
	fb->mode = mode;
	fb->fps = fps ? fps : 30;
	fb->vm_fd = vm->fd;
	pthread_mutex_init(&fb->lock, NULL);
	if (vm->ram_gpa + vm->mem_bytes > FB_GPA)
		return err("a framebuffer at 0x%llx needs less than %llu MiB of guest RAM",
			   FB_GPA, FB_GPA >> 20);
	fb->pixels = mmap(NULL, FB_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);
	fb->screen = calloc(1, FB_BYTES);
	fb->bitmap = calloc(FB_PAGES / 64 + 1, 8);
	if (fb->pixels == MAP_FAILED || !fb->screen || !fb->bitmap) {
		fb->pixels = NULL;
		return err("out of memory for the framebuffer");
	}
	if (mode == FB_DIRTY && kc_set_memslot(vm->fd, FB_SLOT, KVM_MEM_LOG_DIRTY_PAGES, FB_GPA,
					       FB_BYTES, fb->pixels))
		return err_errno("cannot map the framebuffer's memory with dirty logging");
	return 0;
}

bool fb_mmio(struct fb *fb, uint64_t gpa, bool write, uint8_t *data, int len)
{
	uint64_t off = gpa - FB_GPA;

	if (fb->mode != FB_MMIO || gpa < FB_GPA || off + (uint64_t)len > FB_BYTES || len > 8)
		return false;
	if (write) {
		memcpy(fb->pixels + off, data, (size_t)len);
		fb->mmio_writes++;
	} else {
		memcpy(data, fb->pixels + off, (size_t)len);
		fb->mmio_reads++;
	}
	return true;
}

/*
 * MMIO: the device saw every store, the screen is the buffer. Dirty: the
 * pages the log reports, redrawn as the lines they cover.
 */
static int refresh(struct fb *fb)
{
	int rc = 0;

	pthread_mutex_lock(&fb->lock);
	if (fb->mode == FB_MMIO) {
		memcpy(fb->screen, fb->pixels, FB_BYTES);
	} else if (kc_get_dirty_log(fb->vm_fd, FB_SLOT, fb->bitmap)) {
		rc = -1;
	} else {
		int last_line = -1;

		for (uint64_t p = 0; p < FB_PAGES; p++) {
			uint64_t first, end;

			if (!(fb->bitmap[p / 64] >> (p % 64) & 1))
				continue;
			fb->dirty_pages++;
			first = p * 4096 / FB_PITCH;
			end = ((p + 1) * 4096 - 1) / FB_PITCH;
			for (uint64_t y = first; y <= end && y < FB_HEIGHT; y++) {
				if ((int)y == last_line)
					continue;
				memcpy(fb->screen + y * FB_PITCH, fb->pixels + y * FB_PITCH, FB_PITCH);
				fb->lines_redrawn++;
				last_line = (int)y;
			}
		}
	}
	fb->refreshes++;
	pthread_mutex_unlock(&fb->lock);
	return rc;
}

static void *refresh_thread(void *arg)
{
	struct fb *fb = arg;
	uint64_t period = 1000000000ULL / fb->fps;

	while (!fb->stop) {
		struct timespec ts = { (time_t)(period / 1000000000ULL),
				       (long)(period % 1000000000ULL) };

		nanosleep(&ts, NULL);
		if (refresh(fb)) {
			fb->error = errno;
			break;
		}
	}
	return NULL;
}

int fb_start(struct fb *fb)
{
	if (fb->mode == FB_NONE)
		return 0;
	if (start_helper_thread(&fb->thread, refresh_thread, fb))
		return err_errno("cannot start the framebuffer's refresh");
	fb->running = true;
	return 0;
}

void fb_stop(struct fb *fb)
{
	if (!fb->running)
		return;
	fb->stop = 1;
	pthread_join(fb->thread, NULL);
	fb->running = false;
	if (refresh(fb) && !fb->error)
		fb->error = errno;
}

int fb_snapshot(const struct fb *fb, const char *path)
{
	FILE *f = fopen(path, "wb");
	png_structp png;
	png_infop info;
	uint8_t *row = malloc(FB_WIDTH * 3);

	if (!f || !row) {
		free(row);
		if (f)
			fclose(f);
		return err_errno("cannot write %s", path);
	}
	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	info = png ? png_create_info_struct(png) : NULL;
	if (!info || setjmp(png_jmpbuf(png))) {
		png_destroy_write_struct(&png, &info);
		fclose(f);
		free(row);
		return err("libpng failed writing %s", path);
	}
	png_init_io(png, f);
	png_set_IHDR(png, info, FB_WIDTH, FB_HEIGHT, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
		     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	for (int y = 0; y < FB_HEIGHT; y++) {
		const uint8_t *src = fb->screen + (size_t)y * FB_PITCH;

		for (int x = 0; x < FB_WIDTH; x++) {	/* xRGB in memory: B, G, R, x */
			row[x * 3 + 0] = src[x * 4 + 2];
			row[x * 3 + 1] = src[x * 4 + 1];
			row[x * 3 + 2] = src[x * 4 + 0];
		}
		png_write_row(png, row);
	}
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	free(row);
	return fclose(f) ? err_errno("cannot write %s", path) : 0;
}

void fb_free(struct fb *fb)
{
	if (fb->pixels)
		munmap(fb->pixels, FB_BYTES);
	free(fb->screen);
	free(fb->bitmap);
	fb->pixels = fb->screen = NULL;
	fb->bitmap = NULL;
}
