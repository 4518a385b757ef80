"""A stand-in ``ipyparallel`` that is taskyard, for running ipyparallel's own tests.

Only for ``compat/run_ipp_suite.py``: it makes ``import ipyparallel as ipp``
give taskyard's public API, the names ipyparallel's test modules import.
Nothing here adds behaviour; a name taskyard lacks stays missing, so the
test that needs it fails and the report shows it.
"""

import taskyard as _ty
from taskyard import *  # noqa: F403
from taskyard import error  # noqa: F401

for _name in dir(_ty):
    if not _name.startswith("__"):
        globals()[_name] = getattr(_ty, _name)

__version__ = "9.2.0"
