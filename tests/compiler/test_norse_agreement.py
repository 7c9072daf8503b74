"""Norse 1.1 as the oracle: its own simulation, its own exporter (``norse.torch.to_nir``),
read with ``--source-framework norse``; identical spikes in every layer.

Norse's exporter writes a LIFBoxCell's tau as dt / tau_mem_inv and an IAFCell as an IF
with r = 1 (its IAF adds the input unscaled whatever dt is). Integer-valued networks of
IAF layers and LIFBox layers with dt * tau_mem_inv = 1 (beta 0) are exact in hwgen's
integer reference; a LIFBox with beta = 1/2 computes beta * v exactly in float, where hwgen
floors it (docs/frontends.md, known difference 1), so it is compared with hwgen's float
model of the imported graph. Norse's default LIFCell is current-based (a CubaLIF, read
with the synapse conventions of docs/semantics.md section 4b): exact with tau_syn_inv = 0
and dt * tau_mem_inv = 1, against the float model otherwise.
"""

import numpy as np
import pytest

from hwgen.compiler.frontends import nir as frontend
from hwgen.compiler.ir import float_reference, reference

torch = pytest.importorskip("torch")
norse = pytest.importorskip("norse.torch")
from norse.torch.functional.iaf import IAFParameters             # noqa: E402
from norse.torch.functional.lif_box import LIFBoxParameters      # noqa: E402

# Norse 1.1's to_nir calls nirtorch.extract_nir_graph, which nirtorch 2.x deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:nirtorch.extract_nir_graph:DeprecationWarning")

T = 8


def integer_linear(rng, inputs, outputs, low, high):
    layer = torch.nn.Linear(inputs, outputs, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(rng.integers(low, high, (outputs, inputs)),
                                        dtype=torch.float32))
    return layer


def run_norse(model, x):
    """Step Norse's SequentialState over time; every cell's output spikes (samples, T, n)."""
    cells = [i for i, m in enumerate(model) if not isinstance(m, torch.nn.Linear)]
    recorded = {i: [] for i in cells}
    hooks = [model[i].register_forward_hook(
        lambda module, args, out, i=i: recorded[i].append(out[0].detach().numpy().copy()))
        for i in cells]
    state = None
    with torch.no_grad():
        for t in range(x.shape[1]):
            _, state = model(torch.tensor(x[:, t], dtype=torch.float32), state)
    for hook in hooks:
        hook.remove()
    return {str(i): np.stack(recorded[i], axis=1) for i in cells}


def spikes(seed, samples, size, density=0.6):
    return (np.random.default_rng(seed).random((samples, T, size)) < density).astype(np.uint8)


def test_norse_iaf_and_lifbox_integer_network_spike_for_spike():
    rng = np.random.default_rng(0)
    model = norse.SequentialState(
        integer_linear(rng, 6, 8, -2, 4),
        norse.IAFCell(IAFParameters(v_th=torch.tensor(3.0))),
        integer_linear(rng, 8, 5, -2, 3),
        norse.LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.tensor(1000.0),
                                          v_th=torch.tensor(1.0))),
        integer_linear(rng, 5, 3, -1, 3),
        norse.IAFCell(IAFParameters(v_th=torch.tensor(2.0))))
    graph = norse.to_nir(model, torch.zeros(1, 6))
    imported = frontend.load(graph, timesteps=T, source_framework="norse")
    assert imported["1"].leak.kind == "none" and imported["3"].leak.beta == 0.0
    x = spikes(1, 50, 6)
    expected = run_norse(model, x)
    trace = reference.run(imported, x)
    for name in ("1", "3", "5"):
        assert np.array_equal(trace.spikes[name], expected[name].astype(np.uint8)), name
        assert expected[name].any() and not expected[name].all(), name


def test_norse_lifbox_decay_matches_hwgens_float_model():
    """tau_mem_inv = 500 /s at dt = 1e-3: beta = 1/2, written as tau = 2e-6."""
    rng = np.random.default_rng(2)
    model = norse.SequentialState(
        integer_linear(rng, 6, 8, -2, 4),
        norse.LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.tensor(500.0),
                                          v_th=torch.tensor(1.05))),
        integer_linear(rng, 8, 4, -2, 4),
        norse.LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.tensor(250.0),
                                          v_th=torch.tensor(0.55))))
    graph = norse.to_nir(model, torch.zeros(1, 6))
    network = frontend.to_float(graph, timesteps=T, source_framework="norse")
    assert network["1"].beta == pytest.approx(np.full(8, 0.5))
    assert network["3"].beta == pytest.approx(np.full(4, 0.75))
    x = spikes(3, 60, 6)
    expected = run_norse(model, x)
    trace = float_reference.run(network, x)
    for name in ("1", "3"):
        assert np.array_equal(trace.spikes[name], expected[name].astype(np.uint8)), name
        assert expected[name].any() and not expected[name].all(), name
    # The integer model floors beta * v; it is quantized and imported without error.
    assert frontend.load(graph, timesteps=T, source_framework="norse")["1"].leak.beta == 0.5


