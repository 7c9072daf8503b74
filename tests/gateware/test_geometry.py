"""Geometry.source_region and spike_word_addr: where a fiber chunk is read, in the Amaranth
simulator against the sequencer's region numbering (docs/architecture.md, "Residual
connections and branches")."""

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hwgen.gateware.geometry import Geometry


def geometry(**kwargs):
    return Geometry(timesteps=4, chunk=8, chunk_bits=3, slot_bits=8, weight_addr_bits=6,
                    weight_bits=4, acc_bits=8, v_bits=8, **kwargs)


def regions_read(g, cases):
    """source_region for each (fiber chunk, input region, state region) in ``cases``."""
    chunk = Signal(g.fiber_chunk_bits)
    region, state_region = Signal(range(g.regions)), Signal(range(g.regions))
    read = Signal(range(g.regions))
    m = Module()
    m.d.comb += read.eq(g.source_region(chunk, region, state_region))
    results = []

    async def bench(ctx):
        for c, r, s in cases:
            ctx.set(chunk, c)
            ctx.set(region, r)
            ctx.set(state_region, s)
            results.append(ctx.get(read))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    return results


@pytest.mark.parametrize("lanes", [4, 1])
def test_a_chunk_names_the_kept_pair_it_is_read_from(lanes):
    g = geometry(lanes=lanes, state_pairs=5, residual=True)
    assert g.source_bits == 3                  # pairs 1..5 and 0, the input region
    assert g.input_regions_end == (2 if lanes == 4 else 2 + 4)   # + an input region a chunk
    base = g.input_regions_end
    cases, expected = [], []
    for step in (0, 1):                        # the sequencer's state_region: pair 1's
        for source in range(6):
            for index in (0, 5):
                cases.append(((source << g.chunk_bits) | index, 1, base + step))
                expected.append(1 if source == 0 else base + 2 * (source - 1) + step)
    assert regions_read(g, cases) == expected


def test_a_recurrent_layers_chunk_reads_its_own_pair_by_one_bit():
    g = geometry(lanes=1, state_pairs=2)
    assert g.recurrent and g.source_bits == 1
    base = g.input_regions_end
    assert regions_read(g, [(0b0_010, 0, base + 3), (0b1_010, 0, base + 3)]) == [0, base + 3]


def test_without_pairs_every_chunk_reads_the_input_region():
    g = geometry()
    assert g.source_bits == 0 and g.fiber_chunk_bits == g.chunk_bits
    assert regions_read(g, [(5, 1, 0), (0, 0, 1)]) == [1, 0]
