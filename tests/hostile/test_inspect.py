"""``hwgen inspect`` (and so every command reading a model): damaged and adversarial
native model archives. Each is refused with one line naming the file and the member."""

import json
import zipfile

import numpy as np
import pytest

from hostile_inputs import (corrupt_deflate, forge_declared_size, npy, npy_claiming,
                            write_model, write_zip)


def op(document, type_name):
    return next(entry for entry in document["ops"] if entry["type"] == type_name)


def set_attribute(type_name, key, value):
    def edit(document):
        op(document, type_name)["attributes"][key] = value
    return edit


def set_op(key, value, type_name="dense"):
    def edit(document):
        op(document, type_name)[key] = value
    return edit


def set_top(key, value):
    def edit(document):
        document[key] = value
    return edit


def replace_tensor(suffix, data):
    def edit(members):
        name = next(m for m in sorted(members) if m.endswith(suffix))
        members[name] = data
    return edit


MODEL_CASES = {
    "format": (set_top("format", "other.model"), "does not declare format 'hwgen.model'"),
    "newer": (set_top("version", 99), "written by a newer hwgen (format version 99)"),
    "version-text": (set_top("version", "1"), "format version '1' is not a positive integer"),
    "missing-key": (lambda d: d.pop("timesteps") and None, "missing keys ['timesteps']"),
    "unknown-key": (set_top("colour", 1), "unknown keys ['colour']"),
    "ops-not-list": (set_top("ops", {"a": 1}), "'ops' must be a list"),
    "metadata-list": (set_top("metadata", [1]), "'metadata' an object"),
    "timesteps-zero": (set_top("timesteps", 0), "timesteps must be an integer between 1"),
    "timesteps-text": (set_top("timesteps", "4"), "timesteps must be an integer"),
    "timesteps-huge": (set_top("timesteps", 10 ** 30), "timesteps must be an integer"),
    "name-empty": (set_top("name", ""), "model name must be a non-empty string"),
    "name-list": (set_top("name", ["x"]), "model name must be a non-empty string"),
    "op-not-object": (lambda d: d["ops"].append(7), "op #"),
    "type-list": (set_op("type", ["dense"]), "'name' and 'type' must be strings"),
    "name-number": (set_op("name", 3), "'name' and 'type' must be strings"),
    "unknown-type": (set_op("type", "izhikevich"), "unknown op type 'izhikevich'"),
    "inputs-text": (set_op("inputs", "in"), "'inputs' a list of op names"),
    "inputs-numbers": (set_op("inputs", [1]), "'inputs' a list of op names"),
    "unknown-input": (set_op("inputs", ["nowhere"]), "nowhere"),
    "attributes-list": (set_op("attributes", ["weight_bits"]), "'attributes' and 'tensors'"),
    "no-attributes": (set_op("attributes", {}), "weight_bits must be an integer, got None"),
    "weight-bits-list": (set_attribute("dense", "weight_bits", [4]),
                         "weight_bits must be an integer"),
    "weight-bits-huge": (set_attribute("dense", "weight_bits", 64),
                         "weight_bits = 64 must be between 2 and 16"),
    "acc-bits-huge": (set_attribute("dense", "acc_bits", 400),
                      "acc_bits = 400 must be between 2 and 48"),
    "v-bits-float": (set_attribute("lif", "v_bits", 10.5), "v_bits must be an integer"),
    "fire-list": (set_attribute("lif", "fire", ["ge"]), "fire"),
    "reset-unknown": (set_attribute("lif", "reset", "explode"), "reset 'explode'"),
    "leak-text": (set_attribute("lif", "leak", "fast"), "leak"),
    "tensors-list": (set_op("tensors", ["weight"]), "'attributes' and 'tensors'"),
    "tensor-missing": (set_op("tensors", {}), "missing tensor(s) weight"),
    "tensor-path-number": (set_op("tensors", {"weight": 5}), "'attributes' and 'tensors'"),
    "tensor-unknown-member": (set_op("tensors", {"weight": "tensors/x.npy"}),
                              "tensors/x.npy) is missing from the archive"),
    "tensor-extra": (set_op("tensors", {"weight": "w", "gain": "g"}),
                     "unexpected tensor(s) gain"),
    "forward-reference": (lambda d: d["ops"][1]["inputs"].__setitem__(0, d["ops"][2]["name"]),
                          "is not an op of this model"),
}


@pytest.mark.parametrize("case", sorted(MODEL_CASES))
def test_malformed_model_documents(hostile, scratch, case):
    edit, message = MODEL_CASES[case]
    write_model(scratch / "m.hwgen", edit)
    hostile("inspect", "m.hwgen", names=["m.hwgen: ", message])


