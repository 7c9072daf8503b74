"""Python models of the two boards as the programmers see them through their FTDI chips.

No board is attached in CI, so hwgen's programmers (hwgen.fpga.ice40_programmer,
hwgen.fpga.ecp5_programmer) are tested against these models at the byte level: each
model takes exactly the bytes pyftdi's ``Ftdi.write_data`` would send and answers what
``read_data_bytes`` would return.

* :class:`SpiNorFlash`: a W25Q128-class flash, starting in deep power-down, erased to
  0xFF, with the write-enable latch, busy polling, page wrap-around and program-as-AND of
  the real part.
* :class:`MpsseIce40Board`: an FT2232H interpreting the MPSSE commands of AN_108 that
  iceprog uses, wired to an iCE40 (CRESET_B, CDONE, SPI slave configuration) and a flash.
* :class:`BitbangEcp5Board`: an FT231X in synchronous bit-bang mode (each byte written is
  sampled before it is applied), wired to an ECP5's TAP (IEEE 1149.1 state machine, 8-bit
  IR, the sysCONFIG instructions the programmer uses, the LSC_PROG_SPI bridge to a flash).

A configuration "boots" when the stream holds its family's sync word (iCE40 0x7EAA997E,
ECP5 0xBDB3); that is all these models check of a bitstream's content.
"""

ICE40_SYNC = b"\x7e\xaa\x99\x7e"
ECP5_SYNC = b"\xbd\xb3"
ECP5_85F_IDCODE = 0x41113043


class SpiNorFlash:
    """One SPI flash: ``select()``; per byte, ``drive()`` (what it puts on MISO during the
    next byte; no side effect) then ``receive(byte)``; ``deselect()`` (commands take
    effect then)."""

    def __init__(self, size=16 << 20, busy_polls=3):
        self.memory = bytearray(b"\xff" * size)
        self.asleep = True
        self.write_enabled = False
        self.busy = 0
        self.busy_polls = busy_polls
        self.log = []                       # commands received, in order
        self._bytes = None

    def select(self):
        self._bytes = bytearray()

    def _address(self):
        return int.from_bytes(self._bytes[1:4], "big")

    def drive(self):
        data = self._bytes
        if not data or self.asleep:
            return 0xFF
        command = data[0]
        if command == 0x9F:
            return (b"\xef\x40\x18" + b"\x00" * 64)[len(data) - 1]
        if command == 0x05:
            return (1 if self.busy else 0) | (2 if self.write_enabled else 0)
        if command == 0x03 and len(data) >= 4:
            return self.memory[(self._address() + len(data) - 4) % len(self.memory)]
        return 0xFF

    def receive(self, byte):
        self._bytes.append(byte)

    def deselect(self):
        data, self._bytes = bytes(self._bytes), None
        if not data:
            return
        command = data[0]
        self.log.append(command)
        if self.asleep:
            if command == 0xAB:
                self.asleep = False
            return
        if command == 0x05:
            self.busy = max(0, self.busy - 1)     # each status read brings the end nearer
            return
        if self.busy:
            raise AssertionError(f"command 0x{command:02x} sent while the flash is busy")
        if command == 0x06:
            self.write_enabled = True
        elif command == 0xB9:
            self.asleep = True
        elif command in (0xD8, 0x02):
            if not self.write_enabled:
                raise AssertionError(f"command 0x{command:02x} without write enable")
            self.write_enabled = False
            self.busy = self.busy_polls
            address = int.from_bytes(data[1:4], "big")
            if command == 0xD8:
                start = address - address % (64 << 10)
                self.memory[start:start + (64 << 10)] = b"\xff" * (64 << 10)
            else:
                page = address - address % 256
                for i, byte in enumerate(data[4:]):
                    at = page + (address + i) % 256
                    self.memory[at] &= byte

    def exchange(self, out):
        """A whole transaction at once (for tests of the flash algorithm alone)."""
        self.select()
        answer = bytearray()
        for byte in out:
            answer.append(self.drive())
            self.receive(byte)
        self.deselect()
        return bytes(answer)


