"""Sweeps on Slurm (harness/experiment/slurm.sh), against a real Slurm:
Debian's slurmctld, slurmd and munge, started here on localhost with a
minimal configuration (one node, two CPUs) and stopped at the end."""
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import KVMLAB, read_csv, run

SPEC = """hv       = kvmlab-vtlb, kvmlab-cached, kvmlab-npt
workload = selftest, ctxswitch, syscall
reps     = 1
param ctxswitch.rounds = 20
param syscall.n = 2000
"""
# What must agree between a Slurm sweep and a local one: the run, its
# result, and every counter that does not depend on host timing.
SAME = ["status", "ops", "checksum", "pf_fixed", "pf_guest", "tlb_flush", "invlpg",
        "mmu_pte_write", "mmu_shadow_zapped", "mmu_cache_miss", "mmu_flooded", "mmu_recycled",
        "shadow_pages_peak", "pages_4k", "insn_emulation", "io_exits"]

CONF = """ClusterName=kvmlab-test
SlurmctldHost={host}
SlurmctldPort={port}
SlurmdPort={dport}
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SlurmUser=root
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmdSpoolDir={d}/spool
StateSaveLocation={d}/state
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MinJobAge=3600
NodeName={host} CPUs=2 State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def pid_running(pidfile):
    """The daemon's pid while it runs (a zombie has stopped: daemons here
    may be orphans nobody reaps)."""
    try:
        pid = int(Path(pidfile).read_text())
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return pid if state != "Z" else None
    except (OSError, ValueError, IndexError):
        return None


def munge_up():
    return subprocess.run(["munge", "-n"], capture_output=True).returncode == 0


def stop(d, started_munge):
    for name in ("slurmd", "slurmctld"):
        pid = pid_running(d / f"{name}.pid")
        if pid:
            os.kill(pid, signal.SIGTERM)
    if started_munge:
        pid = pid_running("/run/munge/munged.pid")
        if pid:
            os.kill(pid, signal.SIGTERM)
    for _ in range(20):
        if not any(pid_running(d / f"{n}.pid") for n in ("slurmd", "slurmctld")):
            return
        time.sleep(0.5)
    for name in ("slurmd", "slurmctld"):     # slurmd may ignore TERM without its controller
        pid = pid_running(d / f"{name}.pid")
        if pid:
            os.kill(pid, signal.SIGKILL)
    time.sleep(1)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    for tool in ("slurmctld", "slurmd", "sbatch", "munged"):
        if not (shutil.which(tool) or Path(f"/usr/sbin/{tool}").exists()):
            pytest.fail(f"{tool} is missing: make deps installs slurmctld, slurmd, "
                        "slurm-client and munge")
    d = tmp_path_factory.mktemp("slurm")
    for sub in ("spool", "state"):
        (d / sub).mkdir()
    host = socket.gethostname().split(".")[0]
    conf = d / "slurm.conf"
    conf.write_text(CONF.format(host=host, d=d, port=16817, dport=16818))
    env = dict(os.environ, SLURM_CONF=str(conf))
    started_munge = not munge_up()
    try:
        if started_munge:
            Path("/run/munge").mkdir(exist_ok=True)
            shutil.chown("/run/munge", "munge", "munge")
            subprocess.run(["runuser", "-u", "munge", "--", "/usr/sbin/munged"], check=True)
            for _ in range(20):
                if munge_up():
                    break
                time.sleep(0.5)
        subprocess.run(["slurmctld", "-f", conf, "-L", d / "slurmctld.log"], env=env,
                       check=True)
        subprocess.run(["slurmd", "-f", conf, "-L", d / "slurmd.log"], env=env, check=True)
        for _ in range(60):
            r = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True,
                               text=True)
            if r.stdout.strip() == "idle":
                break
            time.sleep(1)
        else:
            pytest.fail("the local Slurm did not come up: " + r.stdout + r.stderr +
                        (d / "slurmctld.log").read_text()[-2000:])
    except BaseException:
        stop(d, started_munge)
        raise
    yield {"env": env, "dir": d}
    subprocess.run(["scancel", "--user", "root"], env=env, capture_output=True)
    stop(d, started_munge)
    for name in ("slurmd", "slurmctld"):
        assert not pid_running(d / f"{name}.pid"), f"{name} did not stop"
    assert not started_munge or not munge_up(), "munged did not stop"


def kvmlab(slurm, results, *args, timeout=600):
    return run([KVMLAB, "--results", results, *args], timeout=timeout, env=slurm["env"])


def wait_merged(slurm, results, run_id, timeout=900):
    """Poll sweep-status until the merge job has ended; return its last output."""
    end = time.time() + timeout
    while time.time() < end:
        r = kvmlab(slurm, results, "sweep-status", run_id)
        assert r.returncode == 0, r.stderr
        m = re.search(r"merge job \d+: (\S+)", r.stdout)
        if m and m.group(1) in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"):
            return r.stdout
        time.sleep(3)
    pytest.fail("the sweep did not end: " + r.stdout)


def task_times(slurm, job):
    """(start, end) of each array task, from the controller."""
    out = subprocess.run(["scontrol", "-o", "show", "job", job], env=slurm["env"],
                         capture_output=True, text=True).stdout
    times = {}
    for line in out.splitlines():
        t = re.search(r"ArrayTaskId=(\d+) ", line)
        s = re.search(r"StartTime=(\S+)", line)
        e = re.search(r"EndTime=(\S+)", line)
        if t and s and e:
            times[int(t.group(1))] = (s.group(1), e.group(1))
    return times


def rows(path):
    return {(r["hv"], r["workload"], r["params"], r["rep"]): r for r in read_csv(path)}


def test_script_only_writes_a_script_sbatch_accepts(slurm, tmp_path):
    (tmp_path / "small.sweep").write_text(SPEC)
    r = kvmlab(slurm, tmp_path / "res", "--run-id", "s", "sweep", tmp_path / "small.sweep",
               "--slurm", "--slurm-script-only", "--chunk", "3", "--max-parallel", "2",
               "--partition", "main")
    assert r.returncode == 0, r.stderr
    assert "9 runs in 3 array tasks" in r.stdout, r.stdout
    script = tmp_path / "res" / "s" / "slurm" / "sweep.sbatch"
    text = script.read_text()
    assert "#SBATCH --array=0-2%2" in text and "#SBATCH --partition=main" in text, text
    t = subprocess.run(["sbatch", "--test-only", script], env=slurm["env"],
                       capture_output=True, text=True)
    assert t.returncode == 0 and "to start at" in t.stderr, t.stdout + t.stderr
    assert not (tmp_path / "res" / "s" / "slurm" / "jobs").exists()   # nothing submitted


def test_bad_slurm_options_are_refused(slurm, tmp_path):
    (tmp_path / "small.sweep").write_text(SPEC)
    r = kvmlab(slurm, tmp_path, "sweep", tmp_path / "small.sweep", "--partition", "main")
    assert r.returncode == 2 and "needs --slurm" in r.stderr, r.stderr
    r = kvmlab(slurm, tmp_path, "sweep", tmp_path / "small.sweep", "--slurm", "--time", "0")
    assert r.returncode == 2 and "--time needs minutes" in r.stderr, r.stderr
    r = kvmlab(slurm, tmp_path, "--run-id", "x", "sweep", tmp_path / "small.sweep", "--slurm",
               "--partition", "nosuch")
    assert r.returncode == 2 and "no nodes in partition 'nosuch'" in r.stderr, r.stderr
    r = kvmlab(slurm, tmp_path, "sweep-status", "never")
    assert r.returncode == 2 and "was not submitted to Slurm" in r.stderr, r.stderr


def test_slurm_sweep_equals_the_local_one_and_resumes_after_scancel(slurm, tmp_path):
    spec = tmp_path / "small.sweep"
    spec.write_text(SPEC)
    res = tmp_path / "res"
    # Three tasks of three runs, two at once.
    r = kvmlab(slurm, res, "--run-id", "slurm", "sweep", spec, "--slurm", "--chunk", "3",
               "--max-parallel", "2", "--time", "20")
    assert r.returncode == 0, r.stderr
    job = re.search(r"job (\d+), merge job", r.stdout).group(1)
    status = wait_merged(slurm, res, "slurm")
    assert "3 done, 0 failed" in status and "merge job" in status, status
    times = task_times(slurm, job)
    assert len(times) == 3, times
    assert times[0][0] < times[1][1] and times[1][0] < times[0][1], \
        ("tasks 0 and 1 should have run at the same time", times)
    got = rows(res / "slurm" / "runs.csv")
    # The same sweep, run here.
    r = kvmlab(slurm, res, "--run-id", "local", "sweep", spec, timeout=900)
    assert r.returncode == 0, r.stderr
    want = rows(res / "local" / "runs.csv")
    assert sorted(got) == sorted(want) and len(got) == 9, (sorted(got), sorted(want))
    for k, w in want.items():
        for col in SAME:
            assert got[k][col] == w[col], (k, col, got[k][col], w[col])
    nodes = read_csv(res / "slurm" / "nodes.csv")
    assert len(nodes) == 9 and {n["node"] for n in nodes} == {socket.gethostname()}, nodes
    report = (res / "slurm" / "report.md").read_text()
    assert "The runs came from 1 node of a Slurm cluster" in report, report[:3000]
    assert '"node": ' in (res / "slurm" / "meta.json").read_text()

    # Resubmitting a complete sweep runs nothing.
    r = kvmlab(slurm, res, "--run-id", "slurm", "sweep", spec, "--slurm", "--chunk", "3")
    assert r.returncode == 0 and "nothing to submit" in r.stdout, r.stdout + r.stderr

    # One task cancelled: the others' rows arrive, a resubmission runs only its runs.
    r = kvmlab(slurm, res, "--run-id", "cut", "sweep", spec, "--slurm", "--chunk", "3",
               "--max-parallel", "1", "--time", "20")
    assert r.returncode == 0, r.stderr
    job = re.search(r"job (\d+), merge job", r.stdout).group(1)
    c = subprocess.run(["scancel", f"{job}_1"], env=slurm["env"], capture_output=True, text=True)
    assert c.returncode == 0, c.stderr
    status = wait_merged(slurm, res, "cut")
    assert "2 done, 1 failed" in status, status
    first = rows(res / "cut" / "runs.csv")
    assert len(first) == 6, sorted(first)
    plan1 = (res / "cut" / "slurm" / "plan-1").read_text().splitlines()
    missing = {tuple(line.split("\t")) for line in plan1}
    assert not missing & set(first), (missing, sorted(first))
    r = kvmlab(slurm, res, "--run-id", "cut", "sweep", spec, "--slurm", "--chunk", "3",
               "--time", "20")
    assert r.returncode == 0, r.stderr
    assert "9 runs, 6 already done, 3 to run" in r.stderr, r.stderr
    assert "3 runs in 1 array tasks" in r.stdout, r.stdout
    assert "1 done, 0 failed" in wait_merged(slurm, res, "cut")
    final = rows(res / "cut" / "runs.csv")
    assert sorted(final) == sorted(want), sorted(final)
    for k, row in first.items():      # the six were not run again
        assert final[k]["wall_ns"] == row["wall_ns"], k
    for k, w in want.items():
        for col in SAME:
            assert final[k][col] == w[col], (k, col)


def test_a_local_filesystem_is_refused_for_a_cluster_of_several_nodes(slurm, tmp_path):
    """Nodes other than this machine cannot see a local folder: submission
    refuses, naming the folder and the nodes (sinfo/scontrol are faked to
    describe a two-node partition); a task that cannot see the submitter's
    folder refuses too."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "sinfo").write_text("#!/bin/sh\necho 'node[1-2]'\n")
    (fake / "scontrol").write_text("#!/bin/sh\n[ \"$1 $2\" = 'show hostnames' ] && "
                                   "printf 'node1\\nnode2\\n'\n")
    for f in ("sinfo", "scontrol"):
        (fake / f).chmod(0o755)
    (tmp_path / "small.sweep").write_text(SPEC)
    env = dict(slurm["env"], PATH=f"{fake}:{os.environ['PATH']}")
    r = run([KVMLAB, "--results", tmp_path / "res", "--run-id", "far", "sweep",
             tmp_path / "small.sweep", "--slurm"], env=env)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "is on a local filesystem" in r.stderr and "node1,node2" in r.stderr, r.stderr
    assert not (tmp_path / "res" / "far" / "slurm" / "jobs").exists()
    # A task whose node sees another folder (no token, or another one).
    r = run([KVMLAB, "--results", tmp_path / "res", "--run-id", "far", "sweep-task",
             tmp_path / "res" / "far" / "slurm", "0", "0123456789abcdef"], env=env)
    assert r.returncode == 2 and "must be on a filesystem every node shares" in r.stderr, r.stderr
