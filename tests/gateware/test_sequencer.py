"""The layer sequencer alone in the Amaranth simulator: the order of its passes and the
regions it gives each, for recurrent layers in time chunks (sub-passes)."""

import numpy as np
import pytest

from hwgen.compiler import hardware_config
from hwgen.compiler.ir import LIF, Dense, Input, Model, Readout
from hwgen.compiler.scheduler.program import compile_program
from hwgen.gateware.geometry import Geometry
from hwgen.gateware.sequencer import LayerSequencer
import amaranth_streams


def recurrent_program(T, time_chunk, pattern=(True, False)):
    model = Model("rnn", T)
    model.add(Input("input", (3,)))
    previous, fan_in = "input", 3
    for index, recurrent in enumerate(pattern, 1):
        weight = np.ones((2, fan_in + (2 if recurrent else 0)), int)
        model.add(Dense(f"fc{index}", weight, weight_bits=2, acc_bits=6,
                        recurrent=recurrent), previous)
        model.add(LIF(f"lif{index}", np.full(2, 2), v_bits=6), f"fc{index}")
        previous, fan_in = f"lif{index}", 2
    model.add(Readout("readout"), previous)
    return compile_program(model.validate(), hardware_config.load(
        None, ["chunk=4", f"time_chunk={time_chunk}"]))


def passes(program):
    """(layer, chunk, first_sub, last_sub, in_region, out_region, state_region) of every
    pass of one inference, as the sequencer drives them while the pass runs."""
    g = Geometry.of(program)
    dut = LayerSequencer(program.descriptors, program.layouts["layer"], g.layer_bits,
                         time_chunks=g.time_chunks, pass_bits=g.pass_bits, lanes=g.lanes,
                         state_pairs=g.state_pairs)
    seen = []

    async def bench(ctx):
        ctx.set(dut.ready, 1)
        ctx.set(dut.all_idle, 1)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        while not ctx.get(dut.done):
            go = ctx.get(dut.go)
            await ctx.tick()
            if go:      # the layer's registers settle with go: read them in RUN
                seen.append(tuple(ctx.get(signal) for signal in (
                    dut.layer, dut.chunk, dut.first_sub, dut.last_sub, dut.in_region,
                    dut.out_region, dut.state_region)))

    amaranth_streams.run(dut, bench)
    return seen


@pytest.mark.parametrize("T, lanes", [(4, 2), (6, 3), (4, 1)])
def test_a_recurrent_layer_runs_t_c_sub_passes_per_chunk(T, lanes):
    """Sub-pass n of the inference (chunk x T_c + sub) writes region pair[n mod 2] and reads
    pair[(n - 1) mod 2], so the first sub-pass of a chunk reads the last chunk's result;
    the layer after reads the last sub-pass's region; input regions 2 + chunk."""
    program = recurrent_program(T, lanes)
    chunks = T // lanes
    pair = 2 + chunks if chunks > 1 else 2          # after the input regions
    expected = []
    for c in range(chunks):
        for j in range(lanes):
            n = c * lanes + j
            expected.append((0, c, int(j == 0), int(j == lanes - 1),
                             2 + c if chunks > 1 else 0, pair + n % 2, pair + (n - 1) % 2))
        final = (c * lanes + lanes - 1) % 2
        expected.append((1, c, 1, 1, pair + final, 1 if chunks > 1 else 0,
                         pair + 1))                 # state_region: unused there
    got = passes(program)
    assert [p[:6] for p in got] == [e[:6] for e in expected]
    assert [p[6] for p in got if p[0] == 0] == [e[6] for e in expected if e[0] == 0]


def test_stacked_recurrent_layers_read_each_others_last_sub_pass():
    program = recurrent_program(4, 2, pattern=(True, True, False))
    got = passes(program)
    # layer 1 (pair 2: regions 6, 7) reads layer 0's last sub-pass (pair 1: region 5)
    assert [(p[0], p[4], p[5]) for p in got if p[1] == 0] == [
        (0, 2, 4), (0, 2, 5), (1, 5, 6), (1, 5, 7), (2, 7, 0)]
