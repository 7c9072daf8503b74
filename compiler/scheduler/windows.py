"""Padding as forced-zero masks: a border pixel calls the block of a pixel whose window it
lies within, with the window positions outside the map masked.

A convolution's output pixel at the map's border has a window that loses the padded
positions, so its run of entries (:mod:`.blocks`) differs from its interior neighbours'
and used to be stored whole, inline: on LoAS's 8 x 8 maps with 3 x 3 kernels 28 of 64
pixels. Here such a run calls a block that holds its entries and more -- a larger window
translated -- and the CALL says which window rows and columns lie inside the map
(``rows``, ``cols``: one bit each); every chunk entry of the block carries its position
in the block's window (``row``, ``col``), and the fetch forces the weight mask of an
entry whose row or column is outside to zero (:class:`hwgen.gateware.fiber_fetch.Calls`),
so it matches nothing (docs/architecture.md, "Address generation").

The match is found and **checked** on the runs themselves, not derived from the
convolution's parameters, so it holds for whatever a layer unrolled into (convolutions,
poolings, adds, dilations, groups): the run must be exactly the block's entries whose
pixel lies inside the map, translated by one chunk offset, with the same headers
(:func:`masked_match`). A chunk entry's pixel is its lowest weight bit's (an entry whose
bits lie in several pixels is checked like the rest: a partial match fails). The chunk
offset may be negative; the fetch adds it modulo the chunk index's width, which is exact
for every entry inside the map and irrelevant for the masked ones.
"""

from dataclasses import dataclass

import numpy as np


class InputMap:
    """The input pixel (y, x) each slot of a layer's spike fiber holds: ``slots`` (slot ->
    the input neuron, C order over ``shape``; -1: empty) and ``shape`` (C, H, W), or
    (C, L) as a map of height 1."""

    def __init__(self, slots, shape, chunk):
        _, *spatial = shape
        self.height, self.width = (1, *spatial) if len(spatial) == 1 else spatial
        self.chunk = chunk
        slots = np.asarray(slots, dtype=np.int64)
        pixel = np.where(slots >= 0, slots % (self.height * self.width), -1)
        self._y = np.where(slots >= 0, pixel // self.width, -1)
        self._x = np.where(slots >= 0, pixel % self.width, -1)

    @classmethod
    def of(cls, slots, shape, chunk):
        """The map of a layer reading ``slots`` of a source of per-step ``shape``, or None
        when the source has no spatial map (a flat layer: nothing to mask)."""
        if len(shape) not in (2, 3) or int(np.prod(shape[1:])) < 2:
            return None
        return cls(slots, shape, chunk)

    def pixel(self, chunk, mask):
        """(y, x) of the lowest set bit of ``mask`` in chunk ``chunk``; (-1, -1) for a slot
        past the fiber or an empty one."""
        slot = chunk * self.chunk + ((mask & -mask).bit_length() - 1)
        if not 0 <= slot < len(self._y):
            return -1, -1
        return int(self._y[slot]), int(self._x[slot])


@dataclass(frozen=True)
class RunChunks:
    """A run's chunk entries as arrays (absolute chunk indices), for matching."""

    neuron: np.ndarray      # which of the run's neurons each entry belongs to
    chunk: np.ndarray
    mask: np.ndarray
    wbase: np.ndarray
    state: np.ndarray
    y: np.ndarray
    x: np.ndarray

    @classmethod
    def of(cls, run, input_map):
        columns = {name: [] for name in ("neuron", "chunk", "mask", "wbase", "state", "y",
                                          "x")}
        neuron = -1
        for kind, fields in run:
            if kind == "neuron":
                neuron += 1
                continue
            y, x = input_map.pixel(fields["chunk"], fields["mask"])
            for name, value in (("neuron", neuron), ("chunk", fields["chunk"]),
                                ("mask", fields["mask"]), ("wbase", fields["wbase"]),
                                ("state", fields.get("state", 0)), ("y", y), ("x", x)):
                columns[name].append(value)
        return cls(**{name: np.array(values, dtype=np.uint64 if name == "mask" else np.int64)
                      for name, values in columns.items()})

    def __len__(self):
        return len(self.chunk)

    @property
    def origin(self):
        """The smallest row and column of the entries' pixels: the window's (0, 0)."""
        return int(self.y.min()), int(self.x.min())

    @property
    def extent(self):
        """(rows, columns) the entries' pixels span."""
        return int(self.y.max()) - self.origin[0] + 1, int(self.x.max()) - self.origin[1] + 1


_COMPARED = ("neuron", "mask", "wbase", "state")


def masked_match(block, run, input_map):
    """How ``run`` (:class:`RunChunks`) calls the block of ``block`` (the run it was made
    of), or None: (chunk offset, rows, cols) such that the block's entries whose pixel,
    moved by one translation, lies inside the map are exactly ``run``'s, with every chunk
    index moved by the offset; ``rows`` / ``cols`` have bit i set where the block's window
    row / column i (from :attr:`RunChunks.origin`) is inside the map. The headers are the
    caller's to compare."""
    if not len(run) or len(run) > len(block) or (block.y < 0).any() or (run.y < 0).any():
        return None
    first = {name: getattr(run, name)[0] for name in _COMPARED}
    candidates = np.flatnonzero(np.logical_and.reduce(
        [getattr(block, name) == value for name, value in first.items()]))
    tried = set()
    for j in candidates.tolist():
        dy, dx = int(run.y[0] - block.y[j]), int(run.x[0] - block.x[j])
        offset = int(run.chunk[0] - block.chunk[j])
        if (dy, dx, offset) in tried:
            continue
        tried.add((dy, dx, offset))
        inside = ((block.y + dy >= 0) & (block.y + dy < input_map.height)
                  & (block.x + dx >= 0) & (block.x + dx < input_map.width))
        if int(inside.sum()) != len(run) or inside.all():
            continue
        if not np.array_equal(block.chunk[inside] + offset, run.chunk):
            continue
        if all(np.array_equal(getattr(block, name)[inside], getattr(run, name))
               for name in _COMPARED):
            (y0, x0), (rows, columns) = block.origin, block.extent
            return (offset,
                    sum(1 << i for i in range(rows) if 0 <= y0 + i + dy < input_map.height),
                    sum(1 << i for i in range(columns) if 0 <= x0 + i + dx < input_map.width))
    return None


def window_fields(run, block):
    """``run``'s entries (a block's) with each chunk entry's position in the block's window
    (``row``, ``col``) added; ``block``: its :class:`RunChunks`."""
    y0, x0 = block.origin
    out, k = [], 0
    for kind, fields in run:
        if kind == "chunk":
            fields = {**fields, "row": int(block.y[k]) - y0, "col": int(block.x[k]) - x0}
            k += 1
        out.append((kind, fields))
    return out
