"""Live migration (issue 15): `kvmlab migrate` moves a running workload to a
second kvmlab process over a socket, pre-copy with dirty logging, and the
workload finishes there with the checksum of an unmigrated run.

Every workload of the quick sweep migrates between kvmlab strategies; in
`make test` a slice covers each of the 16 strategy pairs at least once
(compute and syscall, whose speed does not depend on the MMU, take all 16;
the MMU-heavy ones take pairs of similar speed), and
KVMLAB_MIGRATE_ALL=1 (`make test-migrate`) runs every workload under every
pair. Linux KVM migrates between two VMs of the same mode in a one-CPU
boot of its own (make test-migrate only: migrate-bench measures it too). Workload sizes come from each strategy's measured speed,
so that the source runs the phase for about SRC_SECONDS: long enough for
the migration (a 16 MiB guest) to finish mid-run, short enough for a slow
destination."""
import math
import os
import re

import pytest

from conftest import HARNESS, TM_RUN, assert_dmesg_clean, read_csv, run

STRATEGIES = ["vtlb", "shadow", "cached", "npt"]
PAIRS = [(a, b) for a in STRATEGIES for b in STRATEGIES]
ALL = os.environ.get("KVMLAB_MIGRATE_ALL") == "1"
SRC_SECONDS = 1.5
# (parameter scaled, fixed parameters, operations per second of it under each
# strategy in this test machine, measured)
WORKLOADS = {
    "compute": ("passes", "", {s: 180000 for s in STRATEGIES}),
    "syscall": ("n", "", {s: 17000000 for s in STRATEGIES}),
    "ctxswitch": ("rounds", "spaces=8",
                  {"vtlb": 180, "shadow": 1700, "cached": 3800, "npt": 15000}),
    "forkwait": ("forks", "", {"vtlb": 360, "shadow": 690, "cached": 380, "npt": 4000}),
    "pgfault": ("rounds", "pages=256", {"vtlb": 30, "shadow": 28, "cached": 22, "npt": 380}),
}
SLICE = {
    "compute": PAIRS[:8],
    "syscall": PAIRS[8:],
    "ctxswitch": [("vtlb", "shadow"), ("cached", "npt"), ("npt", "cached")],
    "forkwait": [("shadow", "vtlb"), ("cached", "vtlb"), ("vtlb", "npt")],
    "pgfault": [("vtlb", "cached"), ("shadow", "npt"), ("cached", "shadow")],
}
MEM = "--mem 16"
DIRTY_OK = "--param pages=2048 --param rate=1000 --param writes=6000 --mem 32"
DIRTY_HOT = "--param pages=4096 --param rate=20000 --param writes=200000 --mem 32"


def params(workload, src):
    name, fixed, rate = WORKLOADS[workload]
    n = math.ceil(rate[src] * SRC_SECONDS)
    return ";".join(p for p in (fixed, f"{name}={n}") if p)


def param_args(p):
    return " ".join(f"--param {kv}" for kv in p.split(";"))


def plan():
    """(workload, src, dst, params) of every migration this run makes."""
    out = []
    for w in WORKLOADS:
        for src, dst in (PAIRS if ALL else SLICE[w]):
            out.append((w, src, dst, params(w, src)))
    return out


