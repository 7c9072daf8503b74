"""A float description of a spiking network, before quantization.

Frontends of float models (NIR) translate their source into this form with every framework
convention already resolved into hwgen's terms: the comparison, reset and order of
docs/semantics.md, a per-step decay ``beta``, and a threshold in the units of the synaptic
current that reaches the neuron (input gains, resistances and resting potentials folded
away). :mod:`hwgen.compiler.passes.quantize` turns it into the integer IR; :mod:`hwgen.compiler.ir.float_reference`
simulates it in float64 so the quantization report can say what rounding changed.

It is deliberately not part of the integer IR: the IR's ops stay integer-only, and nothing
that compiles or generates hardware ever sees a float.
"""

from dataclasses import dataclass, field

import numpy as np

from hwgen.errors import ModelError
from .neuron import FIRE_MODES, ORDERS, RESET_MODES

ROUNDINGS = ("exact", "floor")
"""How the source computes its membrane: ``exact`` float arithmetic, or ``floor`` (the
membrane is floored after every update, as snnTorch does with ``state_quant=torch.floor``)."""


@dataclass(kw_only=True)
class FloatLayer:
    """One layer: its ``name``, the names of the layers feeding it, and its output shape
    per time step."""

    name: str
    inputs: list
    shape: tuple

    @property
    def size(self):
        return int(np.prod(self.shape))


@dataclass(kw_only=True)
class FloatInput(FloatLayer):
    """Spike trains (``encoding="spikes"``) or integers through hwgen's IF encoder."""

    encoding: str = "spikes"
    threshold: int = None


@dataclass(kw_only=True)
class FloatDense(FloatLayer):
    """``current = weight @ x + bias`` each step. ``recurrent``: as the IR's ``dense``
    (docs/semantics.md section 4c), the weight is (outputs, inputs + outputs) and its last
    ``outputs`` columns weigh the spikes of step t-1 of the one neuron layer it feeds."""

    weight: np.ndarray                      # (outputs, inputs [+ outputs if recurrent])
    bias: np.ndarray = None                 # (outputs,)
    recurrent: bool = False

    @property
    def feedforward_inputs(self):
        return self.weight.shape[1] - (self.weight.shape[0] if self.recurrent else 0)

    @property
    def feedforward_weight(self):
        return self.weight[:, :self.feedforward_inputs]

    @property
    def recurrent_weight(self):
        """(outputs, outputs), or None for a feed-forward layer."""
        return self.weight[:, self.feedforward_inputs:] if self.recurrent else None


@dataclass(kw_only=True)
class FloatConv(FloatLayer):
    weight: np.ndarray                      # (out_channels, in_channels / groups, *kernel)
    bias: np.ndarray = None
    stride: tuple
    padding: tuple
    dilation: tuple
    groups: int = 1

    @property
    def dims(self):
        return self.weight.ndim - 2


@dataclass(kw_only=True)
class FloatSumPool(FloatLayer):
    kernel: tuple
    stride: tuple
    padding: tuple


@dataclass(kw_only=True)
class FloatMaxPool(FloatLayer):
    """The IR's ``max_pool2d``: window maxima per channel, padded positions taking no part."""

    kernel: tuple
    stride: tuple
    padding: tuple


@dataclass(kw_only=True)
class FloatAdd(FloatLayer):
    """The IR's ``add``: the element-wise sum of its ``inputs`` (currents of synapses summed
    into one neuron layer, or spikes summed into a count, docs/semantics.md 3b)."""


@dataclass(kw_only=True)
class FloatSpikeAnd(FloatLayer):
    """The IR's ``spike_and``: the AND of two spike inputs, the second of the first's shape
    or one spike per feature (docs/semantics.md 4d)."""


@dataclass(kw_only=True)
class FloatTokenSum(FloatLayer):
    """The IR's ``token_sum``: per feature, the count of spiking positions."""


@dataclass(kw_only=True)
class FloatSpikeMatmul(FloatLayer):
    """The IR's ``spike_matmul``: per head, K^T V of spikes K and V (its two inputs)."""

    heads: int = 1


