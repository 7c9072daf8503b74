"""The PyTorch spiking-transformer frontend (compiler/frontends/torch_transformer.py):

- its SDSA, MLP, SSA and Spikformer block modules against SpikingJelly 2.0's own blocks (an
  oracle hwgen did not write), with the same weights and batch-norm statistics;
- its export against its own forward pass: the float network (hwgen's float simulation)
  spikes exactly like the modules, every neuron layer;
- on integer-valued weights, the integer reference against the modules, spike for spike.
"""

import numpy as np
import pytest

from hwgen.compiler.frontends import native
from hwgen.compiler.ir import (LIF, Conv2d, CurrentMatmul, SpikeAnd, TokenSum,
                               float_reference, reference)
from hwgen.errors import UnsupportedError

torch = pytest.importorskip("torch")
from hwgen.compiler.frontends import torch_transformer as tt  # noqa: E402  (needs torch)
from hwgen.sim.workloads import random_batch_norms  # noqa: E402


class _SpikingJelly:
    """SpikingJelly 2.0's modules, imported by the oracle tests only (they skip without it)."""

    def __init__(self):
        pytest.importorskip("spikingjelly")
        from spikingjelly.activation_based import functional
        from spikingjelly.activation_based.layer import attention
        from spikingjelly.activation_based.model import spike_driven_transformer, spikformer
        self.functional, self.attention = functional, attention
        self.sdt, self.spikformer = spike_driven_transformer, spikformer


@pytest.fixture(scope="module")
def sj():
    return _SpikingJelly()


T = 4


def _copy(conv_bn, sj_conv, sj_bn):
    """Our ConvBN's parameters and statistics into SpikingJelly's conv + bn pair."""
    sj_conv.load_state_dict(conv_bn.conv.state_dict())
    sj_bn.load_state_dict(conv_bn.bn.state_dict())


def _spikes_of(module):
    """Record every LIF's output spikes by qualified name."""
    record = {}
    for name, lif in module.named_modules():
        if isinstance(lif, (tt.LIF, torch.nn.Module)) and hasattr(lif, "v_threshold"):
            lif.register_forward_hook(
                lambda m, i, o, name=name: record.__setitem__(name, o.detach().clone()))
    return record


@pytest.fixture
def generator():
    torch.manual_seed(0)
    return torch.Generator().manual_seed(0)


@pytest.mark.parametrize("heads", [1, 2])
def test_sdsa_is_spikingjellys_spike_driven_self_attention(sj, generator, heads):
    ours = tt.SDSA(8, heads)
    random_batch_norms(ours, generator)
    with torch.no_grad():
        for parameter in ours.parameters():
            parameter.mul_(3)                   # enough current for every layer to spike
    theirs = sj.attention.SpikeDrivenSelfAttention(8, heads)
    for name in ("q", "k", "v"):
        _copy(getattr(ours, f"{name}_conv"), getattr(theirs, f"{name}_conv"),
              getattr(theirs, f"{name}_bn"))
    _copy(ours.proj_conv, theirs.proj_conv, theirs.proj_bn)
    ours.eval(), theirs.eval()
    ours_spikes, theirs_spikes = _spikes_of(ours), _spikes_of(theirs)
    x = torch.randn(T, 3, 8, 4, 4, generator=generator) * 2
    with torch.no_grad():
        sj.functional.reset_net(theirs)
        expected = theirs(x)
        got = ours(x)
    assert set(ours_spikes) == set(theirs_spikes) == {
        "shortcut_lif", "q_lif", "k_lif", "v_lif", "attn_lif"}
    for name, spikes in theirs_spikes.items():
        # SpikingJelly's attn_lif sees (T, B, heads, 1, d): the same C numbers per step
        assert torch.equal(ours_spikes[name].reshape(spikes.shape), spikes), name
        assert 0 < spikes.mean() < 1, name
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("hidden", [16, 8])
def test_mlp_is_spikingjellys_spike_driven_transformer_mlp(sj, generator, hidden):
    ours = tt.MLP(8, hidden)
    random_batch_norms(ours, generator)
    theirs = sj.sdt._MLP(8, hidden, None, {})
    _copy(ours.fc1, theirs.fc1, theirs.bn1)
    _copy(ours.fc2, theirs.fc2, theirs.bn2)
    assert ours.residual == theirs.residual == (hidden == 8)
    ours.eval(), theirs.eval()
    x = torch.randn(T, 3, 8, 4, 4, generator=generator) * 2
    with torch.no_grad():
        sj.functional.reset_net(theirs)
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-6, atol=1e-6)


