"""The host driver: runs inferences on a board over the UART protocol and checks them
against the integer reference.

The driver talks to the board through a *transport* (``write(bytes)``, ``read(count)``
returning fewer bytes on timeout, ``discard_input()``, ``close()``). :class:`SerialTransport`
is a pyserial port; the simulated board (:mod:`hwgen.fpga.simboard`) is reached through a
pseudo-terminal with the same :class:`SerialTransport`, so the code path that is tested is
the one that drives a real board.

:class:`Board` speaks the protocol (docs/protocol.md). :func:`run` encodes integer inputs
into spike words with the encoder of docs/semantics.md, runs each sample on the board,
decodes the result words into output spikes and final membranes, and compares them bit for
bit with ``hwgen.compiler.ir.reference``.
"""

import time
from dataclasses import dataclass, field

import numpy as np

from hwgen.errors import FormatError, LinkError
from hwgen.compiler.ir import LIF, Readout
from hwgen.compiler.ir import reference
from hwgen.compiler.ir.spike_words import spikes_to_chunk_words
from hwgen.gateware.core_interface import unpack_results
from hwgen.sim.compare import Mismatch

from . import protocol
from .protocol import Command, Flag, Reply, Status

DEFAULT_TIMEOUT_S = 2.0
# Longer than the board's request timeout (hwgen.fpga.board.DEFAULT_TIMEOUT_S), so that a board
# stuck in a half-received request has given up on it before the driver tries again.
RESYNC_PAUSE_S = 0.3


class SerialTransport:
    """A serial port through pyserial (``port`` may also be a pyserial URL)."""

    def __init__(self, port, baud, timeout=DEFAULT_TIMEOUT_S):
        import serial
        self.name = port
        try:
            self.port = serial.serial_for_url(port, baudrate=baud, timeout=timeout,
                                              write_timeout=timeout)
        except (serial.SerialException, ValueError, OSError) as error:
            raise LinkError(f"{port}: cannot open the serial port ({error})") from None

    def write(self, data):
        import serial
        try:
            self.port.write(data)
            self.port.flush()
        except (serial.SerialException, OSError) as error:
            raise LinkError(f"{self.name}: write failed ({error})") from None

    def read(self, count):
        import serial
        try:
            return self.port.read(count)
        except (serial.SerialException, OSError) as error:
            raise LinkError(f"{self.name}: read failed ({error})") from None

    def discard_input(self):
        self.port.reset_input_buffer()

    def close(self):
        self.port.close()


class Board:
    """One board running an hwgen bitstream, behind ``transport``."""

    def __init__(self, transport, *, done_timeout=10.0):
        self.transport = transport
        self.done_timeout = done_timeout

    def request(self, command, payload=b"", length=0):
        """Send one request; return the response payload (``length`` bytes)."""
        command = Command(command)
        self.transport.write(bytes([protocol.REQUEST_SYNC, command]) + bytes(payload))
        header = self.transport.read(2)
        if len(header) < 2:
            raise LinkError(f"no response from the board to {command.name} (is the board "
                            f"programmed with this build, and is this its UART?)")
        if header[0] != protocol.RESPONSE_SYNC:
            raise LinkError(f"the board answered {command.name} with byte 0x{header[0]:02x}, "
                            f"not a response (0x{protocol.RESPONSE_SYNC:02x}): wrong baud rate "
                            f"or not an hwgen bitstream?")
        if header[1] != Reply.OK:
            meaning = protocol.REPLY_MEANING.get(header[1], f"status 0x{header[1]:02x}")
            raise LinkError(f"the board refused {command.name}: {meaning}")
        body = self.transport.read(length) if length else b""
        if len(body) < length:
            raise LinkError(f"the board sent {len(body)} of the {length} bytes of its "
                            f"{command.name} response")
        return body

    def status(self):
        body = self.request(Command.STATUS, length=protocol.STATUS_LENGTH)
        try:
            return Status.unpack(body)
        except ValueError as error:
            raise LinkError(f"the board's status is not an hwgen status ({error})") from None

    def reset(self):
        self.request(Command.RESET)

    def connect(self, spec=None, attempts=3):
        """Synchronise with the board, check it runs ``spec``'s design, reset its core."""
        for attempt in range(attempts):
            self.transport.discard_input()
            try:
                status = self.status()
                break
            except LinkError:
                if attempt == attempts - 1:
                    raise
                time.sleep(RESYNC_PAUSE_S)
        if status.version != protocol.VERSION:
            raise LinkError(f"the board speaks protocol version {status.version}; this hwgen "
                            f"speaks {protocol.VERSION}")
        if spec is not None:
            board = (status.timesteps, status.inputs, status.outputs, status.v_bits,
                     status.design_id)
            # The board counts the core's words: T_c bits, every neuron of every time chunk.
            ours = (spec.time_chunk, spec.input_words, spec.result_words, spec.v_bits,
                    spec.design_id)
            if board != ours:
                raise LinkError(
                    f"the board runs a different design (id 0x{status.design_id:08x}, "
                    f"{status.timesteps}-bit words, {status.inputs} input words, "
                    f"{status.outputs} result words) than {spec.directory} (id "
                    f"0x{spec.design_id:08x}, {spec.time_chunk}-bit words, {spec.input_words} "
                    f"input words, {spec.result_words} result words): flash it first")
        self.reset()
        return status

    def infer(self, words, spec):
        """Run one inference on packed input ``words``; return (result words, cycles)."""
        self.request(Command.LOAD, protocol.pack_words(words, spec.input_bytes))
        self.request(Command.START)
        deadline = time.monotonic() + self.done_timeout
        while True:
            flags = self.status().flags
            if Flag.DONE in flags and Flag.BUSY not in flags:
                break
            if time.monotonic() > deadline:
                raise LinkError(f"the inference did not finish within {self.done_timeout:g} s "
                                f"(status flags {flags!r})")
        body = self.request(Command.RESULTS, length=spec.result_words * spec.result_bytes)
        results = protocol.unpack_words(body, spec.result_bytes)
        cycles = int.from_bytes(self.request(Command.CYCLES, length=protocol.CYCLES_LENGTH),
                                "little")
        return results, cycles


