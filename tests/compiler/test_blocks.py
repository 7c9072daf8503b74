"""Address generation (compiler/scheduler/blocks.py): a TPPE's repeated output positions
stored once as a block and called with chunk and slot offsets. The program the fetch walks
(instruction_format.walk) must be exactly the program without calls, and compute the
reference."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen.compiler import hardware_config
from hwgen.compiler.hardware_config import FETCH_WIDTHS
from hwgen.compiler.instruction_format import (TAG_CALL, TAG_CHUNK, TAG_LAYER_END,
                                               TAG_NEURON, TAG_PAD, TAG_RETURN,
                                               stored_layers, unpack_entry, walk)
from hwgen.compiler.ir import reference
from hwgen.compiler.ir.spike_words import spikes_to_words
from hwgen.compiler.scheduler.blocks import share_blocks
from hwgen.compiler.scheduler.program import compile_program
from hwgen.errors import ConfigError
from conv_models import cnn
import program_model


def run_of(chunks, slots, mask=0b11):
    """One output position's neurons: a header per slot, its chunk entries."""
    entries = []
    for slot in slots:
        entries.append(("neuron", {"theta": 3, "bias": 0, "slot": slot}))
        entries += [("chunk", {"chunk": c, "mask": mask, "wbase": 0, "last": 0})
                    for c in chunks]
    return entries


def expanded(program, fetch_width):
    """What :func:`walk` would read from the (kind, fields) ``program``: blocks expanded."""
    out, position = [], 0
    layers = sum(kind == "layer_end" for kind, _ in program[:first_block(program)])
    ended = 0
    while ended < layers:
        kind, fields = program[position]
        position += 1
        if kind == "call":
            target = fields["target"] * fetch_width
            while program[target][0] != "return":
                inner, values = program[target]
                target += 1
                if inner == "chunk":
                    values = {**values, "chunk": values["chunk"] + fields["chunk"]}
                elif inner == "neuron":
                    values = {**values, "slot": values["slot"] + fields["slot"]}
                if inner != "pad":
                    out.append((inner, values))
        elif kind != "pad":
            ended += kind == "layer_end"
            out.append((kind, fields))
    return out


def first_block(program):
    ends = [i for i, (kind, _) in enumerate(program) if kind == "layer_end"]
    return ends[-1] + 1 if ends else len(program)


@pytest.mark.parametrize("fetch_width", FETCH_WIDTHS)
def test_runs_that_repeat_with_moved_addresses_are_called(fetch_width):
    runs = [run_of([p, p + 1], [10 * p, 10 * p + 1]) for p in range(4)]
    odd = run_of([7], [90])                 # a border position: its own entries
    program, calls, _ = share_blocks([runs + [odd]], fetch_width, call_groups=1)
    assert calls == 4
    kinds = [kind for kind, _ in program]
    assert kinds.count("return") == 1       # one block for the four positions
    assert expanded(program, fetch_width) == [e for run in runs + [odd] for e in run] + [
        ("layer_end", {})]
    if fetch_width > 1:
        for i, kind in enumerate(kinds):
            if kind in ("call", "return"):
                assert i % fetch_width == 0 and all(
                    k == "pad" for k in kinds[i + 1:i + fetch_width])
        block = next(fields["target"] for kind, fields in program if kind == "call")
        assert program[block * fetch_width][0] == "neuron"


def test_runs_below_call_groups_or_seen_once_stay_inline():
    runs = [run_of([p], [p]) for p in range(3)]
    for call_groups in (0, 3):          # off; a run of 2 entries is too short to call
        program, calls, _ = share_blocks([runs], 1, call_groups)
        assert calls == 0 and program == [e for run in runs for e in run] + [("layer_end", {})]
    program, calls, _ = share_blocks([runs[:1]], 1, call_groups=1)     # seen once
    assert calls == 0


def test_runs_differing_in_more_than_offsets_are_not_shared():
    a, b = run_of([0, 1], [0], mask=0b11), run_of([2, 3], [1], mask=0b01)
    program, calls, _ = share_blocks([[a, b]], 1, call_groups=1)
    assert calls == 0


def matching(entries):
    """A walk's entries as far as the sums go: chunk entries whose mask is forced to zero
    left out, and the fields that only say where a neuron's entries end (``last``) or
    where an entry lies in its block's window."""
    return [{k: v for k, v in entry.items() if k not in ("last", "row", "col")}
            for entry in entries if entry["tag"] != TAG_CHUNK or entry["mask"]]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 1000), tppes=st.sampled_from([1, 2, 3, 5]),
       chunk=st.sampled_from([4, 8, 16]), fetch_width=st.sampled_from(FETCH_WIDTHS),
       channels=st.sampled_from([1, 3, 16]), side=st.sampled_from([1, 2, 4, 7]),
       border_calls=st.sampled_from([0, 1]))
def test_a_program_with_calls_walks_the_program_without_and_computes_the_reference(
        seed, tppes, chunk, fetch_width, channels, side, border_calls):
    """Without ``border_calls`` the walk is exactly the program's without calls; with it,
    a border pixel's call walks its block's entries outside the map too, masked."""
    model, spikes = cnn(seed, channels, side)
    settings_ = [f"tppes={tppes}", f"chunk={chunk}", f"fetch_width={fetch_width}",
                 f"border_calls={border_calls}"]
    plain = compile_program(model, hardware_config.load(None, settings_ + ["call_groups=0"]))
    program = compile_program(model, hardware_config.load(None, settings_ + ["call_groups=1"]))
    assert plain.calls()[0] == 0
    layers = len(program.layers)
    for p in range(tppes):
        ours = list(walk(program.layouts, program.entries[p], layers, fetch_width))
        theirs = list(walk(plain.layouts, plain.entries[p], layers, fetch_width))
        if border_calls:
            assert matching(ours) == matching(theirs)
        else:
            assert ours == theirs
    trace = reference.run(model, spikes)
    words, membranes = program_model.run(program, spikes)
    for plan in program.layers:
        assert np.array_equal(words[plan.name], spikes_to_words(trace.spikes[plan.name]))
    assert np.array_equal(membranes, trace.membranes["out"])


