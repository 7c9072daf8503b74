"""The host driver against a scripted transport: framing, decoding, every link error.
(tests/fpga/test_cosim.py runs it against the simulated board.)"""

import numpy as np
import pytest

from hwgen.compiler.ir.spike_words import spikes_to_words
from hwgen.errors import FormatError, LinkError
from hwgen.fpga import driver, protocol
from hwgen.fpga.core import CoreSpec
from hwgen.fpga.protocol import Command, Flag, Reply, Status
from hwgen.gateware.core_interface import unpack_results

from fpga_standin import standin_model


class ScriptedTransport:
    """Answers each request with the next scripted response; records what was written."""

    def __init__(self, *responses, default=None):
        self.responses = list(responses)
        self.default = default
        self.written = []
        self.pending = b""
        self.discarded = 0

    def write(self, data):
        self.written.append(bytes(data))
        if self.responses:
            self.pending += self.responses.pop(0)
        elif self.default is not None:
            self.pending += self.default

    def read(self, count):
        data, self.pending = self.pending[:count], self.pending[count:]
        return data

    def discard_input(self):
        self.discarded += 1
        self.pending = b""

    def close(self):
        pass


def ok(payload=b""):
    return bytes([protocol.RESPONSE_SYNC, Reply.OK]) + payload


def status_bytes(spec, flags=Flag(0), **changes):
    fields = dict(version=protocol.VERSION, flags=flags, timesteps=spec.timesteps,
                  v_bits=spec.v_bits, inputs=spec.inputs, outputs=spec.outputs,
                  design_id=spec.design_id)
    fields.update(changes)
    return ok(Status(**fields).pack())


@pytest.fixture
def spec(standin_build):
    return CoreSpec.load(standin_build)


def test_connect_checks_the_design_and_resets(spec):
    transport = ScriptedTransport(status_bytes(spec), ok())
    status = driver.Board(transport).connect(spec)
    assert status.inputs == spec.inputs
    assert transport.written == [bytes([0x5A, Command.STATUS]), bytes([0x5A, Command.RESET])]


def test_connect_retries_after_garbage(spec, monkeypatch):
    monkeypatch.setattr(driver, "RESYNC_PAUSE_S", 0)
    transport = ScriptedTransport(b"\x00", status_bytes(spec), ok())
    driver.Board(transport).connect(spec)
    assert transport.discarded == 2


@pytest.mark.parametrize("changes, message", [
    ({"design_id": 7}, "the board runs a different design (id 0x00000007"),
    ({"inputs": 3}, "3 input words"),
    ({"version": 9}, "the board speaks protocol version 9; this hwgen speaks 1"),
])
def test_connect_refuses_another_design(spec, changes, message):
    transport = ScriptedTransport(status_bytes(spec, **changes))
    with pytest.raises(LinkError) as error:
        driver.Board(transport).connect(spec)
    assert message in str(error.value)


def test_infer_frames_the_requests_and_decodes(spec):
    words = [1, 2, 3, 4, 5, 0xFF]
    results = [0x0101, 0x3FFF, 0, 0x1234, 7, 8]
    transport = ScriptedTransport(
        ok(), ok(), status_bytes(spec, Flag.BUSY | Flag.PENDING),
        status_bytes(spec, Flag.DONE | Flag.PENDING),
        ok(protocol.pack_words(results, 2)), ok((1234).to_bytes(4, "little")))
    got, cycles = driver.Board(transport).infer(words, spec)
    assert got == results and cycles == 1234
    assert transport.written[0] == bytes([0x5A, Command.LOAD, 1, 2, 3, 4, 5, 0xFF])
    assert transport.written[1] == bytes([0x5A, Command.START])
    assert transport.written[4] == bytes([0x5A, Command.RESULTS])
    assert transport.written[5] == bytes([0x5A, Command.CYCLES])


