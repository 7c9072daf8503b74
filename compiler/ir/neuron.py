"""Integer neuron semantics: leak forms and the fire / reset / order attributes.

Every form here is defined exactly in docs/semantics.md; the integer reference
(:mod:`hwgen.compiler.ir.reference`) and the generated LIF stage implement these definitions and nothing
else. Frontends translate their framework's conventions into them.
"""

from dataclasses import dataclass

import numpy as np

from hwgen.errors import ModelError

FIRE_MODES = ("ge", "gt")
"""``ge``: spike when h >= theta; ``gt``: spike when h > theta."""

RESET_MODES = ("subtract", "zero", "none")
"""``subtract``: v = h - s*theta; ``zero``: v = 0 after a spike; ``none``: v = h."""

ORDERS = ("same_step", "delayed", "snntorch_same_step")
"""``same_step``: the spike of step t resets the membrane within step t (NIR, SpikingJelly);
``delayed``: it resets the membrane at step t+1 (snnTorch's default Leaky);
``snntorch_same_step``: snnTorch's ``Leaky(reset_delay=False)``, same_step except that with a
subtract reset the spike decision also subtracts theta if the membrane stored at the
previous step itself fires (docs/semantics.md section 4)."""

LEAK_KINDS = ("none", "shift", "multiply", "per_neuron")

SYNAPSE_ROUNDINGS = ("separate", "joint")
"""How a current-based neuron rounds (docs/semantics.md section 4b). ``separate``: the
membrane adds this step's synaptic current, each state floored on its own (h = L(v) + i[t]);
``joint``: snnTorch's ``Synaptic`` with ``state_quant=torch.floor``, which floors the
membrane's whole sum once: h = floor(beta*v + alpha*i[t-1]) + I[t]."""


def joint_leak(leak, v, synapse, i):
    """floor(L(v) + L_syn(i)) with one floor over both unfloored leaks (int64 arrays)."""
    a, f = leak.unfloored(v)
    b, g = synapse.unfloored(i)
    return ((a << g) + (b << f)) >> (f + g)

MAX_FRAC_BITS = 16


