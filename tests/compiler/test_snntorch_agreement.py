"""Agreement with a reference no one here wrote: snnTorch 1.0's own simulation.

Small snnTorch networks (Linear + Leaky) with integer weights and thresholds are simulated
by snnTorch, exported to NIR (with hwgen's helper, and with snnTorch's own exporter as far
as it gets), imported by hwgen, and run by the integer reference. With
``state_quant=torch.floor`` snnTorch computes floor(beta * mem), which is exactly hwgen's
``multiply`` leak, so every output spike must be identical, in every reset mechanism and
reset_delay; snnTorch's ``Leaky(reset_delay=False, reset_mechanism="subtract")``, which
differs from NIR's same-step order, is hwgen's ``snntorch_same_step`` order.
"""

import importlib.util
import itertools
from pathlib import Path

import nir
import nirtorch
import numpy as np
import pytest
import snntorch as snn
import torch
from snntorch import utils
from snntorch.export_nir import _extract_snntorch_module, export_to_nir

from hwgen.errors import UnsupportedError
from hwgen.compiler.frontends import native, snntorch_export
from hwgen.compiler.frontends import nir as frontend
from hwgen import bundled
from hwgen.compiler.ir import Leak, float_reference, reference
from snntorch_oracle import integer_net, linear, run_snntorch

ROOT = Path(__file__).resolve().parents[2]
T = 10


def random_spikes(seed, samples=24, steps=T, inputs=12, density=0.5):
    rng = np.random.default_rng(seed)
    return (rng.random((samples, steps, inputs)) < density).astype(np.uint8)


def assert_same_spikes(ours, theirs):
    # snnTorch's recording names its Leaky modules; every one must be compared, and there
    # must be some, or a broken hook would pass by comparing nothing.
    assert theirs, "snnTorch recorded no layer"
    assert set(theirs) <= set(ours), f"layers {sorted(set(theirs) - set(ours))} not in hwgen's"
    for name, spikes in theirs.items():
        assert ours[name].shape == spikes.shape, (name, ours[name].shape, spikes.shape)
        mismatches = np.argwhere(ours[name] != spikes)
        assert not len(mismatches), (f"layer {name}: {len(mismatches)} spikes differ, first at "
                                     f"(sample, step, neuron) {tuple(mismatches[0])}")


def hwgen_spikes(net, x, tmp_path, source_framework="snntorch", **options):
    path = tmp_path / "net.nir"
    snntorch_export.export(net, path, (x.shape[2],), timesteps=x.shape[1])
    model = frontend.load(path, source_framework=source_framework, **options)
    return reference.run(model, x).spikes, model


MODES = [(beta, reset, delay) for beta, reset, delay in itertools.product(
    (0.0, 0.5, 0.75, 0.875, 1.0), ("subtract", "zero", "none"), (True, False))]


@pytest.mark.parametrize("beta, reset_mechanism, reset_delay", MODES)
@pytest.mark.parametrize("threshold", [1.0, 3.0, 6.0])
def test_integer_reference_spikes_exactly_like_snntorch(tmp_path, beta, reset_mechanism,
                                                        reset_delay, threshold):
    seed = int(beta * 8) * 100 + int(threshold)
    net = integer_net(seed, [12, 10, 6], beta=beta, threshold=threshold,
                      reset_mechanism=reset_mechanism, reset_delay=reset_delay)
    x = random_spikes(seed)
    theirs = run_snntorch(net, x)
    ours, model = hwgen_spikes(net, x, tmp_path)
    assert all(layer["exact_integers"] for layer in model.metadata["quantization"]["layers"])
    expected_order = "delayed" if reset_delay else "snntorch_same_step"
    assert (model["1"].order, model["1"].reset) == (expected_order, reset_mechanism)
    assert_same_spikes(ours, theirs)
    assert 0 < theirs["1"].mean() < 1 and 0 < theirs["3"].mean() < 1


def test_the_snntorch_order_is_needed_where_nirs_same_step_differs(tmp_path):
    """Across the subtract / reset_delay=False cases above, NIR's same-step order (what a
    generic reading of the same file gives) misses some of snnTorch's spikes, so the
    agreement above is not the same-step order by another name."""
    differing = 0
    for beta, threshold in itertools.product((0.5, 0.875, 1.0), (1.0, 3.0)):
        seed = int(beta * 8) * 100 + int(threshold)
        net = integer_net(seed, [12, 10, 6], beta=beta, threshold=threshold,
                          reset_delay=False)
        x = random_spikes(seed)
        theirs = run_snntorch(net, x)
        ours, _ = hwgen_spikes(net, x, tmp_path)
        nir_order, model = hwgen_spikes(net, x, tmp_path, source_framework="generic",
                                        order="same_step")
        assert model["1"].order == "same_step"
        assert_same_spikes(ours, theirs)
        differing += sum(int((nir_order[name] != theirs[name]).sum()) for name in theirs)
    assert differing > 0


