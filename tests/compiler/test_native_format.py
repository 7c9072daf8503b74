"""The native model format: exact round trips, determinism, and every refusal."""

import io
import json
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen.errors import FormatError
from hwgen.compiler.frontends import native
from hwgen.compiler.ir import LIF, Dense, Input, Leak, Model, Readout
from hwgen.sim.workloads import ALL_MODES, random_model


def example():
    model = Model("example", 4, metadata={"source": "test", "assumptions": ["none"]})
    model.add(Input("pixels", (3,), encoding="if", threshold=16))
    model.add(Dense("fc", np.array([[1, -2, 0], [3, 0, -1]]), np.array([1, -1]),
                    weight_bits=4, acc_bits=5), "pixels")
    model.add(LIF("lif", np.array([2, 3]), leak=Leak.by_multiply(7, 3), fire="gt",
                  reset="zero", order="delayed", v_bits=8), "fc")
    model.add(Readout("class"), "lif")
    return model


def rewrite(data, change):
    """Re-pack an archive after ``change(members: dict)`` edits its members."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    change(members)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return out.getvalue()


def edit_json(data, change):
    def apply(members):
        document = json.loads(members["model.json"])
        change(document)
        members["model.json"] = json.dumps(document).encode()
    return rewrite(data, apply)


def test_round_trip_is_exact():
    model = example()
    assert native.loads(native.dumps(model)) == model


def test_output_is_deterministic():
    assert native.dumps(example()) == native.dumps(example())
    assert native.dumps(native.loads(native.dumps(example()))) == native.dumps(example())


def test_save_and_load_a_file(tmp_path):
    path = tmp_path / "m.hwgen"
    native.save(example(), path)
    assert native.load(path) == example()
    assert not [p for p in tmp_path.iterdir() if p.name != "m.hwgen"]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), depth=st.integers(1, 3), timesteps=st.integers(1, 16),
       mode=st.sampled_from(ALL_MODES), bias=st.booleans())
def test_random_models_round_trip(seed, depth, timesteps, mode, bias):
    rng = np.random.default_rng(seed)
    sizes = [int(n) for n in rng.integers(1, 40, size=depth + 1)]
    model = random_model(seed, sizes, timesteps, modes=(mode,), bias=bias,
                         weight_density=float(rng.random()))
    assert native.loads(native.dumps(model)) == model


@pytest.mark.parametrize("mangle, message", [
    (lambda d: d[:len(d) // 2], "not a hwgen model archive"),
    (lambda d: b"hello", "not a hwgen model archive"),
    (lambda d: rewrite(d, lambda m: m.pop("model.json")), "archive has no model.json"),
    (lambda d: rewrite(d, lambda m: m.update({"model.json": b"{nope"})),
     "model.json is not valid JSON"),
    (lambda d: edit_json(d, lambda j: j.update(format="other")),
     "model.json does not declare format 'hwgen.model'"),
    (lambda d: edit_json(d, lambda j: j.update(version=2)),
     "written by a newer hwgen \\(format version 2\\); this hwgen reads versions up to 1"),
    (lambda d: edit_json(d, lambda j: j.update(version="1")),
     "format version '1' is not a positive integer"),
    (lambda d: edit_json(d, lambda j: j.pop("timesteps")),
     r"model.json: missing keys \['timesteps'\]"),
    (lambda d: edit_json(d, lambda j: j.update(extra=1)), r"model.json: unknown keys \['extra'\]"),
    (lambda d: edit_json(d, lambda j: j["ops"][1].update(type="conv9d")),
     "op 'fc': unknown op type 'conv9d'"),
    (lambda d: edit_json(d, lambda j: j["ops"][1]["tensors"].pop("weight")),
     "op 'fc': missing tensor\\(s\\) weight"),
    (lambda d: edit_json(d, lambda j: j["ops"][1]["tensors"].update(scale="x.npy")),
     "op 'fc': unexpected tensor\\(s\\) scale"),
    (lambda d: rewrite(d, lambda m: m.pop("tensors/fc/bias.npy")),
     "op 'fc': tensor 'bias' \\(tensors/fc/bias.npy\\) is missing from the archive"),
    (lambda d: rewrite(d, lambda m: m.update({"tensors/fc/extra.npy": m["tensors/fc/bias.npy"]})),
     "archive holds tensor\\(s\\) no op uses: tensors/fc/extra.npy"),
    (lambda d: rewrite(d, lambda m: m.update({"tensors/fc/bias.npy": b"\x93NUMPY garbage"})),
     "tensor tensors/fc/bias.npy is damaged"),
    (lambda d: edit_json(d, lambda j: j["ops"][2]["attributes"].update(fire="maybe")),
     "lif 'lif': fire 'maybe' is not one of ge, gt"),
    (lambda d: edit_json(d, lambda j: j["ops"][1]["attributes"].update(acc_bits=3)),
     "dense 'fc': sums can reach 5 in magnitude, which overflows acc_bits=3"),
    (lambda d: edit_json(d, lambda j: j["ops"][2].update(inputs=["ghost"])),
     "lif 'lif': input 'ghost' is not an op of this model"),
    (lambda d: edit_json(d, lambda j: j["ops"][1].pop("attributes")),
     "op #1: must have exactly the keys"),
])
def test_bad_files_are_refused_with_a_message_naming_the_problem(mangle, message):
    data = mangle(native.dumps(example()))
    with pytest.raises(FormatError, match=f"^bad.hwgen: {message}"):
        native.loads(data, source="bad.hwgen")


def test_float_tensors_are_refused():
    def change(members):
        buffer = io.BytesIO()
        np.save(buffer, np.array([0.5, 1.0]))
        members["tensors/fc/bias.npy"] = buffer.getvalue()
    data = rewrite(native.dumps(example()), change)
    with pytest.raises(FormatError, match="tensor tensors/fc/bias.npy has dtype float64; "
                                          "integers are required"):
        native.loads(data, source="bad.hwgen")


def test_missing_file_is_a_format_error(tmp_path):
    with pytest.raises(FormatError, match="nothing.hwgen: cannot read"):
        native.load(tmp_path / "nothing.hwgen")


def test_tensors_are_stored_narrow_and_read_back_as_int64():
    data = native.dumps(example())
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        stored = np.load(io.BytesIO(archive.read("tensors/fc/weight.npy")))
    assert stored.dtype == np.int8
    assert native.loads(data)["fc"].weight.dtype == np.int64


def per_neuron_example():
    model = example()
    model.ops[2].leak = Leak.per_neuron([3, 8], 3)     # before validation, as a loader would
    return native.loads(native.dumps(model))


def test_per_neuron_leaks_round_trip():
    model = per_neuron_example()
    assert model["lif"].leak == Leak.per_neuron([3, 8], 3)
    assert native.loads(native.dumps(model)) == model
    assert native.dumps(native.loads(native.dumps(model))) == native.dumps(model)
    assert model != example()


@pytest.mark.parametrize("change, message", [
    (lambda a: a.update(leak={"kind": "per_neuron", "multipliers": [3], "frac_bits": 3}),
     "lif 'lif': leak has 1 multipliers for 2 neurons \\(one per neuron\\)"),
    (lambda a: a.update(leak={"kind": "per_neuron", "multipliers": [3, 9], "frac_bits": 3}),
     "lif 'lif': leak multipliers\\[1\\] = 9 must be between 0 and 2\\*\\*frac_bits = 8"),
    (lambda a: a.update(leak={"kind": "per_neuron", "multipliers": [3, 4]}),
     "lif 'lif': leak of kind 'per_neuron' takes exactly \\['frac_bits', 'multipliers'\\]"),
    (lambda a: a.update(leak={"kind": "per_neuron", "multipliers": "34", "frac_bits": 3}),
     "lif 'lif': leak multipliers must be a list of integers"),
])
def test_bad_per_neuron_leaks_are_refused_naming_the_op(change, message):
    data = edit_json(native.dumps(per_neuron_example()),
                     lambda j: change(j["ops"][2]["attributes"]))
    with pytest.raises(FormatError, match=f"^bad.hwgen: {message}"):
        native.loads(data, source="bad.hwgen")
