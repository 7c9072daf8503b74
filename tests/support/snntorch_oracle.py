"""snnTorch's own simulation, as an oracle no one here wrote.

Builds small snnTorch networks with integer weights and thresholds (Linear + Leaky) and
records what snnTorch computes for them, step by step. With ``state_quant=torch.floor``
snnTorch computes floor(beta * mem), exactly hwgen's ``multiply`` leak, so hwgen's integer
reference and the generated RTL must spike exactly like it (docs/frontends.md lists the one
documented difference). torch and snntorch are imported lazily: they are test and training
dependencies, not runtime ones.
"""

import numpy as np


def linear(fan_in, fan_out, generator, low=-4, high=4, bias=True):
    """A torch Linear with integer weights in [low, high] and biases in [-1, 1]."""
    import torch
    layer = torch.nn.Linear(fan_in, fan_out, bias=bias)
    with torch.no_grad():
        layer.weight.copy_(torch.randint(low, high + 1, (fan_out, fan_in), generator=generator))
        if bias:
            layer.bias.copy_(torch.randint(-1, 2, (fan_out,), generator=generator))
    return layer


def integer_conv(cin, cout, generator, kernel=3, stride=1, padding=1, bias=(-2, 2)):
    """A torch Conv2d with integer weights in [-2, 2] and biases drawn from
    ``range(*bias)`` (None: no bias)."""
    import torch
    conv = torch.nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding,
                           bias=bias is not None)
    with torch.no_grad():
        conv.weight.copy_(torch.randint(-2, 3, conv.weight.shape, generator=generator))
        if bias is not None:
            conv.bias.copy_(torch.randint(*bias, conv.bias.shape, generator=generator))
    return conv


def leaky(beta, threshold, **options):
    """snnTorch's Leaky with a floored membrane: hwgen's ``multiply`` leak exactly."""
    import snntorch as snn
    import torch
    return snn.Leaky(beta=beta, threshold=threshold, init_hidden=True, state_quant=torch.floor,
                     **options)


def max_pooling_cnn(seed, bias=(-2, 2)):
    """snnTorch's tutorial CNN form on 1 x 8 x 8 inputs: Conv2d -> MaxPool2d -> Leaky twice
    (the second pool overlapping and padded), then Flatten -> Linear -> Leaky."""
    import torch
    generator = torch.Generator().manual_seed(seed)
    return torch.nn.Sequential(
        integer_conv(1, 4, generator, bias=bias), torch.nn.MaxPool2d(2), leaky(0.5, 2.0),
        integer_conv(4, 3, generator, bias=bias), torch.nn.MaxPool2d(3, stride=2, padding=1),
        leaky(0.75, 3.0),
        torch.nn.Flatten(), linear(3 * 2 * 2, 5, generator), leaky(0.5, 2.0))


def integer_net(seed, sizes, *, beta, threshold, reset_mechanism="subtract", reset_delay=True,
                floor=True, low=-4, high=4, alpha=None):
    """Linear + Leaky layers with integer weights. ``beta``, ``threshold``,
    ``reset_mechanism`` and ``reset_delay`` are one value for every layer or a list with one
    per layer; a threshold may be a function of the layer's Linear. With ``alpha`` (one
    value or one per layer, None for a Leaky) the neurons are current-based ``Synaptic``
    ones; ``state_quant`` then floors both the synaptic current and the membrane."""
    import snntorch as snn
    import torch
    count = len(sizes) - 1

    def per_layer(value):
        return list(value) if isinstance(value, (list, tuple)) else [value] * count

    generator = torch.Generator().manual_seed(seed)
    layers = []
    for fan_in, fan_out, b, theta, reset, delay, a in zip(
            sizes, sizes[1:], per_layer(beta), per_layer(threshold),
            per_layer(reset_mechanism), per_layer(reset_delay), per_layer(alpha)):
        fc = linear(fan_in, fan_out, generator, low, high)
        theta = theta(fc) if callable(theta) else theta
        settings = dict(beta=b, threshold=theta, reset_mechanism=reset, reset_delay=delay,
                        init_hidden=True, state_quant=torch.floor if floor else False)
        layers += [fc, snn.Leaky(**settings) if a is None else snn.Synaptic(alpha=a, **settings)]
    return torch.nn.Sequential(*layers)


def run_snntorch(net, spikes, membranes=None):
    """snnTorch's simulation over the T steps of ``spikes`` (samples, T, inputs):
    {Leaky, Synaptic, RLeaky or RSynaptic module name: uint8 (samples, T, neurons)}. If ``membranes`` is a
    dict, it receives each one's stored membrane after every step, float (samples, T,
    neurons)."""
    import snntorch as snn
    import torch
    from snntorch import utils
    utils.reset(net)
    records, stored, hooks = {}, {}, []
    for name, module in net.named_children():
        if isinstance(module, (snn.Leaky, snn.Synaptic, snn.RLeaky, snn.RSynaptic)):
            records[name], stored[name] = [], []

            def hook(m, i, out, name=name):
                records[name].append(out)
                stored[name].append(m.mem.detach().clone())
            hooks.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            for t in range(spikes.shape[1]):
                net(torch.tensor(spikes[:, t], dtype=torch.float32))
    finally:
        for hook in hooks:
            hook.remove()
    if membranes is not None:
        membranes.update({name: torch.stack(m, 1).numpy() for name, m in stored.items()})
    return {name: torch.stack(out, 1).numpy().astype(np.uint8) for name, out in records.items()}


def recurrent_net(seed, kind, *, reset_mechanism="subtract", reset_delay=True, all_to_all=True,
                  hidden=6, beta=0.5, alpha=0.5, threshold=3.0, inputs=8, head=True):
    """Linear(inputs, hidden) -> RLeaky / RSynaptic(hidden) -> Linear(hidden, 4) -> Leaky
    (without ``head``, the recurrent layer is the output layer), integer weights (the recurrent ones too; with ``all_to_all=False`` one integer V per
    neuron), states floored: snnTorch then computes what hwgen's integer reference does."""
    import snntorch as snn
    import torch
    generator = torch.Generator().manual_seed(seed)
    common = dict(beta=beta, threshold=threshold, init_hidden=True, state_quant=torch.floor,
                  reset_mechanism=reset_mechanism, reset_delay=reset_delay)
    shape = (dict(linear_features=hidden) if all_to_all else
             dict(all_to_all=False, V=torch.randint(-2, 3, (hidden,), generator=generator)
                  .float()))
    cell = (snn.RLeaky(**shape, **common) if kind == "RLeaky"
            else snn.RSynaptic(alpha=alpha, **shape, **common))
    if all_to_all:
        with torch.no_grad():
            cell.recurrent.weight.copy_(torch.randint(-3, 4, (hidden, hidden),
                                                      generator=generator))
            cell.recurrent.bias.copy_(torch.randint(-1, 2, (hidden,), generator=generator))
    if not head:
        return torch.nn.Sequential(linear(inputs, hidden, generator), cell)
    return torch.nn.Sequential(linear(inputs, hidden, generator), cell,
                               linear(hidden, 4, generator),
                               snn.Leaky(beta=0.5, threshold=2.0, init_hidden=True,
                                         state_quant=torch.floor))
