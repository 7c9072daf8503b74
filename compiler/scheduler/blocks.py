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

from ..instruction_format import pad_groups

CALL_CYCLES = 6
"""Fetch cycles one call costs beyond its block's own entries: the CALL and the RETURN,
each read as a group of its own and each followed by two program reads dropped (the
program memory's read and its output register, behind which the jump is decided). The
hardware configuration's ``call_groups`` (48 = 8 x CALL_CYCLES by default) is the
smallest run called, so a call costs at most 1/8 more fetch cycles than its run inline;
fetch-bound layers with wide pixels (LoAS's: 64-512 channels of 10-30 entries) pay a few
percent at most."""


def _relative(run):
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


def share_blocks(layers, fetch_width, call_groups):
    """One TPPE's program with its repeated runs called: ``layers`` holds, per layer, the
    TPPE's runs (lists of ("neuron" / "chunk", fields) entries: the neurons of one output
    position each); a run that occurs more than once and takes at least ``call_groups``
    groups of ``fetch_width`` entries (0: none) is called. Returns its entries, padded to
    groups, with the blocks after the last LAYER_END and every CALL's ``target`` set (a
    program-memory address: a group), and the number of calls."""
    relative = [[_relative(run) for run in runs] for runs in layers]
    seen = Counter(key for runs in relative for key, *_ in runs)
    main, blocks, block_of = [], [], {}
    for runs, originals in zip(relative, layers):
        for (key, entries, chunk_base, slot_base), run in zip(runs, originals):
            if call_groups and seen[key] > 1 and (
                    key in block_of
                    or len(pad_groups(entries, fetch_width)) // fetch_width >= call_groups):
                if key not in block_of:
                    block_of[key] = len(blocks)
                    blocks.append(entries)
                main.append(("call", {"block": block_of[key], "chunk": chunk_base,
                                      "slot": slot_base}))
            else:
                main += run
        main.append(("layer_end", {}))
    program = pad_groups(main, fetch_width)
    targets = []
    for entries in blocks:
        targets.append(len(program) // fetch_width)
        program += pad_groups(entries + [("return", {})], fetch_width)
    calls = 0
    for i, (kind, fields) in enumerate(program):
        if kind == "call":
            calls += 1
            program[i] = ("call", {"target": targets[fields["block"]],
                                   "chunk": fields["chunk"], "slot": fields["slot"]})
    return program, calls
