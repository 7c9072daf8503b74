"""Tops around ``hwgen_core``: the board top, its simulation variant, and the
out-of-context harness for bare devices.

All three instantiate the compiled core by name (``Instance("hwgen_core", ...)``) and take
its Verilog from the build directory unchanged, so the synthesised and simulated core is
the exact Verilog a user gets.

:class:`BoardLogic` is what the board top and the simulation top share: the UART, the
protocol engine, the core and the status LEDs, all in one clock domain. :class:`BoardTop`
adds what is specific to a board: the oscillator and PLL, the power-on and button reset,
and the pins. :class:`SimBoardTop` exposes ``rx``, ``tx`` and ``leds`` as ports, with the
clock and reset as inputs, for Verilator.
"""

import math

from amaranth import (Cat, ClockDomain, ClockSignal, Const, Elaboratable, Instance, Module,
                      ResetSignal, Signal)
from amaranth.lib import io, wiring
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.lib.wiring import In, Out

from hwgen.errors import ConfigError
from hwgen.gateware.core_interface import instance_ports

from . import pll
from .engine import ProtocolEngine
from .uart import UARTReceiver, UARTTransmitter, baud_divisor

DEFAULT_TIMEOUT_S = 0.25
# Reset held after configuration and PLL lock: iCE40 block RAMs read as zero for ~3 us
# after configuration, so keep the core in reset for 5x that.
POWER_ON_RESET_S = 15e-6


def core_instance(spec, engine, rst):
    """``Instance`` of the compiled core, wired to the engine's ``core`` port."""
    return Instance(spec.module, **instance_ports(engine.core, clk=ClockSignal(), rst=rst))


class BoardLogic(wiring.Component):
    """UART + protocol engine + core + status LEDs, in the ``sync`` domain.

    ``divisor`` is the UART's clock cycles per bit, ``timeout`` the engine's request
    timeout in cycles, ``heartbeat_bit`` the bit of a free-running counter shown on the
    heartbeat LED.
    """

    rx: In(1, init=1)
    tx: Out(1, init=1)
    leds: Out(4)

    def __init__(self, spec, *, divisor, timeout, heartbeat_bit=23):
        self.spec = spec
        self.divisor = divisor
        self.timeout = timeout
        self.heartbeat_bit = heartbeat_bit
        # Validate now, with the user's numbers, not at elaboration.
        self._receiver = UARTReceiver(divisor)
        self._transmitter = UARTTransmitter(divisor)
        try:
            # The engine moves the core's words: T_c bits, every neuron of every time chunk.
            self._engine = ProtocolEngine(timesteps=spec.time_chunk, inputs=spec.input_words,
                                          outputs=spec.result_words, v_bits=spec.v_bits,
                                          design_id=spec.design_id, timeout=timeout)
        except ConfigError:
            for part in (self._receiver, self._transmitter):
                part._MustUse__silence = True
            raise
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = receiver = self._receiver
        m.submodules.uart_tx = transmitter = self._transmitter
        m.submodules.engine = engine = self._engine
        m.d.comb += [receiver.rx.eq(self.rx), self.tx.eq(transmitter.tx),
                     engine.rx_error.eq(receiver.frame_error | receiver.overrun)]
        wiring.connect(m, receiver.bytes, engine.rx)
        wiring.connect(m, engine.tx, transmitter.bytes)
        m.submodules.core = core_instance(self.spec, engine, ResetSignal() | engine.core_rst)

        heartbeat = Signal(self.heartbeat_bit + 1)
        m.d.sync += heartbeat.eq(heartbeat + 1)
        m.d.comb += self.leds.eq(Cat(heartbeat[-1], engine.core.busy, engine.core.done,
                                     engine.error))
        return m


class SimBoardTop(wiring.Component):
    """The board top for simulation: no PLL or vendor primitives, ``clk`` and ``rst`` are
    ports. ``divisor`` and ``timeout`` are in clock cycles."""

    rx: In(1, init=1)
    tx: Out(1, init=1)
    leds: Out(4)

    def __init__(self, spec, *, divisor, timeout):
        self._logic = BoardLogic(spec, divisor=divisor, timeout=timeout, heartbeat_bit=7)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.logic = logic = self._logic
        m.d.comb += [logic.rx.eq(self.rx), self.tx.eq(logic.tx), self.leds.eq(logic.leds)]
        return m


