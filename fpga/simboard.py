"""A simulated board: the board top's logic and the compiled core under Verilator, reachable
as a serial port.

:class:`SimulatedBoard` emits :class:`hwgen.fpga.board.SimBoardTop` (the same UART, protocol engine
and ``hwgen_core`` instance as the bitstream, without the PLL and pins) as Verilog, builds it
with the core's Verilog through :class:`hwgen.sim.verilator.VerilatorBuild` (cached), and runs it
with the cocotb testbench :mod:`hwgen.fpga.cocotb_board` in a background thread. That testbench
bridges a pseudo-terminal to the simulated ``rx`` / ``tx`` pins with a bit-level UART model,
so the host driver reaches it through pyserial exactly as it reaches a board.

The simulated UART runs at ``divisor`` clock cycles per bit (8 by default: far faster than a
real link relative to the clock, so a simulated inference takes seconds, not minutes).
"""

import shutil
import tempfile
import threading
import time
from pathlib import Path

from amaranth.back import verilog

from hwgen.atomic import atomic_file
from hwgen.errors import ToolchainError
from hwgen.sim.verilator import VerilatorBuild

from .board import SimBoardTop

TOP = "hwgen_board_sim"
CLOCK_NS = 10


def board_verilog(spec, *, divisor, timeout):
    """Verilog of the simulation board top for ``spec`` (instantiates ``spec.module``)."""
    top = SimBoardTop(spec, divisor=divisor, timeout=timeout)
    return verilog.convert(top, name=TOP, emit_src=False)


class SimulatedBoard:
    """Context manager: ``with SimulatedBoard(spec) as board: board.port`` is a pty path."""

    def __init__(self, spec, *, divisor=8, timeout=200_000, work_dir=None, log=None,
                 startup_timeout=300.0):
        self.spec = spec
        self.divisor = divisor
        self.timeout = timeout
        self.work_dir = Path(work_dir) if work_dir else None
        self.log = log
        self.startup_timeout = startup_timeout
        self.port = None
        self._thread = None
        self._outcome = {}
        self._owned = False

    def __enter__(self):
        if self.work_dir is None:
            self.work_dir = Path(tempfile.mkdtemp(prefix="hwgen-simboard-"))
            self._owned = True
        self.work_dir.mkdir(parents=True, exist_ok=True)
        source = self.work_dir / f"{TOP}.v"
        with atomic_file(source, "w") as f:
            f.write(board_verilog(self.spec, divisor=self.divisor, timeout=self.timeout))
        build = VerilatorBuild([source, self.spec.verilog], TOP)
        build.build(log=self.log)
        self._link = self.work_dir / "pty"
        self._stop = self.work_dir / "stop"
        for path in (self._link, self._stop):
            path.unlink(missing_ok=True)
        env = {"HWGEN_UART_DIVISOR": str(self.divisor), "HWGEN_CLOCK_NS": str(CLOCK_NS),
               "HWGEN_PTY_LINK": str(self._link), "HWGEN_SIM_STOP": str(self._stop)}

        def simulate():
            try:
                self._outcome["result"] = build.run("hwgen.fpga.cocotb_board",
                                                    test_dir=self.work_dir / "sim",
                                                    extra_env=env)
            except BaseException as error:        # reported to the caller's thread
                self._outcome["error"] = error

        self._thread = threading.Thread(target=simulate, name="hwgen-simboard", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self._link.exists():
            if not self._thread.is_alive():
                self._raise_failure("the simulation ended before it opened its serial port")
            if time.monotonic() > deadline:
                self._stop.touch()
                raise ToolchainError(f"the simulated board did not start within "
                                     f"{self.startup_timeout:g} s")
            time.sleep(0.05)
        self.port = self._link.read_text().strip()
        if self.log:
            self.log(f"simulated board on {self.port}")
        return self

    def _raise_failure(self, what):
        error = self._outcome.get("error")
        if error is not None:
            raise error
        result = self._outcome.get("result")
        log = result.log if result else self.work_dir / "sim" / "simulation.log"
        raise ToolchainError(f"{what}; see {log}")

    def __exit__(self, *exc):
        if self._thread is not None:
            self._stop.touch()
            self._thread.join(timeout=60)
        if self._owned and not (self._thread and self._thread.is_alive()):
            shutil.rmtree(self.work_dir, ignore_errors=True)
        return False
