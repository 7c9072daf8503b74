"""The import layers of pyproject.toml ([tool.importlinter]) hold, and a back-edge breaks them.

lint-imports reads the package from the import path, and the checkout's folders are not
laid out as the package (README, "Layout": compiler/ is hwgen.compiler, ...). So the test
lays the checkout out as setuptools installs it, with symbolic links in a temporary folder
following pyproject's package-dir mapping, and runs lint-imports there: it checks this
checkout's sources whatever is installed, and however (an editable install has no such tree).
"""

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def installed_layout(folder):
    """``folder``/hwgen: the checkout's package as an install lays it out (links)."""
    repository = PYPROJECT.parent
    mapping = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-dir"]
    root = folder / "hwgen"
    root.mkdir()
    for entry in (repository / mapping["hwgen"]).iterdir():
        (root / entry.name).symlink_to(entry)
    for package, source in mapping.items():
        if package != "hwgen":
            (folder / package.replace(".", "/")).symlink_to(repository / source)
    return folder


def lint_imports(config, folder):
    executable = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert executable, "lint-imports is missing: install hwgen with its test extra"
    return subprocess.run([executable, "--no-cache", str(config)],
                          cwd=installed_layout(folder), capture_output=True, text=True,
                          timeout=300)


def test_the_layers_hold(tmp_path):
    result = lint_imports(PYPROJECT, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_back_edge_breaks_the_build(tmp_path):
    # The same checker with the layers upside down must report the real imports as broken,
    # or the contract above could pass by checking nothing.
    (tmp_path / "package").mkdir()
    config = tmp_path / "upside_down.toml"
    config.write_text('[tool.importlinter]\nroot_package = "hwgen"\n\n'
                      '[[tool.importlinter.contracts]]\nname = "upside down"\n'
                      'type = "layers"\nlayers = ["hwgen.errors", "hwgen.compiler", "hwgen.cli"]\n')
    result = lint_imports(config, tmp_path / "package")
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
