"""A model whose sums need more accumulator bits than the hardware builds is refused."""

import numpy as np
import pytest

from hwgen.compiler import hardware_config
from hwgen.errors import FitError
from hwgen.compiler.ir import LIF, Dense, Input, Model
from hwgen.compiler.ir.widths import MAX_ACC_BITS
from hwgen.compiler.scheduler.program import compile_program


def model_with_acc_bits(acc_bits):
    model = Model("wide", 2)
    model.add(Input("input", (3,)))
    model.add(Dense("fc1", np.ones((2, 3), dtype=np.int64), weight_bits=2, acc_bits=acc_bits),
              "input")
    model.add(LIF("lif1", [1, 2], v_bits=8), "fc1")
    return model.validate()


def test_an_accumulator_wider_than_the_hardware_is_refused_by_name():
    # The IR accepts up to 48 bits; resolving 'auto' used to hand 36 to the RTL generator,
    # which failed with a ValueError instead of a user-facing refusal.
    with pytest.raises(FitError, match=r"dense 'fc1' needs a 36-bit accumulator.*acc_bits "
                                       r"is at most 32") as refused:
        compile_program(model_with_acc_bits(36), hardware_config.load())
    assert "\n" not in str(refused.value)


def test_the_widest_hardware_accumulator_compiles():
    program = compile_program(model_with_acc_bits(MAX_ACC_BITS), hardware_config.load())
    assert program.config.acc_bits == MAX_ACC_BITS
