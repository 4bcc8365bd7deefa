# linux-boot: boot to the guest's init (a busybox shell script), from the first instruction.
# The guest is the test machine's own Debian kernel with a busybox initramfs
# (boot/linux/); /init reads kvmlab.run and the parameters from its command line.
kernel = boot/vmlinuz
initrd = boot/linux-initrd.cpio
mem    = 256
phase  = boot
all    = no
append = console=ttyS0 quiet panic=-1 acpi=off tsc=reliable kvmlab.run=boot

