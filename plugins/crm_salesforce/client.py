"""The one module that imports simple-salesforce: log in, upsert records in sObject Collections calls, query,
read the org's limits; Salesforce's answers become ``Outcome`` values or a ``Retryable`` error.

* Upserts go by external id through ``PATCH /services/data/vXX.X/composite/sobjects/{SObject}/{field}`` with
  ``allOrNone: false`` and at most 200 records a call: one answer per record, in order.
* The username login is simple-salesforce's SOAP login (``/services/Soap/u/{version}``); on a 401
  ``INVALID_SESSION_ID`` the client logs in again by itself and repeats the call. An OAuth access token cannot
  be renewed here: its expiry is a ``Retryable`` error that says so.
* ``Retryable``: Salesforce is unavailable (5xx), the org's API limit is reached (``REQUEST_LIMIT_EXCEEDED``),
  the network failed, the login was refused, a record was locked. The caller keeps the records pending and
  raises, so the outbox relay retries the stage hook with back-off.
* A record refused for itself (``REQUIRED_FIELD_MISSING``, ``INVALID_FIELD``, ``STRING_TOO_LONG``...), or a
  whole call refused for its content (a field missing on the object: 400 ``INVALID_FIELD``), is a permanent
  ``Outcome`` with the error: not retried until the record changes or staff retry it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from urllib.parse import urlparse

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
)

from engine.plugin_api import redact_text

from .settings import Settings

# per-record error codes worth another try later (the record itself is fine)
RETRYABLE_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "REQUEST_LIMIT_EXCEEDED", "SERVER_UNAVAILABLE",
                             "API_TEMPORARILY_UNAVAILABLE", "QUERY_TIMEOUT"})
_lock = threading.Lock()


class Retryable(Exception):
    """Salesforce could not take the call now; ``code`` is Salesforce's error code (or a word of ours)."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


@dataclass
class Outcome:
    """Salesforce's answer for one record: its id, or the error that refused it."""

    ok: bool
    salesforce_id: str | None = None
    created: bool = False
    code: str | None = None
    message: str | None = None
    retryable: bool = False


def new_session() -> requests.Session:
    """The HTTP session the client uses (tests route it to a loopback stand-in of Salesforce)."""
    return requests.Session()


def _errors(exc: SalesforceError) -> tuple[str, str]:
    """The first ``errorCode`` and ``message`` of an error answer (a list of ``{errorCode, message}``)."""
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        first = content[0]
        return str(first.get("errorCode") or first.get("statusCode") or exc.status), str(first.get("message", ""))
    return f"HTTP_{exc.status}", redact_text(str(content))[:500]


class Connection:
    """A logged-in simple-salesforce client (made on first use, outside any transaction)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._sf: Salesforce | None = None

    def salesforce(self) -> Salesforce:
        with _lock:
            if self._sf is None:
                self._sf = self._login()
            return self._sf

    def _login(self) -> Salesforce:
        s = self.settings
        session = new_session()
        try:
            if s.access_token:
                return Salesforce(session_id=s.access_token, instance_url=s.instance_url, version=s.api_version,
                                  session=session)
            return Salesforce(username=s.username, password=s.password, security_token=s.security_token,
                              domain=s.login_domain, version=s.api_version, session=session)
        except SalesforceAuthenticationFailed as exc:
            raise Retryable(str(exc.code or "INVALID_LOGIN"), f"the Salesforce login was refused: {exc.message}. "
                            "Check HOOKSHOP_SALESFORCE_USERNAME, _PASSWORD and _SECURITY_TOKEN") from None
        except requests.RequestException as exc:
            raise Retryable("NETWORK", f"Salesforce's login cannot be reached: {type(exc).__name__}") from None

    def _call(self, method: str, path: str, **kwargs):
        sf = self.salesforce()
        try:
            return sf.restful(path, method=method, timeout=self.settings.timeout, **kwargs)
        except SalesforceExpiredSession as exc:
            code, message = _errors(exc)
            if self.settings.access_token:
                raise Retryable(code, "the OAuth access token expired or was revoked "
                                f"({message}): set a new HOOKSHOP_SALESFORCE_ACCESS_TOKEN") from None
            with _lock:
                self._sf = None  # the renewed login failed too: log in afresh next time
            raise Retryable(code, message) from None
        except SalesforceError as exc:
            code, message = _errors(exc)
            if exc.status >= 500 or code in RETRYABLE_CODES:
                raise Retryable(code, f"HTTP {exc.status}: {message}") from None
            raise
        except requests.RequestException as exc:
            raise Retryable("NETWORK", f"Salesforce cannot be reached: {type(exc).__name__}") from None

    def upsert(self, sobject: str, external_id_field: str, records: list[dict]) -> list[Outcome]:
        """Upsert up to 200 records by external id in one Collections call; one Outcome per record, in order."""
        if not 0 < len(records) <= 200:
            raise ValueError("an sObject Collections call takes 1 to 200 records")
        body = {"allOrNone": False,
                "records": [{"attributes": {"type": sobject}, **record} for record in records]}
        try:
            answer = self._call("PATCH", f"composite/sobjects/{sobject}/{external_id_field}", json=body)
        except SalesforceError as exc:  # the whole call refused for its content: every record carries it
            code, message = _errors(exc)
            return [Outcome(False, code=code, message=message) for _ in records]
        outcomes = []
        for result in list(answer or []):
            if result.get("success"):
                outcomes.append(Outcome(True, salesforce_id=result.get("id"), created=bool(result.get("created"))))
                continue
            errors = result.get("errors") or [{}]
            code = str(errors[0].get("statusCode") or "UNKNOWN")
            fields = errors[0].get("fields") or []
            message = str(errors[0].get("message") or "") + (f" (fields: {', '.join(fields)})" if fields else "")
            outcomes.append(Outcome(False, salesforce_id=result.get("id"), code=code, message=message,
                                    retryable=code in RETRYABLE_CODES))
        if len(outcomes) != len(records):
            raise Retryable("BAD_ANSWER", f"Salesforce answered {len(outcomes)} results for {len(records)} records")
        return outcomes

    def query_all(self, soql: str) -> list[dict]:
        """Every record of a SOQL query (following ``nextRecordsUrl``)."""
        sf = self.salesforce()
        try:
            return list(sf.query_all(soql, timeout=self.settings.timeout).get("records", []))
        except SalesforceExpiredSession as exc:
            raise Retryable(*_errors(exc)) from None
        except SalesforceError as exc:
            code, message = _errors(exc)
            raise Retryable(code, f"HTTP {exc.status}: {message}") from None
        except requests.RequestException as exc:
            raise Retryable("NETWORK", f"Salesforce cannot be reached: {type(exc).__name__}") from None

    def limits(self) -> dict:
        """The org's limits (``DailyApiRequests``: ``Max``, ``Remaining``)."""
        return dict(self._call("GET", "limits/") or {})


def instance_host(settings: Settings) -> str:
    return urlparse(settings.instance_url).hostname or ""
