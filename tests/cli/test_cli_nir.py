"""NIR models on the command line: the frontend options, the report, one-line errors."""

import json
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
from click.testing import CliRunner

from hwgen.compiler.frontends import native
from hwgen import bundled
from hwgen.cli.main import cli

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits" / "digits.nir"


def invoke(*args):
    return CliRunner().invoke(cli, list(map(str, args)), catch_exceptions=False)


@pytest.fixture
def digits_inputs(tmp_path):
    inputs, labels = bundled.digits_test_set()
    path = tmp_path / "digits.npz"
    np.savez(path, inputs=inputs[:60], labels=labels[:60])
    return path


def test_inspect_shows_what_the_import_assumed_and_how_it_quantized(digits_inputs):
    result = invoke("inspect", DIGITS, "--source-framework", "snntorch",
                    "--calibration", digits_inputs)
    assert result.exit_code == 0, result.output
    output = result.output
    assert "frontend: snntorch conventions" in output and "dt = 0.0001 s" in output
    assert "T = 8 (the graph's hwgen.timesteps metadata)" in output
    assert "quantization: per-layer scale" in output
    assert "100.00%" in output and "calibration: 60 samples" in output
    described = json.loads(invoke("inspect", DIGITS, "--json").output)
    assert [op["type"] for op in described["ops"]] == [
        "input", "dense", "lif", "dense", "lif", "readout"]
    assert described["metadata"]["frontend"]["neurons"]["lif1"]["order"] == "delayed"
    assert described["metadata"]["quantization"]["layers"][0]["scale"] == 1.0


def test_reference_runs_a_nir_model_like_the_bundled_one(digits_inputs):
    result = invoke("reference", DIGITS, "--inputs", digits_inputs, "--json")
    assert result.exit_code == 0, result.output
    expected = invoke("reference", "@digits", "--samples", "60", "--json")
    assert json.loads(result.output)["accuracy"] == json.loads(expected.output)["accuracy"]


def test_options_change_the_imported_model(tmp_path):
    described = json.loads(invoke("inspect", DIGITS, "--json", "--v-bits", "10", "--fire", "ge",
                                  "--timesteps", "4").output)
    lif = described["ops"][2]["attributes"]
    assert lif["v_bits"] == 10 and lif["fire"] == "ge" and described["timesteps"] == 4
    assert described["metadata"]["frontend"]["neurons"]["lif1"]["fire_source"] == "--fire option"


def test_a_convolutional_nir_model_runs_in_the_reference(tmp_path):
    """Conv2d -> LIF -> SumPool2d -> Flatten -> Affine -> LIF: the pooling folds into the
    dense layer, the convolution stays (the reference runs it; the accelerator cannot yet)."""
    rng = np.random.default_rng(0)
    n = 4 * 3 * 3
    path = write(tmp_path / "cnn.nir", {
        "in": nir.Input(np.array([1, 6, 6])),
        "conv": nir.Conv2d(input_shape=(6, 6), weight=rng.integers(-2, 3, (4, 1, 3, 3)) * 1.0,
                           stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(4)),
        "lif": nir.LIF(tau=np.full((4, 6, 6), 2e-4), r=np.full((4, 6, 6), 2.0),
                       v_leak=np.zeros((4, 6, 6)), v_threshold=np.ones((4, 6, 6)),
                       v_reset=np.zeros((4, 6, 6))),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                              padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type=np.array([4, 3, 3]), start_dim=0),
        "fc": nir.Affine(rng.integers(-2, 3, (3, n)) * 1.0, np.zeros(3)),
        "lif2": lif(3), "out": nir.Output(np.array([3]))})
    np.savez(tmp_path / "x.npz", inputs=(rng.random((5, 4, 1, 6, 6)) < 0.4).astype(np.uint8))
    result = invoke("reference", path, "--inputs", tmp_path / "x.npz", "--json",
                    "--timesteps", "4")
    assert result.exit_code == 0, result.output
    layers = {layer["name"]: layer for layer in json.loads(result.output)["layers"]}
    assert layers["lif"]["neurons"] == 144 and layers["fc"]["neurons"] == 3
    described = json.loads(invoke("inspect", path, "--json", "--timesteps", "4").output)
    assert [op["type"] for op in described["ops"]] == [
        "input", "conv2d", "lif", "flatten", "dense", "lif", "readout"]
    assert described["ops"][4]["output"].startswith("current[3]:")


