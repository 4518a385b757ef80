"""What ipyparallel's tests import from ``ipyparallel.util``."""

from datetime import timezone

from taskyard import interactive  # noqa: F401

utc = timezone.utc