class BoardTop(Elaboratable):
    """The top of a board's bitstream: clock (oscillator -> PLL), reset, UART, LEDs, core.

    The ``sync`` domain runs at the PLL's output, as close to ``frequency_hz`` as the PLL
    allows (within 1 %; :attr:`frequency_hz` is the exact value), or straight from the
    oscillator when ``frequency_hz`` is the oscillator's frequency. Its reset is held while
    the PLL is unlocked, for 15 us after lock (iCE40 block RAMs need 3 us after
    configuration), and while the board's reset button is pressed.
    """

    def __init__(self, spec, target, *, frequency_hz, baud, timeout_s=DEFAULT_TIMEOUT_S):
        try:
            if not target.is_board:
                raise ConfigError(f"{target.name} is not a board")
            self.spec = spec
            self.target = target
            if abs(frequency_hz - target.oscillator_hz) <= 1e-3 * target.oscillator_hz:
                self.pll = None                   # the oscillator itself: no PLL needed
                self.frequency_hz = target.oscillator_hz
            else:
                if target.device.family == "ice40":
                    self.pll = pll.ice40_pll(target.oscillator_hz, frequency_hz)
                else:
                    self.pll = pll.ecp5_pll(target.oscillator_hz, frequency_hz)
                self.frequency_hz = self.pll.f_out
            self.baud = baud
            self.divisor = baud_divisor(self.frequency_hz, baud)
            self.logic = BoardLogic(spec, divisor=self.divisor,
                                    timeout=int(timeout_s * self.frequency_hz),
                                    heartbeat_bit=max(1, int(math.log2(self.frequency_hz)) - 1))
        except ConfigError:
            self._MustUse__silence = True      # refused: never elaborated, no warning
            raise

    def elaborate(self, platform):
        m = Module()
        clk = Signal(name="clk_pll")
        lock = Signal(name="pll_lock")
        oscillator = platform.request(platform.default_clk, dir="-")
        if self.pll is None:
            m.submodules.osc_buf = osc = io.Buffer("i", oscillator)
            m.d.comb += [clk.eq(osc.i), lock.eq(1)]
        elif self.target.device.family == "ice40":
            m.submodules.pll = self.pll.instance(oscillator.io, clk, lock)
        else:
            m.submodules.osc_buf = osc = io.Buffer("i", oscillator)
            m.submodules.pll = self.pll.instance(osc.i, clk, lock)
        if self.pll is not None:        # (the oscillator's pin carries its own constraint)
            platform.add_clock_constraint(clk, self.frequency_hz)

        m.domains.sync = ClockDomain("sync")
        m.domains.por = ClockDomain("por", reset_less=True, local=True)
        m.d.comb += [ClockSignal("sync").eq(clk), ClockSignal("por").eq(clk)]
        delay = int(POWER_ON_RESET_S * self.frequency_hz)
        timer = Signal(range(delay + 1))
        ready = Signal()
        with m.If(~lock):
            m.d.por += [timer.eq(0), ready.eq(0)]
        with m.Elif(timer == delay):
            m.d.por += ready.eq(1)
        with m.Else():
            m.d.por += timer.eq(timer + 1)
        button = Const(0)
        if self.target.reset_button:
            button = _pin(m, platform, "i", *self.target.reset_button).i
        m.submodules.reset_sync = ResetSynchronizer(~ready | button, domain="sync")

        m.submodules.logic = logic = self.logic
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx_buf = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx_buf = tx = io.Buffer("o", uart.tx)
        m.d.comb += [logic.rx.eq(rx.i), tx.o.eq(logic.tx)]
        for index, (name, number) in enumerate(self.target.leds):
            m.d.comb += _pin(m, platform, "o", name, number).o.eq(logic.leds[index])
        return m


def _pin(m, platform, direction, name, number):
    """An I/O buffer on the resource (name, number), added to ``m``."""
    buffer = io.Buffer(direction, platform.request(name, number, dir="-"))
    m.submodules[f"{name}_{number}_buf"] = buffer
    return buffer


class CoreHarness(Elaboratable):
    """The out-of-context top for a bare device: the core alone, with registered I/O.

    The core's inputs come from a shift register fed by one pin; its outputs are
    registered, XOR-reduced and registered again onto one pin. Every core port stays
    live (nothing can be optimised away) and every path to and from the core starts and
    ends at a flip-flop, so the reported Fmax is the core's own. The harness costs
    :attr:`flip_flops` FFs and a few tens of LUTs, which the report notes.
    """

    def __init__(self, spec):
        self.spec = spec
        self.input_bits = spec.time_chunk + 3                    # payload, valid, start, ready
        self.output_bits = 1 + 1 + 1 + 32 + spec.result_width + 1
        self.flip_flops = self.input_bits + self.output_bits + 1

    def elaborate(self, platform):
        m = Module()
        spec = self.spec
        serial_in = _pin(m, platform, "i", "harness_in", 0).i
        serial_out = _pin(m, platform, "o", "harness_out", 0).o
        shift = Signal(self.input_bits)
        m.d.sync += shift.eq(Cat(serial_in, shift[:-1]))
        T = spec.time_chunk
        inputs_ready, busy, done = Signal(), Signal(), Signal()
        cycles = Signal(32)
        results, results_valid = Signal(spec.result_width), Signal()
        m.submodules.core = Instance(
            spec.module, i_clk=ClockSignal(), i_rst=ResetSignal(allow_reset_less=True),
            i_inputs__payload=shift[:T], i_inputs__valid=shift[T], o_inputs__ready=inputs_ready,
            i_start=shift[T + 1], o_busy=busy, o_done=done, o_cycles=cycles,
            o_results__payload=results, o_results__valid=results_valid,
            i_results__ready=shift[T + 2])
        captured = Signal(self.output_bits)
        reduced = Signal()
        m.d.sync += [captured.eq(Cat(inputs_ready, busy, done, cycles, results, results_valid)),
                     reduced.eq(captured.xor())]
        m.d.comb += serial_out.eq(reduced)
        return m
