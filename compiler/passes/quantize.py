"""Post-training quantization: a float network (:mod:`hwgen.compiler.ir.floating`) -> the integer IR.

The method is MINT's: every *layer* -- a neuron op together with the synapse (and pooling)
ops that produce its input current -- gets one scale ``s`` shared by the synapse's weights
and bias and the neuron's threshold and membrane:

    w_q = clip(round(s * w)),  b_q = round(s * b),  theta_q = round(s * theta),  v_q ~ s * v

The neuron update is linear in v, so scaling it by s changes nothing but rounding, and the
integer neuron still needs only add, compare and shift. Spikes are bits, so every layer's
scale is independent of the others'.

- A layer whose weights, bias and thresholds are already integers keeps them exactly
  (s = 1), so an integer-valued model from a framework is reproduced bit for bit.
- Otherwise s = (2**(weight_bits-1) - 1) / max|w| (no clipping), or, when calibration
  inputs are given, the candidate s / c (c in :data:`CLIP_CANDIDATES`; c < 1 clips the
  weights above c * max|w|) whose layer output agrees best with the float model's, the
  layer being fed the float model's own input spikes.
- beta becomes the nearest supported leak (docs/semantics.md section 4): exact when beta is
  a/2**F, else the nearest a/2**F with F = ``leak_frac_bits`` (or the nearest 1 - 2**-k
  with ``leak_form="shift"``); the error is reported. The multiply form is the default
  because it is floor(beta * v), what a framework that floors its membrane computes.
  Neurons of one layer whose betas differ get a multiplier each over one F per layer (the
  ``per_neuron`` leak, :func:`quantize_betas`), never a shared approximation.
- The membrane width, unless given, is the narrowest that can never saturate over T steps,
  so the integer model differs from the float one only by rounding.
- A current-based layer's alpha becomes its synaptic leak as beta becomes the membrane's,
  and its current width ``i_bits`` is likewise the narrowest that never saturates.
- A recurrent layer (docs/semantics.md section 4c) has one scale for all K + N columns of
  its weight, the fed-back spikes' included: both halves add into one current. It must
  feed its own spiking layer directly.
- Residual currents (an ``add`` of several synapses' currents into one neuron layer,
  docs/semantics.md 3b) form one layer with one scale for all those synapses: their
  currents are summed in one unit. Where several neuron layers read overlapping currents
  (a residual stream of adds, each read by a neuron layer and by the next add: Spike-driven
  Transformer's membrane shortcut), all of them and all the synapses summed form one
  group with one scale (no calibration there). A max pool of currents belongs to its layer (a max
  commutes with a positive scale). A spike add (spikes summed into counts) needs no
  scale: it is an op of its own, read by the layers after it as sum-pooled spikes are.
- The spiking-transformer ops (docs/semantics.md 4d) need no scale either: a Hadamard mask
  is spikes, and a column sum over tokens or a spike x spike product (with Q (K^T V)
  after it) is an exact count that belongs to the one layer reading it, as a sum pool's
  counts do; a constant factor before that layer's neuron is already in its threshold.

Everything decided lands in ``model.metadata["quantization"]`` (docs/frontends.md lists the
fields), including, with calibration inputs, per-layer spike agreement between the float
model (:mod:`hwgen.compiler.ir.float_reference`) and the integer reference on those inputs.
"""

from dataclasses import dataclass

import numpy as np

from hwgen.errors import ConfigError, ModelError, UnsupportedError
from ..ir import (LI, LIF, Add, Conv1d, Conv2d, CurrentMatmul, Dense, Flatten, Input, Leak,
                  MaxPool2d, Model, Readout, SpikeAnd, SpikeMatmul, Spikes, SumPool2d, TokenSum,
                  signed_range)
from ..ir.floating import (FloatAdd, FloatConv, FloatCurrentMatmul, FloatDense, FloatFlatten,
                           FloatInput, FloatIntegrator, FloatMaxPool, FloatNeuron, FloatReadout,
                           FloatSpikeAnd, FloatSpikeMatmul, FloatSumPool, FloatTokenSum)
from ..ir.neuron import MAX_FRAC_BITS
from ..ir.widths import MAX_IR_ACC_BITS, MAX_V_BITS, MAX_WEIGHT_BITS, MIN_BITS

CLIP_CANDIDATES = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)
"""Calibration maps c * max|w| to the largest weight code for each c here (c < 1 clips the
weights above it, for finer steps on the rest); least clipping first."""

SPIKE_CHANGE_WARNING = 0.03
"""Warn when quantization changes more than this fraction of a layer's spikes on the
calibration inputs (differing spike bits over the float model's spike count)."""

DEFAULT_WEIGHT_BITS = 8
"""Weight width for float weights when none is given."""

LEAK_FORMS = ("multiply", "shift")
"""``multiply``: (a * v) >> F, which is floor(beta * v) exactly; ``shift``: v - (v >> k)."""

EXACT_BETA_TOLERANCE = 1e-6
"""A beta within this of a/2**F (F <= 16) counts as exact: exporters store tau in float32,
so 1 - dt/tau only approximates the beta the model was trained with."""


