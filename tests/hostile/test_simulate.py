"""``hwgen simulate``: tampered build directories and hostile inputs files. Every case is
refused before Verilator runs, with one line naming the file."""

import hashlib
import json
import os

import numpy as np
import pytest

from hostile_inputs import corrupt_deflate, forge_declared_size, good_inputs, npy_claiming


@pytest.fixture
def inputs(scratch):
    np.savez(scratch / "x.npz", inputs=good_inputs())
    return scratch / "x.npz"


def edit_manifest(build, edit):
    path = build / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def rehash(build, relative, data):
    """Replace a file *and* its recorded hash: a tamper the hashes alone cannot see."""
    (build / relative).write_bytes(data)

    def edit(manifest):
        for entry in manifest["files"].values():
            if entry["path"] == relative:
                entry["sha256"] = hashlib.sha256(data).hexdigest()
    edit_manifest(build, edit)


def set_path(role, value):
    def edit(manifest):
        manifest["files"][role]["path"] = value
    return edit


MANIFEST_CASES = {
    "path-escapes": (set_path("verilog", "../outside.v"), "files.verilog.path '../outside.v'"),
    "absolute-path": (set_path("model", "/etc/passwd"), "files.model.path '/etc/passwd'"),
    "nul-in-path": (set_path("model", "model.hwgen\0x"), "files.model.path"),
    "missing-verilog": (lambda m: m["files"].pop("verilog"), "missing field files.verilog"),
    "files-list": (lambda m: m.__setitem__("files", ["rtl/hwgen_core.v"]), "files must be a dict"),
    "entry-without-hash": (lambda m: m["files"]["model"].pop("sha256"),
                           "files.model must have a path and a sha256"),
    "format": (lambda m: m.__setitem__("format", "npm"), "not an hwgen build manifest"),
    "newer": (lambda m: m.__setitem__("version", 99), "written by a newer hwgen"),
    "older": (lambda m: m.__setitem__("version", 1), "written by an older hwgen"),
    "timesteps-text": (lambda m: m["model"].__setitem__("timesteps", "4"),
                       "model.timesteps must be a positive integer"),
    "time-chunk-mismatch": (lambda m: m["model"].__setitem__("time_chunk", 2),
                            "do not match the model's dimensions"),
    "time-chunk-not-divisor": (lambda m: m["model"].__setitem__("time_chunk", 3),
                               "model.time_chunk 3 does not divide model.timesteps 4"),
    "top-module-empty": (lambda m: m["top"].__setitem__("module", ""), "top.module must be"),
    "ports-missing": (lambda m: m["top"].pop("ports"), "missing field top.ports"),
    "trace-lanes-missing": (lambda m: m["top"]["ports"]["trace"].pop("write_lanes"),
                            "missing field top.ports.trace.write_lanes"),
    "trace-lanes-zero": (lambda m: m["top"]["ports"]["trace"].__setitem__("write_lanes", 0),
                         "top.ports.trace.write_lanes must be a positive integer, got 0"),
    # The name goes into a Verilator configuration file: nothing but a module name.
    "tppe-module-injected": (lambda m: m["top"].__setitem__("tppe_module", 'x"\nlint_off'),
                             "top.tppe_module must be a Verilog module name"),
}


@pytest.mark.parametrize("case", sorted(MANIFEST_CASES))
def test_tampered_manifests(hostile, build, inputs, case):
    edit, message = MANIFEST_CASES[case]
    edit_manifest(build, edit)
    hostile("simulate", "build", "--inputs", inputs,
            names=["build/manifest.json: ", message])


def test_a_manifest_whose_steps_disagree_with_the_program(hostile, build, inputs):
    # The ports (T_c bits) still agree; the program summary holds the real T.
    edit_manifest(build, lambda m: m["model"].__setitem__("timesteps", 8))
    hostile("simulate", "build", "--inputs", inputs,
            names=["build/program.json: ", "timesteps = 4 but manifest.json says 8"])


