"""The real accelerator for the bundled digits model through the FPGA flow: the board top's
UART co-simulation, bit-exact against the reference, and synthesis for both boards."""

import json

import numpy as np
import pytest

from click.testing import CliRunner

from hwgen.fpga import driver, flow
from hwgen.fpga.core import CoreSpec
from hwgen.fpga.simboard import SimulatedBoard
from hwgen import bundled
from hwgen.cli.main import cli
from hwgen.compiler.ir import reference

pytestmark = pytest.mark.slow


def compile_digits(path, *settings):
    """`hwgen compile @digits -o path [--set ...]`, as a user runs it."""
    options = [item for setting in settings for item in ("--set", setting)]
    result = CliRunner().invoke(cli, ["compile", "@digits", "-o", str(path), *options],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture(scope="module")
def digits_build(tmp_path_factory):
    """@digits compiled with the default hardware configuration."""
    return compile_digits(tmp_path_factory.mktemp("digits") / "build")


@pytest.mark.verilator
def test_uart_cosimulation_of_the_bundled_model_is_bit_exact(digits_build, tmp_path):
    spec = CoreSpec.load(digits_build)
    model = bundled.digits_model()
    inputs, labels = bundled.digits_test_set()
    inputs, labels = inputs[:6], labels[:6]
    with SimulatedBoard(spec, work_dir=tmp_path) as board:
        transport = driver.SerialTransport(board.port, 115200)
        try:
            link = driver.Board(transport)
            status = link.connect(spec)
            report = driver.run(link, spec, model, inputs, labels)
        finally:
            transport.close()
    assert (status.timesteps, status.inputs, status.outputs, status.v_bits) == (8, 64, 10, 10)
    assert report.bit_exact, [m.describe() for m in report.mismatches]
    assert report.predictions == reference.run(model, inputs).predictions.tolist()
    assert all(100 < cycles < 5000 for cycles in report.cycles)


@pytest.mark.fpga
def test_the_default_configuration_fits_the_ulx3s(digits_build):
    # One place-and-route at the oscillator's 25 MHz (no PLL): the search of --frequency
    # auto (two runs of this large design) is covered on the stand-in in test_flow.py.
    report = flow.synthesize(digits_build, "ulx3s-85f", frequency_mhz=25)
    assert report["status"] == "pass" and report["bitstream"] == "bitstream.bit"
    rows = {row["resource"]: row for row in report["resources"]}
    assert rows["BRAM (EBR)"]["used"] > 0 and rows["LUTs"]["percent"] < 50
    assert report["timing"]["fmax_mhz"] >= report["clock"]["mhz"] == 25


@pytest.mark.fpga
def test_the_default_configuration_fits_the_icebreaker(digits_build):
    # At 12 MHz the board runs from its oscillator, without the PLL.
    report = flow.synthesize(digits_build, "icebreaker", frequency_mhz=12)
    assert report["status"] == "pass" and report["bitstream"] == "bitstream.bin"
    rows = {row["resource"]: row for row in report["resources"]}
    assert rows["LCs"]["used"] <= rows["LCs"]["available"]
    assert json.loads((digits_build / "fpga" / "icebreaker" / "report.json").read_text()) \
        == report
    assert np.isfinite(report["timing"]["fmax_mhz"])
