"""`./kvmlab boot` and `./kvmlab qemu` from a terminal, as a user types at
them: driven through a pseudo-terminal. Typed commands must reach the guest
shell and run, the terminal must be raw while the guest runs and restored
after, and each documented way out must work (Ctrl-] for boot, the guest's
own power-off for qemu)."""
import os
import pty
import re
import select
import signal
import subprocess
import termios
import time

from conftest import KVMLAB, TOP, assert_dmesg_clean

BOOT = TOP / "build" / "workloads" / "boot"


class Terminal:
    """A command on the slave side of a pty; we are the user at the master."""

    def __init__(self, cmd):
        self.master, self.slave = pty.openpty()
        self.saved = termios.tcgetattr(self.slave)
        self.out = b""
        self.proc = subprocess.Popen([str(c) for c in cmd], stdin=self.slave, stdout=self.slave,
                                     stderr=self.slave, cwd=TOP, start_new_session=True)

    def read_until(self, pattern, timeout):
        end = time.time() + timeout
        while time.time() < end:
            if re.search(pattern, self.out):
                return True
            r, _, _ = select.select([self.master], [], [], 1)
            if r:
                try:
                    self.out += os.read(self.master, 65536)
                except OSError:
                    break
        return re.search(pattern, self.out) is not None

    def type(self, text):
        # One key at a time, as a person types: a UART has a 16-byte FIFO.
        for i in range(len(text)):
            os.write(self.master, text[i:i + 1])
            time.sleep(0.05)

    def wait(self, timeout):
        end = time.time() + timeout
        while self.proc.poll() is None and time.time() < end:
            self.read_until(rb"(?!)", 1)
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.read_until(rb"(?!)", 1)
        return self.proc.returncode

    def close(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        os.close(self.master)
        os.close(self.slave)


def raw_while_running(t):
    attrs = termios.tcgetattr(t.slave)
    return not attrs[3] & (termios.ICANON | termios.ECHO)


def shell_runs_what_is_typed(t, boot_timeout):
    """At the guest's shell prompt, with the terminal raw, a typed command runs."""
    assert t.read_until(rb"shell ready", boot_timeout), t.out[-3000:]
    assert raw_while_running(t)
    time.sleep(2)
    t.type(b"echo typed-$((6*7))-here\r")
    assert t.read_until(rb"typed-42-here", 120), t.out[-3000:]


def test_boot_console_from_a_terminal(tmp_path):
    t = Terminal([KVMLAB, "--results", tmp_path, "boot", "--hv", "kvmlab-cached",
                  "--kernel", BOOT / "vmlinuz", "--initrd", BOOT / "linux-initrd.cpio",
                  "--append", "console=ttyS0 quiet"])
    try:
        shell_runs_what_is_typed(t, 600)
        t.type(b"\x1d")     # Ctrl-]: ends the run
        rc = t.wait(300)
        assert rc == 130, (rc, t.out[-3000:])
        assert b"ended from the console" in t.out, t.out[-3000:]
        assert termios.tcgetattr(t.slave) == t.saved
    finally:
        t.close()
    assert_dmesg_clean(tmp_path)


def test_qemu_console_from_a_terminal(tmp_path):
    t = Terminal([KVMLAB, "--results", tmp_path, "qemu", "--hv", "kvmlab-npt", "--",
                  "-machine", "pc", "-m", "256", "-nographic", "-no-reboot", "-nic", "none",
                  "-vga", "none", "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
                  "-kernel", BOOT / "vmlinuz", "-initrd", BOOT / "linux-initrd.cpio",
                  "-append", "console=ttyS0 quiet"])
    try:
        shell_runs_what_is_typed(t, 900)
        t.type(b"exit\r")   # the guest powers off through isa-debug-exit: QEMU exits 1
        rc = t.wait(300)
        assert rc == 1, (rc, t.out[-3000:])
        assert termios.tcgetattr(t.slave) == t.saved
    finally:
        t.close()
    assert_dmesg_clean(tmp_path)
