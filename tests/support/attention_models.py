"""Spike-driven Transformer v1 attention blocks (SDSA, docs/semantics.md 4d) built directly
in the IR with integer weights, for the tests and the whole-model generator
(model_strategies.py): tokens ``(features, positions...)``; Q, K and V token-wise linear
layers (1x1 convolutions) into LIF neurons; ``K AND V``; its column sum over tokens into
the attention LIF (one spike per feature); ``Q AND mask``; a projection into the block's
output neurons, with a membrane shortcut (a 1x1 convolution of the block's input summed
into the projection's current) if asked.
"""

from dataclasses import dataclass

import numpy as np

from hwgen.compiler.ir import (LI, LIF, Add, Conv1d, Conv2d, Dense, Flatten, Input, Leak,
                              Model, Readout, SpikeAnd,
                              SpikeMatmul, CurrentMatmul, TokenSum)
from hwgen.compiler.ir.neuron import signed_range


@dataclass(frozen=True)
class AttentionDraw:
    """One SDSA block as plain data. ``thresholds``: per neuron group (q, k, v, attn, out)
    a style: "zero" (every neuron spikes whenever it may), "one", "typical" (about the
    typical current), "vmax" (the membrane's largest value: they almost never spike).
    ``mask``: "feature" (Q AND the attention LIF's spike per feature, SDSA's),
    "hadamard" (Q AND (K AND V), element by element) or "ktv" (Spikformer's and
    Spike-driven Transformer v2's Q (K^T V) into the attention LIF, in ``heads`` heads
    where they divide the features, else one)."""

    seed: int
    weight_bits: int
    thresholds: tuple       # 5 styles: q, k, v, attn, out
    leak_shift: int         # 0: no leak (IF); k: v - (v >> k)
    fire: str
    reset: str
    order: str
    v_bits: int
    mask: str = "feature"
    shortcut: bool = True
    # the shortcut adds the block input's own current (a membrane shortcut on the residual
    # stream of currents, kept by the accelerator) where that input is a LIF fed by a
    # synapse, and a second token-wise layer adds the block's stream again
    stream: bool = False
    heads: int = 1
    # Q (K^T V) only: K and V of every kv_stride-th token (the IR lets them have fewer
    # positions than Q; K^T V sums over theirs)
    kv_stride: int = 1

    def describe(self):
        return (f"sdsa[w{self.weight_bits} th:{'/'.join(self.thresholds)} "
                f"{'if' if not self.leak_shift else f'shift{self.leak_shift}'}-{self.fire}-"
                f"{self.reset}-{self.order} v{self.v_bits} {self.mask}"
                f"{f' h{self.heads}' if self.mask == 'ktv' else ''}"
                f"{f' kv/{self.kv_stride}' if self.mask == 'ktv' and self.kv_stride > 1 else ''}"
                f"{' +shortcut' if self.shortcut else ''}"
                f"{' +stream' if self.shortcut and self.stream else ''}]")


def _bits_for_sum(weight, bias=None):
    bound = int(np.abs(weight).reshape(weight.shape[0], -1).sum(axis=1).max(initial=0))
    if bias is not None:
        bound += int(np.abs(bias).max(initial=0))
    return max(2, bound.bit_length() + 1)


def _token_linear(name, rng, features, spatial, weight_bits, stride=1):
    """A token-wise linear layer: a convolution with a kernel of 1 over ``spatial``
    (``stride`` > 1: of every ``stride``-th token)."""
    lo, hi = signed_range(weight_bits)
    weight = rng.integers(lo, hi + 1, size=(features, features, *(1,) * spatial))
    weight[rng.random(weight.shape) < 0.3] = 0
    op = Conv2d if spatial == 2 else Conv1d
    return op(name, weight, stride=stride, weight_bits=weight_bits,
              acc_bits=_bits_for_sum(weight))


def _threshold(style, typical, v_bits):
    largest = signed_range(v_bits)[1]
    return {"zero": 0, "one": 1, "typical": max(1, min(largest, typical)),
            "vmax": largest}[style]


def _lif(name, size, style, typical, draw):
    return LIF(name, np.full(size, _threshold(style, typical, draw.v_bits)),
               leak=Leak.by_shift(draw.leak_shift) if draw.leak_shift else Leak.none(),
               fire=draw.fire, reset=draw.reset, order=draw.order, v_bits=draw.v_bits)


