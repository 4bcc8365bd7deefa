# linux-smp-pipe: a token passed over pipes between two processes pinned to different
# CPUs, one such pair per two CPUs (run it with --vcpus): every hand-over wakes a task on
# another CPU. Each pair does n round trips; the checksum is linux-pipe's for the same n.
# The guest is the test machine's own Debian kernel with a busybox initramfs
# (boot/linux/); /init reads kvmlab.run and the parameters from its command line.
kernel = boot/vmlinuz
initrd = boot/linux-initrd.cpio
mem    = 256
phase  = guest
all    = no
append = console=ttyS0 quiet panic=-1 acpi=off tsc=reliable kvmlab.run=spipe
param n = 10000 1 100000000 round trips per pair
