"""compiler/passes/spike_gates.py: layers of gates (AND, copy) and the never-firing
integrator, exact against the reference on every input; and attention blocks through the
whole compiler, walked entry by entry by the program model."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attention_models import AttentionDraw, sdsa_model
import program_model
from hwgen.compiler import hardware_config
from hwgen.compiler.ir import (LI, LIF, Dense, Flatten, Input, Leak, Model, Readout, SpikeAnd,
                              TokenSum, reference)
from hwgen.compiler.ir.spike_words import spikes_to_words
from hwgen.compiler.passes.legalise import legalise
from hwgen.compiler.passes.legalise import legalise_for
from hwgen.compiler.passes.spike_gates import and_gates, gate_lif, input_copy, silent_lif
from hwgen.compiler.scheduler.program import compile_program
from hwgen.errors import UnsupportedError


def every_pair(steps=4):
    """Spike trains of two inputs over every combination of bits, with memories of 1s."""
    bits = np.array([[a, b] for a in (0, 1) for b in (0, 1)], dtype=np.uint8)
    pattern = np.concatenate([bits, np.ones((steps, 2), dtype=np.uint8), bits[::-1]])
    return pattern[np.newaxis]                                     # (1, T, 2)


def test_a_gate_forgets_so_its_spikes_are_a_boolean_function_of_this_step():
    spikes = every_pair()
    current = spikes.sum(axis=2, keepdims=True).astype(np.int64)
    fired_and = reference.lif(gate_lif("a", [2]), current)[0][0, :, 0]
    fired_or = reference.lif(gate_lif("o", [1]), current)[0][0, :, 0]
    assert np.array_equal(fired_and, spikes[0, :, 0] & spikes[0, :, 1])
    assert np.array_equal(fired_or, spikes[0, :, 0] | spikes[0, :, 1])


def and_model(mask):
    model = Model("m", 6)
    model.add(Input("x", (3, 4)))
    model.add(Flatten("y", 0, 0), "x")             # a relabelled copy: a second operand
    if mask:
        model.add(TokenSum("s"), "y")
        model.add(LIF("m", np.full(3, 2), v_bits=4), "s")
        model.add(SpikeAnd("a"), ["x", "m"])
    else:
        model.add(SpikeAnd("a"), ["x", "y"])
    return model


@pytest.mark.parametrize("mask", [False, True])
def test_and_gates_read_both_operands_once_with_weight_1(mask):
    model = and_model(mask)
    types = model.infer()
    if not mask:
        with pytest.raises(UnsupportedError, match="spike_and 'a': its input flatten 'y' is "
                                                   "not the output of a spiking op"):
            legalise(model)
        dense, lif = and_gates(model["a"], ["x", "x"], ["x"], types)
        # x AND x: one weight of 2 on each of x's neurons
        assert (dense.dense_weight() == 2 * np.eye(12, dtype=int)).all()
        return
    dense, lif = and_gates(model["a"], ["x", "m"], ["x", "m"], types)
    weight = dense.dense_weight()
    assert weight.shape == (12, 15) and (weight[:, :12] == np.eye(12, dtype=int)).all()
    # feature c's 4 positions read the mask's spike c
    assert (weight[:, 12:] == np.repeat(np.eye(3, dtype=int), 4, axis=0)).all()
    assert (lif.threshold == 2).all() and dense.acc_bits == 3


def test_the_input_copy_and_the_silent_integrator_reproduce_what_they_stand_for():
    rng = np.random.default_rng(4)
    model = Model("m", 7)
    model.add(Input("x", (5,)))
    model.add(Dense("d", rng.integers(-8, 8, (3, 5)), weight_bits=5, acc_bits=9), "x")
    model.add(LI("li", leak=Leak.by_shift(3), v_bits=6), "d")    # small: it saturates
    model.add(Readout("r", "final_membrane"), "li")
    x = (rng.random((9, 7, 5)) < 0.6).astype(np.uint8)
    trace = reference.run(model, x)
    dense, copy = input_copy(model, model.infer())
    assert np.array_equal(reference.lif(copy, reference.dense(
        Dense("c", dense.dense_weight(), weight_bits=2, acc_bits=3), x))[0], x)
    assert np.isin(trace.potentials["li"], [-32, 31]).any()     # saturation is covered
    spikes, membranes = reference.lif(silent_lif(model["li"], 3), trace.currents["d"])
    assert not spikes.any() and np.array_equal(membranes, trace.membranes["li"])


THRESHOLDS = st.sampled_from(["zero", "one", "typical", "vmax"])


@st.composite
def attention_draws(draw):
    return AttentionDraw(
        seed=draw(st.integers(0, 2**16)), weight_bits=draw(st.integers(2, 6)),
        thresholds=tuple(draw(THRESHOLDS) for _ in range(5)),
        leak_shift=draw(st.integers(0, 3)), fire=draw(st.sampled_from(["ge", "gt"])),
        reset=draw(st.sampled_from(["zero", "subtract", "none"])),
        order=draw(st.sampled_from(["same_step", "delayed"])),
        v_bits=draw(st.integers(6, 12)),
        mask=draw(st.sampled_from(["feature", "hadamard", "ktv"])),
        shortcut=draw(st.booleans()), stream=draw(st.booleans()),
        heads=draw(st.integers(1, 4)), kv_stride=draw(st.sampled_from([1, 2])))


@settings(max_examples=60, deadline=None)
@given(draw=attention_draws(),
       tokens=st.sampled_from([(1,), (5,), (2, 3), (4, 4)]),
       features=st.integers(1, 9), timesteps=st.sampled_from([1, 3, 4, 8]),
       tppes=st.integers(1, 5), chunk=st.sampled_from([4, 8, 16]),
       data=st.data())
def test_attention_blocks_compile_to_programs_that_compute_the_reference(
        draw, tokens, features, timesteps, tppes, chunk, data):
    """Every layer of an SDSA block (the Q, K, V layers reading a kept layer, the AND gates,
    the column sum, the shortcut from the model's input through its copy, a kept stream
    of currents, the membrane readout) or of a Q (K^T V) block (V kept, the matrices and
    the product reading kept currents as operands, in 1 to 4 heads) as the program model
    walks the compiled program, on random, all-silent and all-spiking inputs."""
    model = sdsa_model(draw, tokens, features, timesteps)
    time_chunk = data.draw(st.sampled_from([t for t in (1, 2, 4, 8) if timesteps % t == 0]))
    config = hardware_config.load(None, [f"tppes={tppes}", f"chunk={chunk}",
                                         f"time_chunk={time_chunk}"])
    program = compile_program(model, config)
    rng = np.random.default_rng(draw.seed)
    x = (rng.random((3, timesteps, features, *tokens)) < 0.5).astype(np.uint8)
    x[0], x[1] = 0, 1
    trace = reference.run(model, x)
    spikes = legalise_for(model, program.config).spikes_of(trace.spikes)
    layers, membranes = program_model.run(program, x.reshape(3, timesteps, -1))
    for plan in program.layers:
        assert np.array_equal(layers[plan.name], spikes_to_words(spikes[plan.name])), \
            plan.name
    assert np.array_equal(membranes, trace.membranes["logits"])
