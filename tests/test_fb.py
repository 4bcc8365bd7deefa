"""The framebuffer (issue 15): `--fb mmio` (every guest store an MMIO exit,
2007's way) and `--fb dirty` (guest RAM, redrawn from the dirty log at each
refresh), announced to workloads, to Multiboot kernels and to Linux (a VESA
linear framebuffer that vesafb and fbcon draw the console on), with PNG
snapshots. Both modes must show the same screen; the counters say what
each costs: one MMIO exit per store against one dirty fault per page."""
import re
import struct
import zlib

import pytest

from conftest import TM_RUN, assert_dmesg_clean, read_csv, run

STRATEGIES = ["vtlb", "shadow", "cached", "npt"]
FRAMES = 5
SCRIPT = "\n".join(
    ["insmod kmod/kvmlab.ko || exit 1", "K=bin/kvmlab"]
    + [f"$K run --hv kvmlab-{s} --workload fbdraw --param frames={FRAMES} --fb {m} "
       f"--fb-snapshot results/fbdraw-{s}-{m}.png --run-id fbdraw-{s}-{m} >/dev/null 2>&1"
       for s in STRATEGIES for m in ("mmio", "dirty")]
    + [f"$K boot --hv kvmlab-shadow --kernel workloads/boot/multiboot-hello.elf --mem 16 "
       f"--fb {m} --fb-snapshot results/mb-{m}.png --append 'kvmlab.ticks=3 kvmlab.apic_ticks=3' "
       f"> results/mb-{m}.out 2>&1; echo $? > results/mb-{m}.rc" for m in ("mmio", "dirty")]
    + ["$K run --hv kvmlab-npt --workload fbdraw >/dev/null 2> results/nofb.err; "
       "echo $? > results/nofb.rc",
       "$K boot --hv kvmlab-npt --kernel workloads/boot/vmlinuz "
       "--initrd workloads/boot/linux-initrd.cpio --fb dirty --fb-snapshot results/linux.png "
       "--append 'console=tty0 console=ttyS0 acpi=off tsc=reliable "
       "vt.global_cursor_default=0 kvmlab.run=fbtext' > results/linux.out 2>&1; "
       "echo $? > results/linux.rc",
       "rmmod kvmlab"]) + "\n"


def read_png(path):
    """(width, height, rows of (r, g, b) tuples) of an 8-bit RGB PNG, as the harness writes."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert (depth, color) == (8, 2)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, stride, rows, prev = zlib.decompress(idat), width * 3, [], bytearray(width * 3)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - 3] if i >= 3 else 0
            b, c = prev[i], prev[i - 3] if i >= 3 else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[x * 3:x * 3 + 3]) for x in range(width)])
        prev = line
    return width, height, rows


@pytest.fixture(scope="module")
def boot(tmp_path_factory):
    out = tmp_path_factory.mktemp("fb")
    r = run([TM_RUN, "--timeout", "600", "--results", out, "--", "sh", "-c", SCRIPT], timeout=660)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert_dmesg_clean(out)
    return out


def counters(boot, run_id):
    return {r["counter"]: int(r["delta"]) for r in read_csv(boot / run_id / "counters.csv")}


def stores(boot, run_id):
    row = [c for c in read_csv(boot / run_id / "checks.csv") if c["check"] == "fbdraw_stores"]
    return int(row[0]["detail"])


def test_both_modes_draw_the_same_frames_under_every_strategy(boot):
    images = {(s, m): (boot / f"fbdraw-{s}-{m}.png").read_bytes()
              for s in STRATEGIES for m in ("mmio", "dirty")}
    assert len(set(images.values())) == 1, "the snapshots differ"
    sums = set()
    for s in STRATEGIES:
        for m in ("mmio", "dirty"):
            row = read_csv(boot / f"fbdraw-{s}-{m}" / "runs.csv")[0]
            assert row["status"] == "ok" and row["ops"] == str(FRAMES), row
            sums.add(row["checksum"])
    assert len(sums) == 1
    _, _, rows = read_png(boot / "fbdraw-npt-dirty.png")
    # The last frame's rectangle: frame 4 at (100 + 4*13, 40 + 4*7), 96x64.
    assert rows[40 + 28 + 10][100 + 52 + 10] != (0, 0, 0)
    assert rows[40 + 28 - 2][100 + 52 + 10] == (0, 0, 0)


def test_mmio_mode_exits_on_every_store_and_dirty_mode_on_pages(boot):
    for s in STRATEGIES:
        mmio = counters(boot, f"fbdraw-{s}-mmio")
        dirty = counters(boot, f"fbdraw-{s}-dirty")
        n = stores(boot, f"fbdraw-{s}-mmio")
        assert mmio["mmio_exits"] == mmio["fb_mmio_writes"] == n, (s, mmio, n)
        assert mmio["fb_mmio_reads"] == 0 and mmio["fb_dirty_pages"] == 0, (s, mmio)
        assert dirty["mmio_exits"] == 0 and dirty["fb_mmio_writes"] == 0, (s, dirty)
        # Each page the guest wrote since a refresh: one dirty fault, one page redrawn.
        assert dirty["dirty_faults"] == dirty["fb_dirty_pages"] > 0, (s, dirty)
        assert dirty["fb_lines_redrawn"] == dirty["fb_dirty_pages"], (s, dirty)
        print(f"{s}: exits per frame mmio {mmio['exits'] / FRAMES:.0f}, "
              f"dirty {dirty['exits'] / FRAMES:.1f}")


def test_a_multiboot_kernel_finds_the_framebuffer_in_its_information(boot):
    for m in ("mmio", "dirty"):
        out = (boot / f"mb-{m}.out").read_text()
        assert (boot / f"mb-{m}.rc").read_text().strip() == "1", out
        assert "framebuffer: 1024x768x32 at 0xe0000000" in out and "0 failures" in out, out
    assert (boot / "mb-mmio.png").read_bytes() == (boot / "mb-dirty.png").read_bytes()
    _, _, rows = read_png(boot / "mb-dirty.png")
    assert rows[0][0] == rows[31][63] == (0, 0xc0, 0xff) and rows[32][0] == (0, 0, 0)


def test_a_workload_without_a_framebuffer_fails_clearly(boot):
    assert (boot / "nofb.rc").read_text().strip() == "1"


def test_linux_draws_its_console_on_the_framebuffer(boot):
    out = (boot / "linux.out").read_text()
    assert (boot / "linux.rc").read_text().strip() == "1", out[-3000:]
    assert "VESA VGA" in out, out[-3000:]       # /proc/fb: vesafb took it
    width, height, rows = read_png(boot / "linux.png")
    assert (width, height) == (1024, 768)
    # The bar of 20 full blocks: 160 pixels of one colour in 16 rows from x=0.
    bars = [y for y in range(height - 16)
            if all(rows[y + k][x] == rows[y][0] != (0, 0, 0) for k in range(16) for x in (0, 80, 159))
            and rows[y][160] != rows[y][0]]
    assert bars, "no bar of full blocks on the screen"
    y = bars[0]
    # Above it, the kernel's boot text: many lit pixels in the rows of text.
    lit = sum(1 for r in rows[:y - 16] for p in r[::2] if p != (0, 0, 0))
    assert lit > 5000, lit
    c = counters_boot(out)
    assert c["fb_dirty_pages"] >= c["dirty_faults"] > 0, c


def counters_boot(out):
    """The counters `kvmlab boot` prints at the end."""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^  (\w+) +(\d+)$", out, re.M)}