@dataclass(frozen=True)
class QuantizeOptions:
    """``weight_bits``/``v_bits``: None means automatic (see the module docstring)."""

    weight_bits: int = None
    v_bits: int = None
    leak_form: str = "multiply"
    leak_frac_bits: int = 8

    def check(self):
        if self.weight_bits is not None and not MIN_BITS <= self.weight_bits <= MAX_WEIGHT_BITS:
            raise ConfigError(f"weight bits must be between {MIN_BITS} and {MAX_WEIGHT_BITS}, "
                              f"got {self.weight_bits}")
        if self.v_bits is not None and not MIN_BITS <= self.v_bits <= MAX_V_BITS:
            raise ConfigError(f"membrane bits must be between {MIN_BITS} and {MAX_V_BITS}, got "
                              f"{self.v_bits}")
        if self.leak_form not in LEAK_FORMS:
            raise ConfigError(f"leak form {self.leak_form!r} is not one of {', '.join(LEAK_FORMS)}")
        if not 1 <= self.leak_frac_bits <= MAX_FRAC_BITS:
            raise ConfigError(f"leak fraction bits must be between 1 and {MAX_FRAC_BITS}, got "
                              f"{self.leak_frac_bits}")
        return self


def signed_bits(magnitude):
    """The narrowest signed width (at least 2) that holds -magnitude .. magnitude."""
    return max(2, int(magnitude).bit_length() + 1)


INTEGER_TOLERANCE = 1e-6
"""Values this close to an integer (relative to their size) count as integers: a threshold
divided by a float32 input gain is 2.0000000596 rather than 2."""


def _integer_valued(array):
    if array is None:
        return True
    array = np.asarray(array, dtype=np.float64)
    return bool(np.all(np.isfinite(array)) and np.all(
        np.abs(array - np.round(array)) <= INTEGER_TOLERANCE * np.maximum(1.0, np.abs(array))))


# --- leak -------------------------------------------------------------------------------

def quantize_leak(beta, *, form="multiply", frac_bits=8, v_bits=32):
    """The supported leak nearest ``beta``: (Leak, exact?).

    ``multiply``: exact a/2**F (smallest F <= 16) if beta is one, else the nearest
    a/2**``frac_bits`` in lowest terms. ``shift``: the nearest of 1 - 2**-k (1 <= k <= v_bits)
    and 1. beta = 1 is always ``none`` (the IF neuron), beta = 0 the multiply 0/2.
    """
    if abs(beta - 1.0) <= EXACT_BETA_TOLERANCE:
        return Leak.none(), True
    if form == "shift":
        choices = [(abs(beta - (1.0 - 2.0 ** -k)), k) for k in range(1, v_bits + 1)]
        error, k = min(choices)
        if abs(1.0 - beta) < error:
            return Leak.none(), False
        return Leak.by_shift(k), error <= EXACT_BETA_TOLERANCE
    for f in range(1, MAX_FRAC_BITS + 1):
        a = round(beta * (1 << f))
        if abs(a / (1 << f) - beta) <= EXACT_BETA_TOLERANCE:
            return Leak.by_multiply(a, f), True
    a = min(max(round(beta * (1 << frac_bits)), 0), 1 << frac_bits)
    f = frac_bits
    while a and a % 2 == 0 and f > 1:
        a, f = a // 2, f - 1
    if a == 1 << f:
        return Leak.none(), False
    return Leak.by_multiply(a, max(f, 1)), False


def _exact_frac_bits(beta):
    """The smallest F <= MAX_FRAC_BITS with beta = a/2**F (within the tolerance), or None."""
    for f in range(0, MAX_FRAC_BITS + 1):
        if abs(round(beta * (1 << f)) / (1 << f) - beta) <= EXACT_BETA_TOLERANCE:
            return f
    return None


def quantize_betas(betas, *, frac_bits=8):
    """One leak for neurons whose decays ``betas`` differ: (Leak, exact?).

    Every beta becomes a_n / 2**F with one F for the layer: the smallest F <= 16 at which
    all are exact, else ``frac_bits``, in lowest terms. (Not the F some of the betas need:
    a float beta lands within the tolerance of a/2**16 by chance one time in eight, which
    would widen every multiplier of the layer for nothing.) If every a_n comes out equal,
    the layer gets the cheaper one-for-all ``multiply`` leak (or ``none`` for a_n = 2**F).
    """
    betas = np.asarray(betas, dtype=np.float64).reshape(-1)
    needed = [_exact_frac_bits(float(b)) for b in betas]
    exact = all(f is not None for f in needed)
    f = max(max(needed, default=1), 1) if exact else frac_bits
    a = np.clip(np.round(betas * (1 << f)), 0, 1 << f).astype(np.int64)
    while f > 1 and not np.any(a & 1):
        a, f = a >> 1, f - 1
    if a.size and np.all(a == a[0]):
        if a[0] == 1 << f:
            return Leak.none(), exact
        return Leak.by_multiply(int(a[0]), f), exact
    return Leak.per_neuron(a, f), exact


def _layer_betas(layer, which="beta"):
    beta = np.asarray(getattr(layer, which), dtype=np.float64).reshape(-1)
    low, high = (float(beta.min()), float(beta.max())) if beta.size else (1.0, 1.0)
    if low < -1e-9 or high > 1 + 1e-9:
        bad = low if low < 0 else high
        tau = "tau" if which == "beta" else "tau_syn"
        raise UnsupportedError(f"layer {layer.name!r}: decay {which} {bad:g} is outside "
                               f"[0, 1] ({tau} shorter than dt?)")
    return np.clip(beta, 0.0, 1.0), low, high


# --- the plan: which float layers form one quantized layer ------------------------------

