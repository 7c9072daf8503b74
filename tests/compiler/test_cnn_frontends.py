"""CNN ops through the frontends: NIR nodes with several incoming edges (residual currents,
spike adds), max pooling carried by hwgen's snnTorch helper, batch norm folded at export."""

import re

import nir
import numpy as np
import pytest
import torch

from hwgen.errors import FormatError, ModelError, UnsupportedError
from hwgen.compiler.frontends import nir as frontend
from hwgen.compiler.frontends import snntorch_export
from hwgen.compiler.ir import float_reference, reference
from snntorch_oracle import integer_conv, leaky, linear, max_pooling_cnn, run_snntorch

FLOOR = {"hwgen.membrane_rounding": "floor"}


def graph(nodes, edges):
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={}, type_check=False)


def lif(n, tau=2e-4, threshold=1.0, **metadata):
    """beta = 1 - dt/tau = 0.5 and input gain r*dt/tau = 1 at NIR's dt = 1e-4."""
    full = lambda x: np.full(n, float(x))                               # noqa: E731
    return nir.LIF(tau=full(tau), r=full(tau / 1e-4), v_leak=full(0), v_threshold=full(threshold),
                   v_reset=full(0), metadata=metadata)


def residual_graph(seed=0):
    rng = np.random.default_rng(seed)
    return graph({
        "in": nir.Input(np.array([6])),
        "a": nir.Affine(weight=rng.integers(-3, 4, (5, 6)).astype(float), bias=np.zeros(5)),
        "h": lif(5, threshold=2.0, **FLOOR),
        "b": nir.Linear(weight=rng.integers(-3, 4, (4, 5)).astype(float)),
        "skip": nir.Affine(weight=rng.integers(-2, 3, (4, 6)).astype(float),
                           bias=rng.integers(-1, 2, 4).astype(float)),
        "out": lif(4, threshold=3.0, **FLOOR),
        "o": nir.Output(np.array([4])),
    }, [("in", "a"), ("a", "h"), ("h", "b"), ("b", "out"), ("in", "skip"), ("skip", "out"),
        ("out", "o")])


def direct_residual(g, x):
    """The residual graph stepped in numpy as NIR's LIF means it (same step, reset to
    v_reset = 0, fire v > threshold), its membrane floored (the nodes' metadata)."""
    def step(current, theta):
        v = np.zeros(current.shape[::2])
        out = np.zeros(current.shape, dtype=np.uint8)
        for t in range(current.shape[1]):
            v = np.floor(0.5 * v) + current[:, t]
            out[:, t] = v > theta
            v = np.where(out[:, t], 0.0, v)
        return out
    n = g.nodes
    h = step(x @ n["a"].weight.T + n["a"].bias, 2.0)
    current = h @ n["b"].weight.T + x @ n["skip"].weight.T + n["skip"].bias
    return h, step(current, 3.0)


def test_a_nir_residual_graph_imports_as_an_add_and_agrees():
    g = residual_graph()
    network = frontend.to_float(g, timesteps=8)
    assert network["out.sum"].inputs == ["b", "skip"]
    model = frontend.load(g, timesteps=8)
    assert model.inputs_of("out.sum") == ["b", "skip"] and model.inputs_of("out") == ["out.sum"]
    notes = " ".join(model.metadata["frontend"]["assumptions"])
    assert "its 2 incoming edges ('b', 'skip') are summed" in notes
    x = np.random.default_rng(1).integers(0, 2, (20, 8, 6))
    ours = reference.run(model, x).spikes
    theirs = float_reference.run(network, x).spikes
    h, out = direct_residual(g, x.astype(float))
    for name, direct in (("h", h), ("out", out)):
        assert np.array_equal(ours[name], theirs[name]), name
        assert np.array_equal(ours[name], direct), name
    assert 0 < out.mean() < 1


def test_scaled_edges_into_one_neuron_fold_into_their_own_synapses():
    g = residual_graph()
    g.nodes["half"] = nir.Scale(scale=np.full(4, 0.5))
    g.edges.remove(("skip", "out"))
    g.edges += [("skip", "half"), ("half", "out")]
    network = frontend.to_float(g, timesteps=4)
    original = residual_graph()
    assert np.array_equal(network["skip"].weight, original.nodes["skip"].weight * 0.5)
    assert np.array_equal(network["b"].weight, original.nodes["b"].weight)


