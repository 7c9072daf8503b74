"""Synthetic SNN workloads for tests and benchmarks.

A workload is a random integer model plus random inputs with chosen weight and spike
densities and neuron modes, reproducible from a seed. The accelerator tests sweep these
over hardware configurations; the benchmarks measure cycles on them. Random spiking
transformers (:func:`random_transformer`) come from hwgen's PyTorch modules (torch is
imported only for them).
"""

from dataclasses import dataclass, field

import numpy as np

from hwgen.compiler.ir import LIF, Dense, Input, Leak, Model, Readout


@dataclass(frozen=True)
class NeuronMode:
    """One choice of the neuron attributes of docs/semantics.md section 4. A per-neuron
    leak without multipliers (``Leak.per_neuron([], F)``) asks :func:`random_chain` to draw
    one multiplier in 0..2**F for every neuron of the layer."""

    leak: Leak = Leak()
    fire: str = "ge"
    reset: str = "subtract"
    order: str = "same_step"

    def label(self):
        leak = {"none": "if", "shift": f"shift{self.leak.shift}",
                "multiply": f"mul{self.leak.multiplier}/{self.leak.frac_bits}",
                "per_neuron": f"mul_each/{self.leak.frac_bits}"}[self.leak.kind]
        return f"{leak}-{self.fire}-{self.reset}-{self.order}"


ALL_MODES = [NeuronMode(leak, fire, reset, order)
             for order_set in (("same_step", "delayed"), ("snntorch_same_step",))
             for leak in (Leak.none(), Leak.by_shift(2), Leak.by_multiply(7, 3))
             for fire in ("ge", "gt")
             for reset in ("subtract", "zero", "none")
             for order in order_set]
"""Every combination of leak form, comparison, reset and order (54 modes); the
snnTorch same-step modes come last, so the first 36 keep their indices."""


@dataclass
class Workload:
    model: Model
    spikes: np.ndarray            # (samples, T, inputs) uint8
    description: dict = field(default_factory=dict)


@dataclass(frozen=True)
class LayerSpec:
    """One dense -> LIF layer of a random chain."""

    size: int
    mode: NeuronMode = NeuronMode()
    weight_density: float = 0.5
    v_bits: int = 10
    threshold_scale: float = 1.0
    bias: bool = True


def random_chain(seed, inputs, layers, timesteps, *, weight_bits=4, name=None):
    """A chain input -> (dense -> lif) per :class:`LayerSpec` -> readout, random integers.

    Thresholds are drawn around the typical input current, scaled by the layer's
    ``threshold_scale``, so that layers neither stay silent nor saturate (unless asked).
    """
    rng = np.random.default_rng(seed)
    model = Model(name or f"random_{seed}", timesteps,
                  metadata={"generator": "hwgen.sim.workloads.random_chain", "seed": seed})
    model.add(Input("input", (inputs,), encoding="spikes"))
    previous, fan_in = "input", inputs
    wmax = (1 << (weight_bits - 1)) - 1
    for index, spec in enumerate(layers, start=1):
        weight = rng.integers(-wmax, wmax + 1, size=(spec.size, fan_in))
        weight *= rng.random((spec.size, fan_in)) < spec.weight_density
        bias = rng.integers(-2, 3, size=spec.size) if spec.bias else None
        bound = int((np.abs(weight).sum(axis=1)
                     + (np.abs(bias) if spec.bias else 0)).max())
        model.add(Dense(f"fc{index}", weight, bias, weight_bits=weight_bits,
                        acc_bits=max(bound.bit_length() + 1, 2)), previous)
        vmax = (1 << (spec.v_bits - 1)) - 1
        typical = max(1.0, np.sqrt(fan_in * spec.weight_density) * wmax / 2)
        theta = np.clip(rng.normal(typical * spec.threshold_scale, typical / 4,
                                   size=spec.size), 1, vmax).astype(np.int64)
        mode = spec.mode
        leak = mode.leak
        if leak.kind == "per_neuron" and not leak.multipliers:
            leak = Leak.per_neuron(rng.integers(0, (1 << leak.frac_bits) + 1, size=spec.size),
                                   leak.frac_bits)
        model.add(LIF(f"lif{index}", theta, leak=leak, fire=mode.fire, reset=mode.reset,
                      order=mode.order, v_bits=spec.v_bits), f"fc{index}")
        previous, fan_in = f"lif{index}", spec.size
    model.add(Readout("readout"), previous)
    return model.validate()


