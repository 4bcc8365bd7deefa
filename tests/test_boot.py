"""Real guests: interrupt injection, the device model, Multiboot and Linux
boot (issue 7). Linux KVM runs only in one-CPU test machines (see
testmachine/README.md), which is what these boots are."""
import os
import re
import struct

import pytest

from conftest import ALL_HVS, KVMLAB, TM_RUN, TOP, assert_dmesg_clean, read_csv, run

KVMLAB_HVS = [hv for hv in ALL_HVS if hv.startswith("kvmlab-")]
# Linux from its real-mode entry takes 5 minutes under all six: `make test` boots it under the
# shadow cache, nested paging and Linux KVM's npt; `make test-boot` (KVMLAB_BOOT_ALL=1) under all.
REAL_MODE_HVS = ALL_HVS if os.environ.get("KVMLAB_BOOT_ALL") else \
    ["kvm-npt", "kvmlab-cached", "kvmlab-npt"]
MB_KERNEL = "workloads/boot/multiboot-hello.elf"
LINUX = ["--kernel", "workloads/boot/vmlinuz", "--initrd", "workloads/boot/linux-initrd.cpio"]


def counter(row, name):
    return int(row[name]) if row.get(name) not in (None, "", "n/a") else None


def test_multiboot_hello_under_every_hypervisor(matrix):
    """The Multiboot test kernel (32-bit, paging off) passes its checks
    under all six; the interrupts it took (its ops: at least the 50 PIT and
    20 APIC ticks it waits for, one more when a tick came due during the
    last one's handler) are exactly the interrupts kvmlab injected in its
    measured phase."""
    sums = set()
    for hv in ALL_HVS:
        row = matrix.row(hv, "multiboot-hello")
        assert row["status"] == "ok", (hv, row)
        assert int(row["ops"]) >= 50 + 20
        sums.add(row["checksum"])
        if hv.startswith("kvmlab-"):
            assert counter(row, "irq_injections") == int(row["ops"]), (hv, row)
            assert counter(row, "halt_exits") >= 1, (hv, row)
    assert len(sums) == 1, sums


def tm(cmd, results, timeout=600):
    """One test-machine boot running a shell command; its files come back in results."""
    return run([TM_RUN, "--timeout", str(timeout), "--results", results, "--", "sh", "-c", cmd],
               timeout=timeout + 60)


