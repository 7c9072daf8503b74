"""The core's interface: its ports, the layouts of its payloads, and how a host reads them.

This is the one definition of the contract of docs/architecture.md ("Core interface"). The
generated accelerator (:class:`hwgen.gateware.top.Accelerator`) has exactly these ports; the
board tops instantiate its Verilog through :func:`instance_ports`; the protocol engine drives
them through a flipped :class:`CoreSignature`; the co-simulation testbench and the host driver
decode trace and result words with :func:`unpack` on the same layouts.

Port names in the Verilog are the flattened member paths joined by ``__`` (Amaranth's
convention: ``inputs__payload``, ``results__valid``, ``trace__payload``), plus ``clk`` and
``rst``. Verilog ports lose their struct type and signedness: a host reads them as unsigned
words and unpacks them with the layouts here.
"""

import numpy as np
from amaranth.hdl import Shape, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen.compiler.ir.spike_words import chunk_words_to_spikes, time_chunks

CYCLES_BITS = 32
STEPS_BITS = 16


def result_layout(lanes, v_bits):
    """One output neuron in one time chunk: its packed spike word over the chunk's
    ``lanes`` (T_c) steps and its membrane at the end of the chunk."""
    return data.StructLayout({"word": unsigned(lanes), "v": signed(v_bits)})


def trace_layout(lanes, pass_bits, slot_bits, write_lanes=1):
    """The words layers write in one cycle: the pass (time chunk x layers + layer) and, for
    each of the ``write_lanes`` lanes of the write bus, whether it carries a word
    (``valid``), its output slot (docs/architecture.md, "Output placement") and the packed
    spike word of the chunk. :func:`trace_writes` unpacks it."""
    write = data.StructLayout({"valid": unsigned(1), "slot": unsigned(slot_bits),
                               "word": unsigned(lanes)})
    return data.StructLayout({"layer_pass": unsigned(pass_bits),
                              "writes": data.ArrayLayout(write, write_lanes)})


def trace_fields(layout):
    """{"layer_pass", "valid", "slot", "word": (offset, width, signed)} of a
    :func:`trace_layout`, the lane fields those of lane 0, and ``(lanes, stride)``: lane
    k's fields are ``k * stride`` bits after lane 0's."""
    writes = layout["writes"]
    lane = writes.shape.elem_shape
    fields = {"layer_pass": field_slices(layout)["layer_pass"]}
    for name, (offset, width, is_signed) in field_slices(lane).items():
        fields[name] = (writes.offset + offset, width, is_signed)
    return fields, (writes.shape.length, lane.size)


def trace_writes(layout, payload):
    """A trace payload (an int) -> (layer_pass, [(slot, word) of each lane that writes])."""
    fields, (lanes, stride) = trace_fields(layout)

    def get(name, lane=0):
        offset, width, _ = fields[name]
        return payload >> (offset + lane * stride) & ((1 << width) - 1)
    return get("layer_pass"), [(get("slot", k), get("word", k)) for k in range(lanes)
                               if get("valid", k)]


class CoreSignature(wiring.Signature):
    """The core's ports, from the core's side (flip it for whoever drives the core).

    Spike words are ``lanes`` (T_c) bits: an inference of T steps is T / T_c time chunks,
    and every word list is chunk-major (word c * neurons + k: neuron k in chunk c; see
    :func:`~hwgen.compiler.ir.spike_words.spikes_to_chunk_words`). ``inputs``: the input
    neurons' words of every chunk, before ``start``; ``results``: one :func:`result_layout`
    word per output neuron and chunk after ``done`` (the last chunk's membranes are the final
    ones); ``start`` (pulse), ``busy``, ``done``, ``cycles`` (cycles of the last inference,
    counted from when its inputs have all arrived), ``steps`` (the time steps it ran: T, or
    fewer after an early exit, docs/semantics.md section 8). With ``trace`` (a
    :func:`trace_layout`), a monitor-only port (no ready) of every word a layer writes, up
    to one per write lane and cycle, for layer-by-layer checks: ``valid`` when any lane
    writes, and ``payload.layer_pass`` always (the pass running).
    """

    def __init__(self, lanes, v_bits, trace=None):
        members = {
            "inputs": In(stream.Signature(unsigned(lanes))),
            "results": Out(stream.Signature(result_layout(lanes, v_bits))),
            "start": In(1),
            "busy": Out(1),
            "done": Out(1),
            "cycles": Out(CYCLES_BITS),
            "steps": Out(STEPS_BITS),
        }
        if trace is not None:
            members["trace"] = Out(wiring.Signature({"valid": Out(1), "payload": Out(trace)}))
        super().__init__(members)


def instance_ports(interface, *, clk, rst):
    """Keyword arguments of an ``Instance`` of the core's Verilog, wired to ``interface``:
    an object with a :class:`CoreSignature` (either side) whose members to connect. A port
    that is an input of the core is ``i_``, an output ``o_``, whichever side ``interface``
    is on."""
    ports = {"i_clk": clk, "i_rst": rst}
    signature = interface.signature
    if not isinstance(signature, CoreSignature):
        raise TypeError(f"instance_ports: {interface!r} does not have the core's signature")
    # (A flipped CoreSignature is an instance of CoreSignature too: test for the flip.)
    flipped = isinstance(signature, wiring.FlippedSignature)
    core_side = signature.flip() if flipped else signature
    for path, member, value in core_side.flatten(interface):
        name = "__".join(str(part) for part in path)
        ports[("i_" if member.flow == In else "o_") + name] = value
    return ports


def field_slices(layout):
    """{field: (offset, width, signed)} of a struct layout, for unpacking words on a host."""
    return {name: (field.offset, Shape.cast(field.shape).width, Shape.cast(field.shape).signed)
            for name, field in layout}


def unpack(layout, words):
    """Words of ``layout`` (an int or an integer array) -> {field: int64 array (or int)}."""
    scalar = np.ndim(words) == 0
    words = np.asarray(words, dtype=np.int64)
    fields = {}
    for name, (offset, width, is_signed) in field_slices(layout).items():
        value = (words >> offset) & ((1 << width) - 1)
        if is_signed:
            value = np.where(value >> (width - 1), value - (1 << width), value)
        fields[name] = int(value) if scalar else value
    return fields


def unpack_results(words, timesteps, v_bits, lanes=None):
    """Result words (..., chunks * neurons), chunk-major, -> (spikes (..., T, neurons)
    uint8, final membranes (..., neurons)). ``lanes``: T_c (default T, one chunk)."""
    lanes = lanes or timesteps
    fields = unpack(result_layout(lanes, v_bits), np.asarray(words, dtype=np.int64))
    chunks = time_chunks(timesteps, lanes)
    neurons = fields["v"].shape[-1] // chunks
    return chunk_words_to_spikes(fields["word"], timesteps, lanes), fields["v"][..., -neurons:]