@dataclass(frozen=True)
class Leak:
    """The per-step membrane decay, in integer arithmetic with floor rounding.

    ``none``
        v (beta = 1: an integrate-and-fire neuron).
    ``shift``
        v - (v >> shift), beta = 1 - 2**-shift; ``shift`` >= 1.
    ``multiply``
        (multiplier * v) >> frac_bits, beta = multiplier / 2**frac_bits;
        0 <= multiplier <= 2**frac_bits.
    ``per_neuron``
        (multipliers[n] * v[n]) >> frac_bits: the multiply form with one multiplier per
        neuron (a tuple, in the op's neuron order) and one ``frac_bits`` per layer.

    ``>>`` is an arithmetic shift (floor division by a power of two), so no form can
    leave the membrane's range.
    """

    kind: str = "none"
    shift: int = 0
    multiplier: int = 0
    frac_bits: int = 0
    multipliers: tuple = ()

    @classmethod
    def none(cls):
        return cls("none")

    @classmethod
    def by_shift(cls, shift):
        return cls("shift", shift=int(shift))

    @classmethod
    def by_multiply(cls, multiplier, frac_bits):
        return cls("multiply", multiplier=int(multiplier), frac_bits=int(frac_bits))

    @classmethod
    def per_neuron(cls, multipliers, frac_bits):
        return cls("per_neuron", frac_bits=int(frac_bits),
                   multipliers=tuple(int(a) for a in np.asarray(multipliers).reshape(-1)))

    @property
    def betas(self):
        """The decay factor of every neuron (per_neuron) or of all (one element), floats."""
        if self.kind == "per_neuron":
            return np.asarray(self.multipliers, dtype=np.float64) / 2.0 ** self.frac_bits
        return np.array([self.beta])

    @property
    def beta(self):
        """The decay factor this leak implements, as a float; for ``per_neuron`` the
        largest one (the slowest decay: the worst case of any bound on the membrane)."""
        if self.kind == "shift":
            return 1.0 - 2.0 ** -self.shift
        if self.kind == "multiply":
            return self.multiplier / 2.0 ** self.frac_bits
        if self.kind == "per_neuron":
            return max(self.multipliers, default=0) / 2.0 ** self.frac_bits
        return 1.0

    def check(self, where, v_bits, neurons=None, state="membrane"):
        """Raise :class:`ModelError` naming ``where`` if this leak is malformed; ``v_bits``
        is the width of the ``state`` it decays (a synaptic leak: the current's);
        ``neurons`` (when known) is the number of neurons a ``per_neuron`` leak must cover."""
        if self.kind not in LEAK_KINDS:
            raise ModelError(f"{where}: leak kind {self.kind!r} is not one of {', '.join(LEAK_KINDS)}")
        if self.kind == "shift" and not 1 <= self.shift <= v_bits:
            raise ModelError(f"{where}: leak shift {self.shift} must be between 1 and "
                             f"the {state} width {v_bits}")
        if self.kind in ("multiply", "per_neuron"):
            if not 1 <= self.frac_bits <= MAX_FRAC_BITS:
                raise ModelError(f"{where}: leak frac_bits {self.frac_bits} must be between 1 "
                                 f"and {MAX_FRAC_BITS}")
        if self.kind == "multiply" and not 0 <= self.multiplier <= 1 << self.frac_bits:
            raise ModelError(f"{where}: leak multiplier {self.multiplier} must be between 0 "
                             f"and 2**frac_bits = {1 << self.frac_bits}")
        if self.kind == "per_neuron":
            for n, a in enumerate(self.multipliers):
                if not 0 <= a <= 1 << self.frac_bits:
                    raise ModelError(f"{where}: leak multipliers[{n}] = {a} must be between 0 "
                                     f"and 2**frac_bits = {1 << self.frac_bits}")
            self.check_neurons(where, neurons)

    def check_neurons(self, where, neurons):
        """A ``per_neuron`` leak needs exactly one multiplier per neuron."""
        if self.kind == "per_neuron" and neurons is not None \
                and len(self.multipliers) != neurons:
            raise ModelError(f"{where}: leak has {len(self.multipliers)} multipliers for "
                             f"{neurons} neurons (one per neuron)")

    def unfloored(self, v):
        """L(v) before its final floor, as (numerator, frac_bits): L(v) = numerator >>
        frac_bits. A joint synaptic rounding adds two of these before one floor."""
        if self.kind == "shift":
            return v - (v >> self.shift), 0
        if self.kind == "multiply":
            return self.multiplier * v, self.frac_bits
        if self.kind == "per_neuron":
            return np.asarray(self.multipliers, dtype=np.int64) * v, self.frac_bits
        return v, 0

    def apply(self, v):
        """Leak an int64 array of membrane values; a ``per_neuron`` leak's multipliers run
        along the last axis (neurons)."""
        if self.kind == "shift":
            return v - (v >> self.shift)
        if self.kind == "multiply":
            return (self.multiplier * v) >> self.frac_bits
        if self.kind == "per_neuron":
            return (np.asarray(self.multipliers, dtype=np.int64) * v) >> self.frac_bits
        return v

    def to_json(self):
        if self.kind == "shift":
            return {"kind": "shift", "shift": self.shift}
        if self.kind == "multiply":
            return {"kind": "multiply", "multiplier": self.multiplier, "frac_bits": self.frac_bits}
        if self.kind == "per_neuron":
            return {"kind": "per_neuron", "multipliers": list(self.multipliers),
                    "frac_bits": self.frac_bits}
        return {"kind": "none"}

    @classmethod
    def from_json(cls, data, where):
        if not isinstance(data, dict) or "kind" not in data:
            raise ModelError(f"{where}: leak must be an object with a 'kind'")
        fields = {"none": set(), "shift": {"shift"}, "multiply": {"multiplier", "frac_bits"},
                  "per_neuron": {"multipliers", "frac_bits"}}
        kind = data["kind"]
        if kind not in fields:
            raise ModelError(f"{where}: leak kind {kind!r} is not one of {', '.join(LEAK_KINDS)}")
        given = set(data) - {"kind"}
        if given != fields[kind]:
            raise ModelError(f"{where}: leak of kind {kind!r} takes exactly "
                             f"{sorted(fields[kind]) or 'no parameters'}, got {sorted(given)}")

        def integer(x):
            return isinstance(x, int) and not isinstance(x, bool)
        values = dict((k, data[k]) for k in given)
        if kind == "per_neuron":
            multipliers = values.pop("multipliers")
            if not isinstance(multipliers, list) or not all(integer(a) for a in multipliers):
                raise ModelError(f"{where}: leak multipliers must be a list of integers")
            values["multipliers"] = tuple(multipliers)
        if not all(integer(v) for k, v in values.items() if k != "multipliers"):
            raise ModelError(f"{where}: leak parameters must be integers")
        return cls(kind, **values)

    def describe(self):
        if self.kind == "shift":
            return f"v - (v >> {self.shift})  (beta {self.beta:g})"
        if self.kind == "multiply":
            return f"({self.multiplier} * v) >> {self.frac_bits}  (beta {self.beta:g})"
        if self.kind == "per_neuron":
            low, high = min(self.multipliers, default=0), max(self.multipliers, default=0)
            scale = 2.0 ** self.frac_bits
            return (f"(a_n * v) >> {self.frac_bits}, a_n in {low}..{high} per neuron "
                    f"(beta {low / scale:g}..{high / scale:g})")
        return "none (IF)"


def signed_range(bits):
    """The inclusive range of a two's complement integer of ``bits`` bits."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def saturate(x, bits):
    """Clamp an integer array to the signed range of ``bits`` bits."""
    lo, hi = signed_range(bits)
    return np.clip(x, lo, hi)
