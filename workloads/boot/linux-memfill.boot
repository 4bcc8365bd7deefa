# linux-memfill: map, touch every page of and unmap an anonymous region: page faults.
# The guest is the test machine's own Debian kernel with a busybox initramfs
# (boot/linux/); /init reads kvmlab.run and the parameters from its command line.
kernel = boot/vmlinuz
initrd = boot/linux-initrd.cpio
mem    = 256
phase  = guest
all    = no
append = console=ttyS0 quiet panic=-1 acpi=off tsc=reliable kvmlab.run=memfill
param mib = 64 1 160 MiB per pass (the guest has 256)
param passes = 4 1 100000 passes