class MpsseIce40Board:
    """An iCEBreaker as its FT2232H interface A: ``write_data`` / ``read_data_bytes``."""

    CS, CDONE, CRESET = 1 << 4, 1 << 6, 1 << 7

    def __init__(self, flash=None):
        self.flash = flash or SpiNorFlash()
        self.pins = self.CS | self.CRESET
        self.cdone = False
        self.sram = None                  # bytes received in SPI slave configuration
        self.extra_clocks = 0
        self.booted_from = None
        self._out = bytearray()
        self._pending = b""

    def _set_pins(self, value):
        was = self.pins
        self.pins = value
        select_fell = was & self.CS and not value & self.CS
        select_rose = not was & self.CS and value & self.CS
        reset_rose = not was & self.CRESET and value & self.CRESET
        if not value & self.CRESET:
            self.cdone = False
            self.sram = None
        if reset_rose:
            if value & self.CS:                 # boot from flash
                self.cdone = ICE40_SYNC in self.flash.memory[:1 << 20]
                self.booted_from = "flash" if self.cdone else None
            else:                               # SPI slave configuration
                self.sram, self.extra_clocks = bytearray(), 0
        elif self.sram is None and value & self.CRESET == 0:
            if select_fell:
                self.flash.select()
            elif select_rose:
                self.flash.deselect()

    def _exchange(self, data, read):
        for byte in data:
            if self.pins & self.CRESET and self.sram is not None:
                self.sram.append(byte)
                answer = 0xFF
            elif not self.pins & self.CS and not self.pins & self.CRESET:
                answer = self.flash.drive()
                self.flash.receive(byte)
            else:
                answer = 0xFF
            if read:
                self._out.append(answer)

    def _clocks(self, count):
        if self.sram is not None:
            self.extra_clocks += count
            if self.extra_clocks >= 49 and ICE40_SYNC in self.sram:
                self.cdone = True
                self.booted_from = "sram"

    def write_data(self, data):
        stream = self._pending + bytes(data)
        at = 0
        while at < len(stream):
            op = stream[at]
            if op in (0x80,):
                if at + 3 > len(stream):
                    break
                if stream[at + 2] != 0x93:
                    raise AssertionError(f"direction 0x{stream[at + 2]:02x}, not 0x93")
                self._set_pins(stream[at + 1])
                at += 3
            elif op in (0x11, 0x31):
                if at + 3 > len(stream):
                    break
                length = stream[at + 1] + (stream[at + 2] << 8) + 1
                if at + 3 + length > len(stream):
                    break
                self._exchange(stream[at + 3:at + 3 + length], read=op == 0x31)
                at += 3 + length
            elif op == 0x81:
                self._out.append((self.pins & ~self.CDONE) | (self.CDONE if self.cdone else 0))
                at += 1
            elif op == 0x87:
                at += 1
            elif op == 0x8F:
                if at + 3 > len(stream):
                    break
                self._clocks((stream[at + 1] + (stream[at + 2] << 8) + 1) * 8)
                at += 3
            elif op == 0x8E:
                if at + 2 > len(stream):
                    break
                self._clocks(stream[at + 1] + 1)
                at += 2
            else:
                raise AssertionError(f"MPSSE command 0x{op:02x} is not one iceprog uses")
        self._pending = stream[at:]
        return len(data)

    def read_data_bytes(self, size, attempt=1):
        answer, self._out = bytes(self._out[:size]), self._out[size:]
        return bytearray(answer)


# IEEE 1149.1 TAP states and their successors for TMS = 0 / 1.
TAP = {
    "reset": ("idle", "reset"), "idle": ("idle", "select_dr"),
    "select_dr": ("capture_dr", "select_ir"), "capture_dr": ("shift_dr", "exit1_dr"),
    "shift_dr": ("shift_dr", "exit1_dr"), "exit1_dr": ("pause_dr", "update_dr"),
    "pause_dr": ("pause_dr", "exit2_dr"), "exit2_dr": ("shift_dr", "update_dr"),
    "update_dr": ("idle", "select_dr"),
    "select_ir": ("capture_ir", "reset"), "capture_ir": ("shift_ir", "exit1_ir"),
    "shift_ir": ("shift_ir", "exit1_ir"), "exit1_ir": ("pause_ir", "update_ir"),
    "pause_ir": ("pause_ir", "exit2_ir"), "exit2_ir": ("shift_ir", "update_ir"),
    "update_ir": ("idle", "select_dr"),
}


