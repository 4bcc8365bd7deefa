"""kvmlab on Intel VT-x (issue 18), in the Intel test machine: Bochs with a
Skylake-X (VT-x, EPT, unrestricted guest), `testmachine/run --tm bochs`.

One boot, because a Bochs boot takes minutes: the module loads with the VMX
backend, the ABI test passes on it, it refuses VMs while kvm_intel holds VMX,
a harness killed in KVM_RUN leaves nothing behind, and a sweep runs under
every kvmlab strategy and both kvm_intel modes (the yardstick, under the
names kvm-shadow and kvm-npt). The counters of a workload that is in the
quick sweep are compared with tests/reference/quick-sweep.csv, taken on the
AMD machine: the strategies are the same code on both vendors, so their MMU
counters and the guests' checksums must be the same numbers.

`make test` runs sweeps/vmx-slice.sweep (selftest and ctxswitch);
`make test-vmx` (KVMLAB_VMX_ALL=1) runs sweeps/vmx.sweep: the quick sweep's
workloads and the 32-bit, real-mode and Multiboot guests.

The ABI test is not run against kvm_intel here: its memslot-kick check spins
a real-mode guest with interrupts off, and under kvm_intel that hangs Bochs
for good (Bochs masks host interrupts by the guest's IF after a VM entry;
kvmlab gives such guests a VMX-preemption-timer slice, kvm_intel does not).
"""
import json
import os
import subprocess

import pytest

from conftest import HARNESS, TM_RUN, TOP, assert_dmesg_clean, read_csv, run

ALL = bool(os.environ.get("KVMLAB_VMX_ALL"))
SPEC = TOP / "sweeps" / ("vmx.sweep" if ALL else "vmx-slice.sweep")
REFERENCE = TOP / "tests" / "reference" / "quick-sweep.csv"
KEY = ("hv", "workload", "params", "rep")
KVMLAB_HVS = ["kvmlab-vtlb", "kvmlab-shadow", "kvmlab-cached", "kvmlab-npt", "kvmlab-unsync",
              "kvmlab-pv"]
# What the strategies decide, whichever vendor runs them. Linux KVM's own
# counters are its business (kvm_intel and kvm_amd differ), its guests'
# checksums are not.
MMU_COUNTERS = ["pf_fixed", "pf_guest", "tlb_flush", "invlpg", "mmu_pte_write",
                "mmu_shadow_zapped", "mmu_cache_miss", "mmu_flooded", "mmu_recycled",
                "shadow_pages_peak", "pages_4k", "insn_emulation"]


def expected(hv, field, amd_value):
    """The AMD reference's number as the Intel machine must show it. One
    difference is the hardware's: the AMD test machine's kernel runs 5-level
    paging, so NPT walks a PML5 that kvmlab-npt puts over its tree (one more
    table page, kmod/mmu-npt/README.md); EPT walks four levels."""
    if hv == "kvmlab-npt" and field == "shadow_pages_peak":
        return str(int(amd_value) - 1)
    return amd_value

