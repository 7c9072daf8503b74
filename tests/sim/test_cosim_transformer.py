"""Spiking transformers' attention blocks on the RTL (docs/architecture.md, "Spiking
transformers"), bit-exact against the integer reference in every layer on Verilator, with
all-silent and all-spiking samples, under time chunks, the laggy join, the wide fetch and
the banked write bus:

- Spike-driven Transformer v1's (SDSA): the Q, K and V layers reading a kept layer, K AND V
  and Q AND mask as layers of gates, the column sum over tokens, a membrane shortcut from
  the model's input (through its copy), a residual stream of currents kept in the TPPEs
  and added by two layers, and the membrane readout;
- Spikformer's (SSA) and Spike-driven Transformer v2's Q (K^T V): V kept as currents, the
  matrices K^T V reading them per step and kept in turn, and the product reading those,
  in IR blocks of one to four heads and in whole models exported from the PyTorch modules.

@digits_transformer itself runs in tests/cli/test_bundled_transformer.py."""

import numpy as np
import pytest

from attention_models import AttentionDraw, sdsa_model
from hwgen import build_directory
from hwgen.compiler import hardware_config
from hwgen.compiler.scheduler.program import compile_program
from hwgen.sim.cosim import cosimulate
from hwgen.sim.workloads import random_transformer

pytestmark = [pytest.mark.verilator, pytest.mark.slow]


@pytest.mark.parametrize("tokens, features, settings, draw", [
    ((4, 4), 6, ["tppes=4"],
     AttentionDraw(seed=3, weight_bits=4, thresholds=("one", "typical", "one", "one",
                                                      "typical"),
                   leak_shift=1, fire="ge", reset="zero", order="same_step", v_bits=10)),
    ((5,), 8, ["tppes=3", "time_chunk=2", "join=laggy"],
     AttentionDraw(seed=8, weight_bits=5, thresholds=("one", "typical", "zero", "one",
                                                      "typical"),
                   leak_shift=0, fire="gt", reset="subtract", order="delayed", v_bits=9,
                   mask="hadamard")),
    ((2, 3), 5, ["tppes=2", "fetch_width=4", "chunk=8"],
     AttentionDraw(seed=11, weight_bits=3, thresholds=("zero", "vmax", "typical", "one",
                                                       "zero"),
                   leak_shift=2, fire="ge", reset="none", order="same_step", v_bits=8,
                   shortcut=False)),
    ((4, 4), 6, ["tppes=3", "time_chunk=2"],
     AttentionDraw(seed=6, weight_bits=4, thresholds=("one", "one", "one", "one", "typical"),
                   leak_shift=1, fire="ge", reset="subtract", order="same_step", v_bits=10,
                   mask="ktv", heads=2, stream=True)),
    ((2, 3), 6, ["tppes=2", "fetch_width=4", "chunk=8", "write_lanes=2"],
     AttentionDraw(seed=6, weight_bits=3, thresholds=("zero", "one", "typical", "one",
                                                      "typical"),
                   leak_shift=0, fire="gt", reset="zero", order="delayed", v_bits=9,
                   mask="ktv", heads=3, shortcut=False)),
])
def test_attention_blocks_are_bit_exact(tokens, features, settings, draw, tmp_path):
    T = 4
    model = sdsa_model(draw, tokens, features, T)
    x = (np.random.default_rng(draw.seed).random((10, T, features, *tokens)) < 0.4
         ).astype(np.uint8)
    x[0], x[1] = 0, 1
    program = compile_program(model, hardware_config.load(None, settings))
    result = cosimulate(build_directory.write(program, model, tmp_path / "b"), x)
    assert result.verdict.bit_exact, result.verdict.first_mismatch
    # the attention is exercised: masks and masked queries spike on some samples, and the
    # readout predicts from the RTL's membranes what the reference predicts
    if "vmax" not in draw.thresholds[1:3]:          # K and V may spike
        for name in (("attn.ktv.values", "attn.attn_lif") if draw.mask == "ktv" else
                     ("attn.kv", "attn.masked")):
            assert result.trace.spikes[name].any(), name
    assert np.array_equal(result.rtl_predictions, result.trace.predictions)


@pytest.mark.parametrize("tokens, settings", [
    ((4, 4), ["tppes=4"]),
    ((5,), ["tppes=3", "time_chunk=2", "join=laggy"]),
    ((2, 3), ["tppes=2", "fetch_width=4", "chunk=8", "write_lanes=2"]),
])
def test_a_kept_residual_stream_of_currents_is_bit_exact(tokens, settings, tmp_path):
    # embed -> block (out = lif(proj + embed's current)) -> tail (lif(tail + that stream)):
    # out adds the kept embedding current and keeps its own in the same buffer, tail adds it
    T, features = 4, 6
    draw = AttentionDraw(seed=5, weight_bits=4, thresholds=("one", "typical", "one", "one",
                                                            "typical"),
                         leak_shift=1, fire="ge", reset="subtract", order="same_step",
                         v_bits=11, stream=True)
    model = sdsa_model(draw, tokens, features, T)
    x = (np.random.default_rng(7).random((8, T, features, *tokens)) < 0.4).astype(np.uint8)
    x[0], x[1] = 0, 1
    results = {}
    for keep in (1, 0):
        program = compile_program(model, hardware_config.load(
            None, [*settings, f"keep_currents={keep}"]))
        plans = {plan.name: plan for plan in program.layers}
        if keep:
            assert plans["attn.out_lif"].adds_current == "embed_lif"
            assert plans["attn.tail_lif"].adds_current == "attn.out_lif"
            assert program.current_buffers == 1       # the stream updated in place
        else:
            assert program.current_buffers == 0
        result = cosimulate(build_directory.write(program, model, tmp_path / f"k{keep}"), x)
        assert result.verdict.bit_exact, result.verdict.first_mismatch
        results[keep] = result
    # the same spikes, and the kept stream is not walked again
    assert np.array_equal(results[1].rtl_predictions, results[0].rtl_predictions)
    assert results[1].cycles.mean() < results[0].cycles.mean()


@pytest.mark.parametrize("architecture, settings", [
    ("spikformer", []),
    ("sdt_v2", ["tppes=3", "time_chunk=2"]),
])
def test_q_ktv_models_exported_from_pytorch_are_bit_exact(architecture, settings, tmp_path):
    """A Spikformer (SSA, spike residuals) and a Spike-driven Transformer v2 (its Q (K^T V)
    on the kept residual stream of currents), 16 tokens of 8 features in 2 heads, through
    the PyTorch frontend's post-training quantization."""
    T = 4
    ir = random_transformer(architecture, dim=8, heads=2, hidden=16, timesteps=T)
    x = (np.random.default_rng(0).random((8, T, 1, 8, 8)) < 0.4).astype(np.uint8)
    program = compile_program(ir, hardware_config.load(None, settings))
    reads = {plan.name: plan.operands for plan in program.layers if plan.operands}
    assert reads == {"blocks.0.attn.ktv": "blocks.0.attn.ktv.values",
                     "blocks.0.attn.attn_lif": "blocks.0.attn.ktv"}
    result = cosimulate(build_directory.write(program, ir, tmp_path / "b"), x)
    assert result.verdict.bit_exact, result.verdict.first_mismatch
    for name in ("blocks.0.attn.ktv.values", "blocks.0.attn.attn_lif"):
        assert result.trace.spikes[name].any(), name