class Ecp5Tap:
    """An ECP5's TAP: the instructions of hwgen.fpga.ecp5_programmer, and a flash behind
    LSC_PROG_SPI."""

    def __init__(self, flash=None, idcode=ECP5_85F_IDCODE):
        self.flash = flash or SpiNorFlash()
        self.idcode = idcode
        self.state = "reset"
        self.ir = 0xE0
        self.shift = []                 # the register being shifted, bit 0 first out
        self.enabled = False            # ISC_ENABLE
        self.erased = False
        self.done = False
        self.sram = None                # bytes of the bitstream burst
        self.bridge = False             # LSC_PROG_SPI unlocked
        self.history = []               # instructions loaded, in order
        self._burst_bits = []
        self._spi_bits = []
        self._dr_in = []

    def status(self):
        return (1 << 8 if self.done else 0) | (1 << 9 if self.enabled else 0)

    def _capture_dr(self):
        values = {0xE0: (self.idcode, 32), 0x3C: (self.status(), 32)}
        value, length = values.get(self.ir, (0, 1))
        self.shift = [(value >> i) & 1 for i in range(length)]
        self._dr_in = []
        if self.ir == 0x3A and self.bridge:
            self.flash.select()
            self._spi_bits = []
            self._spi_byte = self.flash.drive()

    def _update_dr(self):
        bits = self._dr_in
        value = sum(b << i for i, b in enumerate(bits))
        if self.ir == 0xC6 and len(bits) == 8:
            self.enabled = True
            self.done = False
        elif self.ir == 0x0E and value & 1 and self.enabled:
            self.erased, self.sram = True, None
        elif self.ir == 0x3A and not self.bridge and len(bits) == 16 and value == 0x68FE:
            if not self.erased:
                raise AssertionError("LSC_PROG_SPI before the SRAM was erased")
            self.bridge = True
        elif self.ir == 0x79 and len(bits) == 24:
            self.done = ECP5_SYNC in self.flash.memory[:1 << 20]
            self.enabled = False

    def _update_ir(self, instruction):
        self.ir = instruction
        self.history.append(instruction)
        if instruction != 0x3A:
            self.bridge = False
        if instruction == 0x7A:
            if not (self.enabled and self.erased):
                raise AssertionError("LSC_BITSTREAM_BURST outside ISC_ENABLE + ISC_ERASE")
            self._burst_bits = []
        if instruction == 0x26:
            if self._burst_bits:
                self.sram = bytes(int("".join(map(str, self._burst_bits[i:i + 8])), 2)
                                  for i in range(0, len(self._burst_bits) // 8 * 8, 8))
                self._burst_bits = []
            self.done = self.sram is not None and ECP5_SYNC in self.sram
            self.enabled = False

    def tdo(self):
        if self.state in ("shift_dr", "shift_ir"):
            if self.state == "shift_dr" and self.ir == 0x3A and self.bridge:
                return (self._spi_byte >> (7 - len(self._spi_bits) % 8)) & 1
            return self.shift[0] if self.shift else 0
        return 1

    def clock(self, tms, tdi):
        """A rising edge of TCK."""
        state = self.state
        if state == "shift_dr":
            self._dr_in.append(tdi)
            if self.ir == 0x7A:
                self._burst_bits.append(tdi)
            elif self.ir == 0x3A and self.bridge:
                self._spi_bits.append(tdi)
                if len(self._spi_bits) % 8 == 0:
                    self.flash.receive(int("".join(map(str, self._spi_bits[-8:])), 2))
                    self._spi_byte = self.flash.drive()
            self.shift = self.shift[1:] + [tdi]
        elif state == "shift_ir":
            self.shift = self.shift[1:] + [tdi]
        self.state = TAP[state][tms]
        if self.state == "reset":
            self.ir = 0xE0
        elif self.state == "capture_dr":
            self._capture_dr()
        elif self.state == "capture_ir":
            self.shift = [1, 0, 0, 0, 0, 0, 0, 0]
        elif self.state == "exit1_dr" and self.ir == 0x3A and self.bridge:
            self.flash.deselect()
        elif self.state == "update_dr":
            self._update_dr()
        elif self.state == "update_ir":
            self._update_ir(sum(b << i for i, b in enumerate(self.shift)))


class BitbangEcp5Board:
    """A ULX3S as its FT231X in synchronous bit-bang mode."""

    TCK, TMS, TDI, TDO = 1 << 5, 1 << 6, 1 << 7, 1 << 3

    def __init__(self, tap=None):
        self.tap = tap or Ecp5Tap()
        self.pins = 0
        self._tdo = 1
        self._out = bytearray()
        self.bytes_written = 0

    def write_data(self, data):
        for byte in bytes(data):
            # sync bit-bang: the pins are sampled, then the byte is applied
            self._out.append((self.pins & ~self.TDO) | (self.TDO if self._tdo else 0))
            rising = byte & self.TCK and not self.pins & self.TCK
            falling = not byte & self.TCK and self.pins & self.TCK
            self.pins = byte
            if rising:
                self.tap.clock(1 if byte & self.TMS else 0, 1 if byte & self.TDI else 0)
            if falling:
                self._tdo = self.tap.tdo()
        self.bytes_written += len(data)
        return len(data)

    def read_data_bytes(self, size, attempt=1):
        answer, self._out = bytes(self._out[:size]), self._out[size:]
        return bytearray(answer)
