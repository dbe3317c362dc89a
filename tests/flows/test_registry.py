"""The task registry: decorator, styles, names, entry points."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from workflow.flows import RegisteredTask, TaskRegistry, default_registry, task


def test_task_decorator_registers_under_the_given_name_and_returns_the_function() -> None:
    registry = TaskRegistry(entry_point_group=None)

    @task("orders.validate", registry=registry)
    def validate(context: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        return {}

    entry = registry.get("orders.validate")
    assert entry.function is validate
    assert entry.style == "context"
    assert validate.workflow_task is entry  # type: ignore[attr-defined]
    assert "orders.validate" in registry
    assert registry.names() == ["orders.validate"]
    assert list(registry) == ["orders.validate"]
    assert len(registry) == 1


def test_bare_decorator_names_the_task_after_module_and_qualname() -> None:
    @task
    def shout(context: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        return {}

    name = f"{__name__}.test_bare_decorator_names_the_task_after_module_and_qualname.<locals>.shout"
    try:
        assert default_registry.get(name).function is shout
    finally:
        default_registry.unregister(name)
    assert name not in default_registry


def test_engine_style_is_recorded() -> None:
    registry = TaskRegistry(entry_point_group=None)

    @task("mark", style="engine", registry=registry)
    def mark(obj: Any, eng: Any) -> None:
        return None

    assert registry.get("mark").style == "engine"
    assert "engine" in repr(registry.get("mark"))


def test_another_function_under_a_taken_name_is_refused() -> None:
    registry = TaskRegistry(entry_point_group=None)
    registry.register("t", print)
    registry.register("t", print)  # the same function again: fine (a module reload)
    with pytest.raises(ValueError, match="'t' is already registered"):
        registry.register("t", len)


@pytest.mark.parametrize(
    ("name", "function", "style", "error", "match"),
    [
        ("", print, "context", ValueError, "non-empty string"),
        ("t", print, "thread", ValueError, "style must be"),
        ("t", 42, "context", TypeError, "is not callable"),
    ],
)
def test_bad_registrations_say_what_is_wrong(
    name: str, function: Any, style: Any, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        TaskRegistry(entry_point_group=None).register(name, function, style=style)


def test_unknown_names_raise_key_error_naming_them() -> None:
    registry = TaskRegistry(entry_point_group=None)
    with pytest.raises(KeyError, match="'nope'"):
        registry.get("nope")
    with pytest.raises(KeyError, match="'nope'"):
        registry.unregister("nope")
    assert 42 not in registry


@pytest.fixture
def installed_tasks(tmp_path: Path) -> Any:
    """A real installed distribution offering tasks through the entry point group."""
    package = tmp_path / "wf_demo_tasks"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from workflow.flows import RegisteredTask\n"
        "def greet(context, params):\n"
        "    return {'greeting': 'hello ' + params['who']}\n"
        "def stamp(obj, eng):\n"
        "    return {'stamped': True}\n"
        "stamp.workflow_task = RegisteredTask('demo.stamp', stamp, 'engine')\n"
    )
    info = tmp_path / "wf_demo_tasks-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: wf-demo-tasks\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[workflow.tasks]\n"
        "demo.greet = wf_demo_tasks:greet\n"
        "demo.stamp = wf_demo_tasks:stamp\n"
        "demo.broken = wf_demo_tasks:missing\n"
    )
    sys.path.insert(0, str(tmp_path))
    yield
    sys.path.remove(str(tmp_path))
    sys.modules.pop("wf_demo_tasks", None)


@pytest.mark.usefixtures("installed_tasks")
def test_entry_points_offer_tasks_that_load_on_first_use() -> None:
    registry = TaskRegistry()
    assert {"demo.greet", "demo.stamp"} <= set(registry.names())
    assert "demo.greet" in registry
    greet = registry.get("demo.greet")
    assert greet.style == "context"
    assert greet.function({}, {"who": "you"}) == {"greeting": "hello you"}
    assert registry.get("demo.stamp").style == "engine"
    assert registry.get("demo.greet") is greet


@pytest.mark.usefixtures("installed_tasks")
def test_a_broken_entry_point_raises_import_error_naming_it() -> None:
    registry = TaskRegistry()
    with pytest.raises(ImportError, match=r"'demo\.broken'.*wf_demo_tasks:missing"):
        registry.get("demo.broken")
    with pytest.raises(ImportError, match=r"demo\.broken"):
        registry.load_entry_points()


def test_entry_points_are_read_again_after_refresh(tmp_path: Path) -> None:
    registry = TaskRegistry()
    assert "late.task" not in registry
    (tmp_path / "late_tasks.py").write_text("def run(context, params):\n    return {}\n")
    info = tmp_path / "late_tasks-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: late-tasks\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[workflow.tasks]\nlate.task = late_tasks:run\n")
    sys.path.insert(0, str(tmp_path))
    try:
        assert "late.task" not in registry  # read once, lazily
        registry.refresh()
        assert [entry.name for entry in registry.load_entry_points()] == ["late.task"]
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("late_tasks", None)


def test_registered_task_repr_names_function_and_style() -> None:
    entry = RegisteredTask("x", print)
    assert repr(entry) == "<RegisteredTask 'x' -> builtins.print (context)>"
    assert repr(TaskRegistry(entry_point_group=None)) == "<TaskRegistry 0 tasks>"
