"""The ULX3S programmer, bit for bit, against a model of its FT231X bit-bang port and the
ECP5's TAP (tests/support/board_models.py): SRAM loading, the flash through LSC_PROG_SPI,
and their errors."""

import random

import pytest

from board_models import BitbangEcp5Board, Ecp5Tap
from hwgen.fpga.ecp5_programmer import Ecp5Error, Ecp5Programmer, bitstream_idcode
from hwgen.fpga.jtag import BitbangCable, Jtag

# ecppack's start: comment, preamble 0xBDB3, LSC_RESET_CRC (0x3B), VERIFY_ID (0xE2) + IDCODE.
HEADER = (b"\xff\x00Part: LFE5U-85F-6CABGA381\x00\xff\xff\xff\xbd\xb3\xff\xff\xff\xff"
          b"\x3b\x00\x00\x00\xe2\x00\x00\x00")


def bitstream(size, idcode=0x41113043):
    generator = random.Random(size)
    return HEADER + idcode.to_bytes(4, "big") + bytes(generator.getrandbits(8)
                                                     for _ in range(size))


def programmer(board, data):
    return Ecp5Programmer(Jtag(BitbangCable(board)), expect_idcode=bitstream_idcode(data),
                          sleep=lambda s: None)


def test_the_idcode_of_a_bitstream():
    assert bitstream_idcode(bitstream(10)) == 0x41113043
    assert bitstream_idcode(b"\xff" * 100) is None


def test_sram_loading():
    board = BitbangEcp5Board()
    data = bitstream(5000)
    programmer(board, data).load_sram(data)
    assert board.tap.sram == data
    assert board.tap.done
    # ujprog's order: IDCODE, PRELOAD, ENABLE, ERASE, STATUS, INIT_ADDRESS, BURST, ...
    # BYPASS, DISABLE, BYPASS, STATUS
    assert board.tap.history == [0xE0, 0x1C, 0xC6, 0x0E, 0x3C, 0x46, 0x7A, 0xFF, 0x26, 0xFF,
                                 0x3C]
    assert board.tap.flash.log == []
    # each TCK cycle is two bit-bang bytes
    assert board.bytes_written > 2 * 8 * len(data)


def test_a_bitstream_for_another_part():
    board = BitbangEcp5Board(Ecp5Tap(idcode=0x41111043))
    data = bitstream(100)
    with pytest.raises(Ecp5Error, match=r"the board's FPGA is a LFE5U-25F \(IDCODE 0x41111043\); "
                                        r"the bitstream is for IDCODE 0x41113043"):
        programmer(board, data).load_sram(data)


def test_no_ecp5_on_the_chain():
    board = BitbangEcp5Board(Ecp5Tap(idcode=0x12345679))
    with pytest.raises(Ecp5Error, match=r"JTAG IDCODE 0x12345679 is not an ECP5's"):
        programmer(board, bitstream(10)).load_sram(bitstream(10))


def test_a_bitstream_the_ecp5_rejects():
    board = BitbangEcp5Board()
    data = bitstream(100).replace(b"\xbd\xb3", b"\x00\x00")
    with pytest.raises(Ecp5Error, match=r"did not start from the bitstream \(status "
                                        r"0x00000000: DONE clear, FAIL clear\)"):
        programmer(board, data).load_sram(data)


def test_flash_through_the_jtag_bridge():
    board = BitbangEcp5Board()
    data = bitstream(1500)
    programmer(board, data).write_flash(data)
    assert board.tap.flash.memory[:len(data)] == data
    assert board.tap.done                       # booted from the flash by LSC_REFRESH
    assert board.tap.history[-5:] == [0xFF, 0x26, 0xFF, 0x79, 0x3C]
    assert 0x3A in board.tap.history and board.tap.sram is None
