"""Parsing real Yosys and nextpnr output (saved from runs of the stand-in design in
tests/fpga/data/): utilisation, Fmax, critical paths, the does-not-fit table, errors."""

import json
from pathlib import Path

import pytest

from hwgen.errors import FormatError
from hwgen.fpga import report

DATA = Path(__file__).parent / "data"


def test_ice40_report_with_a_timing_failure():
    parsed = report.parse_nextpnr_report(DATA / "ice40_timing_failure_report.json")
    (clock,) = parsed.clocks
    assert clock.name == "cd_sync.clk"
    assert clock.achieved_mhz == pytest.approx(42.187, abs=1e-3)
    assert clock.constraint_mhz == 200 and not clock.met
    assert parsed.utilization["ICESTORM_LC"] == (346, 5280)
    assert parsed.utilization["ICESTORM_RAM"] == (0, 30)
    path = report.critical_path_summary(parsed.critical_paths[0])
    assert path["from_clock"] == "posedge cd_sync.clk"
    assert path["delay_ns"] == pytest.approx(path["logic_ns"] + path["routing_ns"], abs=1e-3)
    # 1 / 42.187 MHz = 23.7 ns
    assert path["delay_ns"] == pytest.approx(23.7, abs=0.1)
    assert path["logic_levels"] == 7 and path["start"] and path["end"]
    assert all(":" in source and not source.startswith("/") for source in path["sources"])


def test_ecp5_report_that_passes():
    parsed = report.parse_nextpnr_report(DATA / "ecp5_pass_report.json")
    (clock,) = parsed.clocks
    assert clock.name == "clk"                    # '$glbnet$' prefix removed
    assert clock.met and clock.achieved_mhz == pytest.approx(161.368, abs=1e-3)
    assert clock.to_json() == {"clock": "clk", "achieved_mhz": 161.37, "constraint_mhz": 50.0,
                               "met": True}
    assert parsed.utilization["TRELLIS_COMB"][1] == 83640
    assert parsed.utilization["DP16KD"] == (0, 208)
    assert parsed.utilization["EHXPLLL"] == (1, 4)


def test_yosys_stat_cells_by_type():
    ice40 = report.parse_yosys_stat(DATA / "ice40_yosys_stat.json")
    assert ice40["SB_LUT4"] > 0 and "$scopeinfo" not in ice40
    ecp5 = report.parse_yosys_stat(DATA / "ecp5_yosys_stat.json")
    assert ecp5["TRELLIS_FF"] == 385 and ecp5["EHXPLLL"] == 1


def test_utilisation_table_of_a_design_that_does_not_fit():
    text = (DATA / "ice40_does_not_fit_nextpnr.log").read_text()
    table = report.parse_utilisation_log(text)
    assert table["ICESTORM_LC"] == (12597, 5280)
    assert table["ICESTORM_RAM"] == (0, 30)
    assert len(table) == 15
    assert report.nextpnr_errors(text) == [
        "ERROR: Unable to place cell 'r6_SB_DFFSR_Q_3_D_SB_LUT4_O_I2_SB_LUT4_O_LC', no BELs "
        "remaining to implement cell type 'ICESTORM_LC'"]


def test_utilisation_table_of_a_log_that_passed_matches_the_report():
    text = (DATA / "ecp5_pass_nextpnr.log").read_text()
    table = report.parse_utilisation_log(text)
    parsed = report.parse_nextpnr_report(DATA / "ecp5_pass_report.json")
    assert table == parsed.utilization
    assert report.parse_utilisation_log("Info: nothing here\n") == {}


@pytest.mark.parametrize("content, message", [
    ("{", "not valid JSON"),
    ('{"fmax": {}}', "not a nextpnr report (no 'utilization' / 'fmax')"),
    ('{"fmax": {"clk": {"achieved": 1}}, "utilization": {}}',
     "unexpected nextpnr report layout (KeyError('constraint'))"),
])
def test_malformed_nextpnr_reports(tmp_path, content, message):
    path = tmp_path / "report.json"
    path.write_text(content)
    with pytest.raises(FormatError) as error:
        report.parse_nextpnr_report(path)
    assert str(error.value).startswith(f"{path}: {message}")


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(FormatError, match="missing \\(the tool did not write it\\)"):
        report.parse_nextpnr_report(tmp_path / "absent.json")
    (tmp_path / "stat.json").write_text(json.dumps({"modules": {}}))
    with pytest.raises(FormatError, match="not a Yosys 'stat -json' report"):
        report.parse_yosys_stat(tmp_path / "stat.json")


def test_tail(tmp_path):
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert report.tail(log, 3) == "line 97\nline 98\nline 99"
    assert report.tail(tmp_path / "none.log") == ""


def test_a_dsp_clock_tied_to_ground_is_not_a_clock():
    """iCE40 SB_MAC16s used without registers have their clock on the ground net, which
    nextpnr times as a clock of its own; the real clock is the slow one."""
    path = DATA / "ice40_dsp_gnd_clock_report.json"
    raw = json.loads(path.read_text())
    assert "$PACKER_GND_NET_$glb_clk" in raw["fmax"]
    parsed = report.parse_nextpnr_report(path)
    assert [clock.name for clock in parsed.clocks] == ["clk"]
    assert parsed.clocks[0].achieved_mhz == pytest.approx(13.338, abs=1e-3)
    summaries = [report.critical_path_summary(p) for p in parsed.critical_paths]
    assert all("PACKER" not in s["from_clock"] + s["to_clock"] for s in summaries)
    worst = report.path_of_clock(summaries, "clk")
    assert worst["from_clock"] == worst["to_clock"] == "posedge clk"
    assert worst["delay_ns"] == pytest.approx(1000 / 13.338, abs=0.2)
    assert report.path_of_clock([], "clk") is None
