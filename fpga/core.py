"""The compiled core as the FPGA flow sees it: what a build directory promises.

The FPGA flow relies only on the build-directory contract (:mod:`hwgen.build_directory`,
docs/architecture.md): the model's dimensions and the top module from the manifest, and
the Verilog it names (``DIR/rtl/hwgen_core.v``), which is synthesised as is, so the
bitstream holds exactly the Verilog a user simulates.
"""

from dataclasses import dataclass
from pathlib import Path

from hwgen.build_directory import BuildDirectory
from hwgen.compiler.ir.early_exit import check_rule

from . import protocol


@dataclass(frozen=True)
class CoreSpec:
    """The dimensions and files of one compiled core."""

    directory: Path
    name: str
    timesteps: int
    time_chunk: int
    inputs: int
    outputs: int
    v_bits: int
    module: str
    verilog: Path
    model_path: Path
    design_id: int
    early_exit: object = "off"

    @property
    def time_chunks(self):
        return self.timesteps // self.time_chunk

    @property
    def input_words(self):
        """Words the core takes per inference: every input neuron in every time chunk."""
        return self.inputs * self.time_chunks

    @property
    def result_words(self):
        """Words the core gives per inference: every output neuron in every time chunk."""
        return self.outputs * self.time_chunks

    @property
    def result_width(self):
        return self.time_chunk + self.v_bits

    @property
    def input_bytes(self):
        return protocol.input_bytes(self.time_chunk)

    @property
    def result_bytes(self):
        return protocol.result_bytes(self.time_chunk, self.v_bits)

    def verilog_text(self):
        return self.verilog.read_text()

    @classmethod
    def of(cls, build):
        """The core of an opened :class:`~hwgen.build_directory.BuildDirectory`."""
        return cls(directory=build.path, name=build.name, timesteps=build.timesteps,
                   time_chunk=build.time_chunk, inputs=build.inputs, outputs=build.outputs, v_bits=build.v_bits,
                   module=build.top_module, verilog=build.verilog,
                   model_path=build.file("model"),
                   design_id=protocol.design_id(build.read("verilog")),
                   early_exit=check_rule(build.manifest.get("config", {}).get(
                       "early_exit", "off"), f"{build.path}/manifest.json config") or "off")

    @classmethod
    def load(cls, directory):
        """Open ``directory``; :class:`~hwgen.errors.FormatError` names what is wrong."""
        return cls.of(BuildDirectory(directory))
