"""Current-based neurons against snnTorch 1.0's own ``Synaptic`` simulation, and the NIR
importer's reading of CubaLIF / CubaLI (docs/semantics.md section 4b).

With ``state_quant=torch.floor`` snnTorch floors both its synaptic current and its
membrane every step: syn = floor(alpha*syn + I) = floor(alpha*syn) + I for an integer I,
hwgen's multiply leak on i, and likewise for mem. Exported with hwgen's helper (a CubaLIF
per Synaptic, its reset recorded in metadata) and imported, every spike must be identical
in every reset mechanism and reset_delay, including the delayed zero reset, where
snnTorch's Synaptic zeroes the whole step (unlike its Leaky).
"""

import itertools

import nir
import numpy as np
import pytest

snn = pytest.importorskip("snntorch")
torch = pytest.importorskip("torch")

from hwgen.compiler.frontends import nir as frontend           # noqa: E402
from hwgen.compiler.frontends import snntorch_export           # noqa: E402
from hwgen.compiler.ir import Leak, float_reference, reference  # noqa: E402
from hwgen.errors import UnsupportedError                       # noqa: E402
from snntorch_oracle import integer_net, run_snntorch           # noqa: E402

T = 10


def random_spikes(seed, samples=24, steps=T, inputs=12, density=0.5):
    rng = np.random.default_rng(seed)
    return (rng.random((samples, steps, inputs)) < density).astype(np.uint8)


def imported(net, x, tmp_path, **options):
    path = tmp_path / "net.nir"
    snntorch_export.export(net, path, (x.shape[2],), timesteps=x.shape[1])
    return frontend.load(path, source_framework="snntorch", **options)


MODES = list(itertools.product((0.0, 0.5, 0.75, 1.0), (0.0, 0.5, 0.875, 1.0),
                               ("subtract", "zero", "none"), (True, False)))


@pytest.mark.parametrize("alpha, beta, reset_mechanism, reset_delay", MODES)
def test_integer_reference_spikes_exactly_like_snntorch_synaptic(tmp_path, alpha, beta,
                                                                 reset_mechanism, reset_delay):
    seed = int(alpha * 8) * 10 + int(beta * 8)
    net = integer_net(seed, [12, 10, 6], alpha=alpha, beta=beta, threshold=[6.0, 4.0],
                      reset_mechanism=reset_mechanism, reset_delay=reset_delay)
    x = random_spikes(seed)
    membranes = {}
    theirs = run_snntorch(net, x, membranes)
    model = imported(net, x, tmp_path)
    lif = model["1"]
    assert lif.synapse == Leak.none() if alpha == 1 else lif.synapse.beta == alpha
    assert (lif.order, lif.reset) == ("delayed" if reset_delay else "snntorch_same_step",
                                      reset_mechanism)
    layers = model.metadata["quantization"]["layers"]
    assert all(layer["exact_integers"] for layer in layers)
    assert layers[0]["synapse"] == "0" and layers[0]["synaptic_leak"]["alpha"] == alpha
    assert layers[0]["synaptic_leak"]["exact"] and layers[0]["synapse_rounding"] == "joint"
    trace = reference.run(model, x)
    for name, spikes in theirs.items():
        mismatches = np.argwhere(trace.spikes[name] != spikes)
        assert not len(mismatches), (f"layer {name}: {len(mismatches)} spikes differ, first "
                                     f"at (sample, step, neuron) {tuple(mismatches[0])}")
    # the final membrane too (snnTorch stores it after its own reset)
    assert np.array_equal(trace.membranes["3"], membranes["3"][:, -1])
    assert 0 < theirs["1"].mean() < 1 and 0 < theirs["3"].mean() < 1


def test_the_float_model_is_snntorch_without_state_quant(tmp_path):
    """Without state_quant, snnTorch computes in float; hwgen's float model of the imported
    graph is the same computation."""
    net = integer_net(3, [12, 10, 6], alpha=0.6, beta=0.7, threshold=3.0, floor=False)
    x = random_spikes(3)
    theirs = run_snntorch(net, x)
    path = tmp_path / "net.nir"
    snntorch_export.export(net, path, (12,), timesteps=T)
    network = frontend.to_float(path, source_framework="snntorch")
    ours = float_reference.run(network, x).spikes
    for name, spikes in theirs.items():
        assert np.mean(ours[name] == spikes) > 0.99, name


