"""Programming an ECP5 over JTAG: its configuration SRAM, or the SPI flash it boots from.

The sequences are those of ujprog (fujprog), the ULX3S's own programmer, which writes
them out as SVF (its ``-s`` option), and of Lattice's sysCONFIG guide (TN1260):

* SRAM: check IDCODE, LSC_PRELOAD, ISC_ENABLE, ISC_ERASE, check status, LSC_INIT_ADDRESS,
  LSC_BITSTREAM_BURST and the bitstream in one DR shift (each byte most significant bit
  first), ISC_DISABLE; then the status register must show DONE and no FAIL.
* Flash: ISC_ENABLE and ISC_ERASE (the FPGA lets go of the flash), then LSC_PROG_SPI with
  its unlock key bridges JTAG to the SPI flash: each DR shift is one SPI transaction, chip
  select held while in Shift-DR, bytes most significant bit first.
  :class:`~hwgen.fpga.spi_flash.SpiFlash` writes and verifies the image; ISC_DISABLE and
  LSC_REFRESH then boot the FPGA from it.
"""

import time

import numpy as np

from .jtag import bits_of, bytes_from_msb_first, bytes_msb_first, value_of
from .spi_flash import FlashError, SpiFlash

IDCODE, LSC_PRELOAD, ISC_ENABLE, ISC_ERASE = 0xE0, 0x1C, 0xC6, 0x0E
LSC_READ_STATUS, LSC_INIT_ADDRESS, LSC_BITSTREAM_BURST = 0x3C, 0x46, 0x7A
ISC_DISABLE, BYPASS, LSC_PROG_SPI, LSC_REFRESH = 0x26, 0xFF, 0x3A, 0x79
PROG_SPI_KEY = 0x68FE           # shifted LSB first: 0xFE, then 0x68

STATUS_DONE, STATUS_FAIL = 1 << 8, 1 << 13
# ujprog's masks: after ISC_ENABLE nothing of 0x24040 may be set; after ISC_ERASE nothing of
# 0xB000 (busy, fail, and bit 15, the erase error).
ERASE_ERRORS = 0xB000

ECP5_IDCODES = {0x21111043: "LFE5U-12F", 0x41111043: "LFE5U-25F", 0x41112043: "LFE5U-45F",
                0x41113043: "LFE5U-85F", 0x01111043: "LFE5UM-25F", 0x01112043: "LFE5UM-45F",
                0x01113043: "LFE5UM-85F", 0x81111043: "LFE5UM5G-25F",
                0x81112043: "LFE5UM5G-45F", 0x81113043: "LFE5UM5G-85F"}
BURST_CHUNK_BYTES = 4096


def bitstream_idcode(bitstream):
    """The IDCODE an ecppack bitstream checks (its VERIFY_ID command, 0xE2, after the
    0xBDB3 preamble), or None if it has none."""
    data = bytes(bitstream[:4096])
    at = data.find(b"\xbd\xb3")
    while at >= 0:
        if data[at + 10:at + 14] == b"\xe2\x00\x00\x00" and len(data) >= at + 18:
            return int.from_bytes(data[at + 14:at + 18], "big")
        at = data.find(b"\xbd\xb3", at + 1)
    return None


class Ecp5Error(FlashError):
    """The ECP5 refused a step (wrong part, erase failed, DONE never rose)."""