# --- per-neuron decays ------------------------------------------------------------------------

PER_NEURON_BETAS = (0.0, 0.25, 0.5, 0.75, 0.875, 1.0)


def per_neuron_betas(seed, sizes):
    """One beta tensor per layer, every neuron's drawn from :data:`PER_NEURON_BETAS`, each
    layer holding beta = 1 (an IF neuron) beside a leaky one."""
    rng = np.random.default_rng(seed)
    betas = []
    for size in sizes[1:]:
        values = rng.choice(PER_NEURON_BETAS, size)
        values[:2] = 1.0, rng.choice(PER_NEURON_BETAS[:-1])
        betas.append(torch.tensor(values, dtype=torch.float32))
    return betas


@pytest.mark.parametrize("reset_mechanism, reset_delay",
                         list(itertools.product(("subtract", "zero", "none"), (True, False))))
@pytest.mark.parametrize("threshold", [2.0, 5.0])
def test_per_neuron_betas_spike_exactly_like_snntorch(tmp_path, reset_mechanism, reset_delay,
                                                      threshold):
    """snnTorch Leaky layers with a beta tensor (one decay per neuron, beta = 1 beside
    beta < 1 included): hwgen gives every neuron its own multiplier, exactly, and spikes as
    snnTorch does in every layer. One leak per layer (the median beta, what hwgen did
    before) does not."""
    seed = 40 + int(threshold) + 7 * reset_delay
    sizes = [12, 16, 8]
    betas = per_neuron_betas(seed, sizes)
    net = integer_net(seed, sizes, beta=betas, threshold=threshold,
                      reset_mechanism=reset_mechanism, reset_delay=reset_delay)
    x = random_spikes(seed, density=0.6)
    theirs = run_snntorch(net, x)
    ours, model = hwgen_spikes(net, x, tmp_path)
    for name, beta in zip(("1", "3"), betas):
        assert model[name].leak.kind == "per_neuron"
        assert model[name].leak.betas.tolist() == beta.tolist()
    assert all((b == 1).any() and (b < 1).any() for b in betas)
    layers = model.metadata["quantization"]["layers"]
    assert all(layer["leak"]["exact"] for layer in layers)
    assert_same_spikes(ours, theirs)
    assert 0 < theirs["1"].mean() < 1 and 0 < theirs["3"].mean() < 1
    # the experiment has power: one leak per layer spikes differently somewhere
    median = native.loads(native.dumps(model))
    for name in ("1", "3"):
        beta = float(np.median(median[name].leak.betas))
        median[name].leak = Leak.by_multiply(round(beta * 8), 3)
    differing = reference.run(median, x).spikes
    assert any((differing[name] != theirs[name]).any() for name in theirs)


# --- the documented difference: snnTorch's same-step subtract reset -----------------------

def snntorch_same_step_subtract(current, beta, theta):
    """docs/frontends.md's transcription of snnTorch 1.0 Leaky(reset_delay=False,
    reset_mechanism="subtract", state_quant=floor) on integer currents (samples, T, n)."""
    m = np.zeros(current.shape[::2])
    spikes = np.zeros(current.shape, dtype=np.uint8)
    for t in range(current.shape[1]):
        r = m > theta
        h = np.floor(beta * m) + current[:, t] - r * theta
        s = h > theta
        m = np.floor(beta * m) + current[:, t] - s * theta
        spikes[:, t] = s
    return spikes


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.875, 1.0])
def test_snntorch_same_step_subtract_is_what_the_docs_say(beta):
    net = integer_net(7, [12, 10, 6], beta=beta, threshold=2.0, reset_delay=False)
    x = random_spikes(7, density=0.6)
    theirs = run_snntorch(net, x)
    spikes = x
    for index in (1, 3):
        fc = net[index - 1]
        current = spikes @ fc.weight.detach().numpy().T + fc.bias.detach().numpy()
        spikes = snntorch_same_step_subtract(current, beta, 2.0)
        assert np.array_equal(spikes, theirs[str(index)])


