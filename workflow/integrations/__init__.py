"""Integrations with other systems, each an extra, imported only on request.

* :mod:`workflow.integrations.otel` — OpenTelemetry spans for stored runs
  (``pip install 'workflow-ng[otel]'``).

.. versionadded:: 3.0
"""
