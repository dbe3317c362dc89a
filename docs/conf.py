"""Sphinx configuration for the ``workflow-ng`` documentation (package ``workflow``).

Build it as CI does (both must pass without a warning)::

    python -m sphinx -W --keep-going -q -b html docs docs/_build/html
    python -m sphinx -W --keep-going -q -b doctest docs docs/_build/doctest
"""

from __future__ import annotations

import doctest
import os
import sys
from pathlib import Path

# Import the package from this checkout, not from an installed copy.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import workflow

project = "workflow-ng"
author = "the workflow authors"
copyright = "2011-2016 CERN; the workflow authors"
version = workflow.__version__
release = workflow.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
]

exclude_patterns = ["_build"]
nitpicky = False

html_theme = "alabaster"
html_static_path: list[str] = []

# -- autodoc -------------------------------------------------------------------

autodoc_member_order = "bysource"
# Types go into the parameter lists, and only for documented parameters, so
# that signatures stay short and undocumented "Any" types do not clutter.
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"

# -- intersphinx ---------------------------------------------------------------
#
# The build machines have no internet access, and Sphinx reports an unreachable
# inventory as a warning that ``-W`` turns into an error (the warning has no
# type, so ``suppress_warnings`` cannot silence it). The mapping is therefore
# empty by default; set ``WORKFLOW_DOCS_INTERSPHINX=1`` on a machine that is
# online to link :mod:`python` and :mod:`blinker` names to their documentation.
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}
if os.environ.get("WORKFLOW_DOCS_INTERSPHINX") == "1":
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "blinker": ("https://blinker.readthedocs.io/en/stable", None),
    }

# -- doctest -------------------------------------------------------------------
#
# Every example of the narrative pages is a ``>>>`` session that
# ``sphinx -b doctest`` runs. These names are available in all of them.
doctest_global_setup = """
from workflow.engine import GenericWorkflowEngine
from workflow.errors import HaltProcessing, WorkflowError
"""

# Compare exception messages too (Sphinx ignores them by default), so that the
# messages shown on the pages are the real ones.
doctest_default_flags = doctest.ELLIPSIS | doctest.DONT_ACCEPT_TRUE_FOR_1


def _defining_module(app: object, modname: str, attribute: str) -> str | None:
    """Send viewcode to the private module that defines a re-exported name.

    ``workflow.patterns.controlflow`` and ``workflow.patterns.utils`` re-export
    patterns defined in private modules, with ``__module__`` set to the public
    one; the source lives where the function's code was compiled.
    """
    import importlib
    import inspect
    from pathlib import Path

    try:
        obj = getattr(importlib.import_module(modname), attribute.split(".")[0])
        path = Path(inspect.getfile(inspect.unwrap(obj))).resolve()
    except (ImportError, AttributeError, TypeError):
        return None
    root = Path(__file__).resolve().parents[1]
    if path.suffix != ".py" or root not in path.parents:
        return None
    return ".".join(path.relative_to(root).with_suffix("").parts)


def setup(app: object) -> None:
    app.connect("viewcode-follow-imported", _defining_module)  # type: ignore[attr-defined]
