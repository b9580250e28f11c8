"""The logged-in staff member as Flask-Login sees them: the cookie's session token is the "user id", so
Flask-Login's ``user_loader`` finds the session on the server (engine/services/staff.py), and a session
that was logged out, or whose user was deactivated, loads no one."""

from __future__ import annotations

from dataclasses import dataclass

from flask_login import UserMixin

from engine.services import staff


@dataclass(frozen=True)
class StaffMember(UserMixin):
    token: str
    user_id: int
    email: str
    role: str
    locale: str

    def get_id(self) -> str:
        return self.token


def load_user(token: str) -> StaffMember | None:
    user = staff.user_of_session(token)
    if user is None:
        return None
    return StaffMember(token, user.id, user.email, user.role, user.locale)