def test_edges_of_different_shapes_are_refused():
    g = residual_graph()
    g.nodes["skip"] = nir.Linear(weight=np.ones((3, 6)))
    with pytest.raises(ModelError, match=re.escape(
            "node 'out' (LIF): its incoming edges carry different shapes ('b' (4,), "
            "'skip' (3,)); NIR sums them element-wise")):
        frontend.load(g, timesteps=4)


def test_a_nir_spike_add_feeds_a_synapse_as_counts():
    rng = np.random.default_rng(2)
    g = graph({
        "in": nir.Input(np.array([5])),
        "a": nir.Linear(weight=rng.integers(-2, 4, (5, 5)).astype(float)),
        "h": lif(5, threshold=1.0, **FLOOR),
        "fc": nir.Linear(weight=rng.integers(-2, 3, (3, 5)).astype(float)),
        "out": lif(3, threshold=2.0, **FLOOR),
        "o": nir.Output(np.array([3])),
    }, [("in", "a"), ("a", "h"), ("h", "fc"), ("in", "fc"), ("fc", "out"), ("out", "o")])
    model = frontend.load(g, timesteps=6)
    assert str(model.infer()["fc.sum"]) == "current[5]:i3"
    x = rng.integers(0, 2, (16, 6, 5))
    trace = reference.run(model, x)
    counts = trace.spikes["h"].astype(int) + x
    assert counts.max() == 2 and np.array_equal(trace.currents["fc.sum"], counts)
    assert np.array_equal(trace.currents["fc"], counts @ g.nodes["fc"].weight.T)
    theirs = float_reference.run(frontend.to_float(g, timesteps=6), x).spikes
    assert np.array_equal(trace.spikes["out"], theirs["out"])


# --- snnTorch: max pooling and batch norm through hwgen's helper ----------------------------

def test_a_snntorch_cnn_with_max_pooling_agrees_spike_for_spike(tmp_path):
    net = max_pooling_cnn(7)
    x = (np.random.default_rng(7).random((12, 8, 1, 8, 8)) < 0.4).astype(np.uint8)
    theirs = run_snntorch(net, x)
    path = tmp_path / "maxpool.nir"
    graph_ = snntorch_export.export(net, path, (1, 8, 8), timesteps=8)
    assert graph_.nodes["1"].metadata == {"hwgen.pool": "max"}
    model = frontend.load(path)
    assert [op.type_name for op in model.ops] == [
        "input", "conv2d", "max_pool2d", "lif", "conv2d", "max_pool2d", "lif", "flatten",
        "dense", "lif", "readout"]
    ours = reference.run(model, x)
    # the max of negative currents matters: some pooled currents are negative
    assert ours.currents["1"].min() < 0
    for name, spikes in theirs.items():
        assert np.array_equal(ours.spikes[name], spikes.reshape(12, 8, -1)), name
        assert spikes.any(), name


def test_batch_norm_folds_into_the_convolution(tmp_path):
    generator = torch.Generator().manual_seed(8)
    conv = integer_conv(1, 3, generator)
    norm = torch.nn.BatchNorm2d(3, eps=0.0)
    with torch.no_grad():                       # g = gamma / sqrt(var) = 2, 1, 3: integers
        norm.running_mean.copy_(torch.tensor([1.0, -1.0, 0.0]))
        norm.running_var.copy_(torch.tensor([1.0, 4.0, 1.0]))
        norm.weight.copy_(torch.tensor([2.0, 2.0, 3.0]))
        norm.bias.copy_(torch.tensor([0.0, 1.0, -2.0]))
    net = torch.nn.Sequential(conv, norm, torch.nn.MaxPool2d(2), leaky(0.5, 4.0),
                              torch.nn.Flatten(), linear(3 * 3 * 3, 4, generator),
                              leaky(0.5, 2.0)).eval()
    x = (np.random.default_rng(8).random((10, 6, 1, 6, 6)) < 0.5).astype(np.uint8)
    theirs = run_snntorch(net, x)
    g = snntorch_export.to_nir(net, (1, 6, 6), timesteps=6)
    assert "1" not in g.nodes
    g_ = np.array([2.0, 1.0, 3.0])
    assert np.array_equal(g.nodes["0"].weight, conv.weight.detach().numpy() * g_[:, None, None,
                                                                                  None])
    assert np.array_equal(g.nodes["0"].bias, (conv.bias.detach().numpy() - [1, -1, 0]) * g_
                          + [0, 1, -2])
    ours = reference.run(frontend.load(g), x).spikes
    for name, spikes in theirs.items():
        assert np.array_equal(ours[name], spikes.reshape(10, 6, -1)), name
        assert spikes.any(), name


