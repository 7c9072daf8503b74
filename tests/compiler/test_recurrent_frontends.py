"""Recurrent layers in the frontends (docs/semantics.md section 4c): the float model and its
reference, the quantizer, the passes that walk dense weights, the NIR importer (a neuron
fed back through an Affine, flat or inside a NIR subgraph) and the snnTorch helper
(RLeaky, RSynaptic).

The oracle is snnTorch 1.0's own simulation: with integer weights and
``state_quant=torch.floor`` it computes exactly what hwgen's integer reference does, so
every spike must agree, as in test_snntorch_agreement.py and test_snntorch_synaptic.py.
"""

import itertools

import nir
import numpy as np
import pytest

snn = pytest.importorskip("snntorch")
torch = pytest.importorskip("torch")

import nirtorch                                                            # noqa: E402
from snntorch.export_nir import _extract_snntorch_module                  # noqa: E402

from braille import CLASSES, HIDDEN, braille_graph, braille_inputs        # noqa: E402
from hwgen.compiler.frontends import native                                # noqa: E402
from hwgen.compiler.frontends import nir as frontend                       # noqa: E402
from hwgen.compiler.frontends import snntorch_export                       # noqa: E402
from hwgen.compiler.ir import Dense, float_reference, reference            # noqa: E402
from hwgen.compiler.ir.floating import (FloatDense, FloatInput, FloatIntegrator,  # noqa: E402
                                        FloatNetwork, FloatNeuron, FloatReadout)
from hwgen.compiler.passes.legalise import legalise                        # noqa: E402
from hwgen.compiler.passes.quantize import quantize, signed_bits            # noqa: E402
from hwgen.compiler.passes.reachability import silent_layers               # noqa: E402
from hwgen.errors import FormatError, ModelError, UnsupportedError         # noqa: E402
import snntorch_oracle                                                      # noqa: E402
from snntorch_oracle import linear, recurrent_net                          # noqa: E402

T = 12


def random_spikes(seed, samples=16, steps=T, inputs=8, density=0.4):
    rng = np.random.default_rng(seed)
    return (rng.random((samples, steps, inputs)) < density).astype(np.uint8)


def assert_same(ours, theirs, name):
    mismatches = np.argwhere(ours != theirs)
    assert not len(mismatches), (f"layer {name}: {len(mismatches)} spikes differ, first at "
                                 f"(sample, step, neuron) {tuple(mismatches[0])}")


# --- the float model and the quantizer --------------------------------------------------------

def recurrent_network(weight, bias=None, *, beta=0.5, threshold=3.0, rounding="floor",
                      alpha=None, reset="subtract", order="delayed"):
    """input (K) -> recurrent dense (N, K + N) -> neuron layer (N) -> spike count."""
    n, k = weight.shape[0], weight.shape[1] - weight.shape[0]
    network = FloatNetwork("rnn", T)
    network.add(FloatInput(name="in", inputs=[], shape=(k,)))
    network.add(FloatDense(name="fc", inputs=["in"], shape=(n,), weight=weight, bias=bias,
                           recurrent=True))
    network.add(FloatNeuron(name="lif", inputs=["fc"], shape=(n,), beta=np.full(n, beta),
                            threshold=np.full(n, threshold), fire="gt", reset=reset,
                            order=order, rounding=rounding,
                            alpha=None if alpha is None else np.full(n, alpha),
                            synapse_rounding="separate"))
    network.add(FloatReadout(name="out", inputs=["lif"], shape=(), mode="spike_count"))
    return network


def integer_weight(seed, k=8, n=6):
    return np.random.default_rng(seed).integers(-3, 4, (n, k + n)).astype(float)


@pytest.mark.parametrize("alpha", [None, 0.5])
@pytest.mark.parametrize("reset, order", [("subtract", "delayed"), ("zero", "same_step"),
                                          ("none", "same_step")])
