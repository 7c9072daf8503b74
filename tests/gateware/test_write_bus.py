"""WriteArbiter: every request goes out once, round robin, one per lane and cycle, each
lane carrying only its bank's writes; ``single`` lets one lane write at a time; the
loader's stream owns the bus while ``loading``."""

import dataclasses

import pytest

from hwgen.gateware.geometry import Geometry
from hwgen.gateware.write_bus import WriteArbiter
import amaranth_streams

GEOMETRY = Geometry(timesteps=4, chunk=8, chunk_bits=3, slot_bits=6, weight_addr_bits=4,
                    weight_bits=4, acc_bits=8, v_bits=8)


def _requester(dut, index, payloads):
    async def run(ctx):
        for payload in payloads:
            await amaranth_streams.put(ctx, dut.requests[index], payload)
    return run


def _listen(dut, seen, cycles=40, single=0):
    async def run(ctx):
        ctx.set(dut.single, single)
        for cycle in range(cycles):
            _, _, valid, payload = await ctx.tick().sample(dut.bus.valid, dut.bus.payload)
            for lane in range(dut.geometry.write_lanes):
                if valid >> lane & 1:
                    seen.append((cycle, lane, payload[lane].slot, payload[lane].mask_addr))
    return run


def test_round_robin_without_loss():
    dut = WriteArbiter(GEOMETRY, 3)
    seen = []

    def words(index, count):
        return [{"word_en": 1, "slot": index * 16 + j, "word": j} for j in range(count)]

    amaranth_streams.run(dut, _requester(dut, 0, words(0, 5)), _requester(dut, 1, words(1, 5)),
                         _requester(dut, 2, words(2, 2)), _listen(dut, seen))
    slots = [slot for _, _, slot, _ in seen]
    assert sorted(slots) == sorted([j for j in range(5)] + [16 + j for j in range(5)]
                                   + [32, 33])
    # while all three ask, grants rotate 0, 1, 2, 0, 1, 2
    assert [s // 16 for s in slots[:6]] == [0, 1, 2, 0, 1, 2]
    assert len({cycle for cycle, *_ in seen}) == len(seen)      # one a cycle


LANES = dataclasses.replace(GEOMETRY, write_lanes=2)


def _chunk_writes(index, chunks):
    # a word of each chunk: its bank is chunk mod 2 (mask_addr = region, chunk)
    return [{"word_en": 1, "slot": index * 16 + j, "mask_addr": chunk}
            for j, chunk in enumerate(chunks)]


def test_two_lanes_carry_two_writes_a_cycle_each_to_its_bank():
    dut = WriteArbiter(LANES, 2)
    seen = []
    amaranth_streams.run(dut, _requester(dut, 0, _chunk_writes(0, [0, 2, 4, 6])),
                         _requester(dut, 1, _chunk_writes(1, [1, 3, 5, 7])), _listen(dut, seen))
    assert sorted(slot for _, _, slot, _ in seen) == [0, 1, 2, 3, 16, 17, 18, 19]
    assert all(lane == chunk % 2 for _, lane, _, chunk in seen)
    # both lanes write in the same cycles
    cycles = [cycle for cycle, *_ in seen]
    assert len(set(cycles)) == len(cycles) // 2


def test_requests_of_one_bank_share_its_lane():
    dut = WriteArbiter(LANES, 2)
    seen = []
    amaranth_streams.run(dut, _requester(dut, 0, _chunk_writes(0, [0, 2])),
                         _requester(dut, 1, _chunk_writes(1, [4, 6])), _listen(dut, seen))
    assert sorted(slot for _, _, slot, _ in seen) == [0, 1, 16, 17]
    assert {lane for _, lane, _, _ in seen} == {0}
    assert len({cycle for cycle, *_ in seen}) == 4


def test_single_writes_one_a_cycle_on_any_lane():
    dut = WriteArbiter(LANES, 2)
    seen = []
    amaranth_streams.run(dut, _requester(dut, 0, _chunk_writes(0, [0, 2, 4])),
                         _requester(dut, 1, _chunk_writes(1, [1, 3, 5])),
                         _listen(dut, seen, single=1))
    assert sorted(slot for _, _, slot, _ in seen) == [0, 1, 2, 16, 17, 18]
    assert all(lane == chunk % 2 for _, lane, _, chunk in seen)
    assert len({cycle for cycle, *_ in seen}) == 6


@pytest.mark.parametrize("geometry", [GEOMETRY, LANES], ids=["one lane", "two lanes"])
def test_the_loader_owns_the_bus_while_loading(geometry):
    dut = WriteArbiter(geometry, 2)
    seen = []
    loads = _chunk_writes(3, [0, 1, 2, 3])

    async def loader(ctx):
        ctx.set(dut.loading, 1)
        for payload in loads:
            await amaranth_streams.put(ctx, dut.load, payload)
            assert ctx.get(dut.requests[0].ready) == 0      # the TPPEs wait meanwhile
        await ctx.tick().repeat(3)
        ctx.set(dut.loading, 0)

    async def loader_ready(ctx):
        # the loader's ready is ``loading`` itself, whoever else asks
        for _ in range(20):
            await ctx.tick()
            assert ctx.get(dut.load.ready) == ctx.get(dut.loading)

    amaranth_streams.run(dut, loader, loader_ready,
                         _requester(dut, 0, _chunk_writes(0, [0, 1])),
                         _requester(dut, 1, _chunk_writes(1, [2])), _listen(dut, seen))
    slots = [slot for _, _, slot, _ in seen]
    assert slots[:4] == [48, 49, 50, 51]                     # the loads first, in order
    assert sorted(slots[4:]) == [0, 1, 16]
    if geometry.write_lanes > 1:
        assert all(lane == chunk % 2 for _, lane, _, chunk in seen)


def test_loading_resets_the_round_robin():
    dut = WriteArbiter(GEOMETRY, 2)
    seen = []

    async def bench(ctx):
        await amaranth_streams.put(ctx, dut.requests[0], {"word_en": 1, "slot": 0})
        ctx.set(dut.loading, 1)
        await ctx.tick()
        ctx.set(dut.loading, 0)
        # both ask: TPPE 0 first again, as in every inference, not TPPE 1 after it
        ctx.set(dut.requests[0].valid, 1)
        ctx.set(dut.requests[0].payload, {"word_en": 1, "slot": 1})
        ctx.set(dut.requests[1].valid, 1)
        ctx.set(dut.requests[1].payload, {"word_en": 1, "slot": 17})
        _, _, first, second = await ctx.tick().sample(dut.requests[0].ready,
                                                      dut.requests[1].ready)
        assert (first, second) == (1, 0)

    amaranth_streams.run(dut, bench)


def test_count_is_validated(refuses):
    refuses(lambda: WriteArbiter(GEOMETRY, 0), ValueError,
            "WriteArbiter: count 0 must be at least 1")
