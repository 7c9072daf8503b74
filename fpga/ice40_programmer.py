"""Programming an iCEBreaker (iCE40UP5K) through its FT2232H: the SPI flash, or the FPGA's
configuration SRAM directly.

iceprog's wiring and sequence, in the FT2232H's MPSSE command language (FTDI AN_108):
interface A drives SCK, MOSI (ADBUS0, 1), reads MISO (ADBUS2), and uses ADBUS4 as the chip
select, ADBUS7 as the FPGA's CRESET_B and ADBUS6 as its CDONE.

* Flash: hold the FPGA in reset (it lets go of the flash), write and verify the image with
  :class:`~hwgen.fpga.spi_flash.SpiFlash`, release reset; CDONE must rise.
* SRAM: chip select low while CRESET_B rises puts the iCE40 in SPI slave configuration;
  the bitstream follows, then 49 more clocks; CDONE must rise. On the iCEBreaker this needs
  the jumpers set for CRAM programming.
"""

import time

from .spi_flash import FlashError, SpiFlash

CS, CDONE, CRESET = 1 << 4, 1 << 6, 1 << 7
DIRECTION = 0x93                    # SCK, MOSI, CS, CRESET_B driven; MISO, CDONE read

SET_LOW_BYTE, READ_LOW_BYTE, SEND_IMMEDIATE = 0x80, 0x81, 0x87
WRITE_BYTES = 0x11                  # out on the falling edge, MSB first
EXCHANGE_BYTES = 0x31               # out on the falling edge, in on the rising, MSB first
CLOCK_BITS, CLOCK_BYTES = 0x8E, 0x8F
MAX_BYTES = 65536                   # one MPSSE data command carries at most this many
SRAM_CHUNK = 4096


class Ice40Error(FlashError):
    """The iCE40 did not configure (CDONE stayed low)."""


class Ice40Programmer:
    """iceprog's flash and SRAM sequences over an FTDI in MPSSE mode (``ftdi``: an open
    :class:`pyftdi.ftdi.Ftdi`, or anything with its ``write_data`` / ``read_data_bytes``)."""

    def __init__(self, ftdi, *, sleep=time.sleep):
        self._ftdi = ftdi
        self._sleep = sleep

    @staticmethod
    def _pins(select, run):
        return bytes([SET_LOW_BYTE, (0 if select else CS) | (CRESET if run else 0),
                      DIRECTION])

    def _read(self, count):
        answer = self._ftdi.read_data_bytes(count, attempt=64)
        if len(answer) != count:
            raise IOError(f"the FTDI returned {len(answer)} of {count} bytes")
        return bytes(answer)

    def cdone(self):
        self._ftdi.write_data(bytes([READ_LOW_BYTE, SEND_IMMEDIATE]))
        return bool(self._read(1)[0] & CDONE)

    def _transfer(self, out):
        """One flash transaction, the FPGA held in reset."""
        out = bytes(out)
        command = bytearray(self._pins(select=True, run=False))
        for at in range(0, len(out), MAX_BYTES):
            chunk = out[at:at + MAX_BYTES]
            command += bytes([EXCHANGE_BYTES, (len(chunk) - 1) & 0xFF,
                              (len(chunk) - 1) >> 8]) + chunk
        command += self._pins(select=False, run=False) + bytes([SEND_IMMEDIATE])
        self._ftdi.write_data(bytes(command))
        return self._read(len(out))

    def _require_cdone(self, failure):
        if not self.cdone():
            raise Ice40Error(failure)

    def write_flash(self, bitstream, progress=None):
        """Write ``bitstream`` to the flash, verify it, and boot the FPGA from it."""
        self._ftdi.write_data(self._pins(select=False, run=False))
        self._sleep(0.25)
        SpiFlash(self._transfer, sleep=self._sleep).write_image(bitstream, progress=progress)
        self._ftdi.write_data(self._pins(select=False, run=True))
        self._sleep(0.25)
        self._require_cdone("the flash holds the bitstream (verified), but the iCE40 did not "
                            "boot from it (CDONE low)")

    def load_sram(self, bitstream, progress=None):
        """Load ``bitstream`` into the FPGA's configuration SRAM (lost at power-off)."""
        report = progress or (lambda step, done, total: None)
        self._ftdi.write_data(self._pins(select=True, run=False))
        self._sleep(0.0001)
        self._ftdi.write_data(self._pins(select=True, run=True))
        self._sleep(0.002)
        data = bytes(bitstream)
        for at in range(0, len(data), SRAM_CHUNK):
            chunk = data[at:at + SRAM_CHUNK]
            self._ftdi.write_data(bytes([WRITE_BYTES, (len(chunk) - 1) & 0xFF,
                                         (len(chunk) - 1) >> 8]) + chunk)
            report("load", at + len(chunk), len(data))
        # 49 clocks after the last bit let the iCE40 finish and start (iCE40 programming
        # guide, TN1248); iceprog sends 6 bytes' worth and one bit.
        self._ftdi.write_data(bytes([CLOCK_BYTES, 5, 0, CLOCK_BITS, 0]))
        self._require_cdone("the iCE40 did not start from the bitstream (CDONE low); on the "
                            "iCEBreaker, SRAM loading needs the CRAM jumpers set (or drop "
                            "--volatile to write the flash)")
        self._ftdi.write_data(self._pins(select=False, run=True))
