"""The course labs (labs/): markers, starters, grading.

For every lab: the starter builds without warnings, its module loads, and
grading fails the lab's checks (the holes are real); the full project passes
every check of every lab; and deliberately wrong solutions (MUTANTS) fail
the checks that should catch them. All module variants are graded in one
test-machine boot (`labs/grade-tm` once per variant), then `./kvmlab lab
grade` itself is run end to end on one starter and on the project."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import KVMLAB, TM_RUN, TOP, assert_dmesg_clean, run

LABS = {1: "1-vtlb", 2: "2-walker", 3: "3-resync", 4: "4-cached", 5: "5-measure"}
CODE_LABS = [1, 2, 3, 4]

# Wrong solutions: (name, lab, file, the project's text, the wrong text, the
# checks that must fail). Each is the project's code with one classic bug.
MUTANTS = [
    ("error-code-without-u", 1, "kmod/mmu/paging.c",
     "w->error |= (user ? KL_PF_U : 0) | (write ? KL_PF_W : 0);",
     "w->error |= (write ? KL_PF_W : 0);",
     {"selftest", "selftest-pae", "selftest-2level", "fuzz-4level"}),
    ("invlpg-forgets-nothing", 1, "kmod/vtlb/vtlb.c",
     "\tkl_stree_zap_gva(vcpu->vm, tree(vcpu), gva);\n\tkl_flush_tlb(vcpu);\n\t/* LAB 1 END */",
     "\t/* LAB 1 END */",
     {"invlpg-ptemod", "invlpg-ptemod-pae"}),
    ("walker-never-sets-d", 2, "kmod/mmu/paging.c",
     "if (level == w->level && write)",
     "if (level == w->level && write && 0)",
     {"walk:walk_accessed_and_dirty", "walk:walk_pae_accessed_and_dirty", "selftest"}),
    ("walker-ignores-cr0-wp", 2, "kmod/mmu/paging.c",
     "if (write && !w->writable && (user || wp))",
     "if (write && !w->writable && (user || (wp && 0)))",
     {"walk:walk_read_only_and_wp", "selftest"}),
    ("resync-checks-only-the-frame", 3, "kmod/mmu-shadow/resync.c",
     "stale = (w.gpa & KL_PT_ADDR) != gpa ||",
     "stale = (w.gpa & KL_PT_ADDR) != gpa; (void)want; if (0)",
     {"selftest", "selftest-pae", "selftest-2level"}),
    ("no-flood-detection", 4, "kmod/mmu-cached/cached.c",
     "if (++sp->write_count >= FLOOD_WRITES || last / size - first / size >= 8) {",
     "if (++sp->write_count >= 1000000) {",
     {"flood-detected", "counters-forkwait"}),
    ("trapped-write-not-propagated", 4, "kmod/mmu-cached/cached.c",
     "\t\t\t\tcached_zap_entry(vm, sp, k);\n\t\t/* LAB 4 STUB",
     "\t\t\t\t(void)k;\n\t\t/* LAB 4 STUB",
     {"selftest", "ptemod"}),
]
# Lab 5's wrong answer: nested-paging intuition applied to cached (flat at K = 512).
WRONG_PREDICTIONS = ("hv,workload,params,metric,value\n"
                     "kvmlab-vtlb,ctxswitch,spaces=512,exits_per_op,22\n"
                     "kvmlab-cached,ctxswitch,spaces=512,exits_per_op,1\n")


def lab(*args, timeout=300):
    return run([KVMLAB, "lab", *args], timeout=timeout)


def copy_tree(dst):
    """The tracked files of the project, as `lab start` copies them."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=TOP, capture_output=True,
                           check=True).stdout
    subprocess.run(["cpio", "-0", "-pdm", "--quiet", str(dst)], cwd=TOP, input=files,
                   check=True)


