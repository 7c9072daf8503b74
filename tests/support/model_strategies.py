"""Hypothesis strategies for whole models, hardware configurations and inputs.

:func:`cases` draws a :class:`Case`: a chain ``input -> (synapse -> lif)+ -> readout`` over
everything ``hwgen compile`` accepts (the IR's rules, the hardware
configuration's ranges, :mod:`hwgen.compiler.passes.legalise`), pushed to its corners: layer
sizes of 1, W - 1, W, W + 1 and non-multiples of the TPPE count; thresholds of 0, 1, the
membrane maximum and beyond the accumulator's range; weights and biases at their extremes;
every leak form with extreme parameters (per-neuron multipliers too), every fire / reset /
order mode (read from the IR, so a new mode is drawn as soon as the IR lists it), voltage-
and current-based neurons (a synaptic leak of every form, current widths from 2 to 32, both
synaptic roundings); T from 1 to 16 and longer T in time chunks; every ``--set`` key;
all-silent, all-spiking and random inputs. A third of the cases start with convolutional
layers on a C x H x W (or C x L) input (:class:`ConvDraw`): any channel count, kernel,
stride, padding, dilation and groups, one-pixel maps, a sum pooling of the spikes before
the convolution, a second 1x1 convolution of the same spikes added into the neurons (a
residual of currents), a max pooling of the currents before the neurons, a flatten before
the fully-connected layers. A quarter of the cases then run an attention block
(:func:`attention_blocks`: SDSA's masks, or Q (K^T V) in 1 to 4 heads), with a membrane
shortcut of spikes or a residual stream of currents (the block's input current added
again, kept in the TPPEs). A quarter of the
fully-connected layers also sum in a synapse from the layer two before them (a residual
connection across layers, read from the spikes kept for it). The write bus's lanes
(``write_lanes``) and the smallest run called (``call_groups``: 1 makes every repeated
output position a call of one block, address generation) are drawn like every other
``--set`` key.

A case may carry one deliberate :class:`Flaw` (a value just outside what hwgen accepts).
Such a case must be refused by the IR or the compiler with a one-line :class:`HwgenError`
naming the parameter; every other case must compile and co-simulate bit-exact.
:func:`run_case` judges one case either way; the CI test (tests/sim/test_cosim_generated.py)
and the soak command (benchmarks/soak.py) both go through it.

Hypothesis is a test dependency of hwgen; this module is for tests and developer tools.
Tensor contents come from a drawn seed (numpy), so hypothesis shrinks a failing case by its
structure (fewer layers, smaller sizes and T, simpler modes) rather than weight by weight.
"""

import shlex
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

from attention_models import AttentionDraw, sdsa_block
from hwgen.compiler import hardware_config
from hwgen.errors import HwgenError
from hwgen.compiler.frontends import native
from hwgen.compiler.ir import (LIF, Add, Conv1d, Conv2d, Dense, Flatten, Input, Leak,
                               MaxPool2d, Model, Readout, SumPool2d)
from hwgen.compiler.ir.graph import MAX_TIMESTEPS
from hwgen.compiler.ir.widths import MAX_WEIGHT_BITS
from hwgen.compiler.ir.neuron import (FIRE_MODES, MAX_FRAC_BITS, ORDERS, RESET_MODES,
                                     SYNAPSE_ROUNDINGS, signed_range)

CHUNKS = (4, 8, 16, 32, 64)
MAX_TPPES = 32
MAX_T = 16              # T_c at most; the usual T
LONG_T = (17, 24, 32, 48, 64)   # longer T: run in time chunks (a few, to keep builds short)
WEIGHT_STYLES = ("random", "sparse", "extremes", "min", "max", "ones", "zero", "one_hot")
BIAS_STYLES = ("none", "zero", "random", "min", "max")
THRESHOLD_STYLES = ("random", "zero", "one", "vmax", "reachable", "beyond_acc", "mixed")
FLAWS = {
    # flaw -> words one of which the refusal must name
    "threshold_above_vmax": ("threshold",),
    "threshold_negative": ("threshold",),
    "acc_bits_too_small": ("acc_bits",),
    "acc_bits_beyond_hardware": ("acc_bits",),
    "weight_beyond_bits": ("weight",),
    "leak_shift_too_large": ("shift",),
    "leak_multiplier_too_large": ("multiplier",),
    "leak_frac_bits_out_of_range": ("frac_bits",),
    "leak_multipliers_count": ("multipliers",),
    "leak_per_neuron_multiplier_too_large": ("multipliers",),
    "synapse_shift_too_large": ("shift",),
    "timesteps_too_many": ("time steps", "timesteps"),
    "config_timesteps_differs": ("timesteps",),
    "lif_steps_not_divisor": ("lif_steps",),
    "time_chunk_not_divisor": ("time_chunk",),
    "sequential_with_time_chunk": ("time_chunk", "dataflow"),
    "early_exit_bad_rule": ("early_exit",),
    "config_weight_bits_small": ("weight_bits",),
    "config_acc_bits_small": ("acc_bits",),
    "config_v_bits_small": ("v_bits",),
    "program_depth_small": ("program_depth",),
    "weight_depth_small": ("weight_depth",),
    "spike_depth_small": ("spike_depth",),
    "tppes_out_of_range": ("tppes",),
    "chunk_not_power_of_two": ("chunk",),
    "fifo_depth_out_of_range": ("fifo_depth",),
    "join_unknown": ("join",),
    "fetch_width_unknown": ("fetch_width",),
    "write_lanes_unknown": ("write_lanes",),
    "call_groups_negative": ("call_groups",),
    "border_calls_not_a_flag": ("border_calls",),
    "mapping_unknown": ("mapping",),
    "unknown_parameter": ("unknown parameter",),
}


# The option whose refusals of unflawed cases are proper (its limits, named by it).
SHARED = "activation_memory=shared"


@dataclass(frozen=True)
class LayerDraw:
    """One dense -> lif layer as drawn; :meth:`Case.model` turns it into IR ops."""

    size: int
    weight_bits: int
    weight_style: str
    bias_style: str
    acc_slack: int          # acc_bits = the bits the sums need + acc_slack (capped at 32)
    v_bits: int
    threshold_style: str
    leak: tuple             # ("none",) | ("shift", k) | ("multiply", a, F)
                            # | ("per_neuron", F, style): a multiplier per neuron, drawn
                            # from ``seed`` ("random" in 0..2**F, or "extremes" 0, 1,
                            # 2**F - 1, 2**F)
    fire: str
    reset: str
    order: str
    seed: int
    synapse: tuple = None   # current-based: the synaptic leak, as ``leak``; None: voltage-based
    i_bits: int = None
    synapse_rounding: str = None
    recurrent: bool = False     # also weighs its own spikes of the step before (section 4c)
    skip: bool = False          # a residual: a synapse from the lif two layers back added in