@dataclass
class _Group:
    """One quantized layer: ``neuron`` and the current-carrying layers feeding it
    (``members``, in network order, ending with the neuron), fed by the spike (or spike
    count) producers ``sources`` -- several for residual currents.

    ``neurons``: every neuron layer of the group, in network order. There are several when
    neuron layers read currents that overlap (a residual stream of summed synapses that
    several layers read, Spike-driven Transformer's membrane shortcut): one scale then
    serves all of them, since their currents are sums in one unit."""

    neuron: object
    members: list
    sources: list
    neurons: list = None

    def __post_init__(self):
        if self.neurons is None:
            self.neurons = [self.neuron]

    @property
    def synapses(self):
        return [m for m in self.members if isinstance(m, (FloatDense, FloatConv))]

    @property
    def weighted(self):
        found = self.synapses
        return found[0] if found else None

    @property
    def source(self):
        """The one producer a layer without residual currents reads."""
        return self.sources[0]


def _plan(network):
    """Check the structure and find the groups. Domains: ``spikes`` (bits), ``counts``
    (sum-pooled spikes: exact small integers), ``current`` (weighted sums, in a layer's
    scale), ``membrane`` (an integrator's state), ``prediction``."""
    domain, groups = {}, {}
    standalone = set()      # spike adds: counts that need no scale, read by several layers
    for layer in network:
        source = domain.get(layer.inputs[0]) if layer.inputs else None
        where = f"layer {layer.name!r}"
        if len(layer.inputs) > 1 and not isinstance(layer, _MULTI_INPUT):
            raise UnsupportedError(f"{where}: takes {len(layer.inputs)} inputs; only an add "
                                   f"sums several")
        if isinstance(layer, FloatInput):
            domain[layer.name] = "spikes"
        elif isinstance(layer, (FloatSpikeAnd, FloatTokenSum, FloatSpikeMatmul,
                                FloatCurrentMatmul)):
            # spike x spike ops: exact integers, no scale; a count belongs to the one layer
            # reading it, as a sum pool's does (docs/semantics.md 4d)
            kinds = [domain[name] for name in layer.inputs]
            wanted = ["spikes"] * len(kinds)
            if isinstance(layer, FloatCurrentMatmul):
                wanted = ["spikes", "counts"]
                if not isinstance(network[layer.inputs[1]], FloatSpikeMatmul):
                    raise UnsupportedError(f"{where}: multiplies Q by {layer.inputs[1]!r}; hwgen "
                                           f"quantizes Q (K^T V) with K^T V a spike_matmul")
            if kinds != wanted:
                found = ", ".join(f"{name!r} ({kind})" for name, kind in zip(layer.inputs, kinds))
                raise UnsupportedError(f"{where}: reads {found}; it needs "
                                       f"{', '.join(wanted)}")
            domain[layer.name] = "spikes" if isinstance(layer, FloatSpikeAnd) else "counts"
        elif isinstance(layer, FloatDense) and layer.recurrent and source == "counts":
            raise UnsupportedError(f"{where}: a recurrent layer reads spikes, not spike counts")
        elif isinstance(layer, FloatAdd):
            kinds = [domain[name] for name in layer.inputs]
            pooled = [name for name, kind in zip(layer.inputs, kinds)
                      if kind == "counts" and name not in standalone]
            if pooled and all(kind in ("spikes", "counts") for kind in kinds):
                # they would belong to no layer: a pooling's counts feed one layer
                raise UnsupportedError(f"{where}: adds the pooled counts of {pooled[0]!r}; "
                                       f"a spike add sums spikes or other spike adds")
            if all(kind in ("spikes", "counts") for kind in kinds):
                domain[layer.name] = "counts"
                standalone.add(layer.name)
            elif all(kind == "current" for kind in kinds):
                domain[layer.name] = "current"
            else:
                found = ", ".join(f"{name!r} ({kind})" for name, kind in zip(layer.inputs, kinds))
                raise UnsupportedError(f"{where}: adds {found}; an add sums synapses' currents "
                                       f"(one layer, one scale) or spikes, not both")
        elif isinstance(layer, FloatMaxPool):
            if source not in ("spikes", "counts", "current"):
                raise UnsupportedError(f"{where}: cannot max-pool a {source}")
            domain[layer.name] = source
        elif isinstance(layer, (FloatDense, FloatConv)):
            if isinstance(layer, FloatDense) and layer.recurrent:
                _check_recurrent(network, layer)
            if source not in ("spikes", "counts"):
                raise UnsupportedError(f"{where}: its input {layer.inputs[0]!r} is a {source}, "
                                       f"not spikes; put a neuron between two synapses")
            domain[layer.name] = "current"
        elif isinstance(layer, FloatSumPool):
            if source not in ("spikes", "counts", "current"):
                raise UnsupportedError(f"{where}: cannot pool a {source}")
            domain[layer.name] = "counts" if source in ("spikes", "counts") else "current"
        elif isinstance(layer, FloatFlatten):
            if source == "membrane":
                raise UnsupportedError(f"{where}: cannot flatten a membrane")
            domain[layer.name] = source
        elif isinstance(layer, (FloatNeuron, FloatIntegrator)):
            if source not in ("current", "counts"):
                raise UnsupportedError(f"{where}: takes {source} directly; hwgen neurons need a "
                                       f"synapse (Linear, Affine, Conv) or pooling before them")
            domain[layer.name] = "spikes" if isinstance(layer, FloatNeuron) else "membrane"
            members, sources, pending = {layer.name}, [], list(layer.inputs)
            while pending:
                name = pending.pop()
                if domain[name] in ("current", "counts") and name not in standalone:
                    members.add(name)
                    pending.extend(network[name].inputs)
                elif name not in sources:
                    sources.append(name)
            order = [m for m in network.layers if m in members]
            groups[layer.name] = _Group(layer, [network[m] for m in order],
                                        sorted(sources, key=list(network.layers).index))
        elif isinstance(layer, FloatReadout):
            wanted = "spikes" if layer.mode == "spike_count" else "membrane"
            if source != wanted:
                raise UnsupportedError(f"{where}: a {layer.mode} readout needs {wanted}, "
                                       f"gets {source}")
            domain[layer.name] = "prediction"
        else:
            raise TypeError(f"unknown float layer {layer!r}")
    for layer in network:
        if domain[layer.name] in ("current", "counts") and layer.name not in standalone:
            if not network.consumers_of(layer.name):
                raise UnsupportedError(f"layer {layer.name!r}: its {domain[layer.name]} feeds "
                                       f"nothing; hwgen needs a neuron layer after a synapse")
    return _merge(network, groups)