def output_lif(model):
    """The neuron op (LIF, or a last LI) whose spikes and membranes the core returns (the
    readout's source)."""
    for op in model.ops:
        if isinstance(op, Readout):
            return model[model.inputs_of(op.name)[0]]
    lifs = [op for op in model.ops if isinstance(op, LIF)]
    if not lifs:
        raise FormatError(f"model {model.name!r} has no LIF layer to read out")
    return lifs[-1]


@dataclass
class RunReport:
    samples: int
    cycles: list = field(default_factory=list)
    predictions: list = field(default_factory=list)
    mismatched_samples: list = field(default_factory=list)
    mismatches: list = field(default_factory=list)      # the first few
    accuracy: float = None
    seconds: float = 0.0

    @property
    def bit_exact(self):
        return not self.mismatched_samples

    def to_json(self):
        cycles = np.array(self.cycles)
        return {"samples": self.samples, "bit_exact": self.bit_exact,
                "mismatched_samples": self.mismatched_samples,
                "first_mismatches": [m.describe() for m in self.mismatches],
                "cycles": {"mean": float(cycles.mean()), "min": int(cycles.min()),
                           "max": int(cycles.max())} if len(cycles) else None,
                "predictions": self.predictions, "accuracy": self.accuracy,
                "seconds": round(self.seconds, 3)}


def check_model(spec, model):
    out = output_lif(model)
    inputs = int(np.prod(model.input.shape))            # shaped inputs stream in C order
    expected = (spec.timesteps, spec.inputs, spec.outputs, spec.v_bits)
    found = (model.timesteps, inputs, model.infer()[out.name].size, out.v_bits)
    if expected != found:
        raise FormatError(f"{spec.model_path}: the model (T={found[0]}, {found[1]} inputs, "
                          f"{found[2]} outputs, v_bits={found[3]}) does not match "
                          f"{spec.directory}/manifest.json (T={expected[0]}, {expected[1]} "
                          f"inputs, {expected[2]} outputs, v_bits={expected[3]})")
    return out


def run(board, spec, model, inputs, labels=None, progress=None, max_reported=10):
    """Run every sample of ``inputs`` on ``board`` and compare with the reference."""
    out = check_model(spec, model)
    readout = next((op.mode for op in model.ops if isinstance(op, Readout)), "spike_count")
    spikes_in = reference.encode(model, inputs)
    # The core may stop after a time chunk (early exit): the reference then stops with it.
    trace = reference.run(model, inputs, early_exit=spec.early_exit,
                          time_chunk=spec.time_chunk)
    expected_spikes = trace.spikes[out.name]
    expected_membranes = trace.membranes[out.name]
    report = RunReport(samples=len(spikes_in))
    started = time.monotonic()
    for sample in range(len(spikes_in)):
        words, cycles = board.infer(
            spikes_to_chunk_words(spikes_in[sample], spec.time_chunk).tolist(), spec)
        spikes, membranes = unpack_results(words, spec.timesteps, spec.v_bits,
                                           spec.time_chunk)
        report.cycles.append(cycles)
        report.predictions.append(int(np.argmax(
            membranes if readout == "final_membrane" else spikes.sum(axis=0))))
        differ = False
        for step, neuron in zip(*np.nonzero(spikes != expected_spikes[sample])):
            differ = True
            if len(report.mismatches) < max_reported:
                report.mismatches.append(Mismatch(
                    sample, out.name, int(neuron), int(step),
                    int(expected_spikes[sample][step, neuron]), int(spikes[step, neuron])))
        for neuron in np.nonzero(membranes != expected_membranes[sample])[0]:
            differ = True
            if len(report.mismatches) < max_reported:
                report.mismatches.append(Mismatch(
                    sample, out.name, int(neuron), what="final membrane differs from the reference",
                    expected=int(expected_membranes[sample][neuron]), got=int(membranes[neuron])))
        if differ:
            report.mismatched_samples.append(sample)
        if progress:
            progress(sample + 1)
    report.seconds = time.monotonic() - started
    if labels is not None:
        report.accuracy = reference.accuracy(np.array(report.predictions), labels)
    return report
