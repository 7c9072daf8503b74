"""hwgen: compile quantized spiking neural networks into a verified FPGA accelerator.

The one import package. Its subpackages live in the repository's top-level folders
(README, "Layout"), and their imports run one way, bottom to top (checked by import-linter,
contracts in pyproject.toml):

- :mod:`hwgen.errors`, :mod:`hwgen.atomic`, :mod:`hwgen.toolchain`: project-wide errors,
  atomic output, discovery of the external tools;
- :mod:`hwgen.compiler`: the IR and its integer semantics (:mod:`hwgen.compiler.ir`, with
  the reference model), frontends, passes, the scheduler and the program format;
- :mod:`hwgen.gateware`: the Amaranth components of the accelerator;
- :mod:`hwgen.build_directory`: the build directory every command after ``compile`` reads;
- :mod:`hwgen.sim`: co-simulation on Verilator against the reference;
- :mod:`hwgen.fpga`: synthesis, place and route, flashing, the host driver;
- :mod:`hwgen.cli`: the ``hwgen`` command, the only place that knows every package.
"""

from pathlib import Path as _Path

# In a source checkout (this file at <repo>/hwgen/__init__.py, the subpackages' folders beside
# it), the import system looks for hwgen.compiler, hwgen.sim, ... in the repository root as
# well, so code run from the checkout sees the same package an install gives. An installed
# copy has its subpackages inside it and never takes this branch.
_checkout = _Path(__file__).resolve().parent.parent
if not (_Path(__file__).parent / "compiler").is_dir() and (_checkout / "compiler" / "ir").is_dir():
    __path__.append(str(_checkout))
