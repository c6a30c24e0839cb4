"""Who may read and change which collection: a small users file for `rag serve --auth`.

The file is JSON, written by `rag users add` (never by hand needed)::

    {"format": 1, "users": {
        "alice": {"password": "$argon2id$v=19$m=65536,t=3,p=4$...", "read": ["papers"],
                  "write": ["contracts"]}}}

Passwords are stored only as Argon2id hashes (argon2-cffi); the file is written atomically with
mode 0600. `write` implies `read`; `*` stands for every collection, present and future. A user
sees only the collections they may read: the others are answered as if they did not exist.
The server reads the file again when it changes, so `rag users add` takes effect at once.

The same logins open the other doors of `rag serve` and `rag mcp --http`: an HTTP client sends
`Authorization: Bearer USER:PASSWORD` (what an OpenAI or MCP client sends when its API key is
`USER:PASSWORD`) or HTTP Basic. A login once verified is remembered by a hash of it (until the
users file changes), so a client that sends it with every request pays Argon2 once.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .config import collection_name

if TYPE_CHECKING:
    from .assistant import Assistant
    from .collections import Collections

ALL = "*"
FORMAT = 1
_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")


class ReadOnly(PermissionError):
    """The user may read this collection but not change it; the message is for the user."""


def user_name(name: str) -> str:
    value = name.strip() if isinstance(name, str) else ""
    if not _USER_NAME.fullmatch(value):
        raise ValueError(f"{name!r} is not a user name: 1-64 letters, digits, '_', '.', '@' or '-'")
    return value


def rights(names: list[str] | tuple[str, ...] | None) -> list[str]:
    """Collection names as rights: checked and normalised, `*` for all."""
    out: set[str] = set()
    for raw in names or []:
        for part in str(raw).split(","):
            if part.strip():
                out.add(ALL if part.strip() == ALL else collection_name(part))
    return sorted(out)


def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()


@dataclass
class User:
    name: str
    password: str
    """The Argon2id hash, never the password."""
    read: list[str] = field(default_factory=list)
    write: list[str] = field(default_factory=list)

    def can_write(self, collection: str) -> bool:
        return ALL in self.write or collection in self.write

    def can_read(self, collection: str) -> bool:
        return ALL in self.read or collection in self.read or self.can_write(collection)


class Users:
    """The users file: load, change and save it, check passwords and rights."""

    def __init__(self, path: Path | None = None, users: dict[str, User] | None = None):
        self.path = path
        self.users: dict[str, User] = users or {}
        self._stamp: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self._dummy: str | None = None

    @classmethod
    def load(cls, path: Path) -> Users:
        """The users in `path` (none if the file does not exist yet)."""
        users = cls(Path(path))
        users._read()
        return users

    @classmethod
    def single(cls, name: str, password: str) -> Users:
        """One user with every right, kept in memory (`rag serve --auth USER:PASSWORD`)."""
        user = User(user_name(name), _hasher().hash(password), [ALL], [ALL])
        return cls(None, {user.name: user})

    def _read(self) -> None:
        assert self.path is not None
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self.users, self._stamp = {}, None
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            users = {}
            for name, entry in data["users"].items():
                if not str(entry["password"]).startswith("$argon2"):
                    raise ValueError(f"user {name!r} has no Argon2 password hash")
                users[user_name(name)] = User(name, entry["password"], rights(entry.get("read")),
                                              rights(entry.get("write")))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"the users file {self.path} is unreadable ({exc}); "
                             "recreate it with `rag users add`") from exc
        self.users, self._stamp = users, stamp

    def refresh(self) -> None:
        """Read the file again if it changed since (a `rag users add` while serving)."""
        if self.path is not None:
            with self._lock:
                self._read()

    def save(self) -> None:
        """Write the file atomically, readable by its owner only."""
        assert self.path is not None, "in-memory users are not saved"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"format": FORMAT, "users": {
            u.name: {"password": u.password, "read": u.read, "write": u.write}
            for u in sorted(self.users.values(), key=lambda u: u.name)}}
        fd, tmp = tempfile.mkstemp(prefix=".users-", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._stamp = None

    # -- changes --------------------------------------------------------------------------
    def add(self, name: str, password: str, read: list[str] | None = None,
            write: list[str] | None = None) -> User:
        """Add a user, or replace one's password and rights."""
        if not password:
            raise ValueError("the password is empty")
        user = User(user_name(name), _hasher().hash(password), rights(read), rights(write))
        self.users[user.name] = user
        return user

    def remove(self, name: str) -> bool:
        return self.users.pop(name, None) is not None

    # -- checks ---------------------------------------------------------------------------
    def verify(self, name: str, password: str) -> bool:
        """Whether `password` is this user's. An unknown user costs the same hashing time."""
        from argon2.exceptions import InvalidHashError, VerificationError

        self.refresh()
        user = self.users.get(name) if isinstance(name, str) else None
        hasher = _hasher()
        if user is None:
            self._dummy = self._dummy or hasher.hash("not a password of anyone")
            with contextlib.suppress(VerificationError, InvalidHashError):
                hasher.verify(self._dummy, str(password))
            return False
        try:
            return hasher.verify(user.password, str(password))
        except (VerificationError, InvalidHashError):
            return False

    def user(self, name: str | None) -> User | None:
        self.refresh()
        return self.users.get(name) if name else None

    @property
    def version(self) -> tuple[int, int] | None:
        """Changes when the file does (its modification time and size)."""
        return self._stamp


