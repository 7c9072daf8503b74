"""The per-layer mapping's knob (``mapping``, compiler/scheduler/program.py by_positions):
how a layer of output positions is cut over the TPPEs, and that every cut computes the
reference."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen.compiler import hardware_config
from hwgen.compiler.hardware_config import MAPPINGS
from hwgen.compiler.ir import reference
from hwgen.compiler.ir.spike_words import spikes_to_words
from hwgen.compiler.scheduler.program import compile_program
from hwgen.errors import ConfigError
from conv_models import cnn
import program_model


def positions_per_tppe(plan, positions):
    """Per TPPE, {position: how many of its channels the TPPE computes}."""
    return [{pos: sum(1 for n in neurons if n % positions == pos)
             for pos in {n % positions for n in neurons}} for neurons in plan.tppe_neurons]


@pytest.mark.parametrize("tppes", [2, 3, 5])
def test_positions_gives_every_tppe_whole_positions(tppes):
    model, _ = cnn(4, channels=3, side=5)
    program = compile_program(model, hardware_config.load(
        None, [f"tppes={tppes}", "mapping=positions"]))
    for plan in program.layers[:2]:                   # the two convolutions: 25 pixels
        channels = plan.outputs // 25
        held = positions_per_tppe(plan, 25)
        assert all(count == channels for tppe in held for count in tppe.values())
        assert sum(map(len, held)) == 25
        # contiguous ranges, in order
        flat = [pos for tppe in held for pos in sorted(tppe)]
        assert flat == sorted(flat)


def test_neurons_splits_positions_where_ranges_keeps_them_whole():
    """A layer whose pixel ranges balance within 2 %: 'ranges' keeps ranges of positions,
    'neurons' balances neuron by neuron and cuts positions over TPPEs."""
    model, _ = cnn(3, channels=3, side=7)
    ranges_, neurons = (compile_program(model, hardware_config.load(
        None, ["tppes=2", f"mapping={m}"])) for m in ("ranges", "neurons"))
    pixels = 49
    ranges = positions_per_tppe(ranges_.layers[0], pixels)
    cut = positions_per_tppe(neurons.layers[0], pixels)
    assert sum(map(len, ranges)) <= pixels + 1       # at most one pixel cut between two
    assert sum(map(len, cut)) > pixels + 1


def test_positions_with_border_calls_stores_the_least():
    model, _ = cnn(3, channels=3, side=7)
    stored = {m: sum(map(len, compile_program(model, hardware_config.load(
        None, ["tppes=2", "call_groups=1", f"mapping={m}"])).entries)) for m in MAPPINGS}
    assert stored["positions"] < stored["ranges"] < stored["neurons"]


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 1000), tppes=st.sampled_from([1, 2, 3, 4]),
       mapping=st.sampled_from(MAPPINGS), side=st.sampled_from([1, 3, 5]),
       channels=st.sampled_from([1, 3, 16]), fetch_width=st.sampled_from([1, 4]))
def test_every_mapping_computes_the_reference(seed, tppes, mapping, side, channels,
                                              fetch_width):
    model, spikes = cnn(seed, channels, side)
    program = compile_program(model, hardware_config.load(
        None, [f"tppes={tppes}", f"mapping={mapping}", "call_groups=1",
               f"fetch_width={fetch_width}"]))
    trace = reference.run(model, spikes)
    words, membranes = program_model.run(program, spikes)
    for plan in program.layers:
        assert np.array_equal(words[plan.name], spikes_to_words(trace.spikes[plan.name]))
    assert np.array_equal(membranes, trace.membranes["out"])


@pytest.mark.parametrize("value", ["pixels", "0"])
def test_mapping_must_be_known(value):
    with pytest.raises(ConfigError, match=rf"--set mapping={value}: mapping = .* must be "
                                          r"one of ranges, neurons, positions"):
        hardware_config.load(None, [f"mapping={value}"])


def test_a_program_too_deep_for_a_cnn_suggests_whole_positions():
    from hwgen.bundled import digits_cnn_model, digits_model
    from hwgen.errors import FitError
    with pytest.raises(FitError, match=r"config program_depth = 300, but TPPE 0 needs \d+ "
                                       r"fiber-program entries; raise it, use more TPPEs or "
                                       r"set mapping=positions or tiles$"):
        compile_program(digits_cnn_model(), hardware_config.load(None, ["program_depth=300"]))
    # an MLP has no positions to map whole
    with pytest.raises(FitError, match=r"entries; raise it or use more TPPEs$"):
        compile_program(digits_model(), hardware_config.load(None, ["program_depth=100"]))
