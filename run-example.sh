#!/usr/bin/env bash
# Run the order pipeline of examples/pipeline with the `workflow` command, in a
# fresh temporary directory with the default SQLite database (workflow.sqlite):
# the suspicious orders halt for a review (exit code 3), one answer resumes them,
# and the run completes. Every command is shown as you would type it, followed
# by its own output. The first time, it creates ./.venv and installs the
# package there (unless a virtual environment is active).
#
#   ./run-example.sh                          # the pipeline, through the CLI
#   ./run-example.sh examples/quickstart.py   # a Python example instead
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)

say() { printf '\n== %s\n' "$*"; }

# Whether the active environment has workflow-ng with its db extra. Asked from
# another directory, so that the checkout's own *.egg-info does not answer.
installed() {
    (cd / && python -c "
import importlib.metadata, workflow.cli, workflow.storage
importlib.metadata.distribution('workflow-ng')") 2>/dev/null && command -v workflow >/dev/null
}

# The distribution `workflow` (this package's name before 3.0, or Invenio's
# workflow 2.x) installs the same import package: its version, if installed.
old_workflow() {
    (cd / && python -c "import importlib.metadata as m; print(m.version('workflow'))") 2>/dev/null
}

own_venv=false
if [ -z "${VIRTUAL_ENV:-}" ]; then
    own_venv=true
    if [ ! -x .venv/bin/python ]; then
        say "first run: creating ./.venv, a virtual environment for the example"
        "${PYTHON:-python3}" -m venv .venv
    fi
    # shellcheck disable=SC1091
    source .venv/bin/activate
fi
old=$(old_workflow || true)
if [ -n "$old" ] && [ "$own_venv" = true ]; then
    say "removing the distribution 'workflow' $old from ./.venv: this package is workflow-ng now"
    python -m pip uninstall --quiet --yes workflow
elif [ -n "$old" ]; then
    echo "run-example.sh: note: $VIRTUAL_ENV also has the distribution 'workflow' $old, which" \
        "installs the same import package; if it is Invenio's, run 'pip uninstall workflow'" \
        "and install workflow-ng again" >&2
fi
if ! installed; then
    say "installing workflow-ng[db] from this checkout into $VIRTUAL_ENV:" \
        "once only, it takes a minute or so"
    python -m pip install --quiet --disable-pip-version-check -e '.[db]'
    echo "installed: the next runs start at once"
fi

if [ $# -gt 0 ]; then
    printf '$ python %s\n' "$1"
    exec python "$1"
fi

WORKDIR=$(mktemp -d)
OUTPUT=$(mktemp)
trap 'rm -rf "$WORKDIR" "$OUTPUT"' EXIT
unset WORKFLOW_DATABASE_URL

# Print a command as it is typed, then run it: what follows is its own output.
shown() {
    printf '$ %s\n' "$1"
    eval "$1"
}

say "the example runs in a new directory, which links to the repository's examples/" \
    "(so the commands read as from the repository root) and keeps the run in workflow.sqlite"
shown "cd $(printf %q "$WORKDIR")"
shown "ln -s $(printf %q "$ROOT/examples") examples"

say "validate the flow, then run it over twelve orders"
shown "workflow --import examples.pipeline.tasks validate examples/pipeline/pipeline.json"
run="workflow --import examples.pipeline.tasks run examples/pipeline/pipeline.json --tokens examples/pipeline/records.jsonl"
printf '$ %s\n' "$run"
status=0
eval "$run" >"$OUTPUT" 2>&1 || status=$?
cat "$OUTPUT"
printf '$ echo $?\n%s\n' "$status"
if [ "$status" -ne 3 ]; then
    echo "run-example.sh: expected exit code 3 (halted), got $status" >&2
    exit 1
fi
uuid=$(sed -n 's/^workflow \([0-9a-f-]\{36\}\) .*/\1/p' "$OUTPUT" | head -n 1)

say "exit code 3 means halted: three suspicious orders wait for a review;" \
    "the nine ordinary orders are written"
shown "cat orders-out.jsonl"

say "a reviewer approves the three orders: the run resumes and completes"
shown "workflow resume $uuid --import examples.pipeline.tasks --data '{\"approved\": true}'"
shown "tail -n 3 orders-out.jsonl"

say "the stored run, its tokens and its status changes"
shown "workflow show $uuid"
