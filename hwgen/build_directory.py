"""The build directory ``hwgen compile`` writes and every later command reads.

This module is the one writer and the one reader of that contract (docs/architecture.md,
"Build directory", describes every file). Writing is atomic (the directory appears complete
or not at all) and deterministic (the same model and configuration give byte-identical
files: no timestamps, no absolute paths). Reading trusts nothing: the manifest is checked
against :data:`MANIFEST_SCHEMA`, every path it names must stay inside the directory, and
every file it names must still have the SHA-256 recorded at compile time, so an edited
Verilog file, a swapped model or a tampered manifest is refused by name before any command
uses it.
"""

import hashlib
import json
import re
from importlib.metadata import version
from pathlib import Path, PurePosixPath

import numpy as np
import scipy.sparse

from hwgen.atomic import atomic_directory, check_replaceable
from hwgen.compiler.frontends import native
from hwgen.compiler.passes.legalise import legalise_for
from hwgen.compiler.passes.reachability import silent_layers
from hwgen.compiler.scheduler.program import compile_program
from hwgen.errors import FormatError

from .gateware.core_interface import CYCLES_BITS, trace_layout
from .gateware.geometry import Geometry
from .gateware.top import TOP_MODULE, TPPE_MODULE, to_verilog

# 4: the trace port has a lane per write lane (write_lanes)
MANIFEST_VERSION = 4
MANIFEST = "manifest.json"
# Manifests are small; a larger one is not ours.
MAX_MANIFEST_BYTES = 1 << 20


def model_warnings(model):
    """What the user should know before trusting the build: quantization that changed more
    than a few percent of the calibration spikes (recorded by the NIR import), and layers
    that can never spike."""
    calibration = (model.metadata.get("quantization") or {}).get("calibration") or {}
    return list(calibration.get("warnings", [])) + silent_layers(model)


def compile_model(model, config, path, calibration_spikes=None, *, force=False, check=None):
    """Schedule ``model`` on ``config`` and write its build directory at ``path``: what
    ``hwgen compile`` does. Returns (program, :class:`BuildDirectory`, warnings); the
    warnings (:func:`model_warnings`) are also in report.json's notes.

    ``calibration_spikes`` ({op: (samples, T, neurons)} from a reference run) lets the
    scheduler balance expected matched pairs and the report state expected sparsity.
    ``check(program)``, if given, runs before anything is written (it refuses by raising)."""
    program = compile_program(model, config, calibration_spikes)
    if check is not None:
        check(program)
    warnings = model_warnings(model)
    notes = {"warnings": warnings} if warnings else {}
    return program, write(program, model, path, notes=notes, force=force,
                          sparsity=layer_sparsity(program, model, calibration_spikes)), warnings


def layer_sparsity(program, model, calibration_spikes=None):
    """Per layer: its synapse as messages name it (``conv2d 'c1' (unrolled)``), the
    fraction of zero weights (of the synapse op's own weights, e.g. a
    convolution's kernel; of the unrolled matrix when the op feeding the neurons has none)
    and, measured on the calibration inputs if given (else None), the expected fraction of
    input and output neuron-steps without a spike."""
    result = []
    chain = legalise_for(model, program.config)
    if calibration_spikes is not None:      # with the layers no model op names
        calibration_spikes = chain.spikes_of(calibration_spikes)
    for plan, layer in zip(program.layers, chain.layers):
        op = model[plan.dense] if plan.dense in model else None
        weights = getattr(op, "weight", layer.dense.weight)
        if scipy.sparse.issparse(weights):                  # an unrolled layer's matrix
            zeros = 1 - np.count_nonzero(weights.data) / (weights.shape[0] * weights.shape[1])
        else:
            zeros = float((weights == 0).mean())
        entry = {"synapse": layer.where,
                 "weight_sparsity": round(zeros, 4),
                 "input_spike_sparsity": None, "output_spike_sparsity": None}
        if calibration_spikes is not None:
            entry["input_spike_sparsity"] = round(
                1 - float(layer.input_spikes(calibration_spikes).mean()), 4)
            entry["output_spike_sparsity"] = round(
                1 - float(calibration_spikes[layer.name].mean()), 4)
        result.append(entry)
    return result


