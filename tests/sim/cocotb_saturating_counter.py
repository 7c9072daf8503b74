"""cocotb testbench for tests/sim/test_verilator.py: a 3-bit saturating up-counter."""

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge


async def _count(dut, expected_values):
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.en.value = 0
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    dut.en.value = 1
    for expected in expected_values:
        await RisingEdge(dut.clk)
        await ReadOnly()
        assert dut.count.value.to_unsigned() == expected, (
            f"count {dut.count.value.to_unsigned()}, expected {expected}")


@cocotb.test()
async def counts_and_saturates(dut):
    await _count(dut, [1, 2, 3, 4, 5, 6, 7, 7, 7])


@cocotb.test()
async def wrong_expectation(dut):
    """Must fail: proves the harness reports a failing testbench."""
    await _count(dut, [1, 2, 3, 4, 5, 6, 7, 8])