def _model(generator, *, depth=2, heads=2, hidden=16, dim=8, head="mean", rpe=True,
           attention="sdsa"):
    model = tt.SpikeDrivenTransformer(1, 8, 2, dim, heads, depth, hidden, 10, head=head,
                                      rpe=rpe, attention=attention)
    random_batch_norms(model, generator)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(3)                   # enough current for every layer to spike
    return model.eval()


def _run(model, spikes):
    record = _spikes_of(model)
    with torch.no_grad():
        logits = model(torch.tensor(spikes, dtype=torch.float32).transpose(0, 1))
    return logits.numpy(), {n: s.transpose(0, 1).numpy() for n, s in record.items()}


@pytest.mark.parametrize("hidden, head, rpe, attention, hard_reset", [
    (16, "mean", True, "sdsa", True), (8, "mean", False, "sdsa", True),
    (16, "flatten", True, "sdsa", False), (16, "mean", True, "v2", True)])
def test_the_exported_float_network_spikes_like_the_modules(generator, hidden, head, rpe,
                                                            attention, hard_reset):
    model = _model(generator, hidden=hidden, head=head, rpe=rpe, attention=attention)
    for lif in model.modules():
        if isinstance(lif, tt.LIF):
            lif.hard_reset = hard_reset         # soft: subtract tau * v_threshold
    spikes = (np.random.default_rng(0).random((6, T, 1, 8, 8)) < 0.4).astype(np.uint8)
    logits, record = _run(model, spikes)
    trace = float_reference.run(tt.to_float_network(model, T), spikes)
    assert len(record) == rpe + 2 * 7 + 1
    for name, theirs in record.items():
        ours = trace.spikes[name]
        assert np.array_equal(ours, theirs.reshape(ours.shape)), name
        assert 0 < theirs.mean() < 1, name
    np.testing.assert_allclose(trace.potentials["logits"][:, -1] / T, logits, rtol=1e-5,
                               atol=1e-5)


def _integer_model(generator, hard_reset, head, attention="sdsa"):
    """Integer weights, no batch norms, IF neurons (beta = 1: no rounding anywhere) but
    SDSA's attention mask's tau = 2 one, whose membrane is 0 after every step (v2's is IF
    too, with threshold 0.5 / 0.125 = 4 on the exact Q (K^T V))."""
    model = tt.SpikeDrivenTransformer(1, 8, 2, 8, 2, 2, 16, 10, head=head, attention=attention)
    for module in model.modules():
        if isinstance(module, tt.ConvBN):
            module.bn = None
        if isinstance(module, tt.LIF) and module.v_threshold == 1.0:
            module.tau, module.v_threshold, module.hard_reset = None, 2.0, hard_reset
        elif isinstance(module, tt.LIF) and attention == "v2":
            module.tau = None
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randint(-3, 4, parameter.shape, generator=generator))
    return model.eval()


@pytest.mark.parametrize("hard_reset, head, attention", [
    (True, "mean", "sdsa"), (False, "mean", "sdsa"), (True, "flatten", "sdsa"),
    (True, "mean", "v2")])
