"""The accelerator's instruction format: the words the compiler writes and the hardware reads.

A TPPE walks a **fiber program**, one entry per cycle (docs/architecture.md, "Build
directory" and "Dataflow"):

    per layer:  [NEURON header, CHUNK entry, CHUNK entry, ...] per neuron, then LAYER_END

A program may also hold **blocks** after its last LAYER_END: runs of neurons that several
places of the program share (the channels of one output pixel of a convolution, which
every pixel of the same alignment repeats with its own addresses). A CALL entry runs a
block, every CHUNK entry of it with the CALL's chunk offset added to its chunk index and
every NEURON header with its slot offset added to its slot, until the block's RETURN
(:func:`walk` is the definition; docs/architecture.md, "Address generation").

With ``fetch_width`` K > 1 the hardware reads K entries per cycle, in aligned groups, and
PAD entries move every NEURON header to the start of a group (:func:`pad_groups`).

An entry is a 2-bit tag and a payload. A NEURON header carries the neuron's threshold, bias
and output slot (and its leak multiplier, in programs with per-neuron leaks); a CHUNK entry
one nonzero chunk of its weight fiber (chunk index, mask, and the address of the chunk's
first weight in the TPPE's weight memory). The sequencer reads one
**layer descriptor** per layer (which LIF mode, whether it is the last layer).

One definition serves both sides: the compiler packs memory images with
:meth:`BitLayout.pack`, and the gateware turns the same field lists into Amaranth
``StructLayout`` s (:func:`hwgen.gateware.geometry.struct_of`), so the two cannot drift apart.
"""

from dataclasses import dataclass

from hwgen.errors import FitError


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


TAG_CHUNK, TAG_NEURON, TAG_LAYER_END, TAG_PAD, TAG_CALL, TAG_RETURN = 0, 1, 2, 3, 4, 5
"""Entry tags (the ``tag`` field of an ``entry``). PAD entries exist only in programs for
a fetch of several entries per cycle (``fetch_width`` K > 1): they fill the rest of a
K-entry group so that every NEURON header starts a group (:func:`pad_groups`). CALL and
RETURN exist only in programs with blocks: only their tag field is 3 bits wide, so other
programs' words and gateware are unchanged."""


def bits_for(count):
    """Bits to index ``count`` things (at least 1)."""
    return max(1, (count - 1).bit_length())


def source_bits(pairs, residual):
    """Width of a CHUNK entry's ``state``: with ``pairs`` region pairs and layers reading
    kept layers (``residual``), the pair number 0 .. ``pairs``; with recurrent layers only,
    one bit (the layer's own pair)."""
    return bits_for(pairs + 1) if residual else 1


