"""SpiFlash: the erase / program / verify sequence against a model of the chip, and every
error it raises."""

import random

import pytest

from board_models import SpiNorFlash
from hwgen.fpga.spi_flash import FlashError, SpiFlash


def image(size, seed=1):
    generator = random.Random(seed)
    data = bytearray(generator.getrandbits(8) for _ in range(size))
    data[300:300 + 2 * 256] = b"\xff" * 512          # two whole erased pages
    return bytes(data)


@pytest.mark.parametrize("offset", [0, 0x10000 + 100])
def test_an_image_is_erased_programmed_and_verified(offset):
    chip = SpiNorFlash()
    chip.memory[0:4] = b"\x00\x00\x00\x00"           # stale content the erase must clear
    data = image(70_000)
    steps = []
    SpiFlash(chip.exchange, sleep=lambda s: None).write_image(
        data, offset=offset, progress=lambda step, done, total: steps.append((step, done)))
    assert chip.memory[offset:offset + len(data)] == data
    assert not chip.asleep
    # the erased blocks are those the image touches; around it the flash reads as erased
    assert chip.memory[offset - offset % 0x10000:offset] == b"\xff" * (offset % 0x10000)
    pages = sum(1 for command in chip.log if command == 0x02)
    touched = range(offset // 256, (offset + len(data) - 1) // 256 + 1)
    # pages that are all 0xFF are skipped: the image's two erased pages, where aligned
    assert pages < len(touched)
    assert steps[-1] == ("verify", len(data))
    assert ("erase", 0) in steps and ("write", len(data)) in steps


def test_a_page_never_crosses_a_page_boundary():
    chip = SpiNorFlash()
    flash = SpiFlash(chip.exchange, sleep=lambda s: None)
    flash.wake()
    with pytest.raises(ValueError, match="cross the page at 0x0000f0"):
        flash.program_page(0xF0, bytes(32))


def test_no_chip():
    with pytest.raises(FlashError, match=r"no SPI flash answers \(JEDEC ID ffffff\)"):
        SpiFlash(lambda out: b"\xff" * len(out)).write_image(b"\x01")


def test_a_write_protected_chip():
    chip = SpiNorFlash()
    chip.exchange(b"\xab")

    def ignoring_write_enable(out):
        return chip.exchange(b"\x00" if out[0] == 0x06 else out)

    with pytest.raises(FlashError, match="refused write-enable"):
        SpiFlash(ignoring_write_enable).write_image(b"\x01")


def test_a_chip_that_stays_busy():
    chip = SpiNorFlash(busy_polls=10**9)
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    with pytest.raises(FlashError, match="stayed busy for 5.0 s after erasing the block at "
                                         "0x000000"):
        SpiFlash(chip.exchange, sleep=sleep, clock=lambda: now[0]).write_image(b"\x01")


def test_verify_names_the_first_wrong_byte():
    chip = SpiNorFlash()

    def stuck_bit(out):
        answer = bytearray(chip.exchange(out))
        if out[0] == 0x03 and len(answer) > 4 + 5:
            answer[4 + 5] &= 0x7F                 # byte 5 of the image reads back wrong
        return bytes(answer)

    with pytest.raises(FlashError, match="verify failed: the flash holds 0x7f at 0x000005, "
                                         "the bitstream 0xff"):
        SpiFlash(stuck_bit, sleep=lambda s: None).write_image(b"\x00" * 5 + b"\xff" + b"\x00")
