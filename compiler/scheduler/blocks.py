"""Blocks: runs of neurons that a TPPE's fiber program stores once and calls with offsets.

Unrolled, a convolution's output pixels repeat one another: the channels of two pixels
whose windows lie alike in the input fiber have the same weight masks and weight runs, and
chunk indices and output slots that differ by a constant. A TPPE that computes a range of
pixels (:func:`~.program.by_positions`) then walks, per pixel, the same entries but for
those two offsets. This pass stores such a run once, as a **block** after the program's
last LAYER_END, and puts a CALL in its place that gives the two offsets; the fetch adds
them in hardware (:func:`hwgen.compiler.instruction_format.walk` defines what it reads),
so a receptive field's addresses are generated, not stored per pixel.

A run is shared only where its entries are exactly the same once the offsets are taken
out, so a program with blocks walks exactly the entries of the program without them,
whatever the layer, layout or padding: a pixel at the map's border, whose window loses
the padded positions, simply differs from the interior pixels and stays inline (padding
is the entries it does not have). What repeats depends on the input's layout: a layer
whose producer computes whole pixels per TPPE reads each pixel's channels in consecutive
slots, so all its interior pixels share one block.
"""

from collections import Counter
from dataclasses import dataclass

from ..instruction_format import pad_groups
from .windows import RunChunks, masked_match, window_fields

CALL_CYCLES = 6
"""Fetch cycles one call costs beyond its block's own entries: the CALL and the RETURN,
each read as a group of its own and each followed by two program reads dropped (the
program memory's read and its output register, behind which the jump is decided). The
hardware configuration's ``call_groups`` (48 = 8 x CALL_CYCLES by default) is the
smallest run called, so a call costs at most 1/8 more fetch cycles than its run inline;
fetch-bound layers with wide pixels (LoAS's: 64-512 channels of 10-30 entries) pay a few
percent at most."""


def relative_run(run):
    """(key, entries, chunk offset, slot offset): ``run``'s entries with the smallest chunk
    index taken out of every chunk entry and the smallest slot out of every header; the
    key compares runs exactly."""
    chunks = [fields["chunk"] for kind, fields in run if kind == "chunk"]
    slots = [fields["slot"] for kind, fields in run if kind == "neuron"]
    chunk_base, slot_base = min(chunks, default=0), min(slots, default=0)
    entries = []
    for kind, fields in run:
        if kind == "chunk":
            fields = {**fields, "chunk": fields["chunk"] - chunk_base}
        else:
            fields = {**fields, "slot": fields["slot"] - slot_base}
        entries.append((kind, fields))
    key = tuple((kind, tuple(sorted(fields.items()))) for kind, fields in entries)
    return key, entries, chunk_base, slot_base


def _groups(entries, fetch_width):
    return len(pad_groups(entries, fetch_width)) // fetch_width


def header_key(entries, ignore=()):
    """The headers of a run's ``entries``, comparable, without the fields in ``ignore``."""
    return tuple(tuple(sorted((k, v) for k, v in fields.items() if k not in ignore))
                 for kind, fields in entries if kind == "neuron")


@dataclass(frozen=True)
class SharedCalls:
    """One TPPE's part of a layer run in step (:mod:`.lockstep`): a CALL of the shared
    block ``block`` (an index among the program's shared blocks) per tile, with the
    fields in ``calls``."""

    block: int
    calls: tuple


MASKED_CANDIDATES = 8
"""Blocks a run tries to call with masks (:mod:`.windows`) before it stays inline: the
largest runs of its layer first, which at a map's border are its interior pixels'."""