def test_an_integer_recurrent_float_model_quantizes_exactly(alpha, reset, order):
    weight = integer_weight(1)
    bias = np.array([1.0, 0, -1, 0, 1, 0])
    network = recurrent_network(weight, bias, alpha=alpha, reset=reset, order=order)
    model = quantize(network)
    dense = model["fc"]
    assert isinstance(dense, Dense) and dense.recurrent
    assert np.array_equal(dense.weight, weight) and np.array_equal(dense.bias, bias)
    assert dense.acc_bits == signed_bits(int(np.abs(weight).sum(axis=1).max() + 1))
    x = random_spikes(1)
    ours = reference.run(model, x).spikes["lif"]
    floats = float_reference.run(network, x).spikes["lif"]
    assert_same(ours, floats, "lif")
    # the recurrent half matters: the same weights without it spike differently
    forward = quantize(_feedforward(network))
    assert not np.array_equal(reference.run(forward, x).spikes["lif"], ours)
    assert 0 < ours.mean() < 1


def _feedforward(network):
    """``network`` with its recurrent columns dropped."""
    copy = FloatNetwork(network.name, network.timesteps)
    for layer in network:
        if isinstance(layer, FloatDense):
            layer = FloatDense(name=layer.name, inputs=layer.inputs, shape=layer.shape,
                               weight=layer.feedforward_weight.copy(), bias=layer.bias)
        copy.add(layer)
    return copy


def test_one_scale_for_all_columns_of_a_float_recurrent_layer():
    rng = np.random.default_rng(2)
    weight = rng.normal(0, 1, (6, 14))
    weight[0, 10] = 4.0                      # the largest weight is a recurrent one
    bias = rng.normal(0, 0.3, 6)
    network = recurrent_network(weight, bias, rounding="exact", threshold=2.5)
    model = quantize(network)
    dense = model["fc"]
    layer = model.metadata["quantization"]["layers"][0]
    scale = layer["scale"]
    assert scale == pytest.approx(127 / 4.0) and dense.weight[0, 10] == 127
    assert np.array_equal(dense.weight, np.round(weight * scale))
    assert np.array_equal(dense.bias, np.round(bias * scale))
    assert layer["recurrent_weights"] == 36 and layer["weights"] == 6 * 14
    assert dense.acc_bits == signed_bits(dense.accumulator_bound())


def test_calibration_on_a_recurrent_layer_reports_its_agreement():
    weight = np.random.default_rng(3).normal(0, 1, (6, 14))
    network = recurrent_network(weight, rounding="exact", threshold=1.5)
    x = random_spikes(3)
    model = quantize(network, calibration=x)
    agreement = model.metadata["quantization"]["calibration"]["layers"]["lif"]
    assert agreement["spike_agreement"] > 0.9
    expected = np.mean(reference.run(model, x).spikes["lif"]
                       == float_reference.run(network, x).spikes["lif"])
    assert agreement["spike_agreement"] == pytest.approx(expected)


def test_a_recurrent_float_layer_must_feed_its_own_neurons():
    network = recurrent_network(integer_weight(4))
    network.remove("out")
    network.remove("lif")
    network.add(FloatIntegrator(name="li", inputs=["fc"], shape=(6,), beta=np.full(6, 0.5)))
    with pytest.raises(UnsupportedError, match=r"^layer 'fc': a recurrent synapse must feed "
                                               r"exactly one spiking layer of 6 neurons \(its "
                                               r"spikes come back one step late\), but it feeds "
                                               r"'li'$"):
        quantize(network)
    with pytest.raises(ModelError, match=r"layer 'bad': a recurrent weight is \(outputs, inputs "
                                         r"\+ outputs\); \(6, 4\) has fewer columns than rows"):
        network.add(FloatDense(name="bad", inputs=["in"], shape=(6,), weight=np.ones((6, 4)),
                               recurrent=True))