def test_nir_options_are_refused_for_other_models(tmp_path):
    result = invoke("inspect", "@digits", "--dt", "1e-3")
    assert result.exit_code == 2 and "--dt only apply to NIR models" in result.output
    native.save(bundled.digits_model(), tmp_path / "m.hwgen")
    result = invoke("inspect", tmp_path / "m.hwgen", "--v-bits", "8")
    assert result.exit_code == 2 and "--v-bits only apply to NIR (.nir) models" in result.output


def lif(n):
    return nir.LIF(tau=np.full(n, 2e-4), r=np.full(n, 2.0), v_leak=np.zeros(n),
                   v_threshold=np.ones(n), v_reset=np.zeros(n))


def write(path, nodes, edges=None):
    names = list(nodes)
    nir.write(path, nir.NIRGraph(nodes=nodes, edges=edges or list(zip(names, names[1:])),
                                 type_check=False))
    return path


def mlp(path, second=None):
    return write(path, {"in": nir.Input(np.array([4])), "fc": nir.Linear(np.ones((3, 4))),
                        "lif": lif(3), "fc2": second or nir.Linear(np.ones((2, 3))),
                        "lif2": lif(2), "out": nir.Output(np.array([2]))})


def corrupt(path):
    mlp(path)
    data = path.read_bytes()
    path.write_bytes(data[:400] + bytes(len(data) - 400))
    return path


def cubalif(path):
    n = np.ones(3)
    return write(path, {"in": nir.Input(np.array([4])), "fc": nir.Linear(np.ones((3, 4))),
                        "syn": nir.CubaLIF(tau_syn=n, tau_mem=n, r=n, v_leak=n, v_threshold=n),
                        "out": nir.Output(np.array([3]))})


def cycle(path):
    # lif -> rec -> lif alone is a recurrent layer hwgen imports; through a Scale it is not
    return write(path, {"in": nir.Input(np.array([3])), "fc": nir.Linear(np.eye(3)),
                        "lif": lif(3), "scale": nir.Scale(np.full(3, 2.0)),
                        "rec": nir.Linear(np.eye(3))},
                 [("in", "fc"), ("fc", "lif"), ("lif", "scale"), ("scale", "rec"),
                  ("rec", "lif")])


def renamed_type(path):
    mlp(path)
    with h5py.File(path, "r+") as f:
        del f["node/nodes/lif/type"]
        f["node/nodes/lif"].create_dataset("type", data="Izhikevich", dtype=h5py.string_dtype())
    return path


@pytest.mark.parametrize("make, message", [
    (cubalif, "node 'syn' (CubaLIF): v_leak differs from v_reset (neuron 0): a "
              "current-based neuron's constant drive"),
    (renamed_type, "node 'lif' (Izhikevich): NIR node type 'Izhikevich' is not supported"),
    (cycle, "recurrent connection"),
    (lambda p: mlp(p, nir.Linear(np.ones((2, 5)))),
     "node 'fc2' (Linear): weight expects 5 inputs, but 'lif' produces 3"),
    (corrupt, "not a readable NIR (HDF5) file"),
    (lambda p: p, "cannot read (No such file or directory)"),
])
def test_bad_nir_files_give_one_line_and_exit_1(tmp_path, make, message):
    path = make(tmp_path / "model.nir")
    for command in ("inspect", "reference"):
        args = [command, path, "--timesteps", "4"]
        if command == "reference":
            np.savez(tmp_path / "x.npz", inputs=np.zeros((1, 4, 4), dtype=np.uint8))
            args += ["--inputs", tmp_path / "x.npz"]
        result = invoke(*args)
        assert result.exit_code == 1, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"Error: {path}: "), lines
        assert message in lines[0] and "Traceback" not in result.output