def test_snntorch_same_step_subtract_when_the_membrane_stays_above_threshold(tmp_path):
    """One neuron, theta 2, input 5 then nothing, beta 1. NIR (and SpikingJelly):
    5 -> spike, 3 left -> spike, 1 left. snnTorch: 5 -> spike, 3 left; at the next step its
    decision subtracts theta again (3 - 2 = 1, no spike) and restores the membrane to 3,
    which then never spikes: it stays at 3 > theta for ever. hwgen's snntorch_same_step
    order does the same."""
    net = torch.nn.Sequential(torch.nn.Linear(1, 1, bias=False),
                              snn.Leaky(beta=1.0, threshold=2.0, reset_delay=False,
                                        init_hidden=True, state_quant=torch.floor))
    with torch.no_grad():
        net[0].weight.fill_(1.0)
    x = np.array([[[1]] + [[0]] * 4], dtype=np.uint8)
    net[0].weight.data.fill_(5.0)
    membranes = {}
    theirs = run_snntorch(net, x, membranes)["1"][0, :, 0].tolist()
    ours, model = hwgen_spikes(net, x, tmp_path)
    assert model["1"].order == "snntorch_same_step" and model["1"].reset == "subtract"
    assert theirs == [1, 0, 0, 0, 0] == ours["1"][0, :, 0].tolist()
    trace = reference.run(model, x)
    assert trace.membranes["1"][0, 0] == membranes["1"][0, -1, 0] == 3
    # the file says snntorch_same_step itself: any framework reads it so
    assert hwgen_spikes(net, x, tmp_path, source_framework="generic")[1]["1"].order == \
        "snntorch_same_step"
    # an explicit NIR same-step reading of the same file gives NIR's answer
    nir_order, model = hwgen_spikes(net, x, tmp_path, source_framework="generic",
                                    order="same_step")
    assert model["1"].order == "same_step"
    assert nir_order["1"][0, :, 0].tolist() == [1, 1, 0, 0, 0]


# --- float snnTorch (no state_quant) -----------------------------------------------------

@pytest.mark.parametrize("beta, reset_mechanism, reset_delay", [
    (0.5, "subtract", True), (0.75, "subtract", True), (0.5, "zero", False),
    (0.75, "subtract", False)])
def test_float_snntorch_matches_the_float_model_and_differs_from_integers_by_the_floor(
        tmp_path, beta, reset_mechanism, reset_delay):
    """Without state_quant snnTorch computes beta*mem exactly; hwgen's float model does too
    (dyadic values are exact in float32 here), while the integer model floors it."""
    net = integer_net(3, [12, 10, 6], beta=beta, threshold=3.0, reset_delay=reset_delay,
                      reset_mechanism=reset_mechanism, floor=False)
    x = random_spikes(3, steps=6)
    theirs = run_snntorch(net, x)
    path = tmp_path / "float.nir"
    snntorch_export.export(net, path, (12,), timesteps=6)
    network = frontend.to_float(path)
    assert network["1"].rounding == "exact"
    assert_same_spikes(float_reference.run(network, x).spikes, theirs)
    model = frontend.load(path, calibration=x)
    trace = reference.run(model, x)
    report = model.metadata["quantization"]["calibration"]["layers"]
    for name in theirs:
        assert report[name]["spike_agreement"] == pytest.approx(np.mean(trace.spikes[name]
                                                                        == theirs[name]))
    assert any(report[name]["spike_agreement"] < 1 for name in theirs)
    assert any("hwgen floors it" in note for note in model.metadata["frontend"]["assumptions"])


# --- snnTorch's own exporter ---------------------------------------------------------------

def official_graph(net, inputs):
    """What snnTorch 1.0's export_to_nir builds before its own type check fails."""
    return nirtorch.extract_nir_graph(net, _extract_snntorch_module, torch.zeros(1, inputs),
                                      model_name="snntorch",
                                      ignore_submodules_of=[snn.RLeaky, snn.RSynaptic])


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::RuntimeWarning")
@pytest.mark.parametrize("beta", [0.5, 1.0])
def test_graphs_from_snntorchs_own_exporter(beta):
    net = integer_net(11, [12, 10, 6], beta=beta, threshold=3.0)
    with pytest.raises(ValueError, match="type mismatch"):
        export_to_nir(net, torch.zeros(1, 12))
    graph = official_graph(net, 12)
    with pytest.raises(TypeError, match="Scalar datasets don't support chunk/filter options"):
        nir.write(Path("/dev/null"), graph)
    model = frontend.load(graph, source_framework="snntorch", timesteps=T)
    x = random_spikes(11)
    assert_same_spikes(reference.run(model, x).spikes, run_snntorch(net, x))
    assert any("leading batch dimension" in note
               for note in model.metadata["frontend"]["assumptions"])


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::RuntimeWarning")
def test_order_same_step_from_snntorch_is_its_reset_delay_false(tmp_path):
    """snnTorch's own exporter records no reset or order: --source-framework snntorch
    --order same_step is how a user says reset_delay=False, and gets snnTorch's order."""
    net = integer_net(13, [12, 10, 6], beta=0.875, threshold=2.0, reset_delay=False)
    model = frontend.load(official_graph(net, 12), source_framework="snntorch",
                          order="same_step", timesteps=T)
    assert model["1"].order == "snntorch_same_step"
    neuron = model.metadata["frontend"]["neurons"]["1"]
    assert neuron["order_source"].startswith("--order option; snnTorch's same step")
    x = random_spikes(13, density=0.6)
    assert_same_spikes(reference.run(model, x).spikes, run_snntorch(net, x))


