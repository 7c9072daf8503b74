"""Packed spike words (docs/semantics.md section 1): the spikes of one neuron over the T
steps of a sample as one integer, bit t = the spike at step t.

This is how spikes travel everywhere outside the reference: into the accelerator, between
its layers, out of it, and over the board's link.
"""

import numpy as np


def spikes_to_words(spikes):
    """(..., T, neurons) 0/1 spikes -> (..., neurons) int64 packed words."""
    spikes = np.asarray(spikes)
    T = spikes.shape[-2]
    weights = (1 << np.arange(T, dtype=np.int64))[:, np.newaxis]
    return (spikes.astype(np.int64) * weights).sum(axis=-2)


def words_to_spikes(words, timesteps):
    """(..., neurons) packed words -> (..., T, neurons) uint8 spikes."""
    words = np.asarray(words, dtype=np.int64)
    bits = (words[..., np.newaxis, :] >> np.arange(timesteps)[:, np.newaxis]) & 1
    return bits.astype(np.uint8)
