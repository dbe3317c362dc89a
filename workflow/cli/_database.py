"""Which database the command uses, and the forms of its URL a person may write.

``--database`` (else ``$WORKFLOW_DATABASE_URL``, else ``workflow.sqlite``)
takes a SQLAlchemy URL, a plain file path (an SQLite file), or the short
``postgres://`` / ``postgresql://`` and ``mysql://`` / ``mariadb://`` forms,
which get the drivers the ``postgresql`` and ``mariadb`` extras install.

:func:`choose` works on the text alone, without importing SQLAlchemy;
:func:`check_loadable` asks SQLAlchemy whether it can load the URL's
database and driver, before anything connects.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

__all__ = ["DEFAULT_URL", "ENV_DATABASE", "DatabaseChoice", "check_loadable", "choose", "hidden"]

#: The environment variable naming the database when ``--database`` is not given.
ENV_DATABASE = "WORKFLOW_DATABASE_URL"
#: ``workflow.storage.DEFAULT_URL``, without importing it.
DEFAULT_URL = "sqlite:///workflow.sqlite"

#: The forms every error names.
FORMS = "sqlite:///FILE, a file path, postgresql://USER@HOST/DB or mysql://USER@HOST/DB"

#: The driver each database gets when its URL names none, and the extra installing it.
_DRIVERS = {
    "postgres": ("postgresql", "psycopg"),
    "postgresql": ("postgresql", "psycopg"),
    "mysql": ("mysql", "pymysql"),
    "mariadb": ("mysql", "pymysql"),
}
_EXTRAS = {"postgresql": "postgresql", "mysql": "mariadb", "mariadb": "mariadb"}
_DISTRIBUTION = "workflow-ng"

#: A scheme of two characters or more (``C:`` is a Windows drive, not a URL).
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]+:")


@dataclass(frozen=True)
class DatabaseChoice:
    """The database URL to open, and where the person gave it.

    :ivar url: the SQLAlchemy URL (a file path made ``sqlite:///PATH``, a short
        form given its driver); what was given when it is no URL at all.
    :ivar source: ``--database``, ``$WORKFLOW_DATABASE_URL`` or ``the default``.
    :ivar given: the text as given.
    :ivar problem: why the text is no database URL, or None.
    """

    url: str
    source: str
    given: str
    problem: str | None = None

    def __repr__(self) -> str:
        return f"<DatabaseChoice {hidden(self.url)!r} from {self.source}>"

    def error(self, reason: str) -> str:
        """Return the one-line message for a database URL that cannot be used."""
        return f"{self.source} {hidden(self.given)!r}: {reason}"


def hidden(url: str) -> str:
    """Return ``url`` with its password, if it has one, shown as ``***``.

    Works on any text, URL or not: everything between the first ``:`` after
    the scheme's ``://`` (or from the start, without one) and the last ``@``
    is hidden.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    at = rest.rfind("@")
    colon = rest.find(":", 0, at)
    if at < 0 or colon < 0:
        return url
    return f"{scheme}{separator}{rest[:colon]}:***{rest[at:]}"


def choose(option: str | None, environ: dict[str, str] | None = None) -> DatabaseChoice:
    """Return the database of ``--database`` (``option``), else of the variable, else the default.

    Never raises: a text that is no database URL gets a :attr:`~DatabaseChoice.problem`,
    reported when the command opens the database (a command that never does,
    such as ``workflow validate``, does not care).
    """
    environ = dict(os.environ) if environ is None else environ
    if option is not None:
        text, source = option, "--database"
    elif environ.get(ENV_DATABASE):
        text, source = environ[ENV_DATABASE], f"${ENV_DATABASE}"
    else:
        return DatabaseChoice(DEFAULT_URL, "the default", DEFAULT_URL)
    if "://" not in text:
        if not text.strip():
            return DatabaseChoice(text, source, text, f"no database given; give {FORMS}")
        if _SCHEME.match(text):
            problem = f"not a database URL (no '://' after the scheme); give {FORMS}"
            return DatabaseChoice(text, source, text, problem)
        return DatabaseChoice(f"sqlite:///{text}", source, text)  # a file path
    scheme, _, rest = text.partition("://")
    name, plus, driver = scheme.partition("+")
    if name.lower() in _DRIVERS:
        dialect, default_driver = _DRIVERS[name.lower()]
        scheme = f"{dialect}+{driver if plus else default_driver}"
    return DatabaseChoice(f"{scheme}://{rest}", source, text)


def check_loadable(choice: DatabaseChoice) -> str | None:
    """Return why SQLAlchemy cannot load the database and driver of ``choice``, or None.

    Imports SQLAlchemy and the URL's driver; connects to nothing.
    """
    if choice.problem is not None:
        return choice.error(choice.problem)
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        url = make_url(choice.url)
    except ArgumentError:
        return choice.error(f"not a database URL; give {FORMS}")
    try:
        dialect = url.get_dialect()
    except NoSuchModuleError:
        what = "driver" if "+" in url.drivername else "database"
        return choice.error(f"unknown {what} {url.drivername!r}; give {FORMS}")
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        return choice.error(_missing_driver(url.get_backend_name(), url.get_driver_name(), exc))
    return None


def _missing_driver(backend: str, driver: str, exc: ImportError) -> str:
    """Say which driver is missing, and the extra that installs ours."""
    module = exc.name or driver
    extra = _EXTRAS.get(backend)
    if extra is None:
        return f"its driver {module} is not installed; give {FORMS}"
    install = f"pip install '{_DISTRIBUTION}[{extra}]'"
    ours = _DRIVERS[backend][1]
    if driver == ours:
        return f"its driver {module} is not installed: {install}"
    return (
        f"its driver {module} is not installed: install it, or write {backend}://... "
        f"for {ours} ({install})"
    )