@pytest.mark.parametrize("fetch_width", [1, 4])
def test_a_cnn_whose_producer_computes_whole_pixels_calls_one_block_per_pixel(fetch_width):
    """16 channels per pixel fill one 16-input chunk: conv2's interior pixels read their
    windows at the same chunk offsets, so each TPPE stores them once and calls them."""
    model, _ = cnn(3, channels=3, side=7)
    program = compile_program(model, hardware_config.load(
        None, ["tppes=2", f"fetch_width={fetch_width}", "call_groups=1"]))
    plain = compile_program(model, hardware_config.load(
        None, ["tppes=2", f"fetch_width={fetch_width}", "call_groups=0"]))
    # calls per layer, over the TPPEs
    calls = np.sum([[sum(entry["tag"] == TAG_CALL for entry in layer)
                     for layer in stored_layers(program.layouts, words,
                                                len(program.layers), fetch_width)]
                    for words in program.entries], axis=0)
    # conv2's 5 x 5 interior pixels (but where a TPPE's range of lif1's pixels ends)
    assert calls[1] >= 20
    assert max(map(len, program.entries)) < max(map(len, plain.entries))
    # the walk reads as many neurons as the layers have
    neurons = sum(1 for words in program.entries
                  for e in walk(program.layouts, words, len(program.layers), fetch_width)
                  if e["tag"] == TAG_NEURON)
    assert neurons == sum(plan.outputs for plan in program.layers)


def test_only_programs_with_calls_have_the_wider_tag():
    model, _ = cnn(3, channels=3, side=7)
    widths = {cg: compile_program(model, hardware_config.load(
        None, ["tppes=2", f"call_groups={cg}"])).layouts for cg in (0, 1)}
    assert widths[0]["entry"]["tag"].width == 2 and "call_entry" not in widths[0]
    assert widths[1]["entry"]["tag"].width == 3 and "call_entry" in widths[1]
    assert TAG_PAD < 4 <= min(TAG_CALL, TAG_RETURN)


def test_walk_refuses_a_block_that_holds_a_layer_end():
    model, _ = cnn(3, channels=3, side=7)
    program = compile_program(model, hardware_config.load(None, ["tppes=2", "call_groups=1"]))
    words = list(program.entries[0])
    target = next(unpack_entry(program.layouts, w)["target"] for w in words
                  if program.layouts["entry"].unpack(w)["tag"] == TAG_CALL)
    words[target] = program.layouts["entry"].pack(tag=2)
    with pytest.raises(ValueError, match=r"walk: entry \d+ \(tag 2\) in a block"):
        list(walk(program.layouts, words, len(program.layers)))


@pytest.mark.parametrize("value", ["-1", "x", "1.5"])
def test_call_groups_must_be_a_count(value):
    with pytest.raises(ConfigError, match=r"call_groups = .* must be an integer between 0"):
        hardware_config.load(None, [f"call_groups={value}"])


@pytest.mark.parametrize("fetch_width", [1, 4])
def test_every_stored_entry_belongs_to_one_layer(fetch_width):
    model, _ = cnn(3, channels=1, side=7)
    program = compile_program(model, hardware_config.load(
        None, ["tppes=2", f"fetch_width={fetch_width}", "call_groups=1"]))
    assert program.calls()[0]
    for words in program.entries:
        layers = stored_layers(program.layouts, words, len(program.layers), fetch_width)
        assert sum(map(len, layers)) == len(words)
        assert all(layer[-1]["tag"] in (TAG_RETURN, TAG_PAD, TAG_LAYER_END) for layer in layers)


class _Found(Exception):
    pass


@pytest.mark.parametrize("kind", ["calls", "masked", "in_step"])
def test_the_model_generator_draws_designs_with_calls(kind):
    """The soak and the generated co-simulation (tests/sim/test_cosim_generated.py) reach
    address generation: the generator draws convolutional designs that compile to calls,
    to calls with forced-zero masks (``masked``) and to layers run in step from a shared
    block (``in_step``, mapping=tiles) (drawn until one does, up to 3,000 draws, so that
    the test does not hang on one sequence of draws)."""
    from hypothesis import HealthCheck, Phase
    from model_strategies import SHARED, cases

    @settings(max_examples=3000, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(cases(flaw_weight=0.0))
    def draw(case):
        if SHARED in case.overrides:
            return          # may be refused (the option's limits), which is not the point
        if kind == "in_step" and case.convs and "mapping=tiles" in case.overrides:
            model = case.model()
            if any(plan.in_step for plan in compile_program(model,
                                                            case.config(model)).layers):
                raise _Found
        elif kind != "in_step" and case.convs and "call_groups=1" in case.overrides:
            model = case.model()
            program = compile_program(model, case.config(model))
            if program.calls()[0] > 0 and (
                    kind == "calls" or "rows" in program.layouts["call_entry"].offsets):
                raise _Found

    with pytest.raises(_Found):
        draw()
