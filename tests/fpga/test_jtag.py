"""The JTAG master and its bit-bang cable, against the ECP5 TAP model."""

import numpy as np

from board_models import BitbangEcp5Board
from hwgen.fpga.jtag import (BitbangCable, Jtag, bits_of, bytes_from_msb_first,
                             bytes_msb_first, value_of)


def test_bit_orders():
    assert list(bits_of(0b1101, 4)) == [1, 0, 1, 1]
    assert value_of(bits_of(0x41113043, 32)) == 0x41113043
    assert list(bytes_msb_first(b"\x80\x01")) == [1] + [0] * 14 + [1]
    assert bytes_from_msb_first(bytes_msb_first(b"\x12\xfe")) == b"\x12\xfe"


def test_reading_idcode_walks_the_tap_back_to_idle():
    board = BitbangEcp5Board()
    jtag = Jtag(BitbangCable(board))
    jtag.reset()
    assert board.tap.state == "idle"
    captured = jtag.shift_ir(0xE0)
    assert list(captured[:2]) == [1, 0]           # IEEE 1149.1: the IR captures ...01
    assert value_of(jtag.shift_dr(np.zeros(32, dtype=np.uint8))) == 0x41113043
    assert board.tap.state == "idle"
    # a shift split over two calls is one shift
    jtag.shift_ir(0x3C)
    first = jtag.shift_dr(np.zeros(8, dtype=np.uint8), stay=True)
    assert board.tap.state == "shift_dr"
    rest = jtag.continue_dr(np.zeros(24, dtype=np.uint8))
    assert board.tap.state == "idle"
    assert value_of(np.concatenate([first, rest])) == board.tap.status()


def test_the_cable_exchanges_in_chunks_the_ft231x_can_buffer():
    class Recorder(BitbangEcp5Board):
        sizes = []

        def write_data(self, data):
            self.sizes.append(len(data))
            return super().write_data(data)

    board = Recorder()
    BitbangCable(board).clock(np.zeros(1000, np.uint8), np.zeros(1000, np.uint8))
    assert max(board.sizes) <= 256 and sum(board.sizes) == 2000
