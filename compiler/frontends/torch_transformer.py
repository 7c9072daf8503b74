"""Spiking transformers from PyTorch: modules whose forward pass is the float model, and their
export to the IR through the same post-training quantization as NIR imports.

NIR has no attention nodes, so hwgen brings its own modules. They are SpikingJelly 2.0's
Spike-driven Transformer v1 (``SpikeDrivenSelfAttention``, its ``_MLP``, its head) and
Spikformer (``SpikingSelfAttention``, ``SpikformerMLP``, ``SpikformerBlock``), plus Spike-
driven Transformer v2's attention (:class:`SDSAv2`, from the paper's code), written out
in plain PyTorch with the same arithmetic, so that a model trained with them (surrogate
gradients, batch norm in training mode) means, in evaluation mode, exactly what
docs/semantics.md section 4d can compute; docs/frontends.md "Spiking transformers" lists
every difference from the papers' and SpikingJelly's models. Tensors are multi-step,
time first: (T, batch, channels, height, width), as SpikingJelly's ``step_mode="m"``.

:func:`to_float_network` walks a :class:`SpikeDrivenTransformer` or a :class:`Spikformer`
in evaluation mode into a
:class:`~hwgen.compiler.ir.floating.FloatNetwork`, folding every batch norm into the
convolution before it and every constant factor into the threshold of the neuron after it;
:func:`export` quantizes that with :func:`hwgen.compiler.passes.quantize.quantize`. Layer
names are the modules' qualified names (``blocks.0.attn.q_lif``). This module needs torch.
"""

import numpy as np
import torch
from torch import nn

from hwgen.errors import UnsupportedError
from ..ir.floating import (FloatAdd, FloatConv, FloatCurrentMatmul, FloatDense, FloatFlatten,
                           FloatInput, FloatIntegrator, FloatNeuron, FloatNetwork, FloatReadout,
                           FloatSpikeAnd, FloatSpikeMatmul, FloatSumPool, FloatTokenSum)
from ..passes.quantize import quantize


class _Heaviside(torch.autograd.Function):
    """Spike when x >= 0 (SpikingJelly's heaviside); sigmoid surrogate gradient,
    alpha * sigmoid(alpha x) (1 - sigmoid(alpha x)), SpikingJelly's default (alpha = 4)."""

    @staticmethod
    def forward(ctx, x, alpha):
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        sigmoid = torch.sigmoid(ctx.alpha * x)
        return grad * ctx.alpha * sigmoid * (1 - sigmoid), None


class LIF(nn.Module):
    """SpikingJelly's multi-step ``LIFNode`` (``decay_input=True``, ``v_reset`` 0 or None):

        H[t] = V[t-1] + (X[t] - V[t-1]) / tau;  S[t] = H[t] >= v_threshold
        V[t] = 0 if S[t] else H[t]          hard reset (v_reset = 0)
               H[t] - S[t] * v_threshold    soft reset (v_reset = None)

    ``tau=None`` is the ``IFNode``: H[t] = V[t-1] + X[t]. ``detach_reset`` as SpikingJelly's
    (the reset carries no gradient). In hwgen's terms (docs/semantics.md 4): a ``ge``,
    same-step neuron with beta = 1 - 1/tau and threshold tau * v_threshold in the units of
    X (its membrane is tau V)."""

    def __init__(self, tau=2.0, v_threshold=1.0, hard_reset=True, detach_reset=True,
                 surrogate_alpha=4.0):
        super().__init__()
        if tau is not None and not tau > 1.0:
            raise ValueError(f"LIF: tau must be above 1 (or None for IF), got {tau!r}")
        if not v_threshold > 0:
            raise ValueError(f"LIF: v_threshold must be positive, got {v_threshold!r}")
        self.tau, self.v_threshold = tau, v_threshold
        self.hard_reset, self.detach_reset = hard_reset, detach_reset
        self.surrogate_alpha = surrogate_alpha

    def forward(self, x):
        v = torch.zeros_like(x[0])
        spikes = []
        for t in range(x.shape[0]):
            h = v + x[t] if self.tau is None else v + (x[t] - v) / self.tau
            s = _Heaviside.apply(h - self.v_threshold, self.surrogate_alpha)
            reset = s.detach() if self.detach_reset else s
            v = h * (1 - reset) if self.hard_reset else h - reset * self.v_threshold
            spikes.append(s)
        return torch.stack(spikes)

    def float_layer(self, name, inputs, shape, gain=1.0):
        """The hwgen float neuron of this LIF, reading a current that is ``gain`` times the
        one this module sees (so its threshold is divided by it)."""
        size = int(np.prod(shape))
        beta = 1.0 if self.tau is None else 1.0 - 1.0 / self.tau
        threshold = self.v_threshold * (1.0 if self.tau is None else self.tau) * gain
        return FloatNeuron(name=name, inputs=list(inputs), shape=tuple(shape),
                           beta=np.full(size, beta), threshold=np.full(size, threshold),
                           fire="ge", reset="zero" if self.hard_reset else "subtract",
                           order="same_step")


