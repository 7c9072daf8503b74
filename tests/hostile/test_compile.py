"""``hwgen compile``: the output directory (never lose a user's files; every OSError one
line) and configuration files."""

import json
import os

import pytest

from hwgen.cli.main import cli
from click.testing import CliRunner


def test_a_directory_that_is_not_a_build_directory_is_never_replaced(hostile, scratch,
                                                                      model_file):
    project = scratch / "proj"
    project.mkdir()
    os.replace(model_file, project / "m.hwgen")
    (project / "train.py").write_text("x\n")
    hostile("compile", project / "m.hwgen", "-o", project,
            names=[f"{project}: exists and is not an hwgen build directory", "--force"])


def test_a_foreign_manifest_does_not_make_a_build_directory(hostile, scratch, model_file):
    (scratch / "web").mkdir()
    (scratch / "web" / "manifest.json").write_text('{"name": "my app"}')
    hostile("compile", model_file, "-o", "web", names="web: exists and is not an hwgen")


def test_force_replaces_any_directory_and_a_build_directory_is_replaced(scratch, model_file):
    (scratch / "out").mkdir()
    (scratch / "out" / "notes.txt").write_text("mine")
    run = CliRunner().invoke
    result = run(cli, ["compile", str(model_file), "-o", "out", "--force"])
    assert result.exit_code == 0, result.output
    assert not (scratch / "out" / "notes.txt").exists()
    assert (scratch / "out" / "manifest.json").is_file()
    result = run(cli, ["compile", str(model_file), "-o", "out"])      # its own output: fine
    assert result.exit_code == 0, result.output
    # Staging and retired copies are gone.
    assert sorted(p.name for p in scratch.iterdir()) == ["m.hwgen", "out"]


def test_an_empty_directory_is_filled(scratch, model_file):
    (scratch / "empty").mkdir()
    result = CliRunner().invoke(cli, ["compile", str(model_file), "-o", "empty"])
    assert result.exit_code == 0, result.output


def test_stale_staging_of_a_killed_run_is_removed(scratch, model_file):
    # Left by a run whose process is gone (pid 2**22 + 1 exceeds Linux's pid_max default).
    stale = scratch / f".out.{2 ** 22 + 1}.abc123.tmp"
    stale.mkdir()
    (stale / "big.v").write_text("x" * 1000)
    live = scratch / f".out.{os.getpid()}.def456.tmp"          # a live run's: kept
    live.mkdir()
    result = CliRunner().invoke(cli, ["compile", str(model_file), "-o", "out"])
    assert result.exit_code == 0, result.output
    assert not stale.exists() and live.exists()


@pytest.mark.parametrize("out, names", [
    (".", "refusing to replace the current directory"),
    ("..", "refusing to replace the current directory or one of its parents"),
    ("/", "refusing to replace the current directory or one of its parents"),
])
def test_the_working_directory_and_its_parents_are_refused(hostile, model_file, out, names):
    hostile("compile", model_file, "-o", out, names=names)


def test_a_parent_that_is_a_file(hostile, scratch, model_file):
    (scratch / "afile").write_text("x")
    hostile("compile", model_file, "-o", "afile/build",
            names=[f"{scratch / 'afile' / 'build'}: cannot write", "afile is not a directory"])


def test_an_output_path_that_is_a_file(hostile, scratch, model_file):
    (scratch / "afile").write_text("x")
    hostile("compile", model_file, "-o", "afile", names="afile", code=2)


def test_an_output_under_proc(hostile, model_file):
    hostile("compile", model_file, "-o", "/proc/hwgen-hostile/build",
            names="/proc/hwgen-hostile/build: cannot write")


def test_a_name_too_long_for_the_file_system(hostile, model_file):
    name = "b" * 300
    hostile("compile", model_file, "-o", name, names=["cannot write", "File name too long"])


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only directories")
def test_a_read_only_parent(hostile, scratch, model_file):
    (scratch / "ro").mkdir()
    os.chmod(scratch / "ro", 0o555)
    try:
        hostile("compile", model_file, "-o", "ro/build", names=["ro/build: cannot write",
                                                               "Permission denied"])
    finally:
        os.chmod(scratch / "ro", 0o755)


# --- configuration files and --set ------------------------------------------------------

