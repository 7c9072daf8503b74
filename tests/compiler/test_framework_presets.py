"""The ``sinabs`` and ``norse`` source-framework presets read what those exporters write.

Each framework's neuron is transcribed here from its source (Sinabs 3.1: layers/functional/
lif.py, activation/spike_generation.py, reset_mechanism.py; Norse 1.1: functional/lif_box.py,
functional/iaf.py) and the graphs are built with the ``nir`` package in the exact shape the
framework's exporter writes (Sinabs: ``sinabs/nir.py``; Norse: ``norse/torch/utils/
export_nir.py``). Where the framework itself is installed, its own simulation and exporter
are the oracle too (test_norse_agreement.py, and the sinabs tests below).
"""

import nir
import numpy as np
import pytest

from hwgen.errors import ConfigError, UnsupportedError
from hwgen.compiler.frontends import nir as frontend
from hwgen.compiler.ir import float_reference, reference


def chain(nodes):
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])), type_check=False)


def spikes(seed, samples, steps, size, density=0.5):
    return (np.random.default_rng(seed).random((samples, steps, size)) < density).astype(np.uint8)


# --- Sinabs -----------------------------------------------------------------------------

def sinabs_if(n, threshold):
    """What ``sinabs.to_nir`` writes for an IAF layer: r = 1, v_threshold, no v_reset."""
    node = nir.IF(r=np.ones(n), v_threshold=np.full(n, float(threshold)))
    node.v_reset = None
    return node


def sinabs_run(weights, thresholds, x, *, multi, alphas=None, norm_input=False):
    """Sinabs's IAF / LIF (MembraneSubtract), layer after layer, in float64: every layer's
    output spike counts per step (several per step with MultiSpike)."""
    values, result = x.astype(np.float64), []
    for index, (w, theta) in enumerate(zip(weights, thresholds)):
        alpha = 1.0 if alphas is None else alphas[index]
        current = values @ w.T
        v = np.zeros(current.shape[::2])
        out = np.zeros_like(current)
        for t in range(current.shape[1]):
            drive = (1 - alpha) * current[:, t] if norm_input else current[:, t]
            v = alpha * v + drive
            if multi:
                s = (v > 0) * np.trunc(v / theta)
            else:
                s = (v - theta >= 0).astype(np.float64)
            v = v - s * theta
            out[:, t] = s
        result.append(out)
        values = out
    return result


def sinabs_mlp(w1, w2, theta1, theta2, time=()):
    """``time``: to_nir traced (batch, time, features) and wrote the time into the shapes."""
    return chain({"input": nir.Input(np.array([*time, w1.shape[1]])),
                  "0": nir.Affine(w1, np.zeros(w1.shape[0])), "1": sinabs_if(w1.shape[0], theta1),
                  "2": nir.Affine(w2, np.zeros(w2.shape[0])), "3": sinabs_if(w2.shape[0], theta2),
                  "output": nir.Output(np.array([*time, w2.shape[0]]))})


