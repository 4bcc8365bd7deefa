# kvmlab — see README.md. `make run` is the main job, `make test` the tests;
# both install what they need from Debian's registry first (as root).

BUILD    := $(CURDIR)/build
PYTHON   := /usr/bin/python3
DEB_PKGS := build-essential qemu-system-x86 linux-image-amd64 linux-headers-amd64 \
            busybox-static cpio kmod gnuplot-nox python3-pytest libpfm4-dev gcc-multilib \
            libpng-dev zlib1g-dev \
            linux-source-6.1 \
            bochs bochs-term bochsbios vgabios grub-pc-bin grub-common xorriso mtools \
            slurmctld slurmd slurm-client munge

.PHONY: all deps build harness workloads kmod abitest unit testmachine run run-linux test test-qemu test-kselftest test-migrate test-smp test-boot test-vmx test-labs test-slurm fuzz-benchmark clean

all: build

# Installs only what is missing, so it is quick when nothing is.
deps:
	@missing=$$(for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

build: harness workloads kmod abitest testmachine

harness:
	$(MAKE) -C harness BUILD=$(BUILD)

workloads:
	$(MAKE) -C workloads BUILD=$(BUILD)

# kvmlab.ko, against the test machine's kernel (KDIR=... for another).
kmod:
	$(MAKE) -C kmod BUILD=$(BUILD)

# A C test of the ioctl ABI's edges, run inside the test machine by pytest.
abitest: harness
	$(MAKE) -C tests/abi BUILD=$(BUILD)

# Host unit tests, nothing booted: the decoder, the guest page walker, the
# device models and the sweep-spec parser (tests/unit). Seconds.
unit: harness workloads
	$(MAKE) -C tests/unit BUILD=$(BUILD) run

# The test machine's initramfs carries the harness, the workloads and kvmlab.ko.
testmachine: harness workloads kmod abitest
	$(MAKE) -C testmachine BUILD=$(BUILD)

# The main job: the default sweep (sweeps/default.sweep), its table and
# results/<run-id>/report.md. `./kvmlab sweep --quick` is the small one.
run: deps build
	./kvmlab sweep

# The Linux guest under every hypervisor (sweeps/linux.sweep, 40 runs, about 20 min).
run-linux: deps build
	./kvmlab sweep sweeps/linux.sweep

# The differential MMU fuzzer's benchmark target: a million operations per
# shadow strategy per paging format against nested paging, zero mismatches
# (the tests run fewer).
fuzz-benchmark: deps build
	for paging in 4level pae 2level; do \
		./kvmlab fuzz mmu --hv kvmlab-vtlb,kvmlab-shadow,kvmlab-cached,kvmlab-unsync,kvmlab-pv \
			--paging $$paging \
			--seed 1 --ops 1000000 || exit 1; \
	done

# The unit tests first: they take seconds and need no test machine.
# Some tests run beside the rest of the suite (QEMU's machines, one core)
# rather than after it, one after the other on the second core, their report
# printed at the end: tests/test_vmx.py (the Intel test machine, one long
# single-threaded Bochs boot), tests/test_labs.py (every lab's starter,
# project and wrong solutions graded in one boot), tests/test_slurm.py (a
# local Slurm running a sweep as array tasks), and the two slowest Linux
# boots to a shell (under kvmlab-vtlb and kvmlab-shadow: 5 minutes between
# them), which kept the main half over 40 minutes.
SIDE_TESTS := tests/test_vmx.py tests/test_labs.py tests/test_slurm.py
SIDE_BOOTS := 'tests/test_boot.py::test_linux_reaches_its_shell[kvmlab-vtlb]' \
              'tests/test_boot.py::test_linux_reaches_its_shell[kvmlab-shadow]'
test: deps build unit
	@{ for t in $(SIDE_TESTS); do \
		$(PYTHON) -m pytest -q -p no:cacheprovider $$t || echo "SIDE-FAILED $$t"; \
	done; \
	$(PYTHON) -m pytest -q -p no:cacheprovider $(SIDE_BOOTS) || echo "SIDE-FAILED Linux shell boots"; \
	} > $(BUILD)/test-side.log 2>&1 & \
	side=$$!; \
	$(PYTHON) -m pytest -q --durations=25 $(addprefix --ignore=,$(SIDE_TESTS)) \
		$(addprefix --deselect ,$(SIDE_BOOTS)) tests; rc=$$?; \
	wait $$side; \
	echo "== $(SIDE_TESTS) and the Linux shell boots under kvmlab-vtlb and kvmlab-shadow, run alongside:"; \
	cat $(BUILD)/test-side.log; \
	[ $$rc = 0 ] && ! grep -q '^SIDE-FAILED' $(BUILD)/test-side.log

# The course labs: markers, starters, grading of every lab (about 6 min).
test-labs: deps build
	$(PYTHON) -m pytest -q tests/test_labs.py

# Sweeps as Slurm job arrays on a local Slurm (about 3 min).
test-slurm: deps build
	$(PYTHON) -m pytest -q tests/test_slurm.py

# Debian's Linux under unmodified QEMU on every hypervisor, and QEMU's own live
# migration and VGA under every strategy (about 7 min; `make test` runs Linux
# under Linux KVM's two modes, kvmlab-cached and kvmlab-npt, and migrates
# under the last two).
test-qemu: deps build
	KVMLAB_QEMU_ALL=1 $(PYTHON) -m pytest -q tests/test_qemu.py

# Linux's KVM selftests, the whole list asserted in tests/test_kselftest.py (about 15 min;
# `make test` runs the ones that take seconds).
test-kselftest: deps build
	KVMLAB_KSELFTEST_ALL=1 $(PYTHON) -m pytest -q tests/test_kselftest.py

# Linux from its real-mode entry under all six hypervisors (about 5 min; `make test` boots
# it under kvm-npt, kvmlab-cached and kvmlab-npt).
test-boot: deps build
	KVMLAB_BOOT_ALL=1 $(PYTHON) -m pytest -q tests/test_boot.py -k real_mode_entry

# The Linux guest with 4 vCPUs and its parallel workloads under all six hypervisors
# (about 5 min; `make test` runs kvmlab-cached).
test-smp: deps build
	KVMLAB_SMP_ALL=1 $(PYTHON) -m pytest -q tests/test_smp_linux.py

# Live migration of every quick-sweep workload under all 16 pairs of kvmlab
# strategies (about 10 min; `make test` migrates each pair once).
test-migrate: deps build
	KVMLAB_MIGRATE_ALL=1 $(PYTHON) -m pytest -q tests/test_migrate.py

# The Intel test machine's whole set: sweeps/vmx.sweep (the quick sweep's
# workloads, 32-bit, real-mode and Multiboot guests under every hypervisor)
# and vCPU threads moved between two CPUs (a second boot). `make test` runs
# sweeps/vmx-slice.sweep.
test-vmx: deps build
	KVMLAB_VMX_ALL=1 $(PYTHON) -m pytest -q tests/test_vmx.py

clean:
	rm -rf $(BUILD)
	$(MAKE) -C kmod clean
