"""PLL settings and instances for the board tops: iCE40 SB_PLL40_PAD and ECP5 EHXPLLL.

The parameter searches follow the limits that icepll and ecppll (the project IceStorm and
Trellis helpers) use, so a frequency they accept is accepted here with the same dividers.
A frequency no setting reaches within 1 % is refused with the nearest one named.
"""

from dataclasses import dataclass

from amaranth import Const, Instance

from hwgen.errors import ConfigError

TOLERANCE = 0.01


@dataclass(frozen=True)
class Ice40PLL:
    """SB_PLL40 in SIMPLE feedback: f_out = f_in * (DIVF + 1) / ((DIVR + 1) * 2**DIVQ)."""

    f_in: float
    divr: int
    divf: int
    divq: int
    filter_range: int

    @property
    def f_out(self):
        return self.f_in * (self.divf + 1) / ((self.divr + 1) * 2 ** self.divq)

    def instance(self, pad, clk_out, lock):
        """An SB_PLL40_PAD fed directly by the clock ``pad`` (an IO port)."""
        return Instance("SB_PLL40_PAD",
                        p_FEEDBACK_PATH="SIMPLE",
                        p_DIVR=Const(self.divr, 4), p_DIVF=Const(self.divf, 7),
                        p_DIVQ=Const(self.divq, 3), p_FILTER_RANGE=Const(self.filter_range, 3),
                        i_PACKAGEPIN=pad, i_RESETB=Const(1), i_BYPASS=Const(0),
                        o_PLLOUTGLOBAL=clk_out, o_LOCK=lock)


def ice40_pll(f_in, f_out):
    """The SB_PLL40 setting closest to ``f_out`` from ``f_in`` (both in Hz)."""
    best = None
    for divr in range(16):
        f_pfd = f_in / (divr + 1)
        if not 10e6 <= f_pfd <= 133e6:
            continue
        for divf in range(128):
            f_vco = f_pfd * (divf + 1)
            if not 533e6 <= f_vco <= 1066e6:
                continue
            for divq in range(1, 7):
                candidate = f_vco / 2 ** divq
                if not 16e6 <= candidate <= 275e6:          # PLLOUT range of the datasheet
                    continue
                if best is None or abs(candidate - f_out) < abs(best[0] - f_out):
                    best = (candidate, divr, divf, divq, f_pfd)
    return _check(f_in, f_out, best, lambda c, divr, divf, divq, f_pfd: Ice40PLL(
        f_in, divr, divf, divq, _ice40_filter(f_pfd)), "iCE40")


def _ice40_filter(f_pfd):
    for limit, value in ((17e6, 1), (26e6, 2), (44e6, 3), (66e6, 4), (101e6, 5)):
        if f_pfd < limit:
            return value
    return 6


@dataclass(frozen=True)
class Ecp5PLL:
    """EHXPLLL with CLKOP feedback: f_out = f_in * CLKFB_DIV / CLKI_DIV."""

    f_in: float
    clki_div: int
    clkfb_div: int
    clkop_div: int

    @property
    def f_out(self):
        return self.f_in * self.clkfb_div / self.clki_div

    def instance(self, clk_in, clk_out, lock):
        return Instance("EHXPLLL",
                        a_FREQUENCY_PIN_CLKI=f"{self.f_in / 1e6:g}",
                        a_FREQUENCY_PIN_CLKOP=f"{self.f_out / 1e6:g}",
                        a_ICP_CURRENT="12", a_LPF_RESISTOR="8",
                        a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
                        p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED",
                        p_STDBY_ENABLE="DISABLED", p_DPHASE_SOURCE="DISABLED",
                        p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
                        p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
                        p_CLKI_DIV=self.clki_div, p_CLKOP_ENABLE="ENABLED",
                        p_CLKOP_DIV=self.clkop_div, p_CLKOP_CPHASE=(self.clkop_div - 1) // 2,
                        p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP", p_CLKFB_DIV=self.clkfb_div,
                        i_RST=Const(0), i_STDBY=Const(0), i_CLKI=clk_in, o_CLKOP=clk_out,
                        i_CLKFB=clk_out, i_PHASESEL0=Const(0), i_PHASESEL1=Const(0),
                        i_PHASEDIR=Const(1), i_PHASESTEP=Const(1), i_PHASELOADREG=Const(1),
                        i_PLLWAKESYNC=Const(0), i_ENCLKOP=Const(0), o_LOCK=lock)


def ecp5_pll(f_in, f_out):
    """The EHXPLLL setting closest to ``f_out`` from ``f_in`` (both in Hz)."""
    best = None
    for clki_div in range(1, 129):
        f_pfd = f_in / clki_div
        if not 3.125e6 <= f_pfd <= 400e6:
            continue
        for clkfb_div in range(1, 81):
            candidate = f_pfd * clkfb_div
            if candidate > 400e6:
                break
            # The VCO (f_out * CLKOP_DIV) must be within 400..800 MHz.
            clkop_div = next((d for d in range(1, 129) if 400e6 <= candidate * d <= 800e6),
                             None)
            if clkop_div is None:
                continue
            if best is None or abs(candidate - f_out) < abs(best[0] - f_out):
                best = (candidate, clki_div, clkfb_div, clkop_div)
    return _check(f_in, f_out, best, lambda c, i, fb, op: Ecp5PLL(f_in, i, fb, op), "ECP5")


def _check(f_in, f_out, best, make, family):
    if best is None or abs(best[0] - f_out) > TOLERANCE * f_out:
        nearest = f"; the nearest is {best[0] / 1e6:.3f} MHz" if best else ""
        raise ConfigError(f"the {family} PLL cannot make {f_out / 1e6:g} MHz from "
                          f"{f_in / 1e6:g} MHz within {TOLERANCE:.0%}{nearest}")
    return make(*best)