@pytest.mark.parametrize("module", ["RLeaky", "RSynaptic"])
def test_recurrent_layers_are_exported_as_a_subgraph(module):
    # what they compute against snnTorch, and what the exporter refuses of them:
    # test_recurrent_frontends.py
    cell = (snn.RLeaky(beta=0.5, linear_features=4, init_hidden=True) if module == "RLeaky"
            else snn.RSynaptic(alpha=0.5, beta=0.5, linear_features=4, init_hidden=True))
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), cell)
    graph = snntorch_export.to_nir(net, (3,))
    assert isinstance(graph.nodes["1"], nir.NIRGraph)
    assert ("lif", "w_rec") in graph.nodes["1"].edges


def cuba_graph(**params):
    n = 3
    weight = np.array([[2.0, 0.0], [1.0, 1.0], [0.0, 3.0]])
    cell = dict(tau_syn=np.full(n, 2e-4), tau_mem=np.full(n, 4e-4), r=np.full(n, 4.0),
                v_leak=np.zeros(n), v_threshold=np.full(n, 5.0), w_in=np.full(n, 2.0))
    cell.update(params)
    return nir.NIRGraph(nodes={"input": nir.Input(np.array([2])),
                               "fc": nir.Linear(weight=weight),
                               "cell": nir.CubaLIF(**cell),
                               "output": nir.Output(np.array([n]))},
                        edges=[("input", "fc"), ("fc", "cell"), ("cell", "output")])


def test_nir_cubalif_as_nir_defines_it():
    """dt = 1e-4: alpha = 1 - dt/tau_syn = 1/2, synaptic gain w_in*dt/tau_syn = 1,
    beta = 1 - dt/tau_mem = 3/4, membrane gain r*dt/tau_mem = 1; NIR's defaults: v > theta,
    reset to v_reset in the same step."""
    model = frontend.load(cuba_graph(), timesteps=6)
    cell = model["cell"]
    assert (cell.synapse, cell.leak) == (Leak.by_multiply(1, 1), Leak.by_multiply(3, 2))
    assert (cell.fire, cell.reset, cell.order) == ("gt", "zero", "same_step")
    assert cell.threshold.tolist() == [5, 5, 5]
    x = np.zeros((1, 6, 2), np.uint8)
    x[0, 0] = 1
    trace = reference.run(model, x)
    # neuron 1: I = 2 at t = 0: i = 2, 1, 0...; v = 2, 2, 1, 0 ... never above 5
    # neuron 0: I = 2 -> same; neuron 2: I = 3: i = 3, 1, 0; v = 3, 3, 2, 1 ...
    assert not trace.spikes["cell"].any()
    x[0, :3] = 1
    trace = reference.run(model, x)
    # neuron 2: i = 3, 4, 5, 2, 1, 0; v = 3, 6 (spike, 0), 5, 5, 4, 3
    assert trace.spikes["cell"][0, :, 2].tolist() == [0, 1, 0, 0, 0, 0]
    # a gain other than 1 is folded into the threshold: w_in = 4 doubles the current
    doubled = frontend.load(cuba_graph(w_in=np.full(3, 4.0)), timesteps=6)
    assert doubled["cell"].threshold.tolist() == [3, 3, 3] or \
        doubled.metadata["frontend"]["neurons"]["cell"]["input_gain"] == 2.0


def test_nir_cubalif_refusals_name_the_node():
    with pytest.raises(UnsupportedError, match="'cell'.*v_leak differs from v_reset"):
        frontend.load(cuba_graph(v_leak=np.full(3, 1.0)), timesteps=4)
    with pytest.raises(Exception, match="'cell'.*tau_syn must be positive"):
        frontend.load(cuba_graph(tau_syn=np.full(3, -1.0)), timesteps=4)


def test_nir_cubali_is_a_current_based_readout():
    graph = nir.NIRGraph(
        nodes={"input": nir.Input(np.array([2])), "fc": nir.Linear(weight=np.eye(2)),
               "out": nir.CubaLI(tau_syn=np.full(2, 2e-4), tau_mem=np.full(2, 4e-4),
                                 r=np.full(2, 4.0), v_leak=np.zeros(2), w_in=np.full(2, 2.0)),
               "output": nir.Output(np.array([2]))},
        edges=[("input", "fc"), ("fc", "out"), ("out", "output")])
    model = frontend.load(graph, timesteps=4)
    assert model["out"].synapse == Leak.by_multiply(1, 1)
    x = np.zeros((1, 4, 2), np.uint8)
    x[0, 0, 1] = 1
    trace = reference.run(model, x)
    # i = 1, 0, 0, 0 (floor(1/2) = 0); v = 1, 0 (floor(3/4)), 0, 0
    assert trace.potentials["out"][0, :, 1].tolist() == [1, 0, 0, 0]