def test_norse_per_neuron_tau_gives_each_neuron_its_own_leak():
    """A LIFBoxCell with a tau_mem_inv per neuron: Norse's exporter writes a tau vector
    (dt / tau_mem_inv; its other parameters must then be vectors too, NIR wants one shape),
    hwgen's float model of it spikes as Norse does, and the integer model gives every
    neuron its own beta exactly (a per_neuron leak), not one leak for the layer."""
    rng = np.random.default_rng(4)
    tau_inv = rng.choice([250.0, 500.0, 750.0, 1000.0], 8)
    tau_inv[:2] = [250.0, 750.0]
    model = norse.SequentialState(
        integer_linear(rng, 6, 8, -2, 4),
        norse.LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.tensor(tau_inv, dtype=torch.float32),
                                          v_th=torch.full((8,), 1.05),
                                          v_leak=torch.zeros(8))))
    graph = norse.to_nir(model, torch.zeros(1, 6))
    assert graph.nodes["1"].tau.shape == (8,)
    network = frontend.to_float(graph, timesteps=T, source_framework="norse")
    betas = 1.0 - tau_inv / 1000.0
    assert network["1"].beta == pytest.approx(betas)
    x = spikes(5, 60, 6)
    expected = run_norse(model, x)
    trace = float_reference.run(network, x)
    assert np.array_equal(trace.spikes["1"], expected["1"].astype(np.uint8))
    assert expected["1"].any() and not expected["1"].all()
    imported = frontend.load(graph, timesteps=T, source_framework="norse")
    assert imported["1"].leak.kind == "per_neuron"
    assert imported["1"].leak.betas.tolist() == betas.tolist()
    assert imported.metadata["quantization"]["layers"][0]["leak"]["exact"]


def lif_cell(tau_syn_inv, tau_mem_inv, v_th):
    from norse.torch.functional.lif import LIFParameters
    return norse.LIFCell(LIFParameters(tau_syn_inv=torch.tensor(tau_syn_inv),
                                       tau_mem_inv=torch.tensor(tau_mem_inv),
                                       v_th=torch.tensor(v_th)))


def test_norse_lifcell_integer_network_spike_for_spike():
    """Norse's default neuron, LIFCell, is current-based (exported as CubaLIF). With
    tau_syn_inv = 0 its synaptic current sums the input (alpha = 1, tau_syn = inf) and with
    dt * tau_mem_inv = 1 the membrane is that current (beta = 0, gain 1): integers
    throughout, so hwgen's integer reference must spike exactly like it."""
    rng = np.random.default_rng(4)
    model = norse.SequentialState(
        integer_linear(rng, 6, 8, -2, 3),
        lif_cell(0.0, 1000.0, 4.0),
        integer_linear(rng, 8, 5, -2, 3),
        lif_cell(1000.0, 1000.0, 1.0))
    graph = norse.to_nir(model, torch.zeros(1, 6))
    assert graph.nodes["1"].__class__.__name__ == "CubaLIF"
    imported = frontend.load(graph, timesteps=T, source_framework="norse")
    cell = imported["1"]
    assert (cell.synapse.kind, cell.synapse_rounding, cell.leak.beta) == ("none", "separate", 0)
    assert imported["3"].synapse.beta == 0
    x = spikes(5, 50, 6, density=0.4)
    expected = run_norse(model, x)
    trace = reference.run(imported, x)
    for name in ("1", "3"):
        assert np.array_equal(trace.spikes[name], expected[name].astype(np.uint8)), name
        assert expected[name].any() and not expected[name].all(), name


def test_norse_lifcell_decays_match_hwgens_float_model():
    """tau_syn_inv = 500, tau_mem_inv = 250 /s at dt = 1e-3: alpha = 1/2, beta = 3/4 and the
    membrane's input scaled by 1/4 (folded into the threshold). Norse computes the decays
    exactly in float, hwgen's integer model floors them, so the comparison is with hwgen's
    float model of the imported graph."""
    rng = np.random.default_rng(6)
    model = norse.SequentialState(
        integer_linear(rng, 6, 8, -2, 4),
        lif_cell(500.0, 250.0, 0.55),
        integer_linear(rng, 8, 4, -2, 4),
        lif_cell(250.0, 500.0, 0.45))
    graph = norse.to_nir(model, torch.zeros(1, 6))
    network = frontend.to_float(graph, timesteps=T, source_framework="norse")
    assert network["1"].alpha == pytest.approx(np.full(8, 0.5))
    assert network["1"].beta == pytest.approx(np.full(8, 0.75))
    x = spikes(7, 60, 6)
    expected = run_norse(model, x)
    trace = float_reference.run(network, x)
    for name in ("1", "3"):
        assert np.array_equal(trace.spikes[name], expected[name].astype(np.uint8)), name
        assert expected[name].any() and not expected[name].all(), name
    integer = frontend.load(graph, timesteps=T, source_framework="norse")
    assert (integer["1"].synapse.beta, integer["1"].leak.beta) == (0.5, 0.75)