@pytest.mark.parametrize("content, message", [
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (b"[" * 100000 + b"]" * 100000, "not valid JSON"),
    (b"[1, 2, 3]", "not an hwgen build manifest"),
    (b" " * (2 << 20), "larger than"),
])
def test_manifests_that_are_not_manifests(hostile, build, inputs, content, message):
    (build / "manifest.json").write_bytes(content)
    hostile("simulate", "build", "--inputs", inputs,
            names=["build/manifest.json: ", message])


@pytest.mark.parametrize("relative", ["rtl/hwgen_core.v", "model.hwgen", "program.json"])
def test_a_file_edited_after_compile(hostile, build, inputs, relative):
    with open(build / relative, "ab") as f:
        f.write(b"\n")
    hostile("simulate", "build", "--inputs", inputs,
            names=f"build/{relative}: changed since hwgen compile wrote it")


def test_a_file_replaced_by_a_symlink_out_of_the_directory(hostile, build, scratch, inputs):
    (scratch / "elsewhere.v").write_bytes((build / "rtl/hwgen_core.v").read_bytes())
    os.unlink(build / "rtl/hwgen_core.v")
    os.symlink(scratch / "elsewhere.v", build / "rtl/hwgen_core.v")
    hostile("simulate", "build", "--inputs", inputs,
            names=["files.verilog.path 'rtl/hwgen_core.v' leaves the build directory"])


def test_a_deleted_file(hostile, build, inputs):
    os.unlink(build / "model.hwgen")
    hostile("simulate", "build", "--inputs", inputs, names="model.hwgen is missing")


PROGRAM_CASES = {
    "list": ([1, 2], "not an hwgen program summary"),
    "no-layers": ({"timesteps": 4}, "missing field"),
    "layers-not-list": (lambda p: p.__setitem__("layers", {}), "layers must be a list"),
    "timesteps-wrong": (lambda p: p.__setitem__("timesteps", 8), "timesteps = 8 but"),
    "neurons-twice": (lambda p: p["layers"][0]["tppe_neurons"].__setitem__(
        0, p["layers"][0]["tppe_neurons"][0] * 2), "must list each of its 4 neurons once"),
    "neurons-text": (lambda p: p["layers"][0].__setitem__("tppe_neurons", [["a"]]),
                     "layers[0] must be a list of integers"),
    "slots-out-of-range": (lambda p: p["layers"][1]["output_slots"].__setitem__(0, 99),
                           "layers[1].output_slots must hold neurons"),
    "dense-missing": (lambda p: p["layers"][0].pop("dense"), "missing field layers[0].dense"),
    "entries-negative": (lambda p: p["entries_per_tppe"].__setitem__(0, -5),
                         "entries_per_tppe must not be negative"),
    "v-bits": (lambda p: p["config"].__setitem__("v_bits", 3), "config.v_bits does not match"),
}


@pytest.mark.parametrize("case", sorted(PROGRAM_CASES))
def test_program_json_of_the_wrong_shape(hostile, build, inputs, case):
    edit, message = PROGRAM_CASES[case]
    program = json.loads((build / "program.json").read_text())
    if callable(edit):
        edit(program)
    else:
        program = edit
    rehash(build, "program.json", json.dumps(program).encode())
    hostile("simulate", "build", "--inputs", inputs,
            names=["build/program.json: ", message])


def test_a_directory_that_is_not_a_build(hostile, scratch, inputs):
    (scratch / "notes").mkdir()
    hostile("simulate", "notes", "--inputs", inputs, names="notes: not a build directory")


def test_a_missing_build_directory(hostile, inputs):
    hostile("simulate", "nowhere", "--inputs", inputs, names="nowhere: no such build directory")


# --- inputs files -----------------------------------------------------------------------

