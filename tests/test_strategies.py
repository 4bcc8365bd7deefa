"""What distinguishes the MMU strategies, beyond the shared matrix: how the
naive resync's work grows, that the cached strategy's shadow memory stays
under its cap while a guest builds page tables without end, and that each
strategy can be chosen when the module loads."""
import pytest

from conftest import TM_RUN, assert_dmesg_clean, read_csv, run


def counters(path, workload=None):
    out = {}
    for line in path.read_text().splitlines()[1:]:
        f = line.split(",")
        if workload is None or f[1] == workload:
            out[f[4]] = int(f[5])
    return out


def test_resync_work_grows_linearly_with_the_guest_tables(tmp_path):
    script = ('for p in 8 16 32 64; do bin/kvmlab run --hv kvmlab-shadow --workload ctxswitch '
              '--param pages=$p --run-id p$p --results results || exit 1; done')
    r = run([TM_RUN, "--results", tmp_path, "--", "sh", "-c", script], timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    per_resync = {}
    for p in (8, 16, 32, 64):
        c = counters(tmp_path / f"p{p}" / "counters.csv")
        per_resync[p] = c["mmu_resync_checked"] / c["mmu_resync"]
    # Entries checked per resync = the pages the space maps + a constant (kernel entries).
    overhead = {p: per_resync[p] - p for p in per_resync}
    assert max(overhead.values()) - min(overhead.values()) < 0.01, per_resync
    assert_dmesg_clean(tmp_path)


def test_cached_shadow_memory_stays_under_its_cap(tmp_path):
    wl = ["--hv", "kvmlab-cached", "--workload", "ctxswitch,forkwait", "--results", "results",
          "--param", "spaces=64", "--param", "ctxswitch.pages=32", "--param", "forks=300"]
    script = ('bin/kvmlab "$@" --run-id capped --modparam cached_max_pages=64 && '
              'bin/kvmlab "$@" --run-id free')
    r = run([TM_RUN, "--results", tmp_path, "--", "sh", "-c", script, "sh", "run"] + wl,
            timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    for wl_name in ("ctxswitch", "forkwait"):
        capped = counters(tmp_path / "capped" / "counters.csv", wl_name)
        assert capped["shadow_pages_peak"] <= 64, capped
    # 64 spaces need far more than 64 shadow pages: the cap binds, LRU recycles.
    ctx_capped = counters(tmp_path / "capped" / "counters.csv", "ctxswitch")
    ctx_free = counters(tmp_path / "free" / "counters.csv", "ctxswitch")
    assert ctx_free["shadow_pages_peak"] > 64 and ctx_capped["mmu_recycled"] > 0
    # forkwait frees each child's tables; the guest reuses the frames as data,
    # and write flooding unshadows them before the cap is ever reached.
    fork_free = counters(tmp_path / "free" / "counters.csv", "forkwait")
    assert fork_free["mmu_flooded"] > 0
    capped, free = (read_csv(tmp_path / d / "runs.csv") for d in ("capped", "free"))
    assert [x["checksum"] for x in capped] == [x["checksum"] for x in free]
    assert all(x["status"] == "ok" for x in capped + free)
    assert_dmesg_clean(tmp_path)


@pytest.fixture(scope="module")
def selection(tmp_path_factory):
    out = tmp_path_factory.mktemp("sel")
    script = ('for m in vtlb shadow cached npt unsync pv; do insmod kmod/kvmlab.ko mmu=$m && '
              'cat /sys/module/kvmlab/parameters/mmu >> results/mmu.txt && rmmod kvmlab; done; '
              'insmod kmod/kvmlab.ko mmu=tlb 2>/dev/null; echo $? > results/bad.rc; '
              'dmesg | grep "unknown mmu" > results/bad.txt')
    r = run([TM_RUN, "--results", out, "--", "sh", "-c", script], timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return out


def test_every_strategy_selectable_at_load_time(selection):
    assert (selection / "mmu.txt").read_text().split() == ["vtlb", "shadow", "cached", "npt", "unsync", "pv"]


def test_unknown_strategy_lists_the_valid_ones(selection):
    assert (selection / "bad.rc").read_text().strip() != "0"
    assert "unknown mmu 'tlb' (valid: vtlb, shadow, cached, npt, unsync, pv)" in (selection / "bad.txt").read_text()
