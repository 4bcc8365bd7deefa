"""Isolation, limits and lifecycle, in one test-machine boot: guest-physical
addresses outside RAM, random code at CPL0, a page-table flood against the
shadow memory caps, and VMs and the module created and destroyed over and
over, with every close order."""
import re

import pytest

from conftest import TM_RUN, assert_dmesg_clean, read_csv, run

STRATEGIES = ["kvmlab-vtlb", "kvmlab-shadow", "kvmlab-cached", "kvmlab-npt"]
MAXPHYADDR = 40                      # the test machine's CPU (-cpu max)
GPAS = [0x4000000,                   # the first byte past the 64 MiB of RAM
        0xfe001000,                  # the page after the harness's scratch device
        0xfee00000,                  # where an xAPIC would be
        0x100000000,                 # 4 GiB
        (1 << MAXPHYADDR) - 8,       # the last addressable word
        1 << MAXPHYADDR,             # beyond MAXPHYADDR: reserved bits
        0xffffffffff000]
GARBAGE_SEEDS = range(1, 13)
CAP = 32
VM_TYPES = ["0x4b4c0001", "0x4b4c0002", "0x4b4c0003", "0x4b4c0004"]

SCRIPT = r"""
for hv in %(hvs)s; do
  for gpa in %(gpas)s; do
    line=$(bin/kvmlab run --hv $hv --workload gpaprobe --param gpa=$gpa --mem 64 \
           --results /tmp/r 2>&1 | grep 'rep 1:')
    echo "$hv $gpa $line" >> results/gpa.txt
  done
  for s in %(seeds)s; do
    line=$(bin/kvmlab run --hv $hv --workload garbage --param seed=$s --timeout 2 \
           --results /tmp/r 2>&1 | grep 'rep 1:')
    echo "$hv $s $line" >> results/garbage.txt
  done
done
bin/kvmlab run --hv kvmlab-vtlb,kvmlab-shadow,kvmlab-cached --workload ptflood \
    --modparam vtlb_max_tables=%(cap)d --modparam shadow_max_tables=%(cap)d \
    --modparam cached_max_pages=%(cap)d --results results --run-id capped > /dev/null 2>&1
bin/kvmlab run --hv kvmlab-npt --workload ptflood --results results --run-id ref > /dev/null 2>&1
rmmod kvmlab 2>/dev/null
insmod kmod/kvmlab.ko
for t in %(types)s; do bin/kvmlab-lifecycle /dev/kvmlab 250 $t >> results/lifecycle.txt; done
rmmod kvmlab
n=0
for i in $(seq 1 100); do
  insmod kmod/kvmlab.ko mmu=shadow && bin/kvmlab-lifecycle /dev/kvmlab 2 > /dev/null &&
    rmmod kvmlab && n=$((n + 1))
done
echo $n > results/module-cycles.txt
dmesg | grep -c "kvmlab: .*page accounting back to zero" > results/zero-count.txt
dmesg | grep -c "kvmlab: .*leaked" > results/leak-count.txt; true
""" % {"hvs": " ".join(STRATEGIES), "gpas": " ".join(hex(g) for g in GPAS),
       "seeds": " ".join(map(str, GARBAGE_SEEDS)), "cap": CAP, "types": " ".join(VM_TYPES)}


@pytest.fixture(scope="module")
def boot(tmp_path_factory):
    out = tmp_path_factory.mktemp("isolation")
    r = run([TM_RUN, "--results", out, "--timeout", "800", "--", "sh", "-c", SCRIPT], timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    return out


def outcomes(path):
    res = {}
    for line in path.read_text().splitlines():
        hv, key, rest = line.split(" ", 2)
        res[(hv, key)] = rest
    return res


@pytest.mark.parametrize("hv", STRATEGIES)
def test_addresses_outside_ram_reach_no_memory(boot, hv):
    """Below MAXPHYADDR: an MMIO exit naming the gpa (no device there), never
    data; at or above it: #PF with RSVD in the guest."""
    got = outcomes(boot / "gpa.txt")
    for gpa in GPAS:
        line = got[(hv, hex(gpa))]
        if gpa < 1 << MAXPHYADDR:
            assert "error" in line and f"guest MMIO read at gpa {hex(gpa)} (no device there)" in line, line
        else:
            assert re.search(r"\bok\b.*checks 1/1", line), line


@pytest.mark.parametrize("hv", STRATEGIES)
def test_random_code_at_cpl0_ends_cleanly(boot, hv):
    got = outcomes(boot / "garbage.txt")
    for seed in GARBAGE_SEEDS:
        line = got[(hv, str(seed))]
        status = line.split("rep 1:")[1].split()[0]
        assert status in {"error", "timeout", "fail", "panic", "ok"}, line


def test_page_table_flood_is_held_under_the_cap_and_stays_correct(boot):
    ref = read_csv(boot / "ref" / "runs.csv")[0]
    capped = read_csv(boot / "capped" / "runs.csv")
    assert len(capped) == 3
    counters = {}
    for line in (boot / "capped" / "counters.csv").read_text().splitlines()[1:]:
        f = line.split(",")
        counters[(f[0], f[4])] = int(f[5])
    for row in capped:
        assert row["status"] == "ok", row
        assert row["checksum"] == ref["checksum"]
        assert int(row["ops"]) == 4 * 16 * 64           # page tables the guest created
        assert counters[(row["hv"], "shadow_pages_peak")] <= CAP
        assert counters[(row["hv"], "mmu_recycled")] > 0


def test_thousand_vms_and_hundred_module_loads_leak_nothing(boot):
    lines = (boot / "lifecycle.txt").read_text().splitlines()
    assert len(lines) == 4
    for line, t in zip(lines, VM_TYPES):
        assert line.startswith("lifecycle: 250 VMs created and destroyed") and t in line, line
    assert (boot / "module-cycles.txt").read_text().strip() == "100"
    assert int((boot / "zero-count.txt").read_text()) >= 101
    assert (boot / "leak-count.txt").read_text().strip() == "0"
    assert_dmesg_clean(boot)