def program_layouts(config, modes, output_size, leak_bits=0, recurrent_layers=0,
                    residual=False, max_pool=False, current_buffers=0, operands=False,
                    calls=False, window=(0, 0), lockstep=False):
    """The bit layouts of fiber-program entries and layer descriptors.

    ``config``: a resolved :class:`~hwgen.compiler.hardware_config.HardwareConfig`;
    ``modes``: how many LIF modes the program uses; ``output_size``: output neurons;
    ``leak_bits``: width of a NEURON entry's per-neuron leak multiplier (the widest F + 1
    of the program's per-neuron leaks), 0 when no layer has one: the field then does not
    exist, so other programs' words and gateware are unchanged.
    ``recurrent_layers``: with any, a CHUNK entry says whether its chunk is of the layer's
    own spikes of the last step (``state``: read from the layer's state regions) and a
    layer descriptor which region pair the layer writes (``state``, 1-based; 0: none) and
    which it reads its input from (``reads_state``). Layers whose spikes a later layer
    reads besides the layer before it (residual connections, attention branches) have a
    region pair too (``recurrent_layers`` counts every pair); with any such layer
    (``residual``), a CHUNK entry's ``state`` is instead the pair its chunk is read from
    (0: the layer's input region), :func:`source_bits` wide. With a max pooling of
    currents in any layer (``max_pool``), a NEURON entry says whether its currents only go
    into a running maximum (``partial``: a window position before the last) instead of to
    the neuron. With kept-current buffers (``current_buffers``, membrane shortcuts kept
    instead of recomputed), a layer descriptor says which buffer the layer writes its
    currents into (``current_write``, 1-based; 0: none) and which it adds currents from
    (``current_read``). With layers whose weights are kept currents (``operands``, Q (K^T
    V)), a descriptor says whether ``current_read`` is such a layer's operand buffer
    (``operands``), whose words its chunk entries' weight bases then address. With blocks
    (``calls``), a CALL entry holds the block's program address (``target``) and the
    offsets added to its chunk indices and slots; the layouts then include ``call_entry``.
    With calls that force masks to zero at a map's border (``window``: the (rows, columns)
    of the largest masked block's window; (0, 0): none), a CALL also holds which window
    rows and columns are inside the map (``rows``, ``cols``: a bit each) and a CHUNK
    entry its position in its block's window (``row``, ``col``; 0 outside blocks). With
    layers run in step (``lockstep``, mapping "tiles": scheduler/lockstep.py), a layer
    descriptor says whether the layer is one (``lockstep``), and a CALL whose ``rows`` are
    all zero is silent (:func:`silent_call`).
    Returns ``{"entry", "chunk_entry", "neuron_entry", "layer": BitLayout}`` (and
    ``"call_entry"``).
    """
    W = config.chunk
    chunk_bits = bits_for(config.spike_depth // W)
    # A slot is read by the output compressor as (chunk, offset within the chunk), so it
    # holds both fields in full, even when a buffer region is a single chunk and the chunk
    # index is a 1-bit 0: a slot of only log2(spike_depth) bits once left the compressor no
    # chunk bits, which put the region bit of its write addresses in the chunk's place.
    slot_bits = max(bits_for(output_size), bits_for(W) + chunk_bits)
    # A chunk entry carries its weights' base address: the compiler knows it, and summing
    # mask popcounts in hardware put an adder behind the program memory's output.
    chunk = [Field("chunk", chunk_bits), Field("mask", W), Field("last", 1),
             Field("wbase", bits_for(config.weight_depth))]
    layer = [Field("mode", bits_for(modes)), Field("last", 1)]
    if recurrent_layers:
        chunk.insert(1, Field("state", source_bits(recurrent_layers, residual)))
        pair_bits = bits_for(recurrent_layers + 1)
        layer += [Field("state", pair_bits), Field("reads_state", pair_bits)]
    if current_buffers:
        buffer_bits = bits_for(current_buffers + 1)
        layer += [Field("current_write", buffer_bits), Field("current_read", buffer_bits)]
    if operands:
        layer.append(Field("operands", 1))
    if lockstep:
        layer.append(Field("lockstep", 1))
    neuron = [Field("theta", max(1, config.v_bits - 1)), Field("bias", config.acc_bits, True),
              Field("slot", slot_bits), Field("empty", 1), Field("chunk_last", 1)]
    if leak_bits:
        neuron.append(Field("leak", leak_bits))
    if max_pool:
        neuron.append(Field("partial", 1))
    # the target is a program-memory word: a group of fetch_width entries
    call = [Field("target", bits_for(-(-config.program_depth // config.fetch_width))),
            Field("chunk", chunk_bits),
            Field("slot", slot_bits)]
    if calls and window[0]:
        chunk += [Field("row", bits_for(window[0])), Field("col", bits_for(window[1]))]
        call += [Field("rows", window[0]), Field("cols", window[1])]
    kinds = [chunk, neuron] + ([call] if calls else [])
    payload = max(sum(f.width for f in fields) for fields in kinds)
    layouts = {
        "entry": BitLayout("entry", [Field("tag", 3 if calls else 2),
                                     Field("payload", payload)]),
        "chunk_entry": BitLayout("chunk_entry", chunk),
        "neuron_entry": BitLayout("neuron_entry", neuron),
        "layer": BitLayout("layer", layer),
    }
    if calls:
        layouts["call_entry"] = BitLayout("call_entry", call)
    return layouts


def pack_entry(layouts, kind, values):
    """One program entry: ``kind`` is "chunk", "neuron", "call", "return", "pad" or
    "layer_end"."""
    if kind == "call":
        return layouts["entry"].pack(tag=TAG_CALL,
                                     payload=layouts["call_entry"].pack(**values))
    if kind == "return":
        return layouts["entry"].pack(tag=TAG_RETURN)
    if kind == "chunk":
        return layouts["entry"].pack(tag=TAG_CHUNK,
                                     payload=layouts["chunk_entry"].pack(**values))
    if kind == "neuron":
        return layouts["entry"].pack(tag=TAG_NEURON,
                                     payload=layouts["neuron_entry"].pack(**values))
    if kind == "pad":
        return layouts["entry"].pack(tag=TAG_PAD)
    return layouts["entry"].pack(tag=TAG_LAYER_END)


_STARTS_GROUP = ("neuron", "call", "return")
_ENDS_GROUP = ("layer_end", "call", "return")


def pad_groups(entries, fetch_width):
    """``entries`` ((kind, fields) pairs) with ("pad", {}) entries inserted so that every
    "neuron" entry starts a group of ``fetch_width`` entries, every "layer_end" ends one,
    and every "call" and "return" is a group of its own.

    A K-entry group then holds one neuron's entries at most, so the fetch pushes at most
    one header per cycle and a group's matches all belong to one neuron; and one layer's
    end at most (a TPPE without neurons in a layer has two LAYER_ENDs in a row). The
    result is whole groups, so a block padded on its own starts a group wherever it goes.
    """
    if fetch_width == 1:
        return list(entries)
    padded = []
    for kind, values in entries:
        if kind in _STARTS_GROUP:
            padded += [("pad", {})] * (-len(padded) % fetch_width)
        padded.append((kind, values))
        if kind in _ENDS_GROUP:
            padded += [("pad", {})] * (-len(padded) % fetch_width)
    return padded + [("pad", {})] * (-len(padded) % fetch_width)


def unpack_entry(layouts, word):
    """A packed program entry -> {"tag": ..., field: value, ...}."""
    entry = layouts["entry"].unpack(word)
    payload = entry.pop("payload")
    kind = {TAG_CHUNK: "chunk_entry", TAG_NEURON: "neuron_entry",
            TAG_CALL: "call_entry"}.get(entry["tag"])
    if kind is not None:
        entry.update(layouts[kind].unpack(payload))
    return entry


def inside_window(call, chunk):
    """Whether CHUNK entry ``chunk`` of a block called by ``call`` (unpacked) lies inside
    the map: its window row and column are set in the call's ``rows`` and ``cols`` (always,
    in a program without masked calls)."""
    if "rows" not in call:
        return True
    return bool(call["rows"] >> chunk["row"] & call["cols"] >> chunk["col"] & 1)


def silent_call(call):
    """Whether CALL ``call`` (unpacked) is silent: its block is walked, in step with the
    other TPPEs, but nothing of it is read, no header and no chunk (a TPPE whose tile has
    no position for it, scheduler/lockstep.py). A masked call with no window row inside
    the map."""
    return "rows" in call and call["rows"] == 0


def walk(layouts, words, layers, fetch_width=1, silent=False):
    """The entries a TPPE's fetch reads, in order, from its program ``words`` of
    ``layers`` layers: {"tag", fields} per entry, PADs left out, each CALL replaced by its
    block's entries with the offsets applied (chunk indices, modulo their width, and slots
    as the hardware computes them) and the masks of entries outside the map forced to zero
    (:func:`inside_window`), the block's RETURN left out, a silent CALL's block
    (:func:`silent_call`) left out whole (with ``silent``, walked with every mask zero, as
    the fetch walks it in step with the other TPPEs). Ends at the last layer's
    LAYER_END. A CALL's ``target`` is a program-memory address: a group of ``fetch_width``
    entries."""
    ended = 0
    position = 0
    chunks = 1 << layouts["chunk_entry"]["chunk"].width
    while ended < layers:
        entry = unpack_entry(layouts, words[position])
        position += 1
        if entry["tag"] == TAG_CALL:
            target = entry["target"] * fetch_width
            while True:
                inner = unpack_entry(layouts, words[target])
                target += 1
                if inner["tag"] == TAG_RETURN:
                    break
                if inner["tag"] == TAG_CHUNK:
                    inner["chunk"] = (inner["chunk"] + entry["chunk"]) % chunks
                    if not inside_window(entry, inner):
                        inner["mask"] = 0
                elif inner["tag"] == TAG_NEURON:
                    inner["slot"] += entry["slot"]
                elif inner["tag"] != TAG_PAD:
                    raise ValueError(f"walk: entry {target - 1} (tag {inner['tag']}) in a "
                                     f"block; blocks hold neurons and chunks only")
                if inner["tag"] != TAG_PAD and (silent or not silent_call(entry)):
                    yield inner
        elif entry["tag"] != TAG_PAD:
            ended += entry["tag"] == TAG_LAYER_END
            yield entry


def _through(layouts, words, position, tag, fetch_width):
    """The entries from ``position`` up to the first with ``tag`` and the PADs of its
    group, unpacked; and the position after them."""
    entries = []
    while True:
        entry = unpack_entry(layouts, words[position])
        position += 1
        entries.append(entry)
        if entry["tag"] == tag:
            break
    while position % fetch_width:
        entries.append(unpack_entry(layouts, words[position]))
        position += 1
    return entries, position


def stored_layers(layouts, words, layers, fetch_width=1):
    """The entries a TPPE's program ``words`` stores for each of its ``layers`` layers:
    its part of the program (up to its LAYER_END) and the blocks it calls that no layer
    before it called, each up to its RETURN; PADs included, as unpacked entries. Every
    stored entry is in exactly one layer's list."""
    result, position, claimed = [], 0, set()
    for _ in range(layers):
        own, position = _through(layouts, words, position, TAG_LAYER_END, fetch_width)
        for entry in list(own):
            if entry["tag"] == TAG_CALL and entry["target"] not in claimed:
                claimed.add(entry["target"])
                own += _through(layouts, words, entry["target"] * fetch_width, TAG_RETURN,
                                fetch_width)[0]
        result.append(own)
    return result
