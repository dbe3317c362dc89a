#!/usr/bin/env bash
# The whole check, for people and CI alike: installs what it needs into
# ./.venv (unless a virtual environment is already active), then runs ruff,
# mypy, pytest with branch coverage and the Sphinx build with its doctests.
# Any failure fails the script.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
if [ -z "${VIRTUAL_ENV:-}" ]; then
    if [ ! -x .venv/bin/python ]; then
        "$PYTHON" -m venv .venv
    fi
    # shellcheck disable=SC1091
    source .venv/bin/activate
fi

echo "== installing the package and its development tools"
python -m pip install --quiet --disable-pip-version-check -e '.[dev]'

echo "== ruff"
ruff check workflow tests benchmarks examples docs
ruff format --check workflow tests benchmarks examples docs

echo "== mypy --strict"
mypy

echo "== pytest (branch coverage of workflow/)"
python -m pytest --cov=workflow --cov-branch --cov-report=term "$@"

echo "== sphinx (-W) and the documentation's doctests"
rm -rf docs/_build
python -m sphinx -W --keep-going -q -b html docs docs/_build/html
python -m sphinx -W --keep-going -q -b doctest docs docs/_build/doctest

echo "== all checks passed"
