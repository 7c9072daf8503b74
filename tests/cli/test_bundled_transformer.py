"""The bundled spiking transformer @digits_transformer: what it is, its accuracy with the
integer reference on the held-out split, that the shipped files are one run of
examples/digits/train_transformer.py, and how the commands take it (no training here)."""

import hashlib
import json

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


def test_quickstart_runs_it_bit_exact_and_predicts_from_the_final_membranes(tmp_path, model):
    """The whole flow on Verilator: the AND gates, the column sum, the kept Q, K and V
    layers, the residual stream of currents kept in the TPPEs and the membrane readout all
    match the reference in every layer."""
    result = invoke("quickstart", "--model", "@digits_transformer", "-o", tmp_path / "qs",
                    "--samples", "8", "--set", "tppes=8")
    assert result.exit_code == 0, result.output
    assert "bit-exact: yes, all 8 samples" in result.output
    report = json.loads((tmp_path / "qs" / "sim" / "results.json").read_text())
    inputs, labels = bundled.digits_test_set()
    trace = reference.run(model, inputs[:8])
    assert report["rtl_predictions"] == report["reference_predictions"] \
        == trace.predictions.tolist()
    program = json.loads((tmp_path / "qs" / "program.json").read_text())
    layers = {plan["name"]: plan for plan in program["layers"]}
    # the shortcuts add the stream's kept currents: nothing reads the input again
    assert program["layers"][0]["name"] == "patch_embed.final_lif"
    assert layers["blocks.0.attn.kv"]["aux"] == ["blocks.0.attn.k_lif"]
    assert layers["head_lif"]["adds_current"] == "blocks.0.mlp.lif1"
    assert "aux" not in layers["head_lif"]
    assert "membrane shortcuts kept, not recomputed" in result.output
    assert layers["logits"]["last"]


def test_inspect_describes_the_attention_ops(model):
    from hwgen.cli.inspect import describe
    from hwgen.compiler.ir import CurrentMatmul, SpikeMatmul
    assert "Hadamard" in describe(model["blocks.0.attn.kv"])
    assert "count of spiking tokens" in describe(model["blocks.0.attn.token_sum"])
    assert "per head (2)" in describe(SpikeMatmul("m", heads=2))
    assert "per-step integers" in describe(CurrentMatmul("o"))
