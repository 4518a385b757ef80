"""``ipyparallel.client.view`` is ``taskyard.client.view``."""

import taskyard.client.view as _view
from taskyard.client.view import *  # noqa: F403

for _name in dir(_view):
    if not _name.startswith("__"):
        globals()[_name] = getattr(_view, _name)
