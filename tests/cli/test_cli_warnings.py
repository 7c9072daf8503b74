"""Compile-time warnings through the CLI: layers that can never spike, and quantization that
changes more than a few percent of the calibration spikes."""

import json

import nir
import numpy as np
from click.testing import CliRunner

from hwgen.compiler.frontends import native
from hwgen.compiler.ir import LIF, Dense, Input, Leak, Model
from hwgen.compiler.passes.reachability import silent_layers
from hwgen.cli.main import cli


def invoke(*args):
    return CliRunner().invoke(cli, list(map(str, args)), catch_exceptions=False)


def write(path, nodes):
    names = list(nodes)
    nir.write(path, nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])),
                                 type_check=False))
    return path


def if_node(n, threshold):
    return nir.IF(r=np.ones(n), v_threshold=np.full(n, float(threshold)), v_reset=np.zeros(n))


def two_layers(path, theta1, theta2, w1=None):
    w1 = np.ones((3, 4)) if w1 is None else w1
    return write(path, {"in": nir.Input(np.array([4])), "fc": nir.Linear(w1),
                        "lif": if_node(3, theta1), "fc2": nir.Linear(np.ones((2, 3))),
                        "lif2": if_node(2, theta2), "out": nir.Output(np.array([2]))})


def warnings_of(output):
    return [line for line in output.splitlines() if line.startswith("warning: ")]


def test_a_layer_that_can_never_reach_its_threshold_is_named_with_its_bound(tmp_path):
    """IF layer, 4 inputs of weight 1, T = 4: at most 4 per step, 16 after four steps,
    against a threshold of 17; the next layer then has no input at all."""
    path = two_layers(tmp_path / "quiet.nir", 17, 1)
    result = invoke("compile", path, "-o", tmp_path / "build", "--timesteps", "4",
                    "--source-framework", "sinabs", "--spike-fn", "single")
    assert result.exit_code == 0, result.output
    found = warnings_of(result.output)
    assert len(found) == 2, result.output
    assert found[0].startswith("warning: layer 'lif' can never spike within T = 4 steps")
    assert "its largest possible membrane is 16 against threshold 17 (neuron 0" in found[0]
    assert found[1].startswith("warning: layer 'lif2' can never spike")
    assert "every input it reads is silent" in found[1]
    report = json.loads((tmp_path / "build" / "report.json").read_text())
    assert report["notes"]["warnings"] == [w[len("warning: "):] for w in found]
    # One step less of threshold and the first layer can fire (ge): no warning at all.
    result = invoke("compile", two_layers(tmp_path / "ok.nir", 16, 1), "-o",
                    tmp_path / "ok", "--timesteps", "4", "--source-framework", "sinabs",
                    "--spike-fn", "single")
    assert result.exit_code == 0 and not warnings_of(result.output), result.output
    assert "warnings" not in json.loads((tmp_path / "ok" / "report.json").read_text())["notes"]
    # inspect says the same
    result = invoke("inspect", path, "--timesteps", "4", "--source-framework", "sinabs",
                    "--spike-fn", "single")
    assert warnings_of(result.output) == found


def test_the_bound_counts_only_positive_weights_and_the_leaks_best_case(tmp_path):
    """A native model: weights 2 and -5, bias 1, leak v - (v >> 1) (rounds up), T = 3:
    3, then 3 - 1 + 3 = 5, then 5 - 2 + 3 = 6 -- a threshold of 6 fires (ge), 7 does not."""
    def model(theta, fire="ge"):
        m = Model("leaky", 3)
        m.add(Input("x", (2,)))
        m.add(Dense("fc", np.array([[2, -5]]), np.array([1]), weight_bits=4, acc_bits=5), "x")
        m.add(LIF("lif", np.array([theta]), leak=Leak.by_shift(1), fire=fire, v_bits=6), "fc")
        return m
    assert silent_layers(model(6)) == []
    assert silent_layers(model(6, "gt")) and silent_layers(model(7))
    assert "largest possible membrane is 6 against threshold 7" in silent_layers(model(7))[0]
    native.save(model(7), tmp_path / "leaky.hwgen")
    result = invoke("compile", tmp_path / "leaky.hwgen", "-o", tmp_path / "build")
    assert result.exit_code == 0, result.output
    assert warnings_of(result.output) == [f"warning: {silent_layers(model(7))[0]}"]