def test_integer_reference_spikes_like_the_modules_on_integer_weights(generator, hard_reset,
                                                                     head, attention):
    model = _integer_model(generator, hard_reset, head, attention)
    spikes = (np.random.default_rng(1).random((8, T, 1, 8, 8)) < 0.4).astype(np.uint8)
    logits, record = _run(model, spikes)
    ir = tt.export(model, T)
    report = ir.metadata["quantization"]["layers"]
    assert all(entry["scale"] == 1.0 for entry in report)
    trace = reference.run(ir, spikes)
    for name, theirs in record.items():
        ours = trace.spikes[name]
        assert np.array_equal(ours, theirs.reshape(ours.shape)), name
        assert 0 < theirs.mean() < 1, name
    assert np.array_equal(trace.membranes["logits"], np.rint(logits * T).astype(np.int64))
    assert np.array_equal(trace.predictions, np.argmax(logits, axis=1))
    # the residual stream is built once, its readers on one scale: each convolution once
    convolutions = [op.name for op in ir.ops if isinstance(op, Conv2d)]
    assert len(convolutions) == len(set(convolutions)) == 2 + 2 * 6
    shared = {entry["layer"]: entry.get("shares_scale_with") for entry in report}
    assert set(shared["blocks.1.mlp.lif1"]) == {
        "patch_embed.final_lif", "blocks.0.attn.shortcut_lif" if attention == "sdsa"
        else "blocks.0.attn.head_lif", "blocks.0.mlp.lif1",
        "blocks.1.attn.shortcut_lif" if attention == "sdsa" else "blocks.1.attn.head_lif",
        "head_lif"}
    # the ops of the attention, in the saved model too
    kinds = {type(op) for op in ir.ops}
    if attention == "sdsa":
        assert {SpikeAnd, TokenSum, LIF} <= kinds and CurrentMatmul not in kinds
    else:
        assert CurrentMatmul in kinds and SpikeAnd not in kinds
        assert ir["blocks.0.attn.attn_lif"].threshold.tolist() == [4] * 8 * 16
    again = native.loads(native.dumps(ir))
    assert again == ir


def test_export_refuses_a_model_in_training_mode(generator):
    model = _model(generator).train()
    with pytest.raises(UnsupportedError, match=r"^to_float_network: the model is in training "
                                               r"mode; call \.eval\(\)"):
        tt.to_float_network(model, T)
    with pytest.raises(UnsupportedError,
                       match="expects a SpikeDrivenTransformer or a Spikformer, got SDSA"):
        tt.to_float_network(tt.SDSA(8), T)


def test_export_refuses_a_batch_norm_without_running_statistics(generator):
    model = _model(generator)
    model.blocks[0].attn.q_conv.bn = torch.nn.BatchNorm2d(8, track_running_stats=False)
    with pytest.raises(UnsupportedError, match=r"^blocks\.0\.attn\.q_conv: a BatchNorm2d "
                                               r"without running statistics"):
        tt.to_float_network(model.eval(), T)


def test_modules_train_with_surrogate_gradients(generator):
    model = tt.SpikeDrivenTransformer(1, 8, 2, 8, 2, 1, 16, 10)
    spikes = (torch.rand(T, 4, 1, 8, 8, generator=generator) < 0.4).float()
    loss = torch.nn.functional.cross_entropy(model(spikes), torch.arange(4))
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
    assert model.patch_embed.proj.conv.weight.grad.abs().sum() > 0
    assert model.blocks[0].attn.q_conv.conv.weight.grad.abs().sum() > 0


# --- Spikformer -------------------------------------------------------------------------

def _copy_1d(conv_bn, sj_pair):
    """Our ConvBN (a 1x1 Conv2d) into SpikingJelly's SeqToANNContainer(Conv1d, BatchNorm1d)."""
    sj_pair[0].weight.data.copy_(conv_bn.conv.weight.data[..., 0])
    sj_pair[1].load_state_dict(conv_bn.bn.state_dict())


def _strengthen(module, generator):
    random_batch_norms(module, generator)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.mul_(3)                   # enough current for every layer to spike


@pytest.mark.parametrize("heads", [1, 2])
def test_ssa_is_spikingjellys_spiking_self_attention(sj, generator, heads):
    ours = tt.SSA(8, heads)
    _strengthen(ours, generator)
    theirs = sj.attention.SpikingSelfAttention(8, heads)
    _copy_1d(ours.qkv_conv, theirs.qkv_conv_bn)
    _copy_1d(ours.proj_conv, theirs.proj_conv_bn)
    ours.eval(), theirs.eval()
    ours_spikes, theirs_spikes = _spikes_of(ours), _spikes_of(theirs)
    x = (torch.rand(T, 3, 8, 4, 4, generator=generator) < 0.4).float()
    with torch.no_grad():
        sj.functional.reset_net(theirs)
        expected = theirs(x.flatten(3))
        got = ours(x)
    assert set(ours_spikes) == set(theirs_spikes) == {"qkv_lif", "attn_lif", "proj_lif"}
    for name, spikes in theirs_spikes.items():
        assert torch.equal(ours_spikes[name].reshape(spikes.shape), spikes), name
        assert 0 < spikes.mean() < 1, name
    assert torch.equal(got.flatten(3), expected)