def test_reachability_counts_the_recurrent_spikes():
    """The feed-forward weights alone cannot fire the layer; the recurrent ones could, were
    any neuron firing. The pass bounds them as spikes that can be 1 (so it does not call
    the layer silent), and it no longer trips over the K + N columns."""
    weight = np.zeros((6, 14))
    weight[:, :8] = 1.0                      # 8 inputs reach 8 * 2 = 16 < 20 at most
    weight[:, 8:] = 3.0
    network = recurrent_network(weight, beta=0.5, threshold=20.0)
    model = quantize(network)
    assert silent_layers(model) == []
    weight[:, 8:] = -3.0
    model = quantize(recurrent_network(weight, beta=0.5, threshold=20.0))
    [warning] = silent_layers(model)
    assert warning.startswith("layer 'lif' can never spike")


def test_legalise_takes_a_recurrent_layer_as_one_dense_lif_pair():
    model = quantize(recurrent_network(integer_weight(5)))
    chain = legalise(model)
    [layer] = chain.layers
    assert layer.dense.recurrent and layer.lif.name == "lif" and layer.source == "in"
    assert (layer.inputs, layer.outputs) == (14, 6)


# --- snnTorch: RLeaky and RSynaptic, exported and imported ------------------------------------

def run_snntorch(net, x):
    """snnTorch's spikes of modules '1' (the recurrent one) and '3', (samples, T, n)."""
    return snntorch_oracle.run_snntorch(net, x)


def exported(net, x, tmp_path, **options):
    path = tmp_path / "rnn.nir"
    snntorch_export.export(net, path, (x.shape[2],), timesteps=x.shape[1])
    return path, frontend.load(path, **options)


RLEAKY_MODES = [("subtract", True), ("subtract", False), ("zero", False), ("none", True),
                ("none", False)]
RSYNAPTIC_MODES = [("subtract", True), ("zero", True), ("none", True)]
CASES = ([("RLeaky", *mode) for mode in RLEAKY_MODES]
         + [("RSynaptic", *mode) for mode in RSYNAPTIC_MODES])


@pytest.mark.parametrize("all_to_all", [True, False])
@pytest.mark.parametrize("kind, reset_mechanism, reset_delay", CASES)
def test_recurrent_snntorch_layers_spike_exactly_like_snntorch(tmp_path, kind, reset_mechanism,
                                                               reset_delay, all_to_all):
    seed = 7 + len(reset_mechanism) + 3 * reset_delay + 11 * all_to_all
    net = recurrent_net(seed, kind, reset_mechanism=reset_mechanism, reset_delay=reset_delay,
                        all_to_all=all_to_all)
    x = random_spikes(seed)
    theirs = run_snntorch(net, x)
    path, model = exported(net, x, tmp_path)
    dense, lif = model["0"], model["1.lif"]
    assert dense.recurrent and model.recurrent_synapse("1.lif") is dense
    recurrent = net[1].recurrent
    expected = (recurrent.weight.detach().numpy() if all_to_all
                else np.diag(recurrent.V.detach().numpy()))
    assert np.array_equal(dense.recurrent_weight, expected)
    bias = net[0].bias.detach().numpy() + (recurrent.bias.detach().numpy() if all_to_all else 0)
    assert np.array_equal(dense.bias, bias)
    assert (lif.reset, lif.order) == (reset_mechanism, "delayed" if reset_delay
                                      else "snntorch_same_step")
    assert (lif.synapse is not None) == (kind == "RSynaptic")
    assert all(layer["exact_integers"] for layer in model.metadata["quantization"]["layers"])
    trace = reference.run(model, x)
    assert_same(trace.spikes["1.lif"], theirs["1"], "1.lif")
    assert_same(trace.spikes["3"], theirs["3"], "3")
    floats = float_reference.run(frontend.to_float(path), x).spikes
    assert_same(floats["1.lif"], theirs["1"], "1.lif (float model)")
    assert 0 < theirs["1"].mean() < 1 and 0 < theirs["3"].mean() < 1
    assert model.metadata["frontend"]["neurons"]["1.lif"]["recurrent_synapse"] == "1.w_rec"
    assert any("'1.lif' -> '1.w_rec' -> '1.lif' is a recurrent connection" in note
               for note in model.metadata["frontend"]["assumptions"])