TENSOR_CASES = {
    "float-weights": (npy(np.ones((4, 6), np.float32) / 3), "dtype float32; integers are required"),
    "object-pickle": (None, "dtype object"),
    "claims-10^12": (npy_claiming((10 ** 6, 10 ** 6)), "header claims shape (1000000, 1000000)"),
    "claims-2^70": (npy_claiming((2 ** 35, 2 ** 35)), "header claims shape"),
    "truncated": (npy(np.ones((4, 6), np.int8))[:-5], "damaged"),
    "not-npy": (b"hello world, not an array", "damaged"),
    "weight-int64-min": (npy(np.full((4, 6), np.iinfo(np.int64).min)), "beyond +-2**47"),
    "weight-uint64-max": (npy(np.full((4, 6), np.iinfo(np.uint64).max)), "beyond +-2**47"),
    "weight-too-wide": (npy(np.full((4, 6), 1000, np.int16)), "does not fit in"),
    "weight-wrong-shape": (npy(np.ones((4, 5), np.int8)), "weight expects 5 inputs"),
    "zero-neurons": (npy(np.ones((0, 6), np.int8)), "dense"),
    "weight-scalar": (npy(np.int8(1)), "weight must be a 2-D"),
}


@pytest.mark.parametrize("case", sorted(TENSOR_CASES))
def test_damaged_tensors(hostile, scratch, case):
    data, message = TENSOR_CASES[case]
    if data is None:
        data = npy(np.array([{"x": 1}], dtype=object), allow_pickle=True)
    write_model(scratch / "m.hwgen", edit_members=replace_tensor("weight.npy", data))
    hostile("inspect", "m.hwgen", names=["m.hwgen: ", message])


def test_bias_of_int64_min(hostile, scratch):
    write_model(scratch / "m.hwgen",
                edit_members=replace_tensor("bias.npy", npy(np.full(4, np.iinfo(np.int64).min))))
    hostile("inspect", "m.hwgen", names=["m.hwgen: ", "bias value -9223372036854775808",
                                         "beyond +-2**47"])


def test_threshold_beyond_the_membrane(hostile, scratch):
    write_model(scratch / "m.hwgen",
                edit_members=replace_tensor("threshold.npy", npy(np.full(4, 2 ** 40))))
    hostile("inspect", "m.hwgen", names=["m.hwgen: ", "threshold"])


def test_deeply_nested_json(hostile, scratch):
    write_zip(scratch / "m.hwgen", {"model.json": b"[" * 200000 + b"]" * 200000})
    hostile("inspect", "m.hwgen", names=["m.hwgen: ", "model.json"])


def test_model_json_that_is_not_json(hostile, scratch):
    write_zip(scratch / "m.hwgen", {"model.json": b"\xff\xfe{not json"})
    hostile("inspect", "m.hwgen", names="m.hwgen: model.json is not valid JSON")


def test_a_corrupt_compressed_member(hostile, scratch):
    write_model(scratch / "m.hwgen")
    corrupt_deflate(scratch / "m.hwgen", "model.json")
    hostile("inspect", "m.hwgen", names="m.hwgen: model.json is damaged")


def test_a_corrupt_compressed_tensor(hostile, scratch):
    write_model(scratch / "m.hwgen")
    with zipfile.ZipFile(scratch / "m.hwgen") as archive:
        member = next(n for n in archive.namelist() if n.endswith("weight.npy"))
    corrupt_deflate(scratch / "m.hwgen", member)
    hostile("inspect", "m.hwgen", names=["m.hwgen: ", f"{member} is damaged"])


def test_a_zip_bomb_is_refused_before_inflating(hostile, scratch):
    write_model(scratch / "m.hwgen")
    forge_declared_size(scratch / "m.hwgen", "model.json", 3 << 30)
    hostile("inspect", "m.hwgen", names=["m.hwgen: archive inflates to", "more than"])


@pytest.mark.parametrize("content, message", [
    (b"", "not a hwgen model archive"),
    (b"just some text\n", "not a hwgen model archive"),
    (b"PK\x03\x04" + bytes(100), "not a hwgen model archive"),
])
def test_files_that_are_not_archives(hostile, scratch, content, message):
    (scratch / "m.hwgen").write_bytes(content)
    hostile("inspect", "m.hwgen", names=f"m.hwgen: {message}")


def test_a_truncated_archive(hostile, scratch):
    write_model(scratch / "m.hwgen")
    data = (scratch / "m.hwgen").read_bytes()
    (scratch / "m.hwgen").write_bytes(data[:len(data) // 2])
    hostile("inspect", "m.hwgen", names="m.hwgen: not a hwgen model archive")


def test_an_archive_without_model_json(hostile, scratch):
    write_zip(scratch / "m.hwgen", {"readme.txt": b"hi"})
    hostile("inspect", "m.hwgen", names="m.hwgen: archive has no model.json")


def test_an_archive_with_extra_members(hostile, scratch):
    write_model(scratch / "m.hwgen", edit_members=lambda m: m.update({"evil.sh": b"rm -rf"}))
    hostile("inspect", "m.hwgen", names="m.hwgen: archive holds tensor(s) no op uses: evil.sh")


def test_a_model_that_is_a_directory(hostile, scratch):
    (scratch / "m.hwgen").mkdir()
    hostile("inspect", "m.hwgen", names="m.hwgen: cannot read")


def test_a_missing_model(hostile):
    hostile("inspect", "gone.hwgen", names=["gone.hwgen: cannot read", "No such file"])


def test_an_unknown_bundled_model(hostile):
    hostile("inspect", "@cats", names="@cats", code=2)