def _merge(network, groups):
    """Groups whose currents overlap (a current read by several layers, directly or through
    adds) become one group with several neurons and one scale; every neuron's name maps to
    it. A current's consumers are then all in its one group."""
    order = list(network.layers)
    merged = {}
    for name, group in groups.items():
        shared = [merged[m.name] for m in group.members[:-1] if m.name in merged]
        owners = list({id(g): g for g in shared}.values())
        if not owners:
            combined = group
        else:
            members = {m.name for g in owners for m in g.members} | {m.name for m in group.members}
            neurons = {n.name for g in owners for n in g.neurons} | {name}
            sources = {s for g in owners for s in g.sources} | set(group.sources)
            members_sorted = [network[m] for m in order if m in members]
            neurons_sorted = [network[n] for n in order if n in neurons]
            combined = _Group(neurons_sorted[-1], members_sorted,
                              [s for s in order if s in sources], neurons_sorted)
        for member in combined.members:
            merged[member.name] = combined
    return {name: merged[name] for name in groups}


_MULTI_INPUT = (FloatAdd, FloatSpikeAnd, FloatSpikeMatmul, FloatCurrentMatmul)


def _check_recurrent(network, layer):
    """A recurrent synapse feeds exactly one spiking layer of its outputs, directly: its
    last columns weigh that layer's spikes (docs/semantics.md section 4c)."""
    consumers = [network[name] for name in network.consumers_of(layer.name)]
    outputs = layer.weight.shape[0]
    if len(consumers) != 1 or not isinstance(consumers[0], FloatNeuron) \
            or consumers[0].size != outputs:
        found = ", ".join(repr(c.name) for c in consumers) or "nothing"
        raise UnsupportedError(f"layer {layer.name!r}: a recurrent synapse must feed exactly one "
                               f"spiking layer of {outputs} neurons (its spikes come back one "
                               f"step late), but it feeds {found}")


# --- building one group's integer ops ---------------------------------------------------

def _scaled(array, scale):
    return None if array is None else np.round(np.asarray(array, dtype=np.float64) * scale)


