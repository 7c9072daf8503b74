"""Whole models drawn by sim.model_strategies, compiled and co-simulated on Verilator.

Every drawn case is either refused with a one-line error naming the parameter at fault, or
bit-exact against the integer reference in every layer. The sample is fixed
(``derandomize``) so CI is reproducible; benchmarks/soak.py draws as many more as asked.
Each case is one Verilator build (cached by design hash), so the example count is what
bounds this test's time; designs are kept small (at most 16 TPPEs, 40 neurons a layer).
"""

import pytest
from hypothesis import HealthCheck, given, settings

from sim.model_strategies import FLAWS, Case, cases, check_refusal, run_case

pytestmark = [pytest.mark.verilator, pytest.mark.slow]


@settings(max_examples=14, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(cases(max_layers=4, max_size=40, max_tppes=16, flaw_weight=0.15))
def test_generated_designs_are_refused_cleanly_or_bit_exact(case):
    outcome = run_case(case)
    assert outcome.ok, f"{outcome.message}\n{case.describe()}"


@settings(max_examples=60, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(cases(flaw_weight=1.0))
def test_every_flawed_case_is_refused_by_name(case):
    """Compile only (no Verilator): a flawed case never reaches the hardware."""
    from compiler.errors import HwgenError
    from compiler.scheduler.program import compile_program
    with pytest.raises(HwgenError) as refused:
        model = case.model()
        compile_program(model, case.config(model))
    assert check_refusal(case, refused.value) is None, check_refusal(case, refused.value)


@settings(max_examples=150, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(cases(flaw_weight=0))
def test_every_unflawed_case_compiles(case):
    """Compile only: the generator's valid cases are all accepted (so the co-simulated
    sample is not silently eaten by refusals)."""
    from compiler.scheduler.program import compile_program
    model = case.model()
    compile_program(model, case.config(model))
    assert case.input_array().shape[0] == len(case.stimulus)


def test_refusal_check_rejects_multiline_and_unnamed_messages():
    case = Case(1, 1, "spikes", 0, (), False, (), (("silent",),), flaw="acc_bits_too_small")
    assert check_refusal(case, ValueError("dense 'fc1': overflows acc_bits=3")) is None
    assert "one line" in check_refusal(case, ValueError("acc_bits\nwrong"))
    assert "names none" in check_refusal(case, ValueError("something is off"))
    assert "without a flaw" in check_refusal(Case(1, 1, "spikes", 0, (), False, (), ()),
                                             ValueError("acc_bits"))
    assert set(FLAWS) >= {"threshold_above_vmax", "lif_steps_not_divisor"}