def sdsa_block(model, prefix, source, draw):
    """Add an SDSA block reading the spikes of ``source`` (tokens: ``(features,
    positions...)`` with one or two position dimensions) to ``model``; return the name of
    its output LIF op (spikes of the same shape)."""
    rng = np.random.default_rng(draw.seed)
    shape = model.infer()[source].shape
    features, spatial = shape[0], len(shape) - 1
    positions = int(np.prod(shape[1:]))
    typical = max(1, (features * (1 << (draw.weight_bits - 1))) // 4)
    q, k, v, attn, out = draw.thresholds
    stream = _current_of(model, source) if draw.shortcut and draw.stream else None
    if draw.shortcut and draw.stream and stream is None:
        # the block's input has no current of its own (the model's input): embed it first,
        # so that the stream starts from the embedding's current
        embed = _token_linear(f"{prefix}.embed_conv", rng, features, spatial,
                              draw.weight_bits)
        model.add(embed, source)
        source = f"{prefix}.embed_lif"
        model.add(_lif(source, features * positions, "typical", typical, draw), embed.name)
        stream = embed.name
    names = {}
    for branch, style in (("q", q), ("k", k), ("v", v)):
        stride = draw.kv_stride if branch != "q" and draw.mask == "ktv" else 1
        conv = _token_linear(f"{prefix}.{branch}_conv", rng, features, spatial,
                             draw.weight_bits, stride)
        model.add(conv, source)
        names[branch] = f"{prefix}.{branch}_lif"
        model.add(_lif(names[branch], model.infer()[conv.name].size, style, typical, draw),
                  conv.name)
    if draw.mask == "ktv":
        heads = draw.heads if features % draw.heads == 0 else 1
        model.add(SpikeMatmul(f"{prefix}.ktv", heads), [names["k"], names["v"]])
        model.add(CurrentMatmul(f"{prefix}.qktv"), [names["q"], f"{prefix}.ktv"])
        attended = f"{prefix}.attn_lif"
        model.add(_lif(attended, features * positions, attn,
                       max(1, features // heads * positions // 8), draw), f"{prefix}.qktv")
    else:
        attended = _sdsa_mask(model, prefix, names, features, positions, attn, draw)
    projection = _token_linear(f"{prefix}.proj_conv", rng, features, spatial, draw.weight_bits)
    model.add(projection, attended)
    into = projection.name
    if stream is not None:
        model.add(Add(f"{prefix}.residual"), [projection.name, stream])
        into = f"{prefix}.residual"
    elif draw.shortcut:
        shortcut = _token_linear(f"{prefix}.shortcut", rng, features, spatial,
                                 draw.weight_bits)
        model.add(shortcut, source)
        model.add(Add(f"{prefix}.residual"), [projection.name, shortcut.name])
        into = f"{prefix}.residual"
    model.add(_lif(f"{prefix}.out_lif", features * positions, out, typical, draw), into)
    if stream is None:
        return f"{prefix}.out_lif"
    # the stream once more: an MLP-like token-wise layer adds the block's residual current
    tail = _token_linear(f"{prefix}.tail_conv", rng, features, spatial, draw.weight_bits)
    model.add(tail, f"{prefix}.out_lif")
    model.add(Add(f"{prefix}.tail_residual"), [tail.name, into])
    model.add(_lif(f"{prefix}.tail_lif", features * positions, out, typical, draw),
              f"{prefix}.tail_residual")
    return f"{prefix}.tail_lif"


def _sdsa_mask(model, prefix, names, features, positions, attn, draw):
    """SDSA's Q AND mask, the mask K AND V or (``feature``) its column sums into the
    attention LIF; returns the masked spikes' op."""
    model.add(SpikeAnd(f"{prefix}.kv"), [names["k"], names["v"]])
    if draw.mask == "feature":
        model.add(TokenSum(f"{prefix}.token_sum"), f"{prefix}.kv")
        model.add(_lif(f"{prefix}.attn_lif", features, attn, max(1, positions // 4), draw),
                  f"{prefix}.token_sum")
        mask = f"{prefix}.attn_lif"
    else:
        mask = f"{prefix}.kv"
    model.add(SpikeAnd(f"{prefix}.masked"), [names["q"], mask])
    return f"{prefix}.masked"


def _current_of(model, source):
    """The synapse op whose current the LIF op ``source`` integrates, or None (the input,
    or a LIF behind a max pooling)."""
    if not isinstance(model[source], LIF):
        return None
    (feed,) = model.inputs_of(source)
    return feed if isinstance(model[feed], (Conv1d, Conv2d, Dense, Add)) else None


def sdsa_model(draw, tokens, features, timesteps, head=True):
    """A model of one SDSA block on spike tokens ``(features, *tokens)`` and, with
    ``head``, a dense layer of 3 classes into an integrator read out by its final
    membranes (@digits_transformer's head)."""
    model = Model("sdsa", timesteps)
    model.add(Input("x", (features, *tokens)))
    source = "x"
    if draw.stream:             # an embedding whose current the block's stream starts from
        rng = np.random.default_rng(draw.seed + 2)
        embed = _token_linear("embed_conv", rng, features, len(tokens), draw.weight_bits)
        model.add(embed, "x")
        typical = max(1, (features * (1 << (draw.weight_bits - 1))) // 4)
        model.add(_lif("embed_lif", features * int(np.prod(tokens)), "typical", typical,
                       draw), embed.name)
        source = "embed_lif"
    out = sdsa_block(model, "attn", source, draw)
    if head:
        model.add(Flatten("flat"), out)
        size = model.infer()["flat"].size
        rng = np.random.default_rng(draw.seed + 1)
        model.add(Dense("head", rng.integers(-7, 8, (3, size)), weight_bits=4,
                        acc_bits=max(4, (7 * size).bit_length() + 1)), "flat")
        model.add(LI("logits", v_bits=16), "head")
        model.add(Readout("class", "final_membrane"), "logits")
    return model