def test_sinabs_if_adds_its_input_each_step_and_fires_at_the_threshold():
    """With NIR's default dt an IF's gain is r*dt = 1e-4, so thresholds become 10^4 times
    the file's (the Sinabs MLP of issue 9 had thresholds in the millions); the sinabs
    preset integrates the input as Sinabs does and fires at v >= theta."""
    # At most theta per step, so MultiSpike emits one spike at most (see below).
    w1 = np.array([np.roll([1.0, 1, 1, 0, 0], i) for i in range(6)])        # 3 against 3
    w2 = np.array([np.roll([1.0, 1, 0, -1, 0, 0], i) for i in range(3)])    # 2 against 2
    g = sinabs_mlp(w1, w2, 3.0, 2.0)
    generic = frontend.load(g, timesteps=8)
    assert int(generic["1"].threshold.max()) == 30000
    model = frontend.load(g, timesteps=8, source_framework="sinabs")
    report = model.metadata["frontend"]
    assert report["dt"] == 1.0 and report["spike_fn"] == "multi"
    assert model["1"].fire == "ge" and model["1"].reset == "subtract"
    assert model["1"].order == "same_step"
    assert list(model["1"].threshold) == [3] * 6
    assert any("MultiSpike and SingleSpike agree exactly" in a for a in report["assumptions"])
    x = spikes(0, 30, 8, 5, density=0.7)
    trace = reference.run(model, x)
    for multi in (False, True):
        expected = sinabs_run([w1, w2], [3.0, 2.0], x, multi=multi)
        for name, want in zip(("1", "3"), expected):
            assert np.array_equal(trace.spikes[name], want.astype(np.uint8)), (name, multi)
    assert trace.spikes["1"].any() and trace.spikes["3"].any()
    timed = frontend.load(sinabs_mlp(w1, w2, 3.0, 2.0, time=(8,)), source_framework="sinabs")
    assert timed.timesteps == 8 and timed["input"].shape == (5,)
    assert timed.metadata["frontend"]["timesteps_source"] == \
        "the time dimension of the Input shape"
    assert np.array_equal(reference.run(timed, x).spikes["3"], trace.spikes["3"])


def test_sinabs_multispike_is_refused_by_node_unless_the_model_used_single_spike():
    """Sinabs's NIR export writes an IAF with MultiSpike (its default) and one with
    SingleSpike identically; where a step could bring 2*theta the two differ, so the
    default reading refuses the node, and --spike-fn single reads it as SingleSpike."""
    w1 = np.ones((3, 4))                                     # 4 per step against 2
    w2 = np.eye(3)
    g = sinabs_mlp(w1, w2, 2.0, 1.0)
    with pytest.raises(UnsupportedError, match=r"NIR graph: node '1' \(IF\): Sinabs's "
                                               r"MultiSpike emits floor\(v/threshold\) spikes "
                                               r"per step .* neuron 0 can receive 4 in one "
                                               r"step against threshold 2, .*--spike-fn single"):
        frontend.load(g, timesteps=6, source_framework="sinabs")
    model = frontend.load(g, timesteps=6, source_framework="sinabs", spike_fn="single")
    assert model.metadata["frontend"]["spike_fn_source"] == "--spike-fn option"
    x = spikes(1, 20, 6, 4, density=0.6)
    trace = reference.run(model, x)
    expected = sinabs_run([w1, w2], [2.0, 1.0], x, multi=False)
    assert np.array_equal(trace.spikes["1"], expected[0].astype(np.uint8))
    assert np.array_equal(trace.spikes["3"], expected[1].astype(np.uint8))
    multi = sinabs_run([w1, w2], [2.0, 1.0], x, multi=True)
    assert multi[0].max() > 1            # the refusal was not overcautious here
    with pytest.raises(ConfigError, match="--spike-fn 'few' is not one of single, multi"):
        frontend.load(g, timesteps=6, spike_fn="few")
    with pytest.raises(UnsupportedError, match="node '1' .*MultiSpike"):
        frontend.load(g, timesteps=6, spike_fn="multi", dt=1.0)  # any framework, if asked
    frontend.load(g, timesteps=6, spike_fn="multi")      # generic dt: thresholds 2e4, fine


