"""The UART, in the Amaranth simulator: loopback, waveform, framing errors, glitches,
overrun, tolerance of a baud-rate mismatch, and parameter validation."""

import pytest
from amaranth import Elaboratable, Module
from amaranth.sim import Simulator

from hwgen.errors import ConfigError
from hwgen.fpga.uart import UARTReceiver, UARTTransmitter, baud_divisor


def simulate(dut, *testbenches, processes=()):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for testbench in testbenches:
        sim.add_testbench(testbench)
    for process in processes:
        sim.add_process(process)
    sim.run()


async def drive_bits(ctx, rx, bits, cycles_per_bit):
    for bit in bits:
        ctx.set(rx, bit)
        await ctx.tick().repeat(cycles_per_bit)


def frame(byte, stop=1):
    return [0] + [(byte >> i) & 1 for i in range(8)] + [stop]


class Loopback(Elaboratable):
    def __init__(self, divisor):
        self.tx = UARTTransmitter(divisor)
        self.rx = UARTReceiver(divisor)

    def elaborate(self, platform):
        m = Module()
        m.submodules.tx, m.submodules.rx = self.tx, self.rx
        m.d.comb += self.rx.rx.eq(self.tx.tx)
        return m


@pytest.mark.parametrize("divisor", [4, 5, 16])
def test_loopback_carries_every_byte_value_class(divisor):
    data = [0x00, 0xFF, 0x55, 0xAA, 0x01, 0x80, 0x5A, 0xA5, 0x3C]
    dut = Loopback(divisor)
    received = []

    async def sender(ctx):
        for byte in data:
            ctx.set(dut.tx.bytes.payload, byte)
            ctx.set(dut.tx.bytes.valid, 1)
            await ctx.tick().until(dut.tx.bytes.ready)
        ctx.set(dut.tx.bytes.valid, 0)

    async def receiver(ctx):
        ctx.set(dut.rx.bytes.ready, 1)
        while len(received) < len(data):
            payload, = await ctx.tick().sample(dut.rx.bytes.payload).until(dut.rx.bytes.valid)
            received.append(payload)
            assert not ctx.get(dut.rx.frame_error) and not ctx.get(dut.rx.overrun)

    simulate(dut, sender, receiver)
    assert received == data


