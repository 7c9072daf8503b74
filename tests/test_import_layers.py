"""The import layers of pyproject.toml ([tool.importlinter]) hold, and a back-edge breaks them.

lint-imports runs from a folder outside the checkout: from the repository root, the
checkout's hwgen/ folder would shadow the installed package, whose subpackages come from
the other top-level folders (README, "Layout").
"""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def lint_imports(config, cwd):
    executable = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert executable, "lint-imports is missing: install hwgen with its test extra"
    return subprocess.run([executable, "--no-cache", str(config)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_the_layers_hold(tmp_path):
    result = lint_imports(PYPROJECT, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_back_edge_breaks_the_build(tmp_path):
    # The same checker with the layers upside down must report the real imports as broken,
    # or the contract above could pass by checking nothing.
    config = tmp_path / "upside_down.toml"
    config.write_text('[tool.importlinter]\nroot_package = "hwgen"\n\n'
                      '[[tool.importlinter.contracts]]\nname = "upside down"\n'
                      'type = "layers"\nlayers = ["hwgen.errors", "hwgen.compiler", "hwgen.cli"]\n')
    result = lint_imports(config, tmp_path)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout and "hwgen.compiler" in result.stdout


@pytest.mark.slow
def test_the_wheel_installs_one_top_level_package(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                             "--wheel-dir", str(tmp_path), str(PYPROJECT.parent)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    [wheel] = tmp_path.glob("hwgen-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        tops = {name.split("/")[0] for name in archive.namelist()}
        names = set(archive.namelist())
    assert {top for top in tops if not top.endswith(".dist-info")} == {"hwgen"}
    for package in ("compiler/ir", "sim", "fpga", "gateware", "cli", "templates"):
        assert f"hwgen/{package}/__init__.py" in names, package
    assert "hwgen/templates/fpga_report.md.j2" in names
    assert "hwgen/bundled/digits_mlp.hwgen" in names
