"""Integrations with other systems, each needing its own extra and imported only on request.

- :mod:`workflow.integrations.celery`: Celery carries a work queue's tokens
  (``pip install 'workflow-ng[celery]'``).
- :mod:`workflow.integrations.otel`: OpenTelemetry spans for stored runs
  (``pip install 'workflow-ng[otel]'``).

.. versionadded:: 3.0
"""
