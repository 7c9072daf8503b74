"""What a NIR graph means, per source framework.

NIR describes neurons as continuous-time equations and stores no time step; every
framework discretises them its own way and some do not record their reset at all
(docs/frontends.md has the full table). All frameworks here discretise with forward Euler,
v[t+1] = v + dt/tau * ((v_leak - v) + R * I), so a LIF's decay is beta = 1 - dt/tau and
its input gain R * dt/tau; they differ in dt, in the spike comparison and in what a reset
means. A :class:`Framework` holds those conventions; the frontend applies them unless
the user overrides one (``--dt``, ``--fire``, ``--reset``, ``--order``) or the node's
metadata states it (the ``hwgen.*`` keys the snnTorch exporter helper writes).
"""

from dataclasses import dataclass

from hwgen.errors import ConfigError


@dataclass(frozen=True)
class Framework:
    """``reset``: what a LIF/IF reset means (``zero``: to v_reset; ``subtract``: by the
    threshold); ``order``: when it happens (docs/semantics.md section 4)."""

    name: str
    dt: float
    dt_reason: str
    fire: str
    fire_reason: str
    reset: str
    order: str
    reset_reason: str


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
        "zero", "same_step", "Norse resets v to v_reset in the step of the spike"),
}


def framework(name):
    try:
        return FRAMEWORKS[name]
    except KeyError:
        raise ConfigError(f"source framework {name!r} is not one of "
                          f"{', '.join(FRAMEWORKS)}") from None
