"""The bundled spiking transformer @digits_transformer: what it is, its accuracy with the
integer reference on the held-out split, that the shipped files are one run of
examples/digits/train_transformer.py, and how the commands take it (no training here)."""

import hashlib
import json
import re

import pytest
from click.testing import CliRunner

from hwgen import bundled
from hwgen.cli.main import cli
from hwgen.compiler.frontends import native
from hwgen.compiler.ir import LI, LIF, Conv2d, Readout, SpikeAnd, TokenSum, reference


def invoke(*args):
    return CliRunner().invoke(cli, list(map(str, args)), catch_exceptions=False)


@pytest.fixture(scope="module")
def model():
    return bundled.digits_transformer_model()


def test_it_is_a_spike_driven_transformer_on_16_tokens(model):
    types = model.infer()
    pixels = model.input
    assert pixels.shape == (1, 8, 8) and pixels.encoding == "if" and pixels.threshold == 16
    assert model.timesteps == 8
    patch = model["patch_embed.proj"]
    assert isinstance(patch, Conv2d) and patch.kernel == (2, 2) and patch.stride == (2, 2)
    dim = patch.out_channels
    assert 16 <= dim <= 32
    # tokens (features, 4, 4): 16 patches of 2x2 pixels
    for name in ("q", "k", "v"):
        assert types[f"blocks.0.attn.{name}_lif"].shape == (dim, 4, 4)
        assert model[f"blocks.0.attn.{name}_conv"].kernel == (1, 1)
    assert isinstance(model["blocks.0.attn.kv"], SpikeAnd)
    assert isinstance(model["blocks.0.attn.token_sum"], TokenSum)
    assert types["blocks.0.attn.attn_lif"].shape == (dim,)
    assert types["blocks.0.attn.masked"].shape == (dim, 4, 4)
    assert isinstance(model["logits"], LI) and isinstance(model["class"], Readout)
    assert model["class"].mode == "final_membrane"
    for op in model.ops:
        if isinstance(op, LIF):
            assert (op.fire, op.reset, op.order) == ("ge", "zero", "same_step")


def test_integer_reference_reaches_95_percent_on_the_held_out_split(model):
    inputs, labels = bundled.digits_test_set()
    trace = reference.run(model, inputs)
    accuracy = reference.accuracy(trace.predictions, labels)
    assert accuracy >= 0.95
    summary = bundled.digits_transformer_training_summary()
    assert round(accuracy, 4) == summary["integer_accuracy"]
    assert summary["split"]["test"] == len(labels) == 450
    # the attention is not idle: masks and queries both spike, neither all the time
    for name in ("blocks.0.attn.q_lif", "blocks.0.attn.attn_lif", "blocks.0.attn.masked"):
        assert 0 < trace.spikes[name].mean() < 1, name


def test_the_shipped_model_is_the_one_the_training_run_recorded():
    summary = bundled.digits_transformer_training_summary()
    data = bundled.digits_transformer_model_path().read_bytes()
    assert hashlib.sha256(data).hexdigest() == summary["model_sha256"]
    assert native.loads(data) == bundled.digits_transformer_model()


def test_reference_command_takes_the_bundled_transformer():
    result = invoke("reference", "@digits_transformer", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["model"] == "digits_transformer" and report["samples"] == 450
    assert round(report["accuracy"], 4) == \
        bundled.digits_transformer_training_summary()["integer_accuracy"]


def test_compile_refuses_it_in_one_line_naming_an_op_and_writes_nothing(tmp_path, model):
    """The accelerator does not run it yet. Which op the refusal names depends on how far
    the hardware gets (the first convolution, a stream read by several layers, an attention
    op), so this checks the form: one error line naming an op of this model by its type."""
    result = invoke("compile", "@digits_transformer", "-o", tmp_path / "out")
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    named = re.match(r"Error: (\w+) '([^']+)': ", errors[0])
    assert named and named[2] in model and model[named[2]].type_name == named[1], errors[0]
    assert "Traceback" not in result.output
    assert not list(tmp_path.iterdir())


def test_inspect_describes_the_attention_ops(model):
    from hwgen.cli.inspect import describe
    from hwgen.compiler.ir import CurrentMatmul, SpikeMatmul
    assert "Hadamard" in describe(model["blocks.0.attn.kv"])
    assert "count of spiking tokens" in describe(model["blocks.0.attn.token_sum"])
    assert "per head (2)" in describe(SpikeMatmul("m", heads=2))
    assert "per-step integers" in describe(CurrentMatmul("o"))
