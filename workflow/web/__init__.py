"""Watch and answer runs over HTTP: a JSON API and a web page (the ``web`` extra).

:func:`create_app` builds the ASGI application that ``workflow serve``
runs with uvicorn: the API under ``/api`` (described by ``/openapi.json``),
the page at ``/``. People are known by bearer tokens (:class:`Users`,
:func:`load_users`).

``import workflow`` and ``import workflow.storage`` never import this
package: it needs FastAPI, which ``pip install 'workflow-ng[web]'`` installs.

.. versionadded:: 3.0
"""

from __future__ import annotations

from ..errors import WorkflowImportError

try:
    import fastapi  # noqa: F401
    import jinja2  # noqa: F401
except ImportError as exc:  # pragma: no cover - the test environment has the extra
    raise WorkflowImportError(
        f"workflow.web needs the web extra ({exc.name} is missing): pip install 'workflow-ng[web]'"
    ) from exc

from ._app import create_app
from ._auth import ENV_SECRET, ENV_USERS, Sessions, Users, load_users
from ._service import RunService

__all__ = [
    "ENV_SECRET",
    "ENV_USERS",
    "RunService",
    "Sessions",
    "Users",
    "create_app",
    "load_users",
]

for _name in ("RunService", "Sessions", "Users", "create_app", "load_users"):
    globals()[_name].__module__ = __name__
del _name
