"""WriteArbiter: every request goes out once, one per cycle, round robin."""

from hwgen.gateware.geometry import Geometry
from hwgen.gateware.write_bus import WriteArbiter
import amaranth_streams

GEOMETRY = Geometry(timesteps=4, chunk=8, chunk_bits=3, slot_bits=6, weight_addr_bits=4,
                    weight_bits=4, acc_bits=8, v_bits=8)


def test_round_robin_without_loss():
    dut = WriteArbiter(GEOMETRY, 3)
    seen = []

    def requester(index, count):
        async def run(ctx):
            for j in range(count):
                await amaranth_streams.put(ctx, dut.requests[index],
                                           {"word_en": 1, "slot": index * 16 + j, "word": j})
        return run

    async def bus(ctx):
        for _ in range(40):
            _, _, valid, payload = await ctx.tick().sample(dut.bus.valid, dut.bus.payload)
            if valid:
                seen.append(payload.slot)

    amaranth_streams.run(dut, requester(0, 5), requester(1, 5), requester(2, 2), bus)
    assert sorted(seen) == sorted([j for j in range(5)] + [16 + j for j in range(5)]
                                  + [32, 33])
    # while all three ask, grants rotate 0, 1, 2, 0, 1, 2
    assert [s // 16 for s in seen[:6]] == [0, 1, 2, 0, 1, 2]


def test_count_is_validated(refuses):
    refuses(lambda: WriteArbiter(GEOMETRY, 0), ValueError,
            "WriteArbiter: count 0 must be at least 1")
