#!/usr/bin/env bash
# The whole check, for people and CI alike: installs what it needs into
# ./.venv (unless a virtual environment is already active), then runs ruff,
# mypy, pytest with branch coverage and the Sphinx build with its doctests.
# Any failure fails the script.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}

# Before 3.0 this package's distribution was named `workflow`, like Invenio's,
# which installs the same import package: a venv of this script made then
# still has it beside workflow-ng. Asked from / so that no *.egg-info answers.
drop_old_name() {  # the python (absolute path) of a venv this script made
    if (cd / && "$1" -c "import importlib.metadata as m; m.distribution('workflow')") 2>/dev/null; then
        echo "== removing the distribution 'workflow' from $("$1" -c 'import sys; print(sys.prefix)')" \
            "(this package is workflow-ng now)"
        "$1" -m pip uninstall --quiet --yes workflow
    fi
}

if [ -z "${VIRTUAL_ENV:-}" ]; then
    if [ ! -x .venv/bin/python ]; then
        "$PYTHON" -m venv .venv
    fi
    drop_old_name "$PWD/.venv/bin/python"
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

# The browser tests drive Debian's Chromium (never a browser Playwright downloads).
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "== installing Debian's chromium for the browser tests: apt-get install -y chromium"
        apt-get install -y --no-install-recommends chromium >/dev/null \
            || { apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium >/dev/null; }
    else
        echo "-- /usr/bin/chromium is missing (and this is not root with apt-get): the browser tests skip"
    fi
fi

echo "== pytest (branch coverage of workflow/)"
python -m pytest --cov=workflow --cov-branch --cov-report=term "$@"

echo "== pytest on the other supported Pythons (3.10, 3.12, 3.13): SQLite only, without the crash and slow suites"
find_python() {  # version -> path of an interpreter, or nothing
    command -v "python$1" 2>/dev/null && "python$1" -c "" 2>/dev/null && return 0
    local root
    root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
    ls -d "$root"/versions/"$1".*/bin/python3 2>/dev/null | sort -V | tail -n 1
}
for version in 3.10 3.12 3.13; do
    interpreter=$(find_python "$version" | tail -n 1)
    if [ -z "$interpreter" ]; then
        echo "-- Python $version not found: skipped (install it to test on it)"
        continue
    fi
    venv=".venv-$version"
    [ -x "$venv/bin/python" ] || "$interpreter" -m venv "$venv"
    drop_old_name "$PWD/$venv/bin/python"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[test]'
    # The crash and slow suites (real processes, minutes long) and the cases on
    # the database servers ran above; here the rest checks the code on this Python.
    WORKFLOW_TEST_SERVERS=0 "$venv/bin/python" -m pytest -q -p no:cacheprovider \
        -m "not crash and not slow" "$@"
done

echo "== sphinx (-W) and the documentation's doctests"
rm -rf docs/_build
python -m sphinx -W --keep-going -q -b html docs docs/_build/html
python -m sphinx -W --keep-going -q -b doctest docs docs/_build/doctest

echo "== all checks passed"