@pytest.mark.parametrize("name, content, names", [
    ("c.toml", b"tppes = = 2", ["c.toml: not valid TOML"]),
    ("c.toml", b"\xff\xfe tppes = 2", ["c.toml: not valid TOML", "UTF-8"]),
    ("c.json", b"[" * 30000 + b"]" * 30000, ["c.json: not valid JSON"]),
    ("c.json", b"[1, 2]", ["c.json: must hold a table of parameters"]),
    ("c.toml", b"hardware = 5", ["c.toml: 'hardware' must be a table"]),
    ("c.toml", b"[hardware]\ncolour = 3", ["c.toml: unknown parameter 'colour'"]),
    ("c.toml", b"tppes = 0", ["c.toml: tppes = 0 must be an integer between 1 and 32"]),
    ("c.toml", b"tppes = 2.5", ["c.toml: tppes = 2.5"]),
    ("c.json", b'{"tppes": Infinity}', ["c.json: tppes = inf"]),
    ("c.json", b'{"acc_bits": NaN}', ["c.json: acc_bits = nan"]),
    ("c.toml", b"acc_bits = 64", ["c.toml: acc_bits = 64 must be an integer between 2 and 32"]),
    ("c.toml", b"chunk = 12", ["c.toml: chunk = 12 must be a power of two"]),
    ("c.toml", b'timesteps = 4\nlif_steps = 3', ["c.toml: lif_steps = 3 must divide"]),
    ("c.toml", b"weight_depth = 99999999999999999999", ["c.toml: weight_depth"]),
])
def test_bad_configuration_files(hostile, scratch, model_file, name, content, names):
    (scratch / name).write_bytes(content)
    hostile("compile", model_file, "-o", "out", "--config", name, names=names)


def test_a_configuration_that_is_a_directory(hostile, scratch, model_file):
    (scratch / "conf.toml").mkdir()
    hostile("compile", model_file, "-o", "out", "--config", "conf.toml",
            names="conf.toml", code=2)


def test_a_missing_configuration(hostile, model_file):
    hostile("compile", model_file, "-o", "out", "--config", "nope.toml",
            names=["nope.toml: cannot read", "No such file"])


@pytest.mark.parametrize("item, names", [
    ("tppes", "--set 'tppes': expected key=value"),
    ("tppes=many", "--set tppes=many: tppes = 'many'"),
    ("colour=3", "--set colour=3: unknown parameter 'colour'"),
    ("acc_bits=99", "--set acc_bits=99: acc_bits = 99 must be an integer between 2 and 32"),
    ("fifo_depth=1", "--set fifo_depth=1: fifo_depth = 1"),
    ("join=Laggy", "--set join=Laggy: join = 'Laggy' must be one of dual, laggy"),
])
def test_bad_overrides(hostile, model_file, item, names):
    hostile("compile", model_file, "-o", "out", "--set", item, names=names)


def test_an_override_does_not_blame_a_good_file(hostile, scratch, model_file):
    (scratch / "c.toml").write_text("tppes = 4\n")
    error = hostile("compile", model_file, "-o", "out", "--config", "c.toml",
                    "--set", "tppes=0", names="--set tppes=0: tppes = 0")
    assert "c.toml" not in error


def test_a_model_too_wide_for_the_accumulators(hostile, scratch):
    from hostile_inputs import write_model

    def wide(document):
        document["ops"][1]["attributes"]["acc_bits"] = 40
    write_model(scratch / "wide.hwgen", wide)
    hostile("compile", "wide.hwgen", "-o", "out",
            names=["dense", "needs a 40-bit accumulator", "acc_bits is at most 32"])


def test_a_calibration_file_of_the_wrong_shape_is_named(hostile, scratch, model_file):
    import numpy as np
    np.savez(scratch / "cal.npz", inputs=np.zeros((2, 4, 5), dtype=np.uint8))
    hostile("compile", model_file, "-o", "out", "--calibration", "cal.npz",
            names=["cal.npz: spike trains have shape (2, 4, 5)"])


def test_a_layer_wider_than_any_buffer_is_refused_before_scheduling(hostile, scratch):
    from hwgen.compiler.frontends import native
    from hwgen.sim.workloads import random_model
    native.save(random_model(2, [70000, 2], 4, weight_density=0.001, name="wide"),
                scratch / "wide.hwgen")
    hostile("compile", "wide.hwgen", "-o", "out",
            names=["layer", "70000 inputs", "at most 65536 (spike_depth)"])


def test_more_weights_than_the_tppes_hold(hostile, scratch):
    from hwgen.compiler.frontends import native
    from hwgen.sim.workloads import random_model
    native.save(random_model(2, [4096, 2100], 4, weight_density=1.0, name="dense"),
                scratch / "dense.hwgen")
    hostile("compile", "dense.hwgen", "-o", "out", "--set", "tppes=1",
            names=["nonzero weights need at least", "per TPPE on 1 TPPEs",
                   "at most 4194304 (weight_depth)"])


def test_a_full_disk_leaves_nothing_behind(hostile, model_file, monkeypatch):
    import errno

    from hwgen import build_directory

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(build_directory, "_write_into", full)
    hostile("compile", model_file, "-o", "out",
            names=["out: cannot write (No space left on device)"])