class _Builder:
    """Turns groups into integer ops at a chosen scale, tracking types and current bounds."""

    def __init__(self, network, options):
        self.network = network
        self.options = options
        self.T = network.timesteps
        self.types = {}
        self.bounds = {}          # largest magnitude each op's output can reach

    def input_op(self, layer):
        op = Input(layer.name, layer.shape, layer.encoding, layer.threshold)
        self.types[op.name] = op.infer([], self.T)
        self.bounds[op.name] = 1
        return op

    def flatten_op(self, layer):
        op = Flatten(layer.name, layer.start_dim, layer.end_dim)
        self.types[op.name] = op.infer([self.types[layer.inputs[0]]], self.T)
        self.bounds[op.name] = self.bounds[layer.inputs[0]]
        return op

    def unscaled_op(self, layer):
        """A spike add (counts), a max pool of spikes or a Hadamard mask: no weights, no
        scale."""
        if isinstance(layer, FloatAdd):
            op = Add(layer.name)
            bound = sum(self.bounds[name] for name in layer.inputs)
        elif isinstance(layer, FloatSpikeAnd):
            op, bound = SpikeAnd(layer.name), 1
        else:
            op = MaxPool2d(layer.name, layer.kernel, layer.stride, layer.padding)
            bound = self.bounds[layer.inputs[0]]
        try:
            self.types[op.name] = op.infer([self.types[n] for n in layer.inputs], self.T)
        except ModelError as error:
            raise ModelError(f"layer {layer.name!r}: {error}") from None
        self.bounds[op.name] = bound
        return op

    def weight_bits_for(self, group):
        """(bits, exact?) -- exact when everything is an integer and fits the bits."""
        synapses = group.synapses
        integers = all(_integer_valued(s.weight) and _integer_valued(s.bias) for s in synapses)
        for neuron in group.neurons:
            if isinstance(neuron, FloatNeuron):
                integers = integers and _integer_valued(neuron.threshold)
        if not synapses:
            return None, integers
        if integers:
            weights = [s.weight for s in synapses if s.weight.size]
            hi = max((int(round(w.max())) for w in weights), default=0)
            lo = min((int(round(w.min())) for w in weights), default=0)
            needed = max(signed_bits(max(hi, 0)), signed_bits(-lo - 1) if lo < 0 else 2)
            bits = self.options.weight_bits or needed
            if needed <= bits:
                return bits, True
        return self.options.weight_bits or DEFAULT_WEIGHT_BITS, False

    def build(self, group, scale, weight_bits, exact=False):
        """The group's ops at ``scale``; returns (ops with their input names, report).

        ``exact``: the weights are integers that fit, and keep the whole two's complement
        range; otherwise they are clipped symmetrically to +-(2**(weight_bits-1) - 1)."""
        ops, report = [], {}
        if len(group.synapses) > 1:
            report["synapses"] = [s.name for s in group.synapses]
        for layer in group.members:
            source = layer.inputs[0]
            in_type, in_bound = self.types[source], self.bounds[source]
            in_types = [self.types[name] for name in layer.inputs]
            if isinstance(layer, (FloatDense, FloatConv)):
                q_max = (1 << (weight_bits - 1)) - 1
                raw = _scaled(layer.weight, scale)
                lo = -q_max - 1 if exact else -q_max
                clipped = int(np.count_nonzero((raw > q_max) | (raw < lo)))
                weight = np.clip(raw, lo, q_max).astype(np.int64)
                bias = _scaled(layer.bias, scale)
                bias = None if bias is None else bias.astype(np.int64)
                if isinstance(layer, FloatDense) and layer.recurrent:
                    # One scale for all K + N columns: both halves add into one current.
                    report["recurrent_weights"] = int(layer.weight.shape[0] ** 2)
                largest = float(np.abs(layer.weight).max()) if layer.weight.size else 0.0
                if "synapse" in report:           # residual currents: one report, all synapses
                    report.update(weights=report["weights"] + int(weight.size),
                                  clipped_weights=report["clipped_weights"] + clipped,
                                  max_abs_weight=max(report["max_abs_weight"], largest))
                else:
                    report.update(synapse=layer.name, weights=int(weight.size),
                                  clipped_weights=clipped, weight_bits=weight_bits,
                                  max_abs_weight=largest)
                magnitude = 1 if isinstance(in_type, Spikes) else 1 << (in_type.bits - 1)
                if isinstance(layer, FloatDense):
                    recurrent = layer.recurrent
                    # every column's input is a spike (the recurrent ones too) or a count of
                    # at most ``magnitude``: sum |w| * magnitude + |b|
                    column = np.abs(weight).sum(axis=1) * magnitude
                    if bias is not None:
                        column = column + np.abs(bias)
                    bound = int(column.max()) if column.size else 0
                    op = Dense(layer.name, weight, bias, weight_bits=weight_bits,
                               acc_bits=signed_bits(bound), recurrent=recurrent)
                else:
                    cls = Conv1d if layer.dims == 1 else Conv2d
                    geometry = dict(stride=layer.stride, padding=layer.padding,
                                    dilation=layer.dilation, groups=layer.groups)
                    probe = cls(layer.name, weight, bias, weight_bits=weight_bits,
                                acc_bits=MAX_IR_ACC_BITS, **geometry)
                    bound = probe.accumulator_bound(magnitude)
                    op = cls(layer.name, weight, bias, weight_bits=weight_bits,
                             acc_bits=signed_bits(bound), **geometry)
            elif isinstance(layer, FloatSumPool):
                op = SumPool2d(layer.name, layer.kernel, layer.stride, layer.padding)
                bound = in_bound * layer.kernel[0] * layer.kernel[1]
            elif isinstance(layer, FloatFlatten):
                op = Flatten(layer.name, layer.start_dim, layer.end_dim)
                bound = in_bound
            elif isinstance(layer, FloatMaxPool):
                op = MaxPool2d(layer.name, layer.kernel, layer.stride, layer.padding)
                bound = in_bound
            elif isinstance(layer, FloatAdd):
                op = Add(layer.name)
                bound = sum(self.bounds[name] for name in layer.inputs)
            elif isinstance(layer, (FloatTokenSum, FloatSpikeMatmul)):
                # counts of spiking positions: at most the number of positions
                positions = int(np.prod(self.network[source].shape[1:]))
                op = TokenSum(layer.name) if isinstance(layer, FloatTokenSum) \
                    else SpikeMatmul(layer.name, layer.heads)
                bound = positions
            elif isinstance(layer, FloatCurrentMatmul):
                op = CurrentMatmul(layer.name)
                d = self.network[layer.inputs[1]].shape[1]
                bound = d * self.bounds[layer.inputs[1]]
            elif isinstance(layer, FloatNeuron):
                op, bound = self.neuron_op(layer, scale, in_bound, report)
            elif isinstance(layer, FloatIntegrator):
                op, bound = self.integrator_op(layer, in_bound, report)
            else:
                raise TypeError(f"unexpected layer {layer!r} in a group")
            try:
                self.types[op.name] = op.infer(in_types, self.T)
            except ModelError as error:
                raise ModelError(f"layer {layer.name!r}: {error}") from None
            self.bounds[op.name] = bound
            ops.append((op, list(layer.inputs)))
        return ops, report

    def v_bits_for(self, layer, leak, bound, threshold_max, delayed_subtract, report):
        # Both leak forms round down, so |L(v)| <= min(|v|, beta*|v| + 1) (and |v| for no
        # leak); a step adds at most the largest input current (plus theta for the delayed
        # subtract reset); a same-step reset only moves h towards 0. Iterating that bound
        # over the T steps gives the largest |h| any input can produce.
        step = bound + (threshold_max if delayed_subtract else 0)
        reach = 0
        for _ in range(self.T):
            leaked = reach if leak.kind == "none" else min(reach, leak.beta * reach + 1)
            reach = int(np.floor(leaked)) + step
        needed = max(signed_bits(reach), signed_bits(threshold_max))
        if leak.kind == "shift":
            needed = max(needed, leak.shift)
        if self.options.v_bits is None:
            report.update(v_bits=needed, v_bits_source=f"auto: |h| <= {reach}, never saturates")
            return needed
        bits = self.options.v_bits
        if signed_range(bits)[1] < threshold_max:
            raise ModelError(f"layer {layer.name!r}: threshold {threshold_max} needs "
                             f"{signed_bits(threshold_max)}-bit membranes; {bits} bits are "
                             f"too few")
        saturates = "can saturate" if bits < needed else "never saturates"
        report.update(v_bits=bits, v_bits_source=f"given: |h| <= {reach}, {saturates}")
        return bits

    def leak(self, layer, report, which="beta"):
        betas, low, high = _layer_betas(layer, which)
        if high - low <= EXACT_BETA_TOLERANCE:
            v_bits = self.options.v_bits or MAX_FRAC_BITS     # the longest shift worth trying
            leak, exact = quantize_leak(float(np.median(betas)), form=self.options.leak_form,
                                        frac_bits=self.options.leak_frac_bits, v_bits=v_bits)
        elif which == "alpha":
            # One synaptic leak per layer in the hardware: refuse rather than approximate.
            raise UnsupportedError(
                f"layer {layer.name!r}: its neurons' synaptic currents decay differently "
                f"(alpha {low:g} to {high:g}); hwgen has one synaptic leak per layer")
        elif self.options.leak_form == "shift":
            raise UnsupportedError(
                f"layer {layer.name!r}: its neurons decay differently (beta {low:g} to "
                f"{high:g}); a leak per neuron is a multiply: use the multiply leak form")
        else:
            leak, exact = quantize_betas(betas, frac_bits=self.options.leak_frac_bits)
        quantized = leak.betas if leak.kind == "per_neuron" else np.full(betas.shape, leak.beta)
        error = float(np.abs(betas - quantized).max()) if betas.size else 0.0
        entry = {which: high, "quantized": leak.to_json(), f"{which}_quantized": leak.beta,
                 "error": error, "exact": bool(exact)}
        if high - low > 1e-12:
            entry[f"{which}_range"] = [low, high]
        if leak.kind == "per_neuron":
            # the multipliers themselves are in the model; the report says what they span
            entry["quantized"] = {"kind": "per_neuron", "frac_bits": leak.frac_bits,
                                  "multiplier_range": [min(leak.multipliers),
                                                       max(leak.multipliers)],
                                  "distinct": len(set(leak.multipliers))}
            entry["beta_quantized_range"] = [float(quantized.min()), float(quantized.max())]
            entry["note"] = ("betas differ across neurons: one multiplier per neuron, "
                             f"(a_n * v) >> {leak.frac_bits}")
        report["leak" if which == "beta" else "synaptic_leak"] = entry
        return leak

    def synapse(self, layer, bound, report):
        """A current-based layer's synaptic leak (from alpha, as a membrane's from beta) and
        current width: the narrowest that never saturates, by the same bound as v (|L(i)|
        <= min(|i|, alpha*|i| + 1), each step adding at most ``bound``). Returns (leak,
        i_bits, the largest |i|: the membrane's largest input per step), or (None, None,
        ``bound``) for a voltage-based layer."""
        if layer.alpha is None:
            return None, None, bound
        synapse = self.leak(layer, report, "alpha")
        reach = 0
        for _ in range(self.T):
            leaked = reach if synapse.kind == "none" else min(reach, synapse.beta * reach + 1)
            reach = int(np.floor(leaked)) + bound
        i_bits = signed_bits(reach)
        if synapse.kind == "shift":
            i_bits = max(i_bits, synapse.shift)
        report.update(i_bits=i_bits, i_bits_source=f"auto: |i| <= {reach}, never saturates",
                      synapse_rounding=layer.synapse_rounding)
        # A joint rounding adds alpha*i[t-1] + I[t] unrounded: at most one more than i.
        return synapse, i_bits, reach + (layer.synapse_rounding == "joint")

    def neuron_op(self, layer, scale, bound, report):
        theta = np.asarray(layer.threshold, dtype=np.float64) * scale
        rounded = np.round(theta)
        if rounded.size and rounded.min() < 0:
            raise UnsupportedError(f"layer {layer.name!r}: threshold "
                                   f"{float(layer.threshold.min()):g} is negative; hwgen "
                                   f"thresholds are at least 0")
        threshold_max = int(rounded.max()) if rounded.size else 0
        report.update(scale=scale, threshold={
            "float": [float(layer.threshold.min()), float(layer.threshold.max())],
            "integer": [int(rounded.min()), threshold_max],
            "max_rounding_error": float(np.abs(rounded - theta).max()) / scale
            if rounded.size else 0.0})
        if rounded.size and np.any((rounded == 0) & (theta > 0)):
            report["threshold"]["note"] = "some positive thresholds round to 0"
        leak = self.leak(layer, report)
        synapse, i_bits, bound = self.synapse(layer, bound, report)
        v_bits = self.v_bits_for(layer, leak, bound, threshold_max,
                                 layer.order == "delayed" and layer.reset == "subtract", report)
        op = LIF(layer.name, rounded.astype(np.int64), leak=leak, fire=layer.fire,
                 reset=layer.reset, order=layer.order, v_bits=v_bits, synapse=synapse,
                 i_bits=i_bits,
                 synapse_rounding=None if synapse is None else layer.synapse_rounding)
        return op, 1

    def integrator_op(self, layer, bound, report):
        leak = self.leak(layer, report)
        synapse, i_bits, bound = self.synapse(layer, bound, report)
        v_bits = self.v_bits_for(layer, leak, bound, 0, False, report)
        return LI(layer.name, leak=leak, v_bits=v_bits, synapse=synapse, i_bits=i_bits,
                  synapse_rounding=None if synapse is None else layer.synapse_rounding), \
            1 << (v_bits - 1)