def build_kmod(tree, strict):
    """Build tree's module; a starter's must build without a warning."""
    r = run(["make", "-C", tree / "kmod", f"BUILD={tree}/build"], timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert not strict or "warning:" not in r.stderr, r.stderr
    return tree / "kmod" / "kvmlab.ko"


def unit_walk(paging_c, tmp):
    """The walker's unit tests against one paging.c: {test: passed}."""
    out = tmp / "unit"
    r = run(["make", "-s", "-B", "-C", TOP / "tests" / "unit", f"UNIT={out}", f"PAGING={paging_c}"])
    assert r.returncode == 0, r.stdout + r.stderr
    r = run([out, "-v", "walk"])
    res = {}
    for line in r.stdout.splitlines():
        m = re.match(r"(PASS|FAIL) (\w+)", line)
        if m:
            res[m.group(2)] = res.get(m.group(2), True) and m.group(1) == "PASS"
    return res


def test_markers_are_well_formed_and_labs_listed():
    r = lab("check")
    assert r.returncode == 0, r.stderr
    r = lab("list")
    assert r.returncode == 0, r.stderr
    assert [line.split()[1] for line in r.stdout.splitlines()] == \
        [name.split("-", 1)[1] for name in LABS.values()], r.stdout
    for n, name in LABS.items():
        d = TOP / "labs" / name
        text = (d / "README.md").read_text()
        for section in ("## Background", "## Questions", "## Grading"):
            assert section in text, (name, section)
        assert (d / "checks").is_file()


def test_malformed_markers_and_bad_arguments_get_clear_errors(tmp_path):
    f = tmp_path / "x.c"
    f.write_text("int a;\n/* LAB 1 BEGIN: x */\nint b;\n")
    r = lab("cut", "1", f)
    assert r.returncode == 1 and "x.c:2: LAB 1 BEGIN without END" in r.stderr, r.stderr
    f.write_text("/* LAB 1 BEGIN: x */\n/* LAB 1 BEGIN: y */\n/* LAB 1 END */\n")
    r = lab("cut", "1", f)
    assert r.returncode == 1 and "BEGIN inside another" in r.stderr, r.stderr
    f.write_text("int a;\n/* LAB 1 END */\n")
    assert "END without BEGIN" in lab("cut", "1", f).stderr
    assert "no lab 9" in lab("start", "9", tmp_path / "s").stderr
    assert "not a lab number" in lab("grade", "x").stderr
    assert "no file" in lab("cut", "1", tmp_path / "missing.c").stderr
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "f").write_text("")
    r = lab("start", "1", tmp_path / "busy")
    assert r.returncode == 2 and "not empty" in r.stderr, r.stderr
    r = lab("grade", "1", tmp_path)
    assert r.returncode == 2 and "not a kvmlab tree" in r.stderr, r.stderr
    assert "unknown command" in lab("frobnicate").stderr


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """Every module to grade: the project's, each lab's starter, each mutant."""
    base = tmp_path_factory.mktemp("labs")
    t = {"full": {"ko": TOP / "build" / "kmod" / "kvmlab.ko", "labs": list(LABS)}}
    for n in CODE_LABS:
        d = base / f"starter{n}"
        r = lab("start", str(n), d)
        assert r.returncode == 0, r.stderr
        t[f"starter{n}"] = {"dir": d, "labs": [n]}
    r = lab("start", "5", base / "starter5")
    assert r.returncode == 0, r.stderr
    t["starter5"] = {"dir": base / "starter5", "labs": [5], "ko": t["full"]["ko"]}
    for name, n, path, old, new, must in MUTANTS:
        d = base / name
        copy_tree(d)
        src = (d / path).read_text()
        assert src.count(old) == 1, (name, "the project's text moved: update MUTANTS")
        (d / path).write_text(src.replace(old, new))
        # Only the checks that must catch it (and the load): a wrong MMU
        # often hangs the guest, and each hung run costs its timeout.
        t[name] = {"dir": d, "labs": [n], "only": must | {"module-loads"}}
    for label, v in t.items():
        if "ko" not in v:
            v["ko"] = build_kmod(v["dir"], label.startswith("starter"))
    wrong = base / "wrong-predictions.csv"
    wrong.write_text(WRONG_PREDICTIONS)
    t["wrong-predictions"] = {"ko": t["full"]["ko"], "labs": [5], "predictions": wrong}
    t["base"] = base
    return t


def test_starters_cut_only_their_lab(trees):
    for n in CODE_LABS:
        d = trees[f"starter{n}"]["dir"]
        todo = subprocess.run(["grep", "-rln", f"LAB {n} TODO", "kmod"], cwd=d,
                              capture_output=True, text=True).stdout.split()
        assert todo, n
        begin = subprocess.run(["grep", "-rl", f"LAB {n} BEGIN", "kmod"], cwd=d,
                               capture_output=True, text=True).stdout.split()
        assert begin == [], (n, begin)
        # The starter is a git repository whose one commit is the starter.
        log = subprocess.run(["git", "log", "--oneline"], cwd=d, capture_output=True,
                             text=True).stdout
        assert f"lab {n} starter" in log, log
        # Other labs' code is all there; the answer keys under labs/ are not.
        other = 1 if n != 1 else 2
        assert subprocess.run(["grep", "-rq", f"LAB {other} BEGIN", "kmod"], cwd=d).returncode == 0
        assert "kvmlab-cached,ctxswitch,spaces=512" not in \
            (d / "labs" / "5-measure" / "predictions.csv").read_text()


