"""The UART protocol between a host and a board running hwgen: constants and byte layouts.

This module is the single definition of the protocol (docs/protocol.md describes it for
people). The gateware (:mod:`hwgen.fpga.engine`) and the host driver (:mod:`hwgen.fpga.driver`) both
build on the constants and helpers here, so the two sides cannot drift apart.

A request is ``REQUEST_SYNC, command, payload``; a response is ``RESPONSE_SYNC, status,
payload``, where the payload is present only when the status is :data:`OK`. Payload
lengths follow from the command and the design (the status response tells the host the
design's dimensions). Multi-byte integers are little-endian.
"""

import enum
import hashlib
import struct
from dataclasses import dataclass

VERSION = 1

REQUEST_SYNC = 0x5A
RESPONSE_SYNC = 0xA5

# The status response starts with these two bytes ("HG").
MAGIC = b"HG"


class Command(enum.IntEnum):
    """Request command bytes (ASCII letters, so a capture of the link is readable)."""

    STATUS = ord("S")    # -> STATUS_LENGTH bytes, see Status
    LOAD = ord("L")      # K input words of input_bytes(T) bytes -> nothing
    START = ord("G")     # -> nothing; the inference runs
    RESULTS = ord("R")   # -> N result words of result_bytes(T, v_bits) bytes
    CYCLES = ord("C")    # -> 4 bytes, the last inference's cycle count
    RESET = ord("X")     # -> nothing; resets the core and clears the error flag


class Reply(enum.IntEnum):
    """Response status bytes."""

    OK = 0x00
    UNKNOWN_COMMAND = 0x01   # the command byte is not a Command
    BAD_STATE = 0x02         # the command is not allowed now (see docs/protocol.md)
    RX_ERROR = 0x03          # a framing error or overrun on the link; frame dropped, core reset
    TIMEOUT = 0x04           # a frame stalled for longer than the timeout; core reset


REPLY_MEANING = {
    Reply.OK: "ok",
    Reply.UNKNOWN_COMMAND: "unknown command",
    Reply.BAD_STATE: "command not allowed in the board's current state",
    Reply.RX_ERROR: "the board saw a UART framing error or overrun and dropped the request",
    Reply.TIMEOUT: "the board timed out waiting for the rest of the request",
}


class Flag(enum.IntFlag):
    """Bits of the status byte."""

    LOADED = 0x01     # K input words are loaded; START may run them
    BUSY = 0x02       # the core is running an inference
    DONE = 0x04       # the core's `done`: the last inference finished
    PENDING = 0x08    # an inference was started and its results are not read yet
    ERROR = 0x10      # an RX error or timeout happened since the last STATUS (cleared by it)


# STATUS payload: magic, version, flags, T, v_bits, K, N, design id.
STATUS_FORMAT = "<2sBBBBHHI"
STATUS_LENGTH = struct.calcsize(STATUS_FORMAT)
CYCLES_LENGTH = 4


def input_bytes(timesteps):
    """Bytes per input word on the link: the T-bit packed spike word, little-endian."""
    return (timesteps + 7) // 8


def result_bytes(timesteps, v_bits):
    """Bytes per result word: the core's (T + v_bits)-bit result, little-endian."""
    return (timesteps + v_bits + 7) // 8


def design_id(verilog_bytes):
    """A 32-bit identity of a design: the first 4 bytes of the SHA-256 of its Verilog.

    The board reports it in STATUS, so the host can tell that the board runs the build
    directory it was given.
    """
    return int.from_bytes(hashlib.sha256(verilog_bytes).digest()[:4], "little")


@dataclass(frozen=True)
class Status:
    """A decoded STATUS payload."""

    version: int
    flags: Flag
    timesteps: int
    v_bits: int
    inputs: int
    outputs: int
    design_id: int

    def pack(self):
        return struct.pack(STATUS_FORMAT, MAGIC, self.version, int(self.flags),
                           self.timesteps, self.v_bits, self.inputs, self.outputs,
                           self.design_id)

    @classmethod
    def unpack(cls, payload):
        magic, version, flags, t, v_bits, k, n, ident = struct.unpack(STATUS_FORMAT, payload)
        if magic != MAGIC:
            raise ValueError(f"status starts with {magic!r}, not {MAGIC!r}")
        return cls(version, Flag(flags), t, v_bits, k, n, ident)


def pack_words(words, width_bytes):
    """Integers -> concatenated little-endian words of ``width_bytes`` bytes each."""
    return b"".join(int(w).to_bytes(width_bytes, "little") for w in words)


def unpack_words(data, width_bytes):
    """Concatenated little-endian words -> list of integers."""
    return [int.from_bytes(data[i:i + width_bytes], "little")
            for i in range(0, len(data), width_bytes)]