class Ecp5Programmer:
    """SRAM loading and flash writing for the one ECP5 on a :class:`~hwgen.fpga.jtag.Jtag`
    chain (the ULX3S has no other device on it)."""

    def __init__(self, jtag, *, expect_idcode=None, sleep=time.sleep):
        self._jtag = jtag
        self._expect = expect_idcode
        self._sleep = sleep

    def _command(self, instruction, data=None, length=8, idle=2):
        self._jtag.shift_ir(instruction)
        if data is not None:
            self._jtag.shift_dr(bits_of(data, length))
        self._jtag.idle(idle)

    def read_register(self, instruction, length=32):
        self._jtag.shift_ir(instruction)
        value = value_of(self._jtag.shift_dr(np.zeros(length, dtype=np.uint8)))
        self._jtag.idle(2)
        return value

    def status(self):
        return self.read_register(LSC_READ_STATUS)

    def identify(self):
        """The part's IDCODE, checked against the ECP5 family (and the board's part)."""
        self._jtag.reset()
        idcode = self.read_register(IDCODE)
        if idcode not in ECP5_IDCODES:
            raise Ecp5Error(f"JTAG IDCODE 0x{idcode:08x} is not an ECP5's (is the board "
                            f"plugged in and powered?)")
        if self._expect is not None and idcode != self._expect:
            raise Ecp5Error(f"the board's FPGA is a {ECP5_IDCODES[idcode]} (IDCODE "
                            f"0x{idcode:08x}); the bitstream is for IDCODE 0x{self._expect:08x}")
        return idcode

    def _enter_configuration(self):
        self._command(LSC_PRELOAD)
        self._jtag.shift_dr(np.ones(510, dtype=np.uint8))
        self._command(ISC_ENABLE, 0x00, idle=2)
        self._sleep(0.01)
        self._command(ISC_ERASE, 0x01, idle=32)
        self._sleep(0.1)
        status = self.status()
        if status & ERASE_ERRORS:
            raise Ecp5Error(f"erasing the configuration SRAM failed (status 0x{status:08x})")

    def _leave_configuration(self):
        self._command(BYPASS, idle=100)
        self._command(ISC_DISABLE, idle=2)
        self._sleep(0.002)
        self._command(BYPASS, idle=2)

    def _require_done(self, failure):
        """The status must show DONE and not FAIL; else ``failure``, with the status."""
        status = self.status()
        if status & (STATUS_DONE | STATUS_FAIL) != STATUS_DONE:
            raise Ecp5Error(f"{failure} (status 0x{status:08x}: DONE "
                            f"{'set' if status & STATUS_DONE else 'clear'}, FAIL "
                            f"{'set' if status & STATUS_FAIL else 'clear'})")

    def load_sram(self, bitstream, progress=None):
        """Load ``bitstream`` (an ecppack .bit) into configuration SRAM; lost at power-off."""
        report = progress or (lambda step, done, total: None)
        self.identify()
        self._enter_configuration()
        self._command(LSC_INIT_ADDRESS, 0x01)
        self._command(LSC_BITSTREAM_BURST)
        data = bytes(bitstream)
        for at in range(0, len(data), BURST_CHUNK_BYTES):
            bits = bytes_msb_first(data[at:at + BURST_CHUNK_BYTES])
            last = at + BURST_CHUNK_BYTES >= len(data)
            (self._jtag.shift_dr if at == 0 else self._jtag.continue_dr)(bits, stay=not last)
            report("load", min(at + BURST_CHUNK_BYTES, len(data)), len(data))
        self._leave_configuration()
        self._require_done("the ECP5 did not start from the bitstream")

    def _spi_transfer(self, out):
        """One SPI transaction through LSC_PROG_SPI's bridge (chip select is held while
        the TAP is in Shift-DR)."""
        return bytes_from_msb_first(self._jtag.shift_dr(bytes_msb_first(out)))

    def write_flash(self, bitstream, progress=None):
        """Write ``bitstream`` to the SPI flash, verify it, and boot the FPGA from it."""
        self.identify()
        self._enter_configuration()
        self._jtag.reset()
        self._command(BYPASS, idle=32)
        self._command(LSC_PROG_SPI, PROG_SPI_KEY, length=16, idle=32)
        SpiFlash(self._spi_transfer, sleep=self._sleep).write_image(bitstream,
                                                                    progress=progress)
        self._leave_configuration()
        self._command(LSC_REFRESH, 0, length=24, idle=2)
        self._sleep(0.1)
        self._require_done("the flash holds the bitstream (verified), but the ECP5 did not "
                           "boot from it")
