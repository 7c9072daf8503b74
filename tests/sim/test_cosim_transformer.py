"""Spike-driven Transformer v1 attention blocks (SDSA) on the RTL (docs/architecture.md,
"Spiking transformers"): the Q, K and V layers reading a kept layer, K AND V and Q AND mask
as layers of gates, the column sum over tokens, a membrane shortcut from the model's input
(through its copy) and the membrane readout, bit-exact against the integer reference in
every layer on Verilator, with all-silent and all-spiking samples, under time chunks, the
laggy join and the wide fetch. @digits_transformer itself runs in
tests/cli/test_bundled_transformer.py."""

import numpy as np
import pytest

from attention_models import AttentionDraw, sdsa_model
from hwgen import build_directory
from hwgen.compiler import hardware_config
from hwgen.compiler.scheduler.program import compile_program
from hwgen.sim.cosim import cosimulate

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
        for name in ("attn.kv", "attn.masked"):
            assert result.trace.spikes[name].any(), name
    assert np.array_equal(result.rtl_predictions, result.trace.predictions)
