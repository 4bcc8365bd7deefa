"""The test machine: boots, runs a command, brings results and its exit
status back, and fails clearly (not by hanging) when the guest kernel
panics, logs a WARN/BUG/backtrace, or runs past its time."""
from conftest import CHECK_DMESG, TM_RUN, assert_dmesg_clean, run


def test_runs_command_and_returns_results_and_status(tmp_path):
    r = run([TM_RUN, "--results", tmp_path, "--",
             "sh", "-c", 'echo "$1|$2" > results/args.txt; uname -r > results/k.txt; exit 5',
             "sh", "two words", "it's"], timeout=120)
    assert r.returncode == 5, r.stdout + r.stderr
    assert (tmp_path / "args.txt").read_text() == "two words|it's\n"
    assert (tmp_path / "k.txt").read_text().strip().endswith("-amd64")
    assert_dmesg_clean(tmp_path)


def test_guest_has_svm_with_nested_paging_and_linux_kvm(tmp_path):
    r = run([TM_RUN, "--results", tmp_path, "--", "sh", "-c",
             "grep -qw svm /proc/cpuinfo && grep -qw npt /proc/cpuinfo && "
             "modprobe kvm_amd npt=1 && test -c /dev/kvm && modprobe -r kvm_amd"], timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_kernel_panic_fails_clearly(tmp_path):
    r = run([TM_RUN, "--results", tmp_path, "--", "sh", "-c", "echo c > /proc/sysrq-trigger"],
            timeout=120)
    assert r.returncode == 3
    assert "test machine: guest kernel failed:" in r.stderr
    assert "Kernel panic" in r.stderr


def test_backtrace_in_kernel_log_fails_the_boot(tmp_path):
    # sysrq-l prints a backtrace, the same shape a WARN leaves in the log.
    r = run([TM_RUN, "--results", tmp_path, "--", "sh", "-c", "echo l > /proc/sysrq-trigger"],
            timeout=120)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "kernel log of the test machine is not clean" in r.stderr


def test_timeout_fails_clearly(tmp_path):
    r = run([TM_RUN, "--results", tmp_path, "--timeout", "12", "--", "sleep", "600"],
            timeout=60)
    assert r.returncode == 3
    assert "timed out after 12s" in r.stderr


def test_missing_command_and_bad_option(tmp_path):
    r = run([TM_RUN, "--results", tmp_path], timeout=30)
    assert r.returncode == 3 and "no command given" in r.stderr
    r = run([TM_RUN, "--bogus", "--", "true"], timeout=30)
    assert r.returncode == 3 and "unknown option '--bogus'" in r.stderr


def test_check_dmesg_flags_warnings(tmp_path):
    clean = tmp_path / "clean.txt"
    clean.write_text("[    0.1] Linux version 6.1\n[    0.2] kvmlab: module verification failed\n")
    bad = tmp_path / "bad.txt"
    bad.write_text("[    1.0] ok\n[    2.0] WARNING: CPU: 0 PID: 1 at arch/x86/kvm/mmu.c:42\n")
    assert run([CHECK_DMESG, clean]).returncode == 0
    r = run([CHECK_DMESG, bad])
    assert r.returncode == 1 and "WARNING: CPU: 0" in r.stdout


def test_missing_device_is_one_clear_line(tmp_path):
    # No hypervisor module is loaded, so /dev/kvm does not exist.
    r = run([TM_RUN, "--results", tmp_path, "--", "sh", "-c",
             "bin/kvmlab run --hv kvm --workload selftest 2> results/err.txt; "
             "echo $? > results/rc.txt"], timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "rc.txt").read_text().strip() == "1"
    err = (tmp_path / "err.txt").read_text()
    assert "kvmlab: cannot open /dev/kvm: No such file or directory" in err

