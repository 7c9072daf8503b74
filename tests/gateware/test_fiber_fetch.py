"""FiberFetch in the Amaranth simulator, against a Python model, under backpressure.

The deadlock this guards against: with a full header FIFO, the hold-back register must
still drain, or the neuron whose header waits could never end.
"""

import random

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen.compiler import hardware_config
from hwgen.compiler.hardware_config import FETCH_WIDTHS
from hwgen.compiler.scheduler.fibers import SpikeFiber
from hwgen.compiler.scheduler.program import compile_program
from hwgen.gateware.fiber_fetch import FiberFetch
from hwgen.gateware.geometry import Geometry
from hwgen.gateware.wide_fiber_fetch import WideFiberFetch, program_groups
import amaranth_streams
from conv_models import cnn
import program_model
from hwgen.sim.workloads import random_workload


def expected_stream(program, p, layer, fiber):
    """The chunk matches and headers TPPE p must emit for layers 0..``layer`` when every
    layer reads ``fiber`` (the harness has one mask memory)."""
    W = program.config.chunk
    matches, headers = [], []
    for layer_index, entries in enumerate(program_model.decode_entries(program, p)):
        position = 0
        while position < len(entries):
            _, header = entries[position]
            position += 1
            neuron = []
            while position < len(entries) and entries[position][0] == "chunk":
                chunk = entries[position][1]
                position += 1
                smask = fiber.masks[chunk["chunk"]] if chunk["chunk"] < len(fiber.masks) else 0
                if smask & chunk["mask"]:
                    neuron.append({"smask": smask, "wmask": chunk["mask"],
                                   "chunk": chunk["chunk"], "wbase": chunk["wbase"],
                                   "end": 0})
            if layer_index > layer:
                continue
            headers.append({k: header[k] for k in ("theta", "bias", "slot", "chunk_last")})
            if neuron:
                neuron[-1]["end"] = 1
                matches += neuron
            else:
                matches.append({"matched": 0, "end": 1})
    return matches, headers


class Harness(wiring.Component):
    def __init__(self, program, p, fiber, fifo_depth):
        self.program, self.p = program, p
        self.K = program.config.fetch_width
        if self.K == 1:
            self.fetch = FiberFetch(Geometry.of(program), program.layouts,
                                    program.config.program_depth, fifo_depth)
        else:
            self.fetch = WideFiberFetch(Geometry.of(program), program.layouts,
                                        program.config.program_depth, self.K, fifo_depth)
        self.masks = [0] * (1 << Geometry.of(program).mask_addr_bits)
        self.masks[:len(fiber.masks)] = fiber.masks
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.fetch = self.fetch
        K, width = self.K, self.program.layouts["entry"].width
        words = self.program.entries[self.p]
        m.submodules.program = program = Memory(
            shape=K * width, depth=-(-self.program.config.program_depth // K),
            init=words if K == 1 else program_groups(words, K, width))
        wiring.connect(m, self.fetch.program, program.read_port())
        for j in range(K):
            m.submodules[f"masks_{j}"] = masks = Memory(
                shape=self.program.config.chunk, depth=len(self.masks), init=self.masks)
            wiring.connect(m, self.fetch.masks if K == 1 else self.fetch.masks[j],
                           masks.read_port())
        return m


def run(program, p, layer, fiber, fifo_depth, seed, ready_probability, deadline=2e-3,
        hold_probability=None):
    """Run TPPE p's fetch through layers 0..``layer``; with ``hold_probability``, ``hold``
    is as the top drives it: the last cycle's ``stalling`` of this TPPE, or of another
    TPPE of a layer run in step (at random), and the walk must not read the program while
    it is high."""
    harness = Harness(program, p, fiber, fifo_depth)
    dut = harness.fetch
    rng = random.Random(seed)
    want, want_headers = expected_stream(program, p, layer, fiber)
    got, headers = [], []
    held = []

    async def hold(ctx):
        stalling = False
        while len(got) < len(want) or len(headers) < len(want_headers):
            on = stalling or rng.random() < hold_probability
            ctx.set(dut.hold, on)
            _, _, read, stalling = await ctx.tick().sample(dut.program.en, dut.stalling)
            held.append((on, read))

    async def control(ctx):
        ctx.set(dut.rewind, 1)
        await ctx.tick()
        ctx.set(dut.rewind, 0)
        for _ in range(layer + 1):
            ctx.set(dut.go, 1)
            await ctx.tick()
            ctx.set(dut.go, 0)
            await ctx.tick().until(dut.halted)

    async def matches(ctx):
        while len(got) < len(want):
            ready = rng.random() < ready_probability
            ctx.set(dut.matches.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.matches.valid, dut.matches.payload)
            if valid and ready:
                if payload.smask & payload.wmask:
                    got.append({"smask": payload.smask, "wmask": payload.wmask,
                                "chunk": payload.chunk, "wbase": payload.wbase,
                                "end": payload.end})
                else:
                    got.append({"matched": 0, "end": payload.end})

    async def header_sink(ctx):
        # Like the TPPE: a neuron's header is taken only after its last match went through.
        while len(headers) < len(want_headers):
            ends = sum(m["end"] for m in got)
            ready = ends > len(headers) and rng.random() < ready_probability
            ctx.set(dut.headers.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.headers.valid, dut.headers.payload)
            if valid and ready:
                headers.append({"theta": payload.theta, "bias": payload.bias,
                                "slot": payload.slot, "chunk_last": payload.chunk_last})

    processes = [control, matches, header_sink] + ([hold] if hold_probability else [])
    amaranth_streams.run(harness, *processes, deadline=deadline)
    assert not any(on and read for on, read in held), "the walk read while held"
    assert not hold_probability or sum(on for on, _ in held) > 10
    return got, want, headers, want_headers


def first_layer_case(seed, tppes, chunk, density, weight_density=0.4, inputs=37,
                     fetch_width=1):
    w = random_workload(seed, [inputs, 21, 6], 4, samples=1, spike_density=density,
                        weight_density=weight_density)
    program = compile_program(w.model, hardware_config.load(
        None, [f"tppes={tppes}", f"chunk={chunk}", f"fetch_width={fetch_width}"]))
    words = (w.spikes[0] * (1 << np.arange(4))[:, None]).sum(axis=0)
    return program, SpikeFiber.encode(words, chunk)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 1000), tppes=st.sampled_from([1, 3]), chunk=st.sampled_from([4, 8]),
       density=st.sampled_from([0.0, 0.2, 1.0]), fifo_depth=st.sampled_from([2, 4]),
       ready=st.sampled_from([1.0, 0.3]), weight_density=st.sampled_from([0.05, 0.4]),
       inputs=st.sampled_from([8, 37]), fetch_width=st.sampled_from(FETCH_WIDTHS))
