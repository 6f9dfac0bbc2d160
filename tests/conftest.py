"""Shared fixtures: one small local Ray instance for the tests that need Ray; float64 nets."""

import os

import pytest


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray with 2 CPUs, shut down after the session."""
    import ray

    if not ray.is_initialized():
        # Workers import the tests' support module, and the package from where
        # the driver does (a PYTHONPATH checkout before an installed copy).
        path = [os.path.dirname(__file__)] + [p for p in [os.environ.get("PYTHONPATH")] if p]
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(path)}})
    yield ray
    ray.shutdown()


@pytest.fixture
def float64():
    """Nets and tensors built in float64 (comparing two update paths beyond float32's
    rounding), float32 again afterwards."""
    import torch

    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)
