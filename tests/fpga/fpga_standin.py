"""A stand-in core and build directory for the FPGA tests (helpers; fixtures in conftest.py).

:class:`StandInCore` has exactly the ports and handshake of the core contract
(docs/architecture.md) and computes, for K = N neurons, what the integer reference computes
for :func:`standin_model`: an identity dense layer into integrate-and-fire neurons with
threshold 1, no leak and no reset. Neuron n's output spike word is the prefix-OR of input
n's word (it fires from its first input spike on) and its final membrane is the popcount of
that word. So the whole host path, including the comparison with ``hwgen.compiler.ir.reference``, can be
tested against it before (and independently of) the real accelerator.
"""

import json

import numpy as np
from amaranth import Array, Cat, Module, Signal
from amaranth.back import verilog
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen import build_directory
from hwgen.compiler.frontends import native
from hwgen.gateware.core_interface import CoreSignature
from hwgen.compiler.ir import LIF, Dense, Input, Leak, Model, Readout


class StandInCore(wiring.Component):
    """The core contract's ports; ``latency`` busy cycles per inference."""

    def __init__(self, timesteps, neurons, v_bits, latency=5):
        self.timesteps, self.neurons, self.v_bits, self.latency = (timesteps, neurons,
                                                                   v_bits, latency)
        super().__init__(CoreSignature(timesteps, v_bits))

    def elaborate(self, platform):
        m = Module()
        T, K = self.timesteps, self.neurons
        stored = Array(Signal(T + self.v_bits, name=f"result{k}") for k in range(K))
        received = Signal(range(K + 1))
        sent = Signal(range(K + 1))
        start_seen = Signal()
        timer = Signal(range(self.latency + 1))
        counter = Signal(32)

        word = self.inputs.payload
        prefix = Cat(*[word[:t + 1].any() for t in range(T)])
        popcount = sum(word[t] for t in range(T))
        m.d.comb += self.inputs.ready.eq((received < K) & ~self.busy)
        with m.If(self.inputs.valid & self.inputs.ready):
            m.d.sync += [stored[received].eq(Cat(prefix, popcount[:self.v_bits])),
                         received.eq(received + 1)]
        with m.If(self.start):
            m.d.sync += [start_seen.eq(1), self.done.eq(0), counter.eq(1)]
        with m.Elif(start_seen | self.busy):
            m.d.sync += counter.eq(counter + 1)
        with m.If(start_seen & (received == K) & ~self.busy):
            m.d.sync += [self.busy.eq(1), timer.eq(self.latency), start_seen.eq(0)]
        with m.If(self.busy):
            m.d.sync += timer.eq(timer - 1)
            with m.If(timer == 0):
                m.d.sync += [self.busy.eq(0), self.done.eq(1), self.cycles.eq(counter),
                             received.eq(0), sent.eq(0)]
        m.d.comb += [self.results.valid.eq(self.done & (sent < K)),
                     self.results.payload.eq(stored[sent])]
        with m.If(self.results.valid & self.results.ready):
            m.d.sync += sent.eq(sent + 1)
        return m


def standin_model(neurons=6, timesteps=8, v_bits=6, threshold=4):
    """The model :class:`StandInCore` computes, with an integer (IF-encoded) input."""
    model = Model("standin", timesteps, metadata={"generator": "tests/fpga/conftest.py"})
    model.add(Input("input", (neurons,), encoding="if", threshold=threshold))
    model.add(Dense("fc", np.eye(neurons, dtype=np.int64), weight_bits=2, acc_bits=2), "input")
    model.add(LIF("lif", np.ones(neurons, dtype=np.int64), leak=Leak.none(), fire="ge",
                  reset="none", order="same_step", v_bits=v_bits), "fc")
    model.add(Readout("readout"), "lif")
    return model.validate()


def standin_results(words, timesteps, v_bits):
    """What the stand-in returns for packed input words: one result word per neuron."""
    results = []
    for word in words:
        prefix = 0
        for t in range(timesteps):
            if word & ((1 << (t + 1)) - 1):
                prefix |= 1 << t
        results.append(prefix | (bin(word).count("1") << timesteps))
    return results


def write_standin_build(directory, neurons=6, timesteps=8, v_bits=6, latency=5):
    """A build directory as `hwgen compile` writes it (manifest, Verilog, model), through
    the same writer; it has no program, so only the FPGA flow can use it."""
    core = StandInCore(timesteps, neurons, v_bits, latency)
    verilog_text = verilog.convert(core, name="hwgen_core", emit_src=False)
    model = standin_model(neurons, timesteps, v_bits)
    manifest = {
        "model": {"name": "standin", "timesteps": timesteps, "time_chunk": timesteps,
                  "inputs": neurons, "outputs": neurons, "v_bits": v_bits},
        "top": {"module": "hwgen_core",
                "ports": {"inputs": timesteps, "results": timesteps + v_bits, "cycles": 32}},
        "config": {},
        "resources": {"memory_bits": 0, "memories": []},
    }
    build_directory.write_files(directory, manifest, {
        "verilog": ("rtl/hwgen_core.v", verilog_text.encode()),
        "model": ("model.hwgen", native.dumps(model))})
    return directory