def test_a_folded_float_batch_norm_computes_what_torch_does():
    generator = torch.Generator().manual_seed(9)
    conv = torch.nn.Conv2d(2, 3, 3, padding=1)
    norm = torch.nn.BatchNorm2d(3)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator))
        norm.running_mean.copy_(torch.randn(3, generator=generator))
        norm.running_var.copy_(torch.rand(3, generator=generator) + 0.5)
        norm.weight.copy_(torch.randn(3, generator=generator))
        norm.bias.copy_(torch.randn(3, generator=generator))
    net = torch.nn.Sequential(conv, norm).eval()
    g = snntorch_export.to_nir(net, (2, 5, 5))
    x = torch.rand(4, 2, 5, 5, generator=generator)
    with torch.no_grad():
        expected = net(x).numpy()
    node = g.nodes["0"]
    folded = torch.nn.functional.conv2d(x.double(), torch.tensor(node.weight),
                                        torch.tensor(node.bias), padding=1).numpy()
    assert np.allclose(folded, expected, atol=1e-5)


def test_batch_norm_1d_folds_into_a_linear():
    generator = torch.Generator().manual_seed(10)
    fc = torch.nn.Linear(4, 3, bias=False)
    norm = torch.nn.BatchNorm1d(3)
    with torch.no_grad():
        norm.running_mean.copy_(torch.randn(3, generator=generator))
        norm.running_var.copy_(torch.rand(3, generator=generator) + 0.5)
    net = torch.nn.Sequential(fc, norm).eval()
    g = snntorch_export.to_nir(net, (4,))
    x = torch.rand(5, 4, generator=generator)
    with torch.no_grad():
        expected = net(x).numpy()
    node = g.nodes["0"]
    assert isinstance(node, nir.Affine)
    assert np.allclose(x.double().numpy() @ node.weight.T + node.bias, expected, atol=1e-5)


@pytest.mark.parametrize("net, message", [
    (lambda: torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2)),
     "module '1' (BatchNorm2d): is in training mode, where it normalises by each batch's "
     "statistics; call net.eval() to export its running statistics"),
    (lambda: torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3),
                                 torch.nn.BatchNorm2d(2, track_running_stats=False)).eval(),
     "module '1' (BatchNorm2d): track_running_stats=False keeps no running statistics to fold"),
    (lambda: torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.MaxPool2d(2),
                                 torch.nn.BatchNorm2d(2)).eval(),
     "module '2' (BatchNorm2d): hwgen folds a batch norm into the layer before it, which "
     "must be a Conv2d; here it is SumPool2d"),
    (lambda: torch.nn.Sequential(torch.nn.BatchNorm2d(1)).eval(),
     "module '0' (BatchNorm2d): hwgen folds a batch norm into the layer before it, which "
     "must be a Conv2d; here it is Input"),
    (lambda: torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3),
                                 torch.nn.MaxPool2d(2, ceil_mode=True)),
     "module '1' (MaxPool2d): ceil_mode, dilation and return_indices cannot be exported"),
    (lambda: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.MaxPool2d(2)),
     "module '1' (MaxPool2d): takes (channels, height, width), gets shape (36,)"),
])
def test_helper_refusals_for_cnn_modules(net, message):
    with pytest.raises(UnsupportedError, match=re.escape(message)):
        snntorch_export.to_nir(net(), (1, 6, 6))


def pooled_graph(metadata, padding=(0, 0), kernel=(2, 2)):
    return graph({
        "in": nir.Input(np.array([1, 4, 4])),
        "c": nir.Conv2d(input_shape=(4, 4), weight=np.ones((1, 1, 1, 1)), stride=1, padding=0,
                        dilation=1, groups=1, bias=np.zeros(1)),
        "p": nir.SumPool2d(kernel_size=np.array(kernel), stride=np.array(kernel),
                           padding=np.array(padding), metadata=metadata),
        "l": lif(4, **FLOOR),
    }, [("in", "c"), ("c", "p"), ("p", "l")])


