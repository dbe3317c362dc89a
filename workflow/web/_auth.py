"""Who is asking: bearer tokens mapped to user names, signed session cookies, CSRF tokens.

A person is known by a secret token that the operator gave them
(:class:`Users`); the API reads it from ``Authorization: Bearer ...`` and
the web page trades it once for a signed session cookie (:class:`Sessions`).
The user name that answers an interaction is always the one the token maps
to, never one the request names.

A token is looked up by its SHA-256 digest, never by its text: the time a
check takes may depend on the digest of a guess, which says nothing about
how much of a real token the guess shares, and does not grow with the
number of users.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import json
import os
import secrets
import stat
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workflow.errors import WorkflowValueError

__all__ = [
    "ENV_SECRET",
    "ENV_USERS",
    "MIN_TOKEN_LENGTH",
    "SESSION_SECONDS",
    "Session",
    "Sessions",
    "Users",
    "load_users",
]

#: The environment variable holding the users as a JSON object ``{token: user}``.
ENV_USERS = "WORKFLOW_WEB_USERS"
#: The environment variable holding the secret that signs session cookies.
ENV_SECRET = "WORKFLOW_WEB_SECRET"
#: The shortest token accepted in a users file: shorter ones are too easy to guess.
MIN_TOKEN_LENGTH = 16
#: The longest user name (``wf_answer.by`` holds 255 characters).
MAX_USER_LENGTH = 255
#: How long a browser session lasts, in seconds.
SESSION_SECONDS = 12 * 3600


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class Users:
    """The people who may use the server: each secret token names one user.

    :param tokens: ``{token: user name}``; each token at least
        :data:`MIN_TOKEN_LENGTH` characters long.
    :raises WorkflowValueError: for a short token or an empty or long user name.

    .. versionadded:: 3.0
    """

    def __init__(self, tokens: Mapping[str, str], *, source: str = "the users") -> None:
        self.source = source
        self._by_digest: dict[bytes, str] = {}
        for token, user in tokens.items():
            if not isinstance(token, str) or len(token) < MIN_TOKEN_LENGTH:
                raise WorkflowValueError(
                    f"{source}: every token is a string of at least {MIN_TOKEN_LENGTH} "
                    f"characters (the one of user {user!r} is not)"
                )
            if not isinstance(user, str) or not user.strip() or len(user) > MAX_USER_LENGTH:
                raise WorkflowValueError(
                    f"{source}: every user name is a non-empty string of at most "
                    f"{MAX_USER_LENGTH} characters, not {user!r}"
                )
            self._by_digest[_digest(token)] = user

    def __repr__(self) -> str:
        return f"<Users {len(self._by_digest)} token(s) from {self.source}>"

    def __bool__(self) -> bool:
        return bool(self._by_digest)

    @property
    def names(self) -> set[str]:
        """The user names the tokens map to."""
        return set(self._by_digest.values())

    def user(self, token: str | None) -> str | None:
        """Return the user whose token is ``token``, or ``None``.

        One dictionary lookup by the token's SHA-256 digest, whatever the
        number of users.
        """
        if not token:
            return None
        return self._by_digest.get(_digest(token))


def _parse(text: str, where: str, *, toml: bool) -> Any:
    if toml:
        try:
            tomllib = importlib.import_module("tomllib")
        except ImportError:  # pragma: no cover - Python 3.10
            raise WorkflowValueError(
                f"{where}: TOML needs Python 3.11 or later; write JSON"
            ) from None
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise WorkflowValueError(f"{where} is not valid TOML: {exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise WorkflowValueError(f"{where} is not valid JSON: {exc}") from None


def _table(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(key, str) and isinstance(user, str) for key, user in value.items()
    ):
        raise WorkflowValueError(f"{where} must be an object {{token: user name}} of strings")
    return value


def load_users(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Users:
    """Read the users from ``path`` (JSON; TOML for ``.toml``), else ``$WORKFLOW_WEB_USERS``.

    A users file holds secrets: one that the group or others may read (or
    write) is refused, so that a token does not leak through a permissive
    ``umask``. With neither a file nor the variable, there are no users.

    :raises WorkflowValueError: naming the file or the variable, and what is wrong.

    .. versionadded:: 3.0
    """
    environ = os.environ if environ is None else environ
    if path is not None:
        where = f"the users file {path}"
        try:
            mode = path.stat().st_mode
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise WorkflowValueError(f"cannot read {where}: {exc.strerror}") from None
        if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise WorkflowValueError(
                f"{where} may be read by others (mode {stat.filemode(mode)}): it holds "
                f"secrets, make it private with `chmod 600 {path}`"
            )
        table = _table(_parse(text, where, toml=path.suffix == ".toml"), where)
        return Users(table, source=where)
    found = environ.get(ENV_USERS)
    if not found:
        return Users({}, source="no configuration")
    where = f"${ENV_USERS}"
    return Users(_table(_parse(found, where, toml=False), where), source=where)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Session:
    """A signed-in person: who, until when, and the nonce their CSRF token is made from."""

    def __init__(self, user: str, expires: int, nonce: str) -> None:
        self.user = user
        self.expires = expires
        self.nonce = nonce

    def __repr__(self) -> str:
        return f"<Session {self.user!r} until {self.expires}>"


class Sessions:
    """Sign and check session cookies and CSRF tokens with one secret (HMAC-SHA-256).

    :param secret: the key; ``$WORKFLOW_WEB_SECRET`` is what ``workflow
        serve`` passes. Without one a random key is made: the sessions then
        end when the server stops.

    .. versionadded:: 3.0
    """

    def __init__(self, secret: str | bytes | None = None, *, seconds: int = SESSION_SECONDS):
        if secret is None or secret == "":
            secret = secrets.token_bytes(32)
        self._key = secret.encode() if isinstance(secret, str) else secret
        self.seconds = seconds

    def __repr__(self) -> str:
        return f"<Sessions of {self.seconds} s>"

    def _sign(self, purpose: str, payload: str) -> str:
        mac = hmac.new(self._key, f"{purpose}\n{payload}".encode(), hashlib.sha256)
        return _b64(mac.digest())

    def issue(self, user: str) -> str:
        """Return the cookie value of a new session of ``user``."""
        body = {"u": user, "e": int(time.time()) + self.seconds, "n": secrets.token_hex(16)}
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{payload}.{self._sign('session', payload)}"

    def read(self, cookie: str | None, users: Users) -> Session | None:
        """Return the session of a cookie, or ``None`` when it is forged, expired or revoked.

        A session whose user no longer has a token (removed from the users)
        is over.
        """
        if not cookie or cookie.count(".") != 1:
            return None
        payload, mac = cookie.split(".")
        if not hmac.compare_digest(mac, self._sign("session", payload)):
            return None
        try:
            body = json.loads(_unb64(payload))
            session = Session(str(body["u"]), int(body["e"]), str(body["n"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires < time.time() or session.user not in users.names:
            return None
        return session

    def csrf(self, session: Session) -> str:
        """Return the CSRF token the forms of ``session`` carry."""
        return self._sign("csrf", f"{session.user}\n{session.nonce}")

    def check_csrf(self, session: Session, token: str | None) -> bool:
        """Whether ``token`` is the CSRF token of ``session``."""
        return bool(token) and hmac.compare_digest(str(token), self.csrf(session))
