"""The MMU layer's locking under load: in a two-CPU test machine, four vCPU
threads of one VM fault, flush (INVLPG, CR3 reloads) and take MMIO exits
while another thread maps, deletes and moves a memslot under them, under
every strategy (under cached all four share its shadow pages). Per-VM
accounting must come back to zero (a lost update is a WARN in vm_release),
the module must unload with its page accounting at zero, and the kernel log
must stay clean.

Until the test machine kept CPU 0 free of guests, npt failed here about one
run in five and the whole machine now and then reset: QEMU 7.2 loses updates
to CPU 0's SVM state (testmachine/README.md, "CPU 0 runs no guests").
"""
import pytest

from conftest import TM_RUN, assert_dmesg_clean, run

ROUNDS = 1000
SCRIPT = r"""
insmod kmod/kvmlab.ko || exit 1
for spec in vtlb:0x4b4c0001:4 shadow:0x4b4c0002:4 cached:0x4b4c0003:4 npt:0x4b4c0004:4; do
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


def check_stress(boot, mmu, vcpus):
    line = (boot / f"stress-{mmu}.txt").read_text().strip()
    assert (boot / f"stress-{mmu}.rc").read_text().strip() == "0", line
    assert f"{vcpus} vCPUs x {ROUNDS} rounds ({vcpus * ROUNDS} seen)" in line, line
    changes = int(line.split(" memslot changes")[0].rsplit(" ", 1)[1])
    assert changes >= 5 and line.endswith(": ok"), line


@pytest.mark.parametrize("mmu, vcpus", [("vtlb", 4), ("shadow", 4), ("cached", 4), ("npt", 4)])
def test_vcpus_fault_flush_and_change_memslots_concurrently(boot, mmu, vcpus):
    check_stress(boot, mmu, vcpus)


def test_svm_follows_a_cpu_brought_back_online(boot):
    assert (boot / "hotplug.rc").read_text().split() == ["0", "0"], \
        (boot / "hotplug.txt").read_text()[-2000:]
    assert "(2 of 2 runs ok)" in (boot / "hotplug.txt").read_text()


def test_accounting_back_to_zero_and_log_clean(boot):
    log = (boot / "kvmlab-dmesg.txt").read_text()
    assert "kvmlab: unloaded, page accounting back to zero" in log, log
    assert "leaked" not in log
    assert_dmesg_clean(boot)
