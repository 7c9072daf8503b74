"""The hostile-input corpus's harness (issue 10).

``hostile(*args, names=...)`` runs one hwgen command in a scratch working directory and
asserts what every refusal must be: a non-zero exit, no traceback, exactly one ``Error:``
line, last, naming the file, node or parameter at fault, and not a single file created,
changed or deleted anywhere under the scratch directory.
"""

import shutil

import pytest
from click.testing import CliRunner

from hwgen import build_directory
from hwgen.cli.main import cli
from hwgen.compiler import hardware_config
from hwgen.compiler.frontends import native
from hwgen.compiler.scheduler.program import compile_program
from hostile_inputs import tiny_model


def snapshot(root):
    """Every path under ``root`` with its kind, size, mode and modification time."""
    state = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        state[str(path.relative_to(root))] = (info.st_mode, info.st_size, info.st_mtime_ns)
    return state


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def hostile(scratch):
    def check(*args, names, code=1):
        before = snapshot(scratch)
        result = CliRunner().invoke(cli, [str(a) for a in args])
        after = snapshot(scratch)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"hwgen {' '.join(map(str, args))} raised "
                                 f"{type(result.exception).__name__}") from result.exception
        output = result.output
        assert result.exit_code == code, output
        assert "Traceback" not in output, output
        lines = output.strip().splitlines()
        errors = [line for line in lines if line.startswith("Error:")]
        assert len(errors) == 1 and lines[-1] == errors[0], output
        for name in [names] if isinstance(names, str) else names:
            assert str(name) in errors[0], output
        assert before == after, "files changed: " + ", ".join(sorted(
            name for name in set(before) | set(after) if before.get(name) != after.get(name)))
        return errors[0]
    return check


@pytest.fixture(scope="session")
def pristine_build(tmp_path_factory):
    """The tiny model compiled once; tests tamper with copies."""
    model = tiny_model()
    folder = tmp_path_factory.mktemp("pristine") / "build"
    build_directory.write(compile_program(model, hardware_config.load()), model, folder)
    return folder


@pytest.fixture
def build(pristine_build, scratch):
    return shutil.copytree(pristine_build, scratch / "build")


@pytest.fixture
def model_file(scratch):
    path = scratch / "m.hwgen"
    native.save(tiny_model(), path)
    return path
