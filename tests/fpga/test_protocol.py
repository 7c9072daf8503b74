"""The protocol constants and byte layouts shared by the gateware and the host."""

import pytest

from hwgen.fpga import protocol
from hwgen.fpga.protocol import Command, Flag, Reply, Status


def test_status_round_trip_and_length():
    status = Status(protocol.VERSION, Flag.DONE | Flag.PENDING, 8, 10, 64, 10, 0xDEADBEEF)
    packed = status.pack()
    assert len(packed) == protocol.STATUS_LENGTH == 14
    assert packed[:3] == b"HG\x01" and packed[3] == 0x0C
    assert Status.unpack(packed) == status
    with pytest.raises(ValueError, match="status starts with b'XX'"):
        Status.unpack(b"XX" + packed[2:])


def test_codes_are_distinct_and_printable():
    assert len({c.value for c in Command}) == len(Command)
    assert all(chr(c).isalpha() for c in Command)
    assert protocol.REQUEST_SYNC not in {c.value for c in Command}
    assert set(protocol.REPLY_MEANING) == set(Reply)
    assert all(bin(f.value).count("1") == 1 for f in Flag)


@pytest.mark.parametrize("timesteps, v_bits, word, result", [
    (1, 2, 1, 1), (8, 10, 1, 3), (9, 7, 2, 2), (16, 16, 2, 4), (4, 12, 1, 2)])
def test_word_sizes(timesteps, v_bits, word, result):
    assert protocol.input_bytes(timesteps) == word
    assert protocol.result_bytes(timesteps, v_bits) == result


def test_words_are_little_endian():
    data = protocol.pack_words([0x0102, 0xFFEE], 2)
    assert data == b"\x02\x01\xee\xff"
    assert protocol.unpack_words(data, 2) == [0x0102, 0xFFEE]


def test_design_id_is_the_sha256_prefix():
    # sha256(b"") = e3b0c442...
    assert protocol.design_id(b"") == 0x42C4B0E3
