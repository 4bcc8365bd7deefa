/* SPDX-License-Identifier: GPL-2.0 */
/* Boot protocols (boot.c): Multiboot v1 and the Linux 64-bit boot protocol. */
#ifndef KVMLAB_BOOT_H
#define KVMLAB_BOOT_H

struct vm;
struct image;

/* 0 when path holds a Multiboot kernel or a bzImage (a message otherwise). */
int boot_check_kernel(const char *path);
/* Put a Multiboot kernel or a Linux bzImage (and initrd) into the VM, CPU state included. */
int boot_load(struct vm *vm, const struct image *img);

#endif