def test_matches_and_headers_follow_the_program(seed, tppes, chunk, density, fifo_depth, ready,
                                                weight_density, inputs, fetch_width):
    # Sparse, narrow layers give neurons with no or one weight chunk: the case where a full
    # header FIFO once deadlocked the unit.
    program, fiber = first_layer_case(seed, tppes, chunk, density, weight_density, inputs,
                                      fetch_width)
    got, want, headers, want_headers = run(program, 0, 0, fiber, fifo_depth, seed, ready)
    assert headers == want_headers
    assert got == want


@pytest.mark.parametrize("fetch_width", FETCH_WIDTHS)
def test_second_layer_after_go_reads_its_own_weight_bases(fetch_width):
    program, _ = first_layer_case(5, 2, 8, 0.5, fetch_width=fetch_width)
    fiber = SpikeFiber.encode([0b1010, 0, 0b1111, 1] * 8, 8)
    got, want, headers, want_headers = run(program, 1, 1, fiber, 2, 0, 0.5)
    assert (got, headers) == (want, want_headers)
    assert any(m.get("wbase", 0) > 0 for m in got)


@pytest.mark.parametrize("fetch_width", FETCH_WIDTHS[1:])
@pytest.mark.parametrize("seed, tppes, density, weight_density, inputs", [
    (1, 1, 0.2, 0.05, 37), (2, 3, 0.2, 0.4, 37), (3, 1, 1.0, 0.4, 37), (4, 3, 0.0, 0.4, 8),
    (5, 1, 0.5, 0.4, 64), (6, 3, 0.2, 0.05, 8)])
def test_wide_fetch_under_backpressure(fetch_width, seed, tppes, density, weight_density,
                                       inputs):
    """Groups with several matched chunks, neurons ending in an unmatched chunk (folded into
    the group's last match) and neurons without chunks, with a full header FIFO and a
    stalling join, on every TPPE."""
    program, fiber = first_layer_case(seed, tppes, 4, density, weight_density, inputs,
                                      fetch_width)
    for p in range(tppes):
        got, want, headers, want_headers = run(program, p, 0, fiber, 2, seed, 0.3)
        assert headers == want_headers
        assert got == want