def hex_image(width, words):
    """A memory image file: one word per line, hex, zero-padded to the width."""
    digits = max(1, -(-width // 4))
    return "".join(f"{w:0{digits}x}\n" for w in words).encode()


def _json(data):
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def write(program, model, path, *, notes=None, sparsity=None, force=False):
    """Write the build directory for ``program`` (compiled from ``model``) at ``path``.

    report.json carries ``notes`` (JSON-able: the compile-time warnings), the model's
    metadata, where frontends record their assumptions and the quantization report, and per
    layer the schedule and ``sparsity`` (one dict per layer, merged in). An existing ``path``
    is replaced only if it is a build directory or empty, or ``force`` is true
    (:func:`hwgen.atomic.atomic_directory`).
    """
    # The staging directory comes first: an output that cannot be written is refused
    # before the Verilog is generated, and an interrupted run leaves nothing behind.
    with atomic_directory(path, owned=is_build_directory, force=force) as staging:
        verilog = to_verilog(program)
        geometry = Geometry.of(program)
        images = program.memory_images()
        memories = program.memory_bits()
        files = {
            "verilog": (f"rtl/{TOP_MODULE}.v", verilog.encode()),
            "model": ("model.hwgen", native.dumps(model)),
            "config": ("config.json", _json(program.config.to_json()).encode()),
            "program": ("program.json", _json(program.summary()).encode()),
        }
        report = {"model": program.model_name, "notes": notes or {},
                  "metadata": model.metadata,
                  "layers": [{"name": layer.name, "inputs": layer.inputs,
                              "outputs": layer.outputs,
                              "neurons_per_tppe": [len(n) for n in layer.tppe_neurons],
                              "estimated_cycles_per_tppe": layer.estimated_cycles,
                              **(sparsity[index] if sparsity else {})}
                             for index, layer in enumerate(program.layers)]}
        files["report"] = ("report.json", _json(report).encode())
        for name, (width, words) in images.items():
            files[f"memory:{name}"] = (f"memories/{name}.hex", hex_image(width, words))
        manifest = {
            "model": {"name": program.model_name, "timesteps": program.timesteps,
                      "time_chunk": program.lanes, "inputs": program.input_size, "outputs": program.output_size,
                      "v_bits": program.config.v_bits,
                      "layers": [layer.name for layer in program.layers]},
            "top": {"module": TOP_MODULE, "tppe_module": TPPE_MODULE,
                    "ports": {"inputs": program.lanes,
                              "results": program.lanes + program.config.v_bits,
                              "cycles": CYCLES_BITS,
                              "trace": {"pass_bits": geometry.pass_bits,
                                        "slot_bits": geometry.slot_bits,
                                        "write_lanes": geometry.write_lanes}}},
            "config": program.config.to_json(),
            "resources": {
                "memory_bits": sum(depth * width for depth, width in memories.values()),
                "memories": [{"name": name, "depth": depth, "width": width,
                              "bits": depth * width}
                             for name, (depth, width) in memories.items()]},
        }
        _write_into(staging, manifest, files)
    return BuildDirectory(path)


def is_build_directory(path):
    """Whether ``path`` holds an hwgen manifest (of any version), i.e. may be replaced by a
    new build; a user's directory that merely has a manifest.json of its own does not."""
    manifest = Path(path) / MANIFEST
    try:
        if not manifest.is_file() or manifest.stat().st_size > MAX_MANIFEST_BYTES:
            return False
        document = json.loads(manifest.read_bytes())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return False
    return isinstance(document, dict) and document.get("format") == "hwgen.build"


def check_output(path, *, force=False):
    """Refuse, before compiling, an output ``path`` that :func:`write` would refuse."""
    check_replaceable(path, owned=is_build_directory, force=force)


def write_files(path, manifest, files, *, force=False):
    """Write ``files`` ({role: (relative path, bytes)}) and a manifest recording each one's
    path and SHA-256 beside ``manifest``'s other fields, atomically at ``path``."""
    with atomic_directory(path, owned=is_build_directory, force=force) as staging:
        _write_into(staging, manifest, files)
    return BuildDirectory(path)


def _write_into(staging, manifest, files):
    document = {"format": "hwgen.build", "version": MANIFEST_VERSION,
                "hwgen_version": version("hwgen"), **manifest,
                "files": {role: {"path": relative, "sha256": _sha256(data)}
                          for role, (relative, data) in files.items()}}
    for relative, data in files.values():
        target = staging / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    (staging / MANIFEST).write_text(_json(document))


# What a manifest must hold: a dict maps keys to the schema of their values; a tuple of
# types is the value's type; ``_POSITIVE`` an integer >= 1. Keys not listed are allowed
# (config and resources are for people and are not trusted by any command).
_POSITIVE = "positive integer"
MANIFEST_SCHEMA = {
    "format": (str,),
    "version": _POSITIVE,
    "model": {"name": (str,), "timesteps": _POSITIVE, "time_chunk": _POSITIVE,
              "inputs": _POSITIVE, "outputs": _POSITIVE, "v_bits": _POSITIVE},
    "top": {"module": (str,),
            "ports": {"inputs": _POSITIVE, "results": _POSITIVE, "cycles": _POSITIVE}},
    "files": (dict,),
}
# The trace port, if the core has one (a core for the board alone need not).
TRACE_SCHEMA = {"pass_bits": _POSITIVE, "slot_bits": _POSITIVE, "write_lanes": _POSITIVE}
REQUIRED_FILES = ("verilog", "model")
# What the commands read from program.json (sim/cosim.py, sim/compare.py); the layers'
# neuron lists are further checked against each layer's size.
PROGRAM_SCHEMA = {"timesteps": _POSITIVE, "inputs": _POSITIVE, "outputs": _POSITIVE,
                  "config": (dict,), "layers": (list,), "entries_per_tppe": (list,),
                  "weights_per_tppe": (list,)}
LAYER_SCHEMA = {"name": (str,), "dense": (str,), "inputs": _POSITIVE, "outputs": _POSITIVE,
                "last": (bool,), "output_slots": (list,), "tppe_neurons": (list,)}


def _ints(values, where, fail):
    if not isinstance(values, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise fail(f"{where} must be a list of integers")
    return values


def _check(value, schema, where, fail):
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            raise fail(f"{where or 'the top level'} must be an object")
        for key, inner in schema.items():
            if key not in value:
                raise fail(f"missing field {where + '.' if where else ''}{key}")
            _check(value[key], inner, f"{where + '.' if where else ''}{key}", fail)
    elif schema == _POSITIVE:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise fail(f"{where} must be a positive integer, got {value!r}")
    elif not isinstance(value, schema) or (schema == (str,) and not value):
        kind = ("a non-empty " if schema == (str,) else "a ") + schema[0].__name__
        raise fail(f"{where} must be {kind}, got {value!r}"[:200])


class BuildDirectory:
    """A build directory opened for reading; refuses anything that is not one, or that
    changed since ``hwgen compile`` wrote it. Every error is a :class:`FormatError`
    naming the file and what is wrong."""

    def __init__(self, path):
        self.path = Path(path)
        manifest = self.path / MANIFEST
        if not self.path.is_dir():
            raise FormatError(f"{self.path}: no such build directory; run hwgen compile first")
        if not manifest.is_file():
            raise FormatError(f"{self.path}: not a build directory (no {MANIFEST}); run "
                              f"`hwgen compile MODEL -o {self.path}` first")

        def fail(message):
            return FormatError(f"{manifest}: {message}")

        try:
            if manifest.stat().st_size > MAX_MANIFEST_BYTES:
                raise fail(f"larger than {MAX_MANIFEST_BYTES} bytes: not an hwgen manifest")
            self.manifest = json.loads(manifest.read_bytes())
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
            raise fail(f"not valid JSON ({error})") from None
        if not isinstance(self.manifest, dict) or self.manifest.get("format") != "hwgen.build":
            raise fail("not an hwgen build manifest")
        found = self.manifest.get("version")
        if isinstance(found, int) and found > MANIFEST_VERSION:
            raise fail(f"written by a newer hwgen (version {found}); upgrade hwgen")
        if found != MANIFEST_VERSION:
            raise fail(f"written by an older hwgen (version {found!r}); recompile the model")
        _check(self.manifest, MANIFEST_SCHEMA, "", fail)
        ports = self.manifest["top"]["ports"]
        if "trace" in ports:
            _check(ports["trace"], TRACE_SCHEMA, "top.ports.trace", fail)
        # It goes into a Verilator configuration file (sim/native.py): a name, nothing else.
        tppe_module = self.manifest["top"].get("tppe_module")
        if tppe_module is not None and not (isinstance(tppe_module, str)
                                            and re.fullmatch(r"[A-Za-z_]\w*", tppe_module)):
            raise fail(f"top.tppe_module must be a Verilog module name, got "
                       f"{tppe_module!r}"[:200])
        if self.timesteps % self.time_chunk:
            raise fail(f"model.time_chunk {self.time_chunk} does not divide model.timesteps "
                       f"{self.timesteps}")
        expected = self.time_chunk + self.v_bits
        if ports["inputs"] != self.time_chunk or ports["results"] != expected:
            raise fail(f"top.ports (inputs {ports['inputs']}, results {ports['results']} "
                       f"bits) do not match the model's dimensions (inputs "
                       f"{self.time_chunk}, results {expected} bits)")
        self._files = {}
        for role, entry in self.manifest["files"].items():
            if not (isinstance(entry, dict) and isinstance(entry.get("path"), str)
                    and isinstance(entry.get("sha256"), str)):
                raise fail(f"files.{role} must have a path and a sha256")
            self._files[role] = (self._confined(entry["path"], f"files.{role}.path", fail),
                                 entry["sha256"])
        for role in REQUIRED_FILES:
            if role not in self._files:
                raise fail(f"missing field files.{role}")
        for role in self._files:
            self._verified(role)
        if "program" in self._files:
            self.program()                      # its shape, before any command relies on it

    def _confined(self, relative, where, fail):
        """``relative`` resolved inside the directory; anything that leaves it is refused."""
        pure = PurePosixPath(relative)
        if (not relative or pure.is_absolute() or ".." in pure.parts or "\\" in relative
                or "\0" in relative):
            raise fail(f"{where} {relative!r} must be a relative path inside the build "
                       f"directory")
        resolved = (self.path / pure).resolve()
        if not resolved.is_relative_to(self.path.resolve()):
            raise fail(f"{where} {relative!r} leaves the build directory")
        return self.path / pure

    def _verified(self, role):
        path, digest = self._files[role]
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise FormatError(f"{self.path}: {path.relative_to(self.path)} is missing; "
                              f"recompile") from None
        except OSError as error:
            raise FormatError(f"{path}: unreadable ({error.strerror or error})") from None
        if _sha256(data) != digest:
            raise FormatError(f"{path}: changed since hwgen compile wrote it (its SHA-256 "
                              f"differs from {MANIFEST}); recompile instead of editing a "
                              f"build directory")
        return data

    def file(self, role):
        """The path of the file with ``role`` (FormatError if this build has none)."""
        if role not in self._files:
            raise FormatError(f"{self.path / MANIFEST}: this build has no {role} file "
                              f"(files.{role}); recompile with hwgen compile")
        return self._files[role][0]

    def read(self, role):
        """The bytes of the file with ``role``, checked against its recorded SHA-256."""
        self.file(role)
        return self._verified(role)

    @property
    def verilog(self):
        return self.file("verilog")

    @property
    def trace_layout(self):
        """The layout of the core's trace port (:func:`trace_layout`), from the manifest."""
        trace = self.manifest["top"]["ports"].get("trace")
        if trace is None:
            raise FormatError(f"{self.path}: the core has no trace port (top.ports.trace); "
                              f"only a core hwgen compiled can be co-simulated")
        return trace_layout(self.time_chunk, trace["pass_bits"], trace["slot_bits"],
                            trace["write_lanes"])

    @property
    def top_module(self):
        return self.manifest["top"]["module"]

    @property
    def tppe_module(self):
        """The module the top instantiates once per TPPE; None for a build written before
        the manifest named it."""
        return self.manifest["top"].get("tppe_module")

    @property
    def name(self):
        return self.manifest["model"]["name"]

    @property
    def timesteps(self):
        return self.manifest["model"]["timesteps"]

    @property
    def time_chunk(self):
        """T_c: the bits of every spike word at the core's ports."""
        return self.manifest["model"]["time_chunk"]

    @property
    def inputs(self):
        return self.manifest["model"]["inputs"]

    @property
    def outputs(self):
        return self.manifest["model"]["outputs"]

    @property
    def v_bits(self):
        return self.manifest["model"]["v_bits"]

    def model(self):
        return native.loads(self.read("model"), source=str(self.file("model")))

    def report(self):
        """report.json: compile notes and per-layer figures."""
        return self._json_object("report", "report")

    def _json_object(self, role, what):
        path = self.file(role)
        try:
            document = json.loads(self.read(role))
        except (UnicodeDecodeError, ValueError, RecursionError) as error:
            raise FormatError(f"{path}: not valid JSON ({error})") from None
        if not isinstance(document, dict):
            raise FormatError(f"{path}: not an hwgen {what}")
        return document

    def program(self):
        """The program summary (program.json: schedule, layouts; no memory contents),
        checked against :data:`PROGRAM_SCHEMA` and the manifest."""
        program = self._json_object("program", "program summary")
        path = self.file("program")

        def fail(message):
            return FormatError(f"{path}: {message}")

        _check(program, PROGRAM_SCHEMA, "", fail)
        for key in ("entries_per_tppe", "weights_per_tppe"):
            if any(v < 0 for v in _ints(program[key], key, fail)):
                raise fail(f"{key} must not be negative")
        model = self.manifest["model"]
        for key in ("timesteps", "inputs", "outputs"):
            if program[key] != model[key]:
                raise fail(f"{key} = {program[key]} but {MANIFEST} says {model[key]}")
        if program["config"].get("v_bits") != model["v_bits"]:
            raise fail(f"config.v_bits does not match {MANIFEST}'s model.v_bits")
        if [layer.get("name") if isinstance(layer, dict) else None
                for layer in program["layers"]] != model["layers"]:
            raise fail(f"layers do not match {MANIFEST}'s model.layers")
        for index, layer in enumerate(program["layers"]):
            where = f"layers[{index}]"
            _check(layer, LAYER_SCHEMA, where, fail)
            n = layer["outputs"]
            neurons = [v for tppe in layer["tppe_neurons"] for v in _ints(tppe, where, fail)]
            if sorted(neurons) != list(range(n)):
                raise fail(f"{where}.tppe_neurons must list each of its {n} neurons once")
            slots = _ints(layer["output_slots"], f"{where}.output_slots", fail)
            if any(not -1 <= v < n for v in slots):
                raise fail(f"{where}.output_slots must hold neurons 0..{n - 1} or -1")
        return program