@dataclass(frozen=True)
class ConvDraw:
    """One convolutional layer as drawn: ``conv`` (+ a 1x1 ``shortcut`` conv of the same
    spikes, added) -> lif, optionally after a sum pooling of the spikes. Its neurons are
    those of ``neurons`` (a :class:`LayerDraw` whose size is unused)."""

    out_channels: int
    kernel: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    groups: int
    pool: int               # sum pooling (kernel = stride) of the spikes first; 0: none
    shortcut: bool
    neurons: LayerDraw
    max_pool: int = 0       # a max pooling (kernel = stride) of the currents; 0: none
    per_channel: bool = False   # thresholds and leak multipliers per channel, as trained
    #                             convolutions have them (their pixels' runs can repeat)


@dataclass(frozen=True)
class Case:
    """One design to try: a model, ``--set`` overrides and inputs, all as plain data."""

    timesteps: int
    inputs: int
    encoding: str               # "spikes" or "if"
    encoder_threshold: int      # for "if"
    layers: tuple
    readout: bool
    overrides: tuple            # ("key=value", ...) exactly as for `hwgen compile --set`
    stimulus: tuple             # (("silent",) | ("spiking",) | ("random", density, seed), ...)
    flaw: str = None
    depth_pad: tuple = ()       # (("program_depth", extra), ...): explicit depths need + extra
                                # (spike_depth: need << extra, a power of two)
    wide_acc: bool = False      # acc_bits=32 explicitly (if the model's sums fit in 32 bits)
    input_shape: tuple = None   # (C, H, W) or (C, L) for convolutional layers first
    convs: tuple = ()           # ConvDraw, before the fully-connected ``layers``
    attention: AttentionDraw = None     # an SDSA block after the convolutions (on tokens)

    name = "generated"

    @property
    def expected_words(self):
        return FLAWS[self.flaw] if self.flaw else ()

    def model(self):
        """The IR model (raises :class:`ModelError` for flaws the IR itself refuses)."""
        model = Model(self.name, self.timesteps,
                      metadata={"generator": "sim.model_strategies", "case": repr(self)})
        threshold = self.encoding == "if" and self.encoder_threshold or None
        model.add(Input("input", self.input_shape or (self.inputs,), encoding=self.encoding,
                        threshold=threshold))
        previous, fan_in = "input", self.inputs
        for index, conv in enumerate(self.convs, start=1):
            previous = _conv_layer(model, index, conv, previous, self.timesteps)
        if self.attention is not None:
            previous = sdsa_block(model, "attn", previous, self.attention)
        if self.convs or self.attention is not None:
            fan_in = model.infer()[previous].size
            model.add(Flatten("flatten"), previous)
            previous = "flatten"
        first = len(self.convs) + 1
        spiking = [f"lif{i}" for i in range(1, first)]     # the conv layers' neurons
        for index, layer in enumerate(self.layers, start=first):
            dense, lif = _layer_ops(index, layer, fan_in, self.flaw if index == first else None,
                                    self.timesteps)
            model.add(dense, previous)
            into = dense.name
            if layer.skip and len(spiking) >= 2:
                into = _residual(model, index, layer, dense, spiking[-2]) or into
            model.add(lif, into)
            previous, fan_in = lif.name, layer.size
            spiking.append(lif.name)
        if self.readout:
            model.add(Readout("readout"), previous)
        return model.validate()

    def config(self, model=None):
        """The hardware configuration; explicit depths (``depth_pad``) and ``wide_acc`` need
        ``model``."""
        overrides = list(self.overrides)
        if self.wide_acc and model is not None and not any(
                o.startswith("acc_bits=") for o in overrides) and max(
                op.acc_bits for op in model.ops if isinstance(op, Dense)) <= 32:
            overrides.append("acc_bits=32")
        if self.depth_pad and model is not None:
            from hwgen.compiler.scheduler.program import compile_program
            needed = compile_program(model, hardware_config.load(None, overrides)).config
            overrides += [f"{name}={getattr(needed, name) << extra}" if name == "spike_depth"
                          else f"{name}={getattr(needed, name) + extra}"
                          for name, extra in self.depth_pad]
        return hardware_config.load(None, overrides)

    def all_overrides(self, model):
        """The ``--set`` list that reproduces :meth:`config` on the command line."""
        config = self.config(model)
        explicit = [name for name, _ in self.depth_pad]
        if self.wide_acc and config.acc_bits == 32:
            explicit.append("acc_bits")
        return list(self.overrides) + [f"{name}={getattr(config, name)}" for name in explicit]

    def input_array(self):
        """(samples, T, inputs) spikes, or (samples, inputs) integers for the "if" encoding."""
        rows = []
        for kind, *rest in self.stimulus:
            if self.encoding == "if":
                if kind == "silent":
                    rows.append(np.zeros(self.inputs, dtype=np.int64))
                elif kind == "spiking":
                    rows.append(np.full(self.inputs, self.encoder_threshold, dtype=np.int64))
                else:
                    density, seed = rest
                    rng = np.random.default_rng(seed)
                    values = rng.integers(0, self.encoder_threshold + 1, size=self.inputs)
                    rows.append(values * (rng.random(self.inputs) < density))
            else:
                shape = (self.timesteps, self.inputs)
                if kind == "silent":
                    rows.append(np.zeros(shape, dtype=np.uint8))
                elif kind == "spiking":
                    rows.append(np.ones(shape, dtype=np.uint8))
                else:
                    density, seed = rest
                    rng = np.random.default_rng(seed)
                    rows.append((rng.random(shape) < density).astype(np.uint8))
        return np.stack(rows)

    def describe(self):
        layers = " -> ".join(
            f"{l.size}[{_leak_label(l.leak)}-{l.fire}-{l.reset}-{l.order} v{l.v_bits} "
            + (f"syn:{_leak_label(l.synapse)}-{l.synapse_rounding} i{l.i_bits} "
               if l.synapse else "")
            + ("rec " if l.recurrent else "") + ("skip " if l.skip else "")
            + f"w{l.weight_bits}:{l.weight_style} th:{l.threshold_style}]" for l in self.layers)
        convs = "".join(
            f"conv{c.out_channels}k{'x'.join(map(str, c.kernel))}s{max(c.stride)}"
            f"p{max(c.padding)}d{max(c.dilation)}g{c.groups}"
            + (f"+pool{c.pool}" if c.pool else "") + ("+1x1" if c.shortcut else "")
            + (f"+max{c.max_pool}" if c.max_pool else "") + " -> "
            for c in self.convs)
        if self.attention is not None:
            convs += self.attention.describe() + " -> "
        extra = f" flaw={self.flaw}" if self.flaw else ""
        shape = "x".join(map(str, self.input_shape)) if self.input_shape else self.inputs
        return (f"T={self.timesteps} in={shape}({self.encoding}) -> {convs}{layers} "
                f"set={','.join(self.overrides) or '-'}{extra}")