def test_the_bound_takes_each_neurons_own_leak(tmp_path):
    """Per-neuron leaks: 3 inputs of weight 1 each step, T = 4. A neuron with a = 4/4 (no
    leak) reaches 12; a = 2/4 reaches 3, 4, 5, 5 (floor); a = 0 stays at 3. Thresholds 12,
    6 and 4: only the first can fire, so the layer is not silent, and the warning for a
    layer of the two leakier neurons names its best neuron's bound, 5 against 6."""
    def model(multipliers, thetas):
        m = Model("per_neuron", 4)
        m.add(Input("x", (3,)))
        m.add(Dense("fc", np.ones((len(thetas), 3), dtype=np.int64), None, weight_bits=2,
                    acc_bits=4), "x")
        m.add(LIF("lif", np.array(thetas), leak=Leak.per_neuron(multipliers, 2), v_bits=8),
              "fc")
        return m
    assert silent_layers(model([4, 2, 0], [12, 6, 4])) == []
    found = silent_layers(model([2, 0], [6, 4]))
    assert len(found) == 1 and "largest possible membrane is 5 against threshold 6" in found[0]
    assert silent_layers(model([2, 0], [5, 4])) == []
    native.save(model([2, 0], [6, 4]), tmp_path / "pn.hwgen")
    result = invoke("inspect", tmp_path / "pn.hwgen")
    assert result.exit_code == 0, result.output
    assert warnings_of(result.output) == [f"warning: {found[0]}"]
    assert "(a_n * v) >> 2, a_n in 0..2 per neuron" in result.output


def test_quantization_that_changes_many_calibration_spikes_is_warned(tmp_path):
    """An integer-valued MLP (weights -3..3) is kept exactly: no warning. Squeezed into
    2-bit weights it changes far more than 3 % of its spikes on the calibration inputs."""
    rng = np.random.default_rng(0)
    w1 = rng.integers(-3, 4, (12, 16)).astype(float)
    w2 = rng.integers(-3, 4, (4, 12)).astype(float)
    path = write(tmp_path / "mlp.nir", {
        "in": nir.Input(np.array([16])), "fc": nir.Linear(w1), "lif": if_node(12, 3),
        "fc2": nir.Linear(w2), "lif2": if_node(4, 3), "out": nir.Output(np.array([4]))})
    np.savez(tmp_path / "cal.npz", inputs=(rng.random((40, 8, 16)) < 0.4).astype(np.uint8))
    common = [path, "--calibration", tmp_path / "cal.npz", "--source-framework", "sinabs",
              "--spike-fn", "single"]
    result = invoke("compile", *common, "-o", tmp_path / "b2", "--weight-bits", "2")
    assert result.exit_code == 0, result.output
    found = [w for w in warnings_of(result.output) if "quantization changes" in w]
    assert found and "in layer 'lif' on the 40 calibration samples" in found[0], result.output
    report = json.loads((tmp_path / "b2" / "report.json").read_text())
    layer = report["metadata"]["quantization"]["calibration"]["layers"]["lif"]
    assert layer["changed_spikes"] > 0.03
    assert f"{layer['changed_spikes']:.1%} of its spikes" in found[0]
    assert report["notes"]["warnings"][:len(found)] == [w[len("warning: "):] for w in found]
    result = invoke("compile", *common, "-o", tmp_path / "exact")
    assert result.exit_code == 0, result.output
    assert not warnings_of(result.output), result.output
    report = json.loads((tmp_path / "exact" / "report.json").read_text())
    assert report["metadata"]["quantization"]["calibration"]["layers"]["lif"][
        "changed_spikes"] == 0.0