def test_recurrent_snntorch_layers_import_as_one_recurrent_layer():
    # spike-for-spike agreement with snnTorch: test_recurrent_frontends.py
    net = torch.nn.Sequential(torch.nn.Linear(4, 3),
                              snn.RLeaky(beta=0.5, linear_features=3, init_hidden=True))
    model = frontend.load(official_graph(net, 4), source_framework="snntorch", timesteps=4)
    assert model["0"].recurrent and model.recurrent_synapse("1.lif") is model["0"]


# --- the helper -----------------------------------------------------------------------------

def test_helper_files_are_standard_nir(tmp_path):
    net = integer_net(2, [12, 10, 6], beta=0.875, threshold=3.0)
    path = tmp_path / "net.nir"
    snntorch_export.export(net, path, (12,), timesteps=T)
    graph = nir.read(path)                       # NIR's own reader and type check accept it
    assert isinstance(graph.nodes["1"], nir.LIF) and graph.nodes["1"].tau.shape == (10,)
    assert graph.nodes["1"].metadata["hwgen.order"] == "delayed"
    model = frontend.load(path)                  # self-describing: no framework needed
    assert (model["1"].reset, model["1"].order, model["1"].fire) == ("subtract", "delayed", "gt")
    assert model.timesteps == T and not list(tmp_path.glob(".*"))


def test_helper_files_with_beta_one_beside_beta_below_one_are_standard_nir(tmp_path):
    """A beta tensor holding 1 and values below 1: the helper writes one LIF whose tau and
    r are infinite for the beta = 1 neurons; NIR reads it, and hwgen reads it without being
    told the framework (the node's metadata says snnTorch) as a gain of 1 and no leak."""
    net = integer_net(2, [12, 4, 3], beta=[torch.tensor([1.0, 0.5, 1.0, 0.0]), 0.5],
                      threshold=3.0)
    path = tmp_path / "net.nir"
    snntorch_export.export(net, path, (12,), timesteps=T)
    graph = nir.read(path)
    assert np.isinf(graph.nodes["1"].tau).tolist() == [True, False, True, False]
    model = frontend.load(path)
    assert model["1"].leak == Leak.per_neuron([2, 1, 2, 0], 1)
    assert any("tau and r are infinite" in note
               for note in model.metadata["frontend"]["assumptions"])
    x = random_spikes(2)
    assert_same_spikes(reference.run(model, x).spikes, run_snntorch(net, x))
    # without the helper's metadata a generic reader cannot know the gain: refused by name
    graph.nodes["1"].metadata.pop("snntorch.module")
    with pytest.raises(UnsupportedError, match="input gain r\\*dt/tau is undefined"):
        frontend.load(graph, timesteps=T)


@pytest.mark.parametrize("net, message", [
    (lambda: torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU()),
     "module '1' (ReLU): not supported by the exporter"),
    (lambda: torch.nn.Sequential(torch.nn.Linear(4, 3),
                                 snn.Leaky(beta=0.5, graded_spikes_factor=2.0)),
     "module '1' (Leaky): graded spikes"),
    (lambda: torch.nn.Sequential(torch.nn.Linear(4, 3),
                                 snn.Leaky(beta=0.5, state_quant=torch.round)),
     "module '1' (Leaky): state_quant other than torch.floor"),
    (lambda: torch.nn.Linear(4, 3), "expected a torch.nn.Sequential, got Linear"),
    (lambda: torch.nn.Sequential(torch.nn.Linear(5, 3)), "module '0' (Linear): expects 5 "
                                                         "inputs, gets shape (4,)"),
])
def test_helper_refuses_what_it_cannot_export(net, message):
    with pytest.raises(UnsupportedError, match=message.replace("(", r"\(").replace(")", r"\)")):
        snntorch_export.to_nir(net(), (4,))


