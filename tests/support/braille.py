"""The NIR paper's braille-reading recurrent network, with random weights.

Its shape as the NIR paper's ``03_rnn`` graphs (exported from snnTorch) have it: 12 taxel
inputs -> Affine 12 -> 38 -> a CubaLIF layer of 38 neurons with a recurrent Affine 38 -> 38,
the two stored in a NIR subgraph ``lif1`` (``lif1.lif``, ``lif1.w_rec``) -> Affine 38 -> 7
-> CubaLIF 7 (the 7 letters), T = 256 steps. The trained weights are not used: this one is
drawn from ``seed``, scaled so that on random input spikes of ~10-20 % density both layers
spike some of the time (neither silent nor saturated). Time constants give exactly
representable decays with NIR's Euler step at dt = 1e-4 s (the graph's ``dt`` metadata):
alpha = 0.75, beta = 0.875, input gains 1, so only the weights need rounding. The reset is
NIR's (to zero, in the step of the spike), as in the paper's ``braille_noDelay_*_zero``.
"""

import numpy as np

INPUTS, HIDDEN, CLASSES = 12, 38, 7
DT = 1e-4
ALPHA, BETA = 0.75, 0.875


def _cuba(n, threshold):
    import nir
    tau_syn, tau_mem = DT / (1 - ALPHA), DT / (1 - BETA)
    # w_in = tau_syn/dt and r = tau_mem/dt make both input gains 1 (docs/frontends.md)
    return nir.CubaLIF(tau_syn=np.full(n, tau_syn), tau_mem=np.full(n, tau_mem),
                       r=np.full(n, tau_mem / DT), v_leak=np.zeros(n),
                       v_threshold=np.full(n, threshold), v_reset=np.zeros(n),
                       w_in=np.full(n, tau_syn / DT))


def braille_graph(seed=0, timesteps=256):
    """A ``nir.NIRGraph`` of the braille RNN's shape with weights drawn from ``seed``, and
    ``hwgen.timesteps`` = ``timesteps`` in its metadata."""
    import nir
    rng = np.random.default_rng(seed)
    fc1 = nir.Affine(weight=rng.normal(0.0, 0.5, (HIDDEN, INPUTS)),
                     bias=rng.normal(-0.05, 0.02, HIDDEN))
    w_rec = nir.Affine(weight=rng.normal(-0.02, 0.12, (HIDDEN, HIDDEN)),
                       bias=np.zeros(HIDDEN))
    fc2 = nir.Affine(weight=rng.normal(0.0, 0.2, (CLASSES, HIDDEN)),
                     bias=rng.normal(-0.1, 0.02, CLASSES))
    lif1 = nir.NIRGraph(nodes={"input": nir.Input(np.array([HIDDEN])),
                               "lif": _cuba(HIDDEN, 1.0), "w_rec": w_rec,
                               "output": nir.Output(np.array([HIDDEN]))},
                        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"),
                               ("lif", "output")], type_check=False)
    return nir.NIRGraph(
        nodes={"input": nir.Input(np.array([INPUTS])), "fc1": fc1, "lif1": lif1,
               "fc2": fc2, "lif2": _cuba(CLASSES, 1.0),
               "output": nir.Output(np.array([CLASSES]))},
        edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
               ("lif2", "output")],
        metadata={"hwgen.timesteps": int(timesteps), "dt": DT,
                  "source": "shape of the NIR paper's braille RNN (paper/03_rnn), random "
                            f"weights (seed {seed})"},
        type_check=False)


def braille_inputs(samples=4, seed=0, timesteps=256, density=0.15):
    """Random input spikes (samples, T, 12) at ``density``."""
    rng = np.random.default_rng(seed)
    return (rng.random((samples, timesteps, INPUTS)) < density).astype(np.uint8)