@pytest.mark.parametrize("kind", ["RLeaky", "RSynaptic"])
def test_beta_one_and_a_scalar_v(tmp_path, kind):
    """beta = 1 (written as an IF node, or a CubaLIF with infinite tau_mem) and
    all_to_all=False with snnTorch's default scalar V = 1 (the identity; snnTorch's own
    exporter refuses a scalar V)."""
    generator = torch.Generator().manual_seed(8)
    common = dict(beta=1.0, threshold=4.0, init_hidden=True, state_quant=torch.floor,
                  all_to_all=False)
    cell = snn.RLeaky(**common) if kind == "RLeaky" else snn.RSynaptic(alpha=0.5, **common)
    net = torch.nn.Sequential(linear(8, 6, generator), cell, linear(6, 4, generator),
                              snn.Leaky(beta=0.5, threshold=2.0, init_hidden=True,
                                        state_quant=torch.floor))
    x = random_spikes(8)
    theirs = run_snntorch(net, x)
    path, model = exported(net, x, tmp_path)
    assert np.array_equal(model["0"].recurrent_weight, np.eye(6))
    assert model["1.lif"].leak.kind == "none"
    trace = reference.run(model, x)
    assert_same(trace.spikes["1.lif"], theirs["1"], "1.lif")
    assert_same(trace.spikes["3"], theirs["3"], "3")
    assert 0 < theirs["1"].mean() < 1


def test_the_recurrent_connection_changes_the_spikes(tmp_path):
    """Without it (the same net, recurrent weights zeroed) snnTorch spikes differently, so
    the agreement above depends on the recurrent half being read right."""
    net = recurrent_net(3, "RLeaky")
    x = random_spikes(3)
    theirs = run_snntorch(net, x)
    with torch.no_grad():
        net[1].recurrent.weight.zero_()
        net[1].recurrent.bias.zero_()
    assert not np.array_equal(run_snntorch(net, x)["1"], theirs["1"])
    _, model = exported(recurrent_net(3, "RLeaky"), x, tmp_path)
    assert_same(reference.run(model, x).spikes["1.lif"], theirs["1"], "1.lif")


def test_helper_files_are_standard_nir_in_snntorchs_own_form(tmp_path):
    net = recurrent_net(4, "RSynaptic")
    path = tmp_path / "rnn.nir"
    snntorch_export.export(net, path, (8,), timesteps=T)
    graph = nir.read(path)
    sub = graph.nodes["1"]
    assert isinstance(sub, nir.NIRGraph) and isinstance(sub.nodes["lif"], nir.CubaLIF)
    assert isinstance(sub.nodes["w_rec"], nir.Affine)
    assert sorted(sub.edges) == sorted([("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"),
                                        ("lif", "output")])
    assert sub.nodes["lif"].metadata["snntorch.module"] == "RSynaptic"


def official_graph(net, inputs):
    """What snnTorch 1.0's own export_to_nir builds (it then fails its own type check)."""
    return nirtorch.extract_nir_graph(net, _extract_snntorch_module, torch.zeros(1, inputs),
                                      model_name="snntorch",
                                      ignore_submodules_of=[snn.RLeaky, snn.RSynaptic])


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::RuntimeWarning")
@pytest.mark.parametrize("kind, all_to_all", list(itertools.product(("RLeaky", "RSynaptic"),
                                                                    (True, False))))
