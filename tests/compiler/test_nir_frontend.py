"""The NIR frontend: structure and shape checks, one-line errors, robustness to real exporters,
the per-framework meaning of a NIR neuron, and what it folds where.

The semantics tests compare against ``nir_euler`` below: a direct, independent transcription
of NIR's node equations discretised with forward Euler (the discretisation every supported
framework uses), node by node in float64. The frontend's float network must spike exactly
like it, and an integer-valued graph's integer model too.
"""

import re

import h5py
import nir
import numpy as np
import pytest

from hwgen.errors import ConfigError, FormatError, ModelError, UnsupportedError
from hwgen.compiler.frontends import native
from hwgen.compiler.frontends import nir as frontend
from hwgen.compiler.ir import Leak
from hwgen.compiler.ir import float_reference, reference


def graph(nodes, edges=None, metadata=None):
    """A NIR graph, unchecked by NIR (as exporters hand them over); a chain if no edges."""
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=edges if edges is not None
                        else list(zip(names, names[1:])), metadata=metadata or {},
                        type_check=False)


def lif(n, *, tau=2e-4, r=None, v_leak=0.0, v_threshold=1.0, v_reset=0.0, **metadata):
    full = lambda x: np.full(n, float(x))                               # noqa: E731
    return nir.LIF(tau=full(tau), r=full(r if r is not None else tau / 1e-4), v_leak=full(v_leak),
                   v_threshold=full(v_threshold), v_reset=full(v_reset), metadata=metadata)


def lif_with_thresholds(n, thresholds):
    """A LIF whose v_threshold has the wrong size (NIR's constructor would refuse it)."""
    node = lif(n)
    node.v_threshold = np.ones(thresholds)
    return node


def mlp(weight1=None, weight2=None, **lif_options):
    rng = np.random.default_rng(0)
    w1 = weight1 if weight1 is not None else rng.integers(-3, 4, (6, 5)).astype(float)
    w2 = weight2 if weight2 is not None else rng.integers(-3, 4, (3, 6)).astype(float)
    return graph({"in": nir.Input(np.array([w1.shape[1]])),
                  "fc1": nir.Affine(w1, np.zeros(w1.shape[0])),
                  "lif1": lif(w1.shape[0], **lif_options),
                  "fc2": nir.Linear(w2),
                  "lif2": lif(w2.shape[0], **lif_options),
                  "out": nir.Output(np.array([w2.shape[0]]))})


def spikes(seed, samples, steps, size, density=0.5):
    return (np.random.default_rng(seed).random((samples, steps, size)) < density).astype(np.uint8)


def write(tmp_path, g, name="model.nir"):
    path = tmp_path / name
    nir.write(path, g)
    return path


# --- an independent transcription of NIR (forward Euler) --------------------------------

def nir_euler(g, inputs, dt, *, fire="gt", reset="zero"):
    """Simulate NIR graph ``g`` (a chain) on spikes (samples, T, inputs): {node: output}."""
    names = list(g.nodes)
    order = [n for n in names if isinstance(g.nodes[n], nir.Input)]
    while len(order) < len(names):
        order += [b for a, b in g.edges if a == order[-1]]
    samples, steps = inputs.shape[:2]
    outputs = {}
    states = {n: None for n in names}
    for t in range(steps):
        x = None
        for name in order:
            node = g.nodes[name]
            if isinstance(node, nir.Input):
                x = inputs[:, t].astype(np.float64)
            elif isinstance(node, nir.Affine):
                x = x @ node.weight.T + node.bias
            elif isinstance(node, nir.Linear):
                x = x @ node.weight.T
            elif isinstance(node, nir.Scale):
                x = x * node.scale
            elif isinstance(node, (nir.LIF, nir.IF, nir.LI, nir.I)):
                v = states[name]
                if v is None:
                    v = np.broadcast_to(getattr(node, "v_reset", 0.0), x.shape).astype(float)
                if isinstance(node, (nir.LIF, nir.LI)):
                    v = v + dt / node.tau * ((node.v_leak - v) + node.r * x)
                else:
                    v = v + dt * node.r * x
                if isinstance(node, (nir.LIF, nir.IF)):
                    s = v >= node.v_threshold if fire == "ge" else v > node.v_threshold
                    v = np.where(s, node.v_reset if reset == "zero" else v - node.v_threshold, v)
                    x = s.astype(np.float64)
                else:
                    x = v
                states[name] = v
            elif isinstance(node, nir.Threshold):
                x = (x > node.threshold).astype(np.float64)
            elif isinstance(node, nir.Output):
                continue
            outputs.setdefault(name, []).append(x)
    return {name: np.stack(values, axis=1) for name, values in outputs.items()}