@dataclass(kw_only=True)
class FloatCurrentMatmul(FloatLayer):
    """The IR's ``current_matmul``: spikes Q (first input) times a spike_matmul's per-step
    (heads, d, d) counts (second input), per head."""


TRANSFORMER_LAYERS = (FloatSpikeAnd, FloatTokenSum, FloatSpikeMatmul, FloatCurrentMatmul)
"""Layers without weights whose outputs are exact: spikes, or integer counts of spikes."""


@dataclass(kw_only=True)
class FloatFlatten(FloatLayer):
    start_dim: int
    end_dim: int


@dataclass(kw_only=True)
class FloatNeuron(FloatLayer):
    """Spiking neurons: per step h = beta*v + I (order, reset and comparison as in
    docs/semantics.md, in exact float arithmetic unless ``rounding`` is ``floor``). With
    ``alpha`` (current-based, section 4b) I is first filtered: i = alpha*i + I, and h uses
    this step's i."""

    beta: np.ndarray                        # (neurons,), in [0, 1]
    threshold: np.ndarray                   # (neurons,), in current units
    fire: str
    reset: str
    order: str
    rounding: str = "exact"
    alpha: np.ndarray = None                # (neurons,) synaptic decay; None: voltage-based
    synapse_rounding: str = "separate"      # as LIF's (neuron.SYNAPSE_ROUNDINGS)

    def check(self):
        for name, value, choices in (("fire", self.fire, FIRE_MODES),
                                     ("reset", self.reset, RESET_MODES),
                                     ("order", self.order, ORDERS),
                                     ("rounding", self.rounding, ROUNDINGS)):
            if value not in choices:
                raise ModelError(f"layer {self.name!r}: {name} {value!r} is not one of "
                                 f"{', '.join(choices)}")


@dataclass(kw_only=True)
class FloatIntegrator(FloatLayer):
    """A non-spiking leaky integrator (readout): v = beta*v + I every step (I through the
    synaptic filter i = alpha*i + I if ``alpha`` is given)."""

    beta: np.ndarray
    rounding: str = "exact"
    alpha: np.ndarray = None
    synapse_rounding: str = "separate"


@dataclass(kw_only=True)
class FloatReadout(FloatLayer):
    mode: str                               # as hwgen.compiler.ir.Readout.MODES


@dataclass
class FloatNetwork:
    """Layers in a topological order, over ``timesteps`` steps; ``metadata`` as for a Model."""

    name: str
    timesteps: int
    metadata: dict = field(default_factory=dict)
    layers: dict = field(default_factory=dict)

    def add(self, layer):
        if layer.name in self.layers:
            raise ModelError(f"layer name {layer.name!r} is used twice")
        for source in layer.inputs:
            if source not in self.layers:
                raise ModelError(f"layer {layer.name!r}: input {source!r} is not a layer "
                                 f"of this network")
        if isinstance(layer, FloatNeuron):
            layer.check()
        if isinstance(layer, FloatDense) and layer.recurrent \
                and layer.weight.shape[1] < layer.weight.shape[0]:
            raise ModelError(f"layer {layer.name!r}: a recurrent weight is (outputs, inputs + "
                             f"outputs); {layer.weight.shape} has fewer columns than rows")
        self.layers[layer.name] = layer
        return layer

    def remove(self, name):
        """Drop layer ``name``, which nothing may consume any more."""
        if self.consumers_of(name):
            raise ModelError(f"layer {name!r} still feeds {self.consumers_of(name)}")
        del self.layers[name]

    def __getitem__(self, name):
        return self.layers[name]

    def __iter__(self):
        return iter(self.layers.values())

    def consumers_of(self, name):
        return [layer.name for layer in self if name in layer.inputs]

    @property
    def input(self):
        inputs = [layer for layer in self if isinstance(layer, FloatInput)]
        if len(inputs) != 1:
            raise ModelError(f"network {self.name!r}: needs exactly one input, has {len(inputs)}")
        return inputs[0]
