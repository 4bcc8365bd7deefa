"""The quick sweep in deterministic mode against tests/reference/quick-sweep.csv,
taken before the redesign: every hypervisor's checksums and MMU counters
must be exactly what they were (see tests/reference/README.md)."""
import csv

from conftest import TOP, KVMLAB, read_csv, run

REFERENCE = TOP / "tests" / "reference" / "quick-sweep.csv"
KEY = ("hv", "workload", "params", "rep")


def test_quick_sweep_matches_the_reference(tmp_path):
    r = run([KVMLAB, "--tm-icount", "--results", tmp_path, "--run-id", "ref",
             "sweep", "--quick"], timeout=1200)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr
    want = {tuple(x[k] for k in KEY): x for x in read_csv(REFERENCE)}
    got = {tuple(x[k] for k in KEY): x for x in read_csv(tmp_path / "ref" / "runs.csv")}
    assert set(got) == set(want), sorted(set(got) ^ set(want))
    fields = [f for f in csv.DictReader(open(REFERENCE)).fieldnames if f not in KEY]
    diffs = {k: {f: (want[k][f], got[k][f]) for f in fields if want[k][f] != got[k][f]}
             for k in want}
    diffs = {k: d for k, d in diffs.items() if d}
    assert not diffs, "counters moved (reference, now):\n" + \
        "\n".join(f"{k}: {d}" for k, d in sorted(diffs.items()))
