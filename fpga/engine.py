"""The protocol engine: gateware that serves the UART protocol of :mod:`hwgen.fpga.protocol` and
drives the ports of ``hwgen_core`` (docs/architecture.md, "Core interface").

It sits between the UART (byte streams in and out) and the core. It parses requests,
assembles input words from bytes and streams them into the core, pulses ``start``, and
streams results, the cycle count and the status back as bytes. It enforces the order of an
inference (LOAD, START, RESULTS) so the core never sees a request it cannot serve, and it
never blocks on the link: a request that stalls for ``timeout`` cycles, or a UART error in
the middle of a request, aborts it, resets the core and answers with an error status.

Latency: one or two cycles per byte on top of the UART's byte time; the link, not the
engine, limits throughput. Resources: an FSM, a shift register as wide as the widest
response word (the 14-byte status), word and byte counters, a timeout counter.
"""

from amaranth import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen.errors import ConfigError
from hwgen.gateware.core_interface import CoreSignature

from . import protocol
from .protocol import Command, Reply


class ProtocolEngine(wiring.Component):
    """Serves the UART protocol for a core of ``timesteps`` x ``inputs`` -> ``outputs``.

    Ports: ``rx`` (bytes received), ``rx_error`` (a pulse from the UART receiver),
    ``tx`` (bytes to send), ``core`` (the core's ports, :class:`~hwgen.gateware.core_interface.CoreSignature`
    flipped), ``core_rst`` (the core's soft reset), ``error`` (the sticky error flag,
    for a LED).

    Parameters: the core's dimensions (T, K inputs, N outputs, v_bits), the 32-bit
    ``design_id`` reported by STATUS, and ``timeout``, in clock cycles, after which a
    stalled request is aborted.
    """

    def __init__(self, *, timesteps, inputs, outputs, v_bits, design_id, timeout):
        for name, value, low, high in [("timesteps", timesteps, 1, 64),
                                       ("inputs", inputs, 1, 65535),
                                       ("outputs", outputs, 1, 65535),
                                       ("v_bits", v_bits, 1, 64),
                                       ("design_id", design_id, 0, 2**32 - 1),
                                       ("timeout", timeout, 16, 2**32 - 1)]:
            if not isinstance(value, int) or not low <= value <= high:
                self._MustUse__silence = True     # refused, so never elaborated
                raise ConfigError(f"protocol engine: {name} must be an integer in "
                                  f"[{low}, {high}], got {value!r}")
        self.timesteps = timesteps
        self.inputs = inputs
        self.outputs = outputs
        self.v_bits = v_bits
        self.design_id = design_id
        self.timeout = timeout
        super().__init__({
            "rx": In(stream.Signature(8)),
            "rx_error": In(1),
            "tx": Out(stream.Signature(8)),
            # The core's ports, driven from this side; its reset is the engine's soft reset.
            "core": In(CoreSignature(timesteps, v_bits)),
            "core_rst": Out(1),
            "error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        T, K, N = self.timesteps, self.inputs, self.outputs
        in_bytes = protocol.input_bytes(T)
        res_bytes = protocol.result_bytes(T, self.v_bits)
        core = self.core

        loaded = Signal()
        pending = Signal()
        error = self.error
        code = Signal(8)
        with_payload = Signal()      # after the status byte: send `shift` (count bytes)
        with_results = Signal()      # after the status byte: stream N results

        longest = max(protocol.STATUS_LENGTH, protocol.CYCLES_LENGTH, res_bytes)
        shift = Signal(8 * longest)
        count = Signal(range(longest + 1))
        word = Signal(8 * in_bytes)
        byte_index = Signal(range(in_bytes + 1))
        words = Signal(range(max(K, N) + 1))
        # Comparisons of ``words``, kept as registers and updated with it: the transitions
        # below then test a flip-flop, not a 7-bit compare (on the iCEBreaker, ``words``
        # through its compare into the result shift register was a critical path).
        last_input = Signal(init=K == 1)        # words == K - 1
        all_results = Signal(init=N == 0)       # words == N

        def words_from_zero():
            m.d.sync += [words.eq(0), last_input.eq(K == 1), all_results.eq(N == 0)]

        def next_word():
            m.d.sync += [words.eq(words + 1),
                         last_input.eq(words == K - 2 if K >= 2 else 0),
                         all_results.eq(words == N - 1)]
        discard = Signal(range(K * in_bytes + 1))

        start = Signal()
        soft_reset = Signal()
        # High exactly while in LOAD_PUSH, as a register of its own: the core's input
        # valid then leaves a flip-flop, not the FSM's state decode (on the iCEBreaker the
        # path from the state register through the decode into the core's input loader
        # was the board's critical path, placed far apart).
        pushing = Signal()
        m.d.sync += [start.eq(0), soft_reset.eq(0)]
        m.d.comb += [core.start.eq(start), self.core_rst.eq(soft_reset),
                     core.inputs.valid.eq(pushing), core.inputs.payload.eq(word[:T])]

        flags = Cat(loaded, core.busy, core.done, pending, error, Const(0, 3))
        status = Cat(Const(protocol.MAGIC[0], 8), Const(protocol.MAGIC[1], 8),
                     Const(protocol.VERSION, 8), flags, Const(T, 8), Const(self.v_bits, 8),
                     Const(K, 16), Const(N, 16), Const(self.design_id, 32))
        assert len(status) == 8 * protocol.STATUS_LENGTH

        rx_take = self.rx.valid & self.rx.ready
        tx_take = self.tx.valid & self.tx.ready
        progress = (rx_take | tx_take | (core.inputs.valid & core.inputs.ready)
                    | (core.results.valid & core.results.ready))
        stalled = Signal(range(self.timeout + 1))
        expired = Signal()        # registered `stalled` reached `timeout`
        fsm_idle = Signal()

        def reply(status_code, payload=False, results=False):
            m.d.sync += [code.eq(status_code), with_payload.eq(payload),
                         with_results.eq(results)]
            m.next = "SEND_SYNC"

        # Watchdog and link errors: a request that stalls for `timeout` cycles, or a UART
        # error while a request is being received, is aborted: the core is reset and the
        # host gets an error status. The decision is registered (one cycle late, off the
        # FSM's critical path) and checked last in every state so that it takes priority.
        receiving = Signal()
        abort_request = Signal()
        abort_code = Signal(8)
        m.d.sync += abort_request.eq(0)
        with m.If(self.rx_error & receiving):
            m.d.sync += [abort_request.eq(1), abort_code.eq(Reply.RX_ERROR)]
        with m.Elif(expired):
            m.d.sync += [abort_request.eq(1), abort_code.eq(Reply.TIMEOUT)]

        def guard():
            with m.If(abort_request):
                m.d.sync += [soft_reset.eq(1), loaded.eq(0), pending.eq(0), error.eq(1),
                             code.eq(abort_code), with_payload.eq(0), with_results.eq(0),
                             pushing.eq(0)]
                m.next = "SEND_SYNC"

        with m.If(self.rx_error):
            m.d.sync += error.eq(1)
        with m.If(fsm_idle | progress | expired | abort_request):
            m.d.sync += [stalled.eq(0), expired.eq(0)]
        with m.Else():
            m.d.sync += [stalled.eq(stalled + 1), expired.eq(stalled == self.timeout - 1)]

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [self.rx.ready.eq(1), fsm_idle.eq(1)]
                with m.If(self.rx.valid & (self.rx.payload == protocol.REQUEST_SYNC)):
                    m.next = "COMMAND"

            with m.State("COMMAND"):
                m.d.comb += receiving.eq(1)
                m.d.comb += self.rx.ready.eq(1)
                with m.If(self.rx.valid):
                    with m.Switch(self.rx.payload):
                        with m.Case(Command.STATUS):
                            m.d.sync += [shift.eq(status), count.eq(protocol.STATUS_LENGTH),
                                         error.eq(0)]
                            reply(Reply.OK, payload=True)
                        with m.Case(Command.LOAD):
                            with m.If(~loaded & ~pending & ~core.busy):
                                m.d.sync += byte_index.eq(0)
                                words_from_zero()
                                m.next = "LOAD_BYTE"
                            with m.Else():
                                m.d.sync += discard.eq(0)
                                m.next = "DISCARD"
                        with m.Case(Command.START):
                            with m.If(loaded & ~core.busy):
                                m.d.sync += [start.eq(1), loaded.eq(0), pending.eq(1)]
                                reply(Reply.OK)
                            with m.Else():
                                reply(Reply.BAD_STATE)
                        with m.Case(Command.RESULTS):
                            with m.If(pending & core.done & ~core.busy):
                                words_from_zero()
                                reply(Reply.OK, results=True)
                            with m.Else():
                                reply(Reply.BAD_STATE)
                        with m.Case(Command.CYCLES):
                            m.d.sync += [shift.eq(core.cycles),
                                         count.eq(protocol.CYCLES_LENGTH)]
                            reply(Reply.OK, payload=True)
                        with m.Case(Command.RESET):
                            m.d.sync += [soft_reset.eq(1), loaded.eq(0), pending.eq(0),
                                         error.eq(0)]
                            reply(Reply.OK)
                        with m.Default():
                            reply(Reply.UNKNOWN_COMMAND)
                guard()

            with m.State("LOAD_BYTE"):
                m.d.comb += receiving.eq(1)
                m.d.comb += self.rx.ready.eq(1)
                with m.If(self.rx.valid):
                    m.d.sync += [word.eq(Cat(word[8:], self.rx.payload)),
                                 byte_index.eq(byte_index + 1)]
                    with m.If(byte_index == in_bytes - 1):
                        m.next = "LOAD_PUSH"
                        m.d.sync += pushing.eq(1)
                guard()

            with m.State("LOAD_PUSH"):
                m.d.comb += receiving.eq(1)
                with m.If(core.inputs.ready):
                    m.d.sync += [byte_index.eq(0), pushing.eq(0)]
                    next_word()
                    with m.If(last_input):
                        m.d.sync += loaded.eq(1)
                        reply(Reply.OK)
                    with m.Else():
                        m.next = "LOAD_BYTE"
                guard()

            with m.State("DISCARD"):
                m.d.comb += receiving.eq(1)
                # A LOAD that is not allowed now: swallow its payload, then refuse it.
                m.d.comb += self.rx.ready.eq(1)
                with m.If(self.rx.valid):
                    m.d.sync += discard.eq(discard + 1)
                    with m.If(discard == K * in_bytes - 1):
                        reply(Reply.BAD_STATE)
                guard()

            with m.State("SEND_SYNC"):
                m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(protocol.RESPONSE_SYNC)]
                with m.If(self.tx.ready):
                    m.next = "SEND_CODE"
                guard()

            with m.State("SEND_CODE"):
                m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(code)]
                with m.If(self.tx.ready):
                    with m.If(with_payload):
                        m.next = "SEND_SHIFT"
                    with m.Elif(with_results):
                        m.next = "FETCH_RESULT"
                    with m.Else():
                        m.next = "IDLE"
                guard()

            with m.State("SEND_SHIFT"):
                m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(shift[:8])]
                with m.If(self.tx.ready):
                    m.d.sync += [shift.eq(shift >> 8), count.eq(count - 1)]
                    with m.If(count == 1):
                        with m.If(with_results):
                            m.next = "FETCH_RESULT"
                        with m.Else():
                            m.next = "IDLE"
                guard()

            with m.State("FETCH_RESULT"):
                with m.If(all_results):
                    m.d.sync += [pending.eq(0), with_results.eq(0)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.comb += core.results.ready.eq(1)
                    with m.If(core.results.valid):
                        m.d.sync += [shift.eq(core.results.payload), count.eq(res_bytes)]
                        next_word()
                        m.next = "SEND_SHIFT"
                guard()

        return m