SCRIPT = r"""
dmesg -c > /dev/null
insmod kmod/kvmlab.ko && dmesg | grep 'kvmlab: ' > results/load.txt
bin/kvmlab-abi-test /dev/kvmlab > results/abi-kvmlab.txt; echo $? > results/abi-kvmlab.rc
rmmod kvmlab

# Until module $1 has a user (the harness opened its device), then a little
# longer: the VM is running. Guest time in Bochs crawls while a nested guest
# runs (testmachine/README.md), so a fixed sleep would cost minutes.
wait_for_vm() {
    n=0
    while [ "$(cat /sys/module/$1/refcnt 2>/dev/null || echo 0)" = 0 ] && [ $n -lt 400 ]; do
        sleep 0.05; n=$((n + 1))
    done
    sleep 0.1
}

# A Linux KVM guest exists: kvm_intel holds VMX, kvmlab must refuse VMs.
# Its VM shows in debugfs (a <pid>-<fd> folder) once it exists. The guest
# sleeps in HLT between timer interrupts, 100 s of them: one that spun
# with interrupts off and no exits would hang Bochs (kvm_intel has no time
# slice for Bochs' interrupt bug; kmod/vmx/vmx.c, inject_events).
mount -t debugfs none /sys/kernel/debug 2>/dev/null
modprobe kvm_intel
bin/kvmlab run --hv kvm --workload multiboot-hello --param ticks=100000 --results /tmp/r >/dev/null 2>&1 &
pid=$!; n=0
while ! ls /sys/kernel/debug/kvm 2>/dev/null | grep -q -- - && [ $n -lt 400 ]; do
    sleep 0.05; n=$((n + 1))
done
insmod kmod/kvmlab.ko
bin/kvmlab-abi-test --expect-busy /dev/kvmlab > results/busy.txt; echo $? > results/busy.rc
kill -9 $pid; wait $pid; rmmod kvmlab; modprobe -r kvm_intel

# kill -9 of the harness in the middle of KVM_RUN, then unload.
bin/kvmlab run --hv kvmlab-cached --workload ptemod --param updates=100000000 --results /tmp/r >/dev/null 2>&1 &
pid=$!; wait_for_vm kvmlab; kill -9 $pid; wait $pid
rmmod kvmlab; echo $? > results/rmmod.rc

bin/kvmlab run --plan input/plan --results results --run-id vmx > results/run.txt 2>&1
echo $? > results/run.rc
dmesg | grep kvmlab > results/kvmlab-dmesg.txt
"""


@pytest.fixture(scope="module")
def boot(tmp_path_factory):
    out = tmp_path_factory.mktemp("vmx")
    (out / "plan-dir").mkdir()
    plan = subprocess.run([HARNESS, "sweep-plan", SPEC, out / "plan-dir"], capture_output=True,
                          text=True, check=True, cwd=TOP).stdout
    assert plan.count("\n") >= 20, plan
    (out / "plan").write_text(plan)
    (out / "vmx.sh").write_text(SCRIPT)
    r = run([TM_RUN, "--tm", "bochs", "--timeout", "2400" if ALL else "900", "--results", out,
             "--add", out / "plan", "--add", out / "vmx.sh", "--", "sh", "input/vmx.sh"],
            timeout=2500 if ALL else 1000)
    assert r.returncode == 0, r.stdout[-5000:] + r.stderr
    return out


def rows(boot):
    return {tuple(x[k] for k in KEY): x for x in read_csv(boot / "vmx" / "runs.csv")}


def test_module_loads_with_the_vmx_backend_and_ept(boot):
    load = (boot / "load.txt").read_text()
    assert "vendor=vmx, nested paging: ept" in load, load
    assert "VMX with EPT" in load and "with unrestricted guest" in load, load


def test_abi_test_passes_on_vmx(boot):
    assert (boot / "abi-kvmlab.rc").read_text().strip() == "0", (boot / "abi-kvmlab.txt").read_text()
    assert "FAIL" not in (boot / "abi-kvmlab.txt").read_text()


def test_refuses_vmx_held_by_kvm_intel(boot):
    assert (boot / "busy.rc").read_text().strip() == "0", (boot / "busy.txt").read_text()
    assert "another hypervisor (kvm_intel?) is using it" in (boot / "kvmlab-dmesg.txt").read_text()


def test_kill_during_run_then_unload_leaks_nothing(boot):
    assert (boot / "rmmod.rc").read_text().strip() == "0"
    log = (boot / "kvmlab-dmesg.txt").read_text()
    assert log.count("page accounting back to zero") >= 3, log
    assert "leaked" not in log
    assert_dmesg_clean(boot)


def test_every_run_passes(boot):
    assert (boot / "run.rc").read_text().strip() == "0", (boot / "run.txt").read_text()[-4000:]
    got = rows(boot)
    bad = {k: v["status"] for k, v in got.items() if v["status"] != "ok"}
    assert not bad, bad
    hvs = {k[0] for k in got}
    assert hvs == set(KVMLAB_HVS) | {"kvm-shadow", "kvm-npt"}, hvs


def test_checksums_agree_across_hypervisors(boot):
    by_run = {}
    for (hv, wl, params, rep), v in rows(boot).items():
        by_run.setdefault((wl, params, rep), {})[hv] = v["checksum"]
    for run_key, sums in by_run.items():
        assert len(set(sums.values())) == 1, (run_key, sums)


