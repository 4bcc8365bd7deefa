"""SMP guests (issue 16, the part landed so far): a workload's secondary
CPUs start by INIT and Startup IPI through the harness's per-vCPU local
APICs, and smp-shootdown's TLB shootdowns (an IPI to every other CPU per
operation) must never leave a CPU reading through a stale translation,
under every strategy, with 1, 2 and 4 vCPUs on a test machine with two
host CPUs, and with 4 vCPUs on one host CPU beside Linux KVM. The checksum
covers what CPU 0 did, so it must be the same everywhere; the IPI counters
are exact."""
import pytest

from conftest import TM_RUN, assert_dmesg_clean, read_csv, run

OPS = 150
KVMLAB = ["kvmlab-vtlb", "kvmlab-shadow", "kvmlab-cached", "kvmlab-npt"]
VCPUS = [1, 2, 4]

SCRIPT = r"""
for hv in %s; do
    for n in %s; do
        bin/kvmlab run --hv $hv --workload smp-shootdown --vcpus $n --param ops=%d \
            --results results --run-id $hv-$n --timeout 120 > results/$hv-$n.txt 2>&1
    done
done
# Killed with vCPUs in the guest on both host CPUs: the module must take it.
insmod kmod/kvmlab.ko || exit 1
bin/kvmlab run --hv kvmlab-cached --workload smp-shootdown --vcpus 4 --param ops=1000000 \
    --results /tmp/k --timeout 120 > /dev/null 2>&1 &
pid=$!; sleep 3
kill -9 $pid; wait $pid
rmmod kvmlab
dmesg | grep kvmlab: > results/kvmlab-dmesg.txt
""" % (" ".join(KVMLAB), " ".join(map(str, VCPUS)), OPS)

LINUX_SCRIPT = r"""
for hv in kvm-npt kvm-shadow kvmlab-cached; do
    bin/kvmlab run --hv $hv --workload smp-shootdown --vcpus 4 --param ops=%d \
        --results results --run-id one-cpu-$hv --timeout 120 > results/one-cpu-$hv.txt 2>&1
done
""" % OPS


@pytest.fixture(scope="module")
def two_cpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("smp")
    r = run([TM_RUN, "--smp", "2", "--timeout", "400", "--results", out, "--",
             "sh", "-c", SCRIPT], timeout=430)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    return out


@pytest.fixture(scope="module")
def one_cpu(tmp_path_factory):
    out = tmp_path_factory.mktemp("smp1")
    r = run([TM_RUN, "--timeout", "300", "--results", out, "--", "sh", "-c", LINUX_SCRIPT],
            timeout=330)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    return out


def result(out, run_id):
    rows = read_csv(out / run_id / "runs.csv")
    assert len(rows) == 1, (out / f"{run_id}.txt").read_text()[-2000:]
    row = rows[0]
    assert row["status"] == "ok", (row, (out / f"{run_id}.txt").read_text()[-2000:])
    counters = {}
    for c in read_csv(out / run_id / "counters.csv"):
        counters[c["counter"]] = int(c["delta"])
    checks = {c["check"]: c["result"] for c in read_csv(out / run_id / "checks.csv")}
    return row, counters, checks


def reference_checksum(two_cpus):
    return result(two_cpus, "kvmlab-npt-1")[0]["checksum"]


@pytest.mark.parametrize("hv", KVMLAB)
@pytest.mark.parametrize("n", VCPUS)
def test_shootdown_under_every_strategy(two_cpus, hv, n):
    row, counters, checks = result(two_cpus, f"{hv}-{n}")
    assert row["ops"] == str(OPS)
    assert row["checksum"] == reference_checksum(two_cpus)
    assert checks == {"no_stale_reads": "PASS"}
    if n == 1:
        assert "ipis_sent" not in counters
    else:
        # INIT and SIPI per secondary CPU, one wake-up, one IPI per shootdown.
        assert counters["init_ipis"] == n - 1 and counters["startup_ipis"] == n - 1
        assert counters["ipis_sent"] == 2 * (n - 1) + 1 + OPS


def test_killed_smp_run_leaves_the_module_clean(two_cpus):
    log = (two_cpus / "kvmlab-dmesg.txt").read_text()
    assert "kvmlab: unloaded, page accounting back to zero" in log, log
    assert_dmesg_clean(two_cpus)


@pytest.mark.parametrize("hv", ["kvm-npt", "kvm-shadow", "kvmlab-cached"])
def test_four_vcpus_on_one_host_cpu_match_linux_kvm(one_cpu, two_cpus, hv):
    row, counters, checks = result(one_cpu, f"one-cpu-{hv}")
    assert row["checksum"] == reference_checksum(two_cpus)
    assert checks == {"no_stale_reads": "PASS"}
    assert counters["ipis_sent"] == 2 * 3 + 1 + OPS