def _leak_label(leak):
    return {"none": "if", "shift": "shift{1}", "multiply": "mul{1}/{2}",
            "per_neuron": "each/{1}:{2}"}[leak[0]].format(*leak)


def _weights(rng, style, shape, b):
    """Weights of ``shape`` in ``style`` (WEIGHT_STYLES), ``b`` bits; one_hot: row i has
    its only weight, the largest, at column i mod columns."""
    wlo, whi = signed_range(b)
    if style == "random":
        weight = rng.integers(wlo, whi + 1, size=shape)
    elif style == "sparse":
        weight = rng.integers(wlo, whi + 1, size=shape) * (rng.random(shape) < 0.1)
    elif style == "extremes":
        weight = rng.choice([wlo, whi, 0], size=shape)
    elif style == "min":
        weight = np.full(shape, wlo)
    elif style == "max":
        weight = np.full(shape, whi)
    elif style == "ones":
        weight = np.ones(shape, dtype=np.int64)
    elif style == "zero":
        weight = np.zeros(shape, dtype=np.int64)
    else:   # one_hot: neuron i listens to input i mod fan_in only (identity for square)
        weight = np.zeros(shape, dtype=np.int64)
        flat = weight.reshape(shape[0], -1)
        flat[np.arange(shape[0]), np.arange(shape[0]) % flat.shape[1]] = whi
    return weight.astype(np.int64)


def _layer_ops(index, layer, fan_in, flaw, T):
    rng = np.random.default_rng(layer.seed)
    n, b = layer.size, layer.weight_bits
    whi = signed_range(b)[1]
    weight = _weights(rng, layer.weight_style, (n, fan_in + (n if layer.recurrent else 0)), b)
    if flaw == "weight_beyond_bits":
        weight[0, 0] = whi + 1
    sums = np.abs(weight).sum(axis=1)
    acc_bits = min(32, max(2, int(sums.max()).bit_length() + 1) + layer.acc_slack)
    if flaw == "acc_bits_beyond_hardware":      # the IR takes up to 48, the hardware 32
        acc_bits = 33 + layer.acc_slack % 16
    acc_hi = signed_range(acc_bits)[1]
    room = np.maximum(acc_hi - sums, 0)             # the largest |bias| that still fits
    bias = {"none": None, "zero": np.zeros(n, dtype=np.int64),
            "random": (rng.random(n) * (room + 1)).astype(np.int64) * rng.choice([-1, 1], n),
            "min": -room, "max": room}[layer.bias_style]
    if flaw == "acc_bits_too_small":
        need = int((sums + (np.abs(bias) if bias is not None else 0)).max()).bit_length() + 1
        acc_bits = need - 1
        if need - 1 < 2:    # nothing to overflow: make a sum that needs 3 bits
            bias = np.full(n, 3, dtype=np.int64)
            acc_bits = 2
    dense = Dense(f"fc{index}", weight, bias, weight_bits=b, acc_bits=acc_bits,
                  recurrent=layer.recurrent)
    peak = int((sums + (np.abs(bias) if bias is not None else 0)).max())
    return dense, _lif_op(f"lif{index}", layer, n, peak, acc_bits, flaw, T, rng)


