"""The user's flow through the CLI: compile, simulate, quickstart, and their refusals."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from hwgen.compiler.frontends import native
from hwgen.cli.main import cli
from hwgen.sim.workloads import ALL_MODES, random_workload


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A small random model, its inputs file, and a compiled build directory."""
    folder = tmp_path_factory.mktemp("flow")
    w = random_workload(21, [30, 17, 6], 4, samples=5, spike_density=0.4, weight_density=0.5,
                        modes=(ALL_MODES[7], ALL_MODES[20]))
    native.save(w.model, folder / "model.hwgen")
    np.savez(folder / "inputs.npz", inputs=w.spikes)
    result = invoke("compile", folder / "model.hwgen", "-o", folder / "build",
                    "--set", "tppes=3", "--set", "chunk=8")
    assert result.exit_code == 0, result.output
    return folder, w


@pytest.mark.verilator
def test_compile_then_simulate(small):
    folder, w = small
    result = invoke("simulate", folder / "build", "--inputs", folder / "inputs.npz")
    assert result.exit_code == 0, result.output
    assert "bit-exact: yes, all 5 samples" in result.output
    report = json.loads((folder / "build/sim/results.json").read_text())
    assert report["samples"] == 5 and report["mismatching_samples"] == 0
    assert report["first_mismatch"] is None
    assert len(report["cycles_per_sample"]) == 5
    assert [layer["name"] for layer in report["layers"]] == ["lif1", "lif2"]
    assert all(len(layer["ideal_bound_per_sample"]) == 5 for layer in report["layers"])
    with np.load(folder / "build/sim/outputs.npz") as outputs:
        assert outputs["spikes"].shape == (5, 4, 6)
    chart = (folder / "build/sim/cycles.png").read_bytes()
    assert chart.startswith(b"\x89PNG") and len(chart) > 10000


@pytest.mark.verilator
def test_a_disagreeing_reference_fails_the_simulation(small, tmp_path):
    folder, w = small
    # The same Verilog (so the cached simulator), but the reference now differs in one
    # threshold, as if the reference had a bug: simulate must notice, locate it and exit 1.
    # (replace_model updates the manifest too: a model merely edited in place is refused
    # before any simulation, see tests/test_build_directory.py.)
    import shutil
    from build_edits import replace_model
    shutil.copytree(folder / "build", tmp_path / "build")
    model = native.load(tmp_path / "build/model.hwgen")
    model["lif2"].threshold[0] += 3
    replace_model(tmp_path / "build", model)
    result = invoke("simulate", tmp_path / "build", "--inputs", folder / "inputs.npz")
    assert result.exit_code == 1
    assert "bit-exact: no" in result.output
    report = json.loads((tmp_path / "build/sim/results.json").read_text())
    assert report["first_mismatch"]["layer"] == "lif2"
    assert report["first_mismatch"]["neuron"] == 0


@pytest.mark.verilator
def test_waves(small):
    folder, _ = small
    result = invoke("simulate", folder / "build", "--inputs", folder / "inputs.npz",
                    "--samples", "1", "--waves")
    assert result.exit_code == 0, result.output
    vcd = folder / "build/sim/waves0.vcd"
    assert f"waves: {vcd}" in result.output.replace("\n", "")
    assert vcd.read_text().startswith("$version")


@pytest.mark.verilator
def test_quickstart(tmp_path):
    result = invoke("quickstart", "-o", tmp_path / "qs", "--samples", "24")
    assert result.exit_code == 0, result.output
    assert "bit-exact: yes, all 24 samples" in result.output
    assert "accuracy: reference" in result.output and "cycles per inference" in result.output
    assert (tmp_path / "qs/rtl/hwgen_core.v").exists()


def test_a_model_that_does_not_fit_is_refused_and_writes_nothing(small, tmp_path):
    folder, _ = small
    result = invoke("compile", folder / "model.hwgen", "-o", tmp_path / "out",
                    "--set", "weight_depth=10")
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "config weight_depth = 10" in errors[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.iterdir())


def test_a_failed_compile_keeps_the_previous_build(small, tmp_path):
    folder, _ = small
    assert invoke("compile", "@digits", "-o", tmp_path / "out").exit_code == 0
    before = (tmp_path / "out/manifest.json").read_text()
    result = invoke("compile", "@digits", "-o", tmp_path / "out", "--set", "timesteps=4")
    assert result.exit_code == 1
    assert (tmp_path / "out/manifest.json").read_text() == before


@pytest.mark.parametrize("args, message", [
    (["simulate", "{tmp}/nothing", "--inputs", "{tmp}/x.npz"], "no such build directory"),
    (["simulate", "{tmp}", "--inputs", "{tmp}/x.npz"], "not a build directory (no manifest"),
    (["compile", "@digits", "-o", "{tmp}/o", "--set", "chunk=12"], "chunk = 12 must be a power"),
])
def test_bad_arguments_give_one_line(args, message, tmp_path):
    result = invoke(*[a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1 and message in result.output


def test_simulate_checks_inputs_before_building(small, tmp_path):
    folder, _ = small
    np.savez(tmp_path / "bad.npz", inputs=np.zeros((2, 4, 29), dtype=np.uint8))
    result = invoke("simulate", folder / "build", "--inputs", tmp_path / "bad.npz")
    assert result.exit_code == 1
    assert "spike trains have shape (2, 4, 29)" in result.output


@pytest.mark.verilator
@pytest.mark.slow
def test_a_spikformer_file_compiles_with_calibration_and_simulates_bit_exact(tmp_path):
    """Spikformer's Q (K^T V) through the commands a user runs: its extra layers (V kept,
    the matrices) appear in the report and the simulation like any layer."""
    from hwgen.sim.workloads import random_transformer
    native.save(random_transformer("spikformer", dim=8, heads=2, hidden=16, timesteps=4),
                tmp_path / "spikformer.hwgen")
    x = (np.random.default_rng(0).random((4, 4, 1, 8, 8)) < 0.4).astype(np.uint8)
    np.savez(tmp_path / "inputs.npz", inputs=x)
    result = invoke("compile", tmp_path / "spikformer.hwgen", "-o", tmp_path / "build",
                    "--calibration", tmp_path / "inputs.npz")
    assert result.exit_code == 0, result.output
    assert ("products by kept currents, per step (Q (K^T V)): blocks.0.attn.ktv multiplies "
            "by blocks.0.attn.ktv.values's kept currents; blocks.0.attn.attn_lif multiplies "
            "by blocks.0.attn.ktv's kept currents") in " ".join(result.output.split())
    result = invoke("simulate", tmp_path / "build", "--inputs", tmp_path / "inputs.npz")
    assert result.exit_code == 0, result.output
    assert "bit-exact: yes, all 4 samples" in result.output
    report = json.loads((tmp_path / "build/sim/results.json").read_text())
    names = [layer["name"] for layer in report["layers"]]
    assert names[names.index("blocks.0.attn.ktv.values"):][:3] == [
        "blocks.0.attn.ktv.values", "blocks.0.attn.ktv", "blocks.0.attn.attn_lif"]
