"""Targets, PLL settings and the build-directory reader."""

import json

import pytest

from hwgen.errors import ConfigError, FormatError
from hwgen.fpga import pll, protocol
from hwgen.fpga.core import CoreSpec
from hwgen.fpga.targets import BOARDS, TARGETS, get_board, get_target


def test_targets_include_the_boards_and_bare_devices_of_the_issue():
    assert set(BOARDS) == {"icebreaker", "ulx3s-85f"}
    assert {"ice40-up5k", "ecp5-25k", "ecp5-85k"} <= set(TARGETS)
    assert get_target("ICEBreaker").device.part == "iCE40UP5K"
    assert get_target("ulx3s-85f").device.part == "LFE5U-85F"
    for target in TARGETS.values():
        platform = target.platform(target.default_mhz * 1e6)
        assert platform.device == target.device.part


def test_unknown_targets_and_boards():
    with pytest.raises(ConfigError, match="unknown target 'de10'; known targets: icebreaker, "
                                          "ulx3s-85f, ice40-up5k, ecp5-25k, ecp5-85k"):
        get_target("de10")
    with pytest.raises(ConfigError, match="'ecp5-85k' is a bare device, not a board; boards: "
                                          "icebreaker, ulx3s-85f"):
        get_board("ecp5-85k")


@pytest.mark.parametrize("f_out", [24e6, 36e6, 48e6, 60e6])
def test_ice40_pll_settings(f_out):
    setting = pll.ice40_pll(12e6, f_out)
    assert abs(setting.f_out - f_out) <= 0.01 * f_out
    f_pfd = 12e6 / (setting.divr + 1)
    assert 10e6 <= f_pfd <= 133e6 and 533e6 <= f_pfd * (setting.divf + 1) <= 1066e6
    assert 1 <= setting.filter_range <= 6


def test_ice40_pll_matches_icepll():
    # icepll -i 12 -o 48: DIVR=0, DIVF=63, DIVQ=4, FILTER_RANGE=1
    setting = pll.ice40_pll(12e6, 48e6)
    assert (setting.divr, setting.divf, setting.divq, setting.filter_range) == (0, 63, 4, 1)


@pytest.mark.parametrize("f_out", [50e6, 100e6, 125e6, 75e6])
def test_ecp5_pll_settings(f_out):
    setting = pll.ecp5_pll(25e6, f_out)
    assert setting.f_out == pytest.approx(f_out, rel=0.01)
    assert 400e6 <= setting.f_out * setting.clkop_div <= 800e6


def test_unreachable_pll_frequencies():
    with pytest.raises(ConfigError, match="the iCE40 PLL cannot make 1000 MHz from 12 MHz "
                                          "within 1%; the nearest is 270.000 MHz"):
        pll.ice40_pll(12e6, 1000e6)
    with pytest.raises(ConfigError, match="the ECP5 PLL cannot make 1 MHz from 25 MHz"):
        pll.ecp5_pll(25e6, 1e6)


def _unelaborated(top):
    """Silence Amaranth's warning about tops that are only inspected, never elaborated."""
    logic = top.logic
    for part in (top, logic, logic._engine, logic._receiver, logic._transmitter):
        part._MustUse__silence = True
    return top


def test_a_board_clocked_at_its_oscillator_needs_no_pll(standin_build):
    from hwgen.fpga.board import BoardTop
    spec = CoreSpec.load(standin_build)
    top = _unelaborated(BoardTop(spec, get_target("icebreaker"), frequency_hz=12e6,
                                 baud=115200))
    assert top.pll is None and top.frequency_hz == 12e6 and top.divisor == 104
    top = _unelaborated(BoardTop(spec, get_target("ulx3s-85f"), frequency_hz=50e6,
                                 baud=115200))
    assert top.pll.f_out == 50e6 and top.divisor == 434
    with pytest.raises(ConfigError, match="ice40-up5k is not a board"):
        BoardTop(spec, get_target("ice40-up5k"), frequency_hz=12e6, baud=115200)


def test_core_spec_reads_a_build_directory(standin_build):
    spec = CoreSpec.load(standin_build)
    assert (spec.timesteps, spec.inputs, spec.outputs, spec.v_bits) == (8, 6, 6, 6)
    assert spec.module == "hwgen_core" and spec.result_width == 14
    assert spec.input_bytes == 1 and spec.result_bytes == 2
    assert spec.design_id == protocol.design_id(spec.verilog.read_bytes())


def _break(build, edit):
    path = build / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda m: m["model"].pop("timesteps"), "missing field model.timesteps"),
    (lambda m: m["model"].update(v_bits=0), "model.v_bits must be a positive integer, got 0"),
    (lambda m: m["model"].update(inputs=True), "model.inputs must be a positive integer, got True"),
    (lambda m: m["top"].update(module=""), "top.module must be a non-empty str, got ''"),
    (lambda m: m["top"]["ports"].update(results=12),
     "top.ports (inputs 8, results 12 bits) do not match the model's dimensions (inputs 8, "
     "results 14 bits)"),
])
def test_core_spec_errors(standin_build, edit, message):
    path = _break(standin_build, edit)
    with pytest.raises(FormatError) as error:
        CoreSpec.load(standin_build)
    assert str(error.value) == f"{path}: {message}"


def test_core_spec_missing_things(tmp_path, standin_build):
    with pytest.raises(FormatError, match="no such build directory"):
        CoreSpec.load(tmp_path / "nowhere")
    with pytest.raises(FormatError, match="not a build directory \\(no manifest.json"):
        CoreSpec.load(tmp_path)
    (standin_build / "rtl" / "hwgen_core.v").unlink()
    with pytest.raises(FormatError, match="rtl/hwgen_core.v is missing; recompile"):
        CoreSpec.load(standin_build)
    (standin_build / "manifest.json").write_text("{not json")
    with pytest.raises(FormatError, match="manifest.json: not valid JSON"):
        CoreSpec.load(standin_build)


def test_the_core_instance_takes_its_ports_from_the_core_interface(standin_build):
    """Directions come from the core's side whichever side the interface is on."""
    from amaranth.hdl import Signal
    from amaranth.lib import wiring
    from hwgen.gateware.core_interface import CoreSignature, instance_ports
    driver_side = CoreSignature(8, 6).flip().create()
    ports = instance_ports(driver_side, clk=Signal(), rst=Signal())
    assert {name for name in ports if name.startswith("i_")} == {
        "i_clk", "i_rst", "i_inputs__payload", "i_inputs__valid", "i_results__ready", "i_start"}
    assert {name for name in ports if name.startswith("o_")} == {
        "o_inputs__ready", "o_results__payload", "o_results__valid", "o_busy", "o_done", "o_steps",
        "o_cycles"}
    assert instance_ports(CoreSignature(8, 6).create(), clk=Signal(), rst=Signal()).keys() \
        == ports.keys()
    with pytest.raises(TypeError, match="does not have the core's signature"):
        instance_ports(wiring.Signature({"a": wiring.In(1)}).create(), clk=Signal(), rst=Signal())
