"""Stream transactions for Amaranth simulator testbenches (``amaranth.lib.stream``).

Used by the unit tests of the generated components; each call is one transfer on a
valid/ready stream, honouring backpressure.
"""


async def put(ctx, stream, payload):
    """Offer ``payload`` on ``stream`` until the component accepts it."""
    ctx.set(stream.valid, 1)
    ctx.set(stream.payload, payload)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def get(ctx, stream):
    """Accept the next payload from ``stream``."""
    ctx.set(stream.ready, 1)
    (payload,) = await ctx.tick().sample(stream.payload).until(stream.valid)
    ctx.set(stream.ready, 0)
    return payload


def run(dut, *testbenches, vcd=None, deadline=None):
    """Simulate ``dut`` with a 1 MHz clock and the given async testbenches."""
    from amaranth.sim import Simulator
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for testbench in testbenches:
        sim.add_testbench(testbench)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run_until(deadline) if deadline else sim.run()
    elif deadline:
        sim.run_until(deadline)
    else:
        sim.run()
