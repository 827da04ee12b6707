"""Training tests run tiny models: one torch thread each (two threads on a shared 2-core machine
spin-wait against the other test processes and run an order of magnitude slower)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