@pytest.mark.parametrize("metadata, padding, kernel, error, message", [
    ({"hwgen.pool": "min"}, (0, 0), (2, 2), FormatError,
     "node 'p' (SumPool2d): metadata hwgen.pool = 'min' is not 'sum' or 'max' (on a "
     "SumPool2d node)"),
    ({"hwgen.pool": "max"}, (2, 0), (3, 3), ModelError,
     "node 'p' (SumPool2d): max pooling padding [2, 0] must be at most half the kernel [3, 3]"),
])
def test_bad_max_pool_nodes_are_refused(metadata, padding, kernel, error, message):
    with pytest.raises(error, match=re.escape(message)):
        frontend.load(pooled_graph(metadata, padding, kernel), timesteps=2)


def test_a_sum_pool_node_without_metadata_still_sums():
    model = frontend.load(pooled_graph({}), timesteps=2)
    assert model["p"].type_name == "sum_pool2d"
    model = frontend.load(pooled_graph({"hwgen.pool": "max"}), timesteps=2)
    assert model["p"].type_name == "max_pool2d"


def test_a_gain_behind_an_add_folds_into_every_summed_synapse():
    g = residual_graph()
    r = np.array([2.0, 4.0, 2.0, 4.0])                # gain r*dt/tau = 1, 2, 1, 2
    g.nodes["out"] = nir.LI(tau=np.full(4, 2e-4), r=r, v_leak=np.array([0.0, 1.0, 0.0, 0.0]))
    network = frontend.to_float(g, timesteps=4)
    original, gain = residual_graph(), r * 0.5
    assert np.array_equal(network["b"].weight, original.nodes["b"].weight * gain[:, None])
    assert np.array_equal(network["skip"].weight, original.nodes["skip"].weight * gain[:, None])
    assert np.array_equal(network["skip"].bias, original.nodes["skip"].bias * gain)
    # the v_leak drive goes into one synapse's bias only (b had none)
    assert network["b"].bias is not None and network["b"].bias[1] != 0
    assert np.count_nonzero(network["b"].bias) == 1


def test_a_residual_layer_is_not_calibrated_on_one_input():
    rng = np.random.default_rng(3)
    g = residual_graph()
    for name in ("b", "skip"):
        g.nodes[name].weight = g.nodes[name].weight * 0.3
    g.nodes["skip"].bias = g.nodes["skip"].bias * 0.3
    g.nodes["out"] = lif(4, threshold=0.9, **FLOOR)
    model = frontend.load(g, timesteps=6, calibration=rng.integers(0, 2, (8, 6, 6)))
    entry = next(e for e in model.metadata["quantization"]["layers"] if e["layer"] == "out")
    assert entry["synapses"] == ["b", "skip"]
    assert "not calibrated: the layer reads several producers" in entry["scale_source"]
    assert "agreement" in entry                       # still measured end to end


def test_a_scaled_edge_whose_synapse_feeds_another_node_too_is_refused():
    g = residual_graph()
    g.nodes["half"] = nir.Scale(scale=np.full(4, 0.5))
    g.nodes["other"] = lif(4)
    g.edges.remove(("skip", "out"))
    g.edges += [("skip", "half"), ("half", "out"), ("skip", "other")]
    with pytest.raises(UnsupportedError, match=re.escape(
            "node 'out' (LIF): its incoming edges are scaled differently, and the one from "
            "'half' has no synapse of its own to fold its factor into")):
        frontend.to_float(g, timesteps=4)


def test_helper_files_with_max_pooling_and_batch_norm_are_standard_nir(tmp_path):
    generator = torch.Generator().manual_seed(11)
    net = torch.nn.Sequential(integer_conv(1, 2, generator), torch.nn.BatchNorm2d(2),
                              torch.nn.MaxPool2d(2), leaky(0.5, 2.0)).eval()
    path = tmp_path / "cnn.nir"
    snntorch_export.export(net, path, (1, 4, 4), timesteps=3)
    graph_ = nir.read(path)                      # NIR's own reader and type check accept it
    assert isinstance(graph_.nodes["2"], nir.SumPool2d)
    assert graph_.nodes["2"].metadata == {"hwgen.pool": "max"}
    assert [n for n in graph_.nodes if n not in ("input", "output")] == ["0", "2", "3"]
    model = frontend.load(path)
    assert [op.type_name for op in model.ops] == ["input", "conv2d", "max_pool2d", "lif"]


