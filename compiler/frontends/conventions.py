"""What a NIR graph means, per source framework.

NIR describes neurons as continuous-time equations and stores no time step; every
framework discretises them its own way and some do not record their reset at all
(docs/frontends.md has the full table). Most frameworks discretise with forward Euler,
v[t+1] = v + dt/tau * ((v_leak - v) + R * I), so a LIF's decay is beta = 1 - dt/tau and
its input gain R * dt/tau; they differ in dt, in the spike comparison and in what a reset
means. Two frameworks step differently: Sinabs's LIF decays by exp(-dt/tau) with its input
normalised by 1 - exp(-dt/tau), and Norse's exporter writes tau as dt / tau_mem_inv (dt
times the time constant), and its IF adds its input unscaled whatever dt is. A
:class:`Framework` holds those conventions; the frontend applies them unless the user
overrides one (``--dt``, ``--fire``, ``--reset``, ``--order``, ``--spike-fn``) or the
node's metadata states it (the ``hwgen.*`` keys the snnTorch exporter helper writes).
"""

from dataclasses import dataclass

import numpy as np

from hwgen.errors import ConfigError


@dataclass(frozen=True)
class Framework:
    """``reset``: what a LIF/IF reset means (``zero``: to v_reset; ``subtract``: by the
    threshold); ``order``: when it happens (docs/semantics.md section 4).

    ``decay``: how a LIF's tau becomes a per-step decay and input gain (``euler``:
    beta = 1 - dt/tau, gain = r*dt/tau; ``exp``: beta = exp(-dt/tau), gain = r*(1 - beta)).
    ``tau_per_dt``: the exporter writes tau multiplied by dt (Norse), so tau/dt is the
    time constant. ``if_dt``: the step an IF node integrates with (gain r*if_dt), None for
    ``dt``. ``spike_fn``: ``multi`` if the framework's default neuron emits floor(v/theta)
    spikes per step (Sinabs's MultiSpike), which its NIR export does not record."""

    name: str
    dt: float
    dt_reason: str
    fire: str
    fire_reason: str
    reset: str
    order: str
    reset_reason: str
    decay: str = "euler"
    tau_per_dt: bool = False
    if_dt: float = None
    time_reason: str = None
    spike_fn: str = "single"
    synapse_unit_gain: bool = False
    synapse_reason: str = None

    def steps(self, tau, r, dt):
        """(beta, input gain) of a LIF node with time constant ``tau`` as written."""
        if self.tau_per_dt:
            tau = tau / dt
        if self.decay == "exp":
            beta = np.exp(-dt / tau)
            return beta, r * (1.0 - beta)
        return 1.0 - dt / tau, r * dt / tau

    def synapse_steps(self, tau_syn, w_in, dt):
        """(alpha, input gain) of a CubaLIF / CubaLI node's synapse: as a LIF's decay, except
        that a framework whose synapse adds its input unscaled (``synapse_unit_gain``:
        Norse's LIFCell, i += I) has gain w_in."""
        alpha, gain = self.steps(tau_syn, w_in, dt)
        return (alpha, w_in * np.ones_like(alpha)) if self.synapse_unit_gain else (alpha, gain)


FRAMEWORKS = {
    "generic": Framework(
        "generic", 1e-4, "NIR stores no dt; 1e-4 s is what snnTorch and SpikingJelly export with",
        "gt", "NIR defines a spike as v > v_threshold",
        "zero", "same_step", "NIR resets v to v_reset in the step of the spike"),
    "snntorch": Framework(
        "snntorch", 1e-4, "snnTorch's export_to_nir writes tau = dt/(1-beta) with dt = 1e-4 s",
        "gt", "snnTorch spikes when mem > threshold",
        "subtract", "delayed",
        "snnTorch's export_to_nir does not record the reset; assumed the Leaky default "
        "(reset_mechanism='subtract', reset_delay=True)"),
    "spikingjelly": Framework(
        "spikingjelly", 1e-4, "SpikingJelly's export_to_nir uses dt = 1e-4 s by default",
        "ge", "SpikingJelly's heaviside spikes when v >= v_threshold",
        "zero", "same_step",
        "SpikingJelly exports only hard-reset neurons (v = v_reset in the step of the spike)"),
    "norse": Framework(
        "norse", 1e-3, "Norse integrates with dt = 1e-3 s by default",
        "gt", "Norse spikes when v > v_th",
        "zero", "same_step", "Norse resets v to v_reset in the step of the spike",
        tau_per_dt=True, if_dt=1.0,
        time_reason="Norse 1.1's exporter writes a LIFBox/LIBox tau as dt / tau_mem_inv "
                    "(dt times the time constant), so beta = 1 - dt*tau_mem_inv = "
                    "1 - dt**2/tau; its IAF adds its input unscaled (v += I) whatever dt, "
                    "so an IF's gain is r",
        synapse_unit_gain=True,
        synapse_reason="Norse 1.1's LIFCell (exported as CubaLIF, tau_syn = dt / tau_syn_inv) "
                       "adds its input to the synaptic current unscaled (i += I) and decays it "
                       "by alpha = 1 - dt*tau_syn_inv; the membrane sees that current scaled "
                       "by dt*tau_mem_inv"),
    "sinabs": Framework(
        "sinabs", 1.0, "Sinabs steps once per time bin: its IAF adds the input each step "
        "(v += I) and its LIF's tau_mem is in steps",
        "ge", "Sinabs's spike functions fire when v >= spike_threshold",
        "subtract", "same_step",
        "Sinabs's default reset_fn MembraneSubtract subtracts the threshold in the step of "
        "the spike",
        decay="exp",
        time_reason="Sinabs's LIF decays by alpha = exp(-1/tau_mem) and, with its default "
                    "norm_input=True, scales its input by 1 - alpha",
        spike_fn="multi"),
}

SPIKE_FNS = ("single", "multi")
"""``single``: at most one spike per neuron and step (every framework but Sinabs);
``multi``: floor(v/theta) spikes (Sinabs's default MultiSpike)."""


def framework(name):
    try:
        return FRAMEWORKS[name]
    except KeyError:
        raise ConfigError(f"source framework {name!r} is not one of "
                          f"{', '.join(FRAMEWORKS)}") from None
