"""``ipyparallel.client`` is ``taskyard.client``."""

from taskyard.client import *  # noqa: F403