def random_model(seed, sizes, timesteps, *, weight_density=0.5, weight_bits=4, v_bits=10,
                 modes=(NeuronMode(),), bias=True, threshold_scale=1.0, name=None):
    """A chain of layers of ``sizes`` (input first), all alike but for the neuron ``modes``
    (cycled over the layers)."""
    layers = [LayerSpec(size, modes[i % len(modes)], weight_density, v_bits, threshold_scale,
                        bias) for i, size in enumerate(sizes[1:])]
    return random_chain(seed, sizes[0], layers, timesteps, weight_bits=weight_bits, name=name)


def random_spikes(seed, samples, timesteps, inputs, *, spike_density=0.3, silent_fraction=0.0):
    """Random spike trains (samples, T, inputs): each input is silent for the whole sample
    with probability ``silent_fraction``, else spikes at each step with ``spike_density``."""
    rng = np.random.default_rng(seed)
    spikes = rng.random((samples, timesteps, inputs)) < spike_density
    silent = rng.random((samples, 1, inputs)) < silent_fraction
    return (spikes & ~silent).astype(np.uint8)


def random_workload(seed, sizes, timesteps, *, samples=4, spike_density=0.3,
                    silent_fraction=0.0, **model_options):
    model = random_model(seed, sizes, timesteps, **model_options)
    spikes = random_spikes(seed + 1, samples, timesteps, sizes[0],
                           spike_density=spike_density, silent_fraction=silent_fraction)
    return Workload(model, spikes, {"seed": seed, "sizes": list(sizes), "T": timesteps,
                                    "spike_density": spike_density,
                                    "silent_fraction": silent_fraction, **{
                                        k: v for k, v in model_options.items()
                                        if k != "modes"}})


TRANSFORMERS = ("sdt_v1", "sdt_v2", "spikformer")
"""The architectures :func:`random_transformer` builds."""


def random_batch_norms(module, generator):
    """Random running statistics and affine parameters in every BatchNorm2d of ``module``
    (a torch module), so that a model in evaluation mode folds non-trivial batch norms."""
    import torch
    with torch.no_grad():
        for bn in module.modules():
            if isinstance(bn, torch.nn.BatchNorm2d):
                bn.running_mean.uniform_(-0.3, 0.3, generator=generator)
                bn.running_var.uniform_(0.5, 2.0, generator=generator)
                bn.weight.uniform_(0.5, 1.5, generator=generator)
                bn.bias.uniform_(-0.3, 0.3, generator=generator)


def random_transformer(architecture, *, dim, heads, hidden, timesteps, seed=0):
    """A spiking transformer of hwgen's PyTorch modules on 8x8 single-channel inputs in 2x2
    patches (16 tokens of ``dim`` features in ``heads`` heads, one block, MLP ``hidden``,
    10 classes), seeded: random batch norms and weights 3x PyTorch's initialisation, so that
    every layer spikes (not trained: for cycles and bit-exactness, not accuracy); exported
    through the frontend's post-training quantization. ``architecture``: one of
    :data:`TRANSFORMERS` (Spike-driven Transformer v1 or v2, Spikformer)."""
    import torch
    from hwgen.compiler.frontends import torch_transformer as tt
    if architecture not in TRANSFORMERS:
        raise ValueError(f"random_transformer: architecture {architecture!r} must be one of "
                         f"{', '.join(TRANSFORMERS)}")
    torch.manual_seed(seed)
    if architecture == "spikformer":
        module = tt.Spikformer(1, 8, 2, dim, heads, 1, hidden, 10)
    else:
        module = tt.SpikeDrivenTransformer(1, 8, 2, dim, heads, 1, hidden, 10,
                                           attention="v2" if architecture == "sdt_v2" else
                                           "sdsa")
    random_batch_norms(module, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.mul_(3)
    return tt.export(module.eval(), timesteps)
