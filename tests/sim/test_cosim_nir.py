"""NIR models through the whole flow to the RTL, against snnTorch's own simulation.

An snnTorch network whose four layers each use a different Leaky mode is exported to NIR
with hwgen's helper, compiled, and co-simulated on Verilator: every layer's RTL spikes
must equal snnTorch's. The bundled example's digits.nir goes through `hwgen compile` and
`hwgen simulate` as a user would run it.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from hwgen.compiler import hardware_config
from hwgen.compiler.frontends import nir as frontend
from hwgen.compiler.frontends import snntorch_export
from hwgen.compiler.scheduler.program import compile_program
from hwgen import build_directory, bundled
from hwgen.cli.main import cli
from hwgen.sim.cosim import cosimulate
from snntorch_oracle import integer_net, run_snntorch

pytestmark = [pytest.mark.verilator, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def test_rtl_spikes_exactly_like_snntorch(tmp_path):
    # (beta, reset, reset_delay) per layer: delayed and same-step, subtract and zero, a
    # leaky and an integrate-and-fire layer, and snnTorch's own same-step subtract order.
    modes = [(0.5, "subtract", True), (0.875, "zero", True), (1.0, "zero", False),
             (1.0, "subtract", False), (0.75, "subtract", True)]
    net = integer_net(3, [14, 20, 16, 12, 10, 7], beta=[b for b, _, _ in modes],
                      threshold=[2.0, 3.0, 4.0, 2.0, 2.0],
                      reset_mechanism=[r for _, r, _ in modes],
                      reset_delay=[d for _, _, d in modes])
    rng = np.random.default_rng(3)
    x = (rng.random((12, 10, 14)) < 0.45).astype(np.uint8)
    membranes = {}
    theirs = run_snntorch(net, x, membranes)
    # snnTorch stored a membrane above threshold there: its order differs from NIR's
    assert (membranes["7"] > 2.0).any()
    snntorch_export.export(net, tmp_path / "net.nir", (14,), timesteps=10)
    model = frontend.load(tmp_path / "net.nir", source_framework="snntorch")
    program = compile_program(model, hardware_config.load(None, ["tppes=3", "chunk=8"]))
    build = build_directory.write(program, model, tmp_path / "build")
    result = cosimulate(build, x)
    assert result.verdict.bit_exact
    assert set(theirs) == set(result.verdict.rtl_spikes)
    for name, spikes in theirs.items():
        assert spikes.any(), f"layer {name} never spiked: a weak test"
        assert np.array_equal(result.verdict.rtl_spikes[name], spikes), name


def test_rtl_per_neuron_decays_exactly_like_snntorch(tmp_path):
    """snnTorch Leaky layers with a beta per neuron (and a layer of one leak for all beside
    them): each NEURON entry carries its multiplier, the LIF stage multiplies by it, and the
    RTL spikes as snnTorch does, in a delayed, a same-step and a zero-reset layer."""
    rng = np.random.default_rng(8)
    sizes = [14, 20, 13, 9, 6]
    betas = [torch.tensor(rng.choice([0.0, 0.25, 0.5, 0.75, 0.875, 0.9375, 1.0], n),
                          dtype=torch.float32) for n in sizes[1:3]] + [0.5, torch.tensor(
                              rng.choice([0.125, 0.5, 0.75], sizes[4]), dtype=torch.float32)]
    net = integer_net(8, sizes, beta=betas, threshold=[2.0, 3.0, 2.0, 2.0],
                      reset_mechanism=["subtract", "subtract", "zero", "zero"],
                      reset_delay=[True, False, True, False])
    x = (rng.random((12, 10, 14)) < 0.5).astype(np.uint8)
    theirs = run_snntorch(net, x)
    snntorch_export.export(net, tmp_path / "net.nir", (14,), timesteps=10)
    model = frontend.load(tmp_path / "net.nir", source_framework="snntorch")
    assert [model[n].leak.kind for n in ("1", "3", "5", "7")] == [
        "per_neuron", "per_neuron", "multiply", "per_neuron"]
    assert model["3"].leak.frac_bits == 4 and model["7"].leak.frac_bits == 3
    assert 16 in model["3"].leak.multipliers          # beta = 1 beside leaky neurons
    program = compile_program(model, hardware_config.load(None, ["tppes=3", "chunk=8",
                                                                 "lif_steps=2"]))
    assert program.layouts["neuron_entry"]["leak"].width == 5
    build = build_directory.write(program, model, tmp_path / "build")
    result = cosimulate(build, x)
    assert result.verdict.bit_exact
    assert set(theirs) == set(result.verdict.rtl_spikes)
    for name, spikes in theirs.items():
        assert spikes.any() and not spikes.all(), f"layer {name}: a weak test"
        assert np.array_equal(result.verdict.rtl_spikes[name], spikes), name


def test_digits_nir_compiles_and_simulates_bit_exact(tmp_path):
    inputs, labels = bundled.digits_test_set()
    np.savez(tmp_path / "digits.npz", inputs=inputs[:40], labels=labels[:40])
    runner = CliRunner()
    result = runner.invoke(cli, ["compile", str(ROOT / "examples/digits/digits.nir"),
                                 "--source-framework", "snntorch", "-o", str(tmp_path / "b")],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "b/report.json").read_text())
    assert report["metadata"]["frontend"]          # what the import assumed is reported
    result = runner.invoke(cli, ["simulate", str(tmp_path / "b"), "--inputs",
                                 str(tmp_path / "digits.npz")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "bit-exact: yes, all 40 samples" in result.output
    simulated = json.loads((tmp_path / "b/sim/results.json").read_text())
    from hwgen.compiler.ir import reference
    bundled_predictions = reference.run(bundled.digits_model(), inputs[:40]).predictions
    assert simulated["rtl_predictions"] == bundled_predictions.tolist()
