"""The protocol engine with the stand-in core, in the Amaranth simulator, at the byte level:
every command, every error status, the state rules, resynchronisation, the watchdog."""

import pytest
from amaranth import Elaboratable, Module, ResetInserter, Signal
from amaranth.sim import Simulator

from hwgen.errors import ConfigError
from hwgen.fpga import protocol
from hwgen.fpga.engine import ProtocolEngine
from hwgen.fpga.protocol import Command, Flag, Reply, Status

from fpga_standin import StandInCore, standin_results

T, K, V_BITS, LATENCY = 8, 5, 6, 4
DESIGN_ID = 0x1234ABCD
TIMEOUT = 200
SYNC = protocol.REQUEST_SYNC


class EngineAndCore(Elaboratable):
    def __init__(self):
        self.engine = ProtocolEngine(timesteps=T, inputs=K, outputs=K, v_bits=V_BITS,
                                     design_id=DESIGN_ID, timeout=TIMEOUT)
        self.core = StandInCore(T, K, V_BITS, LATENCY)
        self.stall_inputs = Signal()        # the core refuses input words while high

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = engine = self.engine
        m.submodules.core = core = ResetInserter(engine.core_rst)(self.core)
        port = engine.core
        m.d.comb += [core.inputs.payload.eq(port.inputs.payload),
                     core.inputs.valid.eq(port.inputs.valid & ~self.stall_inputs),
                     port.inputs.ready.eq(core.inputs.ready & ~self.stall_inputs),
                     core.start.eq(port.start), port.busy.eq(core.busy),
                     port.done.eq(core.done), port.cycles.eq(core.cycles),
                     port.results.payload.eq(core.results.payload),
                     port.results.valid.eq(core.results.valid),
                     core.results.ready.eq(port.results.ready)]
        return m


class Link:
    """Byte-level access to the engine's streams from a testbench."""

    def __init__(self, ctx, engine):
        self.ctx, self.engine = ctx, engine

    async def send(self, data):
        rx = self.engine.rx
        for byte in data:
            self.ctx.set(rx.payload, byte)
            self.ctx.set(rx.valid, 1)
            await self.ctx.tick().until(rx.ready)
        self.ctx.set(rx.valid, 0)

    async def receive(self, count, limit=2000):
        tx = self.engine.tx
        out = []
        self.ctx.set(tx.ready, 1)
        for _ in range(limit):
            _, _, valid, payload = await self.ctx.tick().sample(tx.valid, tx.payload)
            if valid:
                out.append(payload)
                if len(out) == count:
                    break
        self.ctx.set(tx.ready, 0)
        return bytes(out)

    async def request(self, command, payload=b"", length=0):
        await self.send([SYNC, command, *payload])
        header = await self.receive(2)
        assert header[0] == protocol.RESPONSE_SYNC, header
        body = await self.receive(length) if header[1] == Reply.OK and length else b""
        return Reply(header[1]), body

    async def status(self):
        reply, body = await self.request(Command.STATUS, length=protocol.STATUS_LENGTH)
        assert reply == Reply.OK
        return Status.unpack(body)

    async def silent(self, cycles):
        """Assert the engine sends nothing for ``cycles``."""
        assert await self.receive(1, limit=cycles) == b""

    async def infer(self, words):
        """LOAD ``words``, START, and after the stand-in core's latency the RESULTS."""
        assert (await self.request(Command.LOAD, input_bytes(words)))[0] == Reply.OK
        assert (await self.request(Command.START))[0] == Reply.OK
        await self.ctx.tick().repeat(20)
        reply, body = await self.request(Command.RESULTS,
                                         length=K * protocol.result_bytes(T, V_BITS))
        assert reply == Reply.OK
        return protocol.unpack_words(body, protocol.result_bytes(T, V_BITS))


def run(testbench):
    dut = EngineAndCore()
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    async def wrapped(ctx):
        await testbench(Link(ctx, dut.engine), ctx, dut)

    sim.add_testbench(wrapped)
    sim.run()


def input_bytes(words):
    return protocol.pack_words(words, protocol.input_bytes(T))


WORDS = [0b0000_0000, 0b1000_0001, 0b0001_0000, 0xFF, 0b0110_0110]


def test_status_reports_the_design():
    async def testbench(link, ctx, dut):
        status = await link.status()
        assert status == Status(protocol.VERSION, Flag(0), T, V_BITS, K, K, DESIGN_ID)

    run(testbench)


def test_a_whole_inference():
    async def testbench(link, ctx, dut):
        assert (await link.request(Command.RESET))[0] == Reply.OK
        assert (await link.request(Command.LOAD, input_bytes(WORDS)))[0] == Reply.OK
        assert (await link.status()).flags == Flag.LOADED
        assert (await link.request(Command.START))[0] == Reply.OK
        for _ in range(20):
            status = await link.status()
            if Flag.DONE in status.flags:
                break
        assert status.flags == Flag.DONE | Flag.PENDING
        reply, body = await link.request(Command.RESULTS,
                                         length=K * protocol.result_bytes(T, V_BITS))
        assert reply == Reply.OK
        results = protocol.unpack_words(body, protocol.result_bytes(T, V_BITS))
        assert results == standin_results(WORDS, T, V_BITS)
        reply, body = await link.request(Command.CYCLES, length=protocol.CYCLES_LENGTH)
        assert reply == Reply.OK and int.from_bytes(body, "little") == LATENCY + 2
        assert (await link.status()).flags == Flag.DONE
        # results are read once; a second inference works the same way
        assert (await link.request(Command.RESULTS))[0] == Reply.BAD_STATE
        words = [w ^ 0x5A for w in WORDS]
        assert await link.infer(words) == standin_results(words, T, V_BITS)

    run(testbench)