def test_a_sum_named_like_another_node_is_refused():
    g = residual_graph()
    g.nodes["out.sum"] = lif(4)
    g.edges.append(("out", "out.sum"))
    with pytest.raises(FormatError, match=re.escape(
            "node 'out' (LIF): the sum of its edges would be named 'out.sum', which another "
            "node already is")):
        frontend.to_float(g, timesteps=2)


def test_a_max_pool_of_a_negatively_scaled_input_is_refused():
    g = pooled_graph({"hwgen.pool": "max"})
    g.nodes["neg"] = nir.Scale(scale=np.full((1, 4, 4), -1.0))
    g.edges.remove(("c", "p"))
    g.edges += [("c", "neg"), ("neg", "p")]
    with pytest.raises(UnsupportedError, match=re.escape(
            "node 'p' (SumPool2d): its input is scaled by a factor that is not positive, which "
            "a max does not commute with")):
        frontend.load(g, timesteps=2)


@pytest.mark.parametrize("net, shape, message", [
    (lambda: torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(3)).eval(),
     (1, 6, 6), "module '1' (BatchNorm2d): normalises 3 channels, the layer before it has 2"),
    (lambda: torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm1d(2)).eval(),
     (1, 6, 6), "module '1' (BatchNorm1d): hwgen folds a BatchNorm1d into the Linear before "
                "it; its input has shape (2, 4, 4)"),
    (lambda: torch.nn.Sequential(torch.nn.Linear(4, 2), leaky(0.5, 1.0),
                                 torch.nn.BatchNorm1d(2)).eval(),
     (4,), "module '2' (BatchNorm1d): hwgen folds a batch norm into the layer before it, "
           "which must be a Linear; here it is LIF"),
])
def test_more_batch_norm_refusals(net, shape, message):
    with pytest.raises(UnsupportedError, match=re.escape(message)):
        snntorch_export.to_nir(net(), shape)


def conv(weight, padding=1):
    return nir.Conv2d(input_shape=None, weight=weight.astype(float), stride=1, padding=padding,
                      dilation=1, groups=1, bias=np.zeros(weight.shape[0]))


def shaped_lif(shape, threshold):
    node = lif(int(np.prod(shape)), threshold=threshold, **FLOOR)
    for key in ("tau", "r", "v_leak", "v_threshold", "v_reset"):
        setattr(node, key, getattr(node, key).reshape(shape))
    return node


def test_a_nir_sew_block_of_convolutions_agrees_with_the_float_model():
    """SEW-ResNet's basic block in NIR: conv -> LIF -> conv -> LIF, plus the block's input
    spikes (ADD), then a convolution reading the counts; and a convolutional residual of
    currents (a shortcut convolution summed into the second LIF)."""
    rng = np.random.default_rng(12)
    shape = (2, 5, 5)
    g = graph({
        "in": nir.Input(np.array(shape)),
        "c1": conv(rng.integers(-1, 3, (2, 2, 3, 3))),
        "l1": shaped_lif(shape, 2.0),
        "c2": conv(rng.integers(-1, 3, (2, 2, 3, 3))),
        "short": conv(rng.integers(-1, 2, (2, 2, 1, 1)), padding=0),
        "l2": shaped_lif(shape, 3.0),
        "c3": conv(rng.integers(-1, 3, (1, 2, 2, 2)), padding=0),
        "l3": shaped_lif((1, 4, 4), 2.0),
    }, [("in", "c1"), ("c1", "l1"), ("l1", "c2"), ("c2", "l2"), ("in", "short"),
        ("short", "l2"), ("l2", "c3"), ("in", "c3"), ("c3", "l3")])
    model = frontend.load(g, timesteps=6)
    assert model.inputs_of("l2.sum") == ["c2", "short"]
    assert model.inputs_of("c3.sum") == ["in", "l2"]
    assert str(model.infer()["c3.sum"]) == "current[2, 5, 5]:i3"
    x = rng.integers(0, 2, (10, 6, *shape))
    ours = reference.run(model, x)
    theirs = float_reference.run(frontend.to_float(g, timesteps=6), x)
    for name in ("l1", "l2", "l3"):
        assert np.array_equal(ours.spikes[name], theirs.spikes[name]), name
        assert 0 < ours.spikes[name].mean() < 1, name
    assert ours.currents["c3.sum"].max() == 2