def test_the_float_network_spikes_like_nir_itself():
    """Scale, resistance, v_leak != v_reset and v_reset != 0 are all folded away exactly."""
    rng = np.random.default_rng(1)
    w1, w2 = rng.normal(0, 1, (8, 6)), rng.normal(0, 1, (4, 8))
    g = graph({"in": nir.Input(np.array([6])),
               "fc1": nir.Affine(w1, rng.normal(0, 0.2, 8)),
               "gain": nir.Scale(rng.uniform(0.5, 2.0, 8)),
               "lif1": nir.LIF(tau=rng.uniform(3e-4, 1e-3, 8), r=rng.uniform(1, 5, 8),
                               v_leak=rng.uniform(-0.5, 0.5, 8), v_threshold=np.full(8, 0.6),
                               v_reset=np.full(8, -0.3)),
               "fc2": nir.Linear(w2),
               "if2": nir.IF(r=rng.uniform(5e3, 2e4, 4), v_threshold=np.full(4, 0.8),
                             v_reset=np.zeros(4)),
               "out": nir.Output(np.array([4]))})
    x = spikes(2, 16, 12, 6)
    expected = nir_euler(g, x, 1e-4)
    network = frontend.to_float(g, timesteps=12)
    trace = float_reference.run(network, x)
    assert trace.spikes["lif1"].mean() > 0.05 and trace.spikes["if2"].mean() > 0.05
    for name in ("lif1", "if2"):
        assert np.array_equal(trace.spikes[name], expected[name].astype(np.uint8)), name
    report = network.metadata["frontend"]
    assert report["neurons"]["lif1"]["input_gain_folded_into"].startswith("the threshold")
    assert report["neurons"]["lif1"]["v_leak_folded_into"] == "the bias of 'fc1'"


def test_integer_valued_graphs_are_imported_exactly():
    g = mlp(v_threshold=3.0, tau=1e-4 / 0.5)          # beta = 1/2 in NIR's Euler terms
    model = frontend.load(g, timesteps=10)
    assert model["fc1"].weight.tolist() == g.nodes["fc1"].weight.astype(int).tolist()
    assert model["lif1"].threshold.tolist() == [3] * 6
    assert model["lif1"].leak == Leak.by_multiply(1, 1)
    layers = model.metadata["quantization"]["layers"]
    assert [layer["scale"] for layer in layers] == [1.0, 1.0]
    assert all(layer["exact_integers"] for layer in layers)


def test_an_integer_if_network_matches_nir_exactly_in_integers():
    rng = np.random.default_rng(3)
    g = graph({"in": nir.Input(np.array([7])),
               "fc1": nir.Affine(rng.integers(-4, 5, (9, 7)).astype(float),
                                 rng.integers(-1, 2, 9).astype(float)),
               "if1": nir.IF(r=np.full(9, 1e4), v_threshold=np.full(9, 3.0),
                             v_reset=np.zeros(9)),
               "fc2": nir.Linear(rng.integers(-4, 5, (5, 9)).astype(float)),
               "if2": nir.IF(r=np.full(5, 1e4), v_threshold=np.full(5, 2.0),
                             v_reset=np.zeros(5)),
               "out": nir.Output(np.array([5]))})
    x = spikes(4, 20, 10, 7, density=0.6)
    expected = nir_euler(g, x, 1e-4)
    trace = reference.run(frontend.load(g, timesteps=10), x)
    for name in ("if1", "if2"):
        assert np.array_equal(trace.spikes[name], expected[name].astype(np.uint8)), name


