"""``ipyparallel.error`` is ``taskyard.error``."""

from taskyard.error import *  # noqa: F403
import taskyard.error as _error

for _name in dir(_error):
    if not _name.startswith("__"):
        globals()[_name] = getattr(_error, _name)