# --- the pass ---------------------------------------------------------------------------

def _encode(input_op, timesteps, inputs):
    from hwgen.compiler.ir import reference
    probe = Model("calibration", timesteps)
    probe.add(input_op)
    return reference.encode(probe, inputs)


def _agreement(a, b):
    return float(np.mean(a == b)) if a.size else 1.0


def quantize(network, options=None, calibration=None):
    """Quantize ``network`` into a validated integer :class:`~hwgen.compiler.ir.Model`.

    ``calibration``: optional inputs (as for :func:`hwgen.compiler.ir.reference.encode`) to choose scales
    on and to measure float-vs-integer agreement with.
    """
    options = (options or QuantizeOptions()).check()
    groups = _plan(network)
    builder = _Builder(network, options)
    model = Model(network.name, network.timesteps, metadata=dict(network.metadata))

    float_trace = spikes = None
    if calibration is not None:
        from hwgen.compiler.ir import float_reference
        input_layer = network.input
        spikes = _encode(Input(input_layer.name, input_layer.shape, input_layer.encoding,
                               input_layer.threshold), network.timesteps, calibration)
        float_trace = float_reference.run(network, spikes)

    layers_report = []
    decided, built = {}, set()        # a shared group's scale, decided at its first neuron
    for layer in network:
        if isinstance(layer, FloatInput):
            model.add(builder.input_op(layer))
        elif isinstance(layer, FloatFlatten) and layer.name not in _members(groups):
            model.add(builder.flatten_op(layer), layer.inputs)
        elif isinstance(layer, (FloatAdd, FloatMaxPool, FloatSpikeAnd)) \
                and layer.name not in _members(groups):
            model.add(builder.unscaled_op(layer), layer.inputs)
        elif isinstance(layer, FloatReadout):
            op = Readout(layer.name, layer.mode)
            model.add(op, layer.inputs)
        elif layer.name in groups and len(groups[layer.name].neurons) > 1:
            group = groups[layer.name]
            if id(group) not in decided:
                decided[id(group)] = _shared_scale(builder, group, float_trace is not None)
            weight_bits, exact, scale, how = decided[id(group)]
            # this neuron's ops: the group's layers up to it not built yet (the rest read
            # spikes that come later, e.g. of this very neuron)
            index = list(network.layers).index
            pending = [m for m in group.members if m.name not in built
                       and index(m.name) <= index(layer.name)]
            built.update(m.name for m in pending)
            ops, report = builder.build(_Group(layer, pending, group.sources), scale,
                                        weight_bits, exact)
            for op, source in ops:
                model.add(op, source)
            others = [n.name for n in group.neurons if n is not layer]
            layers_report.append({"layer": layer.name, "kind": "lif" if isinstance(
                layer, FloatNeuron) else "li", "scale": scale, "exact_integers": bool(exact),
                "scale_source": how, "shares_scale_with": others, **report})
        elif layer.name in groups:
            group = groups[layer.name]
            weight_bits, exact = builder.weight_bits_for(group)
            scale, how, tried = 1.0, "weights, bias and thresholds are integers: kept exactly", None
            weighted = group.weighted
            if not exact and weighted is None:
                how = "no weights to scale (pooled spike counts): scale 1, thresholds rounded"
            elif not exact:
                largest = max(float(np.abs(s.weight).max()) if s.weight.size else 0.0
                              for s in group.synapses)
                full = ((1 << (weight_bits - 1)) - 1) / largest if largest else 1.0
                scale = full
                how = f"max |w| = {largest:g} maps to the largest {weight_bits}-bit code"
                if len(group.synapses) > 1:
                    how += f" (one scale for the summed synapses {', '.join(report_names(group))})"
                if float_trace is not None and len(group.sources) == 1 \
                        and group.source in float_trace.spikes:
                    scale, how, tried = _calibrate(builder, group, full, weight_bits,
                                                   float_trace)
                elif float_trace is not None:
                    how += ("; not calibrated: the layer reads several producers or spike "
                            "counts, and calibration feeds it one spike input")
            ops, report = builder.build(group, scale, weight_bits, exact)
            for op, source in ops:
                model.add(op, source)
            report = {"layer": layer.name, "kind": "lif" if isinstance(layer, FloatNeuron)
                      else "li", "scale": scale, "exact_integers": bool(exact),
                      "scale_source": how, **report}
            if tried is not None:
                report["calibration_candidates"] = tried
            layers_report.append(report)
    try:
        model.validate()
    except ModelError as error:
        raise ModelError(f"quantized model: {error}") from None

    summary = {"method": "per-layer scale shared by weights, bias, threshold and membrane "
                         "(MINT-style); leak rounded to the nearest supported form",
               "weight_bits": options.weight_bits or "auto",
               "v_bits": options.v_bits or "auto",
               "leak_form": options.leak_form, "leak_frac_bits": options.leak_frac_bits,
               "layers": layers_report, "calibration": None}
    if float_trace is not None:
        summary["calibration"] = _end_to_end(model, network, calibration, spikes, float_trace,
                                             layers_report)
    model.metadata["quantization"] = summary
    return model


