"""hwgen's native model format (docs/formats.md): one ZIP archive per model.

The archive holds ``model.json`` (the graph, attributes and metadata) and one ``.npy`` file
per integer tensor under ``tensors/<op>/<tensor>.npy``. Writing is deterministic (fixed
member order and timestamps) so the same model gives the same bytes, and atomic.
"""

import io
import os
import json
import zipfile
import zlib

import numpy as np

from hwgen.atomic import atomic_file
from hwgen.errors import FormatError, ModelError
from ..ir import OP_TYPES, Model

FORMAT_NAME = "hwgen.model"
FORMAT_VERSION = 1
SUFFIX = ".hwgen"
_EPOCH = (1980, 1, 1, 0, 0, 0)
_TOP_KEYS = {"format", "version", "name", "timesteps", "metadata", "ops"}
_OP_KEYS = {"name", "type", "inputs", "attributes", "tensors"}
# What an archive may inflate to, checked against the members' declared sizes before any is
# read (zipfile never inflates a member past its declared size). The bundled model is
# about 0.1 MB; the largest model the biggest supported device holds is some tens of MB.
MAX_MODEL_BYTES = 256 << 20
MAX_MEMBERS = 10_000
# Errors zipfile and zlib raise for a damaged member (a bad CRC, a corrupt deflate stream).
_DAMAGED = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error,
            NotImplementedError)


def _tensor_member(op_name, tensor_name):
    return f"tensors/{op_name}/{tensor_name}.npy"