def test_commands_out_of_order_are_refused_and_change_nothing():
    async def testbench(link, ctx, dut):
        assert (await link.request(Command.START))[0] == Reply.BAD_STATE
        assert (await link.request(Command.RESULTS))[0] == Reply.BAD_STATE
        assert (await link.request(Command.LOAD, input_bytes(WORDS)))[0] == Reply.OK
        # a second LOAD before START: its payload is swallowed, then refused
        assert (await link.request(Command.LOAD, input_bytes([1] * K)))[0] == Reply.BAD_STATE
        assert (await link.request(Command.RESULTS))[0] == Reply.BAD_STATE
        assert (await link.request(Command.START))[0] == Reply.OK
        await ctx.tick().repeat(20)
        # the next LOAD must wait until the results are read
        assert (await link.request(Command.LOAD, input_bytes(WORDS)))[0] == Reply.BAD_STATE
        reply, body = await link.request(Command.RESULTS, length=K * 2)
        assert protocol.unpack_words(body, 2) == standin_results(WORDS, T, V_BITS)

    run(testbench)


def test_unknown_commands_and_noise_before_a_request():
    async def testbench(link, ctx, dut):
        assert (await link.request(0x00))[0] == Reply.UNKNOWN_COMMAND
        assert (await link.request(ord("?")))[0] == Reply.UNKNOWN_COMMAND
        await link.send([0x00, 0xFF, 0x13, ord("S"), ord("L")])     # no sync byte: ignored
        await link.silent(100)
        assert (await link.status()).inputs == K

    run(testbench)


def test_reset_abandons_an_inference():
    async def testbench(link, ctx, dut):
        assert (await link.request(Command.LOAD, input_bytes(WORDS)))[0] == Reply.OK
        assert (await link.request(Command.START))[0] == Reply.OK
        assert (await link.request(Command.RESET))[0] == Reply.OK
        assert (await link.status()).flags == Flag(0)
        assert (await link.request(Command.RESULTS))[0] == Reply.BAD_STATE
        assert (await link.request(Command.LOAD, input_bytes(WORDS)))[0] == Reply.OK

    run(testbench)


def test_a_stalled_request_times_out_and_resets_the_core():
    async def testbench(link, ctx, dut):
        await link.send([SYNC, Command.LOAD, 0x01, 0x02])     # 2 of 5 bytes, then silence
        header = await link.receive(2, limit=TIMEOUT + 50)
        assert header == bytes([protocol.RESPONSE_SYNC, Reply.TIMEOUT])
        status = await link.status()
        assert status.flags == Flag.ERROR                       # reported once ...
        assert (await link.status()).flags == Flag(0)           # ... then cleared
        # the core was reset: a full LOAD is accepted from scratch
        assert (await link.request(Command.LOAD, input_bytes(WORDS)))[0] == Reply.OK

    run(testbench)


def test_a_request_stalled_by_the_core_times_out_and_stops_offering_the_word():
    async def testbench(link, ctx, dut):
        ctx.set(dut.stall_inputs, 1)
        await link.send([SYNC, Command.LOAD, *input_bytes(WORDS[:1])])    # one word of K
        header = await link.receive(2, limit=TIMEOUT + 50)
        assert header == bytes([protocol.RESPONSE_SYNC, Reply.TIMEOUT])
        ctx.set(dut.stall_inputs, 0)
        # the aborted word is not offered again
        for _ in range(20):
            _, _, valid = await ctx.tick().sample(dut.engine.core.inputs.valid)
            assert not valid
        assert Flag.ERROR in (await link.status()).flags
        assert await link.infer(WORDS) == standin_results(WORDS, T, V_BITS)

    run(testbench)


def test_a_uart_error_in_a_request_aborts_it():
    async def testbench(link, ctx, dut):
        await link.send([SYNC, Command.LOAD, 0x01])
        ctx.set(dut.engine.rx_error, 1)
        await ctx.tick()
        ctx.set(dut.engine.rx_error, 0)
        assert await link.receive(2) == bytes([protocol.RESPONSE_SYNC, Reply.RX_ERROR])
        assert Flag.ERROR in (await link.status()).flags
        assert (await link.request(Command.LOAD, input_bytes(WORDS)))[0] == Reply.OK

    run(testbench)


def test_a_uart_error_between_requests_only_sets_the_flag():
    async def testbench(link, ctx, dut):
        ctx.set(dut.engine.rx_error, 1)
        await ctx.tick()
        ctx.set(dut.engine.rx_error, 0)
        await link.silent(50)
        assert (await link.status()).flags == Flag.ERROR

    run(testbench)


@pytest.mark.parametrize("name, value, message", [
    ("timesteps", 0, "timesteps must be an integer in [1, 64], got 0"),
    ("inputs", 70000, "inputs must be an integer in [1, 65535], got 70000"),
    ("outputs", 2.0, "outputs must be an integer in [1, 65535], got 2.0"),
    ("v_bits", 65, "v_bits must be an integer in [1, 64], got 65"),
    ("design_id", -1, "design_id must be an integer in [0, 4294967295], got -1"),
    ("timeout", 3, "timeout must be an integer in [16, 4294967295], got 3"),
])
def test_parameters_are_validated(name, value, message):
    parameters = dict(timesteps=4, inputs=3, outputs=2, v_bits=8, design_id=0, timeout=100)
    parameters[name] = value
    with pytest.raises(ConfigError) as error:
        ProtocolEngine(**parameters)
    assert str(error.value) == f"protocol engine: {message}"
