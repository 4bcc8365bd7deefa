"""Debian's QEMU, unmodified, on every hypervisor: SeaBIOS starts in real
mode, runs its option ROMs (kvmvapic, multiboot) and boots a Multiboot
kernel of ours, which reports through the serial port and exits through
isa-debug-exit. One test-machine boot runs QEMU under all six hypervisors
(testmachine/vmm loads each in turn and points /dev/kvm at it)."""
import os
import re

from conftest import ALL_HVS, KVMLAB, TOP, assert_dmesg_clean, run

# Linux under QEMU takes about a minute per hypervisor here: `make test` boots it under Linux
# KVM's two modes and a slice of kvmlab's, `make test-qemu` (KVMLAB_QEMU_ALL=1) under every one.
KVMLAB_HVS = [hv for hv in ALL_HVS if hv.startswith("kvmlab-")]
LINUX_HVS = (ALL_HVS if os.environ.get("KVMLAB_QEMU_ALL")
             else ["kvm-shadow", "kvm-npt", "kvmlab-cached", "kvmlab-npt"])

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
        if hv.startswith("kvmlab-"):
            # vmm prints the module's counters before it unloads it.
            assert re.search(r"kvmlab qemu: %s, QEMU status 1; counters.*\s+exits +[1-9]" % hv,
                             part), part[-2000:]
    assert_dmesg_clean(tmp_path)
    log = (tmp_path / ".tm" / "dmesg.txt").read_text()
    kvmlab_runs = sum(hv.startswith("kvmlab-") for hv in ALL_HVS)
    assert log.count("kvmlab: unloaded, page accounting back to zero") == kvmlab_runs, log[-3000:]


def test_qemu_command_checks_its_arguments(tmp_path):
    r = run([KVMLAB, "--results", tmp_path, "qemu", "--hv", "kvmlab-bogus", "--", "-m", "64"])
    assert r.returncode == 2 and "--hv is one of" in r.stderr
    r = run([KVMLAB, "--results", tmp_path, "qemu", "--hv", "kvmlab-npt", "--", "-kernel",
             tmp_path / "none"])
    assert r.returncode == 2 and "-kernel: no file" in r.stderr
    r = run([KVMLAB, "--results", tmp_path, "qemu", "--hv", "kvmlab-npt"])
    assert r.returncode == 2 and "no QEMU arguments" in r.stderr
    for args in (["--vcpus", "2", "--", "-m", "64"], ["--", "-smp", "cpus=2", "-m", "64"]):
        r = run([KVMLAB, "--results", tmp_path, "qemu", "--hv", "kvmlab-cached"] + args)
        assert r.returncode == 2 and "needs an in-kernel local APIC" in r.stderr, r.stderr


LINUX = """hv=$1
rm -f /tmp/in /tmp/out; mkfifo /tmp/in
# Type when the shell is there: a PC's UART drops what arrives while Linux probes it.
( while ! grep -q 'shell ready' /tmp/out 2>/dev/null; do sleep 1; done; sleep 2
  printf 'echo QEMU-GUEST $(uname -r) cpus=$(grep -c ^processor /proc/cpuinfo); exit 0\\n'
  sleep 120 ) > /tmp/in &
timeout 300 sh bin/vmm $hv -machine pc -m 256 -nographic -no-reboot -nic none -vga none \\
    -device isa-debug-exit,iobase=0xf4,iosize=4 -kernel input/vmlinuz \\
    -initrd input/linux-initrd.cpio -append "console=ttyS0 quiet" < /tmp/in > /tmp/out 2>&1
echo "== $hv status $?"
grep -a 'QEMU-GUEST [0-9]' /tmp/out
kill $! 2>/dev/null
"""


def test_qemu_boots_debian_linux_to_a_shell(tmp_path):
    """SeaBIOS, then the test machine's own Debian kernel and the busybox
    initramfs through QEMU's -kernel/-initrd; a command typed at the shell
    runs and the guest powers off through isa-debug-exit."""
    layer = TOP / "build" / "testmachine" / "qemu-layer.cpio"
    r = run(["make", "-s", "-C", TOP / "testmachine", f"BUILD={TOP / 'build'}", "qemu-layer"])
    assert r.returncode == 0, r.stderr
    script = tmp_path / "linux.sh"
    script.write_text(LINUX)
    boot = TOP / "build" / "workloads" / "boot"
    r = run([TOP / "testmachine" / "run", "--results", tmp_path / "r", "--timeout", 2400,
             "--mem", 3072, "--layer", layer, "--add", boot / "vmlinuz",
             "--add", boot / "linux-initrd.cpio", "--add", script, "--",
             "sh", "-c", " ".join(f"sh input/linux.sh {hv};" for hv in LINUX_HVS)], timeout=2500)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    lines = set()
    for hv in LINUX_HVS:
        part = r.stdout[r.stdout.index(f"== {hv} status"):]
        assert part.startswith(f"== {hv} status 1"), r.stdout[-3000:]
        line = re.search(r"QEMU-GUEST [0-9][^\r\n]*", part)
        assert line, part[:500]
        lines.add(line.group(0).strip())
    assert len(lines) == 1 and "cpus=1" in lines.pop()
    assert_dmesg_clean(tmp_path / "r")


