"""A JTAG master over a bit-banged FTDI cable: what the ULX3S's programmer speaks.

The ULX3S has no JTAG adapter chip: its FT231X USB UART wires four of its modem pins to
the ECP5's JTAG port (the pins ujprog, the board's own programmer, and OpenOCD's ULX3S
configuration use: TCK = DSR, TMS = DCD, TDI = RI, TDO = CTS). :class:`BitbangCable` drives
them in synchronous bit-bang mode, two bytes per TCK cycle (clock low, then clock high:
the target samples TMS and TDI on the rising edge), and reads TDO from the sample the
FTDI takes just before each rising edge. :class:`Jtag` walks the TAP state machine on top.

Bits are numpy arrays of 0/1, first shifted first; registers are shifted LSB first, so
``shift_dr(bits_of(value, n))`` sends ``value`` as a JTAG register is sent.
"""

import numpy as np

# FT231X bit-bang pins (bit n of the bit-bang byte): TXD 0, RXD 1, RTS 2, CTS 3, DTR 4,
# DSR 5, DCD 6, RI 7.
ULX3S_PINS = {"tck": 1 << 5, "tms": 1 << 6, "tdi": 1 << 7, "tdo": 1 << 3}
# Sync bit-bang returns one byte per byte written, into a 512-byte receive buffer on the
# FT231X; writing more before reading would stall the chip, so exchanges are chunked.
CHUNK_BYTES = 256


def bits_of(value, length):
    """``length`` bits of ``value``, LSB first."""
    return np.array([(value >> i) & 1 for i in range(length)], dtype=np.uint8)


def value_of(bits):
    """The integer whose bits, LSB first, are ``bits``."""
    return sum(int(bit) << i for i, bit in enumerate(bits))


def bytes_msb_first(data):
    """Bits of ``data``, each byte most significant bit first (SPI's order and the order an
    ECP5 reads its bitstream in)."""
    return np.unpackbits(np.frombuffer(bytes(data), dtype=np.uint8))


def bytes_from_msb_first(bits):
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes()


class BitbangCable:
    """JTAG on four pins of an FTDI chip in synchronous bit-bang mode.

    ``ftdi`` is an open :class:`pyftdi.ftdi.Ftdi` (or anything with its ``write_data`` and
    ``read_data_bytes``). Throughput: two USB bytes per TCK cycle, exchanged
    :data:`CHUNK_BYTES` at a time.
    """

    def __init__(self, ftdi, pins=ULX3S_PINS):
        self._ftdi = ftdi
        self._tck, self._tms, self._tdi, self._tdo = (pins[k] for k in ("tck", "tms", "tdi",
                                                                         "tdo"))

    @property
    def direction(self):
        """The pins the host drives (for opening the port)."""
        return self._tck | self._tms | self._tdi

    def clock(self, tms, tdi):
        """One TCK cycle per element of ``tms`` / ``tdi``; the TDO bit of each cycle."""
        tms = np.asarray(tms, dtype=np.uint8)
        tdi = np.asarray(tdi, dtype=np.uint8)
        low = (tms * self._tms) | (tdi * self._tdi)
        pairs = np.empty(2 * len(low), dtype=np.uint8)
        pairs[0::2] = low
        pairs[1::2] = low | self._tck
        data = pairs.tobytes()
        samples = bytearray()
        for at in range(0, len(data), CHUNK_BYTES):
            chunk = data[at:at + CHUNK_BYTES]
            self._ftdi.write_data(chunk)
            answer = self._ftdi.read_data_bytes(len(chunk), attempt=64)
            if len(answer) != len(chunk):
                raise IOError(f"the FTDI returned {len(answer)} of {len(chunk)} bit-bang "
                              f"samples")
            samples += answer
        sampled = np.frombuffer(bytes(samples), dtype=np.uint8)[1::2]
        return ((sampled & self._tdo) != 0).astype(np.uint8)


class Jtag:
    """The TAP state machine, from Run-Test/Idle to Run-Test/Idle (IEEE 1149.1)."""

    def __init__(self, cable):
        self._cable = cable

    def _walk(self, tms):
        self._cable.clock(tms, np.zeros(len(tms), dtype=np.uint8))

    def reset(self):
        """Test-Logic-Reset (five TMS=1 clocks from anywhere), then Run-Test/Idle."""
        self._walk([1, 1, 1, 1, 1, 0])

    def idle(self, cycles):
        self._walk(np.zeros(cycles, dtype=np.uint8))

    def _shift(self, header, bits, stay):
        """From Run-Test/Idle through ``header`` into Shift-xR, shift ``bits``, then back to
        Run-Test/Idle (or stay in Shift-xR, for a shift continued by the next call)."""
        bits = np.asarray(bits, dtype=np.uint8)
        tms = np.zeros(len(bits), dtype=np.uint8)
        if not stay:
            tms[-1] = 1                             # the last bit leaves for Exit1
        lead = np.array(header, dtype=np.uint8)
        tail = np.array([] if stay else [1, 0], dtype=np.uint8)   # Update, Run-Test/Idle
        tdo = self._cable.clock(np.concatenate([lead, tms, tail]),
                                np.concatenate([np.zeros(len(lead), np.uint8), bits,
                                                np.zeros(len(tail), np.uint8)]))
        return tdo[len(lead):len(lead) + len(bits)]

    def shift_ir(self, instruction, length=8):
        """Load ``instruction``; returns the bits captured (LSB first)."""
        return self._shift([1, 1, 0, 0], bits_of(instruction, length), stay=False)

    def shift_dr(self, bits, *, stay=False):
        """Shift ``bits`` through the selected data register; returns what came out."""
        return self._shift([1, 0, 0], bits, stay)

    def continue_dr(self, bits, *, stay=False):
        """Carry on a shift that :meth:`shift_dr` left in Shift-DR."""
        return self._shift([], bits, stay)
