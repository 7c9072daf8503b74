"""Padding as forced-zero masks (compiler/scheduler/windows.py): a border pixel's run is
found, and checked, to be a larger run's entries inside the map, translated."""

import numpy as np
import pytest

from hwgen.compiler import hardware_config
from hwgen.compiler.instruction_format import TAG_CALL, unpack_entry
from hwgen.compiler.scheduler.program import compile_program
from hwgen.compiler.scheduler.windows import InputMap, RunChunks, masked_match, window_fields
from hwgen.errors import ConfigError
from conv_models import cnn

SIDE, CHUNK = 4, 4


def pixel_major():
    """A 4 x 4 map of 4 channels, one chunk per pixel: chunk (y 4 + x) holds pixel (y, x)."""
    slots = [(c * SIDE + y) * SIDE + x for y in range(SIDE) for x in range(SIDE)
             for c in range(CHUNK)]
    return InputMap.of(slots, (CHUNK, SIDE, SIDE), CHUNK)


KERNEL = {(dy, dx): (1 + dy * 3 + dx, 10 * (dy * 3 + dx))      # position -> mask, wbase
          for dy in range(3) for dx in range(3)}


def window_run(y0, x0, kernel=KERNEL):
    """The run of a 3 x 3 convolution's output pixel whose window starts at (y0, x0), with
    padding: two output channels, each the kernel's positions inside the map."""
    entries = []
    for slot in (0, 1):
        entries.append(("neuron", {"theta": 2, "bias": 0, "slot": slot, "empty": 0}))
        for (dy, dx), (mask, wbase) in kernel.items():
            y, x = y0 + dy, x0 + dx
            if 0 <= y < SIDE and 0 <= x < SIDE:
                entries.append(("chunk", {"chunk": y * SIDE + x, "mask": mask,
                                          "wbase": wbase + slot, "last": 0}))
    return entries


def test_a_border_pixel_is_an_interior_pixels_window_with_rows_and_columns_masked():
    input_map = pixel_major()
    interior = RunChunks.of(window_run(1, 1), input_map)
    for (y0, x0), rows, cols in [((-1, -1), 0b110, 0b110), ((-1, 1), 0b110, 0b111),
                                 ((2, 2), 0b011, 0b011), ((1, -1), 0b111, 0b110)]:
        border = RunChunks.of(window_run(y0, x0), input_map)
        offset, got_rows, got_cols = masked_match(interior, border, input_map)
        # the offset moves the interior window's origin chunk (1, 1) to the border's
        assert offset == (y0 - 1) * SIDE + (x0 - 1)
        assert (got_rows, got_cols) == (rows, cols)
    assert interior.origin == (1, 1) and interior.extent == (3, 3)


@pytest.mark.parametrize("change", ["weights", "mask", "missing", "extra"])
def test_a_run_that_is_not_the_window_inside_the_map_is_not_matched(change):
    input_map = pixel_major()
    interior = RunChunks.of(window_run(1, 1), input_map)
    run = window_run(-1, -1)
    kind, fields = run[3]
    if change == "weights":
        run[3] = (kind, {**fields, "wbase": 99})
    elif change == "mask":
        run[3] = (kind, {**fields, "mask": 15})
    elif change == "missing":              # an entry inside the map is not in the run
        del run[3]
    else:                                  # the run reads a chunk the window does not
        run.insert(2, ("chunk", {"chunk": 15, "mask": 1, "wbase": 0, "last": 0}))
    assert masked_match(interior, RunChunks.of(run, input_map), input_map) is None


def test_block_entries_carry_their_window_position():
    input_map = pixel_major()
    run = window_run(0, 1)
    fields = [f for kind, f in window_fields(run, RunChunks.of(run, input_map))
              if kind == "chunk"]
    assert {(f["row"], f["col"]) for f in fields} == {(r, c) for r in range(3)
                                                      for c in range(3)}


def test_a_flat_source_has_no_map():
    assert InputMap.of(list(range(8)), (8,), CHUNK) is None
    assert InputMap.of(list(range(8)), (8, 1, 1), CHUNK) is None
    assert InputMap.of(list(range(8)), (2, 4), CHUNK).height == 1


def test_border_pixels_call_an_interior_block_and_store_less():
    """conv2 of a CNN whose first layer computes whole pixels per TPPE: with
    ``border_calls`` its border pixels call a block, with some window row or column
    masked, and each TPPE stores fewer entries."""
    model, _ = cnn(3, channels=3, side=6)
    config = ["tppes=2", "call_groups=1"]
    masked = compile_program(model, hardware_config.load(None, config))
    plain = compile_program(model, hardware_config.load(None, config + ["border_calls=0"]))
    assert all(len(ours) < len(theirs) for ours, theirs in zip(masked.entries,
                                                                plain.entries))
    windows = {(call["rows"], call["cols"])
               for call in (unpack_entry(masked.layouts, word) for words in masked.entries
                            for word in words) if call["tag"] == TAG_CALL}
    assert (0b111, 0b111) in windows and len(windows) > 1
    assert "rows" not in plain.layouts["call_entry"].offsets


@pytest.mark.parametrize("value", ["2", "-1", "yes"])
def test_border_calls_is_a_flag(value):
    with pytest.raises(ConfigError, match=rf"--set border_calls={value}: border_calls = "
                                          r".* must be 0 or 1"):
        hardware_config.load(None, [f"border_calls={value}"])
