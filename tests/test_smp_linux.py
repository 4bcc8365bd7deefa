"""SMP Linux guests (issue 16): Debian's kernel boots with 4 vCPUs under our
device model — an MP table, an I/O APIC, a local APIC and APIC timer per
vCPU, INIT/SIPI through KVM_SET_MP_STATE — and runs the parallel workloads:
one fork+exec loop per CPU at once (linux-smp-forkexec) and pipe pairs
whose two ends are pinned to different CPUs (linux-smp-pipe). The guest must
see 4 CPUs, the checksums are the ones the workloads' definitions give (the
same as the one-CPU linux-forkexec and linux-pipe), each AP gets exactly one
INIT, and the ISA interrupts come through the I/O APIC.

`make test` runs kvmlab-cached (the shadow MMU whose pages the vCPUs share)
on a test machine with two host CPUs; `make test-smp` (KVMLAB_SMP_ALL=1)
every kvmlab strategy there and Linux KVM's two modes with the 4 vCPUs on
one host CPU (Linux KVM hangs two-CPU test machines now and then:
testmachine/README.md)."""
import os
import re

import pytest

from conftest import TM_RUN, assert_dmesg_clean, read_csv, run

ALL_MODE = bool(os.environ.get("KVMLAB_SMP_ALL"))
KVMLAB_HVS = ["kvmlab-vtlb", "kvmlab-shadow", "kvmlab-cached", "kvmlab-npt"] if ALL_MODE \
    else ["kvmlab-cached"]
LINUX_KVM = ["kvm-shadow", "kvm-npt"] if ALL_MODE else []
VCPUS = 4
FORKS, ROUND_TRIPS = 100, 300

SCRIPT = r"""
for hv in "$@"; do
    bin/kvmlab run --hv $hv --workload linux-smp-forkexec,linux-smp-pipe --vcpus %d \
        --param linux-smp-forkexec.n=%d --param linux-smp-pipe.n=%d --verbose \
        --results results --run-id $hv --timeout 600 > results/$hv.txt 2>&1
done
""" % (VCPUS, FORKS, ROUND_TRIPS)

M = 2 ** 64
FNV_OFFSET, FNV_PRIME = 14695981039346656037, 1099511628211


def forkexec_checksum(n):
    """kltools mixes the number of successful fork+exec+wait into its FNV hash."""
    return "%016x" % (((FNV_OFFSET ^ n) * FNV_PRIME) % M)


def pipe_checksum(n):
    """The hash of the tokens one end sees: each round trip, the other end makes t*3+1."""
    token, h = 1, FNV_OFFSET
    for _ in range(n):
        token = (token * 3 + 1) % M
        h = ((h ^ token) * FNV_PRIME) % M
    return "%016x" % h


def boot(out, hvs, host_cpus):
    smp = ["--smp", str(host_cpus)] if host_cpus > 1 else []
    r = run([TM_RUN] + smp + ["--timeout", "2400", "--results", out, "--",
                              "sh", "-c", SCRIPT, "sh"] + hvs, timeout=2430)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    return out


@pytest.fixture(scope="module")
def two_host_cpus(tmp_path_factory):
    return boot(tmp_path_factory.mktemp("smp-linux"), KVMLAB_HVS, 2)


@pytest.fixture(scope="module")
def one_host_cpu(tmp_path_factory):
    return boot(tmp_path_factory.mktemp("smp-linux-1"), LINUX_KVM, 1)


def check_runs(out, hv):
    log = (out / f"{hv}.txt").read_text()
    rows = {r["workload"]: r for r in read_csv(out / hv / "runs.csv")}
    assert set(rows) == {"linux-smp-forkexec", "linux-smp-pipe"}, log[-3000:]
    for wl, row in rows.items():
        assert row["status"] == "ok", (row, log[-3000:])
        assert f"vcpus={VCPUS}" in row["params"], row
    # Two boots, each saying so; four CPUs means two pipe pairs.
    assert len(re.findall(rf"kvmlab-guest: {VCPUS} CPUs online", log)) == 2, log[-3000:]
    fork, pipe = rows["linux-smp-forkexec"], rows["linux-smp-pipe"]
    assert int(fork["ops"]) == FORKS and fork["checksum"] == forkexec_checksum(FORKS), fork
    assert int(pipe["ops"]) == ROUND_TRIPS * VCPUS // 2, pipe
    assert pipe["checksum"] == pipe_checksum(ROUND_TRIPS), pipe
    counters = {}
    for c in read_csv(out / hv / "counters.csv"):
        counters.setdefault(c["workload"], {})[c["counter"]] = int(c["delta"])
    for wl, c in counters.items():
        assert c["init_ipis"] == VCPUS - 1, (wl, c)      # one INIT per AP; de-asserts are not
        assert c["startup_ipis"] >= VCPUS - 1, (wl, c)   # a second SIPI may find it started
        assert c["ipis_sent"] > 2 * (VCPUS - 1), (wl, c)  # reschedules and shootdowns besides
        assert c["ioapic_interrupts"] > 0, (wl, c)       # the PIT and the UART, through it


@pytest.mark.parametrize("hv", KVMLAB_HVS)
def test_linux_with_four_cpus_runs_parallel_workloads_under_kvmlab(two_host_cpus, hv):
    check_runs(two_host_cpus, hv)


@pytest.mark.parametrize("hv", LINUX_KVM)
def test_linux_with_four_cpus_on_one_host_cpu_under_linux_kvm(one_host_cpu, hv):
    check_runs(one_host_cpu, hv)
    assert_dmesg_clean(one_host_cpu)


def test_linux_smp_boot_leaves_the_host_clean(two_host_cpus):
    assert_dmesg_clean(two_host_cpus)