def script():
    lines = ["insmod kmod/kvmlab.ko || exit 1", "K=bin/kvmlab"]
    done = set()
    for w, src, dst, p in plan():
        if (w, p) not in done:   # the unmigrated checksum: any strategy gives the same
            done.add((w, p))
            lines.append(f"$K run --hv kvmlab-npt --workload {w} {param_args(p)} {MEM} "
                         f"--run-id base{len(done)} >/dev/null 2>&1")
        lines.append(f"$K migrate --hv kvmlab-{src},kvmlab-{dst} --workload {w} {param_args(p)} "
                     f"{MEM} --run-id mig >> results/migrate.out 2>&1")
    lines += [
        # dirtyrate: a set the link keeps up with converges...
        f"$K run --hv kvmlab-npt --workload dirtyrate {DIRTY_OK} --run-id base-dirty-ok >/dev/null 2>&1",
        f"$K migrate --hv kvmlab-vtlb,kvmlab-cached --workload dirtyrate {DIRTY_OK} "
        f"--after 500 --stream-copy /tmp/s.bin --run-id dirty > results/dirty-ok.out 2>&1; "
        f"echo $? > results/dirty-ok.rc",
        # ...one it cannot fails honestly, and the guest finishes where it was.
        f"$K run --hv kvmlab-npt --workload dirtyrate {DIRTY_HOT} --run-id base-dirty-hot "
        f">/dev/null 2>&1",
        f"$K migrate --hv kvmlab-npt,kvmlab-shadow --workload dirtyrate {DIRTY_HOT} "
        f"--bandwidth 20 --max-downtime 50 --max-rounds 1 --run-id dirty "
        f"> results/dirty-hot.out 2>&1; echo $? > results/dirty-hot.rc",
        # The kept copy of a completed stream restores; damaged copies are refused.
        "$K incoming --hv kvmlab-npt --from /tmp/s.bin > results/restore.out 2>&1; "
        "echo $? > results/restore.rc",
        "cp /tmp/s.bin /tmp/c.bin; printf XXXX | dd of=/tmp/c.bin bs=1 seek=300000 "
        "conv=notrunc 2>/dev/null",
        "$K incoming --hv kvmlab-npt --from /tmp/c.bin > results/corrupt.out 2>&1; "
        "echo $? > results/corrupt.rc",
        "head -c $(( $(stat -c %s /tmp/s.bin) / 2 )) /tmp/s.bin > /tmp/t.bin",
        "$K incoming --hv kvmlab-npt --from /tmp/t.bin > results/truncated.out 2>&1; "
        "echo $? > results/truncated.rc",
        "head -c 100 /dev/urandom > /tmp/g.bin",
        "$K incoming --hv kvmlab-npt --from /tmp/g.bin > results/garbage.out 2>&1; "
        "echo $? > results/garbage.rc",
        # A destination killed mid-migration: the source goes on, nothing lost.
        "$K incoming --hv kvmlab-npt --listen /tmp/d.sock 2> results/killed-dest.err & p=$!",
        "(while ! grep -q 'round 0' results/killed-dest.err; do sleep 0.1; done; kill -9 $p) &",
        "sleep 0.5",
        f"$K migrate --to /tmp/d.sock --hv kvmlab-shadow,kvmlab-npt --workload dirtyrate "
        f"{DIRTY_OK} --bandwidth 2 --max-downtime 1 --run-id killed > results/killed.out 2>&1; "
        f"echo $? > results/killed.rc",
        # A Linux guest, mid-way through its fork+exec loop.
        "$K run --hv kvmlab-npt --workload linux-forkexec --param n=800 --run-id base-linux "
        ">/dev/null 2>&1",
        "$K migrate --hv kvmlab-npt,kvmlab-shadow --workload linux-forkexec --param n=800 "
        "--after 200 --run-id linux > results/linux.out 2>&1; echo $? > results/linux.rc",
        "rmmod kvmlab",
    ]
    return "\n".join(lines) + "\n"


KVM_SCRIPT = f"""
K=bin/kvmlab
for mode in kvm-npt kvm-shadow; do
    $K migrate --hv $mode --workload compute --param passes=300000 {MEM} --run-id kvm \
        >> results/kvm.out 2>&1
    $K migrate --hv $mode --workload forkwait --param forks=3000 {MEM} --run-id kvm \
        >> results/kvm.out 2>&1
    $K migrate --hv $mode --workload dirtyrate {DIRTY_OK} --run-id kvm >> results/kvm.out 2>&1
done
$K run --hv kvm-npt --workload compute,forkwait --param passes=300000 --param forks=3000 {MEM} \
    --run-id base1 >/dev/null 2>&1
$K run --hv kvm-npt --workload dirtyrate {DIRTY_OK} --run-id base2 >/dev/null 2>&1
"""


@pytest.fixture(scope="module")
def boot(tmp_path_factory):
    out = tmp_path_factory.mktemp("migrate")
    r = run([TM_RUN, "--smp", "2", "--timeout", "1500" if ALL else "900", "--results", out,
             "--", "sh", "-c", script()], timeout=1600 if ALL else 960)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert_dmesg_clean(out)
    return out


@pytest.fixture(scope="module")
def kvm_boot(tmp_path_factory):
    """Linux KVM in a one-CPU boot (loading kvm.ko under MTTCG with two CPUs can hang)."""
    out = tmp_path_factory.mktemp("migrate-kvm")
    r = run([TM_RUN, "--timeout", "600", "--results", out, "--", "sh", "-c", KVM_SCRIPT],
            timeout=660)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert_dmesg_clean(out)
    return out


def baselines(boot):
    """The unmigrated runs (base* run ids) by (workload, params)."""
    return {(r["workload"], r["params"]): r for d in sorted(boot.glob("base*"))
            for r in read_csv(d / "runs.csv")}


def test_every_strategy_pair_gives_the_unmigrated_checksum(boot):
    base = baselines(boot)
    rows = read_csv(boot / "mig" / "migrations.csv")
    out = (boot / "migrate.out").read_text()
    assert len(rows) == len(plan()), out[-3000:]
    pairs = set()
    for row in rows:
        b = base[(row["workload"], row["params"])]
        assert b["status"] == "ok", b
        assert row["migration"] == "migrated" and row["status"] == "ok", (row, out[-3000:])
        assert (row["checksum"], row["ops"]) == \
            (b["checksum"], b["ops"]), row
        # The measured phase spans both ends: the counters add up, both sides' exits in.
        assert int(row["exits"]) > 0 and int(row["rounds"]) >= 1 and int(row["bytes"]) > 0, row
        assert int(row["final_pages"]) >= 1 and int(row["downtime_ns"]) > 0, row
        pairs.add((row["src"], row["dst"]))
    assert pairs == {(f"kvmlab-{a}", f"kvmlab-{b}") for a, b in PAIRS}


