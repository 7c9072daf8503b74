"""Export a trained snnTorch ``nn.Sequential`` to a NIR graph (and ``.nir`` file) hwgen reads.

snnTorch 1.0's own ``export_to_nir`` cannot produce such a file:

- its LIF nodes carry scalar parameters and empty shapes, so NIR's type inference (which
  ``export_to_nir`` itself runs) fails, and ``nir.write`` cannot store the scalars;
- traced with a batch dimension, the Input node's shape conflicts with the first layer;
- it does not record ``reset_mechanism`` or ``reset_delay``, so no reader can tell a
  subtract-and-one-step-late Leaky (snnTorch's default) from a reset-to-zero one -- and
  snnTorch's own ``import_nir`` reads every LIF back as reset-to-zero, same step;
- ``beta = 1`` becomes tau = r = infinity.

This helper walks the Sequential itself and tracks shapes, writes every neuron parameter
per neuron, exports ``beta = 1`` as an IF node, a ``Synaptic`` as a CubaLIF and an ``RLeaky`` /
``RSynaptic`` as snnTorch's own recurrent subgraph, and records what NIR cannot express in
node metadata (``hwgen.fire``, ``hwgen.reset``, ``hwgen.order``,
``hwgen.membrane_rounding``; docs/frontends.md), which hwgen honours and other NIR
readers ignore. NIR has no max pooling: a ``MaxPool2d`` is written as a ``SumPool2d`` node
of the same geometry with metadata ``hwgen.pool = "max"`` (hwgen's reader pools by the
maximum; another reader sees a sum pool). A ``BatchNorm2d`` / ``BatchNorm1d`` right after a
convolution / Linear is folded into its weight and bias with the running statistics
(docs/semantics.md 3a). Time constants follow snnTorch's convention (tau = dt/(1-beta),
r = tau/dt, dt = 1e-4 s), so the file also means what snnTorch's exporter would have
meant. torch and snntorch are imported only when this module is used.
"""

from collections import OrderedDict

import numpy as np

from hwgen.atomic import atomic_file
from hwgen.errors import UnsupportedError

DT = 1e-4
"""The time step snnTorch's exporter assumes; tau = DT / (1 - beta)."""


def _numpy(tensor, shape=None):
    array = tensor.detach().cpu().numpy().astype(np.float64) if hasattr(tensor, "detach") \
        else np.asarray(tensor, dtype=np.float64)
    return array if shape is None else np.broadcast_to(array, shape).copy()


def _pair_out(size, kernel, stride, padding, dilation):
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _settings(where, module, torch):
    """The node metadata recording what NIR cannot express of a Leaky or Synaptic."""
    if getattr(module, "inhibition", False):
        raise UnsupportedError(f"{where}: inhibition cannot be exported")
    graded = _numpy(module.graded_spikes_factor)
    if not np.all(graded == 1.0):
        raise UnsupportedError(f"{where}: graded spikes (graded_spikes_factor != 1) cannot be "
                               f"exported; spikes are bits")
    quant = getattr(module, "state_quant", False)
    if quant in (False, None):
        rounding = "exact"
    elif quant is torch.floor:
        rounding = "floor"
    else:
        raise UnsupportedError(f"{where}: state_quant other than torch.floor cannot be "
                               f"represented")
    return {"hwgen.fire": "gt", "hwgen.reset": module.reset_mechanism,
            "hwgen.order": "delayed" if module.reset_delay else "snntorch_same_step",
            "hwgen.membrane_rounding": rounding, "snntorch.module": type(module).__name__}


def _leaky(name, module, shape, torch):
    import nir
    where = f"module {name!r} ({type(module).__name__})"
    metadata = _settings(where, module, torch)
    beta = np.clip(_numpy(module.beta, shape), 0.0, 1.0)
    threshold = _numpy(module.threshold, shape)
    zeros = np.zeros(shape)
    if np.all(beta == 1.0):
        return nir.IF(r=np.full(shape, 1.0 / DT), v_threshold=threshold, v_reset=zeros,
                      metadata=metadata)
    # beta = 1 beside beta < 1: tau = r = inf for those neurons (snnTorch's own convention,
    # r = tau/dt); the node's snntorch.module metadata tells hwgen's reader the gain is 1
    with np.errstate(divide="ignore"):
        tau = DT / (1.0 - beta)
    return nir.LIF(tau=tau, r=tau / DT, v_leak=zeros, v_threshold=threshold, v_reset=zeros,
                   metadata=metadata)


