"""Bit layouts of the words the compiler writes and the hardware reads.

One definition serves both sides: the compiler packs memory images with
:meth:`BitLayout.pack`, and the generator turns the same field list into an Amaranth
``StructLayout`` (``hwgen.layouts``), so the two cannot drift apart.
"""

from dataclasses import dataclass

from ..errors import FitError


@dataclass(frozen=True)
class Field:
    name: str
    width: int
    signed: bool = False


class BitLayout:
    """Fields packed from bit 0 upwards, in order."""

    def __init__(self, name, fields):
        self.name = name
        self.fields = tuple(fields)
        offset = 0
        self.offsets = {}
        for field in self.fields:
            if field.width < 1:
                raise ValueError(f"{name}.{field.name}: width {field.width} < 1")
            self.offsets[field.name] = offset
            offset += field.width
        self.width = offset

    def __getitem__(self, name):
        return next(f for f in self.fields if f.name == name)

    def pack(self, **values):
        word = 0
        for field in self.fields:
            value = int(values.pop(field.name, 0))
            lo = -(1 << (field.width - 1)) if field.signed else 0
            hi = (1 << (field.width - 1)) - 1 if field.signed else (1 << field.width) - 1
            if not lo <= value <= hi:
                raise FitError(f"{self.name}.{field.name} = {value} does not fit in "
                               f"{field.width} {'signed ' if field.signed else ''}bits")
            word |= (value & ((1 << field.width) - 1)) << self.offsets[field.name]
        if values:
            raise KeyError(f"{self.name} has no field(s) {', '.join(values)}")
        return word

    def unpack(self, word):
        values = {}
        for field in self.fields:
            value = (word >> self.offsets[field.name]) & ((1 << field.width) - 1)
            if field.signed and value >> (field.width - 1):
                value -= 1 << field.width
            values[field.name] = value
        return values
