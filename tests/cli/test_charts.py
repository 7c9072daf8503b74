"""The pictures beside the reports, and compile's per-layer sparsity figures."""

import json

import numpy as np
from click.testing import CliRunner

from hwgen.compiler import hardware_config
from hwgen.compiler.scheduler.program import compile_program
from hwgen import charts
from hwgen.build_directory import layer_sparsity
from hwgen.cli.main import cli
from hwgen.compiler.ir import reference
from hwgen.sim.workloads import ALL_MODES, random_workload

PNG = b"\x89PNG\r\n\x1a\n"


def test_utilisation_chart(tmp_path):
    report = {"design": {"name": "digits_mlp"}, "target": "icebreaker",
              "device": "iCE40UP5K", "status": "does_not_fit",
              "timing": {"fmax_mhz": 35.1},
              "resources": [
                  {"resource": "LCs", "used": 6200, "available": 5280, "percent": 117.4},
                  {"resource": "BRAM", "used": 20, "available": 30, "percent": 66.7},
                  {"resource": "PLL", "used": 0, "available": 1, "percent": 0.0}]}
    charts.save(charts.utilisation_chart(report), tmp_path / "u.png")
    data = (tmp_path / "u.png").read_bytes()
    assert data.startswith(PNG) and len(data) > 5000


def test_cycles_chart(tmp_path):
    report = {"layers": [{"name": "lif1", "cycles_mean": 120.0, "ideal_bound_mean": 100.0},
                         {"name": "lif2", "cycles_mean": 30.0, "ideal_bound_mean": 0.0}]}
    charts.save(charts.cycles_chart(report, [(0.3, 0.2), (0.2, 0.05)], "t"),
                tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes().startswith(PNG)


def test_compile_reports_weight_and_spike_sparsity(tmp_path):
    w = random_workload(5, [20, 12, 4], 4, samples=6, spike_density=0.3, weight_density=0.25,
                        modes=(ALL_MODES[0], ALL_MODES[1]))
    program = compile_program(w.model, hardware_config.load(None, ["tppes=2"]))
    plain = layer_sparsity(program, w.model)
    dense = [op for op in w.model.ops if op.type_name == "dense"]
    assert [entry["weight_sparsity"] for entry in plain] == [
        round(float((op.weight == 0).mean()), 4) for op in dense]
    assert plain[0]["input_spike_sparsity"] is None
    spikes = reference.run(w.model, w.spikes).spikes
    measured = layer_sparsity(program, w.model, spikes)
    assert measured[0]["input_spike_sparsity"] == round(
        1 - float(spikes[w.model.input.name].mean()), 4)
    assert measured[1]["output_spike_sparsity"] == round(
        1 - float(spikes[program.layers[1].name].mean()), 4)
    assert 0 < measured[0]["input_spike_sparsity"] < 1
    # The compile command prints them and keeps them in report.json.
    from hwgen.compiler.frontends import native
    native.save(w.model, tmp_path / "m.hwgen")
    np.savez(tmp_path / "x.npz", inputs=w.spikes)
    result = CliRunner().invoke(cli, ["compile", str(tmp_path / "m.hwgen"), "-o",
                                      str(tmp_path / "b"), "--calibration",
                                      str(tmp_path / "x.npz")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "zero weights" in result.output and "silent inputs" in result.output
    layers = json.loads((tmp_path / "b" / "report.json").read_text())["layers"]
    assert [layer["input_spike_sparsity"] for layer in layers] == [
        m["input_spike_sparsity"] for m in measured]
