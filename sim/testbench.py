"""cocotb testbench for the generated core (module ``hwgen_core``): drive and record.

It runs the inferences listed in the job file named by ``HWGEN_JOB`` through the core's
interface exactly as docs/architecture.md specifies (input words, start, done, results)
and records everything observable: every trace event (the words each layer writes), the
cycle each layer began, the cycle counter and the result words (and how many clock cycles
it simulated, for speed measurements). It writes them to the
file named by ``HWGEN_OBSERVED`` and judges nothing: :mod:`hwgen.sim.compare` compares the
recording with the integer reference, so the verdict logic is ordinary, testable Python.

``HWGEN_PROGRESS``, if set, names a file that gets the number of finished samples after
each sample, for a progress bar.
"""

import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ReadOnly, RisingEdge

from hwgen.gateware.core_interface import trace_layout, trace_writes


async def _send_word(dut, word):
    dut.inputs__payload.value = int(word)
    dut.inputs__valid.value = 1
    await ReadOnly()
    while not dut.inputs__ready.value:
        await RisingEdge(dut.clk)
        await ReadOnly()
    await RisingEdge(dut.clk)
    dut.inputs__valid.value = 0


async def _run_one(dut, words, outputs, record, timeout):
    cycles_loading = 0
    for word in words:
        await _send_word(dut, word)
        cycles_loading += 1
    dut.start.value = 1
    await RisingEdge(dut.clk)
    dut.start.value = 0

    layer_starts, layer, cycle = [], None, 0
    while True:
        await ReadOnly()
        if dut.busy.value:
            payload = int(dut.trace__payload.value.to_unsigned())
            current, writes = record["writes"](payload)
            if current != layer:
                layer = current
                layer_starts.append(cycle)
            if dut.trace__valid.value:
                record["events"] += [(layer, slot, word, cycle) for slot, word in writes]
        elif dut.done.value:
            layer_starts.append(cycle)          # the last pass's end
            break
        cycle += 1
        if cycle > timeout:
            raise TimeoutError(f"no done after {timeout} cycles: the core hangs")
        await RisingEdge(dut.clk)
    cycles = int(dut.cycles.value.to_unsigned())
    steps = int(dut.steps.value.to_unsigned())

    await RisingEdge(dut.clk)
    dut.results__ready.value = 1
    results = []
    while len(results) < outputs:
        await ReadOnly()
        if dut.results__valid.value:
            results.append(int(dut.results__payload.value.to_unsigned()))
        await RisingEdge(dut.clk)
    dut.results__ready.value = 0
    return cycles, steps, cycles_loading, layer_starts, results


@cocotb.test()
async def run_inferences(dut):
    job = np.load(os.environ["HWGEN_JOB"])
    words, outputs, timeout = job["words"], int(job["outputs"]), int(job["timeout"])
    layers = int(job["layers"])             # passes: time chunks x layers
    # The trace port's fields, by name, from the core interface's one definition.
    layout = trace_layout(int(job["lanes"]), int(job["pass_bits"]), int(job["slot_bits"]),
                          int(job["write_lanes"]))
    record = {"writes": lambda payload: trace_writes(layout, payload)}
    progress = os.environ.get("HWGEN_PROGRESS")

    period_ns = 10
    cocotb.start_soon(Clock(dut.clk, period_ns, unit="ns").start())
    dut.inputs__valid.value = 0
    dut.results__ready.value = 0
    dut.start.value = 0
    dut.rst.value = 1
    await RisingEdge(dut.clk)
    first_edge_ns = get_sim_time("ns")
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)

    # layer_bounds[s]: testbench cycle at which each layer began, then the cycle of done.
    events, cycles, steps, loading, starts, results = [], [], [], [], [], []
    for sample, sample_words in enumerate(words):
        record["events"] = []
        total, ran, load, layer_starts, result = await _run_one(dut, sample_words, outputs,
                                                                record, timeout)
        events += [(sample, *event) for event in record["events"]]
        cycles.append(total)
        steps.append(ran)
        loading.append(load)
        starts.append((layer_starts + [-1] * (layers + 1))[:layers + 1])
        results.append(result)
        if progress:
            with open(progress, "w") as f:
                f.write(str(sample + 1))

    events = np.array(events, dtype=np.int64).reshape(-1, 5)
    np.savez(os.environ["HWGEN_OBSERVED"], events=events, cycles=np.array(cycles),
             steps=np.array(steps),
             load_cycles=np.array(loading), layer_bounds=np.array(starts, dtype=np.int64),
             results=np.array(results, dtype=np.int64).reshape(len(words), outputs),
             edges=round((get_sim_time("ns") - first_edge_ns) / period_ns) + 1)
