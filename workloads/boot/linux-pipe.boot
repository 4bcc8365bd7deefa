# linux-pipe: a token passed back and forth between two processes over pipes: context switches.
# The guest is the test machine's own Debian kernel with a busybox initramfs
# (boot/linux/); /init reads kvmlab.run and the parameters from its command line.
kernel = boot/vmlinuz
initrd = boot/linux-initrd.cpio
mem    = 256
phase  = guest
all    = no
append = console=ttyS0 quiet panic=-1 acpi=off tsc=reliable kvmlab.run=pipe
param n = 10000 1 100000000 round trips
