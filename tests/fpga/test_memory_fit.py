"""Block RAM estimates before synthesis (fpga/memory_fit.py) and `hwgen compile --target`."""

import re

import pytest
from click.testing import CliRunner

from hwgen import bundled
from hwgen.cli.main import cli
from hwgen.compiler import hardware_config
from hwgen.compiler.scheduler.program import compile_program
from hwgen.errors import FitError
from hwgen.fpga.memory_fit import blocks_for, check_memory_fit, memory_fit
from hwgen.fpga.targets import DEVICES, get_target


@pytest.mark.parametrize("family, depth, width, blocks", [
    ("ice40", 256, 16, 1), ("ice40", 257, 16, 2), ("ice40", 2048, 2, 1), ("ice40", 10, 18, 2),
    ("ice40", 4096, 4, 4), ("ecp5", 512, 36, 1), ("ecp5", 1480, 35, 3), ("ecp5", 16384, 1, 1),
    ("ecp5", 2920, 4, 1), ("ecp5", 2, 72, 2)])
def test_a_memory_takes_the_blocks_of_its_best_aspect(family, depth, width, blocks):
    assert blocks_for(family, depth, width) == blocks


def test_bits_and_blocks_are_summed_and_the_largest_listed_first():
    fit = memory_fit({"a": (256, 16), "b": (1024, 16), "c": (10, 2)}, DEVICES["ice40-up5k"])
    assert (fit.bits, fit.blocks, fit.capacity_blocks) == (256 * 16 + 1024 * 16 + 20, 6, 30)
    assert [m[0] for m in fit.largest] == ["b", "a", "c"]
    assert not fit.certain_misfit and not fit.likely_misfit
    assert fit.describe().startswith("20,500 bits of memory in 6 block RAMs, the device has "
                                     "30 of 4 kbit (122,880 bits); largest: b 1024 x 16 (4)")


def test_the_bundled_cnn_fits_the_ulx3s_and_the_icebreaker_on_one_tppe():
    program = compile_program(bundled.digits_cnn_model(), hardware_config.load(None, []))
    assert not check_memory_fit(program, get_target("ulx3s-85f")).likely_misfit
    # two TPPEs: 33 blocks estimated against 30, which Yosys may still map (a warning)
    fit = check_memory_fit(program, get_target("icebreaker"))
    assert fit.likely_misfit and not fit.certain_misfit
    one = compile_program(bundled.digits_cnn_model(), hardware_config.load(None, ["tppes=1"]))
    assert not check_memory_fit(one, get_target("icebreaker")).likely_misfit
    transformer = compile_program(bundled.digits_transformer_model(),
                                  hardware_config.load(None, []))
    with pytest.raises(FitError, match=re.escape(
            "model 'digits_transformer' does not fit iCE40UP5K (icebreaker): ")) as error:
        check_memory_fit(transformer, get_target("icebreaker"))
    assert "use --set mapping=tiles (a layer's program once for all TPPEs), fewer TPPEs" \
        in str(error.value)
    assert not check_memory_fit(transformer, get_target("ulx3s-85f")).certain_misfit
    mlp = compile_program(bundled.digits_model(), hardware_config.load(None, ["tppes=2"]))
    assert not check_memory_fit(mlp, get_target("icebreaker")).certain_misfit


def test_compile_with_a_target_refuses_before_writing(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["compile", "@digits_transformer", "-o", str(tmp_path / "out"),
                                 "--target", "icebreaker", "--set", "tppes=1"])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "does not fit iCE40UP5K (icebreaker)" in errors[0]
    assert "use a larger device" in errors[0] and "fewer TPPEs" not in errors[0]
    assert not (tmp_path / "out").exists()
    result = runner.invoke(cli, ["compile", "@digits_cnn", "-o", str(tmp_path / "ok"),
                                 "--target", "ulx3s-85f"])
    assert result.exit_code == 0, result.output
    assert "fits ulx3s-85f's block RAM: 14 of 208 blocks" in result.output
    result = runner.invoke(cli, ["compile", "@digits", "-o", str(tmp_path / "x"),
                                 "--target", "nowhere"])
    assert result.exit_code == 2 and "'nowhere' is not one of" in result.output
