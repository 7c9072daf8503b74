"""``hwgen run``, ``hwgen synth`` and ``hwgen flash``: numbers click accepts but no board
can use, and build directories that are not what they claim. All refused before a port,
a tool or a programmer is touched."""

import json
import os

import numpy as np
import pytest

from hostile_inputs import good_inputs


@pytest.fixture
def inputs(scratch):
    np.savez(scratch / "x.npz", inputs=good_inputs())
    return scratch / "x.npz"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-1", "1e9", "soon"])
def test_run_timeout_must_be_a_finite_positive_number(hostile, build, inputs, value):
    hostile("run", "build", "--simulate", "--inputs", inputs, "--timeout", value,
            names="--timeout", code=2)


def test_run_baud_zero(hostile, build, inputs):
    hostile("run", "build", "--simulate", "--inputs", inputs, "--baud", "0", names="--baud",
            code=2)


def test_run_needs_a_port_or_simulate(hostile, build, inputs):
    hostile("run", "build", "--inputs", inputs, names="--port", code=2)


def test_run_on_a_tampered_build(hostile, build, inputs):
    with open(build / "rtl/hwgen_core.v", "a") as f:
        f.write("// backdoor\n")
    hostile("run", "build", "--port", "/dev/null", "--inputs", inputs,
            names="hwgen_core.v: changed since hwgen compile wrote it")


def test_run_with_labels_out_of_range(hostile, build, scratch):
    np.savez(scratch / "x.npz", inputs=good_inputs(), labels=np.array([3, 0]))
    hostile("run", "build", "--port", "/dev/null", "--inputs", "x.npz",
            names="x.npz: 'labels' must be classes 0..2")


def test_synth_on_a_tampered_build(hostile, build):
    with open(build / "rtl/hwgen_core.v", "a") as f:
        f.write("// backdoor\n")
    hostile("synth", "build", "--target", "ice40-up5k",
            names="hwgen_core.v: changed since hwgen compile wrote it")


def test_synth_of_a_verilog_path_outside_the_build(hostile, build, scratch):
    manifest = json.loads((build / "manifest.json").read_text())
    manifest["files"]["verilog"]["path"] = "../elsewhere.v"
    (build / "manifest.json").write_text(json.dumps(manifest))
    hostile("synth", "build", "--target", "ice40-up5k",
            names="files.verilog.path '../elsewhere.v' must be a relative path inside")


def test_synth_of_a_directory_that_is_not_a_build(hostile, scratch):
    (scratch / "src").mkdir()
    hostile("synth", "src", "--target", "ice40-up5k", names="src: not a build directory")


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-5"])
def test_synth_frequency_must_be_finite_and_positive(hostile, build, value):
    hostile("synth", "build", "--target", "ice40-up5k", "--frequency", value,
            names="--frequency must be 'auto' or in (0, ")


def test_flash_without_a_bitstream(hostile, build):
    hostile("flash", "build", "--board", "icebreaker", "--dry-run", names="build")


def test_flash_of_a_directory_that_is_not_a_build(hostile, scratch):
    (scratch / "src").mkdir()
    hostile("flash", "src", "--board", "icebreaker", "--dry-run", names="src")