def _lif_op(name, layer, n, peak, acc_bits, flaw, T, rng, channels=None):
    """The lif op of ``n`` neurons of ``layer`` (its threshold style, leak, modes); ``peak``:
    the largest current one step can bring; ``channels``: thresholds and per-neuron leak
    multipliers the same at every position of a channel (C order), if given."""

    def per_channel(values):
        if channels is None:
            return values
        return np.repeat(np.asarray(values).reshape(channels, -1)[:, 0], n // channels)

    v = layer.v_bits
    vmax = signed_range(v)[1]
    style = layer.threshold_style
    if style == "random":
        theta = rng.integers(0, vmax + 1, size=n)
    elif style == "zero":
        theta = np.zeros(n, dtype=np.int64)
    elif style == "one":
        theta = np.ones(n, dtype=np.int64)
    elif style == "vmax":
        theta = np.full(n, vmax)
    elif style == "reachable":
        theta = rng.integers(0, max(1, peak * rng.integers(1, T + 1)) + 1, size=n)
    elif style == "beyond_acc":
        low = min(vmax, signed_range(acc_bits)[1] + 1)
        theta = rng.integers(low, vmax + 1, size=n)
    else:   # mixed: every neuron its own corner
        corners = [0, 1, vmax, min(vmax, peak), min(vmax, peak + 1),
                   min(vmax, 1 << max(0, acc_bits - 1)), min(vmax, 1 << (acc_bits + 1)) ]
        theta = rng.choice(corners, size=n)
    theta = per_channel(np.minimum(theta, vmax).astype(np.int64))
    if flaw == "threshold_above_vmax":
        theta[-1] = vmax + 1
    elif flaw == "threshold_negative":
        theta[0] = -1
    kind, *parameters = layer.leak
    if flaw == "leak_shift_too_large":
        leak = Leak.by_shift(v + 1)
    elif flaw == "leak_multiplier_too_large":
        leak = Leak.by_multiply(3, 1)
    elif flaw == "leak_frac_bits_out_of_range":
        leak = Leak.by_multiply(1, MAX_FRAC_BITS + 1)
    elif kind == "shift":
        leak = Leak.by_shift(min(parameters[0], v))
    elif kind == "multiply":
        leak = Leak.by_multiply(*parameters)
    elif kind == "per_neuron":
        frac, style = parameters
        top = 1 << frac
        if style == "extremes":
            multipliers = rng.choice([0, 1, top - 1, top], size=n)
        else:
            multipliers = rng.integers(0, top + 1, size=n)
        leak = Leak.per_neuron(per_channel(multipliers), frac)
    else:
        leak = Leak.none()
    if flaw == "leak_multipliers_count":
        leak = Leak.per_neuron(np.ones(n + 1, dtype=np.int64), 2)
    elif flaw == "leak_per_neuron_multiplier_too_large":
        leak = Leak.per_neuron(np.r_[np.ones(n - 1, dtype=np.int64), 5], 2)
    synapse, i_bits, rounding = None, layer.i_bits, layer.synapse_rounding
    if flaw == "synapse_shift_too_large":
        i_bits = i_bits or 8
        synapse, rounding = Leak.by_shift(i_bits + 1), rounding or "separate"
    elif layer.synapse is not None:
        kind, *parameters = layer.synapse
        synapse = (Leak.by_shift(min(parameters[0], i_bits)) if kind == "shift" else
                   Leak.by_multiply(*parameters) if kind == "multiply" else Leak.none())
    return LIF(name, theta, leak=leak, fire=layer.fire, reset=layer.reset,
               order=layer.order, v_bits=v, synapse=synapse,
               i_bits=i_bits if synapse is not None else None,
               synapse_rounding=rounding if synapse is not None else None)


def _residual(model, index, layer, dense, source):
    """Add a synapse from ``source`` (the lif two layers back) summed with ``dense``'s
    current, as a residual connection; return the add's name. Its weights are -1..1, so
    the summed current stays within the accelerator's 32-bit accumulator (no residual, and
    None, where the layer's own sums already fill it)."""
    rng = np.random.default_rng(layer.seed + 1)
    fan_in = model.infer()[source].size
    if dense.accumulator_bound() + fan_in > signed_range(32)[1]:
        return None                     # the sum could need more than 32 bits: no residual
    weight = rng.integers(-1, 2, (layer.size, fan_in))
    if len(model.infer()[source].shape) > 1:        # a convolutional layer's neurons
        model.add(Flatten(f"skip{index}.flatten"), source)
        source = f"skip{index}.flatten"
    model.add(Dense(f"skip{index}", weight, weight_bits=2,
                    acc_bits=max(2, fan_in.bit_length() + 1)), source)
    model.add(Add(f"residual{index}"), [dense.name, f"skip{index}"])
    return f"residual{index}"


def _conv_layer(model, index, conv, previous, T):
    """Add ``conv``'s ops after ``previous`` to ``model``; return its lif op's name."""
    layer = conv.neurons
    rng = np.random.default_rng(layer.seed)
    channels = model.infer()[previous].shape[0]
    b = layer.weight_bits
    source, magnitude = previous, 1
    if conv.pool:
        model.add(SumPool2d(f"pool{index}", conv.pool), previous)
        source, magnitude = f"pool{index}", conv.pool * conv.pool
    # Unrolled, a pooled input sums up to 4 of a weight and a shortcut adds its own: keep
    # the composed weights within the accelerator's MAX_WEIGHT_BITS (declared width b).
    drawn_bits = min(b, MAX_WEIGHT_BITS - (2 if conv.pool else 0) - (1 if conv.shortcut else 0))
    weight = _weights(rng, layer.weight_style,
                      (conv.out_channels, channels // conv.groups, *conv.kernel), drawn_bits)
    Conv = Conv2d if len(conv.kernel) == 2 else Conv1d
    sums = np.abs(weight).reshape(conv.out_channels, -1).sum(axis=1) * magnitude
    shortcut = None
    if conv.shortcut:
        shortcut = _weights(rng, layer.weight_style,
                            (conv.out_channels, channels, *(1,) * len(conv.kernel)), drawn_bits)
        sums = sums + np.abs(shortcut).reshape(conv.out_channels, -1).sum(axis=1) * magnitude
    acc_bits = min(32, max(2, int(sums.max()).bit_length() + 1) + layer.acc_slack % 4)
    room = np.maximum(signed_range(acc_bits)[1] - sums, 0)
    bias = {"none": None, "zero": np.zeros(conv.out_channels, dtype=np.int64),
            "random": (rng.random(conv.out_channels) * (room + 1)).astype(np.int64)
            * rng.choice([-1, 1], conv.out_channels),
            "min": -room, "max": room}[layer.bias_style]
    # the IR's bound for a current input is |w| * 2**(bits-1), wider than ``sums``
    declared = 32 if conv.pool else acc_bits
    model.add(Conv(f"conv{index}", weight, bias, stride=conv.stride, padding=conv.padding,
                   dilation=conv.dilation, groups=conv.groups, weight_bits=b,
                   acc_bits=declared), source)
    into = f"conv{index}"
    if shortcut is not None:
        model.add(Conv(f"short{index}", shortcut, weight_bits=b, acc_bits=declared,
                       stride=conv.stride), source)
        model.add(Add(f"add{index}"), [f"conv{index}", f"short{index}"])
        into = f"add{index}"
    if conv.max_pool:                       # of the currents, before the neurons
        model.add(MaxPool2d(f"maxpool{index}", conv.max_pool), into)
        into = f"maxpool{index}"
    n = model.infer()[into].size
    peak = int((sums + (np.abs(bias) if bias is not None else 0)).max())
    model.add(_lif_op(f"lif{index}", layer, n, peak, acc_bits, None, T, rng,
                      conv.out_channels if conv.per_channel else None), into)
    return f"lif{index}"


# ---------------------------------------------------------------------------- strategies

def _corner_or_any(corners, lo, hi):
    """Mostly the listed corners (clipped into [lo, hi]), sometimes anything in between."""
    corners = sorted({min(hi, max(lo, c)) for c in corners})
    return st.one_of(st.sampled_from(corners), st.integers(lo, hi))


@st.composite
def leaks(draw, v_bits):
    kind = draw(st.sampled_from(("none", "shift", "multiply", "per_neuron")))
    if kind == "shift":
        return ("shift", draw(_corner_or_any([1, 2, v_bits - 1, v_bits], 1, v_bits)))
    if kind == "multiply":
        frac = draw(_corner_or_any([1, 2, 8, MAX_FRAC_BITS], 1, MAX_FRAC_BITS))
        top = 1 << frac
        return ("multiply", draw(_corner_or_any([0, 1, top - 1, top], 0, top)), frac)
    if kind == "per_neuron":
        frac = draw(_corner_or_any([1, 2, 8, MAX_FRAC_BITS], 1, MAX_FRAC_BITS))
        return ("per_neuron", frac, draw(st.sampled_from(("random", "extremes"))))
    return ("none",)


@st.composite
def layers(draw, chunk, tppes, timesteps, max_size):
    size = draw(sizes(chunk, tppes, max_size))
    v_bits = draw(_corner_or_any([2, 3, 8, 16, 31, 32], 2, 32))
    return LayerDraw(
        size=size,
        weight_bits=draw(_corner_or_any([2, 3, 4, 8, 15, 16], 2, 16)),
        weight_style=draw(st.sampled_from(WEIGHT_STYLES)),
        bias_style=draw(st.sampled_from(BIAS_STYLES)),
        acc_slack=draw(st.one_of(st.just(0), st.integers(0, 3), st.integers(0, 32))),
        v_bits=v_bits,
        threshold_style=draw(st.sampled_from(THRESHOLD_STYLES)),
        leak=draw(leaks(v_bits)),
        fire=draw(st.sampled_from(FIRE_MODES)),
        reset=draw(st.sampled_from(RESET_MODES)),
        order=draw(st.sampled_from(ORDERS)),
        seed=draw(st.integers(0, 2**32 - 1)),
        recurrent=draw(st.integers(0, 4)) == 4,
        **draw(synapses()),
        skip=draw(st.integers(0, 3)) == 3)


@st.composite
def synapses(draw):
    """A third of the layers current-based: a synaptic leak of any form, a current width
    from 2 to 32, either rounding."""
    if draw(st.integers(0, 2)):
        return {}
    i_bits = draw(_corner_or_any([2, 3, 8, 16, 31, 32], 2, 32))
    return {"synapse": draw(leaks(i_bits)), "i_bits": i_bits,
            "synapse_rounding": draw(st.sampled_from(SYNAPSE_ROUNDINGS))}


def sizes(chunk, tppes, max_size):
    corners = [1, chunk - 1, chunk, chunk + 1, tppes - 1, tppes + 1, 2 * chunk + 1,
               tppes * 2 + 1]
    return _corner_or_any([c for c in corners if c >= 1], 1, max_size)


@st.composite
def stimuli(draw, timesteps):
    """All-silent and all-spiking samples (each usually present) and random ones."""
    chosen = []
    if draw(st.integers(0, 4)):
        chosen.append(("silent",))
    if draw(st.integers(0, 4)):
        chosen.append(("spiking",))
    count = draw(st.integers(0 if chosen else 1, 4))
    for _ in range(count):
        density = draw(st.sampled_from((0.02, 0.1, 0.3, 0.5, 0.8, 0.97)))
        chosen.append(("random", density, draw(st.integers(0, 2**32 - 1))))
    return tuple(chosen)


@st.composite
def conv_fronts(draw, chunk, tppes, timesteps, count=None):
    """(input shape, ConvDraws): one or two (``count``, if given) convolutional layers on a
    C x H x W (or C x L) input, every parameter at its corners, at most about 200 neurons
    a layer."""
    # the typical front, as a corner of its own: two 3 x 3 convolutions of stride 1 with
    # "same" padding and dense kernels on a map with interior pixels, no pooling, a chunk
    # of output channels each (so the second reads whole pixels per chunk): its border
    # pixels call an interior pixel's block with forced-zero masks
    # (compiler/scheduler/windows.py)
    typical = draw(st.integers(0, 3)) == 0
    dims = 2 if typical else draw(st.sampled_from((2, 2, 1)))
    channels = draw(_corner_or_any([1, 2, 3], 1, 6))
    # (a typical map small enough for a chunk of channels per pixel within ~200 neurons)
    side = max(3, min(7, int(np.sqrt(200 // chunk))))
    shape = [channels] + [draw(st.integers(3, side) if typical else
                               _corner_or_any([1, 2, 4, 5], 1, 7 if dims == 2 else 12))
                          for _ in range(dims)]
    input_shape, convs = tuple(shape), []
    for _ in range(count or (2 if typical else draw(st.integers(1, 2)))):
        pool = 0
        if not typical and dims == 2 and min(shape[1:]) >= 2 and draw(st.integers(0, 3)) == 0:
            pool = 2
            shape = [shape[0]] + [n // 2 for n in shape[1:]]
        kernel, stride, padding, dilation = [], [], [], []
        for n in shape[1:]:
            k = 3 if typical else draw(_corner_or_any([1, 3], 1, 3))
            d = 1 if typical else draw(st.sampled_from((1, 1, 2)))
            p = 1 if typical else draw(st.integers(0, k // 2))
            while n + 2 * p - d * (k - 1) < 1:        # a window larger than its input
                if d > 1:
                    d = 1
                else:
                    k -= 1
                    p = min(p, k // 2)
            kernel.append(k), dilation.append(d), padding.append(p)
            stride.append(1 if typical else draw(_corner_or_any([1, 2], 1, 3)))
        groups = 1 if typical else draw(st.sampled_from([g for g in (1, 1, 2, 3)
                                                         if shape[0] % g == 0]))
        # 4 and 8 channels fill whole chunks of 4 and 8: pixels a chunk apart in the next
        # layer's input, whose runs of neurons can repeat (called blocks)
        out_channels = chunk if typical else groups * draw(
            _corner_or_any([1, 2, 4, 8], 1, max(1, 8 // groups)))
        out = [(n + 2 * p - d * (k - 1) - 1) // s + 1 for n, k, s, p, d in
               zip(shape[1:], kernel, stride, padding, dilation)]
        while out_channels * int(np.prod(out)) > 200 and out_channels > groups:
            out_channels -= groups
        # a 1x1 shortcut of the same spikes needs the same output size ("same" padding)
        same = all(2 * p == d * (k - 1) for k, p, d in zip(kernel, padding, dilation))
        neurons = draw(layers(chunk, tppes, timesteps, 1))
        shortcut = same and draw(st.integers(0, 2)) == 0
        max_pool = 0
        if not typical and dims == 2 and min(out) >= 2 and draw(st.integers(0, 2)) == 0:
            max_pool = 2
            out = [n // 2 for n in out]
        per_channel = draw(st.integers(0, 3)) > 0
        neurons = replace(neurons, recurrent=False)
        if typical:             # with a kernel of its own at every position
            neurons = replace(neurons, weight_style="random")
        convs.append(ConvDraw(out_channels, tuple(kernel), tuple(stride), tuple(padding),
                              tuple(dilation), groups, pool, shortcut, neurons, max_pool,
                              per_channel))
        shape = [out_channels] + out
    return input_shape, tuple(convs)


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def cases(draw, *, max_layers=4, max_size=70, flaw_weight=0.1, max_tppes=MAX_TPPES,
          shared=False):
    """A :class:`Case`. ``flaw_weight``: about the fraction of cases with a :class:`Flaw`
    (drawn from :data:`FLAWS`); ``max_tppes`` and ``max_size`` bound the design (and so
    its Verilator build time); ``shared``: always ``activation_memory=shared`` with the
    settings and model shape it needs (T at most 16; with ``flaw_weight`` 0)."""
    flaw = None
    if flaw_weight >= 1 or (flaw_weight > 0 and draw(st.floats(0, 1)) < flaw_weight):
        flaw = draw(st.sampled_from(sorted(FLAWS)))
    T = draw(_corner_or_any([1, 2, 3, 4, 8, 15, 16], 1, MAX_T))
    if not shared and draw(st.integers(0, 7)) == 7:     # shrinks (towards 0) to the usual T
        T = draw(st.sampled_from(LONG_T))
    if flaw == "timesteps_too_many":
        T = draw(st.integers(MAX_TIMESTEPS + 1, 2 * MAX_TIMESTEPS))
    chunk = draw(st.sampled_from(CHUNKS))
    tppes = draw(_corner_or_any([1, 2, 3, 4, 7, 16, max_tppes], 1, max_tppes))
    overrides = [f"tppes={tppes}", f"chunk={chunk}"]
    # Steps processed together: the whole of T (if it fits), any divisor up to MAX_T, or
    # the temporal-sequential baseline.
    fitting = [d for d in _divisors(T) if d <= MAX_T]
    lanes = draw(st.sampled_from(["auto", "sequential"] + fitting))
    if lanes == "sequential":
        overrides.append("dataflow=sequential")
        lanes = 1
    elif lanes == "auto":
        lanes = fitting[-1]
    else:
        overrides.append(f"time_chunk={lanes}")
    lif_steps = draw(st.sampled_from(["1", "auto"] + [str(d) for d in _divisors(lanes)]))
    readout = draw(st.booleans())
    if readout and lanes < T and draw(st.integers(0, 2)) == 2:     # shrinks to no exit
        overrides.append(f"early_exit={draw(st.sampled_from(['certain', '1', '2']))}")
    if lif_steps != "1":
        overrides.append(f"lif_steps={lif_steps}")
    fifo = draw(_corner_or_any([2, 3, 4, 64], 2, 64))
    if fifo != 4:
        overrides.append(f"fifo_depth={fifo}")
    join = draw(st.sampled_from(["default", "dual", "laggy", "laggy"]))
    if join != "default":
        overrides.append(f"join={join}")
    if draw(st.booleans()):
        overrides.append(f"timesteps={T}")

    inputs = draw(sizes(chunk, tppes, max_size))
    drawn = list(draw(layers(chunk, tppes, T, max_size))
                 for _ in range(draw(st.integers(1, max_layers))))
    if any(layer.recurrent for layer in drawn):
        # residual connections and recurrent layers are not combined by the accelerator
        drawn = [replace(layer, skip=False) for layer in drawn]
    drawn = tuple(drawn)
    # Explicit widths at least what the model needs: wider hardware must compute the same.
    need_w = max(l.weight_bits for l in drawn)
    need_v = max(l.v_bits for l in drawn)
    if draw(st.booleans()):
        overrides.append(f"weight_bits={draw(st.integers(need_w, 16))}")
    if draw(st.booleans()):
        overrides.append(f"v_bits={draw(st.integers(need_v, 32))}")
    wide_acc = draw(st.booleans())
    pad = tuple((name, draw(st.sampled_from([0, 1, 5]))) for name in
                ("program_depth", "weight_depth") if draw(st.booleans()))
    if draw(st.booleans()):     # spike_depth stays a power of two: need << 0 or 1
        pad += (("spike_depth", draw(st.integers(0, 1))),)

    # Drawn late, so that the draws before it (and the designs of a seed) stay as they were.
    fetch_width = draw(st.sampled_from(["default", 2, 4, 1, 8]))
    if fetch_width != "default":
        overrides.append(f"fetch_width={fetch_width}")
    overrides += _flaw_overrides(flaw, T, tppes, chunk, need_w, need_v)
    if flaw in ("program_depth_small", "weight_depth_small", "spike_depth_small"):
        pad = tuple(p for p in pad if p[0] != flaw[:-len("_small")])
    encoding = draw(st.sampled_from(("spikes", "spikes", "spikes", "if")))
    encoder = draw(_corner_or_any([1, 2, 255, 1 << 16], 1, 1 << 16)) if encoding == "if" else 0
    stimulus = draw(stimuli(T))
    input_shape, convs = None, ()
    if draw(st.integers(0, 2)) == 2:            # shrinks to no convolution
        input_shape, convs = draw(conv_fronts(chunk, tppes, T))
        inputs = int(np.prod(input_shape))
        overrides = _cover_convs(overrides, convs, flaw)
    # Drawn last, as above. An attention block keeps its Q, K, V and input layers (region
    # pairs), which the accelerator does not combine with recurrent layers.
    attention = None
    if draw(st.integers(0, 3)) == 3 and not any(layer.recurrent for layer in drawn):
        attention = draw(attention_blocks())
        if input_shape is None:                 # tokens: features x one or two dimensions
            input_shape = (draw(_corner_or_any([1, 2, 4, 8], 1, 8)),
                           *(draw(_corner_or_any([1, 4], 1, 5))
                             for _ in range(draw(st.integers(1, 2)))))
            inputs = int(np.prod(input_shape))
        overrides = _raise_widths(overrides, flaw, attention.v_bits,
                                  attention.weight_bits)
        if attention.mask == "ktv":
            # Q (K^T V) multiplies by kept currents per step, which only the dual join does
            overrides = [o for o in overrides if o != "join=laggy"]
    # Drawn last, as above: the write bus's lanes (spike buffers banked by chunk).
    write_lanes = draw(st.sampled_from(["default", 2, 4, 8, 1]))
    if write_lanes != "default" and flaw != "write_lanes_unknown":
        overrides.append(f"write_lanes={write_lanes}")
    # Drawn last, as above: address generation. Generated layers are small, so the
    # default (runs of 48 groups or more) rarely calls; 1 calls every repeated run.
    call_groups = draw(st.sampled_from(["default", 1, 1, 0]))
    if call_groups != "default" and flaw != "call_groups_negative":
        overrides.append(f"call_groups={call_groups}")
    # The typical convolutions (conv_fronts) keep padding as forced-zero masks and mostly
    # get whole positions per TPPE, so that their border pixels call a block masked.
    typical = len(convs) == 2 and all(conv.kernel == (3, 3) and conv.padding == (1, 1)
                                      and conv.stride == (1, 1) for conv in convs)
    # padding as forced-zero masks (on by default): off, to keep border pixels inline
    if not typical and draw(st.sampled_from(["default", "default", 0])) == 0 \
            and flaw != "border_calls_not_a_flag":
        overrides.append("border_calls=0")
    # how layers of positions are cut over the TPPEs (whole positions: one block each;
    # tiles: a layer whose positions all call one block runs in step from it)
    mapping = "tiles" if shared else draw(st.sampled_from(
        ["positions", "default", "tiles"] if typical else
        ["default", "default", "neurons", "positions", "tiles"]))
    if mapping != "default" and flaw != "mapping_unknown":
        overrides.append(f"mapping={mapping}")
    # Drawn last, as above: a buffer of one neuron's currents in front of the LIF stage.
    if draw(st.sampled_from(["default", "default", 1])) == 1:
        overrides.append("lif_buffer=1")
    # Drawn last, as above: region 1 of the spike buffers held once for all TPPEs. A
    # model that cannot share it is refused, naming the option (check_refusal).
    if shared or (mapping == "tiles"
                  and draw(st.sampled_from(["default", "shared"])) == "shared"):
        overrides.append("activation_memory=shared")
        # Mostly with what the option needs (else nearly every draw is refused by one of
        # its limits): convolutions, no recurrent layers, shortcuts or attention (their
        # region pairs stay per TPPE), and after 2 convolutions 1 dense layer, so that the
        # one odd layer is the second convolution, which may run in step.
        if flaw is None and T <= MAX_T and (
                shared or draw(st.sampled_from(["sharable", "as drawn"])) == "sharable"):
            if len(convs) < 2:      # a dense layer 1 would not run in step
                input_shape, convs = draw(conv_fronts(chunk, tppes, T, count=2))
                inputs = int(np.prod(input_shape))
                overrides = _cover_convs(overrides, convs, flaw)
            overrides = _sharable(overrides, draw(st.sampled_from(
                [p for p in (2, 4, 8, 16, 32) if p <= max(2, max_tppes)])))
            drawn = tuple(replace(layer, recurrent=False, skip=False) for layer in drawn[:1])
            convs = tuple(replace(conv, shortcut=False) for conv in convs)
            attention = None
    return Case(T, inputs, encoding, encoder, drawn, readout,
                tuple(_dedupe(overrides)), stimulus, flaw, pad, wide_acc, input_shape, convs,
                attention)


@st.composite
def attention_blocks(draw):
    """An :class:`AttentionDraw`: every threshold style for Q, K, V, the attention and the
    output neurons (all-silent and all-spiking ones among them), SDSA's two masks and
    Q (K^T V) in 1 to 4 heads, with and without the membrane shortcut."""
    return AttentionDraw(
        seed=draw(st.integers(0, 2**16)), weight_bits=draw(st.integers(2, 6)),
        thresholds=tuple(draw(st.sampled_from(["zero", "one", "typical", "vmax"]))
                         for _ in range(5)),
        leak_shift=draw(st.integers(0, 3)), fire=draw(st.sampled_from(["ge", "gt"])),
        reset=draw(st.sampled_from(["zero", "subtract", "none"])),
        order=draw(st.sampled_from(["same_step", "delayed"])),
        v_bits=draw(st.integers(6, 12)),
        mask=draw(st.sampled_from(["feature", "hadamard", "ktv"])),
        shortcut=draw(st.booleans()), stream=draw(st.booleans()),
        heads=draw(st.integers(1, 4)), kv_stride=draw(st.sampled_from([1, 1, 2])))


def _sharable(overrides, tppes):
    """``overrides`` with the settings ``activation_memory=shared`` needs (join 'dual',
    fetch_width 1, write_lanes 1, one time chunk: the whole of T, which the caller
    checks fits) and ``tppes`` TPPEs, a power of two >= 2."""
    refused = ("join=", "fetch_width=", "write_lanes=", "dataflow=", "time_chunk=",
               "early_exit=", "lif_steps=", "tppes=")
    return [f"tppes={tppes}"] + [o for o in overrides if not o.startswith(refused)]


def _flaw_overrides(flaw, T, tppes, chunk, need_w, need_v):
    if flaw == "config_timesteps_differs":
        return [f"timesteps={T % 16 + 1}"]
    if flaw == "lif_steps_not_divisor":
        return [f"lif_steps={T + 1}"]
    if flaw == "time_chunk_not_divisor":
        return [f"time_chunk={T + 1}"]
    if flaw == "sequential_with_time_chunk":
        return ["dataflow=sequential", "time_chunk=2"]
    if flaw == "early_exit_bad_rule":
        return ["early_exit=0"]
    if flaw == "config_weight_bits_small":
        return [f"weight_bits={need_w - 1}"] if need_w > 2 else ["weight_bits=1"]
    if flaw == "config_acc_bits_small":
        return ["acc_bits=1"]
    if flaw == "config_v_bits_small":
        return [f"v_bits={need_v - 1}"] if need_v > 2 else ["v_bits=1"]
    if flaw == "program_depth_small":
        return ["program_depth=1"]
    if flaw == "weight_depth_small":
        return ["weight_depth=0"]
    if flaw == "spike_depth_small":
        return [f"spike_depth={chunk // 2}"]
    if flaw == "tppes_out_of_range":
        return ["tppes=0" if tppes % 2 else f"tppes={MAX_TPPES + 1}"]
    if flaw == "chunk_not_power_of_two":
        return [f"chunk={chunk + 2}"]
    if flaw == "fifo_depth_out_of_range":
        return ["fifo_depth=1" if tppes % 2 else "fifo_depth=65"]
    if flaw == "join_unknown":
        return ["join=lazy" if tppes % 2 else "join=0"]
    if flaw == "fetch_width_unknown":
        return ["fetch_width=3" if tppes % 2 else "fetch_width=16"]
    if flaw == "write_lanes_unknown":
        return ["write_lanes=3" if tppes % 2 else "write_lanes=16"]
    if flaw == "call_groups_negative":
        return ["call_groups=-1"]
    if flaw == "border_calls_not_a_flag":
        return ["border_calls=2" if tppes % 2 else "border_calls=yes"]
    if flaw == "mapping_unknown":
        return ["mapping=pixels" if tppes % 2 else "mapping=1"]
    if flaw == "unknown_parameter":
        return ["tppe=2"]
    return []


def _raise_widths(overrides, flaw, v_bits, weight_bits):
    """Explicit widths drawn for the fully-connected layers, raised to the ``v_bits`` and
    ``weight_bits`` the layers before them need (unless too small is the flaw);
    ``weight_bits`` None leaves the weight width to the compiler."""
    result = []
    for item in overrides:
        key, value = item.split("=", 1)
        if key == "v_bits" and flaw != "config_v_bits_small":
            item = f"v_bits={max(int(value), v_bits)}"
        elif key == "weight_bits" and flaw != "config_weight_bits_small":
            if weight_bits is None:
                continue
            item = f"weight_bits={max(int(value), weight_bits)}"
        result.append(item)
    return result


def _cover_convs(overrides, convs, flaw):
    """:func:`_raise_widths` for convolutional layers; an unrolled sum pooling or shortcut
    adds kernel weights up, so with one the weight width is left to the compiler."""
    pooled = any(conv.pool or conv.shortcut for conv in convs)
    return _raise_widths(overrides, flaw, max(c.neurons.v_bits for c in convs),
                         None if pooled else max(c.neurons.weight_bits for c in convs))


def _dedupe(overrides):
    """Later ``key=value`` wins, as on the command line; keep one entry per key."""
    last = {}
    for item in overrides:
        last[item.split("=", 1)[0]] = item
    return list(last.values())


# ---------------------------------------------------------------------------- judging

@dataclass
class Outcome:
    """What one case did. ``kind``: "exact", "refused" or "failed" (``message`` says why)."""

    kind: str
    message: str = ""
    samples: int = 0
    cycles: int = 0             # simulated cycles over all samples (load + inference)
    extra: dict = field(default_factory=dict)

    @property
    def ok(self):
        return self.kind in ("exact", "refused")


def check_refusal(case, error):
    """None if ``error`` is a proper refusal of ``case``, else what is wrong with it."""
    message = str(error)
    if not message or "\n" in message:
        return f"refusal is not one line: {message!r}"
    if not case.flaw:
        if SHARED in case.overrides and "activation_memory = 'shared'" in message:
            return None         # the option's own limits: a proper refusal
        return f"refused a case without a flaw ({type(error).__name__}): {message}"
    if not any(word in message for word in case.expected_words):
        return (f"refusal for flaw {case.flaw} names none of {case.expected_words}: "
                f"{message}")
    return None


def run_case(case, *, work_dir=None):
    """Compile ``case`` and co-simulate it on Verilator (one process); an :class:`Outcome`."""
    from hwgen import build_directory
    from hwgen.compiler.scheduler.program import compile_program
    from hwgen.sim.cosim import cosimulate

    try:
        model = case.model()
        config = case.config(model)
        program = compile_program(model, config)
    except HwgenError as error:
        problem = check_refusal(case, error)
        return Outcome("failed", problem) if problem else Outcome("refused", str(error))
    if case.flaw:
        return Outcome("failed", f"flaw {case.flaw} was accepted by the compiler")
    with tempfile.TemporaryDirectory(prefix="hwgen-gen-", dir=work_dir) as folder:
        build = build_directory.write(program, model, Path(folder) / "build")
        try:
            result = cosimulate(build, case.input_array(), parallel=1)
        except HwgenError as error:
            return Outcome("failed", f"co-simulation failed: {error}")
    samples = result.samples
    cycles = int(result.cycles.sum() + result.load_cycles.sum())
    if not result.verdict.bit_exact:
        first = next(m for m in result.verdict.first_mismatch if m)
        return Outcome("failed", f"not bit-exact: {first.describe()}", samples, cycles,
                       {"mismatching_samples": result.verdict.mismatching_samples})
    if not (result.layer_cycles >= result.ideal).all():
        return Outcome("failed", "a layer took fewer cycles than its ideal bound", samples,
                       cycles)
    if result.trace.predictions is not None and \
            not (result.rtl_predictions == result.trace.predictions).all():
        return Outcome("failed", "predictions differ", samples, cycles)
    return Outcome("exact", "", samples, cycles)


def write_reproducer(case, outcome, folder):
    """Write ``case`` to ``folder`` (model.hwgen, inputs.npz, case.txt, reproduce.sh) so
    that one command re-runs it; return the command."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "case.txt").write_text(f"{case!r}\n\n{case.describe()}\n\n{outcome.message}\n")
    try:
        model = case.model()
        overrides = case.all_overrides(model)
    except HwgenError:
        model, overrides = None, list(case.overrides)
    sets = " ".join(f"--set {shlex.quote(item)}" for item in overrides)
    if model is None:
        command = (f"python -c 'from hwgen.sim.model_strategies import *; print(run_case("
                   f"eval(open(\"case.txt\").read().split(chr(10))[0])))'")
    else:
        native.save(model, folder / "model.hwgen")
        np.savez(folder / "inputs.npz", inputs=case.input_array())
        command = (f"hwgen compile model.hwgen -o build {sets} && "
                   f"hwgen simulate build --inputs inputs.npz --jobs 1")
    (folder / "reproduce.sh").write_text(f"#!/bin/sh\ncd \"$(dirname \"$0\")\" && "
                                         f"rm -rf build && {command}\n")
    (folder / "reproduce.sh").chmod(0o755)
    return f"sh {folder / 'reproduce.sh'}"
