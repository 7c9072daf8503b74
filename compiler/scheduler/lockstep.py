"""Tiles in step: a layer whose output positions all call one block, run by every TPPE
together from one copy of it.

With ``mapping = "tiles"`` (:mod:`hwgen.compiler.hardware_config`) a layer of output
positions (pixels, tokens) is cut into tiles of P positions (where it may run in step,
positions of like cost together, the costliest first: :func:`tile_order`; else row-major),
and TPPE p computes position p of every tile, all its channels (:func:`tile_assignment`).
Its outputs are laid out position by position in row-major order, each position's channels
in whole chunks of the next layer's fiber (:func:`position_slots`). A convolution reading
an input laid out so finds, at every output position, the same chunks of its window moved
by one chunk offset, except where the window leaves the map: the runs of all its positions
(one run: the entries of one position's neurons, :mod:`.blocks`) are then one block called
with offsets and forced-zero masks (:mod:`.windows`). :func:`shared_block` checks that on
the runs themselves, for whatever the layer unrolled into, and makes the block and every
TPPE's calls.

Such a layer is run **in step**: each TPPE's part of it is one CALL per tile (a silent
one, ``rows`` = 0, where the tile has no position for it:
:func:`hwgen.compiler.instruction_format.silent_call`), the block is stored once in a
program memory every TPPE reads, and the TPPEs' fetch units move together, a stall of one
holding all (:class:`hwgen.gateware.top.Accelerator`, docs/architecture.md, "Tiles in
step"). A tile then takes about its busiest TPPE's time.
"""

from dataclasses import dataclass

import numpy as np

from .assign import Assignment
from .blocks import header_key, relative_run
from .windows import RunChunks, masked_match, window_fields


def _position_costs(costs, positions):
    """Per output position, its neurons' ``costs`` summed (neuron n at position n mod
    ``positions``)."""
    return np.bincount(np.arange(len(costs)) % positions,
                       weights=np.asarray(costs, dtype=float), minlength=positions)


def tile_order(costs, positions):
    """The output positions in the order tiles take them: the costliest first (``costs``:
    per neuron, neuron n at position n mod ``positions``; ties by position). A layer run
    in step pays each tile's costliest position, and cutting a sorted list into tiles of
    P makes that sum the least any cut into tiles of P does."""
    per_position = _position_costs(costs, positions)
    return sorted(range(positions), key=lambda q: (-per_position[q], q))


def tile_assignment(costs, tppes, positions, by_cost=True):
    """TPPE p computes position p of every tile of ``tppes`` positions (tiles in
    :func:`tile_order`; without ``by_cost``, for a layer that cannot run in step, in
    row-major order), all its channels, position-major (a position's channels one after
    another); ``costs``: per neuron, neuron n at position n mod ``positions``."""
    order = tile_order(costs, positions) if by_cost else range(positions)
    neurons = [[] for _ in range(tppes)]
    for i, q in enumerate(order):
        neurons[i % tppes] += [c * positions + q for c in range(len(costs) // positions)]
    return Assignment(tuple(tuple(ns) for ns in neurons),
                      tuple(float(sum(costs[n] for n in ns)) for ns in neurons))


def in_step_cycles(costs, tppes, positions):
    """Estimated cycles of every TPPE in a layer run in step: the TPPEs move together, so
    a tile costs its costliest position (``costs``: per neuron, as for
    :func:`tile_assignment`), and every TPPE the sum over the tiles."""
    per_position = _position_costs(costs, positions)
    order = tile_order(costs, positions)
    total = float(sum(per_position[order[start]] for start in range(0, positions, tppes)))
    return (total,) * tppes


def position_slots(outputs, positions, chunk):
    """(output slots, {neuron: slot}) of a layer of ``outputs`` neurons over ``positions``
    positions laid out position by position in row-major order, each position's channels
    in whole chunks of ``chunk`` slots (-1: an empty slot)."""
    channels = outputs // positions
    width = -(-channels // chunk) * chunk
    slots, slot_of = [-1] * (positions * width), {}
    for n in range(outputs):
        slot = n % positions * width + n // positions
        slots[slot] = n
        slot_of[n] = slot
    return slots, slot_of


@dataclass(frozen=True)
class SharedLayer:
    """A layer run in step: ``block``, its entries (chunk indices relative to the block's
    first, slots to its first header, each chunk entry's window position ``row`` / ``col``,
    weight bases as the runs had them); ``calls[p]``, TPPE p's CALL fields per tile
    ("chunk", "slot", "rows", "cols"; all 0: silent); ``window``, the block's window
    (rows, columns)."""

    block: list
    calls: tuple
    window: tuple


def shared_block(runs, input_map, positions):
    """The :class:`SharedLayer` of a layer whose TPPEs have ``runs`` (per TPPE, one run
    per tile it has a position in, :func:`tile_assignment`), or (None, why) when some
    position's run is not the block's, moved (the layer is then stored per TPPE as any).
    ``input_map``: the layer's :class:`~.windows.InputMap` (None: its input has no
    map); ``positions``: per TPPE, the output position of each of its runs (for the
    messages)."""
    if input_map is None:
        return None, "its input has no map"
    every = [(p, k, run) for p, tppe in enumerate(runs) for k, run in enumerate(tppe)]

    def position(i):
        return positions[every[i][0]][every[i][1]]

    if not every:
        return None, "it has no positions"
    rel = [relative_run(run) for _, _, run in every]
    sizes = [sum(kind == "chunk" for kind, _ in run) for _, _, run in every]
    # the largest: an interior position's window holds every border position's
    s = max(range(len(every)), key=lambda i: (sizes[i], -i))
    key, block, base, _ = rel[s]
    source = RunChunks.of(every[s][2], input_map)
    if len(source) and (source.y < 0).any():
        return None, "its input's slots do not lie in its map"
    rows, cols = (source.extent if len(source) else (1, 1))
    whole = {"rows": (1 << rows) - 1, "cols": (1 << cols) - 1}
    tiles = max(len(tppe) for tppe in runs)
    calls = [[{"chunk": 0, "slot": 0, "rows": 0, "cols": 0}] * tiles for _ in runs]
    for i, ((p, k, run), (run_key, entries, chunk_base, slot_base), size) in enumerate(
            zip(every, rel, sizes)):
        if run_key == key:
            calls[p][k] = {"chunk": chunk_base, "slot": slot_base, **whole}
            continue
        # A neuron whose entries all lie outside the map is empty in its run but not in
        # the block; the fetch walks its masked entries and ends it with an empty match,
        # the same.
        if header_key(entries, ignore=("empty",)) != header_key(block, ignore=("empty",)):
            return None, (f"position {position(i)} has other neurons than position "
                          f"{position(s)}")
        if not size:
            # every window position outside the map: the neurons from their biases only
            calls[p][k] = {"chunk": 0, "slot": slot_base, "rows": whole["rows"], "cols": 0}
            continue
        match = masked_match(source, RunChunks.of(run, input_map), input_map)
        if match is None:
            # (a map without an interior position has no window holding the others')
            return None, (f"position {position(i)}'s window is not position "
                          f"{position(s)}'s (the largest) moved")
        offset, in_rows, in_cols = match
        if not in_rows:
            return None, f"position {position(i)}'s window has no row in the map"
        calls[p][k] = {"chunk": base + offset, "slot": slot_base, "rows": in_rows,
                       "cols": in_cols}
    block = window_fields(block, source) if len(source) else block
    return SharedLayer(block, tuple(tuple(c) for c in calls), (rows, cols)), None
