"""SMP guests (issue 16, the part landed so far): a workload's secondary
CPUs start by INIT and Startup IPI through the harness's per-vCPU local
APICs, and the four SMP workloads run under every strategy with 1, 2 and 4
vCPUs on a test machine with two host CPUs, and with 4 vCPUs on one host
CPU beside Linux KVM: smp-shootdown and smp-ptshare must never let a CPU
read through a translation a shootdown removed, smp-pgfault must take one
fault per page touch. Their checksums must be equal everywhere (smp-
ctxswitch's at each vCPU count), and the IPI counters are exact."""
import pytest

from conftest import TM_RUN, assert_dmesg_clean, read_csv, run

KVMLAB = ["kvmlab-vtlb", "kvmlab-shadow", "kvmlab-cached", "kvmlab-npt", "kvmlab-unsync",
          "kvmlab-pv"]
LINUX = ["kvm-npt", "kvm-shadow"]
ONE_CPU_KVMLAB = ["kvmlab-cached", "kvmlab-npt"]  # the two-CPU boot has them all
VCPUS = [1, 2, 4]
# Small: with 4 vCPUs on fewer host CPUs a shootdown waits for the others to be scheduled.
SHOOTDOWN_OPS, PGFAULT_ROUNDS, PTSHARE_OPS, CTX_ROUNDS = 60, 20, 60, 40
WORKLOADS = "smp-shootdown,smp-pgfault,smp-ptshare,smp-ctxswitch"
PARAMS = ("--param smp-shootdown.ops=%d --param smp-pgfault.rounds=%d "
          "--param smp-ptshare.ops=%d --param smp-ctxswitch.rounds=%d"
          % (SHOOTDOWN_OPS, PGFAULT_ROUNDS, PTSHARE_OPS, CTX_ROUNDS))

SCRIPT = r"""
for hv in %s; do
    for n in %s; do
        bin/kvmlab run --hv $hv --workload %s --vcpus $n %s \
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
""" % (" ".join(KVMLAB), " ".join(map(str, VCPUS)), WORKLOADS, PARAMS)

LINUX_SCRIPT = r"""
for hv in %s; do
    bin/kvmlab run --hv $hv --workload %s --vcpus 4 %s \
        --results results --run-id one-cpu-$hv --timeout 120 > results/one-cpu-$hv.txt 2>&1
done
""" % (" ".join(LINUX + ONE_CPU_KVMLAB), WORKLOADS, PARAMS)


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


def results(out, run_id):
    """{workload: (row, counters, checks)} of one `kvmlab run`."""
    log = out / f"{run_id}.txt"
    rows = read_csv(out / run_id / "runs.csv") if (out / run_id / "runs.csv").exists() else []
    assert len(rows) == 4, log.read_text()[-2000:]
    out_ = {}
    for row in rows:
        assert row["status"] == "ok", (row, log.read_text()[-2000:])
        counters = {c["counter"]: int(c["delta"]) for c in read_csv(out / run_id / "counters.csv")
                    if c["workload"] == row["workload"]}
        checks = {c["check"]: c["result"] for c in read_csv(out / run_id / "checks.csv")
                  if c["workload"] == row["workload"]}
        out_[row["workload"]] = (row, counters, checks)
    return out_


def ipis(workload, n):
    """INIT and SIPI per secondary CPU, then the workload's own: exact."""
    if n == 1:
        return None
    own = {"smp-shootdown": 1 + SHOOTDOWN_OPS, "smp-pgfault": 2 * PGFAULT_ROUNDS,
           "smp-ptshare": 1 + PTSHARE_OPS, "smp-ctxswitch": 1}[workload]
    return 2 * (n - 1) + own


CHECKS = {"smp-shootdown": {"no_stale_reads": "PASS"}, "smp-ptshare": {"no_stale_reads": "PASS"},
          "smp-pgfault": {"one_fault_per_page": "PASS"}, "smp-ctxswitch": {}}


def check_runs(got, ref, n):
    for wl, (row, counters, checks) in got.items():
        assert row["checksum"] == ref[wl][0]["checksum"], (wl, row)
        assert checks == CHECKS[wl], (wl, checks)
        assert counters.get("ipis_sent") == ipis(wl, n), (wl, counters)
        if n > 1:
            assert counters["init_ipis"] == n - 1 and counters["startup_ipis"] == n - 1


@pytest.mark.parametrize("hv", KVMLAB)
@pytest.mark.parametrize("n", VCPUS)
def test_smp_workloads_under_every_strategy(two_cpus, hv, n):
    check_runs(results(two_cpus, f"{hv}-{n}"), results(two_cpus, f"kvmlab-npt-{n}"), n)


def test_checksums_do_not_depend_on_the_vcpu_count(two_cpus):
    one, four = results(two_cpus, "kvmlab-npt-1"), results(two_cpus, "kvmlab-npt-4")
    for wl in ("smp-shootdown", "smp-pgfault", "smp-ptshare"):
        assert one[wl][0]["checksum"] == four[wl][0]["checksum"], wl
    assert int(one["smp-ctxswitch"][0]["ops"]) == int(four["smp-ctxswitch"][0]["ops"]) // 4


def test_killed_smp_run_leaves_the_module_clean(two_cpus):
    log = (two_cpus / "kvmlab-dmesg.txt").read_text()
    assert "kvmlab: unloaded, page accounting back to zero" in log, log
    assert_dmesg_clean(two_cpus)


@pytest.mark.parametrize("hv", LINUX + ONE_CPU_KVMLAB)
def test_four_vcpus_on_one_host_cpu_match_everywhere(one_cpu, two_cpus, hv):
    check_runs(results(one_cpu, f"one-cpu-{hv}"), results(two_cpus, "kvmlab-npt-4"), 4)
    assert_dmesg_clean(one_cpu)
