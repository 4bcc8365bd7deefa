"""Shared fixtures: paths, a helper to run commands, and one test-machine
run of every workload under both Linux KVM modes that many tests read."""
import csv
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parent.parent
KVMLAB = TOP / "kvmlab"
HARNESS = TOP / "build" / "bin" / "kvmlab"
TM_RUN = TOP / "testmachine" / "run"
CHECK_DMESG = TOP / "testmachine" / "check-dmesg"
ALL_HVS = ["kvm-shadow", "kvm-npt", "kvmlab-vtlb", "kvmlab-shadow", "kvmlab-cached", "kvmlab-npt",
           "kvmlab-unsync", "kvmlab-pv"]
# The six before issue 17: tests whose cost grows with every hypervisor keep to these in
# `make test` (the new strategies share all but the MMU with kvmlab-cached).
SIX_HVS = ALL_HVS[:6]


def run(cmd, timeout=900, input=None, **kw):
    """Run a command, capturing stdout and stderr as text (and feeding it
    `input` when given). On timeout the whole process group goes (QEMU
    included): a killed wrapper alone would leave the test machine holding
    the pipes open."""
    p = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                         text=True, cwd=TOP, start_new_session=True, **kw)
    try:
        out, err = p.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        raise
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def assert_dmesg_clean(results_dir):
    """The test machine's kernel log of that boot has no oops/WARN/BUG."""
    log = Path(results_dir) / ".tm" / "dmesg.txt"
    assert log.is_file(), f"no kernel log came back in {results_dir}"
    r = run([CHECK_DMESG, log])
    assert r.returncode == 0, f"kernel log not clean:\n{r.stdout}"


class Matrix:
    """One `./kvmlab run` of all workloads under every hypervisor."""

    def __init__(self, results_root):
        self.run_id = "pytest-matrix"
        self.proc = run([KVMLAB, "run", "--hv", ",".join(ALL_HVS), "--workload", "all",
                         "--results", results_root, "--run-id", self.run_id])
        self.results_root = Path(results_root)
        self.dir = self.results_root / self.run_id
        self.runs = read_csv(self.dir / "runs.csv") if (self.dir / "runs.csv").exists() else []
        self.checks = read_csv(self.dir / "checks.csv") if (self.dir / "checks.csv").exists() else []
        meta = self.dir / "meta.json"
        self.meta = json.loads(meta.read_text()) if meta.exists() else {}

    def row(self, hv, workload):
        rows = [r for r in self.runs if r["hv"] == hv and r["workload"] == workload]
        assert len(rows) == 1, f"expected one row for {hv}/{workload}, got {len(rows)}"
        return rows[0]


@pytest.fixture(scope="session")
def matrix(tmp_path_factory):
    m = Matrix(tmp_path_factory.mktemp("results"))
    assert m.proc.returncode == 0, f"matrix run failed:\n{m.proc.stdout}\n{m.proc.stderr}"
    return m