def dumps(model):
    """Serialise ``model`` (validated first) to the bytes of a native-format archive."""
    model.validate()
    ops, tensors = [], {}
    for op in model.ops:
        entry = {"name": op.name, "type": op.type_name, "inputs": model.inputs_of(op.name),
                 "attributes": op.attributes(), "tensors": {}}
        for tensor_name, array in op.tensors().items():
            member = _tensor_member(op.name, tensor_name)
            entry["tensors"][tensor_name] = member
            tensors[member] = array
        ops.append(entry)
    document = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "name": model.name,
                "timesteps": model.timesteps, "metadata": model.metadata, "ops": ops}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        def put(member, data):
            info = zipfile.ZipInfo(member, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
        put("model.json", json.dumps(document, indent=1, sort_keys=True).encode() + b"\n")
        for member, array in tensors.items():
            npy = io.BytesIO()
            np.save(npy, _narrowest(array), allow_pickle=False)
            put(member, npy.getvalue())
    return buffer.getvalue()


def _narrowest(array):
    """The array in the smallest signed dtype holding its values (the IR widens to int64)."""
    for dtype in (np.int8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if not array.size or (array.min() >= info.min and array.max() <= info.max):
            return np.ascontiguousarray(array, dtype=dtype)
    return np.ascontiguousarray(array, dtype=np.int64)


def save(model, path):
    """Write ``model`` to ``path`` atomically."""
    data = dumps(model)
    with atomic_file(path) as f:
        f.write(data)


def loads(data, source="<bytes>"):
    """Parse native-format bytes; ``source`` names the file in error messages."""
    def fail(message):
        return FormatError(f"{source}: {message}")

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise fail(f"not a hwgen model archive ({error})") from None
    members = {info.filename for info in infos}
    if len(infos) > MAX_MEMBERS or len(members) != len(infos):
        raise fail(f"archive has {len(infos)} members ({len(members)} distinct names); a "
                   f"model has at most {MAX_MEMBERS}, each once")
    inflated = sum(info.file_size for info in infos)
    if inflated > MAX_MODEL_BYTES:
        raise fail(f"archive inflates to {inflated} bytes, more than the {MAX_MODEL_BYTES} a "
                   f"model may hold")
    if "model.json" not in members:
        raise fail("archive has no model.json; not a hwgen model")
    try:
        document = json.loads(archive.read("model.json"))
    except _DAMAGED as error:
        raise fail(f"model.json is damaged ({error})") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise fail(f"model.json is not valid JSON ({error})") from None
    except RecursionError:
        raise fail("model.json is nested too deeply to be a model") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise fail(f"model.json does not declare format {FORMAT_NAME!r}")
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise fail(f"format version {version!r} is not a positive integer")
    if version > FORMAT_VERSION:
        raise fail(f"written by a newer hwgen (format version {version}); this hwgen reads "
                   f"versions up to {FORMAT_VERSION}, upgrade it")
    unknown = set(document) - _TOP_KEYS
    missing = _TOP_KEYS - set(document)
    if missing or unknown:
        raise fail(f"model.json: missing keys {sorted(missing)}" if missing
                   else f"model.json: unknown keys {sorted(unknown)}")
    if not isinstance(document["ops"], list) or not isinstance(document["metadata"], dict):
        raise fail("model.json: 'ops' must be a list and 'metadata' an object")

    used = {"model.json"}
    try:
        model = Model(document["name"], document["timesteps"], document["metadata"])
        for index, entry in enumerate(document["ops"]):
            if not isinstance(entry, dict) or set(entry) != _OP_KEYS:
                raise fail(f"op #{index}: must have exactly the keys {sorted(_OP_KEYS)}")
            name, type_name = entry["name"], entry["type"]
            if not isinstance(name, str) or not isinstance(type_name, str):
                raise fail(f"op #{index}: 'name' and 'type' must be strings")
            if type_name not in OP_TYPES:
                raise fail(f"op {name!r}: unknown op type {type_name!r}")
            cls = OP_TYPES[type_name]
            tensor_refs = entry["tensors"]
            if not isinstance(tensor_refs, dict) or not isinstance(entry["attributes"], dict) \
                    or not isinstance(entry["inputs"], list) \
                    or not all(isinstance(i, str) for i in entry["inputs"]) \
                    or not all(isinstance(m, str) for m in tensor_refs.values()):
                raise fail(f"op {name!r}: 'attributes' and 'tensors' must be objects, 'inputs' "
                           f"a list of op names, and tensors name archive members")
            missing = set(cls.required_tensors) - set(tensor_refs)
            extra = set(tensor_refs) - set(cls.required_tensors) - set(cls.optional_tensors)
            if missing:
                raise fail(f"op {name!r}: missing tensor(s) {', '.join(sorted(missing))}")
            if extra:
                raise fail(f"op {name!r}: unexpected tensor(s) {', '.join(sorted(extra))}")
            tensors = {}
            for tensor_name, member in sorted(tensor_refs.items()):
                if member not in members:
                    raise fail(f"op {name!r}: tensor {tensor_name!r} ({member}) is missing "
                               f"from the archive")
                tensors[tensor_name] = read_npy(archive, member, fail)
                used.add(member)
            model.add(cls.from_parts(name, entry["attributes"], tensors), entry["inputs"])
        extra_members = sorted(members - used)
        if extra_members:
            raise fail(f"archive holds tensor(s) no op uses: {', '.join(extra_members)}")
        model.validate()
    except ModelError as error:
        raise fail(str(error)) from None
    return model


def read_npy(archive, member, fail, kinds="iu", label=None):
    """An array of dtype kind in ``kinds`` (integers by default) from the .npy ``member`` of
    a ZIP ``archive``, its header checked against the member's size before the data are
    allocated (a header may claim any shape). ``fail(message)`` makes the error, which
    calls the member ``label`` (default: "tensor MEMBER")."""
    label = label or f"tensor {member}"
    try:
        with archive.open(member) as f:
            major, minor = np.lib.format.read_magic(f)
            if (major, minor) != (1, 0):
                raise ValueError(f"npy format version {major}.{minor}; hwgen writes 1.0")
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            if dtype.kind not in kinds or dtype.hasobject:
                raise fail(f"{label} has dtype {dtype}; integers are required")
            count = int(np.prod(shape, dtype=object))
            available = archive.getinfo(member).file_size - f.tell()
            if count * dtype.itemsize != available:
                raise ValueError(f"header claims shape {shape} ({count * dtype.itemsize} "
                                 f"bytes) but the member holds {available} bytes of data")
            array = np.frombuffer(f.read(available), dtype=dtype)
    except _DAMAGED + (ValueError,) as error:
        raise fail(f"{label} is damaged ({error})") from None
    return array.reshape(shape, order="F" if fortran else "C").copy()


def load(path):
    """Read a native-format model from ``path``."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_MODEL_BYTES:
                raise FormatError(f"{path}: {size} bytes, more than the {MAX_MODEL_BYTES} a "
                                  f"model may hold")
            data = f.read()
    except OSError as error:
        raise FormatError(f"{path}: cannot read ({error.strerror})") from None
    return loads(data, source=str(path))
