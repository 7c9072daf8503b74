"""Errors every hwgen package raises for bad input.

Each carries a one-line message that names the file, node or parameter at fault and what
is wrong with it. The CLI prints that line and exits with status 1; anything that is not an
:class:`HwgenError` is a bug in hwgen and keeps its traceback.
"""


class HwgenError(Exception):
    """Bad input: a one-line, user-facing message."""


class ModelError(HwgenError):
    """A model violates the IR's rules (shapes, widths, attributes)."""


class FormatError(HwgenError):
    """A file is not in the format it claims to be, or is damaged."""


class ConfigError(HwgenError):
    """A hardware configuration value is missing, unknown or out of range."""


class FitError(HwgenError):
    """A model does not fit the chosen hardware configuration or device."""


class TimingError(HwgenError):
    """A design does not meet the requested clock frequency on the chosen device."""


class UnsupportedError(HwgenError):
    """A model uses an operation or attribute hwgen cannot (yet) run."""


class ToolchainError(HwgenError):
    """An external tool is missing or failed."""


class InputError(HwgenError):
    """Input data (samples) do not match what the model expects."""


class LinkError(HwgenError):
    """The link to a board (serial port, protocol) failed or the board misbehaved."""


class MismatchError(HwgenError):
    """Hardware results differ from the integer reference."""


class OutputError(HwgenError):
    """An output path cannot be written (the file system refused), or replacing it would
    destroy files that are not hwgen's."""
