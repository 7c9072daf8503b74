"""The build directory ``hwgen compile`` writes and every later command reads.

Layout and manifest are the contract of docs/architecture.md ("Build directory"). Writing
is atomic (the directory appears complete or not at all) and deterministic (the same model
and configuration give byte-identical files: no timestamps, no absolute paths).
"""

import hashlib
import json
from importlib.metadata import version
from pathlib import Path

from compiler.atomic import atomic_directory
from compiler.errors import FormatError
from compiler.frontends import native
from compiler.scheduler.program import write_hex

from .top import TOP_MODULE, to_verilog

MANIFEST_VERSION = 1


def _json(data):
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def write(program, model, path, *, notes=None, sparsity=None):
    """Write the build directory for ``program`` (compiled from ``model``) at ``path``.

    ``notes`` (JSON-able) goes into report.json: frontend assumptions, quantization, and
    anything else the user should read about how the model was compiled. ``sparsity``
    (one dict per layer) is merged into report.json's layers.
    """
    verilog = to_verilog(program)
    images = program.memory_images()
    memories = program.memory_bits()
    manifest = {
        "format": "hwgen.build",
        "version": MANIFEST_VERSION,
        "hwgen_version": version("hwgen"),
        "model": {"name": program.model_name, "sha256": program.model_sha256,
                  "timesteps": program.timesteps, "inputs": program.input_size,
                  "outputs": program.output_size, "v_bits": program.config.v_bits,
                  "layers": [layer.name for layer in program.layers]},
        "top": {"module": TOP_MODULE, "verilog": f"rtl/{TOP_MODULE}.v",
                "ports": {"inputs": program.timesteps,
                          "results": program.timesteps + program.config.v_bits,
                          "cycles": 32}},
        "config": program.config.to_json(),
        "resources": {
            "memory_bits": sum(depth * width for depth, width in memories.values()),
            "memories": [{"name": name, "depth": depth, "width": width, "bits": depth * width}
                         for name, (depth, width) in memories.items()]},
        "files": {"model": "model.hwgen", "config": "config.json", "program": "program.json",
                  "report": "report.json",
                  "memories": {name: f"memories/{name}.hex" for name in images}},
        "verilog_sha256": hashlib.sha256(verilog.encode()).hexdigest(),
    }
    report = {"model": program.model_name, "notes": notes or {},
              "metadata": model.metadata,
              "layers": [{"name": layer.name, "inputs": layer.inputs, "outputs": layer.outputs,
                          "neurons_per_tppe": [len(n) for n in layer.tppe_neurons],
                          "estimated_cycles_per_tppe": layer.estimated_cycles,
                          **(sparsity[index] if sparsity else {})}
                         for index, layer in enumerate(program.layers)]}
    with atomic_directory(path) as staging:
        (staging / "rtl").mkdir()
        (staging / f"rtl/{TOP_MODULE}.v").write_text(verilog)
        (staging / "memories").mkdir()
        for name, (width, words) in images.items():
            write_hex(staging / f"memories/{name}.hex", width, words)
        native.save(model, staging / "model.hwgen")
        (staging / "config.json").write_text(_json(program.config.to_json()))
        (staging / "program.json").write_text(_json(program.summary()))
        (staging / "report.json").write_text(_json(report))
        (staging / "manifest.json").write_text(_json(manifest))
    return BuildDirectory(path)


class BuildDirectory:
    """A build directory opened for reading; refuses anything that is not one."""

    def __init__(self, path):
        self.path = Path(path)
        manifest = self.path / "manifest.json"
        if not self.path.is_dir():
            raise FormatError(f"{self.path}: no such build directory; run hwgen compile first")
        try:
            self.manifest = json.loads(manifest.read_text())
        except FileNotFoundError:
            raise FormatError(f"{self.path}: not a build directory (no manifest.json); run "
                              f"hwgen compile first") from None
        except (OSError, ValueError) as error:
            raise FormatError(f"{manifest}: unreadable ({error})") from None
        if self.manifest.get("format") != "hwgen.build":
            raise FormatError(f"{manifest}: not an hwgen build manifest")
        if self.manifest.get("version", 0) > MANIFEST_VERSION:
            raise FormatError(f"{manifest}: written by a newer hwgen (version "
                              f"{self.manifest['version']}); upgrade hwgen")
        for role in ("model", "config", "program"):
            if not (self.path / self.manifest["files"][role]).is_file():
                raise FormatError(f"{self.path}: {self.manifest['files'][role]} is missing; "
                                  f"recompile")
        if not self.verilog.is_file():
            raise FormatError(f"{self.path}: {self.manifest['top']['verilog']} is missing; "
                              f"recompile")

    @property
    def verilog(self):
        return self.path / self.manifest["top"]["verilog"]

    @property
    def top_module(self):
        return self.manifest["top"]["module"]

    def model(self):
        return native.load(self.path / self.manifest["files"]["model"])

    def report(self):
        """report.json: compile notes and per-layer figures."""
        return json.loads((self.path / self.manifest["files"]["report"]).read_text())

    def program(self):
        """The program summary (schedule, layouts; no memory contents)."""
        return json.loads((self.path / self.manifest["files"]["program"]).read_text())
