"""Sweeps: the spec parser, the quick sweep end to end (runs, report,
plots), resuming, and compute's overhead under every scheme."""
import pytest

from conftest import ALL_HVS, KVMLAB, read_csv, run

GOOD = """hv = kvmlab-vtlb
workload = ctxswitch
param ctxswitch.spaces = 1, 2
"""


@pytest.mark.parametrize("text, message", [
    ("frob = 1\n", "1: unknown key 'frob' (known: hv, workload, paging, vcpus, reps, param W.NAME)"),
    ("hv = kvm-npt\nworkload = ctxswitch\npaging = pae, 3level\n",
     "3: unknown paging format '3level' (4level, pae, 2level)"),
    ("hv = kvm-npt\nworkload = ctxswitch\nparam ctxswitch.spaces = 1\npaging = pae\n",
     "4: 'paging' comes after the workload line, before the param lines"),
    ("hv = kvm-npt\npaging = pae\nworkload = ctxswitch\n",
     "2: 'paging' comes after the workload line, before the param lines"),
    ("hv = kvm-bogus\nworkload = ctxswitch\n", "1: unknown hypervisor 'kvm-bogus'"),
    ("hv = kvm-npt\nworkload = ctxswitch, nope\n", "2: unknown workload 'nope'"),
    ("hv = kvm-npt\nparam ctxswitch.spaces = 1\nworkload = ctxswitch\n",
     "2: 'param' lines come after the workload line"),
    ("hv = kvm-npt\nworkload = pgfault\nparam ctxswitch.spaces = 1\n",
     "3: param for 'ctxswitch', which is not in the workload list above"),
    ("hv = kvm-npt\nworkload = ctxswitch\nparam ctxswitch.bogus = 1\n",
     "3: the workload has no parameter 'bogus'"),
    ("hv = kvm-npt\nworkload = ctxswitch\nparam ctxswitch.spaces = 1, 0\n",
     "3: spaces=0 is outside [1, 512]"),
    ("hv = kvm-npt\nworkload = ctxswitch\nparam ctxswitch.spaces = lots\n",
     "3: 'lots' is not a non-negative integer"),
    ("hv = kvm-npt\nworkload = ctxswitch\nparam ctxswitch.spaces = 1,,2\n",
     "3: an empty item in the list"),
    ("workload = ctxswitch\n", "needs an 'hv = ...' and a 'workload = ...' line"),
    ("hv = kvm-npt\nworkload = ctxswitch\nreps = 0\n", "3: reps must be 1..1000, not '0'"),
    ("hv = kvm-npt\nworkload ctxswitch\n", "2: expected KEY = VALUE, got 'workload ctxswitch'"),
    ("hv = kvm-npt\nhv = kvm-shadow\n", "2: 'hv' is given twice"),
])
def test_bad_specs_are_rejected_with_the_line(tmp_path, text, message):
    spec = tmp_path / "bad.sweep"
    spec.write_text(text)
    r = run([KVMLAB, "--results", tmp_path, "sweep", spec], timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"{spec}:" in r.stderr and message in r.stderr, r.stderr
    assert "== " not in r.stdout                 # rejected before any boot


def test_missing_spec_and_bad_option(tmp_path):
    r = run([KVMLAB, "--results", tmp_path, "sweep", tmp_path / "none.sweep"], timeout=60)
    assert r.returncode == 2 and "no spec file" in r.stderr
    r = run([KVMLAB, "--results", tmp_path, "sweep", "--frob"], timeout=60)
    assert r.returncode == 2 and "sweep: unknown option '--frob'" in r.stderr


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    r = run([KVMLAB, "--results", out, "--run-id", "q", "sweep", "--quick"], timeout=1200)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr
    return out / "q", r


def test_quick_sweep_runs_every_combination(quick):
    d, r = quick
    rows = read_csv(d / "runs.csv")
    assert len(rows) == 56                       # 8 hvs x (2+2+1+1+1) settings
    assert all(x["status"] == "ok" for x in rows)
    assert {x["hv"] for x in rows} == set(ALL_HVS)
    spaces = {x["params"] for x in rows if x["workload"] == "ctxswitch"}
    assert spaces == {"rounds=20;pages=16;spaces=1", "rounds=20;pages=16;spaces=8"}
    assert "sweep: 56 of 56 runs done" in r.stdout
    assert "report: " in r.stdout


def test_report_and_every_plot_are_written(quick):
    d, _ = quick
    report = (d / "report.md").read_text()
    for name in ["exits_per_op_all", "ns_per_op_all", "growth_ctxswitch_spaces",
                 "growth_forkwait_forks"]:
        for ext in ["png", "svg"]:
            assert (d / f"{name}.{ext}").stat().st_size > 1000, name
        assert f"({name}.svg)" in report
    assert '"timing": "wall-clock"' in report
    assert "Adams & Agesen" in report and "| pgfault | 1093 / 3927 / 11242 |" in report
    assert report.count("Checksums: every hypervisor saw the same thing") == 7


def test_a_resumed_sweep_runs_only_what_is_missing(quick, tmp_path):
    d, _ = quick
    again = run([KVMLAB, "--results", d.parent, "--run-id", "q", "sweep", "--quick"], timeout=600)
    assert again.returncode == 0
    assert "56 runs, 56 already done, 0 to run" in again.stderr
    assert "== " not in again.stdout             # nothing booted
    # Lose one hypervisor's rows, as an interrupted sweep would have.
    runs = (d / "runs.csv").read_text().splitlines()
    kept = [x for x in runs if not x.startswith("kvmlab-shadow,")]
    (d / "runs.csv").write_text("\n".join(kept) + "\n")
    resumed = run([KVMLAB, "--results", d.parent, "--run-id", "q", "sweep", "--quick"],
                  timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "56 runs, 49 already done, 7 to run" in resumed.stderr
    assert [x for x in resumed.stdout.splitlines() if x.startswith("== ")] == \
        ["== kvmlab-shadow: 7 runs (sweep: 49 of 56 done)"]
    rows = read_csv(d / "runs.csv")
    assert len(rows) == 56 and all(x["status"] == "ok" for x in rows)


def test_compute_has_no_mmu_overhead_under_any_scheme(quick):
    d, _ = quick
    rows = [x for x in read_csv(d / "runs.csv") if x["workload"] == "compute"]
    assert len(rows) == len(ALL_HVS)
    for x in rows:
        assert int(x["pf_fixed"] or 0) == 0 and int(x["pf_guest"] or 0) == 0, x
        assert int(x["tlb_flush"] or 0) == 0, x
        # Nothing in compute exits: every exit is a host interrupt (how many
        # depends on the phase's wall time, not on the workload).
        assert int(x["exits"]) == int(x["irq_exits"] or 0), x


def test_deterministic_mode_repeats(tmp_path):
    """--tm-icount: two boots of the same command line give the same
    runs.csv, byte for byte — every counter, guest_cycles and wall_ns (the
    guest's clock follows instructions) — under kvmlab and Linux KVM; so
    does the test machine's own kernel log, timestamps and all."""
    outs = []
    for i in (1, 2):
        d = tmp_path / f"d{i}"
        r = run([KVMLAB, "run", "--tm-icount", "--hv", "kvmlab-shadow,kvm-shadow",
                 "--workload", "syscall,ctxswitch,pgfault", "--run-id", "det",
                 "--results", d], timeout=900)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        outs.append(d)
    rows = [read_csv(d / "det" / "runs.csv") for d in outs]
    assert len(rows[0]) == 6 and all(x["status"] == "ok" for x in rows[0])
    assert all(int(x["wall_ns"]) > 0 and int(x["irq_exits"]) >= 0 for x in rows[0])
    for a, b in zip(*rows):
        assert a == b, {k: (a[k], b[k]) for k in a if a[k] != b[k]}
    logs = [(d / ".tm" / "dmesg.txt").read_text() for d in outs]
    assert logs[0] == logs[1]


PAGING_SPEC = """hv = kvm-shadow, kvmlab-cached, kvmlab-npt
workload = ctxswitch, pgfault, compute
paging = 4level, pae, 2level
param ctxswitch.spaces = 1, 4
param pgfault.pages = 64
"""


def test_paging_axis_runs_every_format_and_reports_them_side_by_side(tmp_path):
    """The paging line runs each workload built in several formats in each
    listed one, param lines sweep every build, and report.md puts the
    formats side by side; a workload built once (compute) runs once."""
    spec = tmp_path / "paging.sweep"
    spec.write_text(PAGING_SPEC)
    r = run([KVMLAB, "--results", tmp_path, "--run-id", "p", "sweep", spec], timeout=1200)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr
    rows = read_csv(tmp_path / "p" / "runs.csv")
    assert all(x["status"] == "ok" for x in rows)
    wls = {(x["workload"], x["params"]) for x in rows}
    for sfx in ("", "-pae", "-2level"):
        assert ("ctxswitch" + sfx, "rounds=20;pages=16;spaces=1") in wls
        assert ("ctxswitch" + sfx, "rounds=20;pages=16;spaces=4") in wls
        assert ("pgfault" + sfx, "rounds=4;pages=64") in wls
    assert len(rows) == 3 * (3 * 2 + 3 + 1)
    for wl in ("ctxswitch-pae", "pgfault-2level"):
        assert len({x["checksum"] for x in rows if x["workload"] == wl and
                    x["params"].endswith(("spaces=4", "pages=64"))}) == 1
    report = (tmp_path / "p" / "report.md").read_text()
    section = report[report.index("## Paging formats"):]
    assert "**ctxswitch** `rounds=20;pages=16;spaces=4`" in section
    assert "**pgfault** `rounds=4;pages=64`" in section
    assert "| hypervisor | 4level | pae | 2level | pae / 4level | 2level / 4level |" in section
    for hv in ("kvm-shadow", "kvmlab-cached", "kvmlab-npt"):
        assert f"| {hv} | " in section
    assert "compute" not in section[:section.index("## Against")]
