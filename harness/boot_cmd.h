/* SPDX-License-Identifier: GPL-2.0 */
#ifndef KVMLAB_BOOT_CMD_H
#define KVMLAB_BOOT_CMD_H

/* kvmlab boot (cmd_boot.c): boot a kernel file with the device model. */
int cmd_boot(int argc, char **argv);
/* 0 when path holds a Multiboot kernel or a bzImage (boot.c). */
int boot_check_kernel(const char *path);

#endif