def test_transmitter_waveform_is_8n1_lsb_first():
    divisor = 6
    dut = UARTTransmitter(divisor)
    samples = []

    async def testbench(ctx):
        assert ctx.get(dut.tx) == 1 and ctx.get(dut.bytes.ready) == 1
        ctx.set(dut.bytes.payload, 0b1011_0010)
        ctx.set(dut.bytes.valid, 1)
        await ctx.tick()
        ctx.set(dut.bytes.valid, 0)
        assert ctx.get(dut.bytes.ready) == 0
        for _ in range(10 * divisor + 1):
            samples.append(ctx.get(dut.tx))
            await ctx.tick()
        assert ctx.get(dut.bytes.ready) == 1 and ctx.get(dut.tx) == 1

    simulate(dut, testbench)
    bits = [samples[i * divisor + divisor // 2] for i in range(10)]
    assert bits == frame(0b1011_0010)
    # each bit is held for exactly `divisor` cycles
    assert samples[:divisor] == [0] * divisor


@pytest.mark.parametrize("skew", [0.97, 1.0, 1.03])
def test_receiver_tolerates_a_few_percent_of_baud_mismatch(skew):
    divisor = 16
    dut = UARTReceiver(divisor)
    got = []

    async def testbench(ctx):
        ctx.set(dut.bytes.ready, 1)
        await ctx.tick().repeat(5)
        for byte in (0x5A, 0xC3):
            # the sender's bit period differs from the receiver's by `skew`
            for bit in frame(byte):
                ctx.set(dut.rx, bit)
                await ctx.tick().repeat(round(divisor * skew))
        await ctx.tick().repeat(3 * divisor)

    async def monitor(ctx):
        async for _, _, valid, payload in ctx.tick().sample(dut.bytes.valid,
                                                                dut.bytes.payload):
            if valid:
                got.append(payload)

    simulate(dut, testbench, processes=[monitor])
    assert got == [0x5A, 0xC3]


def test_framing_error_drops_the_byte_and_recovers():
    divisor = 8
    dut = UARTReceiver(divisor)
    events = []

    async def testbench(ctx):
        ctx.set(dut.bytes.ready, 1)
        await ctx.tick().repeat(4)
        await drive_bits(ctx, dut.rx, frame(0x42, stop=0), divisor)
        await drive_bits(ctx, dut.rx, [0] * 3, divisor)     # the line stays low (break)
        await drive_bits(ctx, dut.rx, [1] * 2, divisor)
        await drive_bits(ctx, dut.rx, frame(0x24), divisor)
        await drive_bits(ctx, dut.rx, [1] * 3, divisor)

    async def monitor(ctx):
        async for _, _, valid, payload, error in ctx.tick().sample(
                dut.bytes.valid, dut.bytes.payload, dut.frame_error):
            if error:
                events.append("frame_error")
            if valid:
                events.append(payload)
                # one cycle later the byte is consumed (ready is held high)

    simulate(dut, testbench, processes=[monitor])
    assert events == ["frame_error", 0x24]


def test_a_glitch_shorter_than_half_a_bit_is_not_a_start_bit():
    divisor = 16
    dut = UARTReceiver(divisor)
    seen = []

    async def testbench(ctx):
        ctx.set(dut.bytes.ready, 1)
        await ctx.tick().repeat(4)
        ctx.set(dut.rx, 0)
        await ctx.tick().repeat(divisor // 2 - 3)
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(12 * divisor)
        await drive_bits(ctx, dut.rx, frame(0x99) + [1], divisor)

    async def monitor(ctx):
        async for _, _, valid, payload, error in ctx.tick().sample(
                dut.bytes.valid, dut.bytes.payload, dut.frame_error):
            if valid or error:
                seen.append("error" if error else payload)

    simulate(dut, testbench, processes=[monitor])
    assert seen == [0x99]


def test_overrun_keeps_the_first_byte_and_reports_the_second():
    divisor = 4
    dut = UARTReceiver(divisor)
    overruns = []

    async def testbench(ctx):
        await ctx.tick().repeat(2)
        await drive_bits(ctx, dut.rx, frame(0x11) + frame(0x22) + [1, 1], divisor)
        assert ctx.get(dut.bytes.valid) and ctx.get(dut.bytes.payload) == 0x11
        ctx.set(dut.bytes.ready, 1)
        await ctx.tick()
        assert not ctx.get(dut.bytes.valid)

    async def monitor(ctx):
        async for _, _, overrun in ctx.tick().sample(dut.overrun):
            if overrun:
                overruns.append(1)

    simulate(dut, testbench, processes=[monitor])
    assert overruns == [1]


def test_baud_divisor():
    assert baud_divisor(12e6, 115200) == 104
    assert baud_divisor(48e6, 115200) == 417
    assert baud_divisor(100e6, 12_500_000) == 8


@pytest.mark.parametrize("clock, baud, message", [
    (12e6, 0, "baud rate must be a positive integer, got 0"),
    (12e6, 115200.0, "baud rate must be a positive integer, got 115200.0"),
    (12e6, 4_000_000, "baud rate 4000000 is too high for a 12 MHz clock: the UART needs at "
                      "least 4 clock cycles per bit (at most 3000000 baud)"),
    (10e6, 2_300_000, "baud rate 2300000 cannot be made from a 10 MHz clock: the nearest is "
                      "2500000 baud (8.7% off, more than 2%)"),
    (0, 9600, "clock frequency must be positive, got 0"),
])
def test_baud_divisor_refuses_what_cannot_work(clock, baud, message):
    with pytest.raises(ConfigError) as error:
        baud_divisor(clock, baud)
    assert str(error.value) == message


@pytest.mark.parametrize("component", [UARTReceiver, UARTTransmitter])
@pytest.mark.parametrize("divisor", [3, 0, 8.0, None])
def test_components_validate_the_divisor(component, divisor):
    with pytest.raises(ConfigError, match=f"UART divisor must be an integer of at least 4 clock "
                                          f"cycles per bit, got {divisor!r}"):
        component(divisor)