def test_sinabs_lif_decays_by_exp_minus_one_over_tau_with_normalised_input():
    """Sinabs's LIF: v = alpha*v + (1 - alpha)*I with alpha = exp(-1/tau_mem) (tau in
    steps, norm_input=True by default); exported as NIR LIF(tau, r=1, v_leak=0)."""
    tau = np.array([2.0, 4.0, 8.0])
    rng = np.random.default_rng(5)
    w = rng.integers(0, 3, (3, 4)).astype(float)
    theta = 3.0
    g = chain({"input": nir.Input(np.array([4])), "0": nir.Affine(w, np.zeros(3)),
               "1": nir.LIF(tau=tau, r=np.ones(3), v_leak=np.zeros(3),
                            v_threshold=np.full(3, theta)),
               "output": nir.Output(np.array([3]))})
    network = frontend.to_float(g, timesteps=10, source_framework="sinabs", spike_fn="single")
    x = spikes(2, 40, 10, 4, density=0.6)
    float_trace = float_reference.run(network, x)
    alphas = np.exp(-1.0 / tau)
    v, want = np.zeros((40, 3)), np.zeros((40, 10, 3))
    for t in range(10):
        v = alphas * v + (1 - alphas) * (x[:, t] @ w.T)
        s = v >= theta
        v = v - s * theta
        want[:, t] = s
    assert np.array_equal(float_trace.spikes["1"], want.astype(np.uint8))
    assert want.any() and not want.all()
    assert np.allclose(network["1"].beta, alphas)


@pytest.mark.filterwarnings("ignore:nirtorch.extract_nir_graph:DeprecationWarning")
def test_sinabs_own_export_and_simulation_when_installed():
    """Sinabs itself, if installed: its IAF network's own simulation against hwgen's
    integer reference, through sinabs.to_nir."""
    sinabs = pytest.importorskip("sinabs")
    torch = pytest.importorskip("torch")
    import sinabs.layers as sl
    from sinabs.activation import MultiSpike, SingleSpike
    torch.manual_seed(0)
    for spike_fn, scale in ((SingleSpike, 3), (MultiSpike, 1)):
        fc1, fc2 = torch.nn.Linear(5, 6, bias=False), torch.nn.Linear(6, 3, bias=False)
        with torch.no_grad():
            fc1.weight.copy_(torch.randint(-1, 2, (6, 5)).float() * scale)
            fc2.weight.copy_(torch.randint(0, 2, (3, 6)).float())
        net = torch.nn.Sequential(fc1, sl.IAF(spike_threshold=torch.tensor(4.0),
                                              spike_fn=spike_fn),
                                  fc2, sl.IAF(spike_threshold=torch.tensor(6.0),
                                              spike_fn=spike_fn))
        x = spikes(4, 16, 8, 5, density=0.7)
        recorded = []
        net[1].register_forward_hook(lambda module, args, out: recorded.append(out))
        with torch.no_grad():                  # Sinabs layers take (batch, time, features)
            out = net(torch.tensor(x, dtype=torch.float32))
        first = recorded[0]
        sinabs.reset_states(net)
        # to_nir writes the sample's time dimension into the Input shape: T = 8 from it.
        graph = sinabs.to_nir(net, torch.zeros(1, 8, 5))
        options = {"spike_fn": "single"} if spike_fn is SingleSpike else {}
        model = frontend.load(graph, source_framework="sinabs", **options)
        assert model.timesteps == 8
        if spike_fn is SingleSpike:              # the same file, read as Sinabs's default
            with pytest.raises(UnsupportedError, match="MultiSpike"):
                frontend.load(graph, source_framework="sinabs")
        trace = reference.run(model, x)
        lifs = [op.name for op in model.ops if op.type_name == "lif"]
        assert np.array_equal(trace.spikes[lifs[0]], first.numpy().astype(np.uint8))
        assert np.array_equal(trace.spikes[lifs[1]], out.numpy().astype(np.uint8))
        assert out.numpy().any()


# --- Norse ------------------------------------------------------------------------------

DT = 1e-3


def norse_lifbox(n, tau_mem_inv, v_th, v_leak=0.0):
    """What Norse 1.1's ``to_nir`` writes for a LIFBoxCell: tau = dt / tau_mem_inv."""
    return nir.LIF(tau=np.full(n, DT / tau_mem_inv), v_threshold=np.full(n, float(v_th)),
                   v_leak=np.full(n, float(v_leak)), r=np.ones(n))


def norse_iaf(n, v_th):
    """What Norse 1.1's ``to_nir`` writes for an IAFCell: r = 1, v_threshold."""
    return nir.IF(r=np.ones(n), v_threshold=np.full(n, float(v_th)))