@pytest.mark.parametrize("framework, beta, fire, reset, order", [
    ("generic", 0.975, "gt", "zero", "same_step"),
    ("snntorch", 0.975, "gt", "subtract", "delayed"),
    ("spikingjelly", 0.975, "ge", "zero", "same_step"),
    # Norse writes tau as dt * tau_mem: 4e-3 is a 4 s time constant at dt = 1e-3.
    ("norse", 1 - 1e-3 / 4, "gt", "zero", "same_step"),
    ("sinabs", np.exp(-1 / 4e-3), "ge", "subtract", "same_step"),
])
def test_each_framework_gives_a_nir_neuron_its_meaning(framework, beta, fire, reset, order):
    # Sinabs's default MultiSpike would refuse these layers (tested separately).
    single = {"spike_fn": "single"} if framework == "sinabs" else {}
    model = frontend.load(mlp(tau=4e-3, r=1.0), timesteps=4, source_framework=framework,
                          **single)
    report = model.metadata["frontend"]
    neuron = report["neurons"]["lif1"]
    assert neuron["beta"] == pytest.approx(beta)
    assert (neuron["fire"], neuron["reset"], neuron["order"]) == (fire, reset, order)
    assert (model["lif1"].fire, model["lif1"].reset, model["lif1"].order) == (fire, reset, order)
    assert report["dt"] == {"norse": 1e-3, "sinabs": 1.0}.get(framework, 1e-4)


def test_options_and_node_metadata_override_the_framework():
    g = mlp(**{"hwgen.reset": "none", "hwgen.fire": "ge"})
    model = frontend.load(g, timesteps=4, source_framework="snntorch", fire="gt", dt=2e-4)
    neuron = model.metadata["frontend"]["neurons"]["lif1"]
    assert (neuron["fire"], neuron["fire_source"]) == ("gt", "--fire option")
    assert (neuron["reset"], neuron["reset_source"]) == ("none", "node metadata")
    assert neuron["order"] == "delayed" and "snnTorch" in neuron["order_source"]
    assert neuron["beta"] == 0.0                        # dt = tau: 1 - 2e-4 / 2e-4
    assert model.metadata["frontend"]["dt_source"] == "given (--dt)"


def test_scalar_parameters_and_empty_shapes_as_snntorch_exports_them():
    """snnTorch 1.0 writes LIF parameters as scalars with empty shapes; NIR's own type
    inference then fails, hwgen infers the shapes along the edges."""
    scalar = lambda x: np.array(x, dtype=np.float32)                     # noqa: E731
    g = graph({"input": nir.Input(np.array([1, 4])),
               "0": nir.Affine(np.ones((3, 4), np.float32), np.zeros(3, np.float32)),
               "1": nir.LIF(tau=np.float32(2e-4), r=np.float32(2.0), v_leak=scalar(0.0),
                            v_threshold=scalar(2.0), v_reset=scalar(0.0)),
               "output": nir.Output(np.array([3]))})
    with pytest.raises(ValueError):
        g.infer_types()
    model = frontend.load(g, timesteps=3, source_framework="snntorch")
    assert model["1"].threshold.tolist() == [2, 2, 2] and model.input.shape == (4,)
    notes = " ".join(model.metadata["frontend"]["assumptions"])
    assert "scalar tau, r, v_leak, v_threshold, v_reset broadcast to its 3 neurons" in notes
    assert "leading batch dimension of 1; dropped" in notes


def test_legacy_files_without_v_reset_read_as_zero(tmp_path):
    path = write(tmp_path, mlp(v_reset=0.0))
    with h5py.File(path, "r+") as f:
        del f["node/nodes/lif1/v_reset"]
    model = frontend.load(path, timesteps=4)
    assert model.ops == frontend.load(write(tmp_path, mlp(), "new.nir"), timesteps=4).ops
    assert any("no v_reset" in note for note in model.metadata["frontend"]["assumptions"])


