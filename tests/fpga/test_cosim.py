"""The board top's logic (UART + protocol engine + the core's Verilog) under Verilator,
driven through its RX pin by a bit-level UART model behind a pseudo-terminal, with the host
driver and `hwgen run` on the other side: the same code path as a board on a USB port."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from hwgen.errors import LinkError
from hwgen.compiler.frontends import native
from hwgen.fpga import driver
from hwgen.fpga.core import CoreSpec
from hwgen.fpga.simboard import SimulatedBoard
from hwgen.cli.main import cli

from build_edits import replace_model
from fpga_standin import standin_model

pytestmark = [pytest.mark.verilator, pytest.mark.slow]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def simulated(shared_standin_build, tmp_path_factory):
    spec = CoreSpec.load(shared_standin_build)
    with SimulatedBoard(spec, work_dir=tmp_path_factory.mktemp("simboard")) as board:
        yield spec, board


def test_driver_is_bit_exact_on_the_simulated_board(simulated):
    spec, board = simulated
    transport = driver.SerialTransport(board.port, 115200)
    try:
        link = driver.Board(transport)
        status = link.connect(spec)
        assert (status.timesteps, status.inputs, status.outputs) == (8, 6, 6)
        model = native.load(spec.model_path)
        inputs = np.random.default_rng(7).integers(0, 5, size=(6, 6))
        inputs[0] = 0                                     # a silent sample
        inputs[1] = 4                                     # every input spikes every step
        report = driver.run(link, spec, model, inputs)
        assert report.bit_exact, [m.describe() for m in report.mismatches]
        assert report.cycles == [7] * 6                  # latency 5 + start + done
        # the protocol's state rules hold on the real link too
        with pytest.raises(LinkError, match="the board refused RESULTS: command not allowed"):
            link.request(driver.Command.RESULTS)
    finally:
        transport.close()


def test_a_different_model_is_caught_by_the_comparison(simulated, tmp_path):
    """The check can fail: a model the core does not compute gives mismatches."""
    spec, board = simulated
    wrong = standin_model()
    wrong["lif"].threshold[:] = 2
    transport = driver.SerialTransport(board.port, 115200)
    try:
        link = driver.Board(transport)
        link.connect(spec)
        report = driver.run(link, spec, wrong, np.full((2, 6), 3))
    finally:
        transport.close()
    assert report.mismatched_samples == [0, 1]


def test_hwgen_run_on_the_simulated_board(shared_standin_build, tmp_path):
    np.savez(tmp_path / "x.npz", inputs=np.random.default_rng(3).integers(0, 5, size=(4, 6)),
             labels=np.array([0, 1, 2, 3]))
    result = invoke("run", shared_standin_build, "--simulate", "--inputs", tmp_path / "x.npz",
                    "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["bit_exact"] and report["samples"] == 4
    assert report["cycles"] == {"mean": 7.0, "min": 7, "max": 7}
    assert 0.0 <= report["accuracy"] <= 1.0


def test_hwgen_run_reports_mismatches_with_exit_1(standin_build, tmp_path):
    wrong = standin_model()
    wrong["lif"].threshold[:] = 2
    replace_model(standin_build, wrong)
    np.savez(tmp_path / "x.npz", inputs=np.full((3, 6), 2))
    result = invoke("run", standin_build, "--simulate", "--inputs", tmp_path / "x.npz")
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        "Error: 3 of 3 samples differ from the reference; first: sample 0, layer 'lif', "
        "neuron 0, step 1: expected spike 0, the hardware gave 1")


def test_hwgen_run_option_errors(standin_build, tmp_path):
    np.savez(tmp_path / "x.npz", inputs=np.zeros((1, 6), dtype=np.int64))
    result = invoke("run", standin_build, "--inputs", tmp_path / "x.npz")
    assert result.exit_code == 2 and "give exactly one of --port PORT and --simulate" \
        in result.output
    result = invoke("run", standin_build, "--port", tmp_path / "ttyUSB7", "--inputs",
                    tmp_path / "x.npz")
    assert result.exit_code == 1
    assert result.output.strip() == (f"Error: {tmp_path / 'ttyUSB7'}: cannot open the serial "
                                     f"port ([Errno 2] could not open port "
                                     f"{tmp_path / 'ttyUSB7'}: [Errno 2] No such file or "
                                     f"directory: '{tmp_path / 'ttyUSB7'}')")
    np.savez(tmp_path / "bad.npz", inputs=np.zeros((1, 5), dtype=np.int64))
    result = invoke("run", standin_build, "--port", "/dev/null", "--inputs", tmp_path / "bad.npz")
    assert result.exit_code == 1 and "inputs have shape (1, 5)" in result.output


def test_a_core_without_a_trace_port_is_refused_for_cosimulation(shared_standin_build):
    # the stand-in core is for the board alone: its manifest has no top.ports.trace
    from hwgen.build_directory import BuildDirectory
    from hwgen.errors import FormatError
    with pytest.raises(FormatError, match="the core has no trace port"):
        BuildDirectory(shared_standin_build).trace_layout
