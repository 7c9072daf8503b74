"""``python -m hwgen.fpga.ftdi_programmer``: the glue between pyftdi and the board
sequences (a pyftdi ``Ftdi`` stand-in wired to the board models), and its errors."""

import random
import subprocess
import sys

import pytest

from board_models import ICE40_SYNC, BitbangEcp5Board, MpsseIce40Board
from hwgen.fpga import ftdi_programmer


@pytest.fixture
def boards(monkeypatch):
    """pyftdi's Ftdi replaced by one that reaches the board models; returns what was opened."""
    opened = []

    class StandInFtdi:
        def open_mpsse_from_url(self, url, direction, initial, frequency):
            assert initial == 0x90, "chip select and CRESET_B start high"
            opened.append(("mpsse", url, direction, frequency))
            self.board = MpsseIce40Board()

        def open_bitbang_from_url(self, url, direction, latency, baudrate, sync):
            assert sync, "TDO is read from synchronous bit-bang samples"
            opened.append(("bitbang", url, direction, baudrate))
            self.board = BitbangEcp5Board()

        def write_data(self, data):
            return self.board.write_data(data)

        def read_data_bytes(self, size, attempt=1):
            return self.board.read_data_bytes(size, attempt)

        def close(self):
            opened.append(("closed", self.board))

    import pyftdi.ftdi
    monkeypatch.setattr(pyftdi.ftdi, "Ftdi", StandInFtdi)
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    return opened


def test_the_icebreaker_flash(boards, capsys):
    data = b"\xff\x00\x00\xff" + ICE40_SYNC + random.Random(1).randbytes(3000)
    ftdi_programmer.program("icebreaker", data, log=print)
    kind, url, direction, frequency = boards[0]
    assert (kind, url, direction, frequency) == ("mpsse", "ftdi://0x0403:0x6010/1", 0x93, 6e6)
    board = boards[-1][1]
    assert board.flash.memory[:len(data)] == data and board.booted_from == "flash"
    out = capsys.readouterr()
    assert "writing 3008 bytes to the icebreaker's flash" in out.out
    assert "done: the FPGA is running the bitstream" in out.out
    assert "verify: 100 %" in out.err


def test_the_ulx3s_sram(boards):
    data = (b"\xff\xff\xbd\xb3\xff\xff\xff\xff\x3b\x00\x00\x00\xe2\x00\x00\x00"
            b"\x41\x11\x30\x43" + bytes(500))
    ftdi_programmer.program("ulx3s-85f", data, volatile=True, url="ftdi://0x0403:0x6015/2",
                            log=lambda text: None)
    assert boards[0] == ("bitbang", "ftdi://0x0403:0x6015/2", 0xE0, 1_000_000)
    assert boards[-1][1].tap.sram == data and boards[-1][1].tap.done


def test_the_command_line_errors(tmp_path):
    def run(*args):
        result = subprocess.run([sys.executable, "-m", ftdi_programmer.MODULE, *map(str, args)],
                                capture_output=True, text=True, timeout=120)
        return result.returncode, result.stderr.strip().splitlines()[-1]

    assert run("--board", "icebreaker", tmp_path / "none.bin") == (
        1, f"Error: {tmp_path / 'none.bin'}: No such file or directory")
    (tmp_path / "empty.bin").write_bytes(b"")
    assert run("--board", "icebreaker", tmp_path / "empty.bin") == (
        1, f"Error: {tmp_path / 'empty.bin'}: empty bitstream")
    (tmp_path / "b.bin").write_bytes(b"\xff")
    code, message = run("--board", "ulx3s-85f", "--url", "ftdi://0x0403:0x6015/3",
                        tmp_path / "b.bin")
    # no FTDI chip is attached here (and none may be in CI): the phrase hwgen flash looks for
    assert code == 1 and message.startswith("Error: no device found at ftdi://0x0403:0x6015/3")
    code, message = run("--board", "de10", tmp_path / "b.bin")
    assert code == 2 and "invalid choice: 'de10'" in message


def test_a_device_that_cannot_be_opened(monkeypatch):
    import pyftdi.ftdi
    from usb.core import USBError

    from hwgen.errors import HwgenError

    class Refusing:
        error = None

        def open_bitbang_from_url(self, *args, **kwargs):
            raise self.error

        def close(self):
            pass

    monkeypatch.setattr(pyftdi.ftdi, "Ftdi", Refusing)
    Refusing.error = pyftdi.ftdi.FtdiError("device busy")
    with pytest.raises(HwgenError, match=r"^cannot open ftdi://0x0403:0x6015/1: device busy$"):
        ftdi_programmer.program("ulx3s-85f", b"\xff", volatile=True)
    Refusing.error = USBError("Access denied (insufficient permissions)")
    with pytest.raises(HwgenError, match=r"insufficient permissions\) \(add a udev rule for the "
                                         r"FTDI chip, see docs/flashing.md\)$"):
        ftdi_programmer.program("ulx3s-85f", b"\xff", volatile=True)
