"""Sphinx configuration for the taskyard documentation.

Build with warnings as errors, as CI does::

    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(ROOT))

import taskyard  # noqa: E402

project = "taskyard"
author = "the taskyard developers"
copyright = "the taskyard developers"  # noqa: A001 - Sphinx's name
version = release = taskyard.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "taskyard_docs",
]

root_doc = "index"
exclude_patterns = ["_build"]
templates_path: list[str] = []

# Option help and values are shown as written: no curly quotes.
smartquotes = False

html_theme = "alabaster"
html_static_path: list[str] = []
html_theme_options = {
    "description": "IPython-style parallel computing over ZeroMQ",
    "fixed_sidebar": True,
}

# numpydoc-style docstrings throughout the package.
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_default_options = {"show-inheritance": True}
# Importing the client must not need a running controller or IPython.
autodoc_mock_imports: list[str] = []