def test_dirtyrate_converges_when_the_link_keeps_up(boot):
    out = (boot / "dirty-ok.out").read_text()
    assert (boot / "dirty-ok.rc").read_text().strip() == "0", out
    row = read_csv(boot / "dirty" / "migrations.csv")[0]
    b = baselines(boot)[("dirtyrate", row["params"])]
    assert row["migration"] == "migrated" and row["checksum"] == \
        b["checksum"], out
    # The report: rounds, pages of each round, bytes, total time and downtime.
    assert re.search(r"rounds \d+, pages per round: \d+.*stop-and-copy \d+", out), out
    assert re.search(r"MB sent .* ms in all, downtime [\d.]+ ms", out), out
    # Round 0 is every page of the guest's 32 MiB.
    assert row["pages_per_round"].split(";")[0] == str(32 << 8), row


def test_a_migration_that_cannot_converge_says_so_and_loses_nothing(boot):
    out = (boot / "dirty-hot.out").read_text()
    assert (boot / "dirty-hot.rc").read_text().strip() == "1", out
    assert "not-converged" in out and "still dirty" in out and "over the 50 ms allowed" in out, out
    row = read_csv(boot / "dirty" / "migrations.csv")[1]
    b = baselines(boot)[("dirtyrate", row["params"])]
    assert row["migration"] == "not-converged" and row["status"] == "ok", row
    assert row["checksum"] == b["checksum"], (row, b)
    assert "the guest stayed at the source" in out, out


def test_a_kept_stream_restores_and_damaged_ones_are_refused(boot):
    base = baselines(boot)
    restore = (boot / "restore.out").read_text()
    assert (boot / "restore.rc").read_text().strip() == "0", restore
    row = read_csv(boot / "dirty" / "migrations.csv")[0]
    assert f"checksum 0x{int(base[('dirtyrate', row['params'])]['checksum'], 16):x}" in restore
    for name, why in [("corrupt", r"record \d+ \(PAGES, \d+ bytes\) is corrupt: CRC"),
                      ("truncated", r"truncated inside record \d+"),
                      ("garbage", r"not a migration record|does not start with")]:
        text = (boot / f"{name}.out").read_text()
        assert (boot / f"{name}.rc").read_text().strip() == "1", text
        assert re.search(why, text), (name, text)


def test_a_destination_killed_mid_migration_leaves_the_source_running(boot):
    out = (boot / "killed.out").read_text()
    assert (boot / "killed.rc").read_text().strip() == "1", out
    assert "dest-failed" in out and "the guest stayed at the source" in out, out
    row = read_csv(boot / "killed" / "migrations.csv")[0]
    b = baselines(boot)[("dirtyrate", row["params"])]
    assert row["status"] == "ok" and row["checksum"] == \
        b["checksum"], row


def test_a_linux_guest_migrates_mid_forkexec_and_finishes(boot):
    out = (boot / "linux.out").read_text()
    assert (boot / "linux.rc").read_text().strip() == "0", out
    row = read_csv(boot / "linux" / "migrations.csv")[0]
    b = baselines(boot)[("linux-forkexec", "n=800")]
    assert row["migration"] == "migrated" and row["status"] == "ok", out
    assert (row["ops"], row["checksum"]) == ("800", b["checksum"])


@pytest.mark.skipif(not ALL, reason="a boot of its own: make test-migrate")
def test_linux_kvm_migrates_between_two_vms_of_one_mode(kvm_boot):
    base = baselines(kvm_boot)
    rows = read_csv(kvm_boot / "kvm" / "migrations.csv")
    out = (kvm_boot / "kvm.out").read_text()
    assert len(rows) == 6, out
    for row in rows:
        assert row["migration"] == "migrated" and row["status"] == "ok", (row, out[-2000:])
        assert row["checksum"] == \
            base[(row["workload"], row["params"])]["checksum"], row


def test_pairs_that_cannot_share_svm_and_bad_options_are_refused():
    for args, why in [
        (["--hv", "kvm-npt,kvmlab-npt"], "both need SVM"),
        (["--hv", "kvm-npt,kvm-shadow"], "both need SVM"),
        (["--hv", "kvmlab-npt", "--max-rounds", "99"], "--max-rounds needs a number"),
        (["--hv", "nonesuch"], "unknown hypervisor"),
    ]:
        r = run([HARNESS, "migrate", "--workload", "compute"] + args)
        assert r.returncode == 2 and why in r.stderr, (args, r.stderr)
    r = run([HARNESS, "incoming", "--hv", "kvmlab-npt"])
    assert r.returncode == 2 and "--listen" in r.stderr, r.stderr
