"""``ipyparallel.client.client`` is ``taskyard.client.client``."""

import taskyard.client.client as _client
from taskyard.client.client import *  # noqa: F403

for _name in dir(_client):
    if not _name.startswith("__"):
        globals()[_name] = getattr(_client, _name)