def _shared_scale(builder, group, calibrating):
    """(weight bits, exact?, scale, how) of a group read by several neuron layers: the
    largest |w| of all its synapses maps to the largest code; not calibrated."""
    weight_bits, exact = builder.weight_bits_for(group)
    names = ", ".join(repr(n.name) for n in group.neurons)
    if exact:
        return weight_bits, exact, 1.0, "weights, bias and thresholds are integers: kept exactly"
    if group.weighted is None:
        return weight_bits, exact, 1.0, ("no weights to scale (pooled spike counts): scale 1, "
                                         "thresholds rounded")
    largest = max(float(np.abs(s.weight).max()) if s.weight.size else 0.0
                  for s in group.synapses)
    scale = ((1 << (weight_bits - 1)) - 1) / largest if largest else 1.0
    how = (f"max |w| = {largest:g} maps to the largest {weight_bits}-bit code (one scale for "
           f"the summed synapses {', '.join(report_names(group))}, read by {names})")
    if calibrating:
        how += "; not calibrated: several neuron layers read these currents"
    return weight_bits, exact, scale, how


def report_names(group):
    return [repr(s.name) for s in group.synapses]


def _members(groups):
    return {m.name for group in groups.values() for m in group.members}


def _calibrate(builder, group, full, weight_bits, float_trace):
    """Try each clip candidate on the float model's own input spikes to this layer; keep the
    one whose output spikes agree best with the float model's (ties: less clipping)."""
    from hwgen.compiler.ir import reference
    source = builder.network[group.source]
    expected = float_trace.spikes.get(group.neuron.name)
    tried, best = [], None
    for fraction in CLIP_CANDIDATES:
        scale = full / fraction
        saved = dict(builder.types), dict(builder.bounds)
        probe = Model("calibration", builder.T)
        probe.add(Input(source.name, source.shape, "spikes"))
        ops, _ = builder.build(group, scale, weight_bits)
        builder.types, builder.bounds = saved
        for op, name in ops:
            probe.add(op, name)
        given = float_trace.spikes[source.name]
        trace = reference.run(probe, given.reshape(given.shape[:2] + tuple(source.shape)))
        if expected is not None:
            score = _agreement(trace.spikes[group.neuron.name], expected)
        else:   # an integrator: compare the final membranes' argmax (the readout)
            final = float_trace.potentials[group.neuron.name][:, -1]
            score = _agreement(np.argmax(trace.membranes[group.neuron.name], axis=1),
                               np.argmax(final, axis=1))
        tried.append({"clip": fraction, "scale": scale, "agreement": score})
        if best is None or score > best[1]:
            best = (scale, score, fraction)
    scale, score, fraction = best
    how = (f"calibrated: clipping weights at {fraction:g} x max|w| agreed best "
           f"({score:.4f} of output spikes on the float model's inputs)")
    return scale, how, tried


