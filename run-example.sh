#!/usr/bin/env bash
# Run the order pipeline of examples/pipeline with the `workflow` command, in a
# fresh temporary directory with the default SQLite database (workflow.sqlite):
# the suspicious orders halt for a review (exit code 3), one answer resumes them,
# and the run completes. Installs the package into ./.venv first if needed.
#
#   ./run-example.sh                          # the pipeline, through the CLI
#   ./run-example.sh examples/quickstart.py   # a Python example instead
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
if [ -z "${VIRTUAL_ENV:-}" ]; then
    if [ ! -x .venv/bin/python ]; then
        "${PYTHON:-python3}" -m venv .venv
    fi
    # shellcheck disable=SC1091
    source .venv/bin/activate
fi
if ! python -c "import workflow.cli, workflow.storage" 2>/dev/null || ! command -v workflow >/dev/null; then
    python -m pip install --quiet -e '.[db]'
fi

if [ $# -gt 0 ]; then
    exec python "$1"
fi

EXAMPLE="$ROOT/examples/pipeline"
WORKDIR=$(mktemp -d)
trap 'rm -rf "$WORKDIR"' EXIT
cd "$WORKDIR"
# `--import examples.pipeline.tasks` imports from the repository; the database is
# the default one, workflow.sqlite in the working directory.
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
unset WORKFLOW_DATABASE_URL

say() { printf '\n== %s\n' "$*"; }
show() { printf '$ %s\n' "$*"; }

say "running the pipeline over 12 orders (in $WORKDIR)"
show workflow --json --import examples.pipeline.tasks run "$EXAMPLE/pipeline.json" \
    --tokens "$EXAMPLE/records.jsonl"
status=0
workflow --json --import examples.pipeline.tasks run "$EXAMPLE/pipeline.json" \
    --tokens "$EXAMPLE/records.jsonl" >run.json || status=$?
if [ "$status" -ne 3 ]; then
    echo "expected exit code 3 (halted), got $status" >&2
    cat run.json >&2
    exit 1
fi
# Exit code 3 is no failure: the run is halted, its suspicious orders wait for a review.
python - <<'PY'
import json

result = json.load(open("run.json"))
print(f"exit code 3: workflow {result['uuid']} is {result['status']}, {result['counts']}")
for token in result["tokens"]:
    if "halted" in token:
        halt = token["halted"]
        print(f"  token {token['position']} waits at step {halt['step']!r}"
              f" (action {halt['action']!r}): {halt['message']}")
PY
uuid=$(python -c 'import json; print(json.load(open("run.json"))["uuid"])')

say "the nine ordinary orders are written"
show cat orders-out.jsonl
cat orders-out.jsonl

say "a reviewer approves the suspicious orders; the run resumes"
show workflow resume "$uuid" --import examples.pipeline.tasks --data "'{\"approved\": true}'"
workflow resume "$uuid" --import examples.pipeline.tasks --data '{"approved": true}'

say "the reviewed orders are written too"
show tail -n 3 orders-out.jsonl
tail -n 3 orders-out.jsonl

say "the stored run"
show workflow show "$uuid"
workflow show "$uuid"
