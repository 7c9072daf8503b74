"""benchmarks/soak.py's worker, with the co-simulation replaced by a fake verdict: a failure
is shrunk to the smallest case and written as a reproducer; a stop request is obeyed."""

import importlib.util
import queue
import threading
from pathlib import Path

import pytest

import model_strategies as strategies
from model_strategies import Outcome

SOAK = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"
OPTIONS = {"max_size": 8, "max_tppes": 4, "max_layers": 2, "flaw_weight": 0.1}


@pytest.fixture
def soak():
    spec = importlib.util.spec_from_file_location("soak", SOAK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_run_case(case, **_):
    if case.flaw:
        return Outcome("refused", "fake refusal")
    if case.timesteps >= 4 and len(case.layers) == 2:
        return Outcome("failed", "fake mismatch", 1, 10)
    return Outcome("exact", "", 1, 10)


def drain(events):
    items = []
    while True:
        try:
            items.append(events.get_nowait())
        except queue.Empty:
            return items


def test_a_failure_is_shrunk_and_written_as_a_reproducer(soak, tmp_path, monkeypatch):
    monkeypatch.setattr(strategies, "run_case", fake_run_case)
    events, stop = queue.Queue(), threading.Event()
    soak.worker(0, 300, 5, tmp_path, events, stop, OPTIONS)
    items = drain(events)
    kinds = [item[0] for item in items]
    assert "failing" in kinds and stop.is_set()
    (reproducer,) = [item for item in items if item[0] == "reproducer"]
    assert reproducer[2] == "fake mismatch"
    case_text = (tmp_path / "failure-0" / "case.txt").read_text()
    # the smallest failing case: T at the boundary, two layers, everything else minimal
    assert case_text.startswith("Case(timesteps=4, inputs=1,")
    assert case_text.count("LayerDraw(size=1,") == 2
    assert (tmp_path / "failure-0" / "model.hwgen").exists()
    assert reproducer[4] == f"sh {tmp_path / 'failure-0' / 'reproduce.sh'}"


def test_a_stopped_worker_simulates_nothing_more(soak, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(strategies, "run_case", lambda case, **_: calls.append(case))
    events, stop = queue.Queue(), threading.Event()
    stop.set()
    soak.worker(1, 20, 5, tmp_path, events, stop, OPTIONS)
    assert calls == []
    assert [item[0] for item in drain(events)] == ["finished"]
