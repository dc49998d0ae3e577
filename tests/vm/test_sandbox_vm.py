"""``lkm sandbox`` for real: a Debian kernel package booted in QEMU, one lkm command run there."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.vm, pytest.mark.slow]


def test_sandbox_loads_a_test_module_from_a_deb(
    capfdbinary: pytest.CaptureFixture[bytes], tmp_path_factory: pytest.TempPathFactory
) -> None:
    import harness
    import testmods

    import world
    from lkm.cli import main

    deb = world.download(world.SPECS[testmods.GUEST])
    kver = deb.name.split("_")[0].removeprefix("linux-image-")
    module = testmods.build(kver) / "lkm_params.ko"
    workdir = tmp_path_factory.mktemp("sandbox")
    # The package is unpacked once into the cache; the guest's files go to the test's directory.
    kernel_cache = harness.VM_CACHE / "sandbox"
    kernel_cache.mkdir(parents=True, exist_ok=True)
    (workdir / "kernel").symlink_to(kernel_cache)
    args = ["lkm", "sandbox", "--deb", str(deb), "-w", str(workdir), "-t", "600"]
    status = main([*args, "insmod", str(module), "count=5", "word=sandbox"])
    report = capfdbinary.readouterr().out.decode()
    assert status == 0, report
    lines = report.splitlines()
    assert lines[:3] == [f"kernel: {kver}", f"command: lkm insmod {module} count=5 word=sandbox",
                         "status: 0"]  # fmt: skip
    taint = next(line for line in lines if line.startswith("taint: "))
    assert taint.endswith(")") and {"O", "E"} <= set(taint.split("(")[1])
    log = report[report.index("kernel log:") : report.index("taint:")]
    assert "lkm_params: loading out-of-tree module taints kernel." in log
    assert "module verification failed" in log
