"""The procedure module of the JSON flow framework's example, as a ``workflow`` task.

The framework names a procedure by ``mod`` and ``method``: ``common.Kt`` and
``prt`` is the method ``prt`` of an object of class ``Kt``. Here the method of
one ``Kt`` object is registered under the task name ``common.Kt.prt``, which
is what ``load_flow`` makes of ``{"mod": "common.Kt", "method": "prt"}``.

Importing this module registers the task in the default registry, so the
command line finds it too::

    workflow --import examples.flow_framework.tasks run examples/flow_framework/hello.json
"""

from __future__ import annotations

import logging
from typing import Any

from workflow.flows import default_registry

log = logging.getLogger(__name__)


class Kt:
    """The example procedures of the flow framework's ``common.Kt`` module."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def prt(self, context: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        """Log the message ``params["msg"]`` and return it as the step's result."""
        msg = params["msg"]
        self.logger.info("msg=%s", msg)
        return {"msg": msg}


#: The one ``Kt`` object whose method the flows call.
kt = Kt(log)

default_registry.register("common.Kt.prt", kt.prt)
