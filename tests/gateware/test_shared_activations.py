"""SharedActivations: region 1 of the spike buffers once, in P banks; writes of the bus to
that region land in it (a word into its lane of the chunk's row, a mask whole), and P
ports read P chunks of different banks in one cycle, each its chunk's mask and words one
cycle later, held while not enabled."""

from dataclasses import replace

import pytest

from hwgen.gateware.geometry import Geometry
from hwgen.gateware.shared_activations import SharedActivations
import amaranth_streams

# 8 chunks of W = 4 per region, T_c = 2: region 1's chunks are mask addresses 8..15
GEOMETRY = Geometry(timesteps=2, chunk=4, chunk_bits=3, slot_bits=6, weight_addr_bits=4,
                    weight_bits=4, acc_bits=8, v_bits=8, lockstep=True)


def write(ctx, dut, *, region, chunk, offset=0, word=None, mask=None):
    """Drive one write request of the bus (a word, a mask, or both) for one cycle."""
    g = dut.geometry
    request = dut.write
    ctx.set(dut.write_valid, 1)
    ctx.set(request.word_en, word is not None)
    ctx.set(request.mask_en, mask is not None)
    ctx.set(request.word_addr, (region << (g.chunk_bits + g.offset_bits))
            | (chunk << g.offset_bits) | offset)
    ctx.set(request.mask_addr, (region << g.chunk_bits) | chunk)
    ctx.set(request.word, word or 0)
    ctx.set(request.mask, mask or 0)


def words_of(chunk):
    """The words written into ``chunk`` in these tests: lane j holds (chunk + j) mod 4."""
    return [(chunk + j) % 4 for j in range(4)]


@pytest.mark.parametrize("banks, shift", [(2, 0), (4, 0), (2, 1)])
def test_each_port_reads_its_chunk_of_region_1_in_the_same_cycle(banks, shift):
    dut = SharedActivations(replace(GEOMETRY, shared_banks=banks, shared_shift=shift))
    rows = {}

    async def bench(ctx):
        for chunk in range(8):
            for lane, word in enumerate(words_of(chunk)):
                write(ctx, dut, region=1, chunk=chunk, offset=lane, word=word)
                await ctx.tick()
            write(ctx, dut, region=1, chunk=chunk, mask=0b1001 ^ chunk)
            await ctx.tick()
            # region 0 is the TPPEs' own: none of its writes lands here
            write(ctx, dut, region=0, chunk=chunk, offset=1, word=3, mask=0b1111)
            await ctx.tick()
        ctx.set(dut.write_valid, 0)
        # in each cycle the ports read one row of every bank, port p bank p + k
        bank_bits = (banks - 1).bit_length()
        rows_of = [(low, high) for high in range(8 >> (shift + bank_bits))
                   for low in range(1 << shift)]
        for k, (low, high) in enumerate(rows_of):
            chunks = [low | (p + k) % banks << shift | high << (shift + bank_bits)
                      for p in range(banks)]
            for port, chunk in zip(dut.read, chunks):
                ctx.set(port.en, 1)
                ctx.set(port.addr, chunk)
            await ctx.tick()
            for port, chunk in zip(dut.read, chunks):
                rows[chunk] = (ctx.get(port.data.mask),
                               [ctx.get(port.data.words[j]) for j in range(4)])

    amaranth_streams.run(dut, bench)
    assert sorted(rows) == list(range(8))
    for chunk, (mask, words) in rows.items():
        assert mask == 0b1001 ^ chunk
        assert words == words_of(chunk)


def test_a_bank_holds_its_row_until_a_port_reads_it_again():
    dut = SharedActivations(replace(GEOMETRY, shared_banks=2))
    held = []

    async def bench(ctx):
        for chunk in (2, 4):
            write(ctx, dut, region=1, chunk=chunk, mask=chunk)
            await ctx.tick()
        ctx.set(dut.write_valid, 0)
        ctx.set(dut.read[0].en, 1)
        ctx.set(dut.read[0].addr, 2)
        await ctx.tick()
        # port 0 stops reading; port 1 reads another row of the same bank
        ctx.set(dut.read[0].en, 0)
        ctx.set(dut.read[1].en, 1)
        ctx.set(dut.read[1].addr, 4)
        await ctx.tick()
        held.append((ctx.get(dut.read[0].data.mask), ctx.get(dut.read[1].data.mask)))
        ctx.set(dut.read[1].en, 0)
        await ctx.tick()
        held.append((ctx.get(dut.read[0].data.mask), ctx.get(dut.read[1].data.mask)))

    amaranth_streams.run(dut, bench)
    # Port 0's data follows its bank, which port 1 read next: a TPPE that does not read
    # in a cycle either stalls (then no TPPE reads: every bank holds) or needs no data
    # (its entry cannot match), so that is all the fetch needs.
    assert held == [(4, 4), (4, 4)]


def test_parameters_are_validated(refuses):
    refuses(lambda: SharedActivations(GEOMETRY), ValueError,
            r"SharedActivations: the geometry has no shared banks \(shared_banks 0\)")
    refuses(lambda: replace(GEOMETRY, shared_banks=3), ValueError,
            r"Geometry: shared_banks 3 \(shift 0\) needs two regions, layers in step, one "
            r"write lane, a power of two >= 2 banks and 3 chunk bits for the bank")
    refuses(lambda: replace(GEOMETRY, shared_banks=2, shared_shift=3), ValueError,
            r"Geometry: shared_banks 2 \(shift 3\) needs")
    refuses(lambda: replace(GEOMETRY, shared_banks=2, lockstep=False), ValueError,
            r"Geometry: shared_banks 2 \(shift 0\) needs")
