"""Staff users of the admin and their server-side sessions (one use case, one transaction each).

Passwords are hashed with Argon2id (argon2-cffi's ``PasswordHasher``, its default parameters); a hash made
by an earlier hookshop (Werkzeug's scrypt/pbkdf2) still verifies and is replaced by Argon2id at that
login. A password needs at least 8 characters and must not be one of the common passwords (zxcvbn's list
of the 30,000 most used, checked case-insensitively) nor the user's own e-mail address.

A session is a random token: the browser's cookie holds it (signed by Flask), ``staff_sessions`` holds its
SHA-256. Logging in always makes a new token (a fresh session id); logging out deletes the row, so a
copied cookie is worthless afterwards, in every process."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, update
from werkzeug.security import check_password_hash

from engine.db import as_utc, db, transaction, utcnow
from engine.errors import Conflict, NotFound, ValidationFailed
from engine.models import StaffSession, StaffUser

ROLES = ("owner", "accounting", "warehouse", "customer_service")
# the names of an earlier hookshop, still accepted (`hookshop create-user --role admin`)
ROLE_ALIASES = {"admin": "owner", "support": "customer_service"}
LANGUAGES = ("en", "tr")
MIN_PASSWORD = 8
SESSION_IDLE = timedelta(hours=12)  # a session unused this long has ended
_hasher = PasswordHasher()  # Argon2id


def role_named(role: str) -> str:
    """The role for a name or an earlier alias; ValidationFailed for others."""
    role = ROLE_ALIASES.get(role, role)
    if role not in ROLES:
        raise ValidationFailed(f"role must be one of {', '.join(ROLES)}", errors={"role": [f"one of {', '.join(ROLES)}"]})
    return role


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def check_password(password: str, email: str = "") -> None:
    """ValidationFailed naming what is wrong with a new password."""
    problem = None
    if len(password) < MIN_PASSWORD:
        problem = f"at least {MIN_PASSWORD} characters"
    elif len(password) > 1024:
        problem = "at most 1024 characters"
    elif password.lower() in _common_passwords():
        problem = "this is one of the most common passwords: choose another"
    elif email and password.lower() == email.lower():
        problem = "the password must not be the e-mail address"
    if problem:
        raise ValidationFailed(f"password: {problem}", errors={"password": [problem]})


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _verify(stored: str, password: str) -> tuple[bool, bool]:
    """(matches, needs a new hash)."""
    if stored.startswith("$argon2"):
        try:
            _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False, False
        return True, _hasher.check_needs_rehash(stored)
    return check_password_hash(stored, password), True  # Werkzeug's hash of an earlier hookshop


def create_user(email: str, role: str, password: str, locale: str = "en") -> StaffUser:
    """A new staff user (409 ``duplicate_user`` when the e-mail address has one)."""
    email = (email or "").strip().lower()
    if "@" not in email or len(email) > 254:
        raise ValidationFailed("give the user's e-mail address", errors={"email": ["an e-mail address"]})
    role = role_named(role)
    if locale not in LANGUAGES:
        raise ValidationFailed(f"language must be one of {', '.join(LANGUAGES)}", errors={"locale": list(LANGUAGES)})
    check_password(password, email)
    with transaction():
        if db.session.execute(select(StaffUser.id).where(StaffUser.email == email)).first():
            raise Conflict(f"a user with e-mail {email} exists", code="duplicate_user")
        user = StaffUser(email=email, role=role, password_hash=hash_password(password), locale=locale, active=True)
        db.session.add(user)
    return user


def update_user(user_id: int, *, role: str | None = None, locale: str | None = None, active: bool | None = None,
                password: str | None = None) -> StaffUser:
    """Change a user's role, language, password or whether they may log in. A deactivated user's sessions
    end at once, as do all others' after a password change; the last active owner stays an active owner."""
    with transaction():
        user = db.session.get(StaffUser, user_id, with_for_update=True)
        if user is None:
            raise NotFound(f"no staff user with id {user_id}")
        new_role = role_named(role) if role is not None else user.role
        still_active = user.active if active is None else bool(active)
        if user.role == "owner" and (new_role != "owner" or not still_active):
            others = db.session.execute(select(StaffUser.id).where(
                StaffUser.role == "owner", StaffUser.active.is_(True), StaffUser.id != user.id)
                .with_for_update()).first()
            if others is None:
                raise Conflict("this is the last active owner: make another owner first", code="last_owner")
        if locale is not None:
            if locale not in LANGUAGES:
                raise ValidationFailed(f"language must be one of {', '.join(LANGUAGES)}",
                                       errors={"locale": list(LANGUAGES)})
            user.locale = locale
        if password is not None:
            check_password(password, user.email)
            user.password_hash = hash_password(password)
        user.role, user.active = new_role, still_active
        if not still_active or password is not None:
            db.session.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
    return user


def authenticate(email: str, password: str) -> StaffUser | None:
    """The active user with this e-mail address and password, else None (the same work either way: an
    unknown address still costs one hash, so timing does not tell which addresses exist)."""
    user = db.session.execute(select(StaffUser).where(StaffUser.email == (email or "").strip().lower())
                              ).scalar_one_or_none()
    if user is None:
        _verify(_dummy_hash(), password)
        db.session.rollback()
        return None
    matches, rehash = _verify(user.password_hash, password)
    if not matches or not user.active:
        db.session.rollback()
        return None
    if rehash:
        with transaction():
            db.session.execute(update(StaffUser).where(StaffUser.id == user.id)
                               .values(password_hash=hash_password(password)))
    return user


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_hex(16))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(user_id: int) -> str:
    """A new session for the user: returns its token (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    with transaction():
        now = utcnow()
        db.session.add(StaffSession(token_hash=_digest(token), user_id=user_id, created_at=now, last_seen_at=now))
        # sessions that ended by being idle go with the next login
        db.session.execute(delete(StaffSession).where(StaffSession.last_seen_at < now - SESSION_IDLE))
    return token


def user_of_session(token: str) -> StaffUser | None:
    """The active user of a live session, else None; a session is kept alive by use (written at most once a
    minute)."""
    row = db.session.execute(select(StaffSession, StaffUser).join(StaffUser, StaffUser.id == StaffSession.user_id)
                             .where(StaffSession.token_hash == _digest(token))).first()
    if row is None:
        return None
    session, user = row
    now = utcnow()
    if not user.active or as_utc(session.last_seen_at) < now - SESSION_IDLE:
        return None
    if as_utc(session.last_seen_at) < now - timedelta(minutes=1):
        with transaction():
            db.session.execute(update(StaffSession).where(StaffSession.id == session.id).values(last_seen_at=now))
    return user


def end_session(token: str) -> None:
    """Log out: the session's row goes, the token stops working everywhere."""
    with transaction():
        db.session.execute(delete(StaffSession).where(StaffSession.token_hash == _digest(token)))


def list_users() -> list[StaffUser]:
    return list(db.session.execute(select(StaffUser).order_by(StaffUser.email)).scalars())
