"""The LIF stage: T synaptic sums of one neuron in, its T spikes and final membrane out.

Implements docs/semantics.md section 4 exactly: the leak forms, ``>=`` / ``>``, reset by
subtraction / to zero / none, the same-step, delayed and snnTorch same-step orders, and
saturation of h once per step; and section 4b: the synaptic current of current-based
neurons, filtered over t in the same pass. A program's layers may use different neuron
modes; the unit is generated for exactly the modes it is given (each a static circuit) and
the ``mode`` input selects one per layer, so unused forms cost nothing.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen.compiler.ir import FIRE_MODES, ORDERS, RESET_MODES, SYNAPSE_ROUNDINGS, Leak
from hwgen.compiler.ir.neuron import signed_range


def csd_digits(constant):
    """Canonical signed digits of a non-negative integer: [(shift, +1 or -1)], fewest terms."""
    digits, shift = [], 0
    while constant:
        if constant & 1:
            digit = 2 - (constant & 3)          # +1 if ...01, -1 if ...11
            digits.append((shift, digit))
            constant -= digit
        constant >>= 1
        shift += 1
    return digits


def mode_leak(mode, where):
    """The leak form of LIF mode ``mode``; a per-neuron leak's multipliers are not part of
    the mode (each neuron's comes with its header), so it has none here."""
    data = mode.leak
    if isinstance(data, dict) and data.get("kind") == "per_neuron" and "multipliers" not in data:
        data = {**data, "multipliers": []}
    return Leak.from_json(data, where)


def leak_terms(v, leak, multiplier=None):
    """L(v) as (terms, frac_bits): L(v) = floor(sum(terms) / 2**frac_bits).

    Each term is (value, sign). ``shift``: v - (v >> k) = v + (-(v >> k)), exact as is.
    ``multiply``: (a * v) >> F with a in canonical signed digits, so the sum holds only
    shifted copies of v and no multiplier. ``per_neuron``: (a * v) >> F with the neuron's
    a (``multiplier``, 0..2**F unsigned) from its header: one product term, a made signed
    by a zero top bit so that a * v is a signed product of full width. Returned as terms,
    not a sum, so the caller can add the synaptic current inside the same carry-save tree
    (floor((t + 2**F * I) / 2**F) = floor(t / 2**F) + I, since 2**F * I is a multiple of
    2**F).
    """
    if leak.kind == "shift":
        return [(v, 1), (v >> leak.shift, -1)], 0
    if leak.kind == "multiply":
        return [(v << shift, digit) for shift, digit in csd_digits(leak.multiplier)], \
            leak.frac_bits
    if leak.kind == "per_neuron":
        a = Cat(multiplier[:leak.frac_bits + 1], Const(0, 1)).as_signed()
        return [(v * a, 1)], leak.frac_bits
    return [(v, 1)], 0


def _extend(value, width):
    """``value`` as exactly ``width`` bits of two's complement (sign- or zero-extended)."""
    value = Value.cast(value)
    if len(value) >= width:
        return value[:width]
    fill = value[-1] if value.shape().signed else Const(0, 1)
    return Cat(value, fill.replicate(width - len(value)))


def named(m, value, name):
    """``value`` as a signal of its own shape. Amaranth builds an expression anew wherever
    it is used (the Verilog gets a copy per use, and a carry-save tree uses each vector
    three times per level), so every value used more than once is made a signal first."""
    if isinstance(value, Signal):
        return value
    value = Value.cast(value)
    signal = Signal(value.shape(), name=name)
    m.d.comb += signal.eq(value)
    return signal


def sum_width(terms):
    """The bits of two's complement that hold any sum of (value, +1 or -1) ``terms``."""
    lo = hi = 0
    for value, sign in terms:
        value = Value.cast(value)
        if isinstance(value, Const):
            low = high = value.value
        else:
            shape = value.shape()
            low = -(1 << (shape.width - 1)) if shape.signed else 0
            high = (1 << (shape.width - 1)) - 1 if shape.signed else (1 << shape.width) - 1
        if sign < 0:
            low, high = -high, -low
        lo, hi = lo + low, hi + high
    # w bits hold -2**(w-1) .. 2**(w-1) - 1
    return max((-lo - 1).bit_length() if lo < 0 else 0, hi.bit_length() if hi > 0 else 0) + 1


def carry_save_sum(m, terms, name):
    """The sum of (value, +1 or -1) terms, as a signed value, with 3:2 compressors and a
    single carry-propagate adder: one carry chain however many terms (the LIF loop is the
    membrane's critical path). A negated term is inverted bitwise and its +1 gathered, with
    the constant terms, into one constant; a constant of 1 takes the free lowest bit of the
    first compressor's carry vector, so it costs no level of the tree (each level is a LUT
    in the loop). The width is exactly that of the sum's range (from the terms' shapes, a
    constant's value), so the carry chain is no longer than it must be: the tree and the
    adder work modulo 2**width, which is exact for a sum inside that range. Each vector is a
    signal named ``name``_*, built once however often the tree reads it."""
    width = sum_width(terms)
    vectors, constant = [], 0
    for k, (value, sign) in enumerate(terms):
        value = Value.cast(value)
        if isinstance(value, Const):
            constant += sign * value.value
            continue
        vector = _extend(named(m, value, f"{name}_term{k}"), width)
        if sign < 0:
            vector, constant = ~vector, constant + 1
        vectors.append(named(m, vector, f"{name}_vector{k}"))
    constant %= 1 << width
    absorb = constant == 1 and len(vectors) >= 3
    if constant and not absorb:
        vectors.append(Const(constant, width))
    level = 0
    while len(vectors) > 2:
        a, b, c = vectors[:3]
        carry = (((a & b) | (a & c) | (b & c)) << 1)[:width]
        if absorb and level == 0:
            carry = carry | 1
        vectors = vectors[3:] + [
            named(m, (a ^ b ^ c)[:width], f"{name}_sum{level}"),
            named(m, carry, f"{name}_carry{level}")]
        level += 1
    if not vectors:
        return Const(constant, width).as_signed()
    total = vectors[0] if len(vectors) == 1 else (vectors[0] + vectors[1])[:width]
    return total.as_signed()


def saturate(m, value, bits, name):
    """``value`` clamped to ``bits`` signed bits, as a named signal: an overflow test on
    value's top bits, no comparator."""
    lo, hi = signed_range(bits)
    top = value[bits - 1:]                 # all equal <=> value fits ``bits`` signed bits
    over = ~value[-1] & top.any()
    under = value[-1] & ~top.all()
    result = Signal(signed(bits), name=name)
    m.d.comb += result.eq(Mux(over, hi, Mux(under, lo, value)))
    return result


def synapse_step(m, mode, i, current, name):
    """The synaptic current of one step, i = sat(L_syn(i) + I) (docs/semantics.md 4b): one
    carry-save sum (the synaptic leak's terms and I) and an overflow test, ahead of the
    membrane's sum in the same step."""
    synapse = Leak.from_json(mode.synapse, "LIF mode synapse")
    terms, frac = leak_terms(i, synapse)
    y = Signal(signed(max(len(i), len(Value.cast(current))) + 3), name=f"{name}_y")
    m.d.comb += y.eq(carry_save_sum(m, terms + [(current << frac, 1)], f"{name}_syn") >> frac)
    return saturate(m, y, mode.i_bits, f"{name}_i")


def lif_step(m, mode, v, fired, current, minus_theta, minus_two_theta, theta, name, i=None,
             multiplier=None, chosen=None, chosen_less_one=False):
    """One step of one neuron in ``mode``, built in ``m`` from named signals.

    ``current`` is I[t]; ``minus_theta`` / ``minus_two_theta`` are I[t] - theta and
    I[t] - 2 theta, computed a cycle earlier so that no subtraction of theta sits in the
    membrane loop: the unsaturated sum x = L(v) + I and x - theta are two carry-save sums
    side by side, each with one carry chain (the leak is folded in), the spike is the sign
    of x - theta (equal to comparing the saturated h, see below), and saturation is an
    overflow test on x's top bits. ``fired`` is the step's one bit of state: the previous
    step's spike (delayed order), or whether the stored membrane fires (r, in the
    snnTorch same-step order with a subtract reset). ``multiplier`` is the neuron's leak
    multiplier (a per-neuron leak only). ``chosen``: in the delayed order with a subtract
    reset, (I or I - theta, I - theta or I - 2 theta) already selected by ``fired``, from
    registers (:class:`LIFUnit` selects them as the previous step ends), so that no
    multiplexer heads the membrane loop; None: selected here. ``chosen_less_one``: the
    second of the pair is 1 less (I - theta - 1 or I - 2 theta - 1), the -1 of ``gt``'s
    x - theta - 1 taken out of the loop's sum. Returns (membrane after the step, spike,
    next state bit) as signals.

    Why the sign of x - theta decides exactly: 0 <= theta <= vmax, so if x < vmin both h
    and x are below theta, and if x > vmax, h = vmax >= theta; only ``gt`` with
    theta = vmax differs (h = vmax never exceeds it). Likewise fire(h - theta) is the sign
    of x - 2 theta, except that when x > vmax it is fire(vmax - theta). Terms that depend
    only on theta are computed from its register, beside the loop.

    A current-based mode (``mode.synapse``) computes this step's synaptic current from ``i``
    (:func:`synapse_step`). With the ``separate`` rounding it replaces I: I - theta cannot
    be prepared ahead since i depends on the loop, so i and -theta (or -2 theta) enter the
    membrane's carry-save sums as separate terms, still one carry chain each, after the
    synapse's. With the ``joint`` rounding the synaptic leak's terms of the previous i join
    the membrane's leak terms over a common fraction (one floor over both) beside I and the
    prepared I - theta, and the next i is computed in parallel. Returns the next i too
    (``i`` unchanged for a voltage-based mode).
    """
    B = mode.v_bits
    lo, hi = signed_range(B)
    leak = mode_leak(mode, "LIF mode")
    terms, frac = leak_terms(v, leak, multiplier)
    current_based = mode.synapse is not None
    joint = current_based and mode.synapse_rounding == "joint"
    if mode.order == "delayed" and mode.reset == "zero" and not current_based:
        # the previous step's spike zeroes the leaked membrane: gate every leak term
        terms = [(Mux(fired, 0, value), sign) for value, sign in terms]
    i_next = synapse_step(m, mode, i, current, name) if current_based else i
    if joint:
        # floor(L°(v) + L°_syn(i)): both leaks' terms over the common fraction 2**(F+G)
        synaptic, g = leak_terms(i, Leak.from_json(mode.synapse, "LIF mode synapse"))
        terms = [(value << g, sign) for value, sign in terms] + \
            [(value << frac, sign) for value, sign in synaptic]
        frac += g
    if current_based and not joint:
        cur, cur_minus = [(i_next, 1)], [(i_next, 1), (theta, -1)]
        cur_minus_two = [(i_next, 1), (theta << 1, -1)]
        width = max(len(v), mode.i_bits, len(theta) + 2)
    else:
        cur, cur_minus, cur_minus_two = [(current, 1)], [(minus_theta, 1)], [(minus_two_theta, 1)]
    base, base_minus = cur, cur_minus
    if mode.order == "delayed" and mode.reset == "subtract":
        if current_based and not joint:
            base = [(i_next, 1), (Mux(fired, theta, 0), -1)]
            base_minus = [(i_next, 1), (Mux(fired, theta << 1, theta), -1)]
        elif chosen is not None:
            base, base_minus = [(chosen[0], 1)], [(chosen[1], 1)]
        else:
            base = [(Mux(fired, minus_theta, current), 1)]
            base_minus = [(Mux(fired, minus_two_theta, minus_theta), 1)]
    snntorch_subtract = mode.order == "snntorch_same_step" and mode.reset == "subtract"
    if not current_based or joint:
        widest = minus_two_theta if snntorch_subtract else base_minus[0][0]
        # floor(beta*v + alpha*i) needs one bit more than the wider of v and i
        width = max(len(v), len(Value.cast(widest)), len(i) + 1 if joint else 0)
    wide = signed(width + 3)
    x = Signal(wide, name=f"{name}_x")

    def shifted(values):
        return [(value << frac, sign) for value, sign in values]

    # the leak terms are read by two or three sums: built once
    terms = [(named(m, value, f"{name}_leak{k}"), sign) for k, (value, sign) in enumerate(terms)]
    x_sum = carry_save_sum(m, terms + shifted(base), f"{name}_x") >> frac
    # ``gt`` fires on x - theta > 0, i.e. on the sign of x - theta - 1: a sum of its own
    # (its -1 a constant of the tree), so that no test of d = x - theta != 0 (an OR over
    # all of d's bits, after its carry chain) sits in the loop. d itself is then built
    # only where the reset subtracts theta from the membrane after the step.
    gt = mode.fire == "gt"
    subtracts_after = mode.order != "delayed" and mode.reset == "subtract"
    d = d_sum = None
    if not gt or subtracts_after:
        d = Signal(wide, name=f"{name}_x_minus_theta")
        d_sum = carry_save_sum(m, terms + shifted(base_minus), f"{name}_d") >> frac
    one = [(Const(1 << frac), -1)]
    less_one = [] if chosen is not None and chosen_less_one else one
    d1_sum = carry_save_sum(m, terms + shifted(base_minus) + less_one, f"{name}_d1") >> frac \
        if gt else None
    zeroed = current_based and mode.order == "delayed" and mode.reset == "zero"
    if zeroed:
        # snnTorch's Synaptic: the previous step's spike zeroes the whole step, h = 0
        # (so x = 0 and x - theta = -theta), the current included.
        x_sum = Mux(fired, 0, x_sum)
        if d is not None:
            d_sum = Mux(fired, -theta, d_sum)
        if gt:
            d1_sum = Mux(fired, -theta - 1, d1_sum)
    m.d.comb += x.eq(x_sum)
    if d is not None:
        m.d.comb += d.eq(d_sum)
    h = Signal(signed(B), name=f"{name}_h")
    spike = Signal(name=f"{name}_spike")
    v_next = Signal(signed(B), name=f"{name}_v")
    top = x[B - 1:]                       # all equal <=> x fits B signed bits
    over = ~x[-1] & top.any()
    under = x[-1] & ~top.all()
    m.d.comb += h.eq(Mux(over, hi, Mux(under, lo, x)))
    fires = Signal(name=f"{name}_fires")          # fire(h)
    if gt:
        d1 = Signal(wide, name=f"{name}_x_minus_theta_minus_one")
        m.d.comb += [d1.eq(d1_sum), fires.eq(~d1[-1] & (theta != hi))]
    else:
        m.d.comb += fires.eq(~d[-1])
    state = spike
    if snntorch_subtract:
        # s = fire(h - r*theta) and the next r = fire(h - s*theta), the stored membrane's
        # own test: both pick between fire(h) and fire(h - theta), so r is kept as a bit
        # and never recomputed from v (no comparison of v in the loop).
        d2 = Signal(wide, name=f"{name}_x_minus_two_theta" + ("_minus_one" if gt else ""))
        fires_twice = Signal(name=f"{name}_fires_twice")      # fire(h - theta)
        # (x - 2 theta - 1 for ``gt``, as above)
        m.d.comb += d2.eq(carry_save_sum(m, terms + shifted(cur_minus_two) + (one if gt else []),
                                         f"{name}_d2") >> frac)
        if gt:
            m.d.comb += fires_twice.eq(Mux(over, (theta << 1) < hi, ~d2[-1]))
        else:
            m.d.comb += fires_twice.eq(Mux(over, (theta << 1) <= hi, ~d2[-1]))
        state = Signal(name=f"{name}_r")
        m.d.comb += [spike.eq(Mux(fired, fires_twice, fires)),
                     state.eq(Mux(spike, fires_twice, fires))]
    else:
        m.d.comb += spike.eq(fires)
    if mode.order == "delayed" or mode.reset == "none":
        m.d.comb += v_next.eq(h)
    elif subtracts_after:
        # h - theta: d itself unless x saturated high, where it is vmax - theta.
        m.d.comb += v_next.eq(Mux(spike, Mux(over, hi - theta, d), h))
    else:
        m.d.comb += v_next.eq(Mux(spike, 0, h))
    return v_next, spike, state, i_next


class LIFUnit(wiring.Component):
    """Evaluates one neuron at a time over T_c steps, ``steps_per_cycle`` steps per cycle.

    Ports: ``i`` takes a neuron's T_c input currents (synaptic sum + bias: the TPPE folds
    the bias into its accumulators), its header (threshold, slot, chunk_last and, with
    per-neuron leaks, the neuron's leak multiplier; the header's bias is not used here),
    the membrane and order bit (``state``) it starts from (0 in the first time chunk), and
    its synaptic current ``i`` if the geometry has current-based modes (``i_bits`` > 0);
    ``o`` gives its packed spike word, the membrane, order bit (and synaptic current) it
    ends with, slot and chunk_last; ``mode`` selects the neuron mode (held for a whole
    layer); ``idle`` is high when nothing is in flight. The input should come from
    registers: I - theta is computed from it as it is accepted.

    Latency: T_c / steps_per_cycle cycles from acceptance to a valid output.
    Throughput: one neuron per T_c / steps_per_cycle cycles: the next neuron is accepted in
    the cycle the current one finishes. ``i.ready`` is a register.
    Resources: per mode, steps_per_cycle chained step circuits of two parallel adders
    (three with ``gt``: x - theta - 1 decides the spike), an overflow test and muxes (a
    constant leak multiply becomes shifted adds); T_c current registers and one output
    register; with a delayed-order subtract-reset mode two more, the first step's terms
    selected ahead. The membrane loop is two adders deep per step.
    A per-neuron leak mode adds, per step circuit, one v_bits x (F + 2) signed multiplier
    (its product is a term of both sums, so the loop is a multiplier and an adder deep),
    and the unit a register for the neuron's multiplier. A current-based mode adds, per
    step, the synaptic filter's carry-save sum and overflow test and an i_bits register:
    with the ``separate`` rounding ahead of the membrane's sums (its loop is then one carry
    chain deeper per step), with the ``joint`` rounding beside them (the membrane's sums
    take the synaptic leak's terms as well, no deeper); a voltage-based mode's circuit is
    unchanged.
    """

    def __init__(self, geometry, modes, steps_per_cycle=1):
        modes = list(modes)
        if not modes:
            raise ValueError("LIFUnit needs at least one neuron mode")
        for index, mode in enumerate(modes):
            where = f"LIFUnit mode {index}"
            leak = mode_leak(mode, where)
            leak.check(where, mode.v_bits)
            if leak.kind == "per_neuron" and geometry.leak_bits < leak.frac_bits + 1:
                raise ValueError(f"{where}: a per-neuron leak with frac_bits "
                                 f"{leak.frac_bits} needs {leak.frac_bits + 1}-bit "
                                 f"multipliers; the geometry's leak_bits is "
                                 f"{geometry.leak_bits}")
            if mode.fire not in FIRE_MODES or mode.reset not in RESET_MODES \
                    or mode.order not in ORDERS:
                raise ValueError(f"{where}: unknown fire/reset/order in {mode}")
            if not 2 <= mode.v_bits <= geometry.v_bits:
                raise ValueError(f"{where}: v_bits {mode.v_bits} exceeds the unit's "
                                 f"{geometry.v_bits}")
            if mode.synapse is not None:
                Leak.from_json(mode.synapse, f"{where} synapse").check(f"{where} synapse",
                                                                       mode.i_bits)
                if mode.synapse_rounding not in SYNAPSE_ROUNDINGS:
                    raise ValueError(f"{where}: synapse_rounding {mode.synapse_rounding!r} is "
                                     f"not one of {', '.join(SYNAPSE_ROUNDINGS)}")
                if not 2 <= mode.i_bits <= geometry.i_bits:
                    raise ValueError(f"{where}: i_bits {mode.i_bits} exceeds the unit's "
                                     f"{geometry.i_bits}")
        if steps_per_cycle < 1 or geometry.lanes % steps_per_cycle:
            raise ValueError(f"LIFUnit: steps_per_cycle {steps_per_cycle} must divide "
                             f"T_c = {geometry.lanes}")
        self.geometry = geometry
        self.modes = modes
        self.steps_per_cycle = steps_per_cycle
        super().__init__({
            "mode": In(range(max(2, len(modes)))),
            "i": In(stream.Signature(geometry.lif_input)),
            "o": Out(stream.Signature(geometry.lif_output)),
            "idle": Out(1),
        })

    @staticmethod
    def _selects_ahead(mode):
        """Whether ``mode``'s first step of a cycle takes its ``chosen`` pair from
        registers (:func:`lif_step`): the delayed order with a subtract reset, where the
        sums' I - theta terms are those prepared ahead."""
        return (mode.order == "delayed" and mode.reset == "subtract"
                and (mode.synapse is None or mode.synapse_rounding == "joint"))

    def elaborate(self, platform):
        m = Module()
        g, u = self.geometry, self.steps_per_cycle
        T = g.lanes
        cycles = T // u
        width = signed(g.acc_bits + 1)
        two_theta = any(mode.order in ("delayed", "snntorch_same_step")
                        and mode.reset == "subtract" for mode in self.modes)

        busy = Signal()
        current = [Signal(width, name=f"current_{t}") for t in range(T)]
        # I - theta (and I - 2 theta) of this cycle's steps, prepared a cycle ahead. Sized
        # from both operands: the threshold is bounded by the membrane, not by the
        # accumulator, and may exceed the current's range many times over (a difference
        # sized from acc_bits alone wrapped to a positive value and fired).
        minus_theta = [Signal(signed(max(g.acc_bits, g.theta_bits) + 2),
                              name=f"minus_theta_{j}") for j in range(u)]
        minus_two_theta = [Signal(signed(max(g.acc_bits, g.theta_bits + 1) + 2),
                                  name=f"minus_two_theta_{j}")
                           for j in range(u)] if two_theta else [None] * u
        theta = Signal(g.theta_bits)
        multiplier = Signal(g.leak_bits) if g.leak_bits else None
        slot = Signal(g.slot_bits)
        chunk_last = Signal()
        v = Signal(signed(g.v_bits))
        fired = Signal()
        # the synaptic current, only when a mode is current-based
        syn = Signal(signed(g.i_bits), name="syn") if g.i_bits else None
        word = Signal(T)
        count = Signal(range(cycles))

        # The delayed order with a subtract reset adds I or I - theta (and tests against
        # I - theta or I - 2 theta) by the previous step's spike. For the cycle's first step
        # both are selected into registers as the previous cycle ends (the spike is ready
        # before the membrane's saturation is), not behind ``fired`` in the loop.
        chosen = None
        selecting = [mode for mode in self.modes if self._selects_ahead(mode)]
        # With ``gt`` the second of the pair only feeds x - theta - 1: it holds the -1 too,
        # which leaves that sum's tree one level shallower (mixed fire modes keep it apart).
        chosen_less_one = bool(selecting) and all(mode.fire == "gt" for mode in selecting)
        if selecting:
            chosen = (Signal(signed(max(width.width, len(minus_theta[0]))), name="chosen_x"),
                      Signal.like(minus_two_theta[0], name="chosen_d"))

        # u chained steps, for every mode; the layer's mode picks the result.
        results = []
        for index, mode in enumerate(self.modes):
            step_v, step_fired, step_i, spikes = v, fired, syn, []
            for j in range(u):
                step_v, spike, step_fired, step_i = lif_step(
                    m, mode, step_v, step_fired, current[j], minus_theta[j],
                    minus_two_theta[j], theta, f"mode{index}_step{j}", i=step_i,
                    multiplier=multiplier,
                    chosen=chosen if j == 0 and self._selects_ahead(mode) else None,
                    chosen_less_one=chosen_less_one)
                spikes.append(spike)
            results.append((step_v, step_fired, step_i, spikes))
        next_v = Signal(signed(g.v_bits))
        next_fired = Signal()
        next_i = Signal(signed(g.i_bits)) if syn is not None else None
        next_spikes = Signal(u)
        with m.Switch(self.mode):
            for index, (step_v, step_fired, step_i, spikes) in enumerate(results):
                with m.Case(index):
                    m.d.comb += [next_v.eq(step_v), next_fired.eq(step_fired)]
                    m.d.comb += [next_spikes[j].eq(s) for j, s in enumerate(spikes)]
                    if syn is not None:
                        m.d.comb += next_i.eq(step_i)

        def prepare(sums, theta_value, spiked):
            """The next u steps' I - theta terms, from registers, and the first step's
            ``chosen`` pair after a step that ``spiked``."""
            once = [sums[j] - theta_value for j in range(u)]
            twice = [sums[j] - (theta_value << 1) for j in range(u)] if two_theta else []
            statements = [minus_theta[j].eq(once[j]) for j in range(u)]
            statements += [minus_two_theta[j].eq(twice[j]) for j in range(len(twice))]
            if chosen is not None:
                if chosen_less_one:
                    # I - theta - 1 = I + ~theta and I - 2 theta - 1 = I + ~(2 theta): one
                    # adder each, as the pair without the -1
                    less = [sums[0] + ~Cat(theta_value, Const(0, 1)).as_signed(),
                            sums[0] + ~Cat(Const(0, 1), theta_value, Const(0, 1)).as_signed()]
                else:
                    less = [once[0], twice[0]]
                statements += [chosen[0].eq(Mux(spiked, once[0], sums[0])),
                               chosen[1].eq(Mux(spiked, less[1], less[0]))]
            return statements

        # A register, not a comparison of ``count``: it heads the readiness chain.
        last_step = Signal(init=cycles == 1)
        # Readiness from registers only (here and so for ``i``): a ready that depends on
        # the next stage's ready chains the write bus, the compressor, this unit, the
        # accumulators and the inner join into one combinational path. The cost is a cycle
        # when the output register is full as a neuron finishes, which a neuron taking two
        # or more cycles never meets.
        out_free = ~self.o.valid
        finishing = busy & last_step & out_free
        # ``i.ready`` = ~busy | finishing, kept as a register of its own, computed from
        # the next values of the three registers it reads: the accumulators' hand-over
        # (the TPPE's ``consume``, which enables the whole accumulate pipeline and pops
        # the header FIFO) then starts at a flip-flop, not behind this unit's state (on
        # iCE40 that was the CNN's critical path).
        ready = Signal(init=1)
        accept = self.i.valid & ready
        advancing = busy & (~last_step | out_free)
        busy_next = Mux(accept, 1, Mux(finishing, 0, busy))
        last_step_next = Mux(accept, cycles == 1,
                             Mux(advancing, count == cycles - 2, last_step)
                             if cycles > 1 else last_step)
        valid_next = Mux(finishing, 1, Mux(self.o.ready, 0, self.o.valid))
        m.d.sync += ready.eq(~busy_next | (last_step_next & ~valid_next))
        with m.If(advancing):
            m.d.sync += [v.eq(next_v), fired.eq(next_fired), count.eq(count + 1),
                         word.eq(word >> u | next_spikes << (T - u))]
            if syn is not None:
                m.d.sync += syn.eq(next_i)
            if cycles > 1:
                m.d.sync += last_step.eq(count == cycles - 2)
            m.d.sync += [current[t].eq(current[t + u]) for t in range(T - u)]
            if T > u:
                m.d.sync += prepare(current[u:], theta, next_fired)
        with m.If(finishing):
            m.d.sync += [
                self.o.valid.eq(1),
                self.o.payload.word.eq(word >> u | next_spikes << (T - u)),
                self.o.payload.v.eq(next_v),
                self.o.payload.state.eq(next_fired),
                *([self.o.payload.i.eq(next_i)] if syn is not None else []),
                self.o.payload.slot.eq(slot),
                self.o.payload.chunk_last.eq(chunk_last),
                busy.eq(0),
            ]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        m.d.comb += self.i.ready.eq(ready)
        with m.If(accept):
            header = self.i.payload.header
            m.d.sync += [current[t].eq(self.i.payload.sums[t]) for t in range(T)]
            m.d.sync += prepare(self.i.payload.sums, header.theta, self.i.payload.state)
            m.d.sync += [theta.eq(header.theta), slot.eq(header.slot),
                         chunk_last.eq(header.chunk_last),
                         v.eq(self.i.payload.v), fired.eq(self.i.payload.state),
                         word.eq(0), count.eq(0), last_step.eq(cycles == 1), busy.eq(1)]
            if multiplier is not None:
                m.d.sync += multiplier.eq(header.leak)
            if syn is not None:
                m.d.sync += syn.eq(self.i.payload.i)
        m.d.comb += self.idle.eq(~busy & ~self.o.valid)
        return m