def _end_to_end(model, network, calibration, spikes, float_trace, layers_report):
    from hwgen.compiler.ir import reference
    trace = reference.run(model, spikes.reshape(spikes.shape[:2] + tuple(network.input.shape)))
    result = {"samples": int(spikes.shape[0]), "layers": {}}
    warnings = result["warnings"] = []
    for entry in layers_report:
        name = entry["layer"]
        if name in trace.spikes and name in float_trace.spikes:
            ours, theirs = trace.spikes[name], float_trace.spikes[name]
            differing = int(np.count_nonzero(ours != theirs))
            counted = int(np.count_nonzero(theirs))
            changed = differing / counted if counted else (0.0 if not differing else float("inf"))
            agreement = {"spike_agreement": _agreement(ours, theirs),
                         "changed_spikes": changed if np.isfinite(changed) else None,
                         "differing_spike_bits": differing, "float_spikes": counted,
                         "identical_samples": float(np.mean(np.all(
                             ours.reshape(len(ours), -1) == theirs.reshape(len(ours), -1),
                             axis=1))),
                         "float_spike_rate": float(theirs.mean()),
                         "integer_spike_rate": float(ours.mean())}
            entry["agreement"] = agreement
            result["layers"][name] = agreement
            if changed > SPIKE_CHANGE_WARNING:
                share = (f"{changed:.1%} of its spikes" if counted else
                         f"{differing} spikes where the float model has none")
                warnings.append(
                    f"quantization changes {share} in layer {name!r} on the "
                    f"{result['samples']} calibration samples ({differing} spike bits differ "
                    f"from the float model's {counted} spikes; more than "
                    f"{SPIKE_CHANGE_WARNING:.0%}): see the layer's quantization report")
    if trace.predictions is not None and float_trace.predictions is not None:
        result["prediction_agreement"] = _agreement(trace.predictions, float_trace.predictions)
    return result
