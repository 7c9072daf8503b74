"""cocotb testbench that turns the simulated board top into a serial port.

It runs inside the Verilator simulation of ``hwgen_board_sim`` (see :mod:`hwgen.fpga.simboard`).
It opens a pseudo-terminal and writes its name to ``$HWGEN_PTY_LINK``; every byte a host
writes to that terminal is sent to the board's ``rx`` pin bit by bit, as a UART would, and
every byte the board sends on ``tx`` is sampled bit by bit and written back to the terminal.
So a host program (the driver, ``hwgen run --port``) talks to the simulation exactly as it
would to a board's USB serial port.

It stops when ``$HWGEN_SIM_STOP`` exists, or after ``$HWGEN_SIM_WALL_LIMIT`` seconds of
wall-clock time, whichever comes first.
"""

import os
import time
import tty

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, Timer


def _config():
    env = os.environ
    return (int(env["HWGEN_UART_DIVISOR"]), int(env.get("HWGEN_CLOCK_NS", "10")),
            env["HWGEN_PTY_LINK"], env["HWGEN_SIM_STOP"],
            float(env.get("HWGEN_SIM_WALL_LIMIT", "900")))


@cocotb.test()
async def serve_pty(dut):
    divisor, period, link, stop, wall_limit = _config()
    bit_ns = divisor * period
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    staging = f"{link}.tmp"
    with open(staging, "w") as f:
        f.write(os.ttyname(slave))
    os.replace(staging, link)

    cocotb.start_soon(Clock(dut.clk, period, unit="ns").start())
    dut.rx.value = 1
    dut.rst.value = 1
    await Timer(5 * period, unit="ns")
    dut.rst.value = 0

    async def monitor_tx():
        while True:
            await FallingEdge(dut.tx)
            await Timer(bit_ns // 2, unit="ns")
            if int(dut.tx.value):
                continue                            # not a start bit
            byte = 0
            for bit in range(8):
                await Timer(bit_ns, unit="ns")
                byte |= int(dut.tx.value) << bit
            await Timer(bit_ns, unit="ns")          # the middle of the stop bit
            os.write(master, bytes([byte]))

    cocotb.start_soon(monitor_tx())

    started = time.monotonic()
    idle_ns = 20 * bit_ns
    while not os.path.exists(stop) and time.monotonic() - started < wall_limit:
        try:
            data = os.read(master, 4096)
        except (BlockingIOError, OSError):
            data = b""
        if not data:
            await Timer(idle_ns, unit="ns")
            continue
        for byte in data:
            for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
                dut.rx.value = bit
                await Timer(bit_ns, unit="ns")
    os.close(master)
    os.close(slave)