def test_graphs_from_snntorchs_own_exporter(kind, all_to_all):
    """snnTorch's export_to_nir writes the recurrent layer as a subgraph (nirtorch flattens
    it to '1.lif', '1.w_rec'); it records no reset, and hwgen's snnTorch reading assumes
    the default (subtract, one step late)."""
    net = recurrent_net(21, kind, all_to_all=all_to_all)
    graph = official_graph(net, 8)
    model = frontend.load(graph, source_framework="snntorch", timesteps=T)
    x = random_spikes(21)
    theirs = run_snntorch(net, x)
    trace = reference.run(model, x)
    assert model["0"].recurrent
    assert_same(trace.spikes["1.lif"], theirs["1"], "1.lif")
    assert_same(trace.spikes["3"], theirs["3"], "3")


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::RuntimeWarning")
def test_rleakys_delayed_zero_reset_is_not_hwgens_and_is_refused():
    """RLeaky(reset_mechanism='zero', reset_delay=True) zeroes the input of the step after
    a spike too: read as hwgen's voltage-based delayed zero reset (what snnTorch's own
    file says with --reset zero), spikes differ, so the helper refuses it."""
    net = recurrent_net(5, "RLeaky", reset_mechanism="zero", reset_delay=True)
    x = random_spikes(5)
    theirs = run_snntorch(net, x)
    model = frontend.load(official_graph(net, 8), source_framework="snntorch", timesteps=T,
                          reset="zero")
    assert np.any(reference.run(model, x).spikes["1.lif"] != theirs["1"])
    with pytest.raises(UnsupportedError, match=r"^module '1' \(RLeaky\): reset_mechanism="
                                               r"'zero' with reset_delay=True zeroes the whole "
                                               r"step after a spike, its input too"):
        snntorch_export.to_nir(net, (8,))


@pytest.mark.parametrize("build, message", [
    (lambda: snn.RSynaptic(alpha=0.5, beta=0.5, linear_features=4, init_hidden=True,
                           reset_delay=False),
     r"module '1' \(RSynaptic\): snnTorch 1.0's RSynaptic\(reset_delay=False\) applies its "
     r"same-step reset to local copies and loses it"),
    (lambda: snn.RLeaky(beta=0.5, conv2d_channels=4, kernel_size=3, init_hidden=True),
     r"module '1' \(RLeaky\): its recurrent Conv2d \(a convolution\) cannot be exported"),
    (lambda: snn.RLeaky(beta=0.5, linear_features=5, init_hidden=True),
     r"module '1' \(RLeaky\): its recurrent Linear is 5 -> 5, its input has 4 neurons"),
    (lambda: snn.RLeaky(beta=0.5, all_to_all=False, V=torch.ones(3), init_hidden=True),
     r"module '1' \(RLeaky\): V has 3 values for 4 neurons"),
])
def test_recurrent_layers_the_helper_refuses(build, message):
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), build())
    with pytest.raises(UnsupportedError, match="^" + message):
        snntorch_export.to_nir(net, (3,))


def test_a_recurrent_layer_needs_a_vector_input():
    net = torch.nn.Sequential(snn.RLeaky(beta=0.5, linear_features=4, init_hidden=True))
    with pytest.raises(UnsupportedError, match=r"^module '0' \(RLeaky\): its input has shape "
                                               r"\(2, 4\); a recurrent layer takes a vector"):
        snntorch_export.to_nir(net, (2, 4))


# --- NIR graphs written by hand -----------------------------------------------------------------

def graph(nodes, edges, metadata=None):
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata or {}, type_check=False)


def lif(n, threshold=3.0):
    return nir.LIF(tau=np.full(n, 2e-4), r=np.full(n, 2.0), v_leak=np.zeros(n),
                   v_threshold=np.full(n, threshold), v_reset=np.zeros(n))