class ConvBN(nn.Module):
    """A convolution, then (``norm``) a batch norm, applied at every step: (T, B, C, H, W)."""

    def __init__(self, in_channels, out_channels, kernel=1, stride=1, padding=0, bias=True,
                 norm=True):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride, padding, bias=bias)
        self.bn = nn.BatchNorm2d(out_channels) if norm else None

    def forward(self, x):
        y = self.conv(x.flatten(0, 1))
        if self.bn is not None:
            y = self.bn(y)
        return y.reshape(*x.shape[:2], *y.shape[1:])

    def folded(self):
        """(weight, bias) in float64 with the batch norm's running statistics folded in
        (docs/semantics.md 3a): what this module computes in evaluation mode."""
        weight = self.conv.weight.detach().double().numpy()
        bias = (self.conv.bias.detach().double().numpy() if self.conv.bias is not None
                else np.zeros(weight.shape[0]))
        if self.bn is None:
            return weight, (bias if self.conv.bias is not None else None)
        bn = self.bn
        if bn.running_mean is None or bn.running_var is None:
            raise UnsupportedError("a BatchNorm2d without running statistics "
                                   "(track_running_stats=False) cannot be folded")
        gamma = bn.weight.detach().double().numpy() if bn.affine else np.ones(len(bias))
        beta = bn.bias.detach().double().numpy() if bn.affine else np.zeros(len(bias))
        scale = gamma / np.sqrt(bn.running_var.detach().double().numpy() + bn.eps)
        mean = bn.running_mean.detach().double().numpy()
        return weight * scale[:, None, None, None], (bias - mean) * scale + beta

    def output_shape(self, shape):
        conv = self.conv
        spatial = tuple((n + 2 * p - d * (k - 1) - 1) // s + 1 for n, p, d, k, s in zip(
            shape[1:], conv.padding, conv.dilation, conv.kernel_size, conv.stride))
        return (conv.out_channels, *spatial)


class PatchEmbed(nn.Module):
    """Non-overlapping patches of ``patch`` x ``patch`` pixels to ``dim`` features: a strided
    convolution and batch norm on the input spikes; its current starts the residual stream.
    ``rpe``: then Spike-driven Transformer's relative position embedding, as its
    ``_PatchEmbed`` ends: x + rpe_conv(final_lif(x)), a 3x3 convolution (no bias) and
    batch norm over the grid of tokens."""

    def __init__(self, in_channels, dim, patch, rpe=True):
        super().__init__()
        self.proj = ConvBN(in_channels, dim, patch, stride=patch)
        if rpe:
            self.final_lif = LIF()
            self.rpe_conv = ConvBN(dim, dim, 3, padding=1, bias=False)
        else:
            self.final_lif = self.rpe_conv = None

    def forward(self, x):
        x = self.proj(x)
        if self.rpe_conv is None:
            return x
        return self.rpe_conv(self.final_lif(x)) + x


