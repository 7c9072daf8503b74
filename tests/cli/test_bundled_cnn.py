"""The bundled spiking CNN @digits_cnn: what it is, its accuracy with the integer reference on
the held-out split, that the shipped files are one run of examples/digits/train_cnn.py, and
how the commands take it."""

import hashlib
import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hwgen import bundled
from hwgen.cli.main import cli
from hwgen.compiler.ir import LIF, Conv2d, Dense, Flatten, Input, Readout, reference

ROOT = Path(__file__).resolve().parents[2]
NIR_FILE = ROOT / "examples" / "digits" / "digits_cnn.nir"


def invoke(*args):
    return CliRunner().invoke(cli, list(map(str, args)), catch_exceptions=False)


@pytest.fixture(scope="module")
def model():
    return bundled.digits_cnn_model()


def test_it_is_a_strided_spiking_cnn_on_the_digits_image(model):
    assert [type(op) for op in model.ops] == [Input, Conv2d, LIF, Conv2d, LIF, Flatten, Dense,
                                             LIF, Readout]
    assert model.timesteps == 8
    pixels = model.input
    assert pixels.shape == (1, 8, 8) and pixels.encoding == "if" and pixels.threshold == 16
    types = model.infer()
    assert types["lif1"].shape == (16, 4, 4) and types["lif2"].shape == (32, 2, 2)
    for name in ("conv1", "conv2"):
        assert model[name].stride == (2, 2) and model[name].padding == (1, 1)
    for op in model.ops:
        if isinstance(op, (Conv2d, Dense)):
            assert op.weight_bits == 4
        if isinstance(op, LIF):
            assert (op.fire, op.reset, op.order, op.v_bits) == ("gt", "subtract", "delayed", 10)
    assert model["class"].mode == "spike_count"


def test_integer_reference_reaches_97_percent_on_the_held_out_split(model):
    inputs, labels = bundled.digits_test_set()
    trace = reference.run(model, inputs)
    accuracy = reference.accuracy(trace.predictions, labels)
    assert accuracy >= 0.97
    summary = bundled.digits_cnn_training_summary()
    assert round(accuracy, 4) == summary["integer_accuracy"]
    assert summary["split"]["test"] == len(labels) == 450
    # the CNN's input is the image; the flat pixels the split stores are the same numbers
    shaped = reference.run(model, inputs.reshape(-1, 1, 8, 8))
    assert np.array_equal(shaped.predictions, trace.predictions)


def test_the_shipped_model_is_the_one_the_training_run_recorded():
    summary = bundled.digits_cnn_training_summary()
    data = bundled.digits_cnn_model_path().read_bytes()
    assert hashlib.sha256(data).hexdigest() == summary["model_sha256"]


@pytest.mark.parametrize("framework", ["snntorch", "generic"])
def test_the_exported_nir_file_reads_back_as_the_bundled_model(model, framework):
    """train_cnn.py writes the NIR file in the same run, through snnTorch: hwgen's NIR
    frontend must give back the same integer model (flatten written as 0..2, not 0..-1),
    and with membranes wide enough never to saturate (no --v-bits), the same spikes."""
    from hwgen.compiler.frontends import nir as frontend
    read = frontend.load(NIR_FILE, source_framework=framework, v_bits=10)
    assert [op.name for op in read.ops] == [op.name for op in model.ops]
    for op in model.ops:
        if isinstance(op, Flatten):
            assert read.infer()[op.name] == model.infer()[op.name]
        else:
            assert read[op.name] == op, op.name
    inputs, _ = bundled.digits_test_set()
    auto = frontend.load(NIR_FILE, source_framework=framework)
    ours, theirs = reference.run(model, inputs), reference.run(auto, inputs)
    for name, spikes in ours.spikes.items():
        assert np.array_equal(theirs.spikes[name], spikes), name


def test_snntorch_simulates_the_bundled_cnn_as_the_reference_does(model):
    """An oracle hwgen did not write: snnTorch's Conv2d + Leaky(state_quant=floor) on the
    integer weights spikes exactly like the integer reference, every layer, every sample."""
    spec = importlib.util.spec_from_file_location(
        "export_nir", ROOT / "examples" / "digits" / "export_nir.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    inputs, _ = bundled.digits_test_set()
    trace = reference.run(model, inputs)
    theirs = script.snntorch_spikes(script.to_snntorch(model), trace.spikes["pixels"],
                                    model.input.shape)
    assert set(theirs) == {"lif1", "lif2", "lif3"}
    for name, spikes in theirs.items():
        assert np.array_equal(spikes, trace.spikes[name]), name


def test_reference_command_takes_the_bundled_cnn():
    result = invoke("reference", "@digits_cnn", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["model"] == "digits_cnn" and report["samples"] == 450
    assert round(report["accuracy"], 4) == \
        bundled.digits_cnn_training_summary()["integer_accuracy"]


def test_compile_takes_the_bundled_cnn_and_names_its_unrolled_convolutions(tmp_path):
    result = invoke("compile", "@digits_cnn", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    layers = {layer["name"]: layer for layer in report["layers"]}
    assert layers["lif1"]["synapse"] == "conv2d 'conv1' (unrolled)"
    assert layers["lif2"]["synapse"] == "conv2d 'conv2' (unrolled)"
    assert layers["lif3"]["synapse"] == "dense 'fc3'"
    assert (layers["lif1"]["inputs"], layers["lif1"]["outputs"]) == (64, 256)
    # address generation, and border pixels calling blocks with forced-zero masks
    assert re.search(r"address generation: \d+ runs of output positions called from \d+ "
                     r"stored blocks", result.output)
    assert re.search(r"padding as forced-zero masks: \d+ of the calls are border positions",
                     result.output)


def test_compile_with_tiles_says_which_layers_run_in_step(tmp_path):
    result = invoke("compile", "@digits_cnn", "-o", tmp_path / "out", "--set",
                    "mapping=tiles")
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert re.search(r"tiles in step \(mapping = tiles\): lif2 run from one block in the "
                     r"shared program memory \(\d+ entries, stored once for 2 TPPEs\)",
                     output)
    assert ("tiled, not in step (each TPPE stores its own program): lif1 (it reads the "
            "network's input, streamed in C order)") in output
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    names = [memory["name"] for memory in manifest["resources"]["memories"]]
    assert "shared_program" in names and (tmp_path / "out" / "memories" /
                                          "shared_program.hex").is_file()


def test_quickstart_runs_the_bundled_cnn_bit_exact_and_keeps_the_mlp_as_default(tmp_path):
    result = invoke("quickstart", "--model", "@digits_cnn", "-o", tmp_path / "qs",
                    "--samples", "24")
    assert "the bundled digits_cnn (1x8x8 -> conv 16x4x4 -> conv 32x2x2 -> 10 LIF" \
        in result.output.replace("\n", "")
    assert result.exit_code == 0, result.output
    assert "bit-exact: yes, all 24 samples" in result.output
    (option,) = [p for p in cli.commands["quickstart"].params if p.name == "model_name"]
    assert option.default == "@digits"


def test_an_unknown_bundled_name_lists_both():
    result = invoke("reference", "@digits_mlp")
    assert result.exit_code == 2
    assert "@digits, @digits_cnn" in result.output
