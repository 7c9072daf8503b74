"""Tiles in step (compiler/scheduler/lockstep.py, ``mapping=tiles``): the tile assignment,
the position-major output layout, which layers run in step from one shared block, the
shared program's layout, and that every such program computes the reference."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen.compiler import hardware_config
from hwgen.compiler.instruction_format import (TAG_CALL, TAG_LAYER_END, TAG_NEURON,
                                               TAG_PAD, silent_call, stored_layers, walk)
from hwgen.compiler.ir import reference
from hwgen.compiler.ir.spike_words import spikes_to_words
from hwgen.compiler.scheduler.lockstep import (in_step_cycles, position_slots,
                                               tile_assignment, tile_order)
from hwgen.compiler.scheduler.program import compile_program
from conv_models import cnn
import program_model


def tiles(model, tppes, *more):
    return compile_program(model, hardware_config.load(
        None, [f"tppes={tppes}", "mapping=tiles", *more]))


def test_tppe_p_computes_position_p_of_every_tile_the_costliest_first():
    # 3 channels x 7 positions; positions cost 3, 30, 3, 12, 3, 21, 3 (ties by position)
    costs = np.tile([1, 10, 1, 4, 1, 7, 1], 3).astype(float)
    assert tile_order(costs, 7) == [1, 5, 3, 0, 2, 4, 6]
    assignment = tile_assignment(costs, 3, 7)
    assert assignment.neurons == (
        (1, 8, 15, 0, 7, 14, 6, 13, 20),           # positions 1, 0, 6, channels in turn
        (5, 12, 19, 2, 9, 16),                      # 5, 2
        (3, 10, 17, 4, 11, 18))                     # 3, 4
    assert assignment.estimated_cycles == tuple(float(sum(costs[list(ns)]))
                                                for ns in assignment.neurons)
    # in step, a tile costs its costliest position: 30 + 3 + 3
    assert in_step_cycles(costs, 3, 7) == (36.0,) * 3


def test_a_layer_that_cannot_run_in_step_takes_its_tiles_in_row_major_order():
    """The first convolution reads the network's input (never in step): its tiles are
    consecutive positions, whose runs share more blocks within a TPPE; the second's are
    positions of like cost."""
    model, _ = cnn(9, channels=3, side=5)
    program = tiles(model, 3)
    first, second, _ = program.layers
    assert [sorted({n % 25 for n in ns}) for ns in first.tppe_neurons] == [
        list(range(p, 25, 3)) for p in range(3)]
    assert second.in_step and [sorted({n % 25 for n in ns})
                               for ns in second.tppe_neurons] != [
        list(range(p, 25, 3)) for p in range(3)]
    assert tile_assignment(np.arange(14.0), 3, 7, by_cost=False).neurons == (
        (0, 7, 3, 10, 6, 13), (1, 8, 4, 11), (2, 9, 5, 12))


def test_a_layer_in_step_is_estimated_at_its_tiles_costliest_positions():
    costs = np.array([1, 5, 2, 2, 9, 1, 3] * 2, dtype=float)   # 2 channels x 7 positions
    # positions cost 2, 10, 4, 4, 18, 2, 6: tiles of 3, the costliest first, {18, 10, 6},
    # {4, 4, 2}, {2} cost 18 + 4 + 2; in row-major tiles it would be 10 + 18 + 6
    assert in_step_cycles(costs, 3, 7) == (24.0, 24.0, 24.0)
    model, _ = cnn(1, channels=3, side=5)
    plan = tiles(model, 2).layers[1]
    assert plan.in_step and len(set(plan.estimated_cycles)) == 1


def test_each_position_takes_whole_chunks_in_row_major_order():
    slots, slot_of = position_slots(outputs=3 * 4, positions=4, chunk=4)
    # channel c of position q at q x 4 + c; the fourth slot of every chunk is empty
    assert slots == [0, 4, 8, -1, 1, 5, 9, -1, 2, 6, 10, -1, 3, 7, 11, -1]
    assert all(slots[slot] == n for n, slot in slot_of.items())
    slots, _ = position_slots(outputs=5 * 2, positions=2, chunk=4)
    assert slots == [0, 2, 4, 6, 8, -1, -1, -1, 1, 3, 5, 7, 9, -1, -1, -1]


def test_the_convolution_reading_a_tiled_layer_runs_in_step_and_the_first_does_not():
    model, _ = cnn(1, channels=3, side=5)
    program = tiles(model, 2)
    first, second, dense = program.layers
    # the network's input is streamed in C order: one column over is one slot, not a
    # chunk, so the first convolution's positions are no one block moved
    assert not first.in_step
    assert first.not_in_step == "it reads the network's input, streamed in C order"
    assert second.in_step and second.not_in_step is None
    assert not dense.in_step and dense.not_in_step is None   # flat: not tiled at all
    descriptors = [program.layouts["layer"].unpack(d) for d in program.descriptors]
    assert [d["lockstep"] for d in descriptors] == [0, 1, 0]
    assert program.shared_base is not None


@pytest.mark.parametrize("tppes", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("fetch_width", [1, 4])
def test_every_tppe_walks_the_layer_in_step(tppes, fetch_width):
    """In the layer run in step every TPPE's part is one CALL per tile of the same block
    (a silent one where its tile has no position: 25 positions are not whole tiles of 2,
    3, 4 or 7), so the fetch units read the shared memory at one address throughout."""
    model, _ = cnn(2, channels=3, side=5)
    program = tiles(model, tppes, f"fetch_width={fetch_width}")
    K, base, index = fetch_width, program.shared_base, 1
    targets, silent = set(), []
    for p in range(tppes):
        layer = stored_layers(program.layouts, program.entries[p], 3, K)[index]
        own = layer[:[e["tag"] for e in layer].index(TAG_LAYER_END)]
        # its own part of the layer: calls only (and the PADs of a wide fetch's groups)
        assert {e["tag"] for e in own} <= {TAG_CALL, TAG_PAD}
        calls = [entry for entry in own if entry["tag"] == TAG_CALL]
        assert len(calls) == -(-25 // tppes)
        targets |= {call["target"] for call in calls}
        silent.append(sum(silent_call(call) for call in calls))
    assert len(targets) == 1 and targets.pop() * K >= base
    assert sum(silent) == -(-25 // tppes) * tppes - 25
    # the shared blocks are the same entries in every TPPE's address space
    assert all(entries[base:] == program.entries[0][base:] for entries in program.entries)
    assert all(len(entries) == len(program.entries[0]) for entries in program.entries)


def test_a_silent_call_walks_nothing():
    model, spikes = cnn(3, channels=3, side=5)
    program = tiles(model, 4)                       # 25 positions: 3 silent calls
    walked = [sum(1 for e in walk(program.layouts, entries, 3) if e["tag"] == TAG_NEURON)
              for entries in program.entries]
    # every TPPE's neurons: its positions' channels in both convolutions, and the dense
    # layer's neurons it computes; nothing of the silent calls
    for p, count in enumerate(walked):
        assert count == sum(len(plan.tppe_neurons[p]) for plan in program.layers)


def test_the_shared_block_is_stored_once():
    """The layer run in step stores its calls per TPPE and its block once, in the shared
    memory; with whole positions per TPPE (``positions``) every TPPE stores the block."""
    model, _ = cnn(4, channels=16, side=6)
    stored = {}
    for mapping in ("positions", "tiles"):
        program = compile_program(model, hardware_config.load(
            None, ["tppes=4", f"mapping={mapping}"]))
        layers = [stored_layers(program.layouts, entries, 3)[1]
                  for entries in program.entries]
        if mapping == "tiles":
            layers = [layer[:[e["tag"] for e in layer].index(TAG_LAYER_END) + 1]
                      for layer in layers]
            memories = program.memory_bits()
            assert memories["shared_program"][0] == len(program.shared_entries())
            assert memories["tppe0_program"][0] == program.shared_base
        stored[mapping] = sum(map(len, layers)) + len(program.shared_entries())
    assert stored["tiles"] < stored["positions"] / 2


def test_without_tiles_nothing_changes():
    model, _ = cnn(5, channels=3, side=5)
    program = compile_program(model, hardware_config.load(None, ["tppes=2"]))
    assert program.shared_base is None and program.shared_entries() == []
    assert "lockstep" not in program.layouts["layer"].offsets
    assert not any(plan.in_step or plan.not_in_step for plan in program.layers)
    assert "shared_program" not in program.memory_bits()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 1000), tppes=st.sampled_from([1, 2, 3, 4, 9, 16]),
       side=st.sampled_from([1, 2, 3, 5]), channels=st.sampled_from([1, 3, 16, 17]),
       fetch_width=st.sampled_from([1, 2, 4, 8]), border_calls=st.sampled_from([0, 1]))
def test_tiles_compute_the_reference(seed, tppes, side, channels, fetch_width,
                                     border_calls):
    model, spikes = cnn(seed, channels, side)
    # (16 TPPEs on 9 or 4 positions: some have no position at all, only silent calls)
    program = tiles(model, tppes, f"fetch_width={fetch_width}", "call_groups=1",
                    f"border_calls={border_calls}")
    trace = reference.run(model, spikes)
    words, membranes = program_model.run(program, spikes)
    for plan in program.layers:
        assert np.array_equal(words[plan.name], spikes_to_words(trace.spikes[plan.name]))
    assert np.array_equal(membranes, trace.membranes["out"])
    # in step wherever the second convolution has an interior position, whose window
    # holds every other position's (a 2 x 2 map has none)
    assert program.layers[1].in_step == (side >= 3)