def test_a_convolutional_snntorch_network_agrees_exactly(tmp_path):
    generator = torch.Generator().manual_seed(5)
    conv = torch.nn.Conv2d(1, 3, 3, padding=1, stride=2)
    with torch.no_grad():
        conv.weight.copy_(torch.randint(-2, 3, conv.weight.shape, generator=generator))
        conv.bias.zero_()
    net = torch.nn.Sequential(
        conv, snn.Leaky(beta=0.5, threshold=2.0, init_hidden=True, state_quant=torch.floor),
        torch.nn.Flatten(), linear(3 * 4 * 4, 5, generator),
        snn.Leaky(beta=0.75, threshold=3.0, init_hidden=True, state_quant=torch.floor))
    x = (np.random.default_rng(5).random((8, 6, 1, 8, 8)) < 0.5).astype(np.uint8)
    theirs = run_snntorch(net, x)
    path = tmp_path / "cnn.nir"
    snntorch_export.export(net, path, (1, 8, 8), timesteps=6)
    model = frontend.load(path)
    assert [op.type_name for op in model.ops] == ["input", "conv2d", "lif", "flatten", "dense",
                                                  "lif", "readout"]
    ours = reference.run(model, x).spikes
    assert_same_spikes(ours, {k: v.reshape(8, 6, -1) for k, v in theirs.items()})


def test_average_pooling_folds_into_the_next_layer(tmp_path):
    generator = torch.Generator().manual_seed(6)
    conv = torch.nn.Conv2d(1, 2, 3, padding=1)
    with torch.no_grad():
        conv.weight.copy_(torch.randint(-2, 3, conv.weight.shape, generator=generator))
        conv.bias.zero_()
    net = torch.nn.Sequential(
        conv, snn.Leaky(beta=1.0, threshold=1.0, init_hidden=True), torch.nn.AvgPool2d(2),
        torch.nn.Flatten(), linear(2 * 3 * 3, 4, generator),
        snn.Leaky(beta=0.5, threshold=1.0, init_hidden=True))
    x = (np.random.default_rng(6).random((8, 5, 1, 6, 6)) < 0.5).astype(np.uint8)
    theirs = run_snntorch(net, x)
    path = tmp_path / "pool.nir"
    snntorch_export.export(net, path, (1, 6, 6), timesteps=5)
    network = frontend.to_float(path)
    assert_same_spikes(float_reference.run(network, x.reshape(8, 5, -1)).spikes,
                       {k: v.reshape(8, 5, -1) for k, v in theirs.items()})
    model = frontend.load(path, calibration=x)
    assert "2" not in model and model["3"].type_name == "flatten"
    assert model.inputs_of("3") == ["1"] and model["4"].inputs == 2 * 6 * 6
    notes = " ".join(model.metadata["frontend"]["assumptions"])
    assert "1/4 goes into the next layer" in notes
    assert "the sum pooling '2' before it is folded into its weights" in notes
    layer = model.metadata["quantization"]["layers"][1]
    assert layer["synapse"] == "4" and layer["agreement"]["spike_agreement"] > 0.9


# --- the digits example ---------------------------------------------------------------------

def load_example_script():
    spec = importlib.util.spec_from_file_location(
        "export_nir", ROOT / "examples" / "digits" / "export_nir.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("framework", ["snntorch", "generic"])
def test_digits_nir_is_the_bundled_model(framework):
    path = ROOT / "examples" / "digits" / "digits.nir"
    bundled_model = bundled.digits_model()
    exact = frontend.load(path, source_framework=framework, v_bits=10)
    assert exact.ops == bundled_model.ops
    assert [exact.inputs_of(op.name) for op in exact.ops] == \
        [bundled_model.inputs_of(op.name) for op in bundled_model.ops]
    inputs, labels = bundled.digits_test_set()
    expected = reference.run(bundled_model, inputs)
    auto = frontend.load(path, source_framework=framework)      # wider, never-saturating v
    trace = reference.run(auto, inputs)
    for name in ("lif1", "lif2"):
        assert np.array_equal(trace.spikes[name], expected.spikes[name])
    assert np.array_equal(trace.predictions, expected.predictions)
    assert native.loads(native.dumps(auto)).ops == auto.ops


def test_snntorch_simulates_digits_nir_bit_exactly():
    """The acceptance path: snnTorch network -> helper -> .nir -> hwgen -> integer reference,
    against snnTorch's own simulation of that network on the whole held-out split."""
    script = load_example_script()
    model = frontend.load(ROOT / "examples" / "digits" / "digits.nir")
    net = script.to_snntorch(bundled.digits_model())
    inputs, _ = bundled.digits_test_set()
    trace = reference.run(model, inputs)
    assert_same_spikes(trace.spikes, script.snntorch_spikes(net, trace.spikes["pixels"]))
