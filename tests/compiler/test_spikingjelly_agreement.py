"""Agreement with SpikingJelly 2.0's own simulation, through its own NIR exporter.

SpikingJelly's IFNode (hard reset) with integer weights and thresholds is exact in
integers, and must spike exactly as hwgen's integer reference does. Its LIFNode computes
v + (x - v)/tau (decay_input) or v - v/tau + x in float, with no rounding: hwgen's float
model of the imported graph must reproduce it (dyadic values are exact in float32), and
the integer model differs from it by the floor only (docs/frontends.md).
"""

import numpy as np
import pytest
import torch
from spikingjelly.activation_based import functional, layer, neuron
from spikingjelly.activation_based.nir_exchange import export_to_nir

from hwgen.compiler.frontends import nir as frontend
from hwgen.compiler.ir import float_reference, reference

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def integer_linear(fan_in, fan_out, generator):
    linear = layer.Linear(fan_in, fan_out)
    with torch.no_grad():
        linear.weight.copy_(torch.randint(-4, 5, (fan_out, fan_in), generator=generator))
        linear.bias.copy_(torch.randint(-1, 2, (fan_out,), generator=generator))
    return linear


def run_spikingjelly(net, spikes):
    """SpikingJelly's single-step simulation: {neuron module name: uint8 (samples, T, n)}."""
    functional.reset_net(net)
    records, hooks = {}, []
    for name, module in net.named_children():
        if isinstance(module, neuron.BaseNode):
            records[name] = []
            hooks.append(module.register_forward_hook(
                lambda m, i, out, name=name: records[name].append(out)))
    try:
        with torch.no_grad():
            for t in range(spikes.shape[1]):
                net(torch.tensor(spikes[:, t], dtype=torch.float32))
    finally:
        for hook in hooks:
            hook.remove()
    return {name: torch.stack(out, 1).numpy().astype(np.uint8) for name, out in records.items()}


def spikes(seed, samples=24, steps=10, inputs=12, density=0.5):
    rng = np.random.default_rng(seed)
    return (rng.random((samples, steps, inputs)) < density).astype(np.uint8)


@pytest.mark.parametrize("threshold", [1.0, 2.0, 4.0])
def test_integer_if_network_spikes_exactly_like_spikingjelly(threshold):
    generator = torch.Generator().manual_seed(int(threshold))
    net = torch.nn.Sequential(integer_linear(12, 10, generator),
                              neuron.IFNode(v_threshold=threshold, v_reset=0.0),
                              integer_linear(10, 6, generator),
                              neuron.IFNode(v_threshold=threshold, v_reset=0.0))
    graph = export_to_nir(net, torch.zeros(1, 12))
    x = spikes(int(threshold))
    theirs = run_spikingjelly(net, x)
    model = frontend.load(graph, source_framework="spikingjelly", timesteps=10)
    assert model["_1"].fire == "ge" and model["_1"].reset == "zero"
    ours = reference.run(model, x).spikes
    for name, expected in (("_1", theirs["1"]), ("_3", theirs["3"])):
        assert 0 < expected.mean() < 1
        assert np.array_equal(ours[name], expected), name


def test_the_spike_comparison_matters():
    """Read as generic NIR (v > theta) the same graph disagrees: SpikingJelly fires at
    v >= theta, which is why --source-framework exists."""
    generator = torch.Generator().manual_seed(9)
    net = torch.nn.Sequential(integer_linear(12, 10, generator),
                              neuron.IFNode(v_threshold=2.0, v_reset=0.0))
    graph = export_to_nir(net, torch.zeros(1, 12))
    x = spikes(9)
    theirs = run_spikingjelly(net, x)["1"]
    generic = reference.run(frontend.load(graph, timesteps=10), x).spikes["_1"]
    assert not np.array_equal(generic, theirs)
    overridden = reference.run(frontend.load(graph, timesteps=10, fire="ge"), x).spikes["_1"]
    assert np.array_equal(overridden, theirs)


@pytest.mark.parametrize("decay_input", [True, False])
def test_lif_network_matches_the_float_model(decay_input):
    generator = torch.Generator().manual_seed(3)
    net = torch.nn.Sequential(integer_linear(12, 10, generator),
                              neuron.LIFNode(tau=2.0, decay_input=decay_input, v_threshold=1.0),
                              integer_linear(10, 6, generator),
                              neuron.LIFNode(tau=2.0, decay_input=decay_input, v_threshold=1.0))
    graph = export_to_nir(net, torch.zeros(1, 12))
    x = spikes(3, steps=8)
    theirs = run_spikingjelly(net, x)
    network = frontend.to_float(graph, source_framework="spikingjelly", timesteps=8)
    floated = float_reference.run(network, x).spikes
    for name, ours in (("1", floated["_1"]), ("3", floated["_3"])):
        assert 0 < theirs[name].mean() < 1
        assert np.array_equal(ours, theirs[name]), name
    neuron_report = network.metadata["frontend"]["neurons"]["_1"]
    assert neuron_report["beta"] == 0.5
    assert neuron_report["input_gain"] == (0.5 if decay_input else 1.0)
    model = frontend.load(graph, source_framework="spikingjelly", calibration=x)
    agreement = model.metadata["quantization"]["calibration"]["layers"]["_1"]["spike_agreement"]
    assert 0.8 < agreement <= 1.0


def test_soft_reset_cannot_leave_spikingjelly():
    net = torch.nn.Sequential(layer.Linear(4, 3), neuron.IFNode(v_reset=None))
    with pytest.raises(NotImplementedError, match="soft reset"):
        export_to_nir(net, torch.zeros(1, 4))