def test_same_numbers_as_on_the_amd_machine(boot):
    """Runs the quick sweep also has: the guest's checksum under every
    hypervisor, and under kvmlab's strategies every MMU counter, are what
    the AMD machine gave (tests/reference/quick-sweep.csv)."""
    want = {tuple(x[k] for k in KEY): x for x in read_csv(REFERENCE)}
    common = [k for k in rows(boot) if k in want]
    assert len(common) >= 16, common
    diffs = {}
    got = rows(boot)
    for k in common:
        fields = ["checksum"] + (MMU_COUNTERS if k[0].startswith("kvmlab-") else [])
        d = {f: (want[k][f], got[k][f]) for f in fields
             if expected(k[0], f, want[k][f]) != got[k][f]}
        if d:
            diffs[k] = d
    assert not diffs, "VMX against AMD (reference, VMX):\n" + \
        "\n".join(f"{k}: {d}" for k, d in sorted(diffs.items()))


def test_yardstick_is_kvm_intel(boot):
    meta = json.loads((boot / "vmx" / "meta.json").read_text())
    assert meta["virtualization"].startswith("Intel VT-x"), meta
    mods = {h["name"]: (h["module"], h["module_params"]) for h in meta["hypervisors"]}
    assert mods["kvm-shadow"] == ("kvm_intel", "ept=0"), mods
    assert mods["kvm-npt"] == ("kvm_intel", "ept=1"), mods


@pytest.mark.skipif(not ALL, reason="make test-vmx: a second Bochs boot, with two CPUs")
def test_vcpu_thread_moving_between_host_cpus(tmp_path):
    """Two CPUs; the harness moves its vCPU thread to the other CPU at
    every return from KVM_RUN (--hop-exits 1) while every kvmlab strategy
    runs: each entry after a move VMCLEARs the VMCS on the CPU it left (by
    IPI) and loads it on the new one. Every run must pass with the checksum
    every other strategy gets (ctxswitch's the AMD reference's). In `in`
    every operation is an I/O exit to userspace, so the vCPU entered on
    another CPU at least once per operation, and at most once per exit."""
    r = run([TM_RUN, "--tm", "bochs", "--smp", "2", "--timeout", "1500", "--results", tmp_path,
             "--", "bin/kvmlab", "run", "--hv", ",".join(KVMLAB_HVS),
             "--workload", "selftest,ctxswitch,in", "--param", "ctxswitch.rounds=20",
             "--param", "ctxswitch.spaces=8", "--param", "in.n=500", "--hop-exits", "1",
             "--run-id", "moved", "--results", "results"], timeout=1600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    moved = read_csv(tmp_path / "moved" / "runs.csv")
    assert len(moved) == 18, moved
    assert all(row["status"] == "ok" for row in moved), moved
    for wl in ("selftest", "ctxswitch", "in"):
        assert len({row["checksum"] for row in moved if row["workload"] == wl}) == 1, moved
    amd = {x["checksum"] for x in read_csv(REFERENCE)
           if x["workload"] == "ctxswitch" and x["params"] == "rounds=20;pages=16;spaces=8"}
    ctx = {row["checksum"] for row in moved if row["workload"] == "ctxswitch"}
    assert ctx == amd, (ctx, amd)
    ins = [row for row in moved if row["workload"] == "in"]
    print("in: ops, exits, cpu_migrations:",
          [(x["hv"], x["ops"], x["exits"], x.get("cpu_migrations")) for x in ins])
    migrations = {}
    for line in (tmp_path / "moved" / "counters.csv").read_text().splitlines()[1:]:
        f = line.split(",")
        if f[4] == "cpu_migrations" and f[1] == "in":
            migrations[f[0]] = int(f[5])
    assert sorted(migrations) == sorted(KVMLAB_HVS), migrations
    for x in ins:
        assert int(x["ops"]) <= migrations[x["hv"]] <= int(x["exits"]) + 1, (x, migrations)
    assert_dmesg_clean(tmp_path)