def test_halt_with_interrupts_off_and_console_flood(tmp_path):
    """A guest that halts with interrupts off ends the run at once with a
    clear error (no hang, no timeout); a guest that floods the UART loses
    none of it. Both under a shadow strategy and Linux KVM."""
    flood = 60000
    cmd = ";".join(
        f"bin/kvmlab boot --hv {hv} --kernel {MB_KERNEL} --mem 16 --timeout 60 "
        f"--append 'kvmlab.nointr=1' > results/nointr-{hv}.out 2> results/nointr-{hv}.err;"
        f"echo $? > results/nointr-{hv}.rc;"
        f"bin/kvmlab boot --hv {hv} --kernel {MB_KERNEL} --mem 16 --timeout 120 "
        f"--append 'kvmlab.ticks=5 kvmlab.apic_ticks=0 kvmlab.flood={flood}' "
        f"> results/flood-{hv}.out 2> results/flood-{hv}.err; echo $? > results/flood-{hv}.rc"
        for hv in ["kvmlab-shadow", "kvm-npt"])
    r = tm(cmd, tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert_dmesg_clean(tmp_path)
    for hv in ["kvmlab-shadow", "kvm-npt"]:
        err = (tmp_path / f"nointr-{hv}.err").read_text()
        assert (tmp_path / f"nointr-{hv}.rc").read_text().strip() == "2", err
        assert "halted with interrupts disabled" in err, err
        out = (tmp_path / f"flood-{hv}.out").read_text()
        assert (tmp_path / f"flood-{hv}.rc").read_text().strip() == "1", out[-500:]
        letters = sum(len(line) for line in out.splitlines() if re.fullmatch(r"[a-z]+", line))
        assert letters == flood - flood // 64, (hv, letters)
        assert "0 failures" in out


def test_exit_port_status_and_boot_errors(tmp_path):
    """The guest's 0xf4 value v becomes exit status 2v+1 (QEMU's
    convention); the initrd reaches a Multiboot kernel as its module; files
    that are not kernels are refused clearly."""
    module = "build/workloads/multiboot-hello.boot"
    r = run([KVMLAB, "boot", "--hv", "kvmlab-vtlb", "--kernel", f"build/{MB_KERNEL}",
             "--initrd", module, "--mem", "16",
             "--append", "kvmlab.ticks=3 kvmlab.apic_ticks=3 kvmlab.status=21",
             "--results", tmp_path], timeout=300)
    assert r.returncode == 43, r.stdout[-2000:] + r.stderr[-2000:]
    assert "multiboot-hello: 0 failures" in r.stdout
    size = (TOP / module).stat().st_size
    assert f"module: input/multiboot-hello.boot, {size} bytes" in r.stdout, r.stdout
    assert "PASS module page-aligned" in r.stdout
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x7fELF not really" * 100)
    assert_dmesg_clean(tmp_path)
    r = run([KVMLAB, "boot", "--hv", "kvmlab-vtlb", "--kernel", junk])
    assert r.returncode == 64 and "neither a Multiboot kernel nor a Linux bzImage" in r.stderr
    r = run([KVMLAB, "boot", "--hv", "kvmlab-vtlb", "--kernel", tmp_path / "missing"])
    assert r.returncode == 64 and "cannot read the kernel" in r.stderr, r.stderr
    r = run([KVMLAB, "boot", "--hv", "nope", "--kernel", junk])
    assert r.returncode == 64 and "unknown hypervisor" in r.stderr, r.stderr
    r = run([KVMLAB, "boot", "--hv", "kvmlab-vtlb", "--kernel", junk, "--vcpus", "9"])
    assert r.returncode == 64 and "boot: --vcpus takes 1..8, not '9'" in r.stderr, r.stderr


def multiboot_elf(paddr):
    """A minimal Multiboot ELF kernel (a HLT loop) whose one segment is at paddr."""
    ehdr = struct.pack("<16sHHIIIIIHHHHHH", b"\x7fELF\x01\x01\x01" + bytes(9), 2, 3, 1,
                       paddr + 12, 52, 0, 0, 52, 32, 1, 0, 0, 0)
    phdr = struct.pack("<IIIIIIII", 1, 0x100, paddr, paddr, 0x100, 0x100, 7, 0x1000)
    magic, flags = 0x1BADB002, 0x3
    body = struct.pack("<III", magic, flags, (-(magic + flags)) & 0xFFFFFFFF) + b"\xf4\xeb\xfd"
    return (ehdr + phdr).ljust(0x100, b"\0") + body.ljust(0x100, b"\0")


def test_multiboot_kernel_loads_below_1mib(tmp_path):
    """As with QEMU's -kernel, a Multiboot kernel loads where its headers say,
    below 1 MiB too: the test kernel linked at 64 KiB boots under every
    kvmlab strategy and Linux KVM, with its information structure at 1 MiB.
    Only the harness's GDT page and the VGA/BIOS hole are refused, clearly."""
    (tmp_path / "gdt.elf").write_bytes(multiboot_elf(0x1000))
    (tmp_path / "hole.elf").write_bytes(multiboot_elf(0xA0000))
    script = (
        "for hv in kvmlab-vtlb kvmlab-shadow kvmlab-cached kvmlab-npt kvm-shadow kvm-npt; do "
        "bin/kvmlab boot --hv $hv --kernel workloads/boot/multiboot-hello-low.elf --mem 16 "
        "--append 'kvmlab.ticks=3 kvmlab.apic_ticks=3' > results/low-$hv.txt 2>&1; "
        "echo $? > results/low-$hv.rc; done; "
        "for k in gdt hole; do bin/kvmlab boot --hv kvmlab-vtlb --kernel input/$k.elf "
        "> results/bad-$k.txt 2>&1; echo $? > results/bad-$k.rc; done")
    r = run([TM_RUN, "--timeout", "300", "--results", tmp_path, "--add", tmp_path / "gdt.elf",
             "--add", tmp_path / "hole.elf", "--", "sh", "-c", script], timeout=330)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    for hv in ["kvmlab-vtlb", "kvmlab-shadow", "kvmlab-cached", "kvmlab-npt", "kvm-shadow",
               "kvm-npt"]:
        out = (tmp_path / f"low-{hv}.txt").read_text()
        assert (tmp_path / f"low-{hv}.rc").read_text().strip() == "1", (hv, out[-1500:])
        assert "multiboot-hello: 0 failures" in out, (hv, out[-1500:])
        loaded = int(re.search(r"loaded at (\d+), information at (\d+)", out).group(1))
        info = int(re.search(r"information at (\d+)", out).group(1))
        assert 0x10000 <= loaded < 0x20000 and info == 0x100000, (hv, loaded, info)
    gdt, hole = (tmp_path / "bad-gdt.txt").read_text(), (tmp_path / "bad-hole.txt").read_text()
    assert "overlaps the page the harness keeps for its GDT (0x1000)" in gdt, gdt
    assert "overlaps the VGA/BIOS hole (0x9fc00-0x100000)" in hole, hole
    assert (tmp_path / "bad-gdt.rc").read_text().strip() != "0"
    assert_dmesg_clean(tmp_path)


def test_linux_boots_from_its_real_mode_entry(tmp_path):
    """The Debian kernel started at its 16-bit setup code, as a BIOS boot
    loader starts it (--real-mode-entry): the setup code asks the harness's
    minimal BIOS for the memory map and prints through its teletype, enters
    protected mode, and the kernel enters long mode and reaches its shell —
    under every kvmlab strategy (real mode as paged real mode, 16-bit code
    decoded) and under Linux KVM (REAL_MODE_HVS)."""
    (tmp_path / "cmds").write_text("echo real-mode-$((6 * 7)); exit 7\n")
    script = (
        "for hv in %s; do bin/kvmlab boot --hv $hv --kernel workloads/boot/vmlinuz "
        "--initrd workloads/boot/linux-initrd.cpio --append console=ttyS0 --mem 512 "
        "--real-mode-entry --timeout 200 < input/cmds > results/rm-$hv.txt 2>&1; "
        "echo $? > results/rm-$hv.rc; done" % " ".join(REAL_MODE_HVS))
    limit = 200 * len(REAL_MODE_HVS) + 150
    r = run([TM_RUN, "--timeout", str(limit), "--results", tmp_path, "--add", tmp_path / "cmds",
             "--", "sh", "-c", script], timeout=limit + 120)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    for hv in REAL_MODE_HVS:
        out = (tmp_path / f"rm-{hv}.txt").read_text()
        assert (tmp_path / f"rm-{hv}.rc").read_text().strip() == "15", (hv, out[-2000:])
        assert "Probing EDD (edd=off to disable)... ok" in out, (hv, out[:2000])
        assert "real-mode-42" in out, (hv, out[-2000:])
    assert_dmesg_clean(tmp_path)


SHELL_INPUT = "kltools forkexec 50\nkltools pipe 500\nkltools memfill 8 2\nexit 5\n"


@pytest.mark.parametrize("hv", ALL_HVS)
def test_linux_reaches_its_shell(hv, tmp_path):
    """The test machine's own kernel boots to a busybox shell under every
    hypervisor; commands typed on the console (standard input) run, and the
    workloads print the same results everywhere."""
    r = run([KVMLAB, "boot", "--hv", hv] + [f"build/{a}" if a.startswith("workloads") else a
                                            for a in LINUX] +
            ["--append", "console=ttyS0 quiet panic=-1 acpi=off tsc=reliable", "--timeout", "400",
             "--results", tmp_path], input=SHELL_INPUT, timeout=600)
    assert r.returncode == 11, r.stdout[-3000:] + r.stderr[-2000:]
    assert "shell ready" in r.stdout
    # The guest kernel writes its messages straight to the UART, so one can
    # land in the middle of a line a program wrote: take them out first.
    console = re.sub(r"\[ *\d+\.\d+\] [^\n]*\n", "", r.stdout)
    results = re.findall(r"^ops=\d+ checksum=\d+", console, re.M)
    assert results == EXPECTED_SHELL_RESULTS, (results, r.stdout[-4000:])
    assert_dmesg_clean(tmp_path)


# What the three commands above print, computed once on the host by the
# same program (kltools is deterministic); every hypervisor must match.
EXPECTED_SHELL_RESULTS = None


@pytest.fixture(scope="module", autouse=True)
def expected_shell_results():
    global EXPECTED_SHELL_RESULTS
    tool = "build/workloads-obj/kltools"
    outs = []
    for args in (["forkexec", "50"], ["pipe", "500"], ["memfill", "8", "2"]):
        p = run([tool] + args)
        assert p.returncode == 0, p.stderr
        outs.append(p.stdout.strip())
    EXPECTED_SHELL_RESULTS = outs


def test_linux_workloads_join_runs_csv(tmp_path):
    """linux-* are workloads like the others: rows in runs.csv, the same
    checksums under kvmlab's and Linux's shadow MMUs, counters that show
    the MMU at work."""
    hvs = ["kvmlab-cached", "kvm-shadow"]
    r = run([KVMLAB, "run", "--hv", ",".join(hvs), "--workload",
             "linux-boot,linux-forkexec,linux-pipe,linux-memfill",
             "--param", "linux-forkexec.n=100", "--param", "linux-pipe.n=1000",
             "--param", "linux-memfill.mib=16", "--param", "linux-memfill.passes=2",
             "--results", tmp_path, "--run-id", "lx"], timeout=1500)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    rows = read_csv(tmp_path / "lx" / "runs.csv")
    by = {(x["hv"], x["workload"]): x for x in rows}
    for w, ops in [("linux-boot", 1), ("linux-forkexec", 100), ("linux-pipe", 1000),
                   ("linux-memfill", 2 * 16 * 256)]:
        a, b = by[(hvs[0], w)], by[(hvs[1], w)]
        assert a["status"] == b["status"] == "ok", (a, b)
        assert int(a["ops"]) == int(b["ops"]) == ops
        assert a["checksum"] == b["checksum"], w
    for hv in hvs:
        memfill = by[(hv, "linux-memfill")]
        # Every page touched is a guest fault the shadow MMU sees and reflects.
        assert counter(memfill, "pf_guest") >= 2 * 16 * 256, memfill
        assert counter(by[(hv, "linux-pipe")], "irq_injections") is not None
    assert_dmesg_clean(tmp_path)


def test_linux_sweep_spec_is_valid(tmp_path):
    """sweeps/linux.sweep (boot workloads in a sweep) plans without a boot."""
    r = run(["build/bin/kvmlab", "sweep-plan", "sweeps/linux.sweep", tmp_path, "--check"])
    assert r.returncode == 0, r.stderr
    assert "40 runs" in r.stderr, r.stderr   # 8 hypervisors x 5
