"""Command-line number types that refuse what click's own accept: NaN and infinities pass
``float`` and every ``FloatRange`` comparison, and would reach a timeout or a time step."""

import math

import click


class PositiveFinite(click.ParamType):
    """A float that is finite and > 0 (at most ``maximum``)."""

    name = "float"

    def __init__(self, maximum=None):
        self.maximum = maximum

    def convert(self, value, param, ctx):
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number) or number <= 0:
            self.fail(f"{value!r} must be a finite number greater than 0", param, ctx)
        if self.maximum is not None and number > self.maximum:
            self.fail(f"{value!r} must be at most {self.maximum:g}", param, ctx)
        return number
