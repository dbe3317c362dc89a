"""The package itself: imports, version, logging, Invenio import paths."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import workflow


def run_python(code: str, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=cwd
    )
    return result.stdout


def test_import_workflow_needs_only_blinker() -> None:
    out = run_python(
        "import sys, json, workflow, workflow.engine, workflow.engine_db, workflow.patterns,"
        " workflow.flows;"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('sqlalchemy', 'celery', 'click', 'yaml', 'jsonschema', 'argparse'))))"
    )
    assert json.loads(out) == []


def test_importing_installs_no_log_handler() -> None:
    out = run_python(
        "import logging, workflow, workflow.engine, workflow.patterns;"
        "print(len(logging.getLogger('workflow').handlers), len(logging.getLogger().handlers),"
        " logging.getLogger('workflow').propagate)"
    )
    assert out.split() == ["0", "0", "True"]


def test_version_is_static_whatever_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: other\nVersion: 9.9.9\n")
    out = run_python("import workflow; print(workflow.__version__)", cwd=tmp_path)
    assert out.strip() == workflow.__version__ != "9.9.9"


@pytest.mark.parametrize(
    "module",
    [
        "workflow.engine",
        "workflow.engine_db",
        "workflow.errors",
        "workflow.signals",
        "workflow.patterns",
        "workflow.patterns.controlflow",
        "workflow.patterns.utils",
        "workflow.utils",
        "workflow.deprecation",
    ],
)
def test_invenio_import_paths_exist(module: str) -> None:
    importlib.import_module(module)


def test_engine_module_re_exports_the_transitions() -> None:
    from workflow.engine import HaltProcessing as FromEngine
    from workflow.errors import HaltProcessing

    assert FromEngine is HaltProcessing


def test_package_ships_type_information() -> None:
    assert (Path(workflow.__file__).parent / "py.typed").exists()


def test_deprecated_decorator_warns_at_the_caller() -> None:
    from workflow.deprecation import deprecated

    @deprecated("old()")
    def old() -> int:
        return 1

    with pytest.warns(DeprecationWarning, match=r"old\(\)") as record:
        assert old() == 1
    assert record[0].filename == __file__


def test_get_logger_places_loggers_under_workflow() -> None:
    from workflow.engine import get_logger, reset_all_loggers

    logger = get_logger("mine")
    assert logger.name == "workflow.mine"
    assert get_logger("workflow.x").name == "workflow.x"
    reset_all_loggers(30)
    assert logger.level == 30
    reset_all_loggers()
    assert logger.level == 0


def test_storage_without_sqlalchemy_names_the_extra_to_install() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.modules['sqlalchemy'] = None; import workflow.storage",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "pip install 'workflow-ng[db]'" in result.stderr


def test_celery_integration_without_celery_names_the_extra_to_install() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.modules['celery'] = None; import workflow.integrations.celery",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "pip install 'workflow-ng[celery]'" in result.stderr


ROOT = Path(__file__).resolve().parent.parent
#: ``pip install workflow`` and ``workflow[extra]`` name Invenio's distribution, not ours.
INVENIO_INSTALL = re.compile(r"""pip install\s+['"]?workflow(?![\w-])|(?<![\w-])workflow\[[a-z]""")


def test_distribution_is_named_workflow_ng() -> None:
    distribution = metadata.distribution("workflow-ng")
    assert distribution.metadata["Name"] == "workflow-ng"
    assert "workflow-ng" in metadata.packages_distributions()["workflow"]


def test_version_is_the_distributions_version() -> None:
    assert workflow.__version__ == metadata.version("workflow-ng")


def test_install_lines_name_workflow_ng() -> None:
    files = [
        ROOT / "README.rst",
        ROOT / "pyproject.toml",
        *sorted((ROOT / "docs").glob("*.rst")),
        *sorted((ROOT / "examples").rglob("*.md")),
        *sorted((ROOT / "workflow").rglob("*.py")),
    ]
    wrong = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if INVENIO_INSTALL.search(line)
    ]
    assert wrong == [], "these lines install Invenio's workflow, not workflow-ng"
