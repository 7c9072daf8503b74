"""Packed spike words (docs/semantics.md section 1): the spikes of one neuron over the T
steps of a sample as one integer, bit t = the spike at step t.

This is how spikes travel everywhere outside the reference: into the accelerator, between
its layers, out of it, and over the board's link.
"""

import numpy as np

MAX_WORD_STEPS = 63
"""The most steps one int64 word holds (bit 63 would be its sign)."""


def spikes_to_words(spikes):
    """(..., T, neurons) 0/1 spikes -> (..., neurons) int64 packed words."""
    spikes = np.asarray(spikes)
    T = spikes.shape[-2]
    if T > MAX_WORD_STEPS:
        raise ValueError(f"{T} steps do not fit one int64 word; split them into time "
                         f"chunks (spikes_to_chunk_words)")
    weights = (1 << np.arange(T, dtype=np.int64))[:, np.newaxis]
    return (spikes.astype(np.int64) * weights).sum(axis=-2)


def words_to_spikes(words, timesteps):
    """(..., neurons) packed words -> (..., T, neurons) uint8 spikes."""
    words = np.asarray(words, dtype=np.int64)
    bits = (words[..., np.newaxis, :] >> np.arange(timesteps)[:, np.newaxis]) & 1
    return bits.astype(np.uint8)


def time_chunks(timesteps, lanes):
    """How many chunks of ``lanes`` steps make T (``lanes`` divides T)."""
    if lanes < 1 or timesteps % lanes:
        raise ValueError(f"a time chunk of {lanes} steps does not divide T = {timesteps}")
    return timesteps // lanes


def spikes_to_chunk_words(spikes, lanes):
    """(..., T, neurons) spikes -> (..., chunks * neurons) int64 words of ``lanes`` bits,
    chunk-major: word c * neurons + k holds neuron k's steps c * lanes .. c * lanes + lanes - 1
    (bit j = step c * lanes + j). This is how a core with T_c = ``lanes`` takes its inputs
    and gives its results; with lanes = T it is :func:`spikes_to_words`."""
    spikes = np.asarray(spikes)
    T, neurons = spikes.shape[-2:]
    chunks = time_chunks(T, lanes)
    split = spikes.reshape(spikes.shape[:-2] + (chunks, lanes, neurons))
    return spikes_to_words(split).reshape(spikes.shape[:-2] + (chunks * neurons,))


def chunk_words_to_spikes(words, timesteps, lanes):
    """The inverse of :func:`spikes_to_chunk_words`: (..., chunks * neurons) words ->
    (..., T, neurons) uint8 spikes."""
    words = np.asarray(words, dtype=np.int64)
    chunks = time_chunks(timesteps, lanes)
    neurons = words.shape[-1] // chunks
    split = words.reshape(words.shape[:-1] + (chunks, neurons))
    spikes = words_to_spikes(split, lanes)              # (..., chunks, lanes, neurons)
    return spikes.reshape(words.shape[:-1] + (timesteps, neurons))
