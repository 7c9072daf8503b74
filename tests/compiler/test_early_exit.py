"""The early-exit rule (compiler/ir/early_exit.py) and the reference's early exit."""

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hwgen import bundled
from hwgen.compiler import hardware_config
from hwgen.compiler.ir import LIF, Dense, Input, Model, Readout, reference
from hwgen.compiler.ir.early_exit import check_rule, decided, exit_steps
from hwgen.compiler.ir.reference import lif
from hwgen.compiler.scheduler.program import compile_program
from hwgen.errors import ConfigError, FitError, UnsupportedError

spike_arrays = hnp.arrays(np.uint8, st.tuples(st.integers(1, 6), st.sampled_from([4, 8, 12]),
                                               st.integers(1, 5)), elements=st.integers(0, 1))


@settings(max_examples=300, deadline=None)
@given(spike_arrays, st.sampled_from([1, 2, 4]))
def test_a_certain_exit_never_changes_the_prediction(spikes, lanes):
    steps = exit_steps(spikes, lanes, "certain")
    full = np.argmax(spikes.sum(axis=1), axis=1)
    for sample, s in enumerate(steps):
        assert s % lanes == 0 and lanes <= s <= spikes.shape[1]
        early = np.argmax(spikes[sample, :s].sum(axis=0))
        assert early == full[sample]


@settings(max_examples=300, deadline=None)
@given(spike_arrays, st.sampled_from([1, 2]), st.integers(1, 3))
def test_a_margin_exit_stops_at_the_first_chunk_with_that_lead(spikes, lanes, margin):
    steps = exit_steps(spikes, lanes, margin)
    T = spikes.shape[1]
    for sample, s in enumerate(steps):
        ahead = []
        for end in range(lanes, T, lanes):
            counts = np.sort(spikes[sample, :end].sum(axis=0))[::-1]
            # one class: nothing to decide, so "ahead of every other class" holds at once
            ahead.append(len(counts) == 1 or counts[0] - counts[1] >= margin)
        first = next((i for i, a in enumerate(ahead) if a), None)
        assert s == (T if first is None else (first + 1) * lanes)


def test_certain_respects_the_lowest_index_tie_break():
    # leader 1 with 3, class 0 with 1 and one step left: 0 could reach 2 < 3: certain.
    assert decided([[1, 3]], 1, "certain").tolist() == [True]
    # two steps left: class 0 could tie at 3 and win the tie: not certain.
    assert decided([[1, 3]], 2, "certain").tolist() == [False]
    # a class after the leader may tie: leader 0 with 3, class 1 with 1, two left: certain.
    assert decided([[3, 1]], 2, "certain").tolist() == [True]
    assert decided([[2, 2]], 0, "certain").tolist() == [True]     # nothing left to run
    assert decided([[0]], 5, "certain").tolist() == [True]        # one class


@pytest.mark.parametrize("rule, message", [
    (0, "early_exit = 0 must be 'off', 'certain' or a margin"),
    ("maybe", "early_exit = 'maybe' must be 'off', 'certain' or a margin"),
    (True, "early_exit = True must be"),
])
def test_bad_rules_are_refused(rule, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_rule(rule)


def model_without_readout():
    model = Model("m", 8)
    model.add(Input("x", (4,)))
    model.add(Dense("fc", np.eye(4, dtype=int), weight_bits=2, acc_bits=3), "x")
    model.add(LIF("lif", np.ones(4, dtype=int), v_bits=4), "fc")
    return model.validate()


@pytest.mark.parametrize("overrides, message", [
    (["early_exit=certain"], "config early_exit = 'certain' stops after a time chunk, but the "
                             "model's 8 steps run in one"),
    (["--", "early_exit=0"], None),
])
def test_configurations_that_cannot_exit_are_refused(overrides, message):
    if message is None:
        with pytest.raises(ConfigError, match="early_exit = 0 must be"):
            hardware_config.load(None, overrides[1:])
        return
    with pytest.raises(FitError, match=re.escape(message)):
        compile_program(bundled.digits_model(), hardware_config.load(None, overrides))


def test_early_exit_needs_a_spike_count_readout():
    config = hardware_config.load(None, ["time_chunk=2", "early_exit=certain"])
    with pytest.raises(FitError, match="has no spike-count readout"):
        compile_program(model_without_readout(), config)
    with pytest.raises(UnsupportedError, match="early exit needs a spike-count readout"):
        reference.run(model_without_readout(), np.ones((1, 8, 4), np.uint8),
                      early_exit="certain", time_chunk=2)


def test_the_reference_stops_where_the_rule_says():
    model = bundled.digits_model()
    inputs, _ = bundled.digits_test_set()
    inputs = inputs[:30]
    full = reference.run(model, inputs)
    early = reference.run(model, inputs, early_exit="certain", time_chunk=2)
    assert early.steps.min() < model.timesteps          # some sample stops early
    assert np.array_equal(early.predictions, full.predictions)
    for sample, s in enumerate(early.steps):
        for name in ("lif1", "lif2"):
            assert not early.spikes[name][sample, s:].any()
            assert np.array_equal(early.spikes[name][sample, :s], full.spikes[name][sample, :s])
        # the membrane at the exit: that of a run of s steps
        current = full.currents[model.inputs_of("lif2")[0]][sample:sample + 1, :s]
        assert np.array_equal(early.membranes["lif2"][sample], lif(model["lif2"], current)[1][0])
    off = reference.run(model, inputs, early_exit="off", time_chunk=2)
    assert off.steps is None and np.array_equal(off.spikes["lif2"], full.spikes["lif2"])
