"""benchmarks/digits_long_t.py (the bundled MLP at a longer T) and benchmarks/area_plot.py
(tables and plot of sweep directories), on small inputs."""

import json

import numpy as np
import pytest

from hwgen import bundled
from hwgen.compiler.frontends import native
from hwgen.compiler.ir import reference

from benchmark_scripts import load


def test_a_longer_digits_model_keeps_every_op_and_runs_the_encoder_for_longer(tmp_path):
    base = bundled.digits_model()
    longer = load("digits_long_t").lengthen(base, 16)
    assert (longer.name, longer.timesteps) == ("digits_mlp_t16", 16)
    assert [op.name for op in longer.ops] == [op.name for op in base.ops]
    for op in base.ops:
        assert longer[op.name] == op and longer.inputs_of(op.name) == base.inputs_of(op.name)
    path = tmp_path / "t16.hwgen"
    native.save(longer, path)
    assert native.load(path) == longer
    inputs, _ = bundled.digits_test_set()
    trace8, trace16 = reference.run(base, inputs[:5]), reference.run(longer, inputs[:5])
    # The IF encoder at threshold 16 spikes a pixel of value x about x/16 of the steps.
    pixels8, pixels16 = trace8.spikes["pixels"], trace16.spikes["pixels"]
    assert pixels16.shape[1] == 16
    assert np.abs(pixels16.sum(1) - 2 * pixels8.sum(1)).max() <= 1


def row(time_chunk, join, status="ok", **figures):
    return {"time_chunk": time_chunk, "join": join, "status": status, "reason": "",
            "target": "ice40-up5k", "logic_kind": "LCs", "config": {"timesteps": 8},
            "build": "", **figures}


def test_area_tables_and_plot_name_every_point(tmp_path):
    area = load("area_plot")
    rows = [row(8, "dual", logic=3900, luts=2400, ffs=2300, bram=21, dsp=0, fmax_mhz=33.21,
                cycles_mean=837.6, ideal_bound=717.0, latency_us=25.22, timing_met=True, clock_mhz=32.25),
            row(1, "laggy", "tool_error", logic=4655, luts=2812, ffs=2704, bram=21, dsp=0,
                cycles_mean=7062.9, ideal_bound=6515.6,
                reason="nextpnr failed (exit status 125): ERROR: Unable to find legal "
                       "placement for all cells, design is probably at utilisation limit.; "
                       "last lines of nextpnr.log:"),
            row(16, "dual", "compile_error", reason="time_chunk 16 does not divide T = 8"),
            row(2, "laggy", "does_not_fit", logic=5996, cycles_mean=5109.4,
                reason="the design does not fit iCE40UP5K (ice40-up5k): 5996 LCs needed, "
                       "5280 available (114%). Largest cell types after synthesis: ...")]
    rows[0]["config"]["lif_steps"] = 1
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "results.json").write_text(json.dumps({"rows": rows}))
    loaded = area.load_rows([sweep])
    assert [r["timesteps"] for r in loaded] == [8, 8, 8, 8]
    assert [area.unplaced(r) for r in loaded] == [False, True, False, True]
    lines = area.markdown(loaded).splitlines()
    assert lines[2].startswith("| T | T_c | join | LCs | LUT4s |")
    assert lines[4:8] == [
        "| 8 | 16 | dual | - | - | - | - | - | - | - | - | - | compile_error: time_chunk 16 "
        "does not divide T = 8 |",
        "| 8 | 8 | dual | 3,900 | 2,400 | 2,300 | 21 | 0 | 33.2 | 838 | 717 | 25.2 us | ok at "
        "32.25 MHz |",
        "| 8 | 2 | laggy | 5,996 | - | - | - | - | - | 5,109 | - | - | does not fit: more "
        "cells than the device has |",
        "| 8 | 1 | laggy | 4,655 | 2,812 | 2,704 | 21 | 0 | - | 7,063 | 6,516 | - | "
        "not placed: nextpnr (seed 1) found no legal placement |"]
    out = tmp_path / "area.png"
    area.plot(loaded, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # lif_steps gets a column once a point departs from 1.
    rows[0]["config"] = {"timesteps": 8, "lif_steps": 4}
    (sweep / "results.json").write_text(json.dumps({"rows": rows[:1]}))
    lines = area.markdown(area.load_rows([sweep])).splitlines()
    assert lines[2].startswith("| T | T_c | join | lif_steps | LCs | LUT4s |")
    assert lines[4].startswith("| 8 | 8 | dual | 4 | 3,900 | 2,400 |")


def test_area_plot_reads_the_points_of_a_stopped_sweep_and_refuses_other_folders(tmp_path):
    area = load("area_plot")
    with pytest.raises(SystemExit, match="no results.json and no points/"):
        area.load_rows([tmp_path])
    (tmp_path / "points").mkdir()
    for index, time_chunk in [(1, 2), (0, 1)]:
        (tmp_path / "points" / f"{index}.json").write_text(
            json.dumps({**row(time_chunk, "dual"), "point": index}))
    assert [r["time_chunk"] for r in area.load_rows([tmp_path])] == [1, 2]
