# multiboot-hello: the project's Multiboot test kernel (boot/multiboot-hello/).
# 32-bit protected mode, paging off; PIC+PIT and local APIC timer interrupts.
kernel = boot/multiboot-hello.elf
mem    = 16
apic   = yes
phase  = guest
param ticks      = 50 1 100000 PIT interrupts to wait for, at 1 kHz
param apic_ticks = 20 0 100000 local APIC timer interrupts to wait for, at 1 kHz
param flood      = 0 0 100000000 bytes of console output, as fast as the guest can
param nointr     = 0 0 1 1: halt with interrupts off instead (only the harness can end it)
param status     = 0 0 255 the exit status to report when every check passes
