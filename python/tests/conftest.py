"""Shared fixtures: f64 JAX, the neural-tangents fixture networks, the repository's paths."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
sys.path.insert(0, os.path.join(FIXTURES, "nt"))

try:
    import jax

    jax.config.update("jax_enable_x64", True)
except ImportError:  # pragma: no cover - the test environment has JAX
    jax = None


@pytest.fixture
def root():
    return ROOT
