"""An 8N1 UART (one start bit, 8 data bits LSB first, one stop bit, no parity) with stream
interfaces, in Amaranth.

The bit period is ``divisor`` clock cycles (:func:`baud_divisor` computes it from a clock
frequency and a baud rate). Both directions use one down-counter per bit; neither
oversamples, so the receiver samples each bit once, at its middle.

Resources: a few tens of LUTs and FFs each (a divisor counter, a 4-bit bit counter, a
shift register). Throughput: one byte per 10 bit periods in each direction.
"""

from amaranth import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen.errors import ConfigError

MIN_DIVISOR = 4
# The two ends of a link may differ by about 4 % in total before the last data bit is
# sampled outside its bit period; allow half of that to the divisor's rounding here.
MAX_BAUD_ERROR = 0.02


def baud_divisor(clock_hz, baud):
    """Clock cycles per bit for ``baud`` at ``clock_hz``; :class:`ConfigError` if the rate
    cannot be made within 2 % or gives fewer than 4 cycles per bit."""
    if not isinstance(baud, int) or baud <= 0:
        raise ConfigError(f"baud rate must be a positive integer, got {baud!r}")
    if clock_hz <= 0:
        raise ConfigError(f"clock frequency must be positive, got {clock_hz!r}")
    divisor = round(clock_hz / baud)
    if divisor < MIN_DIVISOR:
        raise ConfigError(f"baud rate {baud} is too high for a {clock_hz / 1e6:g} MHz clock: "
                          f"the UART needs at least {MIN_DIVISOR} clock cycles per bit "
                          f"(at most {int(clock_hz // MIN_DIVISOR)} baud)")
    error = abs(clock_hz / divisor - baud) / baud
    if error > MAX_BAUD_ERROR:
        raise ConfigError(f"baud rate {baud} cannot be made from a {clock_hz / 1e6:g} MHz "
                          f"clock: the nearest is {clock_hz / divisor:.0f} baud "
                          f"({error:.1%} off, more than {MAX_BAUD_ERROR:.0%})")
    return divisor


def _check_divisor(divisor):
    if not isinstance(divisor, int) or divisor < MIN_DIVISOR:
        raise ConfigError(f"UART divisor must be an integer of at least {MIN_DIVISOR} clock "
                          f"cycles per bit, got {divisor!r}")
    return divisor


class _UARTComponent(wiring.Component):
    """A UART direction at ``divisor`` clock cycles per bit (checked here)."""

    def __init__(self, divisor):
        try:
            self.divisor = _check_divisor(divisor)
        except ConfigError:
            self._MustUse__silence = True     # refused, so never elaborated: no warning
            raise
        super().__init__()


class UARTReceiver(_UARTComponent):
    """Receives 8N1 bytes on ``rx`` and offers them on the ``bytes`` stream.

    ``rx`` is synchronised with two flip-flops. A falling edge starts a byte; the start bit
    is checked again at its middle, so a low glitch shorter than half a bit is ignored.
    Data bits are sampled at their middles. A low stop bit is a framing error: the byte is
    dropped, ``frame_error`` pulses for one cycle (registered) and the receiver waits for the line to go
    high (idle) again, so a break condition yields one error, not a stream of bytes. A byte
    that completes while the previous one is still waiting on ``bytes`` is dropped and
    ``overrun`` pulses (``bytes`` holds one byte; the consumer has 10 bit periods to take it).

    Latency: a byte appears on ``bytes`` half a bit period after the middle of its stop bit
    plus 3 cycles.
    """

    rx: In(1, init=1)
    bytes: Out(stream.Signature(8))
    frame_error: Out(1)
    overrun: Out(1)

    def elaborate(self, platform):
        m = Module()
        divisor = self.divisor

        rx_meta = Signal(init=1)
        rx = Signal(init=1)
        m.d.sync += [rx_meta.eq(self.rx), rx.eq(rx_meta)]

        timer = Signal(range(divisor))
        bit = Signal(range(8))
        shift = Signal(8)
        data = Signal(8)
        valid = Signal()
        m.d.comb += [self.bytes.payload.eq(data), self.bytes.valid.eq(valid)]
        with m.If(self.bytes.ready):
            m.d.sync += valid.eq(0)
        m.d.sync += [self.frame_error.eq(0), self.overrun.eq(0)]

        with m.If(timer != 0):
            m.d.sync += timer.eq(timer - 1)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += timer.eq(divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer == 0):
                    with m.If(rx):
                        m.next = "IDLE"                 # a glitch, not a start bit
                    with m.Else():
                        m.d.sync += [timer.eq(divisor - 1), bit.eq(0)]
                        m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer == 0):
                    m.d.sync += [shift.eq(Cat(shift[1:], rx)), timer.eq(divisor - 1),
                                 bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer == 0):
                    with m.If(rx):
                        with m.If(valid & ~self.bytes.ready):
                            m.d.sync += self.overrun.eq(1)
                        with m.Else():
                            m.d.sync += [data.eq(shift), valid.eq(1)]
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += self.frame_error.eq(1)
                        m.next = "BREAK"
            with m.State("BREAK"):
                with m.If(rx):
                    m.next = "IDLE"
        return m


class UARTTransmitter(_UARTComponent):
    """Sends the bytes of the ``bytes`` stream on ``tx`` as 8N1.

    ``bytes.ready`` (a register) is high while the transmitter is idle; a byte is taken in
    one cycle and its start bit begins on the next. ``tx`` is registered and idles high.
    A byte takes ``10 * divisor + 1`` cycles (the stop bit is one cycle longer than a bit).
    """

    bytes: In(stream.Signature(8))
    tx: Out(1, init=1)

    def elaborate(self, platform):
        m = Module()
        divisor = self.divisor
        timer = Signal(range(divisor))
        remaining = Signal(range(10))
        shift = Signal(9)
        busy = Signal()
        m.d.comb += self.bytes.ready.eq(~busy)        # a register: off the FSM's paths

        with m.If(~busy):
            with m.If(self.bytes.valid):
                m.d.sync += [self.tx.eq(0), shift.eq(Cat(self.bytes.payload, 1)),
                             remaining.eq(9), timer.eq(divisor - 1), busy.eq(1)]
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Elif(remaining != 0):
            m.d.sync += [self.tx.eq(shift[0]), shift.eq(shift >> 1),
                         remaining.eq(remaining - 1), timer.eq(divisor - 1)]
        with m.Else():
            m.d.sync += busy.eq(0)
        return m
