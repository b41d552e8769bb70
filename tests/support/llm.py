"""The LLM simulator for the LLM tests (a pytest plugin, see conftest.py):
one ``blog-llm-sim`` process per test module, set before each test to fast,
deterministic answers of ``FAST_TOKENS`` tokens for ``MODEL``."""
from __future__ import annotations

import pytest

from devstack import LLMSimulator

MODEL = "gemma3:270m"
FAST_TOKENS = 40
FAST = dict(ttft=0, tokens_per_second=0, tokens=FAST_TOKENS, answer_seconds=None,
            error_rate=0, hang_rate=0, cut_rate=0, models=[MODEL])


@pytest.fixture(scope="module")
def sim_process():
    with LLMSimulator(answer_seconds=None, ttft=None, tokens=None, models=None) as sim:  # the simulator's defaults
        yield sim


@pytest.fixture
def sim(sim_process):
    """The module's simulator, fast and with its counts at zero."""
    sim_process.configure(**FAST)
    sim_process.reset()
    return sim_process