def _synaptic(name, module, shape, torch):
    """A Synaptic(alpha, beta) as a CubaLIF with snnTorch's own convention (tau_syn =
    dt/(1-alpha), w_in = tau_syn/dt, tau_mem = dt/(1-beta), r = tau_mem/dt: one Euler step
    is then syn = alpha*syn + I, mem = beta*mem + syn). alpha or beta = 1 is an infinite time
    constant and gain, which hwgen reads back as gain 1 (NIR has no current-based IF).
    ``state_quant=torch.floor`` floors both states, recorded as ``floor`` rounding; snnTorch
    adds alpha*syn + I to beta*mem before that floor: ``joint`` synaptic rounding."""
    import nir
    where = f"module {name!r} ({type(module).__name__})"
    metadata = {**_settings(where, module, torch), "hwgen.synapse_rounding": "joint"}
    alpha = np.clip(_numpy(module.alpha, shape), 0.0, 1.0)
    beta = np.clip(_numpy(module.beta, shape), 0.0, 1.0)
    zeros = np.zeros(shape)
    with np.errstate(divide="ignore"):
        tau_syn = DT / (1.0 - alpha)
        tau_mem = DT / (1.0 - beta)
    return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / DT, v_leak=zeros,
                       v_threshold=_numpy(module.threshold, shape), v_reset=zeros,
                       w_in=tau_syn / DT, metadata=metadata)


RECURRENT = ("RLeaky", "RSynaptic")


def _recurrent_weight(where, module, n):
    """The (n, n) recurrent weight and bias (None) of an RLeaky / RSynaptic: its
    ``Linear(n, n)`` (all_to_all=True), or diag(V) (all_to_all=False, one weight per
    neuron, a scalar V broadcast)."""
    import torch
    recurrent = module.recurrent
    if isinstance(recurrent, torch.nn.Linear):
        if recurrent.in_features != n or recurrent.out_features != n:
            raise UnsupportedError(f"{where}: its recurrent Linear is {recurrent.in_features} "
                                   f"-> {recurrent.out_features}, its input has {n} neurons")
        return _numpy(recurrent.weight), (None if recurrent.bias is None
                                          else _numpy(recurrent.bias))
    if type(recurrent).__name__ == "RecurrentOneToOne":
        v = _numpy(recurrent.V)
        if v.size not in (1, n):
            raise UnsupportedError(f"{where}: V has {v.size} values for {n} neurons")
        return np.diag(np.broadcast_to(v.reshape(-1), (n,))), None
    raise UnsupportedError(f"{where}: its recurrent {type(recurrent).__name__} (a convolution) "
                           f"cannot be exported; hwgen's recurrent layers are fully connected "
                           f"(linear_features) or one-to-one (all_to_all=False)")


