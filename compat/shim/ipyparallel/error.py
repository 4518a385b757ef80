"""``ipyparallel.error`` is ``taskyard.error``."""

import taskyard.error as _error
from taskyard.error import *  # noqa: F403

for _name in dir(_error):
    if not _name.startswith("__"):
        globals()[_name] = getattr(_error, _name)