class SDSA(nn.Module):
    """SpikingJelly's ``SpikeDrivenSelfAttention`` (Spike-driven Transformer v1), the same
    modules under the same names: on the residual stream x (a current),

        s = shortcut_lif(x); Q, K, V = lif(bn(conv1x1(s)));
        mask = attn_lif(sum over tokens of K AND V); out = proj(Q AND mask) + x

    ``num_heads`` only checks the split: every SDSA operation is per feature."""

    def __init__(self, dim, num_heads=1):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"SDSA: dim {dim} is not divisible by num_heads {num_heads}")
        self.dim, self.num_heads = dim, num_heads
        self.shortcut_lif = LIF()
        self.q_conv, self.k_conv, self.v_conv = (ConvBN(dim, dim, bias=False) for _ in range(3))
        self.q_lif, self.k_lif, self.v_lif = LIF(), LIF(), LIF()
        self.attn_lif = LIF(v_threshold=0.5)
        self.proj_conv = ConvBN(dim, dim)

    def forward(self, x):
        s = self.shortcut_lif(x)
        q = self.q_lif(self.q_conv(s))
        k = self.k_lif(self.k_conv(s))
        v = self.v_lif(self.v_conv(s))
        mask = self.attn_lif((k * v).flatten(3).sum(-1))         # (T, B, C)
        return self.proj_conv(q * mask[..., None, None]) + x


