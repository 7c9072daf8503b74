"""The iCEBreaker programmer, byte for byte, against a model of its FT2232H, iCE40 and
flash (tests/support/board_models.py): the flash and SRAM sequences and their errors."""

import random

import pytest

from board_models import ICE40_SYNC, MpsseIce40Board
from hwgen.fpga.ice40_programmer import Ice40Error, Ice40Programmer


def bitstream(size=70_000, sync=True):
    generator = random.Random(size)
    body = bytes(generator.getrandbits(8) for _ in range(size))
    return b"\xff\x00\x00\xff" + (ICE40_SYNC if sync else b"\x00" * 4) + body


def test_the_flash_holds_the_bitstream_and_the_fpga_boots_from_it():
    board = MpsseIce40Board()
    data = bitstream()
    steps = []
    Ice40Programmer(board, sleep=lambda s: None).write_flash(
        data, lambda step, done, total: steps.append(step))
    assert board.flash.memory[:len(data)] == data
    assert board.booted_from == "flash" and board.cdone
    assert board.pins & board.CRESET and board.pins & board.CS     # released, deselected
    # the flash starts in deep power-down: it was woken before anything else
    assert board.flash.log[0] == 0xAB and board.flash.log[1] == 0x9F
    assert {"erase", "write", "verify"} <= set(steps)


def test_a_flash_that_does_not_boot():
    board = MpsseIce40Board()
    with pytest.raises(Ice40Error, match=r"the flash holds the bitstream \(verified\), but the "
                                         r"iCE40 did not boot from it \(CDONE low\)"):
        Ice40Programmer(board, sleep=lambda s: None).write_flash(bitstream(2000, sync=False))


def test_sram_loading_leaves_the_flash_alone():
    board = MpsseIce40Board()
    data = bitstream(10_000)
    Ice40Programmer(board, sleep=lambda s: None).load_sram(data)
    assert bytes(board.sram) == data
    assert board.extra_clocks >= 49
    assert board.booted_from == "sram" and board.cdone
    assert board.flash.log == []


def test_sram_loading_that_does_not_start():
    board = MpsseIce40Board()
    with pytest.raises(Ice40Error, match="did not start from the bitstream .CDONE low.; on the "
                                         "iCEBreaker, SRAM loading needs the CRAM jumpers"):
        Ice40Programmer(board, sleep=lambda s: None).load_sram(bitstream(100, sync=False))