# QEMU's own live migration between two QEMUs on one kvmlab module (issue 15: it
# drives KVM_MEM_LOG_DIRTY_PAGES, KVM_GET_DIRTY_LOG and KVM_CLEAR_DIRTY_LOG on every
# slot), and its VGA refresh on the same dirty log. The Multiboot kernel switches
# QEMU's Bochs VBE adapter to 1024x768x32 (kvmlab.vbe), waits, then paints a block:
# the first screendump is a full redraw after the mode change, the second shows the
# block only if the log reported its pages. The guest is migrated after that and
# finishes at the destination. `make test` migrates under kvmlab-cached and kvmlab-npt,
# `make test-qemu` under all four strategies.
QEMU_MIGRATE = r"""m=$1
insmod kmod/kvmlab.ko mmu=$m || exit 3
rm -f /dev/kvm /tmp/*.in /tmp/*.out /tmp/*.ppm /tmp/mig.sock
mknod /dev/kvm c $(tr : ' ' < /sys/class/misc/kvmlab/dev)
mkfifo /tmp/a.in /tmp/b.in
wait_for() { i=0; while ! grep -q "$2" $1 2>/dev/null; do i=$((i+1)); [ $i -gt 1800 ] && return 1; sleep 0.1; done; }
qemu() { n=$1; shift
  /usr/bin/qemu-system-x86_64 -accel kvm -machine pc -m 64 -display none -vga std -no-reboot \
    -nic none -device isa-debug-exit,iobase=0xf4,iosize=4 -kernel input/multiboot-hello.elf \
    -append 'kvmlab.ticks=4000 kvmlab.apic_ticks=20 kvmlab.vbe=1500' \
    -serial file:/tmp/$n.out -monitor stdio "$@" < /tmp/$n.in > /tmp/$n.mon 2>&1; echo $? > /tmp/$n.rc; }
qemu b -incoming unix:/tmp/mig.sock & pb=$!; exec 5> /tmp/b.in
qemu a & pa=$!; exec 4> /tmp/a.in
wait_for /tmp/a.out 'vbe: mode set' && sleep 1 && echo 'screendump /tmp/s1.ppm' >&4
wait_for /tmp/a.out 'vbe: drawn' && echo 'screendump /tmp/s2.ppm' >&4
sleep 1; echo 'migrate unix:/tmp/mig.sock' >&4; echo 'info migrate' >&4
wait_for /tmp/b.rc . ; echo quit >&4; exec 4>&- 5>&-
wait $pa $pb
echo "== $m: a: $(cat /tmp/a.out | tr '\n' '|')"
echo "== $m: b: $(cat /tmp/b.out | tr '\n' '|') status $(cat /tmp/b.rc)"
grep -a 'Migration status\|total time\|downtime' /tmp/a.mon | tr -d '\r' | sed "s/^/== $m: /"
grep -a -i 'error\|fail' /tmp/a.mon /tmp/b.mon | tr -d '\r' | sed "s/^/== $m: /"
for s in s1 s2; do cp /tmp/$s.ppm results/$m-$s.ppm 2>/dev/null; done
rmmod kvmlab
"""


def read_ppm(path):
    data = path.read_bytes()
    head = data.split(b"\n", 3)
    assert head[0] == b"P6" and head[2] == b"255", head[:3]
    width, height = map(int, head[1].split())
    return width, height, head[3]


def test_qemu_migrates_between_two_qemus_and_redraws_vga_from_the_dirty_log(tmp_path):
    layer = TOP / "build" / "testmachine" / "qemu-layer.cpio"
    r = run(["make", "-s", "-C", TOP / "testmachine", f"BUILD={TOP / 'build'}", "qemu-layer"])
    assert r.returncode == 0, r.stderr
    script = tmp_path / "mig.sh"
    script.write_text(QEMU_MIGRATE)
    strategies = [hv[len("kvmlab-"):] for hv in KVMLAB_HVS
                  if os.environ.get("KVMLAB_QEMU_ALL") or hv in ("kvmlab-cached", "kvmlab-npt")]
    r = run([TOP / "testmachine" / "run", "--results", tmp_path / "r", "--timeout", 1500,
             "--mem", 3072, "--layer", layer, "--add", script,
             "--add", TOP / "build" / "workloads" / "boot" / "multiboot-hello.elf", "--",
             "sh", "-c", " ".join(f"sh input/mig.sh {m};" for m in strategies)], timeout=1600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    out = r.stdout
    for m in strategies:
        part = "\n".join(l for l in out.splitlines() if l.startswith(f"== {m}: "))
        a = re.search(rf"== {m}: a: (.*)", part).group(1)
        b = re.search(rf"== {m}: b: (.*)", part).group(1)
        # The guest began at the source, was stopped after it drew, and ended at the
        # destination: the destination printed its last lines only, with no failure.
        assert "vbe: drawn" in a and "0 failures" not in a, (m, a)
        assert "multiboot-hello: 0 failures" in b and b.endswith("status 1"), (m, b)
        assert "Migration status: completed" in part, (m, part)
        w, h, px = read_ppm(tmp_path / "r" / f"{m}-s1.ppm")
        assert (w, h) == (1024, 768) and px[:3] == b"\0\0\0", m
        w, h, px = read_ppm(tmp_path / "r" / f"{m}-s2.ppm")
        assert px[:3] == px[(31 * 1024 + 63) * 3:(31 * 1024 + 63) * 3 + 3] == b"\0\xc0\xff", m
        assert px[32 * 1024 * 3:32 * 1024 * 3 + 3] == b"\0\0\0", m
    assert_dmesg_clean(tmp_path / "r")