def _decide(runs, relative, seen, fetch_width, call_groups, input_map):
    """Per run of one layer: ("exact", None) (called, its own entries), ("masked", (source
    run, its :class:`~.windows.RunChunks`, offset, rows, cols)) (calls the block of another
    run of the layer, masks forced to zero outside the map) or ("inline", None)."""
    # (a block is made of a run of at least call_groups groups, so a key already called is
    # one that large)
    decisions = [["exact" if call_groups and seen[key] > 1
                  and _groups(entries, fetch_width) >= call_groups else "inline", None]
                 for key, entries, *_ in relative]
    if input_map is None or not call_groups:
        return decisions
    here = Counter(key for key, *_ in relative)
    chunks = [None] * len(runs)

    def arrays(i):
        if chunks[i] is None:
            chunks[i] = RunChunks.of(runs[i], input_map)
        return chunks[i]

    headers = [header_key(entries) for _, entries, *_ in relative]
    sizes = [sum(kind == "chunk" for kind, _ in run) for run in runs]
    # the largest first: a border pixel's window lies within an interior pixel's
    order = sorted(range(len(runs)), key=lambda i: -sizes[i])
    sources, source_keys = [], set()
    for i in order:
        key = relative[i][0]
        if decisions[i][0] == "exact":
            # a block other layers call too would need their maps' window positions
            if here[key] == seen[key] and key not in source_keys:
                sources.append(i)
                source_keys.add(key)
            continue
        for s in sources[:MASKED_CANDIDATES]:
            if (headers[s] != headers[i]
                    or _groups(relative[s][1], fetch_width) < call_groups):
                continue
            match = masked_match(arrays(s), arrays(i), input_map)
            if match is not None:
                if decisions[s][0] == "inline":
                    decisions[s][0] = "exact"
                decisions[i] = ["masked", (s, arrays(s), *match)]
                break
        else:
            sources.append(i)
            source_keys.add(key)
    return decisions


def share_blocks(layers, fetch_width, call_groups, input_maps=None):
    """One TPPE's program with its repeated runs called: ``layers`` holds, per layer, the
    TPPE's runs (lists of ("neuron" / "chunk", fields) entries: the neurons of one output
    position each); a run that occurs more than once and takes at least ``call_groups``
    groups of ``fetch_width`` entries (0: none) is called. With ``input_maps`` (per layer,
    an :class:`~.windows.InputMap` or None), a run that occurs once may also call the
    block of a larger run of its layer with forced-zero masks (:mod:`.windows`): such a
    CALL has ``rows`` and ``cols``, its block's chunk entries ``row`` and ``col``, and its
    chunk offset may be negative.

    A layer given as :class:`SharedCalls` instead (run in step) is its CALLs of a shared
    block, each with the block's index as ``shared`` and no target yet.

    Returns its entries, padded to groups, with the blocks after the last LAYER_END and
    every other CALL's ``target`` set (a program-memory address: a group), the number of
    calls, and the (rows, columns) of the largest masked block's window ((0, 0): none)."""
    input_maps = input_maps or [None] * len(layers)
    relative = [[] if isinstance(runs, SharedCalls) else [relative_run(run) for run in runs]
                for runs in layers]
    seen = Counter(key for runs in relative for key, *_ in runs)
    main, blocks, block_of, masked_blocks = [], [], {}, {}
    for runs, rel, input_map in zip(layers, relative, input_maps):
        if isinstance(runs, SharedCalls):
            # the target is the caller's to set, once the shared blocks have addresses
            main += [("call", {**fields, "shared": runs.block}) for fields in runs.calls]
            main.append(("layer_end", {}))
            continue
        decisions = _decide(runs, rel, seen, fetch_width, call_groups, input_map)
        for (key, entries, chunk_base, slot_base), run, (decision, how) in zip(
                rel, runs, decisions):
            if decision == "inline":
                main += run
                continue
            source = key if decision == "exact" else rel[how[0]][0]
            if source not in block_of:
                block_of[source] = len(blocks)
                blocks.append(entries if decision == "exact" else rel[how[0]][1])
            call = {"block": block_of[source], "chunk": chunk_base, "slot": slot_base}
            if decision == "masked":
                s, arrays, offset, rows, cols = how
                call.update(chunk=rel[s][2] + offset, rows=rows, cols=cols)
                masked_blocks[block_of[source]] = arrays
            main.append(("call", call))
        main.append(("layer_end", {}))
    window = (0, 0)
    for b, arrays in masked_blocks.items():
        blocks[b] = window_fields(blocks[b], arrays)
        window = tuple(map(max, window, arrays.extent))
    program = pad_groups(main, fetch_width)
    targets = []
    for entries in blocks:
        targets.append(len(program) // fetch_width)
        program += pad_groups(entries + [("return", {})], fetch_width)
    calls = 0
    for i, (kind, fields) in enumerate(program):
        if kind == "call":
            calls += 1
            if "block" in fields:
                program[i] = ("call", {**{k: v for k, v in fields.items() if k != "block"},
                                       "target": targets[fields["block"]]})
    return program, calls, window
