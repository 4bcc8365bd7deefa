"""The MMU layer's locking under load: in a two-CPU test machine, four vCPU
threads of one VM fault, flush (INVLPG, CR3 reloads) and take MMIO exits
while another thread maps, deletes and moves a memslot under them, under
every strategy (under cached all four share its shadow pages). Per-VM
accounting must come back to zero (a lost update is a WARN in vm_release),
the module must unload with its page accounting at zero, and the kernel log
must stay clean.

Under npt the test runs in a boot of its own and is an expected failure
for now (issue 16): about one run in five, with four vCPUs on two host
CPUs, one vCPU's guest RIP comes back from VMRUN as a host kernel-module
address (then an emulation failure or a triple fault), and now and then
the whole test machine resets or hangs. vtlb, shadow and cached ran
18 of 18 in the same loop; npt 10 of 12 and 13 of 20 (kvmlab-stress's
message gives the registers at the exit)."""
import os

import pytest

from conftest import TM_RUN, assert_dmesg_clean, run

ROUNDS = 1000
SCRIPT = r"""
insmod kmod/kvmlab.ko || exit 1
for spec in vtlb:0x4b4c0001:4 shadow:0x4b4c0002:4 cached:0x4b4c0003:4; do
    m=${spec%%%%:*}; rest=${spec#*:}; type=${rest%%:*}; n=${rest#*:}
    bin/kvmlab-stress /dev/kvmlab $type $n %d > results/stress-$m.txt 2>&1
    echo $? > results/stress-$m.rc
done

# CPU hotplug while a VM holds SVM on: then guests pinned to the new CPU 1.
bin/kvmlab run --hv kvmlab-vtlb --workload ptemod --param updates=100000000 --timeout 60 \
    --results /tmp/r >/dev/null 2>&1 &
pid=$!; sleep 2
echo 0 > /sys/devices/system/cpu/cpu1/online && echo 1 > /sys/devices/system/cpu/cpu1/online
echo $? > results/hotplug.rc
taskset 2 bin/kvmlab run --hv kvmlab-vtlb,kvmlab-npt --workload syscall --results /tmp/r2 \
    > results/hotplug.txt 2>&1
echo $? >> results/hotplug.rc
kill -9 $pid; wait $pid
rmmod kvmlab
dmesg | grep kvmlab > results/kvmlab-dmesg.txt
""" % ROUNDS


@pytest.fixture(scope="module")
def boot(tmp_path_factory):
    out = tmp_path_factory.mktemp("stress")
    r = run([TM_RUN, "--smp", "2", "--timeout", "300", "--results", out, "--",
             "sh", "-c", SCRIPT], timeout=330)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    return out


NPT_SCRIPT = r"""
insmod kmod/kvmlab.ko || exit 1
bin/kvmlab-stress /dev/kvmlab 0x4b4c0004 4 %d > results/stress-npt.txt 2>&1
echo $? > results/stress-npt.rc
rmmod kvmlab
""" % ROUNDS


def check_stress(boot, mmu, vcpus):
    line = (boot / f"stress-{mmu}.txt").read_text().strip()
    assert (boot / f"stress-{mmu}.rc").read_text().strip() == "0", line
    assert f"{vcpus} vCPUs x {ROUNDS} rounds ({vcpus * ROUNDS} seen)" in line, line
    changes = int(line.split(" memslot changes")[0].rsplit(" ", 1)[1])
    assert changes >= 5 and line.endswith(": ok"), line


@pytest.mark.parametrize("mmu, vcpus", [("vtlb", 4), ("shadow", 4), ("cached", 4)])
def test_vcpus_fault_flush_and_change_memslots_concurrently(boot, mmu, vcpus):
    check_stress(boot, mmu, vcpus)


@pytest.mark.skipif(os.environ.get("KVMLAB_STRESS_NPT") != "1",
                    reason="a boot of its own for a known failure: make test-stress-npt")
@pytest.mark.xfail(reason="issue 16: under npt a vCPU's RIP sometimes comes back from VMRUN "
                   "as a host address; see the module docstring", strict=False)
def test_npt_vcpus_fault_flush_and_change_memslots_concurrently(tmp_path):
    r = run([TM_RUN, "--smp", "2", "--timeout", "200", "--results", tmp_path, "--",
             "sh", "-c", NPT_SCRIPT], timeout=230)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert_dmesg_clean(tmp_path)
    check_stress(tmp_path, "npt", 4)


def test_svm_follows_a_cpu_brought_back_online(boot):
    assert (boot / "hotplug.rc").read_text().split() == ["0", "0"], \
        (boot / "hotplug.txt").read_text()[-2000:]
    assert "(2 of 2 runs ok)" in (boot / "hotplug.txt").read_text()


def test_accounting_back_to_zero_and_log_clean(boot):
    log = (boot / "kvmlab-dmesg.txt").read_text()
    assert "kvmlab: unloaded, page accounting back to zero" in log, log
    assert "leaked" not in log
    assert_dmesg_clean(boot)