def test_spikformer_block_is_spikingjellys(sj, generator):
    ours = tt.SpikformerBlock(8, 2, 32)
    _strengthen(ours, generator)
    theirs = sj.spikformer.SpikformerBlock(8, 2, mlp_ratio=4.0)
    _copy_1d(ours.attn.qkv_conv, theirs.attn.qkv_conv_bn)
    _copy_1d(ours.attn.proj_conv, theirs.attn.proj_conv_bn)
    _copy_1d(ours.mlp.fc1, theirs.mlp.fc1)
    _copy_1d(ours.mlp.fc2, theirs.mlp.fc2)
    ours.eval(), theirs.eval()
    x = (torch.rand(T, 3, 8, 4, 4, generator=generator) < 0.4).float()
    with torch.no_grad():
        sj.functional.reset_net(theirs)
        expected = theirs(x)
        got = ours(x)
    assert torch.equal(got, expected)
    assert got.max() > 1                        # spike residuals: counts, not spikes


def _spikformer_spikes(model, spikes):
    """Every LIF's spikes by IR name: the module's one qkv_lif is three layers there."""
    logits, record = _run(model, spikes)
    for name in [n for n in record if n.endswith("qkv_lif")]:
        q, k, v = np.split(record.pop(name), 3, axis=2)
        record.update({f"{name}.q": q, f"{name}.k": k, f"{name}.v": v})
    return logits, record


def test_the_exported_spikformer_spikes_like_the_modules(generator):
    model = tt.Spikformer(1, 8, 2, 8, 2, 2, 16, 10)
    _strengthen(model, generator)
    model.eval()
    spikes = (np.random.default_rng(0).random((6, T, 1, 8, 8)) < 0.4).astype(np.uint8)
    logits, record = _spikformer_spikes(model, spikes)
    trace = float_reference.run(tt.to_float_network(model, T), spikes)
    assert len(record) == 2 + 2 * 7
    for name, theirs in record.items():
        ours = trace.spikes[name]
        assert np.array_equal(ours, theirs.reshape(ours.shape)), name
        assert 0 < theirs.mean() < 1, name
    np.testing.assert_allclose(trace.potentials["logits"][:, -1] / T, logits, rtol=1e-5,
                               atol=1e-5)


def test_integer_reference_spikes_like_the_spikformer_on_integer_weights(generator):
    """IF neurons everywhere (the attention's with threshold 0.5 / 0.125 = 4 on the exact
    Q (K^T V)), integer weights, no batch norms: spike for spike."""
    model = tt.Spikformer(1, 8, 2, 8, 2, 2, 16, 10)
    for module in model.modules():
        if isinstance(module, tt.ConvBN):
            module.bn = None
        if isinstance(module, tt.LIF):
            module.tau = None
            module.v_threshold = 2.0 if module.v_threshold == 1.0 else module.v_threshold
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randint(-3, 4, parameter.shape, generator=generator))
        model.head.weight.mul_(16)              # the mean over 16 tokens: integers again
    model.eval()
    spikes = (np.random.default_rng(1).random((8, T, 1, 8, 8)) < 0.4).astype(np.uint8)
    logits, record = _spikformer_spikes(model, spikes)
    ir = tt.export(model, T)
    assert all(entry["scale"] == 1.0 for entry in ir.metadata["quantization"]["layers"])
    assert ir["blocks.0.attn.attn_lif"].threshold.tolist() == [4] * 8 * 16
    trace = reference.run(ir, spikes)
    for name, theirs in record.items():
        ours = trace.spikes[name]
        assert np.array_equal(ours, theirs.reshape(ours.shape)), name
        assert 0 < theirs.mean() < 1, name
    assert np.array_equal(trace.membranes["logits"], np.rint(logits * T).astype(np.int64))
    assert {CurrentMatmul} <= {type(op) for op in ir.ops}
    assert native.loads(native.dumps(ir)) == ir
