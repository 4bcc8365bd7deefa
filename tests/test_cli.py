"""Command-line handling, checked on the host: bad input must fail at once
with one clear line, before any test machine boots."""
import pytest

from conftest import HARNESS, KVMLAB, run


@pytest.mark.parametrize("args, message", [
    (["run", "--hv", "nosuchhv", "--workload", "selftest"], "unknown hypervisor 'nosuchhv'"),
    (["run", "--hv", "kvm-shadow", "--workload", "nosuchwl"], "unknown workload 'nosuchwl'"),
    (["run", "--hv", "kvm-shadow", "--workload", "ctxswitch", "--param", "bogus=1"],
     "no selected workload has a parameter 'bogus'"),
    (["run", "--hv", "kvm-shadow", "--workload", "ctxswitch", "--param", "spaces=0"],
     "must be in [1, 512]"),
    (["run", "--hv", "kvm-shadow", "--workload", "ctxswitch", "--param", "spaces=lots"],
     "is not a non-negative integer"),
    (["run", "--hv", "kvm-shadow", "--workload", "ctxswitch", "--param", "spaces"],
     "is not NAME=VALUE"),
    (["run", "--hv", "kvm-shadow", "--workload", "ctxswitch", "--frobnicate"],
     "unknown or incomplete option '--frobnicate'"),
    (["run", "--hv", "kvm-shadow"], "run needs --hv and --workload"),
    (["run", "--hv", "kvm-shadow", "--workload", "selftest", "--reps", "0"],
     "--reps needs a number"),
    (["frobnicate"], "unknown command 'frobnicate'"),
    (["run", "--hv", "kvm-npt", "--workload", "smp-shootdown", "--vcpus", "9"],
     "--vcpus needs 1 to 8, not '9'"),
    (["run", "--hv", "kvm-npt", "--workload", "realmode", "--vcpus", "2"],
     "--vcpus 2: realmode is a real-mode workload, which runs one CPU"),
    (["fuzz", "mmu", "--hv", "kvmlab-vtlb", "--vcpus", "3"], "fuzz mmu: --vcpus is 1 or 2"),
    (["fuzz", "mmu", "--hv", "kvmlab-vtlb", "--vcpus", "2", "--paging", "pae"],
     "--vcpus 2 fuzzes 4-level paging"),
    (["run", "--hv", "kvmlab-vtlb", "--workload", "selftest", "--modparam", "novalue"],
     "--modparam 'novalue' is not NAME=VALUE"),
    (["fuzz", "mmu"], "usage: kvmlab fuzz mmu --hv H"),
    (["fuzz", "mmu", "--hv", "nosuchhv"], "fuzz mmu: unknown hypervisor 'nosuchhv'"),
    (["fuzz", "mmu", "--hv", "kvmlab-vtlb", "--oracle", "kvmlab-shadow"],
     "the oracle must use nested paging (kvmlab-shadow does not)"),
    (["fuzz", "mmu", "--hv", "kvmlab-vtlb", "--ops", "0"], "--ops 1..100000000"),
    (["fuzz", "mmu", "--hv", "kvmlab-vtlb", "--seed", "x"], "fuzz mmu: bad option '--seed'"),
    (["fuzz", "ioctl", "--threads", "9"], "--threads 1..8"),
    (["fuzz", "frob"], "usage: kvmlab fuzz ioctl"),
])
def test_bad_command_lines_fail_clearly(args, message):
    r = run([KVMLAB] + args, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    first = r.stderr.strip().splitlines()[0]
    assert first.startswith("kvmlab: ") and message in first, r.stderr


def test_scoped_param_applies_to_one_workload():
    r = run([HARNESS, "run", "--hv", "kvm-shadow", "--workload", "ctxswitch,forkwait",
             "--param", "ctxswitch.pages=3", "--dry-run"])
    assert r.returncode == 0, r.stderr
    # 'pages' exists in both; scoping to forkwait must not touch ctxswitch's limits.
    r = run([HARNESS, "run", "--hv", "kvm-shadow", "--workload", "ctxswitch,forkwait",
             "--param", "forkwait.pages=400", "--dry-run"])
    assert r.returncode == 0, r.stderr
    r = run([HARNESS, "run", "--hv", "kvm-shadow", "--workload", "ctxswitch,forkwait",
             "--param", "pages=600", "--dry-run"])
    assert r.returncode == 2 and "must be in [1, 512]" in r.stderr


def test_list_shows_hypervisors_workloads_and_params():
    r = run([KVMLAB, "list"])
    assert r.returncode == 0, r.stderr
    for word in ["kvm-shadow", "kvm-npt", "kvmlab-vtlb", "kvmlab-shadow", "kvmlab-cached",
                 "kvmlab-npt", "kvmlab-unsync", "kvmlab-pv", "pvcheck", "exitprobe", "selftest", "ctxswitch", "forkwait", "pgfault",
                 "ptemod", "spaces", "forks", "updates"]:
        assert word in r.stdout


def test_table_of_missing_run_fails_clearly(tmp_path):
    r = run([HARNESS, "table", tmp_path / "nothing"])
    assert r.returncode == 1
    assert "cannot open" in r.stderr and "runs.csv" in r.stderr