def credentials(authorization: str | None) -> tuple[str, str] | None:
    """(USER, PASSWORD) from an Authorization header value: `Bearer USER:PASSWORD` (an API key
    as OpenAI and MCP clients send it) or HTTP Basic; None when there is none of either."""
    scheme, _, value = (authorization or "").strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "basic":
        try:
            value = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
    elif scheme.lower() != "bearer":
        return None
    name, sep, password = value.partition(":")
    return (name, password) if sep and name and password else None


class Access:
    """What each logged-in user may do; without users (no --auth) everyone may do everything."""

    CACHE = 256
    """Verified logins remembered at most (then forgotten all at once)."""

    def __init__(self, users: Users | None = None):
        self.users = users
        self._verified: dict[bytes, str] = {}
        self._verified_version: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self._verifying = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.users is not None

    def login(self, name: str, password: str) -> bool:
        """Gradio's auth callable."""
        return self.users is not None and self.users.verify(name, password)

    def authenticate(self, authorization: str | None) -> str | None:
        """The user an HTTP Authorization header logs in (`Bearer USER:PASSWORD` or Basic), or
        None. Verified logins are kept by their SHA-256 until the users file changes, so Argon2
        (~0.1 s and 64 MB a check, on purpose) runs once per client, not once per request; and
        one check at a time, so a burst of requests neither fills the memory nor guesses fast."""
        if self.users is None:
            return None
        found = credentials(authorization)
        if found is None:
            return None
        name, password = found
        key = hashlib.sha256(f"{name}\0{password}".encode()).digest()
        self.users.refresh()
        with self._lock:
            if self._verified_version != self.users.version:
                self._verified, self._verified_version = {}, self.users.version
            known = self._verified.get(key)
        if known is not None:
            return known
        with self._verifying:
            with self._lock:
                known = self._verified.get(key)  # verified while this request waited
            if known is not None:
                return known
            if not self.users.verify(name, password):
                return None
            with self._lock:
                if len(self._verified) >= self.CACHE:
                    self._verified.clear()
                self._verified[key] = name
        return name

    def can_read(self, user: str | None, collection: str) -> bool:
        if self.users is None:
            return True
        found = self.users.user(user)
        return found is not None and found.can_read(collection)

    def can_write(self, user: str | None, collection: str) -> bool:
        if self.users is None:
            return True
        found = self.users.user(user)
        return found is not None and found.can_write(collection)

    def readable(self, user: str | None, names: list[str]) -> list[str]:
        return [n for n in names if self.can_read(user, n)]

    def open(self, collections: Collections, collection: object, user: str | None = None,
             write: bool = False) -> Assistant:
        """The assistant of a collection the user may read (and change, with `write`): what every
        door (the page, its API, /v1, MCP) calls, so they refuse alike. '' or None is the
        server's own collection; a name that is no collection name (a path), one that does not
        exist and one the user may not read are the same UnknownCollection."""
        from .collections import UnknownCollection

        if collection is None or (isinstance(collection, str) and not collection.strip()):
            name = collections.home.collection
        else:
            try:
                name = collection_name(collection)  # type: ignore[arg-type]
            except ValueError:
                raise UnknownCollection(str(collection)[:80]) from None
        if not self.can_read(user, name) or not collections.exists(name):
            raise UnknownCollection(name)
        if write and not self.can_write(user, name):
            raise ReadOnly(f"You may read the collection {name!r} but not change it.")
        return collections.get(name)
