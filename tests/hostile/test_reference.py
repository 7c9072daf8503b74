"""``hwgen reference`` and ``hwgen quickstart``: inputs and output files."""

import numpy as np
import pytest

from hostile_inputs import good_inputs


@pytest.fixture
def inputs(scratch):
    np.savez(scratch / "x.npz", inputs=good_inputs())
    return scratch / "x.npz"


def test_reference_outputs_under_a_file(hostile, scratch, model_file, inputs):
    (scratch / "afile").write_text("x")
    hostile("reference", model_file, "--inputs", inputs, "--outputs", "afile/out.npz",
            names=["afile/out.npz: cannot write", "afile is not a directory"])


def test_reference_outputs_under_proc(hostile, model_file, inputs):
    hostile("reference", model_file, "--inputs", inputs, "--outputs", "/proc/hwgen/out.npz",
            names="/proc/hwgen/out.npz: cannot write")


def test_reference_outputs_with_a_name_too_long(hostile, model_file, inputs):
    hostile("reference", model_file, "--inputs", inputs, "--outputs", "o" * 300 + ".npz",
            names=["cannot write", "File name too long"])


def test_reference_wrong_shaped_inputs_name_the_file(hostile, scratch, model_file):
    np.savez(scratch / "x.npz", inputs=np.ones((3, 7), np.int32))
    hostile("reference", model_file, "--inputs", "x.npz", names="x.npz: model 'tiny' takes")


def test_reference_labels_out_of_range_name_the_file(hostile, scratch):
    np.savez(scratch / "x.npz", inputs=np.zeros((2, 64), np.int64), labels=np.array([0, 10]))
    hostile("reference", "@digits", "--inputs", "x.npz",
            names="x.npz: 'labels' must be classes 0..9")


def test_reference_samples_negative(hostile, model_file, inputs):
    hostile("reference", model_file, "--inputs", inputs, "--samples", "-3",
            names="--samples must be at least 1")


def test_reference_needs_inputs_for_a_model_file(hostile, model_file):
    hostile("reference", model_file, names="--inputs", code=2)


def test_reference_of_an_unknown_model_type(hostile, scratch, inputs):
    (scratch / "m.onnx").write_bytes(b"\x08\x01")
    hostile("reference", "m.onnx", "--inputs", inputs,
            names="m.onnx: unknown model file type '.onnx'")


def test_quickstart_never_replaces_a_user_directory(hostile, scratch):
    (scratch / "work").mkdir()
    (scratch / "work" / "thesis.tex").write_text("years of work")
    hostile("quickstart", "-o", "work", names=["work: exists and is not an hwgen build",
                                               "--force"])


def test_quickstart_into_the_working_directory(hostile):
    hostile("quickstart", "-o", ".", names="refusing to replace the current directory")
