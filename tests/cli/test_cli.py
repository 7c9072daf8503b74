"""The command line: help, doctor, inspect, reference, and one-line errors for bad input."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hwgen.compiler.frontends import native
from hwgen import bundled, toolchain
from hwgen.cli.main import cli


def invoke(*args, **kwargs):
    return CliRunner().invoke(cli, list(map(str, args)), catch_exceptions=False, **kwargs)


def test_help_lists_the_commands():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("doctor", "inspect", "reference", "quickstart", "sweep"):
        assert command in result.output


def test_installed_entry_point_runs():
    hwgen = shutil.which("hwgen") or str(Path(sys.executable).parent / "hwgen")
    result = subprocess.run([hwgen, "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "quickstart" in result.stdout


def test_doctor_reports_the_toolchain():
    result = invoke("doctor", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    tools = {row["tool"]: row for row in report["tools"]}
    assert report["ok"] is True
    assert tools["verilator"]["status"] == "ok" and tools["verilator"]["version"]
    assert tools["yosys"]["status"] == "ok"


def test_doctor_names_what_is_missing_and_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))      # no make, perl or compiler here
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setenv("YOSYS", "no-such-yosys")
    result = invoke("doctor")
    assert result.exit_code == 1
    assert "Error: make (drives the Verilated model's build): not found; install: " \
           "sudo apt-get install make" in result.output
    assert "Error: yosys (synthesis (hwgen synth)): $YOSYS=no-such-yosys is not an " \
           "executable" in result.output


def test_doctor_says_whether_the_missing_programmers_matter(monkeypatch):
    real = toolchain.find_programmer

    def only_pyftdi(name):
        if name == "pyftdi":
            return real(name)
        return toolchain.Tool(name, "programs boards (hwgen flash)", required=False,
                              hint=f"install {name}")

    monkeypatch.setattr(toolchain, "find_programmer", only_pyftdi)
    result = invoke("doctor")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "Optional tools missing or unusable (not needed: hwgen flash uses pyftdi here): " \
           "openFPGALoader (install: install openFPGALoader), iceprog" in text
    monkeypatch.setattr(toolchain, "libusb_backend", lambda: None)
    text = " ".join(invoke("doctor").output.split())
    assert "Optional tools missing or unusable (needed only to flash a board): " \
           "openFPGALoader" in text
    assert "pyftdi (libusb-1.0 cannot be loaded; install: pip install pyftdi" in text


def test_inspect_describes_the_bundled_model():
    result = invoke("inspect", "@digits")
    assert result.exit_code == 0
    assert "fc1" in result.output and "(7 * v) >> 3" in result.output
    described = json.loads(invoke("inspect", "@digits", "--json").output)
    assert [op["type"] for op in described["ops"]] == [
        "input", "dense", "lif", "dense", "lif", "readout"]


def test_reference_prints_the_accuracy_of_the_bundled_model():
    result = invoke("reference", "@digits")
    assert result.exit_code == 0
    assert "accuracy: 98.00% (441 / 450)" in result.output
    report = json.loads(invoke("reference", "@digits", "--json", "--samples", "20").output)
    assert report["samples"] == 20 and 0.9 <= report["accuracy"] <= 1.0


def test_reference_on_a_model_file_with_inputs(tmp_path):
    inputs, labels = bundled.digits_test_set()
    import numpy as np
    np.savez(tmp_path / "x.npz", inputs=inputs[:10], labels=labels[:10])
    native.save(bundled.digits_model(), tmp_path / "m.hwgen")
    result = invoke("reference", tmp_path / "m.hwgen", "--inputs", tmp_path / "x.npz",
                    "--outputs", tmp_path / "out.npz", "--json")
    assert result.exit_code == 0
    assert json.loads(result.output)["samples"] == 10
    with np.load(tmp_path / "out.npz") as out:
        assert out["spikes/lif2"].shape == (10, 8, 10)


@pytest.mark.parametrize("content, message", [
    (b"", "not a hwgen model archive"),
    (b"PK\x03\x04 truncated", "not a hwgen model archive"),
])
def test_malformed_model_files_give_one_line_and_exit_1(tmp_path, content, message):
    path = tmp_path / "bad.hwgen"
    path.write_bytes(content)
    result = invoke("inspect", path)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {path}: {message}")


def test_truncated_model_file(tmp_path):
    data = native.dumps(bundled.digits_model())
    path = tmp_path / "cut.hwgen"
    path.write_bytes(data[: len(data) - 100])
    result = invoke("reference", path, "--inputs", path)
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1
    assert "Error:" in result.output and "Traceback" not in result.output


def test_unknown_model_suffix_and_missing_inputs(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"x")
    result = invoke("inspect", path)
    assert result.exit_code == 1
    assert "unknown model file type '.onnx'" in result.output
    native.save(bundled.digits_model(), tmp_path / "m.hwgen")
    result = invoke("reference", tmp_path / "m.hwgen")
    assert result.exit_code == 2 and "--inputs is required" in result.output


def test_bad_inputs_file(tmp_path):
    import numpy as np
    np.savez(tmp_path / "x.npz", pixels=np.zeros((2, 64), dtype=np.uint8))
    result = invoke("reference", "@digits", "--inputs", tmp_path / "x.npz")
    assert result.exit_code == 1
    assert "no array named 'inputs' (found: pixels)" in result.output