def test_reading_the_same_file_twice_gives_identical_bytes(tmp_path):
    path = write(tmp_path, mlp(weight1=np.random.default_rng(5).normal(0, 1, (6, 5))))
    first = native.dumps(frontend.load(path, timesteps=5))
    assert first == native.dumps(frontend.load(path, timesteps=5))
    in_memory = frontend.load(mlp(weight1=np.random.default_rng(5).normal(0, 1, (6, 5))),
                              timesteps=5)
    assert [op for op in in_memory.ops] == [op for op in native.loads(first).ops]


def test_float_weights_are_quantized_per_layer():
    rng = np.random.default_rng(7)
    w1 = rng.normal(0, 0.5, (6, 5))
    model = frontend.load(mlp(weight1=w1, v_threshold=0.7), timesteps=4, weight_bits=6)
    layer = model.metadata["quantization"]["layers"][0]
    scale = 31 / np.abs(w1).max()
    assert layer["scale"] == pytest.approx(scale) and not layer["exact_integers"]
    assert np.array_equal(model["fc1"].weight, np.round(w1 * scale).astype(int))
    assert model["lif1"].threshold.tolist() == [round(0.7 * scale)] * 6
    assert layer["clipped_weights"] == 0 and model["fc1"].weight_bits == 6


def test_threshold_li_and_i_nodes():
    rng = np.random.default_rng(2)
    g = graph({"in": nir.Input(np.array([4])),
               "fc": nir.Linear(rng.integers(-2, 3, (5, 4)).astype(float)),
               "th": nir.Threshold(np.full(5, 1.0)),
               "fc2": nir.Linear(rng.integers(-2, 3, (3, 5)).astype(float)),
               "li": nir.LI(tau=np.full(3, 1e-4), r=np.full(3, 1.0), v_leak=np.zeros(3)),
               "out": nir.Output(np.array([3]))})
    model = frontend.load(g, timesteps=6)
    assert model["th"].leak == Leak.by_multiply(0, 1) and model["th"].reset == "none"
    assert model["li"].type_name == "li" and model["out"].mode == "final_membrane"
    x = spikes(1, 10, 6, 4)
    expected = nir_euler(g, x, 1e-4)
    trace = reference.run(model, x)
    assert np.array_equal(trace.spikes["th"], expected["th"].astype(np.uint8))
    assert np.array_equal(trace.potentials["li"], expected["li"].astype(int))   # beta 0: v = I
    assert np.array_equal(trace.predictions, np.argmax(expected["li"][:, -1], axis=1))
    i_graph = graph({"in": nir.Input(np.array([4])), "fc": nir.Linear(np.eye(4)),
                     "i": nir.I(np.full(4, 1e4)), "out": nir.Output(np.array([4]))})
    trace = reference.run(frontend.load(i_graph, timesteps=5), x[:, :5])
    assert np.array_equal(trace.membranes["i"], x[:, :5].sum(axis=1))


def test_a_feed_forward_subgraph_is_flattened():
    inner = graph({"input": nir.Input(np.array([6])), "lif": lif(6),
                   "output": nir.Output(np.array([6]))})
    g = mlp()
    nodes = dict(g.nodes)
    nodes["lif1"] = inner
    model = frontend.load(graph(nodes), timesteps=3)
    assert "lif1.lif" in model and model.inputs_of("fc2") == ["lif1.lif"]


# --- errors: one line, naming the file, the node and the problem ------------------------

def unsupported(kind):
    n = np.ones(3)
    return {"CubaLIF": nir.CubaLIF(tau_syn=n, tau_mem=n, r=n, v_leak=n, v_threshold=n),
            "Delay": nir.Delay(n)}[kind]


@pytest.mark.parametrize("kind, message", [
    ("CubaLIF", "node 'bad' (CubaLIF): v_leak differs from v_reset (neuron 0): a "
                "current-based neuron's constant drive acts on its membrane, and a bias would "
                "pass through its synaptic filter instead"),
    ("Delay", "node 'bad' (Delay): synaptic delays are not supported"),
])
def test_unsupported_nodes_are_named(tmp_path, kind, message):
    g = graph({"in": nir.Input(np.array([3])), "fc": nir.Linear(np.eye(3)),
               "bad": unsupported(kind), "out": nir.Output(np.array([3]))})
    path = write(tmp_path, g)
    with pytest.raises(UnsupportedError, match="^" + re.escape(f"{path}: {message}")) as error:
        frontend.load(path, timesteps=2)
    assert "\n" not in str(error.value)