class SDSAv2(nn.Module):
    """Spike-driven Transformer v2's attention (``MS_Attention_RepConv_qkv_id`` of the
    paper's code, with 1x1 convolutions where it has RepConv): on the residual stream x,

        s = head_lif(x); Q, K, V = lif(bn(conv1x1(s)));
        per head: O = Q (K^T V) * scale; out = proj(attn_lif(O)) + x

    ``scale`` 0.125 and ``attn_lif``'s threshold 0.5 as there; in integers O / scale is
    ``current_matmul(Q, spike_matmul(K, V))`` (docs/semantics.md 4d)."""

    def __init__(self, dim, num_heads=1, scale=0.125):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"SDSAv2: dim {dim} is not divisible by num_heads {num_heads}")
        if not scale > 0:
            raise ValueError(f"SDSAv2: scale must be positive, got {scale!r}")
        self.dim, self.num_heads, self.scale = dim, num_heads, scale
        self.head_lif = LIF()
        self.q_conv, self.k_conv, self.v_conv = (ConvBN(dim, dim, bias=False) for _ in range(3))
        self.q_lif, self.k_lif, self.v_lif = LIF(), LIF(), LIF()
        self.attn_lif = LIF(v_threshold=0.5)
        self.proj_conv = ConvBN(dim, dim, bias=False)

    def forward(self, x):
        T, B, C, H, W = x.shape
        s = self.head_lif(x)
        q, k, v = (lif(conv(s)).reshape(T, B, self.num_heads, C // self.num_heads, H * W)
                   for conv, lif in ((self.q_conv, self.q_lif), (self.k_conv, self.k_lif),
                                     (self.v_conv, self.v_lif)))
        ktv = k @ v.transpose(-1, -2)                           # (T, B, heads, d, d)
        out = (ktv.transpose(-1, -2) @ q) * self.scale          # (T, B, heads, d, P)
        return self.proj_conv(self.attn_lif(out.reshape(T, B, C, H, W))) + x


ATTENTIONS = {"sdsa": SDSA, "v2": SDSAv2}
"""The attention of a :class:`SpikeDrivenTransformer` block: v1's SDSA or v2's."""


class MLP(nn.Module):
    """SpikingJelly's Spike-driven Transformer ``_MLP``: lif1 -> fc1 (1x1 conv + bn) -> lif2 ->
    fc2 -> + x; with ``hidden == dim`` fc1's output also joins the residual stream, as there."""

    def __init__(self, dim, hidden):
        super().__init__()
        self.residual = dim == hidden
        self.lif1, self.fc1 = LIF(), ConvBN(dim, hidden)
        self.lif2, self.fc2 = LIF(), ConvBN(hidden, dim)

    def forward(self, x):
        identity = x
        x = self.fc1(self.lif1(x))
        if self.residual:
            x = x + identity
            identity = x
        return self.fc2(self.lif2(x)) + identity


class Block(nn.Module):
    def __init__(self, dim, num_heads, hidden, attention="sdsa"):
        super().__init__()
        if attention not in ATTENTIONS:
            raise ValueError(f"attention {attention!r} is not one of {', '.join(ATTENTIONS)}")
        self.attn, self.mlp = ATTENTIONS[attention](dim, num_heads), MLP(dim, hidden)

    def forward(self, x):
        return self.mlp(self.attn(x))


HEADS = ("mean", "flatten")
"""``mean``: Spike-driven Transformer's head, ``head(head_lif(mean over tokens of x))``;
``flatten``: ``head(flatten(head_lif(x)))``, a linear layer over every token's spikes (it
keeps where each token is, which a small model without many convolutions needs)."""


class SpikeDrivenTransformer(nn.Module):
    """Patch embedding (with ``rpe``, SDT's relative position embedding), ``depth``
    attention (``attention``: :data:`ATTENTIONS`, v1's SDSA or v2's) + MLP blocks, and a head
    (:data:`HEADS`) whose logits are averaged over the steps. ``forward`` takes spikes
    (T, B, C, H, W) and returns the logits (B, classes)."""

    def __init__(self, in_channels, image, patch, dim, num_heads, depth, hidden, classes, *,
                 head="mean", rpe=True, attention="sdsa"):
        super().__init__()
        if image % patch:
            raise ValueError(f"patches of {patch} do not tile an image of {image}")
        if head not in HEADS:
            raise ValueError(f"head {head!r} is not one of {', '.join(HEADS)}")
        self.in_channels, self.image, self.head_kind = in_channels, image, head
        self.patch_embed = PatchEmbed(in_channels, dim, patch, rpe)
        self.blocks = nn.ModuleList(Block(dim, num_heads, hidden, attention)
                                    for _ in range(depth))
        self.head_lif = LIF()
        tokens = (image // patch) ** 2
        self.head = nn.Linear(dim * (tokens if head == "flatten" else 1), classes)

    def forward(self, x):
        x = self.patch_embed(x)
        for block in self.blocks:
            x = block(x)
        if self.head_kind == "flatten":
            return self.head(self.head_lif(x).flatten(2).mean(0))
        return self.head(self.head_lif(x.flatten(3).mean(-1)).mean(0))


# --- Spikformer -------------------------------------------------------------------------

class SSA(nn.Module):
    """SpikingJelly's ``SpikingSelfAttention`` (Spikformer), the same modules under the same
    names, on (T, B, C, H, W) tokens (SpikingJelly's (T, B, C, L) with L = H W):

        Q, K, V = qkv_lif(bn(conv1x1(x))), the 3C channels split in three;
        per head: O = (V K^T) Q * scale;  out = proj_lif(bn(conv1x1(attn_lif(O))))

    with ``scale`` 0.125, ``attn_lif``'s threshold 0.5. In integers O / scale is exactly
    ``current_matmul(Q, spike_matmul(K, V))`` (docs/semantics.md 4d)."""

    def __init__(self, dim, num_heads=8, scale=0.125):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"SSA: dim {dim} is not divisible by num_heads {num_heads}")
        if not scale > 0:
            raise ValueError(f"SSA: scale must be positive, got {scale!r}")
        self.dim, self.num_heads, self.scale = dim, num_heads, scale
        self.qkv_conv = ConvBN(dim, 3 * dim, bias=False)
        self.qkv_lif = LIF()
        self.attn_lif = LIF(v_threshold=0.5)
        self.proj_conv = ConvBN(dim, dim, bias=False)
        self.proj_lif = LIF()

    def forward(self, x):
        T, B, C, H, W = x.shape
        q, k, v = (part.reshape(T, B, self.num_heads, C // self.num_heads, H * W)
                   for part in self.qkv_lif(self.qkv_conv(x)).chunk(3, dim=2))
        ktv = k @ v.transpose(-1, -2)                           # (T, B, heads, d, d)
        out = (ktv.transpose(-1, -2) @ q) * self.scale          # (T, B, heads, d, P)
        return self.proj_lif(self.proj_conv(self.attn_lif(out.reshape(T, B, C, H, W))))


class SpikformerMLP(nn.Module):
    """SpikingJelly's ``SpikformerMLP``: neuron2(fc2(neuron1(fc1(x)))), 1x1 convolutions
    without bias, each with a batch norm."""

    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.neuron1 = ConvBN(dim, hidden, bias=False), LIF()
        self.fc2, self.neuron2 = ConvBN(hidden, dim, bias=False), LIF()

    def forward(self, x):
        return self.neuron2(self.fc2(self.neuron1(self.fc1(x))))


class SpikformerBlock(nn.Module):
    """``x + attn(x)``, then ``x + mlp(x)``: spike residuals, so x is a spike count."""

    def __init__(self, dim, num_heads, hidden):
        super().__init__()
        self.attn, self.mlp = SSA(dim, num_heads), SpikformerMLP(dim, hidden)

    def forward(self, x):
        x = x + self.attn(x)
        return x + self.mlp(x)


class SpikformerPatchEmbed(nn.Module):
    """A ``patch`` x ``patch`` strided convolution + BN + LIF, and Spikformer's positional
    encoding on its spikes, ``s + pe_lif(bn(conv3x3(s)))`` (a spike count 0..2)."""

    def __init__(self, in_channels, dim, patch):
        super().__init__()
        self.proj, self.lif = ConvBN(in_channels, dim, patch, stride=patch), LIF()
        self.pe_conv, self.pe_lif = ConvBN(dim, dim, 3, padding=1), LIF()

    def forward(self, x):
        s = self.lif(self.proj(x))
        return self.pe_lif(self.pe_conv(s)) + s


class Spikformer(nn.Module):
    """Patch embedding with positional encoding, ``depth`` SSA + MLP blocks with spike
    residuals, and Spikformer's head, ``head(mean over tokens of x)``, averaged over the
    steps (SpikingJelly returns it per step). ``forward``: spikes (T, B, C, H, W) -> logits."""

    def __init__(self, in_channels, image, patch, dim, num_heads, depth, hidden, classes):
        super().__init__()
        if image % patch:
            raise ValueError(f"patches of {patch} do not tile an image of {image}")
        self.in_channels, self.image = in_channels, image
        self.patch_embed = SpikformerPatchEmbed(in_channels, dim, patch)
        self.blocks = nn.ModuleList(SpikformerBlock(dim, num_heads, hidden)
                                    for _ in range(depth))
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch_embed(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x.flatten(3).mean(-1)).mean(0)


# --- export -----------------------------------------------------------------------------

class _Stream:
    """A residual stream of currents (Spike-driven Transformer's membrane shortcut): each
    synapse added to it is summed by an ``add`` onto the stream so far, and every neuron
    layer reading it reads that sum; the quantizer puts all of them on one scale."""

    def __init__(self, exporter, shape):
        self.exporter, self.shape = exporter, shape
        self.current = None

    def add(self, name, module, source):
        ex = self.exporter
        conv = ex.conv(name, module, source)
        if self.current is None:
            self.current = conv
        else:
            self.current = ex.add(FloatAdd(name=f"{name}.residual", inputs=[self.current, conv],
                                           shape=self.shape))


class _Exporter:
    def __init__(self, name, timesteps, metadata):
        self.network = FloatNetwork(name, timesteps, metadata=metadata)
        self.shapes = {}

    def add(self, layer):
        self.network.add(layer)
        self.shapes[layer.name] = tuple(layer.shape)
        return layer.name

    def conv(self, name, module, source, rows=None):
        """``module`` as a float convolution; ``rows``: only those output channels."""
        conv = module.conv
        if conv.groups != 1 or conv.padding_mode != "zeros":
            raise UnsupportedError(f"{name}: only zero-padded, ungrouped convolutions export")
        try:
            weight, bias = module.folded()
        except UnsupportedError as error:
            raise UnsupportedError(f"{name}: {error}") from None
        shape = module.output_shape(self.shapes[source])
        if rows is not None:
            weight, shape = weight[rows], (len(weight[rows]), *shape[1:])
            bias = None if bias is None else bias[rows]
        return self.add(FloatConv(name=name, inputs=[source], shape=shape,
                                  weight=weight, bias=bias, stride=tuple(conv.stride),
                                  padding=tuple(conv.padding), dilation=tuple(conv.dilation)))

    def neuron(self, name, module, source, gain=1.0):
        return self.add(module.float_layer(name, [source], self.shapes[source], gain))


def to_float_network(model, timesteps, *, name="transformer", encoding="spikes",
                     threshold=None, metadata=None):
    """The float network a :class:`SpikeDrivenTransformer` or :class:`Spikformer` computes in
    evaluation mode, over ``timesteps`` steps, on input spikes (or integers through hwgen's
    IF encoder with ``encoding="if"`` and its ``threshold``)."""
    if not isinstance(model, (SpikeDrivenTransformer, Spikformer)):
        raise UnsupportedError(f"to_float_network: expects a SpikeDrivenTransformer or a "
                               f"Spikformer, got {type(model).__name__}")
    if model.training:
        raise UnsupportedError("to_float_network: the model is in training mode; call "
                               ".eval() so batch norms use their running statistics")
    if isinstance(model, Spikformer):
        architecture = "Spikformer (SSA)"
    elif model.blocks and isinstance(model.blocks[0].attn, SDSAv2):
        architecture = "Spike-driven Transformer v2 attention (Q (K^T V))"
    else:
        architecture = "Spike-driven Transformer v1 (SDSA)"
    ex = _Exporter(name, timesteps, {"source": "hwgen.compiler.frontends.torch_transformer",
                                     "architecture": architecture, **(metadata or {})})
    shape = (model.in_channels, model.image, model.image)
    source = ex.add(FloatInput(name="input", inputs=[], shape=shape, encoding=encoding,
                               threshold=threshold))
    if isinstance(model, Spikformer):
        _spikformer(ex, model, source)
        return ex.network
    stream = _Stream(ex, model.patch_embed.proj.output_shape(shape))
    stream.add("patch_embed.proj", model.patch_embed.proj, source)
    if model.patch_embed.rpe_conv is not None:
        spikes = ex.neuron("patch_embed.final_lif", model.patch_embed.final_lif, stream.current)
        stream.add("patch_embed.rpe_conv", model.patch_embed.rpe_conv, spikes)
    for index, block in enumerate(model.blocks):
        prefix, attn, mlp = f"blocks.{index}", block.attn, block.mlp
        a = f"{prefix}.attn"
        v2 = isinstance(attn, SDSAv2)
        first = f"{a}.head_lif" if v2 else f"{a}.shortcut_lif"
        s = ex.neuron(first, attn.head_lif if v2 else attn.shortcut_lif, stream.current)
        qkv = [ex.neuron(f"{a}.{x}_lif", getattr(attn, f"{x}_lif"),
                         ex.conv(f"{a}.{x}_conv", getattr(attn, f"{x}_conv"), s)) for x in "qkv"]
        if v2:
            d = attn.dim // attn.num_heads
            ktv = ex.add(FloatSpikeMatmul(name=f"{a}.ktv", inputs=qkv[1:],
                                          shape=(attn.num_heads, d, d), heads=attn.num_heads))
            product = ex.add(FloatCurrentMatmul(name=f"{a}.qktv", inputs=[qkv[0], ktv],
                                                shape=ex.shapes[qkv[0]]))
            # attn_lif sees product * scale: its threshold is divided by the scale
            attended = ex.neuron(f"{a}.attn_lif", attn.attn_lif, product, gain=1.0 / attn.scale)
        else:
            kv = ex.add(FloatSpikeAnd(name=f"{a}.kv", inputs=qkv[1:], shape=ex.shapes[qkv[1]]))
            column = ex.add(FloatTokenSum(name=f"{a}.token_sum", inputs=[kv],
                                          shape=ex.shapes[kv][:1]))
            mask = ex.neuron(f"{a}.attn_lif", attn.attn_lif, column)
            attended = ex.add(FloatSpikeAnd(name=f"{a}.masked", inputs=[qkv[0], mask],
                                            shape=ex.shapes[qkv[0]]))
        stream.add(f"{a}.proj_conv", attn.proj_conv, attended)
        m = f"{prefix}.mlp"
        h = ex.neuron(f"{m}.lif1", mlp.lif1, stream.current)
        if mlp.residual:
            stream.add(f"{m}.fc1", mlp.fc1, h)
            h = ex.neuron(f"{m}.lif2", mlp.lif2, stream.current)
        else:
            h = ex.neuron(f"{m}.lif2", mlp.lif2, ex.conv(f"{m}.fc1", mlp.fc1, h))
        stream.add(f"{m}.fc2", mlp.fc2, h)
    current = stream.current
    if model.head_kind == "mean":
        # the mean over tokens: a sum pool over every position, its 1/P in the threshold
        spatial = stream.shape[1:]
        pooled = ex.add(FloatSumPool(name="token_pool", inputs=[current],
                                     shape=(stream.shape[0], 1, 1), kernel=spatial,
                                     stride=spatial, padding=(0, 0)))
        spikes = ex.neuron("head_lif", model.head_lif, pooled, gain=float(np.prod(spatial)))
    else:
        spikes = ex.neuron("head_lif", model.head_lif, current)
    flat = ex.add(FloatFlatten(name="flatten", inputs=[spikes],
                               shape=(int(np.prod(ex.shapes[spikes])),), start_dim=0,
                               end_dim=-1))
    _head(ex, model.head, flat)
    return ex.network


def _spikformer(ex, model, source):
    """Spikformer's residuals add spikes: the stream is a spike count (an ``add`` of spikes
    and of earlier adds), which every reader's convolution weighs as a count."""
    embed = model.patch_embed
    s = ex.neuron("patch_embed.lif", embed.lif, ex.conv("patch_embed.proj", embed.proj, source))
    pe = ex.neuron("patch_embed.pe_lif", embed.pe_lif,
                   ex.conv("patch_embed.pe_conv", embed.pe_conv, s))
    x = ex.add(FloatAdd(name="patch_embed.add", inputs=[pe, s], shape=ex.shapes[s]))
    for index, block in enumerate(model.blocks):
        a, attn, mlp = f"blocks.{index}.attn", block.attn, block.mlp
        dim = attn.dim
        # one qkv convolution and LIF in the module; per element, so split in three exactly
        q, k, v = (ex.neuron(f"{a}.qkv_lif.{part}", attn.qkv_lif,
                             ex.conv(f"{a}.qkv_conv.{part}", attn.qkv_conv, x,
                                     rows=slice(i * dim, (i + 1) * dim)))
                   for i, part in enumerate("qkv"))
        d = dim // attn.num_heads
        ktv = ex.add(FloatSpikeMatmul(name=f"{a}.ktv", inputs=[k, v],
                                      shape=(attn.num_heads, d, d), heads=attn.num_heads))
        product = ex.add(FloatCurrentMatmul(name=f"{a}.qktv", inputs=[q, ktv],
                                            shape=ex.shapes[q]))
        # the module's attn_lif sees product * scale: its threshold is divided by the scale
        spikes = ex.neuron(f"{a}.attn_lif", attn.attn_lif, product, gain=1.0 / attn.scale)
        out = ex.neuron(f"{a}.proj_lif", attn.proj_lif,
                        ex.conv(f"{a}.proj_conv", attn.proj_conv, spikes))
        x = ex.add(FloatAdd(name=f"blocks.{index}.add_attn", inputs=[x, out],
                            shape=ex.shapes[out]))
        m = f"blocks.{index}.mlp"
        h = ex.neuron(f"{m}.neuron1", mlp.neuron1, ex.conv(f"{m}.fc1", mlp.fc1, x))
        h = ex.neuron(f"{m}.neuron2", mlp.neuron2, ex.conv(f"{m}.fc2", mlp.fc2, h))
        x = ex.add(FloatAdd(name=f"blocks.{index}.add_mlp", inputs=[x, h], shape=ex.shapes[h]))
    # the head's mean over tokens: a sum pool, its 1/P folded into the head's weight
    channels, *spatial = ex.shapes[x]
    pooled = ex.add(FloatSumPool(name="token_pool", inputs=[x], shape=(channels, 1, 1),
                                 kernel=tuple(spatial), stride=tuple(spatial), padding=(0, 0)))
    flat = ex.add(FloatFlatten(name="flatten", inputs=[pooled], shape=(channels,),
                               start_dim=0, end_dim=-1))
    _head(ex, model.head, flat, 1.0 / float(np.prod(spatial)))


def _head(ex, head, flat, gain=1.0):
    """The classifier: a dense layer whose currents an IF integrator sums over the steps
    (T times the mean of the logits: the same argmax), read by its final membrane."""
    logits = ex.add(FloatDense(name="head", inputs=[flat], shape=(head.out_features,),
                               weight=head.weight.detach().double().numpy() * gain,
                               bias=None if head.bias is None
                               else head.bias.detach().double().numpy()))
    total = ex.add(FloatIntegrator(name="logits", inputs=[logits], shape=(head.out_features,),
                                   beta=np.ones(head.out_features)))
    ex.add(FloatReadout(name="class", inputs=[total], shape=(), mode="final_membrane"))


def export(model, timesteps, *, options=None, calibration=None, **network_options):
    """:func:`to_float_network`, then hwgen's post-training quantization
    (:func:`~hwgen.compiler.passes.quantize.quantize`, ``options`` and ``calibration`` as
    there): a validated integer model."""
    return quantize(to_float_network(model, timesteps, **network_options), options,
                    calibration)
