"""The build directory: what compile writes, and a reader that trusts nothing in it."""

import json
import shutil

import pytest

from hwgen import build_directory, bundled
from hwgen.build_directory import BuildDirectory
from hwgen.compiler import hardware_config
from hwgen.compiler.scheduler.program import compile_program
from hwgen.errors import FormatError


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    model = bundled.digits_model()
    folder = tmp_path_factory.mktemp("build") / "b"
    build_directory.write(compile_program(model, hardware_config.load()), model, folder)
    return folder


@pytest.fixture
def build(pristine, tmp_path):
    return shutil.copytree(pristine, tmp_path / "b")


def edit_manifest(build, edit):
    path = build / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))
    return path


def test_the_manifest_holds_the_contract_fields(build):
    opened = BuildDirectory(build)
    manifest = opened.manifest
    assert manifest["model"]["timesteps"] == 8 and manifest["model"]["inputs"] == 64
    assert manifest["model"]["outputs"] == 10 and manifest["model"]["v_bits"] == 10
    assert manifest["top"]["module"] == "hwgen_core"
    assert manifest["top"]["ports"]["inputs"] == 8 and manifest["top"]["ports"]["results"] == 18
    assert manifest["resources"]["memory_bits"] == sum(
        m["bits"] for m in manifest["resources"]["memories"])
    roles = set(manifest["files"])
    assert {"verilog", "model", "config", "program", "report", "memory:layers"} <= roles
    # Every file in the directory but the manifest is recorded, and nothing else is.
    on_disk = {str(p.relative_to(build)) for p in build.rglob("*") if p.is_file()}
    assert on_disk - {"manifest.json"} == {f["path"] for f in manifest["files"].values()}
    assert opened.model() == bundled.digits_model()
    assert opened.program()["layers"][0]["name"] == manifest["model"]["layers"][0]


def test_the_same_model_and_config_give_the_same_bytes(pristine, tmp_path):
    model = bundled.digits_model()
    again = build_directory.write(compile_program(model, hardware_config.load()), model,
                                  tmp_path / "again").path
    for path in pristine.rglob("*"):
        if path.is_file():
            assert path.read_bytes() == (again / path.relative_to(pristine)).read_bytes(), path


@pytest.mark.parametrize("relative", ["rtl/hwgen_core.v", "model.hwgen", "program.json",
                                      "memories/tppe0_weights.hex"])
def test_a_file_edited_after_compile_is_refused(build, relative):
    path = build / relative
    path.write_bytes(path.read_bytes() + b"\n")
    with pytest.raises(FormatError) as error:
        BuildDirectory(build)
    assert str(error.value).startswith(f"{path}: changed since hwgen compile wrote it")


def test_a_swapped_model_is_refused(build, tmp_path):
    from hwgen.compiler.frontends import native
    from hwgen.sim.workloads import random_model
    native.save(random_model(1, [64, 10], 8), build / "model.hwgen")
    with pytest.raises(FormatError, match="model.hwgen: changed since hwgen compile"):
        BuildDirectory(build)


@pytest.mark.parametrize("path, message", [
    ("../outside.v", "must be a relative path inside the build directory"),
    ("/etc/passwd", "must be a relative path inside the build directory"),
    ("rtl/../../outside.v", "must be a relative path inside the build directory"),
    ("", "must be a relative path inside the build directory"),
])
def test_paths_in_the_manifest_stay_inside(build, path, message):
    manifest = edit_manifest(build, lambda m: m["files"]["verilog"].update(path=path))
    with pytest.raises(FormatError) as error:
        BuildDirectory(build)
    assert str(error.value) == f"{manifest}: files.verilog.path {path!r} {message}"


def test_a_link_out_of_the_directory_is_refused(build, tmp_path):
    outside = tmp_path / "outside.v"
    outside.write_text("module evil; endmodule\n")
    (build / "rtl" / "hwgen_core.v").unlink()
    (build / "rtl" / "hwgen_core.v").symlink_to(outside)
    with pytest.raises(FormatError, match="files.verilog.path 'rtl/hwgen_core.v' leaves the "
                                          "build directory"):
        BuildDirectory(build)


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.pop("files"), "missing field files"),
    (lambda m: m["files"].pop("model"), "missing field files.model"),
    (lambda m: m["files"].update(model="model.hwgen"), "files.model must have a path and a sha256"),
    (lambda m: m["model"].update(timesteps="8"), "model.timesteps must be a positive integer, got '8'"),
    (lambda m: m["top"].update(ports=[]), "top.ports must be an object"),
    (lambda m: m.update(version=1), "written by an older hwgen (version 1); recompile the model"),
    (lambda m: m.update(version=99), "written by a newer hwgen (version 99); upgrade hwgen"),
    (lambda m: m.update(format="other"), "not an hwgen build manifest"),
])
def test_a_manifest_of_the_wrong_shape_is_refused(build, edit, message):
    manifest = edit_manifest(build, edit)
    with pytest.raises(FormatError) as error:
        BuildDirectory(build)
    assert str(error.value) == f"{manifest}: {message}"


@pytest.mark.parametrize("content", ["[]", "{not json", "\xff\xfe", "[" * 100000])
def test_a_manifest_that_is_not_one_is_refused(build, content):
    (build / "manifest.json").write_bytes(content.encode("latin-1"))
    with pytest.raises(FormatError, match="manifest.json: (not an hwgen build manifest|not "
                                          "valid JSON)"):
        BuildDirectory(build)


def test_a_program_that_is_not_a_summary_is_refused(build):
    program = build / "program.json"
    program.write_text("[1, 2]")
    edit_manifest(build, lambda m: m["files"]["program"].update(
        sha256=build_directory._sha256(program.read_bytes())))
    with pytest.raises(FormatError, match="program.json: not an hwgen program (summary|file)"):
        BuildDirectory(build).program()