def test_unknown_node_types_are_named(tmp_path):
    path = write(tmp_path, mlp())
    with h5py.File(path, "r+") as f:
        del f["node/nodes/lif1/type"]
        f["node/nodes/lif1"].create_dataset("type", data="Izhikevich",
                                            dtype=h5py.string_dtype())
    with pytest.raises(UnsupportedError, match=r"node 'lif1' \(Izhikevich\): NIR node type "
                                               r"'Izhikevich' is not supported \(hwgen reads "
                                               r"Input, Output, Affine"):
        frontend.load(path, timesteps=2)


def test_cycles_other_than_a_recurrent_synapse_are_refused_naming_the_cycle(tmp_path):
    # lif -> rec -> lif alone is a recurrent layer (test_recurrent_frontends.py); through a
    # Scale it is not of that form
    g = graph({"in": nir.Input(np.array([3])), "fc": nir.Linear(np.eye(3)), "lif": lif(3),
               "scale": nir.Scale(np.full(3, 2.0)), "rec": nir.Linear(np.eye(3)),
               "out": nir.Output(np.array([3]))},
              edges=[("in", "fc"), ("fc", "lif"), ("lif", "scale"), ("scale", "rec"),
                     ("rec", "lif"), ("lif", "out")])
    path = write(tmp_path, g)
    with pytest.raises(UnsupportedError, match=rf"^{path}: recurrent connection .*cycle "
                                               r"(lif -> scale -> rec -> lif|"
                                               r"scale -> rec -> lif -> scale|"
                                               r"rec -> lif -> scale -> rec)\); hwgen runs a "
                                               r"recurrent connection only as a spiking neuron "
                                               r"node -> an Affine or Linear node that feeds "
                                               r"nothing else -> the same neuron node$"):
        frontend.load(path, timesteps=2)


@pytest.mark.parametrize("change, error, message", [
    (lambda n: n.update(fc2=nir.Linear(np.ones((3, 5)))), ModelError,
     "node 'fc2' (Linear): weight expects 5 inputs, but 'lif1' produces 6"),
    (lambda n: n.update(lif2=lif_with_thresholds(3, 5)), ModelError,
     "node 'lif2' (LIF): v_threshold has shape (5,) (5 values), but its input carries 3 "
     "neurons (3,)"),
    (lambda n: n.update(out=nir.Output(np.array([7]))), ModelError,
     "node 'out' (Output): declares shape (7,), but 'lif2' produces (3,)"),
    (lambda n: n.update(fc1=nir.Affine(np.ones((6, 5)), np.ones(4))), ModelError,
     "node 'fc1' (Affine): bias has shape (4,), expected (6,)"),
])
def test_shape_conflicts_name_the_node(tmp_path, change, error, message):
    g = mlp()
    nodes = dict(g.nodes)
    change(nodes)
    path = write(tmp_path, graph(nodes))
    with pytest.raises(error, match=f"^{path}: " + message.replace("(", r"\(").replace(
            ")", r"\)")):
        frontend.load(path, timesteps=2)


@pytest.mark.parametrize("content, message", [
    (b"", "not a readable NIR (HDF5) file"),
    (b"\x89HDF\r\n\x1a\n" + bytes(200), "not a readable NIR (HDF5) file"),
    (b"definitely not HDF5", "not a readable NIR (HDF5) file"),
])
def test_corrupted_files_are_refused_in_one_line(tmp_path, content, message):
    path = tmp_path / "broken.nir"
    path.write_bytes(content)
    with pytest.raises(FormatError, match=f"^{path}: " + message.replace("(", r"\(")
                       .replace(")", r"\)")) as error:
        frontend.load(path, timesteps=2)
    assert "\n" not in str(error.value)


