"""Debian's QEMU, unmodified, on every hypervisor: SeaBIOS starts in real
mode, runs its option ROMs (kvmvapic, multiboot) and boots a Multiboot
kernel of ours, which reports through the serial port and exits through
isa-debug-exit. One test-machine boot runs QEMU under all six hypervisors
(testmachine/vmm loads each in turn and points /dev/kvm at it)."""
import re

from conftest import ALL_HVS, KVMLAB, TOP, assert_dmesg_clean, run

QEMU_ARGS = ("-machine pc -m 64 -nographic -no-reboot -nic none -vga none "
             "-device isa-debug-exit,iobase=0xf4,iosize=4 -kernel input/multiboot-hello.elf")


def test_qemu_boots_seabios_and_a_multiboot_kernel_on_every_hypervisor(tmp_path):
    layer = TOP / "build" / "testmachine" / "qemu-layer.cpio"
    r = run(["make", "-s", "-C", TOP / "testmachine", f"BUILD={TOP / 'build'}", "qemu-layer"])
    assert r.returncode == 0, r.stderr
    script = "".join(f"echo '== {hv}'; timeout 120 sh bin/vmm {hv} {QEMU_ARGS} < /dev/null; "
                     f"echo \"== {hv} status $?\"; " for hv in ALL_HVS)
    r = run([TOP / "testmachine" / "run", "--results", tmp_path, "--timeout", 900, "--mem", 3072,
             "--layer", layer, "--add", TOP / "build" / "workloads" / "boot" / "multiboot-hello.elf",
             "--", "sh", "-c", script], timeout=1000)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    out = r.stdout
    for hv in ALL_HVS:
        part = out[out.index(f"== {hv}\n"):out.index(f"== {hv} status")]
        # isa-debug-exit: QEMU exits with (value << 1) | 1; the kernel writes 0.
        assert f"== {hv} status 1" in out, part[-2000:]
        assert "SeaBIOS" in part, part[-2000:]
        assert "multiboot-hello: 0 failures, checksum 0x802e007b4c2e1b3" in part, part[-2000:]
        assert "PASS PIT interrupts arrive through the PIC and wake HLT" in part
        assert "PASS local APIC timer interrupts arrive, EOI works" in part
    assert_dmesg_clean(tmp_path)


def test_qemu_command_checks_its_arguments(tmp_path):
    r = run([KVMLAB, "--results", tmp_path, "qemu", "--hv", "kvmlab-bogus", "--", "-m", "64"])
    assert r.returncode == 2 and "--hv is one of" in r.stderr
    r = run([KVMLAB, "--results", tmp_path, "qemu", "--hv", "kvmlab-npt", "--", "-kernel",
             tmp_path / "none"])
    assert r.returncode == 2 and "-kernel: no file" in r.stderr
    r = run([KVMLAB, "--results", tmp_path, "qemu", "--hv", "kvmlab-npt"])
    assert r.returncode == 2 and "no QEMU arguments" in r.stderr
