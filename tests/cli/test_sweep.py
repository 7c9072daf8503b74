"""`hwgen sweep` on the real Dask engine: a LocalCluster, a separately started scheduler and
worker, resumption after a killed run, failing points as rows, the tables and the plots.

Points that the compiler refuses (spike_depth=1 is narrower than any layer) need no
Verilator, so the engine's own behaviour is tested fast; the Verilator tests reuse two
small designs, which the Verilator cache keeps across tests.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hwgen.errors import ConfigError
from hwgen.compiler.frontends import native
from hwgen.cli.main import cli
from hwgen.sweep import SEQUENTIAL, sweep
from hwgen.sweep.engine import COMPILE_ERROR, OK, parse_grid
from hwgen.sweep.report import choose_axes, pareto_front
from hwgen.sim.workloads import ALL_MODES, random_workload

PNG = b"\x89PNG\r\n\x1a\n"
# Two designs that run (TPPEs 1 and 3) and two the compiler refuses (spike_depth=1).
GRID = ["tppes=1,3", "spike_depth=auto,1"]
SAMPLES = 3


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A small random model and its inputs file."""
    folder = tmp_path_factory.mktemp("sweep-model")
    w = random_workload(31, [24, 13, 5], 4, samples=SAMPLES, spike_density=0.4,
                        weight_density=0.5, modes=(ALL_MODES[3], ALL_MODES[12]))
    native.save(w.model, folder / "model.hwgen")
    np.savez(folder / "inputs.npz", inputs=w.spikes)
    return folder / "model.hwgen", folder / "inputs.npz"


def _figures(rows):
    """The measured figures of each point (no paths, timings or hashes)."""
    keep = ("tppes", "spike_depth", "status", "reason", "memory_bits", "cycles_mean",
            "cycles_max", "ideal_bound", "bit_exact", "mismatching_samples")
    return [{k: row.get(k) for k in keep} for row in rows]