def test_missing_time_steps_and_bad_calibration(tmp_path):
    path = mlp(tmp_path / "model.nir")
    result = invoke("inspect", path)
    assert result.exit_code == 1
    assert result.output.strip() == (f"Error: {path}: NIR stores no number of time steps; pass "
                                     f"--timesteps")
    np.savez(tmp_path / "cal.npz", inputs=np.zeros((2, 5, 3), dtype=np.uint8))
    result = invoke("inspect", path, "--calibration", tmp_path / "cal.npz")
    assert result.exit_code == 1
    assert "spike trains have shape (2, 5, 3); model" in result.output
    np.savez(tmp_path / "cal.npz", inputs=np.ones((2, 5, 4), dtype=np.uint8))
    result = invoke("inspect", path, "--calibration", tmp_path / "cal.npz")
    assert result.exit_code == 0, result.output
    assert "T = 5 (the calibration spike trains)" in result.output


def test_inspect_shows_per_neuron_decays_as_ranges(tmp_path):
    """A NIR LIF whose tau differs per neuron: inspect's quantization table gives the beta
    range and its quantized range, not one beta (which used to be the median)."""
    betas = np.array([0.0, 0.25, 0.5, 0.75, 0.875])
    tau = 1e-4 / (1.0 - betas)
    path = tmp_path / "pn.nir"
    nir.write(path, nir.NIRGraph(nodes={
        "in": nir.Input(np.array([3])), "fc": nir.Linear(np.ones((5, 3))),
        "lif": nir.LIF(tau=tau, r=tau / 1e-4, v_leak=np.zeros(5), v_threshold=np.full(5, 2.0),
                       v_reset=np.zeros(5)),
        "out": nir.Output(np.array([5]))},
        edges=[("in", "fc"), ("fc", "lif"), ("lif", "out")], type_check=False))
    result = CliRunner().invoke(cli, ["inspect", str(path), "--timesteps", "4",
                                      "--source-framework", "snntorch"],
                                catch_exceptions=False, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "0..0.875 -> 0..0.875" in result.output
    assert "(a_n * v) >> 3, a_n in 0..7 per neuron" in result.output
    compiled = invoke("compile", path, "-o", tmp_path / "build", "--timesteps", "4",
                      "--source-framework", "snntorch")
    assert compiled.exit_code == 0, compiled.output
    program = json.loads((tmp_path / "build" / "program.json").read_text())
    assert program["modes"][0]["leak"] == {"kind": "per_neuron", "frac_bits": 3}
    assert ["leak", 4, False] in program["layouts"]["neuron_entry"]


def test_a_cubalif_file_is_inspected_and_compiled(tmp_path):
    """A current-based layer end to end through the CLI: inspect names its synapse, compile
    writes a design whose program lists the mode with its synaptic leak."""
    n = np.ones(3)
    path = write(tmp_path / "cuba.nir", {
        "in": nir.Input(np.array([4])), "fc": nir.Linear(np.ones((3, 4))),
        "syn": nir.CubaLIF(tau_syn=2e-4 * n, tau_mem=4e-4 * n, r=4 * n, v_leak=0 * n,
                           v_threshold=3 * n, w_in=2 * n),
        "out": nir.Output(np.array([3]))})
    result = invoke("inspect", path, "--timesteps", "8")
    assert result.exit_code == 0, result.output
    assert "synapse (1 * i) >> 1 (alpha 0.5), separate rounding" in result.output
    result = invoke("compile", path, "-o", tmp_path / "build", "--timesteps", "8",
                    "--set", "time_chunk=4")
    assert result.exit_code == 0, result.output
    program = json.loads((tmp_path / "build" / "program.json").read_text())
    (mode,) = program["modes"]
    assert mode["synapse"] == {"kind": "multiply", "multiplier": 1, "frac_bits": 1}
    assert mode["synapse_rounding"] == "separate" and mode["i_bits"] >= 4
    # the membrane memory carries v, the order bit and the synaptic current between chunks
    manifest = json.loads((tmp_path / "build" / "manifest.json").read_text())
    widths = {m["name"]: m["width"] for m in manifest["resources"]["memories"]}
    assert widths["tppe0_membranes"] == mode["v_bits"] + 1 + mode["i_bits"]
