"""`hwgen flash`: the exact command (--dry-run), missing bitstream, missing programmer,
no board attached, success, and option errors. Programmers are stand-in scripts here."""

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from hwgen.errors import ConfigError, FormatError, ToolchainError
from hwgen.fpga import flash
from hwgen.cli.main import cli


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def no_programmers(monkeypatch, tmp_path):
    """A PATH with no programmer on it, and no overrides."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("ICEPROG", raising=False)
    monkeypatch.delenv("OPENFPGALOADER", raising=False)


@pytest.fixture
def build(tmp_path):
    """A build directory with bitstreams (their content does not matter to flashing)."""
    directory = tmp_path / "build"
    for board, name in (("icebreaker", "bitstream.bin"), ("ulx3s-85f", "bitstream.bit")):
        (directory / "fpga" / board).mkdir(parents=True)
        (directory / "fpga" / board / name).write_bytes(b"\xff\x00\x00\xff")
    return directory


def programmer(tmp_path, name, script):
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_dry_run_prints_the_command_even_without_the_programmer(build, no_programmers):
    result = invoke("flash", build, "--board", "icebreaker", "--dry-run")
    assert result.exit_code == 0
    bitstream = (build / "fpga" / "icebreaker" / "bitstream.bin").resolve()
    assert result.stdout.strip() == f"iceprog {bitstream}"
    assert "iceprog is not installed here (install: sudo apt-get install fpga-icestorm)" \
        in result.stderr
    result = invoke("flash", build, "--board", "ulx3s-85f", "--dry-run")
    bitstream = (build / "fpga" / "ulx3s-85f" / "bitstream.bit").resolve()
    assert result.stdout.strip() == f"openFPGALoader -b ulx3s -f {bitstream}"
    result = invoke("flash", build, "--board", "ulx3s-85f", "--dry-run", "--volatile")
    assert result.stdout.strip() == f"openFPGALoader -b ulx3s {bitstream}"


def test_dry_run_uses_the_installed_programmer(build, no_programmers, monkeypatch, tmp_path):
    loader = programmer(tmp_path, "openFPGALoader", "exit 0\n")
    monkeypatch.setenv("OPENFPGALOADER", str(loader))
    result = invoke("flash", build, "--board", "icebreaker", "--dry-run")
    bitstream = (build / "fpga" / "icebreaker" / "bitstream.bin").resolve()
    # iceprog is preferred, but only openFPGALoader is installed
    assert result.stdout.strip() == f"{loader} -b ice40_generic {bitstream}"
    result = invoke("flash", build, "--board", "icebreaker", "--programmer", "iceprog",
                    "--volatile", "--dry-run")
    assert result.stdout.strip() == f"iceprog -S {bitstream}"


def test_missing_programmer(build, no_programmers):
    result = invoke("flash", build, "--board", "ulx3s-85f")
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: openFPGALoader not found (install: sudo apt-get install openfpgaloader; or set "
        "$OPENFPGALOADER); `--dry-run` prints the command")


def test_no_board_attached(build, no_programmers, monkeypatch, tmp_path):
    iceprog = programmer(tmp_path, "iceprog", "echo 'init..'\n"
                                              "echo \"Can't find iCE FTDI USB device "
                                              "(vendor_id 0x0403, device_id 0x6010).\" >&2\n"
                                              "exit 2\n")
    monkeypatch.setenv("ICEPROG", str(iceprog))
    result = invoke("flash", build, "--board", "icebreaker")
    assert result.exit_code == 1
    assert result.stderr[result.stderr.index("Error:"):].startswith("Error: iceprog found no board: is it plugged in, and may "
                                    "this user access its USB device? Its output:\ninit..\n"
                                    "Can't find iCE FTDI USB device")


def test_programmer_failure_and_success(build, no_programmers, monkeypatch, tmp_path):
    log = tmp_path / "args"
    loader = programmer(tmp_path, "openFPGALoader", f'echo "$@" > {log}\n'
                                                    'echo "writing flash 100%"\n')
    monkeypatch.setenv("OPENFPGALOADER", str(loader))
    result = invoke("flash", build, "--board", "ulx3s-85f")
    assert result.exit_code == 0, result.output
    bitstream = (build / "fpga" / "ulx3s-85f" / "bitstream.bit").resolve()
    assert log.read_text().strip() == f"-b ulx3s -f {bitstream}"
    assert "programmed ulx3s-85f" in result.stdout
    programmer(tmp_path, "openFPGALoader", "echo 'bad bitstream' >&2\nexit 1\n")
    with pytest.raises(ToolchainError, match="openFPGALoader failed \\(exit status 1\\):\n"
                                             "bad bitstream"):
        flash.flash(flash.plan(build, "ulx3s-85f"))


def test_missing_bitstream(tmp_path, no_programmers):
    with pytest.raises(FormatError) as error:
        flash.plan(tmp_path, "icebreaker")
    bitstream = tmp_path / "fpga" / "icebreaker" / "bitstream.bin"
    assert str(error.value) == (f"{bitstream}: no bitstream; run `hwgen synth {tmp_path} "
                                f"--target icebreaker`")
    (tmp_path / "fpga" / "icebreaker").mkdir(parents=True)
    (tmp_path / "fpga" / "icebreaker" / "report.json").write_text("{}")
    result = invoke("flash", tmp_path, "--board", "icebreaker")
    assert result.exit_code == 1
    assert "no bitstream; the last `hwgen synth` for icebreaker did not pass (see " \
        in result.output


def test_option_errors(build, no_programmers):
    with pytest.raises(ConfigError, match="openFPGALoader can only write icebreaker's flash"):
        flash.plan(build, "icebreaker", programmer="openFPGALoader", volatile=True)
    with pytest.raises(ConfigError, match="ulx3s-85f is programmed with openFPGALoader, not "
                                          "'iceprog'"):
        flash.plan(build, "ulx3s-85f", programmer="iceprog")
    result = invoke("flash", build, "--board", "ice40-up5k", "--dry-run")
    assert result.exit_code == 2 and "'ice40-up5k' is not one of" in result.output
    assert Path(build).is_dir()