def test_truncated_and_foreign_hdf5_files(tmp_path):
    data = write(tmp_path, mlp()).read_bytes()
    path = tmp_path / "cut.nir"
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(FormatError, match=f"^{path}: not a readable NIR"):
        frontend.load(path, timesteps=2)
    other = tmp_path / "other.nir"
    with h5py.File(other, "w") as f:
        f.create_dataset("weights", data=np.ones(3))
    with pytest.raises(FormatError, match=f"^{other}: HDF5 file has no 'node' group; not a NIR"):
        frontend.load(other, timesteps=2)


def test_missing_files_and_parameters(tmp_path):
    with pytest.raises(FormatError, match=r"nothing.nir: cannot read \(No such file or "
                                          r"directory\)"):
        frontend.load(tmp_path / "nothing.nir", timesteps=2)
    path = write(tmp_path, mlp())
    with h5py.File(path, "r+") as f:
        del f["node/nodes/lif2/tau"]
    with pytest.raises(FormatError, match=r"node 'lif2' \(LIF\): missing parameter 'tau'"):
        frontend.load(path, timesteps=2)


@pytest.mark.parametrize("nodes, edges, error, message", [
    ({"a": nir.Input(np.array([3])), "b": nir.Input(np.array([3])), "lin": nir.Linear(np.eye(3)),
      "lif": lif(3)}, [("a", "lin"), ("b", "lin"), ("lin", "lif")], UnsupportedError,
     "the graph has 2 Input nodes; hwgen models have exactly one"),
    # several incoming edges are summed (tests/compiler/test_cnn_frontends.py), but not a
    # synapse's current with spikes
    ({"in": nir.Input(np.array([3])), "l1": nir.Linear(np.eye(3)), "lif": lif(3)},
     [("in", "l1"), ("in", "lif"), ("l1", "lif")],
     UnsupportedError, "layer 'lif.sum': adds 'in' (spikes), 'l1' (current); an add sums "
                       "synapses' currents (one layer, one scale) or spikes, not both"),
    ({"in": nir.Input(np.array([3])), "lin": nir.Linear(np.eye(3)),
      "out": nir.Output(np.array([3]))},
     [("in", "lin"), ("lin", "out")], UnsupportedError,
     "node 'out' (Output): is fed by node 'lin' (Linear), which is not a neuron"),
    ({"in": nir.Input(np.array([3])), "lif": lif(3)}, [("in", "lif")], UnsupportedError,
     "layer 'lif': takes spikes directly; hwgen neurons need a synapse"),
    ({"in": nir.Input(np.array([3])), "l1": nir.Linear(np.eye(3)), "l2": nir.Linear(np.eye(3)),
      "lif": lif(3)}, [("in", "l1"), ("l1", "l2"), ("l2", "lif")], UnsupportedError,
     "layer 'l2': its input 'l1' is a current, not spikes; put a neuron between two synapses"),
    ({"in": nir.Input(np.array([3])), "lin": nir.Linear(np.eye(3)), "lif": lif(3),
      "lone": lif(3)}, [("in", "lin"), ("lin", "lif")], FormatError,
     "node 'lone' (LIF): has no incoming edge; it is not connected to the Input"),
])
def test_structural_problems(nodes, edges, error, message):
    with pytest.raises(error, match="^NIR graph: " + message.replace("(", r"\(").replace(
            ")", r"\)")):
        frontend.load(graph(nodes, edges), timesteps=2)


def test_time_steps_are_required_and_options_checked():
    with pytest.raises(ConfigError, match="NIR stores no number of time steps; pass "
                                          "--timesteps"):
        frontend.load(mlp())
    with pytest.raises(ConfigError, match="source framework 'lava' is not one of generic"):
        frontend.load(mlp(), timesteps=2, source_framework="lava")
    with pytest.raises(ConfigError, match="--dt must be positive"):
        frontend.load(mlp(), timesteps=2, dt=0.0)
    with pytest.raises(UnsupportedError, match=r"layer 'lif1': decay beta -1 is outside "
                                               r"\[0, 1\] \(tau shorter than dt\?\)"):
        frontend.load(mlp(tau=5e-5), timesteps=2)
    with pytest.raises(ModelError, match="layer 'lif1': threshold 300 needs 10-bit membranes; "
                                         "6 bits are too few"):
        frontend.load(mlp(v_threshold=300.0), timesteps=2, v_bits=6)
