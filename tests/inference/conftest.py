"""Keep the adversarial tests on one CPU thread: they are many tiny steps, where threads only contend."""

import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_cpu_thread: None) -> None:
    """Every test here runs under the shared ``one_cpu_thread`` fixture."""
