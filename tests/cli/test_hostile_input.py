"""Input the command must refuse with exit 2 and one line naming the problem and where.

Nothing may be stored for refused input: it is checked before the database
is opened.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path
from typing import Any

import pytest

from workflow.cli import _limits
from workflow.cli._app import parse_args
from workflow.cli._context import CLIError
from workflow.cli._inputs import parse_json, read_tokens
from workflow.cli._limits import LimitError, check, decode, format_path

DEFINITION = "tests.cli.cli_tasks:definition"
DEEP = "[" * 1500 + "]" * 1500


def nested(depth: int) -> str:
    """A token whose list ``$.a`` nests ``depth - 1`` lists: ``depth`` levels in all."""
    return '{"a": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


def one_line_error(result: Any) -> str:
    assert result.code == 2, (result.out, result.err)
    assert "Traceback" not in result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, lines
    return str(lines[0])


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "tokens.json",
            '[{"a": 1}, {"b": 2}, {"c": 3}, {"price": NaN}]',
            "tokens.json: token 3: $.price: NaN is not a number JSON allows",
        ),
        (
            "tokens.json",
            '{"items": [1, {"x": -Infinity}]}',
            "tokens.json: token 0: $.items[1].x: -Infinity is not a number JSON allows",
        ),
        (
            "tokens.jsonl",
            '{"a": 1}\n\n{"odd key": [Infinity]}\n',
            'tokens.jsonl: line 3 (token 1): $["odd key"][0]: Infinity is not a number',
        ),
        (
            "tokens.json",
            '[{"n": 1e400}]',
            "tokens.json: token 0: $.n: the number 1e400 is out of the range of a float",
        ),
        (
            "tokens.json",
            '[{"n": ' + "9" * 5000 + "}]",
            "tokens.json: token 0: $.n: an integer of 5000 digits (at most 1000 are allowed)",
        ),
        (
            "tokens.json",
            f"[{{}}, {DEEP}]",
            "tokens.json: token 1: $[0][0]",
        ),
        (
            "tokens.json",
            f"[{{}}, {nested(32)}]",
            "tokens.json: token 1: $.a" + "[0]" * 30 + ": "
            "nested deeper than 31 levels of lists and objects",
        ),
    ],
    ids=["nan", "minus-infinity", "jsonl-infinity", "overflow", "long-int", "deep", "depth-32"],
)
def test_bad_token_values_exit_2_naming_the_path_and_store_nothing(
    real: Any, workdir: Path, name: str, text: str, message: str
) -> None:
    (workdir / name).write_text(text)
    result = real("run", DEFINITION, "--tokens", name)
    assert one_line_error(result).startswith(f"workflow: error: {message}")
    assert not (workdir / "workflow.sqlite").exists()  # nothing stored, not even an empty run


def test_bad_tokens_on_stdin_and_in_data(real: Any, workdir: Path) -> None:
    stdin = real("run", DEFINITION, "--tokens", "-", stdin='{"a": 1}\n{"b": NaN}\n')
    assert one_line_error(stdin).startswith(
        "workflow: error: <stdin>: line 2 (token 1): $.b: NaN is not a number JSON allows"
    )
    deep = real("run", DEFINITION, "--tokens", "-", stdin=DEEP)
    assert one_line_error(deep).startswith("workflow: error: <stdin>: token 0: $[0][0]")
    assert not (workdir / "workflow.sqlite").exists()
    for data, message in [
        ('{"price": NaN}', "--data: $.price: NaN is not a number JSON allows"),
        ('{"n": ' + "1" * 5000 + "}", "--data: $.n: an integer of 5000 digits"),
        ('{"a": ' + DEEP + "}", "--data: $.a" + "[0]" * 30 + ": nested deeper than 31"),
    ]:
        result = real("resume", "no-such-run", "--data", data)
        assert one_line_error(result).startswith(f"workflow: error: {message}")


def test_values_at_the_limits_are_accepted(real: Any, workdir: Path) -> None:
    (workdir / "edge.json").write_text(json.dumps([{"n": int("9" * 1000), "f": 1.5e308}]) + "\n")
    (workdir / "deep.jsonl").write_text(nested(31) + "\n")
    assert real("run", DEFINITION, "--tokens", "edge.json").code == 0
    assert real("run", DEFINITION, "--tokens", "deep.jsonl").code == 0


def test_import_errors_name_the_module_and_the_line(real: Any, workdir: Path) -> None:
    (workdir / "broken_syntax.py").write_text("x = 1\ndef task(:\n")
    (workdir / "raises.py").write_text('import os\nraise RuntimeError("no config")\n')
    (workdir / "needs_more.py").write_text("import no_such_dependency\n")
    for module, message in [
        ("broken_syntax", "SyntaxError: invalid syntax (at {}:2)"),
        ("raises", "RuntimeError: no config (at {}:2)"),
        ("needs_more", "No module named 'no_such_dependency' (at {}:1)"),
    ]:
        result = real("--import", module, "list")
        where = workdir / f"{module}.py"
        expected = f"workflow: error: cannot import module {module!r}: " + message.format(where)
        assert one_line_error(result) == expected
    missing = real("--import", "no_such_module", "list")
    assert one_line_error(missing) == (
        "workflow: error: cannot import module 'no_such_module': No module named 'no_such_module'"
    )


def test_lock_wait_nan_is_refused_at_once(real: Any) -> None:
    started = time.monotonic()
    result = real("resume", "some-run", "--lock-wait", "nan")
    assert time.monotonic() - started < 60
    assert result.code == 2
    assert "argument --lock-wait: must be a finite number 0 or more, not 'nan'" in result.err


@pytest.mark.parametrize(
    "argv",
    [
        ["resume", "u", "--lock-wait", value]
        for value in ("nan", "inf", "-inf", "-1", "1e400", "soon")
    ]
    + [["resume", "u", "--token", value] for value in ("-1", "1.5", "9" * 5000)]
    + [["--log-max-bytes", "-1", "list"], ["--log-backups", "-2", "list"]]
    + [["list", "--limit", "0"], ["run", "def:x", "--version", "0"]]
    + [["definitions", "show", "x", "--version", "-3"]],
    ids=lambda argv: " ".join(argv)[:40],
)
def test_numeric_options_refuse_non_finite_and_negative_numbers(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "error: argument " in err
    assert len(err.splitlines()[-1]) < 200  # a 5,000-digit number is not repeated


def test_numeric_options_take_their_valid_values() -> None:
    args = parse_args(["--log-max-bytes", "0", "resume", "u", "--lock-wait", "2.5", "--token", "0"])
    assert (args.log_max_bytes, args.lock_wait, args.token) == (0, 2.5, 0)
    assert parse_args(["list", "--limit", "1"]).limit == 1


# -- the parts ----------------------------------------------------------------------------


def test_format_path_quotes_odd_keys_and_shortens_long_paths() -> None:
    assert format_path([]) == "$"
    assert format_path(["a", 0, "b c", "_x1"]) == '$.a[0]["b c"]._x1'
    assert (
        format_path(["key"] * 30) == "$" + ".key" * 7 + "..." + ".key" * 4 + " (a path of 30 steps)"
    )
    few_long = ["k" * 100, "j" * 100]
    assert format_path(few_long) == f"$.{'k' * 100}.{'j' * 100}"  # a few steps stay whole


def test_check_finds_the_first_problem_in_document_order() -> None:
    value = decode('{"a": [1, NaN], "b": Infinity}')
    with pytest.raises(LimitError) as found:
        check(value)
    assert (found.value.path, str(found.value)) == (
        ["a", 1],
        "$.a[1]: NaN is not a number JSON allows (no NaN or Infinity)",
    )
    check(decode('{"a": [1, 2.5, -3, "NaN", null, true]}'))  # nothing to refuse


def test_a_parser_overflow_is_found_by_the_scan() -> None:
    # Deep enough to overflow the parser of every supported Python (3.13's takes more).
    text = '{"x": [1, "a,[", {"k]": 2, "deep": ' + "[" * 200_000 + "]" * 200_000 + "}]}"
    with pytest.raises(LimitError) as found:
        decode(text)
    assert found.value.path[:3] == ["x", 2, "deep"]
    assert len(found.value.path) == _limits.MAX_DEPTH


def test_input_size_is_limited(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("workflow.cli._inputs.MAX_INPUT_BYTES", 10)
    (tmp_path / "big.json").write_text('["0123456789"]')
    with pytest.raises(CLIError, match=r"big\.json: more than the 10 bytes allowed"):
        read_tokens(str(tmp_path / "big.json"))
    monkeypatch.setattr("sys.stdin", io.StringIO('"0123456789"'))
    with pytest.raises(CLIError, match=r"<stdin>: more than the 10 bytes allowed"):
        read_tokens("-")
    with pytest.raises(CLIError, match=r"--data: 12 bytes is more than the 10 bytes allowed"):
        parse_json('"0123456789"', "--data")


def test_stdin_that_is_not_utf8(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b'["\xe9"]')))
    with pytest.raises(CLIError, match=r"<stdin>: not UTF-8 text at byte 2"):
        read_tokens("-")


def test_argparse_type_errors_are_argument_type_errors() -> None:
    from workflow.cli import _argtypes

    with pytest.raises(argparse.ArgumentTypeError, match="'x' is not a whole number"):
        _argtypes.count("x")
    assert _argtypes.seconds("0") == 0.0


def test_limits_of_data_lines_and_documents(tmp_path: Path) -> None:
    with pytest.raises(CLIError, match=r"^--data: \$\.a: NaN is not a number JSON allows"):
        parse_json('{"a": NaN}', "--data")
    (tmp_path / "t.jsonl").write_text('1\n{"n": ' + "9" * 1001 + "}\n")
    with pytest.raises(CLIError, match=r"t\.jsonl: line 2 \(token 1\): \$\.n: an integer of 1001"):
        read_tokens(str(tmp_path / "t.jsonl"))
    (tmp_path / "deep.json").write_text('{"a": ' + DEEP + "}")
    with pytest.raises(CLIError, match=r"deep\.json: token 0: \$\.a\[0\]\[0\]"):
        read_tokens(str(tmp_path / "deep.json"))
    (tmp_path / "list.json").write_text(DEEP)  # a list of one token: itself too deep
    with pytest.raises(
        # 31 from the check of the token, or 32 from the scan of the whole
        # document when the parser overflowed first (Python 3.12 and before)
        CLIError,
        match=r"list\.json: token 0: \$\[0\]\[0\].*: nested deeper than 3[12] levels",
    ):
        read_tokens(str(tmp_path / "list.json"))
    (tmp_path / "mid.json").write_text(f"[1, {nested(32)}]")
    with pytest.raises(CLIError, match=r"mid\.json: token 1: \$\.a\[0\].*: nested deeper than 31"):
        read_tokens(str(tmp_path / "mid.json"))
    long_float = "9" * 50 + "e400"
    with pytest.raises(CLIError, match=rf"the number {'9' * 37}\.\.\. is out of the range"):
        parse_json(long_float, "--data")


def test_the_depth_scan_tolerates_what_follows_the_culprit() -> None:
    assert _limits._too_deep('[1, {"a": [[]]}]', 3) == [1, "a", 0]
    assert _limits._too_deep('] , {"k": [], "j": 1}', 5) == []  # no culprit: the top
    assert repr(decode("NaN")) == "<refused: NaN is not a number JSON allows (no NaN or Infinity)>"
    with pytest.raises(LimitError, match=r"^\$\.a: nested deeper than 1 levels"):
        check({"a": []}, max_depth=1)


def test_import_problems_in_process(workdir: Path) -> None:
    from workflow.cli._context import import_modules

    (workdir / "in_process_syntax.py").write_text("def f(:\n")
    (workdir / "in_process_raises.py").write_text("raise LookupError('gone')\n")
    with pytest.raises(CLIError, match=r"SyntaxError: .* \(at .*in_process_syntax\.py:1\)$"):
        import_modules(["in_process_syntax"])
    with pytest.raises(CLIError, match=r"LookupError: gone \(at .*in_process_raises\.py:1\)$"):
        import_modules(["in_process_raises"])


def test_a_name_too_long_for_the_database_is_refused_before_it_is_stored(
    cli: Any, workdir: Path
) -> None:
    result = cli("run", DEFINITION, "--name", "x" * 256)
    assert result.code == 2
    assert "the workflow name is 256 characters long, at most 255 fit" in result.err
    assert not (workdir / "workflow.sqlite").exists()


def test_a_flow_refuses_records_its_context_cannot_store(real: Any, workdir: Path) -> None:
    """A flow keeps each record one level down, under ``_input``: 30 levels fit, 31 do not."""
    (workdir / "deep.jsonl").write_text(nested(31) + "\n")
    (workdir / "edge.jsonl").write_text(nested(30) + "\n")
    refused = real("run", "simple.json", "--tokens", "deep.jsonl")
    assert one_line_error(refused).startswith(
        "workflow: error: deep.jsonl: token 0: $.a" + "[0]" * 29 + ": nested deeper than 30 "
    )
    assert "records of a flow nest at most 30" in refused.err
    assert not (workdir / "workflow.sqlite").exists()  # refused before the database is opened
    assert real("run", "simple.json", "--tokens", "edge.jsonl").code == 0
