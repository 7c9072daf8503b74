"""The LIF stage: T synaptic sums of one neuron in, its T spikes and final membrane out.

Implements docs/semantics.md section 4 exactly: the leak forms, ``>=`` / ``>``, reset by
subtraction / to zero / none, same-step and delayed order, and saturation of h once per
step. A program's layers may use different neuron modes; the unit is generated for
exactly the modes it is given (each a static circuit) and the ``mode`` input selects one
per layer, so unused forms cost nothing.
"""

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from compiler.ir import FIRE_MODES, ORDERS, RESET_MODES, Leak
from compiler.ir.neuron import signed_range


def _leak(v, leak):
    if leak.kind == "shift":
        return v - (v >> leak.shift)
    if leak.kind == "multiply":
        return (v * Const(leak.multiplier)) >> leak.frac_bits
    return v


def _saturate(x, bits):
    lo, hi = signed_range(bits)
    return Mux(x > hi, hi, Mux(x < lo, lo, x))


def lif_step(mode, v, fired, current, theta):
    """One step of one neuron in ``mode``, as combinational Values.

    ``fired`` is the previous step's spike (used by the delayed order). Returns
    (membrane after the step, spike).
    """
    leak = Leak.from_json(mode.leak, "LIF mode")
    leaked = _leak(v, leak)
    if mode.order == "same_step":
        h = _saturate(leaked + current, mode.v_bits)
    elif mode.reset == "subtract":
        h = _saturate(leaked + current - Mux(fired, theta, 0), mode.v_bits)
    elif mode.reset == "zero":
        h = _saturate(Mux(fired, 0, leaked) + current, mode.v_bits)
    else:
        h = _saturate(leaked + current, mode.v_bits)
    spike = (h >= theta) if mode.fire == "ge" else (h > theta)
    if mode.order == "delayed" or mode.reset == "none":
        return h, spike
    if mode.reset == "subtract":
        return h - Mux(spike, theta, 0), spike
    return Mux(spike, 0, h), spike


class LIFUnit(wiring.Component):
    """Evaluates one neuron at a time over T steps, ``steps_per_cycle`` steps per cycle.

    Ports: ``i`` takes a neuron's T sums and header (threshold, bias, slot); ``o`` gives
    its packed spike word, final membrane, slot and chunk_last; ``mode`` selects the
    neuron mode (held for a whole layer); ``idle`` is high when nothing is in flight.

    Latency: T / steps_per_cycle cycles from acceptance to a valid output.
    Throughput: one neuron per T / steps_per_cycle cycles: the next neuron is accepted in
    the cycle the current one finishes.
    Resources: steps_per_cycle chained step circuits per mode (adders, a saturator, a
    comparator), T sum registers and one output register.
    """

    def __init__(self, geometry, modes, steps_per_cycle=1):
        modes = list(modes)
        if not modes:
            raise ValueError("LIFUnit needs at least one neuron mode")
        for index, mode in enumerate(modes):
            where = f"LIFUnit mode {index}"
            Leak.from_json(mode.leak, where).check(where, mode.v_bits)
            if mode.fire not in FIRE_MODES or mode.reset not in RESET_MODES \
                    or mode.order not in ORDERS:
                raise ValueError(f"{where}: unknown fire/reset/order in {mode}")
            if not 2 <= mode.v_bits <= geometry.v_bits:
                raise ValueError(f"{where}: v_bits {mode.v_bits} exceeds the unit's "
                                 f"{geometry.v_bits}")
        if steps_per_cycle < 1 or geometry.timesteps % steps_per_cycle:
            raise ValueError(f"LIFUnit: steps_per_cycle {steps_per_cycle} must divide "
                             f"T = {geometry.timesteps}")
        self.geometry = geometry
        self.modes = modes
        self.steps_per_cycle = steps_per_cycle
        super().__init__({
            "mode": In(range(max(2, len(modes)))),
            "i": In(stream.Signature(geometry.lif_input)),
            "o": Out(stream.Signature(geometry.lif_output)),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        g, u = self.geometry, self.steps_per_cycle
        T = g.timesteps
        cycles = T // u

        sums = [Signal(signed(g.acc_bits + 1), name=f"current_{t}") for t in range(T)]
        theta = Signal(g.theta_bits)
        slot = Signal(g.slot_bits)
        chunk_last = Signal()
        v = Signal(signed(g.v_bits))
        fired = Signal()
        word = Signal(T)
        count = Signal(range(cycles))
        busy = Signal()

        # u chained steps, for every mode; the layer's mode picks the result.
        results = []
        for index, mode in enumerate(self.modes):
            step_v, step_fired, spikes = v, fired, []
            for j in range(u):
                step_v, step_fired = lif_step(mode, step_v, step_fired, sums[j], theta)
                spikes.append(step_fired)
            results.append((step_v, step_fired, spikes))
        next_v = Signal(signed(g.v_bits))
        next_fired = Signal()
        next_spikes = Signal(u)
        with m.Switch(self.mode):
            for index, (step_v, step_fired, spikes) in enumerate(results):
                with m.Case(index):
                    m.d.comb += [next_v.eq(step_v), next_fired.eq(step_fired)]
                    m.d.comb += [next_spikes[j].eq(s) for j, s in enumerate(spikes)]

        last_step = count == cycles - 1
        out_free = ~self.o.valid | self.o.ready
        finishing = busy & last_step & out_free
        with m.If(busy & (~last_step | out_free)):
            m.d.sync += [v.eq(next_v), fired.eq(next_fired), count.eq(count + 1),
                         word.eq(word >> u | next_spikes << (T - u))]
            m.d.sync += [sums[t].eq(sums[t + u]) for t in range(T - u)]
        with m.If(finishing):
            m.d.sync += [
                self.o.valid.eq(1),
                self.o.payload.word.eq(word >> u | next_spikes << (T - u)),
                self.o.payload.v.eq(next_v),
                self.o.payload.slot.eq(slot),
                self.o.payload.chunk_last.eq(chunk_last),
                busy.eq(0),
            ]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        m.d.comb += self.i.ready.eq(~busy | finishing)
        with m.If(self.i.valid & self.i.ready):
            header = self.i.payload.header
            m.d.sync += [sums[t].eq(self.i.payload.sums[t] + header.bias) for t in range(T)]
            m.d.sync += [theta.eq(header.theta), slot.eq(header.slot),
                         chunk_last.eq(header.chunk_last), v.eq(0), fired.eq(0), word.eq(0),
                         count.eq(0), busy.eq(1)]
        m.d.comb += self.idle.eq(~busy & ~self.o.valid)
        return m
