"""The tiled mapping of a convolution: one copy of its fiber program, walked once per tile.

Step 1 of the weight broadcast (docs/architecture.md, "Design, not built: the weight
broadcast and a shared activation memory"). Today every TPPE stores the program entries
and weights of the pixels it computes (:mod:`.blocks` stores a repeated run once per TPPE,
not once per layer). Here the output map is cut into **tiles** of P consecutive pixels (in
row-major order, so a tile may span two rows and a map narrower than P leaves no TPPE
idle), TPPE p computes pixel p of each tile, all output channels, and the layer's program is
**one** list of entries: per output channel a NEURON header and the CHUNK entries of its
kernel, their chunk indices relative to the window's origin, walked once per tile and
read by every TPPE at its own pixel (:meth:`TiledConv.resolve`). A window position
outside the input map reads a **forced-zero** mask, so border pixels need no entries of
their own and padding costs nothing.

The input is laid out pixel-major with each pixel's channels in whole chunks (channel c of
pixel (y, x) in slot ``((y * W + x) * Cc) * chunk + c``, ``Cc = ceil(C / chunk)``), so that
an entry's relative chunk index is the same for every pixel; the output is laid out the
same way (:meth:`TiledConv.output_slot`), so a tiled layer can read a tiled layer.

Not used by :func:`~.program.compile_program` yet: the hardware that walks such a program
(a shared issue stage, per-TPPE address generation and forced-zero masks, step 2) is not
built. This module defines the program and what each TPPE reads for each entry; the
program model (tests/support/program_model.py, :func:`run_tiled`) walks it and agrees
with the reference convolution.
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from hwgen.errors import UnsupportedError
from .fibers import WeightMemory


@dataclass(frozen=True)
class TiledConv:
    """A convolution's tiled program: ``entries`` (("neuron" | "chunk", fields), one copy
    for the layer) and ``weights`` (one weight memory for the layer).

    Chunk fields: ``chunk`` (relative to the window's origin), ``mask``, ``wbase``,
    ``last`` as in today's program, and ``dy``, ``dx``: the entry's position in the
    (dilated) window, which decides whether it falls outside the map. Neuron fields:
    ``theta``, ``bias``, ``slot`` (the output channel: relative to the pixel's first
    output slot), ``empty``.
    """

    name: str
    chunk: int
    tppes: int
    in_shape: tuple         # (C, H, W)
    out_shape: tuple        # (N, Ho, Wo)
    stride: tuple
    padding: tuple
    entries: tuple
    weights: tuple

    @property
    def in_chunks(self):
        """Chunks per input pixel."""
        return -(-self.in_shape[0] // self.chunk)

    @property
    def out_chunks(self):
        """Chunks per output pixel."""
        return -(-self.out_shape[0] // self.chunk)

    def tiles(self):
        """The tiles, in walking order: 0, 1, ... (tile t holds output pixels t P to
        t P + P - 1, row-major)."""
        _, rows, columns = self.out_shape
        return list(range(-(-rows * columns // self.tppes)))

    @cached_property
    def _pixels(self):
        """(row, column, valid), each tiles x P: the output pixel each TPPE computes in
        each tile, and whether it has one (past the map's last pixel it idles)."""
        _, rows, columns = self.out_shape
        index = np.arange(len(self.tiles()) * self.tppes).reshape(-1, self.tppes)
        row, column = np.divmod(index, columns)
        return row, column, index < rows * columns

    @property
    def origins(self):
        """(row, column, valid), each tiles x P: the input position of each TPPE's window
        origin in each tile (negative at the top and left borders), and whether the TPPE
        has a pixel there."""
        row, column, valid = self._pixels
        (sy, sx), (py, px) = self.stride, self.padding
        return row * sy - py, column * sx - px, valid

    def pixel(self, tile, p):
        """The output pixel (row, column) TPPE ``p`` computes in ``tile``; None past the
        map's last pixel (the TPPE idles through the last tile)."""
        row, column, valid = (int(a[tile, p]) for a in self._pixels)
        return (row, column) if valid else None

    def resolve(self, fields, tile, p):
        """The input chunk TPPE ``p`` reads for chunk entry ``fields`` in ``tile``, or None:
        a forced-zero mask (a window position outside the map, or an idle TPPE).

        The hardware's form: a per-TPPE base (the window origin's chunk, loaded per tile;
        negative at the top and left borders) plus the entry's relative chunk, and a
        comparison of the origin plus (dy, dx) with the map's size."""
        y0, x0, valid = (int(a[tile, p]) for a in self.origins)
        _, height, width = self.in_shape
        if not (valid and 0 <= y0 + fields["dy"] < height and 0 <= x0 + fields["dx"] < width):
            return None
        return (y0 * width + x0) * self.in_chunks + fields["chunk"]

    def input_slot(self, channel, y, x):
        """Where input channel ``channel`` of pixel (y, x) lies in the spike buffer."""
        return (y * self.in_shape[2] + x) * self.in_chunks * self.chunk + channel

    def output_slot(self, header, tile, p):
        """Where the neuron of ``header`` computed by TPPE ``p`` in ``tile`` writes its
        spikes: the next tiled layer's :meth:`input_slot` of that channel and pixel."""
        row, column = self.pixel(tile, p)
        return (row * self.out_shape[2] + column) * self.out_chunks * self.chunk \
            + header["slot"]


def tile_conv(conv, in_shape, theta, *, chunk=16, tppes=1):
    """The tiled program of ``conv`` (a :class:`~hwgen.compiler.ir.Conv2d` over spikes of
    ``in_shape`` (C, H, W), or a :class:`~hwgen.compiler.ir.Conv1d` over (C, L), tiled as
    the 2-D convolution of height 1 it is) into neurons of per-channel thresholds
    ``theta`` (N,)."""
    theta = np.asarray(theta)
    if len(in_shape) != conv.dims + 1:
        raise UnsupportedError(f"{conv.where}: its input must have {conv.dims} spatial "
                               f"dimensions, got shape {tuple(in_shape)}")
    if conv.in_channels != in_shape[0]:
        raise UnsupportedError(f"{conv.where}: reads {conv.in_channels} input channels, "
                               f"the input has {in_shape[0]}")
    out_channels = conv.out_channels
    if theta.shape != (out_channels,):
        # one header per output channel serves every pixel: a threshold per pixel would
        # need a header per pixel, the per-TPPE program this mapping removes
        raise UnsupportedError(f"{conv.where}: the tiled mapping needs one threshold per "
                               f"output channel ({out_channels}), got shape {theta.shape}")
    spatial = conv.output_spatial(in_shape[1:])
    if min(spatial) < 1:
        raise UnsupportedError(f"{conv.where}: kernel {' x '.join(map(str, conv.kernel))} "
                               f"does not fit the input {' x '.join(map(str, in_shape[1:]))}")
    weight, stride, padding, dilation = conv.weight, conv.stride, conv.padding, conv.dilation
    if conv.dims == 1:
        weight, in_shape, spatial = weight[:, :, None, :], (in_shape[0], 1, *in_shape[1:]), \
            (1, *spatial)
        stride, padding, dilation = (1, *stride), (0, *padding), (1, *dilation)
    channels, height, width = in_shape
    bias = np.zeros(out_channels, dtype=np.int64) if conv.bias is None else conv.bias
    kh, kw = weight.shape[2:]
    in_chunks = -(-channels // chunk)
    # the full (N, C, kh, kw) kernel: a grouped one has zeros outside its group's channels,
    # which no entry stores
    full = np.zeros((out_channels, in_chunks * chunk, kh, kw), dtype=np.int64)
    per_group, per_out = weight.shape[1], out_channels // conv.groups
    for n in range(out_channels):
        g = n // per_out
        full[n, g * per_group:(g + 1) * per_group] = weight[n]
    memory = WeightMemory()
    entries = []
    for n in range(out_channels):
        chunks = []
        for ky in range(kh):
            for kx in range(kw):
                dy, dx = ky * dilation[0], kx * dilation[1]
                for cc in range(in_chunks):
                    values = full[n, cc * chunk:(cc + 1) * chunk, ky, kx]
                    mask = sum(1 << bit for bit in np.flatnonzero(values).tolist())
                    if mask:
                        chunks.append({"chunk": (dy * width + dx) * in_chunks + cc,
                                       "mask": mask,
                                       "wbase": memory.place(values[values != 0].tolist()),
                                       "last": 0, "dy": dy, "dx": dx})
        if chunks:
            chunks[-1]["last"] = 1
        entries.append(("neuron", {"theta": int(theta[n]), "bias": int(bias[n]), "slot": n,
                                   "empty": int(not chunks)}))
        entries += [("chunk", fields) for fields in chunks]
    return TiledConv(conv.name, chunk, tppes, tuple(in_shape), (out_channels, *spatial),
                     tuple(stride), tuple(padding), tuple(entries), tuple(memory.values))
