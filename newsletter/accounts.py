"""Dashboard accounts: staff schedule and send, organisers read the reports. Passwords hashed with argon2."""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select

from newsletter.audience.subscribers import normalize_email
from newsletter.errors import InputError
from newsletter.store import Store, now_utc
from newsletter.store.tables import users

ROLES = ("staff", "organiser")
MIN_PASSWORD = 10
_hasher = PasswordHasher()
# Verified against when the email is unknown, so a wrong email costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


@dataclass(frozen=True)
class User:
    id: int
    email: str
    role: str
    language: str = ""  # the dashboard's language; empty: the browser's

    @property
    def can_send(self) -> bool:
        """Staff schedule and send; organisers only read."""
        return self.role == "staff"


def add_user(store: Store, email: str, role: str, password: str) -> User:
    """Create a user, or set the role and password of an existing one."""
    if role not in ROLES:
        raise InputError(f"--role {role!r}: use one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise InputError(f"password: at least {MIN_PASSWORD} characters, please")
    email = normalize_email(email)
    hashed = _hasher.hash(password)
    with store.write() as conn:
        uid = conn.scalar(select(users.c.id).where(users.c.email == email))
        if uid is None:
            uid = conn.execute(
                users.insert().values(email=email, role=role, password_hash=hashed, created_at=now_utc())
            ).inserted_primary_key[0]  # type: ignore[index]
        else:
            conn.execute(users.update().where(users.c.id == uid).values(role=role, password_hash=hashed))
    return User(int(uid), email, role)


def get_user(store: Store, user_id: int) -> User | None:
    with store.read() as conn:
        row = conn.execute(
            select(users.c.id, users.c.email, users.c.role, users.c.language).where(users.c.id == user_id)
        ).first()
    return User(int(row.id), row.email, row.role, row.language or "") if row else None


def set_language(store: Store, user_id: int, language: str) -> None:
    """Store the dashboard language a user chose ("" goes back to the browser's)."""
    with store.write() as conn:
        conn.execute(users.update().where(users.c.id == user_id).values(language=language))


def list_users(store: Store) -> list[User]:
    with store.read() as conn:
        rows = conn.execute(select(users.c.id, users.c.email, users.c.role).order_by(users.c.email)).all()
    return [User(int(r.id), r.email, r.role) for r in rows]


def authenticate(store: Store, email: str, password: str) -> User | None:
    """The user with this email and password, or None."""
    try:
        email = normalize_email(email)
    except InputError:
        email = ""
    with store.read() as conn:
        row = conn.execute(select(users).where(users.c.email == email)).first()
    try:
        _hasher.verify(row.password_hash if row else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    if _hasher.check_needs_rehash(row.password_hash):
        with store.write() as conn:
            conn.execute(
                users.update().where(users.c.id == row.id).values(password_hash=_hasher.hash(password))
            )
    return User(int(row.id), row.email, row.role)
