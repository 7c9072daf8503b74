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

LEAK_KINDS = ("none", "shift", "multiply")

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

    ``>>`` is an arithmetic shift (floor division by a power of two), so neither form can
    leave the membrane's range.
    """

    kind: str = "none"
    shift: int = 0
    multiplier: int = 0
    frac_bits: int = 0

    @classmethod
    def none(cls):
        return cls("none")

    @classmethod
    def by_shift(cls, shift):
        return cls("shift", shift=int(shift))

    @classmethod
    def by_multiply(cls, multiplier, frac_bits):
        return cls("multiply", multiplier=int(multiplier), frac_bits=int(frac_bits))

    @property
    def beta(self):
        """The decay factor this leak implements, as a float."""
        if self.kind == "shift":
            return 1.0 - 2.0 ** -self.shift
        if self.kind == "multiply":
            return self.multiplier / 2.0 ** self.frac_bits
        return 1.0

    def check(self, where, v_bits, state="membrane"):
        """Raise :class:`ModelError` naming ``where`` if this leak is malformed; ``v_bits``
        is the width of the ``state`` it decays (a synaptic leak: the current's)."""
        if self.kind not in LEAK_KINDS:
            raise ModelError(f"{where}: leak kind {self.kind!r} is not one of {', '.join(LEAK_KINDS)}")
        if self.kind == "shift" and not 1 <= self.shift <= v_bits:
            raise ModelError(f"{where}: leak shift {self.shift} must be between 1 and "
                             f"the {state} width {v_bits}")
        if self.kind == "multiply":
            if not 1 <= self.frac_bits <= MAX_FRAC_BITS:
                raise ModelError(f"{where}: leak frac_bits {self.frac_bits} must be between 1 "
                                 f"and {MAX_FRAC_BITS}")
            if not 0 <= self.multiplier <= 1 << self.frac_bits:
                raise ModelError(f"{where}: leak multiplier {self.multiplier} must be between 0 "
                                 f"and 2**frac_bits = {1 << self.frac_bits}")

    def unfloored(self, v):
        """L(v) before its final floor, as (numerator, frac_bits): L(v) = numerator >>
        frac_bits. A joint synaptic rounding adds two of these before one floor."""
        if self.kind == "shift":
            return v - (v >> self.shift), 0
        if self.kind == "multiply":
            return self.multiplier * v, self.frac_bits
        return v, 0

    def apply(self, v):
        """Leak an int64 array of membrane values."""
        if self.kind == "shift":
            return v - (v >> self.shift)
        if self.kind == "multiply":
            return (self.multiplier * v) >> self.frac_bits
        return v

    def to_json(self):
        if self.kind == "shift":
            return {"kind": "shift", "shift": self.shift}
        if self.kind == "multiply":
            return {"kind": "multiply", "multiplier": self.multiplier, "frac_bits": self.frac_bits}
        return {"kind": "none"}

    @classmethod
    def from_json(cls, data, where):
        if not isinstance(data, dict) or "kind" not in data:
            raise ModelError(f"{where}: leak must be an object with a 'kind'")
        fields = {"none": set(), "shift": {"shift"}, "multiply": {"multiplier", "frac_bits"}}
        kind = data["kind"]
        if kind not in fields:
            raise ModelError(f"{where}: leak kind {kind!r} is not one of {', '.join(LEAK_KINDS)}")
        given = set(data) - {"kind"}
        if given != fields[kind]:
            raise ModelError(f"{where}: leak of kind {kind!r} takes exactly "
                             f"{sorted(fields[kind]) or 'no parameters'}, got {sorted(given)}")
        if not all(isinstance(data[k], int) and not isinstance(data[k], bool) for k in given):
            raise ModelError(f"{where}: leak parameters must be integers")
        return cls(kind, **{k: data[k] for k in given})

    def describe(self):
        if self.kind == "shift":
            return f"v - (v >> {self.shift})  (beta {self.beta:g})"
        if self.kind == "multiply":
            return f"({self.multiplier} * v) >> {self.frac_bits}  (beta {self.beta:g})"
        return "none (IF)"


def signed_range(bits):
    """The inclusive range of a two's complement integer of ``bits`` bits."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def saturate(x, bits):
    """Clamp an integer array to the signed range of ``bits`` bits."""
    lo, hi = signed_range(bits)
    return np.clip(x, lo, hi)
