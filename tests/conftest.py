"""Hypothesis profiles: "ci" (the default: derandomised, so CI is repeatable) and "long" (by hand:
``HYPOTHESIS_PROFILE=long pytest``: random, and ten times the examples, see
strategies.examples)."""
import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile(
    "long",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