INPUT_CASES = {
    "scalar": (dict(inputs=np.int64(5)), "'inputs' must be (samples, inputs...)"),
    "one-d": (dict(inputs=np.ones(6, np.uint8)), "'inputs' must be (samples, inputs...)"),
    "floats": (dict(inputs=np.ones((2, 4, 6)) / 2), "dtype float64; integers are required"),
    "objects": (None, "dtype object"),
    "wrong-shape": (dict(inputs=np.ones((2, 4, 5), np.uint8)),
                    "spike trains have shape (2, 4, 5)"),
    "wrong-T": (dict(inputs=np.ones((2, 9, 6), np.uint8)), "spike trains have shape (2, 9, 6)"),
    "not-spikes": (dict(inputs=np.full((2, 4, 6), 2, np.uint8)), "must hold only 0 and 1"),
    "integers-for-spike-model": (dict(inputs=np.ones((2, 6), np.int32)), "takes spike trains"),
    "no-samples": (dict(inputs=np.ones((0, 4, 6), np.uint8)), "'inputs' holds no samples"),
    "labels-range": (dict(inputs=good_inputs(), labels=np.array([0, 7])),
                     "'labels' must be classes 0..2"),
    "labels-negative": (dict(inputs=good_inputs(), labels=np.array([-1, 0])),
                        "'labels' must be classes"),
    "labels-shape": (dict(inputs=good_inputs(), labels=np.array([0, 1, 2])),
                     "'labels' must be integers of shape (2,)"),
    "labels-float": (dict(inputs=good_inputs(), labels=np.array([0.5, 1.0])),
                     "dtype float64; integers are required"),
    "no-inputs": (dict(x=good_inputs()), "no array named 'inputs' (found: x)"),
    "extra": (dict(inputs=good_inputs(), evil=np.zeros(3)), "unexpected array(s) evil"),
}


@pytest.mark.parametrize("case", sorted(INPUT_CASES))
def test_bad_inputs_files(hostile, build, scratch, case):
    arrays, message = INPUT_CASES[case]
    if arrays is None:
        np.savez(scratch / "bad.npz", inputs=np.array([[{"a": 1}]], dtype=object))
    else:
        np.savez(scratch / "bad.npz", **arrays)
    hostile("simulate", "build", "--inputs", "bad.npz", names=["bad.npz: ", message])


def test_inputs_that_are_a_single_npy_array(hostile, build, scratch):
    np.save(scratch / "x.npy", good_inputs())
    hostile("simulate", "build", "--inputs", "x.npy", names="x.npy: not a NumPy .npz archive")


def test_inputs_that_are_text(hostile, build, scratch):
    (scratch / "x.npz").write_text("1,0,1\n")
    hostile("simulate", "build", "--inputs", "x.npz", names="x.npz: not a NumPy .npz archive")


def test_inputs_whose_header_claims_a_terabyte(hostile, build, scratch):
    import zipfile
    with zipfile.ZipFile(scratch / "x.npz", "w") as archive:
        archive.writestr("inputs.npy", npy_claiming((10 ** 6, 10 ** 3, 10 ** 3), "|u1"))
    hostile("simulate", "build", "--inputs", "x.npz",
            names=["x.npz: inputs.npy is damaged", "header claims shape"])


def test_inputs_that_would_inflate_past_the_limit(hostile, build, scratch):
    np.savez_compressed(scratch / "x.npz", inputs=good_inputs())
    forge_declared_size(scratch / "x.npz", "inputs.npy", 2 << 30)
    hostile("simulate", "build", "--inputs", "x.npz", names=["x.npz: inflates to", "more than"])


def test_inputs_with_a_corrupt_compressed_member(hostile, build, scratch):
    np.savez_compressed(scratch / "x.npz", inputs=good_inputs(20))
    corrupt_deflate(scratch / "x.npz", "inputs.npy")
    hostile("simulate", "build", "--inputs", "x.npz", names="x.npz: inputs.npy is damaged")


def test_inputs_that_are_a_directory(hostile, build, scratch):
    (scratch / "x.npz").mkdir()
    hostile("simulate", "build", "--inputs", "x.npz", names="x.npz", code=2)


def test_samples_zero(hostile, build, inputs):
    hostile("simulate", "build", "--inputs", inputs, "--samples", "0",
            names="--samples must be at least 1")


def test_a_read_only_build_directory_is_refused_before_simulating(hostile, build, inputs,
                                                                   monkeypatch):
    # As on a read-only mount (root ignores chmod, so the OS's answer is simulated).
    import errno
    import tempfile

    def read_only(*args, dir=None, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), dir)
    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    hostile("simulate", "build", "--inputs", inputs,
            names=["build/sim: cannot write (Read-only file system"])
