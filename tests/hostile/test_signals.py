"""SIGTERM and SIGINT during ``compile`` and ``simulate``: the staging and temporary
directories go, the previous output stays, and no Amaranth warnings follow."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hwgen.compiler.frontends import native
from hwgen.sim.workloads import random_model

from hostile_inputs import good_inputs

HWGEN = str(Path(sys.executable).parent / "hwgen")


def start(args, cwd, tmp):
    env = dict(os.environ, TMPDIR=str(tmp))
    return subprocess.Popen([HWGEN, *map(str, args)], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(predicate, process, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.01)
    return False


def interrupt(process, signum):
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    return process.returncode, out + err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_compile_removes_the_staging_directory(tmp_path, signum):
    # Big enough that compiling takes several seconds (about 7 on an idle core; 256-256-10
    # took 2.5 once the TPPE became one Verilog module, and under load the signal could
    # land after the output was published).
    native.save(random_model(3, [512, 512, 256, 10], 8, name="big"), tmp_path / "m.hwgen")
    (tmp_path / "tmp").mkdir()
    process = start(["compile", "m.hwgen", "-o", "out"], tmp_path, tmp_path / "tmp")
    staging = lambda: [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # noqa: E731
    assert wait_for(staging, process), process.communicate()
    code, output = interrupt(process, signum)
    assert code == (128 + signal.SIGTERM if signum == signal.SIGTERM else 1), output
    assert staging() == [] and not (tmp_path / "out").exists()
    assert list((tmp_path / "tmp").iterdir()) == []
    assert "Traceback" not in output and "UnusedElaboratable" not in output, output
    assert "created but never used" not in output, output


def test_sigterm_during_simulate_keeps_the_build_and_removes_temporaries(tmp_path,
                                                                          pristine_build):
    import shutil
    build = shutil.copytree(pristine_build, tmp_path / "build")
    before = sorted(p.relative_to(build) for p in build.rglob("*"))
    # Enough samples that the (fast, native) simulation is still running when the signal
    # comes.
    np.savez(tmp_path / "x.npz", inputs=good_inputs(100000))
    (tmp_path / "tmp").mkdir()
    process = start(["simulate", "build", "--inputs", "x.npz", "--jobs", "1"], tmp_path,
                    tmp_path / "tmp")
    running = lambda: list(build.glob(".sim.*.tmp/work/shard0/job.*"))  # noqa: E731
    assert wait_for(running, process), process.communicate()
    code, output = interrupt(process, signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, output
    assert sorted(p.relative_to(build) for p in build.rglob("*")) == before
    assert list((tmp_path / "tmp").iterdir()) == []
    assert "Traceback" not in output, output




def test_an_interruption_swallowed_by_a_library_still_ends_as_the_signal(monkeypatch):
    """Amaranth's signature checks catch exceptions broadly: a SIGTERM arriving inside one
    surfaces as another error. The process must still end as the signal says."""
    import importlib
    entry = importlib.import_module("hwgen.cli.main")

    def swallowed(**kwargs):
        entry._received.append(signal.SIGTERM)
        raise RuntimeError("a library's own error in place of the interruption")

    monkeypatch.setattr(signal, "signal", lambda *args: None)
    monkeypatch.setattr(entry, "_received", [])
    monkeypatch.setattr(entry, "cli", swallowed)
    with pytest.raises(SystemExit) as ended:
        entry.main()
    assert ended.value.code == 128 + signal.SIGTERM

    def failing(**kwargs):
        raise RuntimeError("a real failure")

    monkeypatch.setattr(entry, "_received", [])
    monkeypatch.setattr(entry, "cli", failing)
    with pytest.raises(RuntimeError, match="a real failure"):
        entry.main()