def norse_run(weights, cells, x):
    """Norse's lif_box_feed_forward_step / iaf_feed_forward_step (reset to v_reset = 0,
    spike when v - v_th > 0), layer after layer, in float64."""
    values, result = x.astype(np.float64), []
    for w, (kind, tau_mem_inv, v_th) in zip(weights, cells):
        current = values @ w.T
        v = np.zeros(current.shape[::2])
        out = np.zeros_like(current)
        for t in range(current.shape[1]):
            if kind == "lifbox":
                v = v + DT * tau_mem_inv * (current[:, t] - v)
            else:
                v = v + current[:, t]
            z = (v - v_th > 0).astype(np.float64)
            v = (1 - z) * v
            out[:, t] = z
        result.append(out)
        values = out
    return result


def test_norse_reads_tau_as_norse_writes_it():
    """tau_mem_inv = 500 /s at dt = 1e-3: Norse decays by 1 - dt*tau_mem_inv = 1/2 and
    writes tau = 2e-6. Read as NIR's tau in seconds (the old preset), beta would be
    1 - 1e-3/2e-6 = -499."""
    rng = np.random.default_rng(7)
    w1 = rng.integers(-2, 4, (6, 5)).astype(float)
    w2 = rng.integers(-1, 3, (4, 6)).astype(float)
    g = chain({"input": nir.Input(np.array([5])), "0": nir.Affine(w1, np.zeros(6)),
               "1": norse_lifbox(6, 500.0, 2.0), "2": nir.Affine(w2, np.zeros(4)),
               "3": norse_iaf(4, 1.0), "output": nir.Output(np.array([4]))})
    with pytest.raises(UnsupportedError, match="decay beta -499 is outside"):
        frontend.load(g, timesteps=8, dt=1e-3)
    network = frontend.to_float(g, timesteps=8, source_framework="norse")
    assert network["1"].beta == pytest.approx(np.full(6, 0.5))
    assert network["1"].threshold == pytest.approx(np.full(6, 4.0))     # v_th / gain 1/2
    assert network["3"].threshold == pytest.approx(np.full(4, 1.0))     # IAF: gain r, no dt
    assumptions = network.metadata["frontend"]["assumptions"]
    assert any("dt / tau_mem_inv" in a for a in assumptions)
    x = spikes(3, 40, 8, 5, density=0.6)
    expected = norse_run([w1, w2], [("lifbox", 500.0, 2.0), ("iaf", None, 1.0)], x)
    trace = float_reference.run(network, x)
    for name, want in zip(("1", "3"), expected):
        assert np.array_equal(trace.spikes[name], want.astype(np.uint8)), name
        assert want.any() and not want.all()


def test_norse_integer_network_is_exact_in_the_integer_reference():
    """IAF layers and LIFBox with dt*tau_mem_inv = 1 (beta 0) are integer-exact."""
    rng = np.random.default_rng(8)
    w1 = rng.integers(-2, 4, (7, 5)).astype(float)
    w2 = rng.integers(-2, 3, (3, 7)).astype(float)
    g = chain({"input": nir.Input(np.array([5])), "0": nir.Affine(w1, np.zeros(7)),
               "1": norse_iaf(7, 3.0), "2": nir.Affine(w2, np.zeros(3)),
               "3": norse_lifbox(3, 1000.0, 1.0), "output": nir.Output(np.array([3]))})
    model = frontend.load(g, timesteps=8, source_framework="norse")
    assert model["3"].leak.beta == 0.0
    x = spikes(9, 40, 8, 5, density=0.6)
    trace = reference.run(model, x)
    expected = norse_run([w1, w2], [("iaf", None, 3.0), ("lifbox", 1000.0, 1.0)], x)
    for name, want in zip(("1", "3"), expected):
        assert np.array_equal(trace.spikes[name], want.astype(np.uint8)), name
        assert want.any()