def rnn(**changes):
    """in (4) -> fc -> lif (3) with lif -> rec -> lif, -> out; ``changes`` replace nodes,
    ``edges`` the edge list."""
    rng = np.random.default_rng(0)
    nodes = {"in": nir.Input(np.array([4])),
             "fc": nir.Affine(rng.integers(-3, 4, (3, 4)).astype(float), np.array([1., 0, -1])),
             "lif": lif(3),
             "rec": nir.Affine(rng.integers(-3, 4, (3, 3)).astype(float), np.array([0., 1, 1])),
             "out": nir.Output(np.array([3]))}
    edges = changes.pop("edges", [("in", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"),
                                  ("lif", "out")])
    nodes.update(changes)
    return graph(nodes, edges)


def test_a_flat_nir_cycle_becomes_one_recurrent_dense():
    g = rnn()
    model = frontend.load(g, timesteps=T)
    dense = model["fc"]
    assert dense.recurrent and "rec" not in [op.name for op in model.ops]
    assert np.array_equal(dense.weight, np.hstack([g.nodes["fc"].weight, g.nodes["rec"].weight]))
    assert np.array_equal(dense.bias, g.nodes["fc"].bias + g.nodes["rec"].bias)
    # NIR's reading: at step t the Affine on the back edge carries the spikes of step t-1;
    # written out directly here (beta 0.5, same-step reset to zero, fire v > theta)
    x = random_spikes(9, inputs=4, density=0.5)
    w_in, w_rec = g.nodes["fc"].weight, g.nodes["rec"].weight
    bias = g.nodes["fc"].bias + g.nodes["rec"].bias
    v = np.zeros((len(x), 3))
    s = np.zeros((len(x), 3))
    expected = np.zeros((len(x), T, 3), dtype=np.uint8)
    for t in range(T):
        v = np.floor(0.5 * v) + x[:, t] @ w_in.T + s @ w_rec.T + bias
        s = (v > 3.0).astype(float)
        v = np.where(s > 0, 0.0, v)
        expected[:, t] = s
    ours = reference.run(model, x).spikes["lif"]
    assert_same(ours, expected, "lif")
    assert 0 < ours.mean() < 1


def test_a_cycle_inside_a_nir_subgraph_is_read_the_same():
    flat = rnn()
    inner = graph({"input": nir.Input(np.array([3])), "lif": lif(3), "rec": flat.nodes["rec"],
                   "output": nir.Output(np.array([3]))},
                  [("input", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "output")])
    nested = graph({"in": flat.nodes["in"], "fc": flat.nodes["fc"], "sub": inner,
                    "out": nir.Output(np.array([3]))},
                   [("in", "fc"), ("fc", "sub"), ("sub", "out")])
    a, b = frontend.load(flat, timesteps=T), frontend.load(nested, timesteps=T)
    assert [op.name for op in b.ops] == ["in", "fc", "sub.lif", "out"]
    assert np.array_equal(a["fc"].weight, b["fc"].weight) and b["fc"].recurrent
    x = random_spikes(10, inputs=4)
    assert_same(reference.run(b, x).spikes["sub.lif"], reference.run(a, x).spikes["lif"],
                "sub.lif")
    # deterministic: the same graph reads the same, whatever order its edges come in
    shuffled = graph(dict(nested.nodes), list(reversed(nested.edges)))
    shuffled.nodes["sub"] = graph(dict(inner.nodes), list(reversed(inner.edges)))
    c = frontend.load(shuffled, timesteps=T)
    assert native.dumps(c) == native.dumps(b)


def test_a_linear_recurrent_synapse_and_a_linear_feed_forward_one():
    g = rnn(fc=nir.Linear(np.ones((3, 4))), rec=nir.Linear(np.eye(3)))
    model = frontend.load(g, timesteps=T)
    assert model["fc"].recurrent and model["fc"].bias is None
    assert np.array_equal(model["fc"].recurrent_weight, np.eye(3))


def test_input_gains_fold_into_both_halves():
    """r*dt/tau scales the node's whole input, the recurrent half included: a gain that
    cannot go into the threshold (one negative) is folded into the rows of both halves."""
    gain = np.array([1.0, -1.0, 2.0])
    g = rnn(lif=nir.LIF(tau=np.full(3, 2e-4), r=2.0 * gain, v_leak=np.zeros(3),
                        v_threshold=np.full(3, 3.0), v_reset=np.zeros(3)))
    network = frontend.to_float(g, timesteps=T)
    plain = rnn()
    for name in ("fc", "rec"):
        plain.nodes[name].weight = plain.nodes[name].weight * gain[:, None]
        plain.nodes[name].bias = plain.nodes[name].bias * gain
    expected = frontend.to_float(plain, timesteps=T)
    assert network["fc"].recurrent
    assert np.array_equal(network["fc"].weight, expected["fc"].weight)
    assert np.array_equal(network["fc"].bias, expected["fc"].bias)
    x = random_spikes(11, inputs=4)
    ours = float_reference.run(network, x).spikes["lif"]
    assert_same(ours, float_reference.run(expected, x).spikes["lif"], "lif")
    assert 0 < ours.mean() < 1


def test_the_braille_graph_shape_imports_as_one_recurrent_layer():
    g = braille_graph(seed=0, timesteps=256)
    assert isinstance(g.nodes["lif1"], nir.NIRGraph)
    assert g.nodes["lif1"].nodes["w_rec"].weight.shape == (HIDDEN, HIDDEN)
    model = frontend.load(g)
    assert model.timesteps == 256
    assert [op.name for op in model.ops] == ["input", "fc1", "lif1.lif", "fc2", "lif2", "output"]
    fc1 = model["fc1"]
    assert fc1.recurrent and fc1.weight.shape == (HIDDEN, 12 + HIDDEN)
    assert not model["fc2"].recurrent and model["fc2"].weight.shape == (CLASSES, HIDDEN)
    assert model["lif1.lif"].synapse is not None and model["lif2"].synapse is not None
    layers = model.metadata["quantization"]["layers"]
    assert all(layer["leak"]["exact"] and layer["synaptic_leak"]["exact"] for layer in layers)


def test_the_braille_graph_float_and_integer_references_agree_closely():
    g = braille_graph(seed=0)
    x = braille_inputs(samples=4, seed=0, density=0.15)
    floats = float_reference.run(frontend.to_float(g), x).spikes
    ours = reference.run(frontend.load(g), x).spikes
    for name in ("lif1.lif", "lif2"):
        rate = floats[name].mean()
        assert 0.02 < rate < 0.5, (name, rate)           # both layers spike, neither saturates
        assert np.mean(ours[name] == floats[name]) > 0.9, name
        assert abs(ours[name].mean() - rate) < 0.1 * rate + 0.01, name
    assert (floats["lif1.lif"].sum(axis=(0, 1)) > 0).mean() > 0.5     # most neurons spike


def test_an_integer_valued_braille_graph_agrees_exactly():
    """Weights rounded to integers and the membranes floored (node metadata): the float
    model and the integer reference are then the same computation, recurrent part too."""
    g = braille_graph(seed=1)
    for node in (g.nodes["fc1"], g.nodes["fc2"], g.nodes["lif1"].nodes["w_rec"]):
        node.weight = np.round(node.weight * 8)
        node.bias = np.round(node.bias * 8)
    for node in (g.nodes["lif1"].nodes["lif"], g.nodes["lif2"]):
        node.v_threshold = node.v_threshold * 8
        node.metadata = {"hwgen.membrane_rounding": "floor"}
    x = braille_inputs(samples=3, seed=1, timesteps=64)
    g.metadata["hwgen.timesteps"] = 64
    model = frontend.load(g)
    assert all(layer["exact_integers"] for layer in model.metadata["quantization"]["layers"])
    floats = float_reference.run(frontend.to_float(g), x).spikes
    ours = reference.run(model, x).spikes
    for name in ("lif1.lif", "lif2"):
        assert_same(ours[name], floats[name], name)
        assert 0 < ours[name].mean() < 1


NOT_RECURRENT_FORM = r"hwgen runs a recurrent connection only as a spiking neuron node -> " \
                     r"an Affine or Linear node that feeds nothing else -> the same neuron node$"


@pytest.mark.parametrize("changes, error, message", [
    # the recurrent Affine also feeds another layer
    (dict(other=lif(3), edges=[("in", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"),
                               ("rec", "other"), ("lif", "out")]), UnsupportedError,
     r"node 'rec' \(Affine\): takes the spikes of 'lif' back to it and also connects to "
     r"'other'; a recurrent synapse may read and feed only its own neuron node$"),
    # a Scale inside the loop
    (dict(scale=nir.Scale(np.full(3, 2.0)),
          edges=[("in", "fc"), ("fc", "lif"), ("lif", "scale"), ("scale", "rec"),
                 ("rec", "lif"), ("lif", "out")]), UnsupportedError,
     r"recurrent connection .* \(cycle (lif -> scale -> rec -> lif|scale -> rec -> lif -> "
     r"scale|rec -> lif -> scale -> rec)\); " + NOT_RECURRENT_FORM),
    # a cycle through two layers
    (dict(fc2=nir.Linear(np.ones((3, 3))), lif2=lif(3),
          back=nir.Linear(np.ones((3, 3))),
          edges=[("in", "fc"), ("fc", "lif"), ("lif", "fc2"), ("fc2", "lif2"),
                 ("lif2", "back"), ("back", "lif"), ("lif2", "out")]), UnsupportedError,
     r"recurrent connection .*; " + NOT_RECURRENT_FORM),
    # a non-spiking neuron fed back
    (dict(lif=nir.LI(tau=np.full(3, 2e-4), r=np.full(3, 2.0), v_leak=np.zeros(3))),
     UnsupportedError,
     r"node 'rec' \(Affine\): feeds the output of node 'lif' \(LI\) back to it; hwgen runs "
     r"recurrent connections of spiking neurons only \(LIF, IF, CubaLIF\)$"),
    # two recurrent synapses on one neuron
    (dict(rec2=nir.Linear(np.eye(3)),
          edges=[("in", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "rec2"),
                 ("rec2", "lif"), ("lif", "out")]), UnsupportedError,
     r"node 'lif' \(LIF\): has two recurrent synapses \('rec', 'rec2'\); hwgen reads one per "
     r"neuron node$"),
    # a Scale between the feed-forward Affine and the recurrent neuron
    (dict(scale=nir.Scale(np.full(3, 2.0)),
          edges=[("in", "fc"), ("fc", "scale"), ("scale", "lif"), ("lif", "rec"),
                 ("rec", "lif"), ("lif", "out")]), UnsupportedError,
     r"node 'lif' \(LIF\): takes its own spikes back through 'rec', so its other input must "
     r"come straight from an Affine or Linear node; node 'scale' \(Scale\) is not one"),
    # a recurrent weight of the wrong shape
    (dict(rec=nir.Linear(np.ones((3, 2)))), ModelError,
     r"node 'rec' \(Linear\): a recurrent weight of 'lif''s 3 neurons must be \(3, 3\), got "
     r"\(3, 2\)$"),
    # only the recurrent input
    (dict(edges=[("in", "fc"), ("lif", "rec"), ("rec", "lif"), ("lif", "out")]), FormatError,
     r"node 'lif' \(LIF\): has no incoming edge; it is not connected to the Input$"),
])
def test_cycles_not_of_the_recurrent_form_are_refused(changes, error, message):
    with pytest.raises(error, match="^NIR graph: " + message) as caught:
        frontend.load(rnn(**changes), timesteps=T)
    assert "\n" not in str(caught.value)
