# linux-smp-forkexec: N fork + exec /bin/true + wait in all, one loop per online CPU at
# once (run it with --vcpus). The checksum is linux-forkexec's for the same n.
# The guest is the test machine's own Debian kernel with a busybox initramfs
# (boot/linux/); /init reads kvmlab.run and the parameters from its command line.
kernel = boot/vmlinuz
initrd = boot/linux-initrd.cpio
mem    = 256
phase  = guest
all    = no
append = console=ttyS0 quiet panic=-1 acpi=off tsc=reliable kvmlab.run=pforkexec
param n = 1000 1 1000000 fork+exec+wait cycles in all