def _recurrent(name, module, shape, torch):
    """An RLeaky / RSynaptic as snnTorch 1.0's own export_to_nir writes it: a NIR subgraph
    ``input -> lif -> output`` with the cycle ``lif -> w_rec -> lif`` (the recurrent
    Linear, an Affine with its bias; a diagonal Linear for all_to_all=False), the neuron
    written as :func:`_leaky` / :func:`_synaptic` write a Leaky / Synaptic. NIR reads the
    back edge one step late, as snnTorch adds ``recurrent(spk)`` of the previous step."""
    import nir
    kind = type(module).__name__
    where = f"module {name!r} ({kind})"
    if len(shape) != 1:
        raise UnsupportedError(f"{where}: its input has shape {shape}; a recurrent layer "
                               f"takes a vector (put it after a Linear)")
    n = shape[0]
    if kind == "RLeaky" and module.reset_mechanism == "zero" and module.reset_delay:
        # RLeaky's zero reset is state - reset * state over the whole update, input included
        # (unlike Leaky's, which zeroes the leaked membrane only).
        raise UnsupportedError(f"{where}: reset_mechanism='zero' with reset_delay=True zeroes "
                               f"the whole step after a spike, its input too (unlike Leaky); "
                               f"hwgen's voltage-based zero reset keeps the input; use "
                               f"reset_delay=False or another reset_mechanism")
    if kind == "RSynaptic" and not module.reset_delay:
        raise UnsupportedError(f"{where}: snnTorch 1.0's RSynaptic(reset_delay=False) applies "
                               f"its same-step reset to local copies and loses it (it "
                               f"computes what reset_delay=True does, and fails with "
                               f"init_hidden=True); use reset_delay=True")
    weight, bias = _recurrent_weight(where, module, n)
    neuron = (_leaky if kind == "RLeaky" else _synaptic)(name, module, shape, torch)
    synapse = nir.Linear(weight=weight) if bias is None else nir.Affine(weight=weight, bias=bias)
    return nir.NIRGraph(nodes={"input": nir.Input(np.array([n])), "lif": neuron,
                               "w_rec": synapse, "output": nir.Output(np.array([n]))},
                        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"),
                               ("lif", "output")], type_check=False)


def _max_pool(where, module, shape, torch):
    """A MaxPool2d as a SumPool2d node marked ``hwgen.pool = "max"`` (NIR has no max pool)."""
    import nir
    pair = torch.nn.modules.utils._pair
    kernel, padding = pair(module.kernel_size), pair(module.padding)
    stride = pair(module.stride or module.kernel_size)
    if module.ceil_mode or pair(module.dilation) != (1, 1) or module.return_indices:
        raise UnsupportedError(f"{where}: ceil_mode, dilation and return_indices cannot be "
                               f"exported")
    if len(shape) != 3:
        raise UnsupportedError(f"{where}: takes (channels, height, width), gets shape {shape}")
    node = nir.SumPool2d(kernel_size=np.array(kernel), stride=np.array(stride),
                         padding=np.array(padding), metadata={"hwgen.pool": "max"})
    return node, (shape[0], *[_pair_out(n, k, s, p, 1) for n, k, s, p in zip(
        shape[1:], kernel, stride, padding)])


def _fold_batch_norm(where, module, previous, torch):
    """Fold an eval-mode batch norm into the convolution / Linear node ``previous`` (the
    node of the module right before it): w' = w g, b' = (b - mean) g + beta per channel,
    g = gamma / sqrt(var + eps). Returns the node to put in ``previous``'s place."""
    import nir
    if module.training:
        raise UnsupportedError(f"{where}: is in training mode, where it normalises by each "
                               f"batch's statistics; call net.eval() to export its running "
                               f"statistics")
    if module.running_mean is None:
        raise UnsupportedError(f"{where}: track_running_stats=False keeps no running "
                               f"statistics to fold")
    kinds = (nir.Conv2d,) if isinstance(module, torch.nn.BatchNorm2d) else (nir.Affine,
                                                                            nir.Linear)
    if not isinstance(previous, kinds):
        needs = ("a Conv2d" if isinstance(module, torch.nn.BatchNorm2d) else "a Linear")
        raise UnsupportedError(f"{where}: hwgen folds a batch norm into the layer before it, "
                               f"which must be {needs}; here it is "
                               f"{type(previous).__name__ if previous is not None else 'none'}")
    weight = previous.weight
    if weight.shape[0] != module.num_features:
        raise UnsupportedError(f"{where}: normalises {module.num_features} channels, the "
                               f"layer before it has {weight.shape[0]}")
    mean, var = _numpy(module.running_mean), _numpy(module.running_var)
    gamma = _numpy(module.weight) if module.weight is not None else np.ones_like(mean)
    beta = _numpy(module.bias) if module.bias is not None else np.zeros_like(mean)
    g = gamma / np.sqrt(var + module.eps)
    bias = getattr(previous, "bias", None)
    bias = np.zeros(weight.shape[0]) if bias is None else np.asarray(bias, dtype=np.float64)
    new_weight = np.asarray(weight, dtype=np.float64) * g.reshape(-1, *([1] * (weight.ndim - 1)))
    new_bias = (bias - mean) * g + beta
    if isinstance(previous, nir.Conv2d):
        previous.weight, previous.bias = new_weight, new_bias
        return previous
    return nir.Affine(weight=new_weight, bias=new_bias)


