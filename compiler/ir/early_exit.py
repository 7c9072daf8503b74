"""Early exit after a time chunk (docs/semantics.md section 8): the rule, once.

An inference that runs in time chunks of T_c steps may stop after a chunk once the
spike-count readout's decision is taken. ``rule`` is either:

``"certain"``
    stop when the leading class can no longer lose, whatever the remaining R steps bring:
    with counts n (so far) and leader a (the most spikes, lowest index on ties), every other
    class b has n_b + R < n_a if b < a (a tie would go to b) and n_b + R <= n_a if b > a.
    The prediction is then exactly the one of the whole T steps.
``M`` (an integer >= 1)
    stop when the leader is at least M spikes ahead of every other class (a confidence
    margin, as in DT-SNN and SEENN: it may change the prediction; measure it).

The rule is checked after every chunk but the last. After an exit nothing more is
computed: every layer's spikes at later steps are 0, and the output layer's membrane is
the one at the end of the last chunk run. The accelerator's hardware
(:mod:`hwgen.gateware.early_exit`) implements the same comparisons.
"""

import numpy as np

from hwgen.errors import ConfigError

RULES = ("off", "certain")
"""The named settings of ``early_exit``; any integer >= 1 is a margin."""


def check_rule(rule, source="early_exit"):
    """``rule`` as the comparisons take it: None (off), "certain" or a margin >= 1."""
    if rule in (None, "off"):
        return None
    if rule == "certain":
        return rule
    if isinstance(rule, int) and not isinstance(rule, bool) and rule >= 1:
        return rule
    raise ConfigError(f"{source}: early_exit = {rule!r} must be 'off', 'certain' or a margin "
                      f"(an integer >= 1)")


def decided(counts, remaining, rule):
    """Per sample: does ``rule`` stop with spike ``counts`` (samples, classes) so far and
    ``remaining`` steps to go?"""
    counts = np.asarray(counts, dtype=np.int64)
    samples, classes = counts.shape
    leader = np.argmax(counts, axis=1)                   # the lowest index among equals
    lead = counts[np.arange(samples), leader][:, np.newaxis]
    others = np.arange(classes)[np.newaxis, :] != leader[:, np.newaxis]
    if rule == "certain":
        below = np.arange(classes)[np.newaxis, :] < leader[:, np.newaxis]
        safe = counts + remaining + below <= lead
    else:
        safe = lead - counts >= rule
    return np.all(safe | ~others, axis=1)


def exit_steps(output_spikes, lanes, rule):
    """Steps each sample runs: (c + 1) * T_c for the first chunk c after which ``rule``
    decides, else T. ``output_spikes``: (samples, T, classes) of a run without exit."""
    samples, T, _ = output_spikes.shape
    steps = np.full(samples, T, dtype=np.int64)
    if rule is None:
        return steps
    open_ = np.ones(samples, dtype=bool)
    for end in range(lanes, T, lanes):
        counts = output_spikes[:, :end].sum(axis=1, dtype=np.int64)
        stop = open_ & decided(counts, T - end, rule)
        steps[stop] = end
        open_ &= ~stop
    return steps