def _check_outputs(out, points, axes=("tppes", "spike_depth")):
    with open(out / "results.csv") as f:
        table = list(csv.reader(f))
    assert len(table) == points + 1
    header = table[0]
    assert header[:2] == list(axes)
    assert "cycles_mean [cycles]" in header and "latency_us [us]" in header
    document = json.loads((out / "results.json").read_text())
    assert len(document["rows"]) == points
    for name in ("pareto.png",):
        data = (out / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 5000
    assert (out / "pareto.svg").read_text().lstrip().startswith("<?xml")
    assert (out / "summary.md").read_text().startswith(f"# Sweep: {points} points")
    assert len(list((out / "points").glob("*.json"))) == points


# --- the engine without Verilator ---------------------------------------------------------

def test_grid_parsing_refuses_bad_axes():
    assert parse_grid(["tppes=1,2,4", "fifo_depth=2", "lif_steps=auto,2"]) == {
        "tppes": [1, 2, 4], "fifo_depth": [2], "lif_steps": ["auto", 2]}
    for item, message in (("tpes=1,2", "unknown parameter 'tpes'"),
                          ("tppes", "expected KEY=V1,V2"),
                          ("tppes=1,1", "repeated value")):
        with pytest.raises(ConfigError, match=message):
            parse_grid([item])
    with pytest.raises(ConfigError, match="already a grid axis"):
        parse_grid(["tppes=1", "tppes=2"])
    result = invoke("sweep", "@digits", "--grid", "chunk=12,8", "-o", "unused")
    assert result.exit_code == 1
    assert "Error: --grid chunk=12: chunk = 12 must be a power of two" in result.output


def test_pareto_front_and_axes():
    rows = [{"status": OK, "logic": a, "latency_us": t, "memory_bits": 1, "cycles_mean": 1,
             "logic_kind": "LCs"}
            for a, t in ((100, 9.0), (200, 5.0), (150, 9.5), (300, 5.0), (400, 1.0))]
    rows.append({"status": "does_not_fit", "logic": 50, "latency_us": None})
    axes = choose_axes(rows)
    assert axes[0][0] == "logic" and axes[1][0] == "latency_us" and "LCs" in axes[0][1]
    assert [(r["logic"], r["latency_us"]) for r in pareto_front(rows, axes)] == [
        (100, 9.0), (200, 5.0), (400, 1.0)]
    # Without synthesis: memory bits and cycles.
    rows = [{"status": OK, "memory_bits": m, "cycles_mean": c} for m, c in ((1, 5), (2, 3))]
    assert [a[0] for a in choose_axes(rows)] == ["memory_bits", "cycles_mean"]


def test_failing_points_are_rows_on_a_local_cluster(small, tmp_path):
    model, inputs = small
    out = tmp_path / "sw"
    result = sweep(str(model), ["spike_depth=1,2", "chunk=8,16"], out, inputs=inputs,
                   workers=2, processes=False)
    assert [row["status"] for row in result.rows] == [COMPILE_ERROR] * 4
    assert all("spike_depth" in row["reason"] for row in result.rows)
    assert [(row["spike_depth"], row["chunk"]) for row in result.rows] == [
        (1, 8), (1, 16), (2, 8), (2, 16)]
    _check_outputs(out, 4, ("spike_depth", "chunk"))
    assert "No point completed" in (out / "summary.md").read_text()
    # Done points are not run again.
    again = sweep(str(model), ["spike_depth=1,2", "chunk=8,16"], out, inputs=inputs,
                  scheduler=SEQUENTIAL)
    assert (again.ran, again.skipped) == (0, 4)


def test_points_with_unexpected_errors_are_retried(small, tmp_path):
    model, inputs = small
    out = tmp_path / "sw"
    first = sweep(str(model), ["spike_depth=1,2"], out, inputs=inputs, scheduler=SEQUENTIAL)
    saved = out / "points" / f"{first.rows[0]['hash']}.json"
    row = json.loads(saved.read_text())
    row["status"], row["reason"] = "error", "KilledWorker: simulated"
    saved.write_text(json.dumps(row))
    (out / "points" / f"{first.rows[1]['hash']}.json").write_text("{damaged")
    again = sweep(str(model), ["spike_depth=1,2"], out, inputs=inputs, scheduler=SEQUENTIAL)
    assert (again.ran, again.skipped) == (2, 0)
    assert [row["status"] for row in again.rows] == [COMPILE_ERROR] * 2


# --- with Verilator -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def local_sweep(small, tmp_path_factory):
    """GRID on a LocalCluster of two worker processes."""
    model, inputs = small
    out = tmp_path_factory.mktemp("local") / "sw"
    return sweep(str(model), GRID, out, inputs=inputs, workers=2), out


@pytest.mark.verilator
def test_sweep_on_a_local_cluster(local_sweep):
    result, out = local_sweep
    statuses = [(row["tppes"], row["spike_depth"], row["status"]) for row in result.rows]
    assert statuses == [(1, "auto", OK), (1, 1, COMPILE_ERROR), (3, "auto", OK),
                        (3, 1, COMPILE_ERROR)]
    ok = [row for row in result.rows if row["status"] == OK]
    for row in ok:
        assert row["bit_exact"] is True and row["samples"] == SAMPLES
        assert row["cycles_mean"] >= row["ideal_bound"] > 0
        assert (out / "builds" / row["hash"] / "sim" / "results.json").is_file()
    # Three TPPEs share the work of one: fewer cycles.
    assert ok[1]["cycles_mean"] < ok[0]["cycles_mean"]
    _check_outputs(out, 4)
    summary = (out / "summary.md").read_text()
    assert "| latency | tppes=3 spike_depth=auto |" in summary
    assert "| area | tppes=1 spike_depth=auto |" in summary


@pytest.mark.verilator
def test_sweep_on_a_separately_started_scheduler(small, local_sweep, tmp_path):
    model, inputs = small
    scheduler_file = tmp_path / "scheduler.json"
    dask = str(Path(sys.executable).parent / "dask")
    processes = []
    try:
        processes.append(subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(scheduler_file)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        deadline = time.monotonic() + 60
        while not scheduler_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        processes.append(subprocess.Popen(
            [dask, "worker", address, "--nthreads", "1",
             "--nworkers", "1", "--host", "127.0.0.1", "--no-dashboard"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        out = tmp_path / "sw"
        result = invoke("sweep", model, "--inputs", inputs, "--grid", GRID[0], "--grid",
                        GRID[1], "-o", out, "--scheduler", address)
        assert result.exit_code == 0, result.output
        assert "4 points (4 run, 0 already done)" in result.output
    finally:
        for process in reversed(processes):
            os.killpg(process.pid, signal.SIGTERM)
        for process in reversed(processes):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
    remote = json.loads((out / "results.json").read_text())["rows"]
    assert _figures(remote) == _figures(local_sweep[0].rows)


@pytest.mark.verilator
def test_a_killed_sweep_resumes(small, local_sweep, tmp_path):
    model, inputs = small
    out = tmp_path / "sw"
    command = [sys.executable, "-c", "from hwgen.cli.main import main; main()", "sweep",
               str(model), "--inputs", str(inputs), "--grid", GRID[0], "--grid", GRID[1],
               "-o", str(out), "--workers", "1"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            if list((out / "points").glob("*.json")):
                break
            time.sleep(0.1)
    finally:
        # The CLI, its Dask cluster and any simulator: the whole session it started.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    done = {path.name: path.stat().st_mtime_ns for path in (out / "points").glob("*.json")}
    assert done, "no point finished before the deadline"
    assert len(done) < 4, "the sweep finished before it could be killed"
    assert not (out / "results.csv").exists() or len(done) == 4
    result = sweep(str(model), GRID, out, inputs=inputs, workers=1)
    assert result.skipped == len(done) and result.ran == 4 - len(done)
    for name, mtime in done.items():
        assert (out / "points" / name).stat().st_mtime_ns == mtime
    assert _figures(result.rows) == _figures(local_sweep[0].rows)


@pytest.mark.verilator
@pytest.mark.fpga
@pytest.mark.slow
def test_sweep_with_synthesis(small, tmp_path):
    model, inputs = small
    out = tmp_path / "sw"
    # One point synthesised, once, at a clock the small design makes easily (synthesis
    # takes minutes); the other is refused by the compiler and never reaches Yosys.
    result = sweep(str(model), ["spike_depth=auto,1"], out, inputs=inputs,
                   synth="ice40-up5k", frequency=10.0, scheduler=SEQUENTIAL)
    row, refused = result.rows
    assert row["status"] == OK, row["reason"]
    assert refused["status"] == COMPILE_ERROR and refused.get("fits") is None
    assert row["target"] == "ice40-up5k" and row["logic_kind"] == "LCs"
    assert row["logic"] > row["luts"] > 0 and row["ffs"] > 0
    assert row["fits"] is True and row["timing_met"] is True
    assert row["fmax_mhz"] >= 10.0 and row["clock_mhz"] == 10.0
    assert row["latency_us"] == pytest.approx(row["cycles_mean"] / row["fmax_mhz"], rel=1e-3)
    report = out / "builds" / row["hash"] / "fpga" / "ice40-up5k"
    assert (report / "utilisation.png").read_bytes().startswith(PNG)
    assert "![utilisation](utilisation.png)" in (report / "report.md").read_text()
    summary = (out / "summary.md").read_text()
    assert "Area is logic used (LCs); latency is latency per inference" in summary
    assert f"| latency | spike_depth=auto | {row['latency_us']:.4g} | {row['logic']} |" \
        in summary
