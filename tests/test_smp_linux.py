"""SMP Linux guests (issue 16): Debian's kernel boots with 4 vCPUs under our
device model — an MP table, an I/O APIC, a local APIC and APIC timer per
vCPU, INIT/SIPI through KVM_SET_MP_STATE — and runs the parallel workloads:
one fork+exec loop per CPU at once (linux-smp-forkexec) and pipe pairs
whose two ends are pinned to different CPUs (linux-smp-pipe). The guest must
see 4 CPUs, the checksums are the ones the workloads' definitions give (the
same as the one-CPU linux-forkexec and linux-pipe), each AP gets exactly one
INIT, and the ISA interrupts come through the I/O APIC.

`make test` runs Linux KVM's npt and kvmlab-cached (the shadow MMU whose
pages the vCPUs share); `make test-smp` (KVMLAB_SMP_ALL=1) all six."""
import os
import re

import pytest

from conftest import TM_RUN, assert_dmesg_clean, read_csv, run

ALL = ["kvm-shadow", "kvm-npt", "kvmlab-vtlb", "kvmlab-shadow", "kvmlab-cached", "kvmlab-npt"]
HVS = ALL if os.environ.get("KVMLAB_SMP_ALL") else ["kvm-npt", "kvmlab-cached"]
VCPUS = 4
FORKS, ROUND_TRIPS = 100, 300

SCRIPT = r"""
for hv in %s; do
    bin/kvmlab run --hv $hv --workload linux-smp-forkexec,linux-smp-pipe --vcpus %d \
        --param linux-smp-forkexec.n=%d --param linux-smp-pipe.n=%d --verbose \
        --results results --run-id $hv --timeout 300 > results/$hv.txt 2>&1
done
""" % (" ".join(HVS), VCPUS, FORKS, ROUND_TRIPS)

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


@pytest.fixture(scope="module")
def linux_smp(tmp_path_factory):
    out = tmp_path_factory.mktemp("smp-linux")
    r = run([TM_RUN, "--smp", "2", "--timeout", "1500", "--results", out, "--",
             "sh", "-c", SCRIPT], timeout=1530)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    return out


@pytest.mark.parametrize("hv", HVS)
def test_linux_boots_with_four_cpus_and_runs_parallel_workloads(linux_smp, hv):
    log = (linux_smp / f"{hv}.txt").read_text()
    rows = {r["workload"]: r for r in read_csv(linux_smp / hv / "runs.csv")}
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
    for c in read_csv(linux_smp / hv / "counters.csv"):
        counters.setdefault(c["workload"], {})[c["counter"]] = int(c["delta"])
    for wl, c in counters.items():
        assert c["init_ipis"] == VCPUS - 1, (wl, c)      # one INIT per AP; de-asserts are not
        assert c["startup_ipis"] >= VCPUS - 1, (wl, c)   # a second SIPI may find it started
        assert c["ipis_sent"] > 2 * (VCPUS - 1), (wl, c)  # reschedules and shootdowns besides
        assert c["ioapic_interrupts"] > 0, (wl, c)       # the PIT and the UART, through it


def test_linux_smp_boot_leaves_the_host_clean(linux_smp):
    assert_dmesg_clean(linux_smp)