@pytest.mark.parametrize("fetch_width", FETCH_WIDTHS)
def test_a_layer_without_neurons_on_this_tppe(fetch_width):
    # 8 TPPEs, 6 outputs: TPPE 7 walks layer 1 as a LAYER_END alone, and must stop at it
    # rather than run on into what follows.
    program, fiber = first_layer_case(3, 8, 4, 0.5, fetch_width=fetch_width)
    assert not program.layers[1].tppe_neurons[7]
    got, want, headers, want_headers = run(program, 7, 1, fiber, 2, 0, 0.5)
    assert (got, headers) == (want, want_headers) and want


@pytest.mark.parametrize("fetch_width", FETCH_WIDTHS)
@pytest.mark.parametrize("layer", [0, 1])
@pytest.mark.parametrize("channels, side, masked", [(1, 6, 0), (3, 4, 1)])
def test_calls_read_their_blocks_with_moved_chunks_and_slots(fetch_width, layer, channels,
                                                             side, masked):
    """A program with blocks (address generation): each CALL's block is walked with the
    CALL's chunk offset added to every chunk index (the spike masks read there) and its
    slot offset to every header's slot, then the walk goes on behind the CALL; under
    backpressure, in the first layer and after a ``go`` into the second. With
    ``border_calls`` (``masked``), conv2's border pixels call a block with the window
    positions outside the map masked (on a 4 x 4 map every pixel is at the border): the
    masks read there, random, must match nothing."""
    model, _ = cnn(3, channels=channels, side=side)
    program = compile_program(model, hardware_config.load(
        None, ["tppes=2", "chunk=16", f"fetch_width={fetch_width}", "call_groups=1",
               f"border_calls={masked}"]))
    assert "call_entry" in program.layouts
    assert ("rows" in program.layouts["call_entry"].offsets) == bool(masked)
    # random masks at every address of the mask memory, so a wrong offset reads others
    masks = 1 << Geometry.of(program).mask_addr_bits
    words = np.random.default_rng(layer).integers(0, 16, masks * 16) * (
        np.random.default_rng(fetch_width).random(masks * 16) < 0.3)
    fiber = SpikeFiber.encode(list(words), 16)
    for p in range(2):
        got, want, headers, want_headers = run(program, p, layer, fiber, 2, p, 0.4,
                                               deadline=3e-2)
        assert headers == want_headers
        assert got == want


@pytest.mark.parametrize("fetch_width", FETCH_WIDTHS)
def test_a_layer_run_in_step_holds_and_skips_silent_calls(fetch_width):
    """mapping=tiles (compiler/scheduler/lockstep.py): conv2 runs in step, every TPPE
    calling the shared block once per tile of 3 positions; 16 positions leave TPPEs 1 and
    2 a silent call, whose block is walked but reads nothing. ``hold`` (another TPPE
    stalls), at random, stops the walk without losing or repeating anything."""
    model, _ = cnn(6, channels=3, side=4)
    program = compile_program(model, hardware_config.load(
        None, ["tppes=3", "chunk=16", f"fetch_width={fetch_width}", "mapping=tiles"]))
    assert program.layers[1].in_step and Geometry.of(program).lockstep
    masks = 1 << Geometry.of(program).mask_addr_bits
    words = np.random.default_rng(fetch_width).integers(0, 16, masks * 16) * (
        np.random.default_rng(7).random(masks * 16) < 0.3)
    fiber = SpikeFiber.encode(list(words), 16)
    for p in range(3):
        got, want, headers, want_headers = run(program, p, 2, fiber, 2, p, 0.5,
                                               deadline=3e-2, hold_probability=0.3)
        assert headers == want_headers and got == want


@pytest.mark.parametrize("fetch_width, fifo_depth, message", [
    (1, 4, "WideFiberFetch: fetch_width 1 must be 2, 4 or 8 (1 is FiberFetch)"),
    (16, 4, "WideFiberFetch: fetch_width 16 must be 2, 4 or 8 (1 is FiberFetch)"),
    (4, 1, "WideFiberFetch: fifo_depth 1 must be at least 2")])
def test_wide_fetch_refuses_what_it_cannot_build(fetch_width, fifo_depth, message):
    program, _ = first_layer_case(1, 1, 4, 0.5, fetch_width=2)
    with pytest.raises(ValueError) as error:
        WideFiberFetch(Geometry.of(program), program.layouts, program.config.program_depth,
                       fetch_width, fifo_depth)
    assert str(error.value) == message
