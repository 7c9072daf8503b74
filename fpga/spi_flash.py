"""Writing a bitstream into a board's SPI NOR flash, whatever carries the SPI bus.

Both boards boot from a standard SPI NOR flash (W25Q128 class: JEDEC commands 0x9F, 0x06,
0x05, 0xD8, 0x02, 0x03). The iCEBreaker's FTDI drives that bus directly (MPSSE,
:mod:`hwgen.fpga.ice40_programmer`); on the ULX3S the ECP5 bridges JTAG to it
(:mod:`hwgen.fpga.ecp5_programmer`). Both hand :class:`SpiFlash` one function,
``transfer(out) -> bytes``: one transaction with chip select held for its whole length,
full duplex, as many bytes back as went out.

The sequence is iceprog's: wake the chip, erase the 64 KB blocks the image covers, program
256-byte pages (pages of 0xFF are skipped: erased flash already reads so), then read the
whole image back and compare.
"""

import time

from hwgen.errors import HwgenError

PAGE = 256
BLOCK = 64 * 1024

READ_ID, WRITE_ENABLE, READ_STATUS = 0x9F, 0x06, 0x05
BLOCK_ERASE, PAGE_PROGRAM, READ, RELEASE_POWER_DOWN = 0xD8, 0x02, 0x03, 0xAB
STATUS_BUSY, STATUS_WRITE_ENABLED = 0x01, 0x02
# A 64 KB block erase takes up to 2 s on a W25Q128; a page up to 3 ms.
ERASE_TIMEOUT_S, PROGRAM_TIMEOUT_S = 5.0, 0.5
READ_CHUNK = 4096


class FlashError(HwgenError):
    """The flash did not do what it was told (no chip, write-protected, verify failed)."""


class SpiFlash:
    """Commands of a JEDEC SPI NOR flash over ``transfer`` (see the module docstring)."""

    def __init__(self, transfer, *, sleep=time.sleep, clock=time.monotonic):
        self._transfer = transfer
        self._sleep = sleep
        self._clock = clock

    def wake(self):
        """Leave deep power-down (a no-op for a chip that is awake)."""
        self._transfer(bytes([RELEASE_POWER_DOWN]))

    def jedec_id(self):
        """Manufacturer, memory type and capacity bytes; refuses a missing chip (a floating
        or shorted data line reads as all ones or all zeros)."""
        answer = bytes(self._transfer(bytes([READ_ID, 0, 0, 0]))[1:])
        if answer in (b"\xff\xff\xff", b"\x00\x00\x00"):
            raise FlashError(f"no SPI flash answers (JEDEC ID {answer.hex()}); is the board "
                             f"powered, and not held by another program?")
        return answer

    def status(self):
        return self._transfer(bytes([READ_STATUS, 0]))[1]

    def write_enable(self):
        self._transfer(bytes([WRITE_ENABLE]))
        if not self.status() & STATUS_WRITE_ENABLED:
            raise FlashError("the SPI flash refused write-enable (write-protected?)")

    def wait(self, timeout, what):
        deadline = self._clock() + timeout
        while self.status() & STATUS_BUSY:
            if self._clock() > deadline:
                raise FlashError(f"the SPI flash stayed busy for {timeout} s after {what}")
            self._sleep(0.001)

    def erase_block(self, address):
        self.write_enable()
        self._transfer(bytes([BLOCK_ERASE, *address.to_bytes(3, "big")]))
        self.wait(ERASE_TIMEOUT_S, f"erasing the block at 0x{address:06x}")

    def program_page(self, address, data):
        if len(data) > PAGE - address % PAGE:
            raise ValueError(f"program_page: {len(data)} bytes cross the page at "
                             f"0x{address:06x}")
        self.write_enable()
        self._transfer(bytes([PAGE_PROGRAM, *address.to_bytes(3, "big")]) + bytes(data))
        self.wait(PROGRAM_TIMEOUT_S, f"programming the page at 0x{address:06x}")

    def read(self, address, length):
        out = bytearray()
        while len(out) < length:
            size = min(READ_CHUNK, length - len(out))
            at = address + len(out)
            answer = self._transfer(bytes([READ, *at.to_bytes(3, "big")]) + bytes(size))
            out += answer[4:]
        return bytes(out)

    def write_image(self, image, *, offset=0, progress=None):
        """Erase, program and verify ``image`` at ``offset``. ``progress(step, done,
        total)`` is called as each step advances (steps: "erase", "write", "verify")."""
        image = bytes(image)
        report = progress or (lambda step, done, total: None)
        self.wake()
        self.jedec_id()
        first, end = offset - offset % BLOCK, offset + len(image)
        blocks = range(first, end, BLOCK)
        for index, address in enumerate(blocks):
            report("erase", index, len(blocks))
            self.erase_block(address)
        report("erase", len(blocks), len(blocks))
        at = 0
        while at < len(image):
            size = min(PAGE - (offset + at) % PAGE, len(image) - at)
            page = image[at:at + size]
            if page.count(0xFF) != len(page):
                self.program_page(offset + at, page)
            at += size
            report("write", at, len(image))
        back = self.read(offset, len(image))
        report("verify", len(image), len(image))
        if back != image:
            where = next(i for i, (a, b) in enumerate(zip(back, image)) if a != b)
            raise FlashError(f"verify failed: the flash holds 0x{back[where]:02x} at "
                             f"0x{offset + where:06x}, the bitstream 0x{image[where]:02x}")