def to_nir(net, input_shape, *, timesteps=None, input_encoding=None, input_name="input",
           output_name="output"):
    """The NIR graph of ``net`` (a ``torch.nn.Sequential`` of Linear, Leaky, Synaptic,
    RLeaky, RSynaptic, Flatten, Conv1d, Conv2d, AvgPool2d, MaxPool2d, and BatchNorm2d /
    BatchNorm1d right after a Conv2d / Linear; Dropout and Identity are skipped) for inputs
    of ``input_shape`` (no batch dimension). A recurrent layer becomes a NIR subgraph as
    snnTorch's own exporter writes it (:func:`_recurrent`); a MaxPool2d a SumPool2d node
    with metadata ``hwgen.pool = "max"``; a batch norm is folded into the layer before it
    (:func:`_fold_batch_norm`).

    ``timesteps``: recorded as graph metadata ``hwgen.timesteps``. ``input_encoding``:
    ``("if", threshold)`` records that inputs are integers through hwgen's IF encoder.
    """
    import nir
    import snntorch
    import torch

    if not isinstance(net, torch.nn.Sequential):
        raise UnsupportedError(f"expected a torch.nn.Sequential, got {type(net).__name__}; "
                               f"wrap the layers in one")
    shape = tuple(int(d) for d in input_shape)
    input_metadata = {}
    if input_encoding is not None:
        encoding, threshold = input_encoding
        if encoding != "if":
            raise UnsupportedError(f"input encoding {encoding!r} is not 'if'")
        input_metadata = {"hwgen.encoding": "if", "hwgen.encoder_threshold": int(threshold)}
    nodes = OrderedDict([(input_name, nir.Input(np.array(shape), metadata=input_metadata))])
    for name, module in net.named_children():
        where = f"module {name!r} ({type(module).__name__})"
        if isinstance(module, (torch.nn.Dropout, torch.nn.Identity)):
            continue
        if name in (input_name, output_name) or name in nodes:
            raise UnsupportedError(f"{where}: its name clashes with another node")
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            last = next(reversed(nodes))
            if isinstance(module, torch.nn.BatchNorm1d) and len(shape) != 1:
                raise UnsupportedError(f"{where}: hwgen folds a BatchNorm1d into the Linear "
                                       f"before it; its input has shape {shape}")
            nodes[last] = _fold_batch_norm(where, module, nodes[last], torch)
            continue
        if isinstance(module, torch.nn.Linear):
            if shape != (module.in_features,):
                raise UnsupportedError(f"{where}: expects {module.in_features} inputs, gets "
                                       f"shape {shape}")
            weight = _numpy(module.weight)
            node = (nir.Affine(weight=weight, bias=_numpy(module.bias)) if module.bias is not None
                    else nir.Linear(weight=weight))
            shape = (module.out_features,)
        elif isinstance(module, snntorch.Leaky) and type(module).__name__ == "Leaky":
            node = _leaky(name, module, shape, torch)
        elif isinstance(module, snntorch.Synaptic) and type(module).__name__ == "Synaptic":
            node = _synaptic(name, module, shape, torch)
        elif type(module).__name__ in RECURRENT:
            node = _recurrent(name, module, shape, torch)
        elif isinstance(module, torch.nn.Flatten):
            rank = len(shape) + 1                      # torch counts the batch dimension
            start = module.start_dim % rank - 1
            end = module.end_dim % rank - 1
            if start < 0:
                raise UnsupportedError(f"{where}: flattening the batch dimension")
            node = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=start,
                               end_dim=end)
            shape = (*shape[:start], int(np.prod(shape[start:end + 1])), *shape[end + 1:])
        elif isinstance(module, (torch.nn.Conv1d, torch.nn.Conv2d)):
            dims = 1 if isinstance(module, torch.nn.Conv1d) else 2
            if module.padding_mode != "zeros":
                raise UnsupportedError(f"{where}: padding_mode {module.padding_mode!r}; only "
                                       f"zero padding is supported")
            if len(shape) != dims + 1 or shape[0] != module.in_channels:
                raise UnsupportedError(f"{where}: expects ({module.in_channels}, ...) inputs, "
                                       f"gets shape {shape}")
            padding = module.padding if isinstance(module.padding, str) else module.padding
            bias = (_numpy(module.bias) if module.bias is not None
                    else np.zeros(module.out_channels))
            cls = nir.Conv1d if dims == 1 else nir.Conv2d
            spatial = shape[1:]
            node = cls(input_shape=spatial[0] if dims == 1 else spatial,
                       weight=_numpy(module.weight),
                       stride=module.stride[0] if dims == 1 else module.stride,
                       padding=(padding if isinstance(padding, str)
                                else (padding[0] if dims == 1 else padding)),
                       dilation=module.dilation[0] if dims == 1 else module.dilation,
                       groups=module.groups, bias=bias)
            if isinstance(padding, str):
                pads = ([0] * dims if padding == "valid" else
                        [d * (k - 1) // 2 for d, k in zip(module.dilation, module.kernel_size)])
            else:
                pads = list(padding)
            shape = (module.out_channels, *[
                _pair_out(n, k, s, p, d) for n, k, s, p, d in zip(
                    spatial, module.kernel_size, module.stride, pads, module.dilation)])
        elif isinstance(module, torch.nn.MaxPool2d):
            node, shape = _max_pool(where, module, shape, torch)
        elif isinstance(module, torch.nn.AvgPool2d):
            kernel = torch.nn.modules.utils._pair(module.kernel_size)
            stride = torch.nn.modules.utils._pair(module.stride or module.kernel_size)
            padding = torch.nn.modules.utils._pair(module.padding)
            if module.ceil_mode or module.divisor_override is not None or (
                    any(padding) and not module.count_include_pad):
                raise UnsupportedError(f"{where}: ceil_mode, divisor_override and "
                                       f"count_include_pad=False cannot be exported")
            node = nir.AvgPool2d(kernel_size=np.array(kernel), stride=np.array(stride),
                                 padding=np.array(padding))
            shape = (shape[0], *[_pair_out(n, k, s, p, 1) for n, k, s, p in zip(
                shape[1:], kernel, stride, padding)])
        else:
            raise UnsupportedError(f"{where}: not supported by the exporter (Linear, Leaky, "
                                   f"Synaptic, RLeaky, RSynaptic, Flatten, Conv1d, Conv2d, "
                                   f"AvgPool2d, MaxPool2d, BatchNorm2d, BatchNorm1d, Dropout, "
                                   f"Identity)")
        nodes[name] = node
    nodes[output_name] = nir.Output(np.array(shape))
    names = list(nodes)
    metadata = {"exporter": "hwgen.compiler.frontends.snntorch_export",
                "snntorch_version": snntorch.__version__, "dt": DT}
    if timesteps is not None:
        metadata["hwgen.timesteps"] = int(timesteps)
    return nir.NIRGraph(nodes=dict(nodes), edges=list(zip(names, names[1:])),
                        metadata=metadata, type_check=True)


def export(net, path, input_shape, **options):
    """Write ``net`` to the ``.nir`` file ``path`` (atomically); return the graph.

    Options as for :func:`to_nir`.
    """
    import nir
    graph = to_nir(net, input_shape, **options)
    with atomic_file(path, mode="w+b") as f:      # h5py reads back what it writes
        nir.write(f, graph)
    return graph
