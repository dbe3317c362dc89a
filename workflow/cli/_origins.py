"""Where a run's modules were found, so that a resume elsewhere can say how to find them.

``workflow run`` records, for each module it imported, the ``sys.path``
entry it came from (and the working directory). ``workflow resume`` never
adds these directories to ``sys.path``: a run's record is data its tasks
can write, and what a resume imports is decided by the person running it
(``--import``, ``$WORKFLOW_IMPORT_ALLOW``). When a module is not found, the
record only serves to say where to run the command, or what to put on
``PYTHONPATH``.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

from ._output import printable

__all__ = ["module_origins", "where_to_find"]

#: The key of the command's record (``extra_data["cli"]``) for the modules' directories.
ORIGINS_KEY = "import_paths"
#: The key of the command's record for the working directory of ``workflow run``.
CWD_KEY = "cwd"


def _origin(name: str) -> str | None:
    """Return the ``sys.path`` entry the imported module ``name`` was found in, if known."""
    top = sys.modules.get(name.partition(".")[0])
    location = getattr(top, "__file__", None)
    if not location:
        return None  # a namespace package, or built into the interpreter
    found = Path(location).resolve()
    return str(found.parent.parent if found.stem == "__init__" else found.parent)


def module_origins(names: list[str]) -> dict[str, Any]:
    """Return what ``workflow run`` records of where its imported ``names`` were found."""
    origins = {name: _origin(name) for name in dict.fromkeys(names)}
    return {
        ORIGINS_KEY: {name: entry for name, entry in origins.items() if entry is not None},
        CWD_KEY: str(Path.cwd().resolve()),
    }


def where_to_find(meta: Any, module: str, uuid: str) -> str | None:
    """Say how to make ``module`` importable for the resume of run ``uuid``, from its record.

    Everything of the record is escaped: it is data the run could write.
    Returns None when the record does not say where the module was found.
    """
    if not isinstance(meta, dict):
        return None
    origins = meta.get(ORIGINS_KEY)
    directory = origins.get(module) if isinstance(origins, dict) else None
    if not isinstance(directory, str) or not directory:
        return None
    started = meta.get(CWD_KEY)
    shown = printable(directory)
    name = printable(module)
    command = f"PYTHONPATH={shlex.quote(shown)} workflow resume {uuid} ..."
    if started == directory:
        return (
            f"the run was started in {shown}, where {name} was found: run the command there, "
            f"or add that directory to PYTHONPATH: {command}"
        )
    return (
        f"when the run started, {name} was found in {shown}: add that directory to "
        f"PYTHONPATH: {command}"
    )
