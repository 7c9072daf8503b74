"""The compiled core as the FPGA flow sees it: what a build directory promises.

The FPGA flow relies only on the build-directory contract of docs/architecture.md:
``DIR/manifest.json`` (the model's dimensions and the top module) and the Verilog it names
(``DIR/rtl/hwgen_core.v``), which is synthesised as is, so the bitstream holds exactly the
Verilog a user simulates.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from hwgen.errors import FormatError

from . import protocol


@dataclass(frozen=True)
class CoreSpec:
    """The dimensions and files of one compiled core."""

    directory: Path
    name: str
    timesteps: int
    inputs: int
    outputs: int
    v_bits: int
    module: str
    verilog: Path
    design_id: int

    @property
    def result_width(self):
        return self.timesteps + self.v_bits

    @property
    def input_bytes(self):
        return protocol.input_bytes(self.timesteps)

    @property
    def result_bytes(self):
        return protocol.result_bytes(self.timesteps, self.v_bits)

    @property
    def model_path(self):
        return self.directory / "model.hwgen"

    def verilog_text(self):
        return self.verilog.read_text()

    @classmethod
    def load(cls, directory):
        """Read ``directory``/manifest.json; :class:`FormatError` names what is wrong."""
        directory = Path(directory)
        manifest_path = directory / "manifest.json"
        if not directory.is_dir():
            raise FormatError(f"{directory}: no such build directory (run `hwgen compile` "
                              f"first)")
        if not manifest_path.is_file():
            raise FormatError(f"{directory}: not a build directory (no manifest.json; run "
                              f"`hwgen compile MODEL -o {directory}`)")
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise FormatError(f"{manifest_path}: not valid JSON ({error})") from None

        def field(*path, kind=int):
            value = manifest
            for key in path:
                if not isinstance(value, dict) or key not in value:
                    raise FormatError(f"{manifest_path}: missing field {'.'.join(path)}")
                value = value[key]
            if kind is int and (not isinstance(value, int) or isinstance(value, bool)
                                or value < 1):
                raise FormatError(f"{manifest_path}: {'.'.join(path)} must be a positive "
                                  f"integer, got {value!r}")
            if kind is str and (not isinstance(value, str) or not value):
                raise FormatError(f"{manifest_path}: {'.'.join(path)} must be a non-empty "
                                  f"string, got {value!r}")
            return value

        timesteps = field("model", "timesteps")
        v_bits = field("model", "v_bits")
        module = field("top", "module", kind=str)
        verilog = directory / field("top", "verilog", kind=str)
        if not verilog.is_file():
            raise FormatError(f"{manifest_path}: the Verilog it names, {verilog}, is missing")
        ports = manifest["top"].get("ports", {})
        for port, width in (("inputs", timesteps), ("results", timesteps + v_bits)):
            if port in ports and ports[port] != width:
                raise FormatError(f"{manifest_path}: top.ports.{port} is {ports[port]} bits "
                                  f"but the model's dimensions give {width}")
        name = manifest["model"].get("name") or directory.name
        return cls(directory=directory, name=str(name), timesteps=timesteps,
                   inputs=field("model", "inputs"), outputs=field("model", "outputs"),
                   v_bits=v_bits, module=module, verilog=verilog,
                   design_id=protocol.design_id(verilog.read_bytes()))