def test_walker_unit_checks_see_the_holes(trees, tmp_path):
    full = unit_walk(TOP / "kmod" / "mmu" / "paging.c", tmp_path)
    assert len(full) >= 17 and all(full.values()), full
    starter = unit_walk(trees["starter2"]["dir"] / "kmod" / "mmu" / "paging.c", tmp_path)
    assert not starter["walk_accessed_and_dirty"] and not starter["walk_reserved_bits"], starter
    assert not starter["walk_read_only_and_wp"], starter
    for name, n, *_ , must in MUTANTS:
        if n != 2:
            continue
        res = unit_walk(trees[name]["dir"] / "kmod" / "mmu" / "paging.c", tmp_path)
        for c in must:
            if c.startswith("walk:"):
                assert res[c[5:]] is False, (name, c, res)
    # Starter 1 changes the walker's error code only: the unit tests of it fail too.
    s1 = unit_walk(trees["starter1"]["dir"] / "kmod" / "mmu" / "paging.c", tmp_path)
    assert not s1["walk_user_supervisor"], s1


@pytest.fixture(scope="module")
def graded(trees):
    """One boot: grade-tm for every (variant, lab)."""
    base = trees["base"]
    stage = base / "stage"
    stage.mkdir()
    lines = ["set -u"]
    adds = []
    for label, v in trees.items():
        if label == "base":
            continue
        ko = stage / f"{label}.ko"
        shutil.copy(v["ko"], ko)
        adds.append(ko)
        for n in v["labs"]:
            preds = v.get("predictions")
            if n == 5 and preds is None:
                src = v.get("dir", TOP) / "labs" / LABS[5] / "predictions.csv"
                preds = stage / f"{label}-predictions.csv"
                shutil.copy(src, preds)
            if preds is not None and preds not in adds:
                adds.append(preds)
            checks = stage / (f"checks{n}-{label}" if "only" in v else f"checks{n}")
            if not checks.exists():
                lines_ = (TOP / "labs" / LABS[n] / "checks").read_text().splitlines()
                if "only" in v:
                    lines_ = [x for x in lines_ if x.split()[1:2] and x.split()[1] in v["only"]]
                checks.write_text("\n".join(lines_) + "\n")
                adds.append(checks)
            p = f" input/{Path(preds).name}" if n == 5 else ""
            lines.append(f"sh input/grade-tm results/{label}-{n}.txt input/{label}.ko "
                         f"input/{checks.name}{p}")
    (stage / "all.sh").write_text("\n".join(lines) + "\n")
    adds += [stage / "all.sh", TOP / "labs" / "grade-tm",
             TOP / "tests" / "reference" / "quick-sweep.csv"]
    res = base / "results"
    cmd = [TM_RUN, "--results", res, "--timeout", "2400"]
    for a in adds:
        cmd += ["--add", a]
    r = run(cmd + ["--", "sh", "input/all.sh"], timeout=2500)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-3000:]
    assert_dmesg_clean(res)
    out = {}
    for f in res.glob("*-[0-9].txt"):
        checks = {}
        for line in f.read_text().splitlines():
            verdict, _pts, name, *_ = line.split(" ", 3) + [""]
            checks[name] = verdict == "PASS"
        label, n = f.stem.rsplit("-", 1)
        out[(label, int(n))] = checks
    return out


def test_the_project_passes_every_lab(graded):
    for n in LABS:
        checks = graded[("full", n)]
        assert checks and all(checks.values()), (n, checks)


def test_every_starter_loads_and_fails_its_lab(graded):
    for n in LABS:
        checks = graded[(f"starter{n}", n)]
        failed = [c for c, ok in checks.items() if not ok]
        assert failed, (n, checks)
        if n in CODE_LABS:
            assert checks["module-loads"], (n, checks)
            # The hole is real: the lab's main guest check fails.
            assert not checks["selftest"], (n, checks)
    assert not graded[("starter5", 5)]["predict"]


def test_wrong_solutions_fail_the_checks_that_should_catch_them(graded):
    for name, n, *_, must in MUTANTS:
        checks = graded[(name, n)]
        assert checks["module-loads"], (name, checks)
        for c in must:
            if c.startswith("walk:"):
                continue	# host-side: test_walker_unit_checks_see_the_holes
            assert checks.get(c) is False, (name, c, checks)
    wrong = graded[("wrong-predictions", 5)]
    assert wrong["predict:kvmlab-vtlb"] and not wrong["predict:kvmlab-cached"], wrong


def test_lab_grade_end_to_end(trees):
    """The command itself: a starter scores below full and exits 1; the
    project scores full marks and exits 0."""
    r = lab("grade", "3", trees["starter3"]["dir"], timeout=900)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-3000:]
    m = re.search(r"lab 3: (\d+) of (\d+) checks passed; score (\d+)/(\d+)", r.stdout)
    assert m and int(m.group(1)) < int(m.group(2)) and int(m.group(3)) < int(m.group(4)), r.stdout
    assert re.search(r"FAIL +3 +selftest .*failed guest checks", r.stdout), r.stdout
    r = lab("grade", "2", timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    m = re.search(r"lab 2: (\d+) of (\d+) checks passed; score (\d+)/(\d+)", r.stdout)
    assert m and m.group(1) == m.group(2) and m.group(3) == m.group(4), r.stdout
    assert "PASS  1  walk:walk_reserved_bits" in r.stdout, r.stdout
