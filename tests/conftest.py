"""Shared fixtures for the test suite."""

import pytest
import torch


@pytest.fixture(
    params=[
        "cpu",
        pytest.param(
            "cuda",
            marks=pytest.mark.skipif(
                not torch.cuda.is_available(), reason="CUDA is not available"
            ),
        ),
    ]
)
def device(request):
    """Device on which a test runs: always "cpu", and "cuda" when present."""
    return torch.device(request.param)


def pytest_configure(config):
    # The suite trains many tiny networks: one intra-op thread per test process
    # avoids thread-pool contention (pytest-xdist runs one process per core).
    torch.set_num_threads(1)