@pytest.mark.parametrize("response, message", [
    (b"", "no response from the board to STATUS (is the board programmed with this build, "
          "and is this its UART?)"),
    (b"\x41\x42", "the board answered STATUS with byte 0x41, not a response (0xa5): wrong baud "
                  "rate or not an hwgen bitstream?"),
    (bytes([0xA5, Reply.BAD_STATE]), "the board refused STATUS: command not allowed in the "
                                     "board's current state"),
    (bytes([0xA5, Reply.TIMEOUT]), "the board refused STATUS: the board timed out waiting for "
                                   "the rest of the request"),
    (bytes([0xA5, 0x77]), "the board refused STATUS: status 0x77"),
    (ok(b"HG\x01"), "the board sent 3 of the 14 bytes of its STATUS response"),
    (ok(b"XX" + bytes(12)), "the board's status is not an hwgen status (status starts with "
                            "b'XX', not b'HG')"),
])
def test_link_errors(response, message):
    with pytest.raises(LinkError) as error:
        driver.Board(ScriptedTransport(response)).status()
    assert str(error.value) == message


def test_an_inference_that_never_finishes(spec):
    busy = status_bytes(spec, Flag.BUSY | Flag.PENDING)
    transport = ScriptedTransport(ok(), ok(), default=busy)
    with pytest.raises(LinkError, match="the inference did not finish within 0.05 s"):
        driver.Board(transport, done_timeout=0.05).infer([0] * 6, spec)


def test_pack_and_decode():
    spikes = np.array([[1, 0, 1], [0, 0, 1], [1, 1, 1]], dtype=np.uint8)    # (T=3, K=3)
    assert spikes_to_words(spikes).tolist() == [0b101, 0b100, 0b111]
    spikes, membranes = unpack_results([0b011_101, 0b100_000, 0b111_111], 3, 3)
    assert spikes[:, 0].tolist() == [1, 0, 1] and spikes[:, 1].tolist() == [0, 0, 0]
    assert membranes.tolist() == [3, -4, -1]


def test_run_compares_with_the_reference(spec):
    """A scripted board that answers like the stand-in core, except for one wrong bit."""
    from fpga_standin import standin_results
    model = standin_model()
    inputs = np.array([[0, 1, 2, 3, 4, 4], [4, 3, 2, 1, 0, 0]])
    encoded = driver.reference.encode(model, inputs)
    responses = []
    for sample in range(2):
        results = standin_results(spikes_to_words(encoded[sample]).tolist(), 8, 6)
        if sample == 1:
            results[2] ^= 1 << 9                      # a membrane bit of neuron 2
        responses += [ok(), ok(), status_bytes(spec, Flag.DONE | Flag.PENDING),
                      ok(protocol.pack_words(results, 2)), ok((7).to_bytes(4, "little"))]
    report = driver.run(driver.Board(ScriptedTransport(*responses)), spec, model, inputs,
                        labels=np.array([4, 0]))
    assert report.mismatched_samples == [1] and not report.bit_exact
    [mismatch] = report.mismatches
    assert (mismatch.sample, mismatch.neuron, mismatch.step) == (1, 2, None)
    assert mismatch.describe().startswith("sample 1, layer 'lif', neuron 2: final membrane "
                                          "differs from the reference (expected ")
    assert report.cycles == [7, 7] and report.predictions == [4, 0] and report.accuracy == 1.0


def test_a_model_that_does_not_match_the_build(spec):
    with pytest.raises(FormatError, match="the model \\(T=8, 7 inputs, 7 outputs, v_bits=6\\) "
                                          "does not match .*manifest.json \\(T=8, 6 inputs"):
        driver.check_model(spec, standin_model(neurons=7))


def test_serial_port_that_does_not_exist(tmp_path):
    with pytest.raises(LinkError, match=f"{tmp_path / 'ttyUSB9'}: cannot open the serial port"):
        driver.SerialTransport(str(tmp_path / "ttyUSB9"), 115200)
