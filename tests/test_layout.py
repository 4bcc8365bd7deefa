"""The boundaries issue 12 drew, checked on the source: no strategy folder
reaches the vendor (nor includes the x86 layer's headers, which lead to
it), the vendor folder holds no MSR, CPUID or control-register semantics,
and KVM-client set-up (KVM_CREATE_VM, vCPU creation, memslots) is written
only in the client library — the fuzzers and the ABI tests' deliberate
error-path calls aside."""
import re

from conftest import TOP

STRATEGIES = ["vtlb", "mmu-shadow", "mmu-cached", "mmu-npt", "mmu-unsync", "mmu-pv"]


def sources(folder):
    return sorted(p for p in (TOP / folder).rglob("*") if p.suffix in (".c", ".h", ".S"))


def test_no_strategy_calls_the_vendor():
    for folder in STRATEGIES:
        files = sources("kmod/" + folder)
        assert files, folder
        for path in files:
            text = path.read_text()
            assert "kl_vendor" not in text, path
            assert not re.search(r'#include\s+"\.\./(x86|svm)/', text), path


def test_the_vendor_holds_no_x86_semantics():
    text = "".join(p.read_text() for p in sources("kmod/svm"))
    for name in ["MSR_STAR", "MSR_LSTAR", "MSR_IA32_SYSENTER", "MSR_IA32_APICBASE",
                 "cpuid_count", "kl_find_cpuid", "X86_CR0_", "X86_CR4_", "kl_set_cr",
                 "KL_CPUID_"]:
        assert name not in text, name


def test_kvm_client_setup_exists_once():
    pattern = re.compile(r"ioctl\([^,]+,\s*(KVM_CREATE_VCPU|KVM_SET_USER_MEMORY_REGION|KVM_GET_VCPU_MMAP_SIZE)")
    users = {str(p.relative_to(TOP)) for folder in ["harness", "tests/abi"]
             for p in sources(folder) if pattern.search(p.read_text())}
    # The library itself; the ioctl fuzzer's random calls; the ABI test's error paths.
    assert users == {"harness/lib/kvmclient.c", "harness/fuzz/fuzz.c", "tests/abi/abi_test.c"}, users
