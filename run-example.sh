#!/usr/bin/env bash
# Run an example (default: examples/quickstart.py) in ./.venv, installing the
# package there first if needed.
set -euo pipefail
cd "$(dirname "$0")"
if [ -z "${VIRTUAL_ENV:-}" ]; then
    if [ ! -x .venv/bin/python ]; then
        "${PYTHON:-python3}" -m venv .venv
    fi
    # shellcheck disable=SC1091
    source .venv/bin/activate
fi
python -c "import workflow" 2>/dev/null || python -m pip install --quiet -e .
python "${1:-examples/quickstart.py}"
