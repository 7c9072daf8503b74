"""Damaged and adversarial files for the hostile-input corpus (tests/hostile).

Each builder writes one file the way a careless or malicious user might produce it; the
tests check that every command refuses it with one line naming the file.
"""

import io
import json
import struct
import zipfile

import numpy as np

from hwgen.compiler.frontends import native
from hwgen.sim.workloads import random_model

SIZES = [6, 4, 3]
TIMESTEPS = 4


def tiny_model():
    """6 inputs -> 4 LIF -> 3 LIF, T = 4: compiles and simulates in seconds."""
    return random_model(1, SIZES, TIMESTEPS, name="tiny")


def members_of(model):
    """The native archive of ``model`` as (model.json document, {member: bytes})."""
    archive = zipfile.ZipFile(io.BytesIO(native.dumps(model)))
    members = {name: archive.read(name) for name in archive.namelist()}
    return json.loads(members.pop("model.json")), members


def write_zip(path, members, compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data if isinstance(data, bytes) else json.dumps(data))
    return path


def write_model(path, edit=None, edit_members=None):
    """The tiny model's archive at ``path``, its document changed by ``edit(document)`` and
    its tensors by ``edit_members(members)`` first."""
    document, members = members_of(tiny_model())
    if edit is not None:
        document = edit(document) or document
    if edit_members is not None:
        edit_members(members)
    return write_zip(path, {"model.json": json.dumps(document).encode(), **members})


def npy(array, **kwargs):
    buffer = io.BytesIO()
    np.save(buffer, array, **kwargs)
    return buffer.getvalue()


def npy_claiming(shape, dtype="<i8"):
    """A .npy file whose header claims ``shape`` but that holds 8 bytes of data."""
    header = repr({"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
    header = header.encode() + b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(8)


def forge_declared_size(path, member, size):
    """Rewrite the central directory so that ``member`` claims to inflate to ``size`` bytes
    (a zip bomb's signature) without writing them."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    at = 0
    while True:
        at = data.index(b"PK\x01\x02", at)
        length = struct.unpack_from("<H", data, at + 28)[0]
        if bytes(data[at + 46:at + 46 + length]) == name:
            struct.pack_into("<I", data, at + 24, size)
            break
        at += 4
    path.write_bytes(bytes(data))
    return path


def corrupt_deflate(path, member):
    """Damage ``member``'s compressed stream in place, keeping the archive's structure."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for offset in range(start, start + max(1, info.compress_size)):
        data[offset] ^= 0x5A
    path.write_bytes(bytes(data))
    return path


def inputs_file(path, **arrays):
    np.savez(path, **arrays)
    return path


def good_inputs(samples=2, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((samples, TIMESTEPS, SIZES[0])) < 0.4).astype(np.uint8)
