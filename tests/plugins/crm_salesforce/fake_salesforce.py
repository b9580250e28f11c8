"""A loopback stand-in for the Salesforce endpoints crm_salesforce uses, written from Salesforce's public
REST API reference, for the tests and bench/crm_delay.py. The real simple-salesforce client talks to it:
``FakeSalesforce.session()`` is a ``requests.Session`` whose ``https://`` transport goes to this server
instead of the internet (the URLs, headers and bodies are the client's own).

Endpoints:

* ``POST /services/Soap/u/{version}`` — the SOAP ``login`` (username, password + security token): a
  ``loginResponse`` with ``sessionId`` and ``serverUrl``, or a ``sf:INVALID_LOGIN`` fault (HTTP 500).
* ``PATCH /services/data/vXX.X/composite/sobjects/{SObject}/{ExternalIdField}`` — sObject Collections upsert
  (``allOrNone``, at most 200 ``records``): one ``{id, success, errors, created}`` per record, in order;
  relationships by external id (``"Account": {"Hookshop_Id__c": "7"}``) resolved or refused per record;
  required fields checked on insert (``REQUIRED_FIELD_MISSING``); an unknown field refuses the whole call
  (400 ``INVALID_FIELD``, "No such column ...").
* ``PATCH /services/data/vXX.X/sobjects/{SObject}/{ExternalIdField}/{value}`` — one upsert: 201 or 204.
* ``GET /services/data/vXX.X/query/?q=SOQL`` — ``SELECT fields FROM SObject [WHERE a AND b] [ORDER BY f]``
  with conditions ``f != null``, ``f = 'text'``, ``f > datetime``.
* ``GET /services/data/vXX.X/limits/`` — ``DailyApiRequests`` (``Max``, ``Remaining``).

Every data call needs ``Authorization: Bearer <session>``; otherwise 401
``[{"errorCode": "INVALID_SESSION_ID", "message": "Session expired or invalid"}]``. ``expire_sessions()``
invalidates the sessions handed out; ``fail_next(status, code)`` answers the next data calls with an error
(503 ``SERVER_UNAVAILABLE``, 403 ``REQUEST_LIMIT_EXCEEDED``...); ``api_max`` caps the day's requests.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import HTTPAdapter

PREFIXES = {"Account": "001", "Contact": "003", "Opportunity": "006", "Order": "801"}
REQUIRED = {"Account": {"Name"}, "Contact": {"LastName"}, "Order": {"EffectiveDate", "Status", "AccountId"},
            "Opportunity": {"Name", "StageName", "CloseDate"}}
STANDARD = {
    "Account": {"Name", "BillingStreet", "BillingCity", "BillingPostalCode", "BillingCountry"},
    "Contact": {"FirstName", "LastName", "Email", "Phone", "MailingStreet", "MailingCity", "MailingPostalCode",
                "MailingCountry", "AccountId"},
    "Order": {"Name", "EffectiveDate", "Status", "AccountId", "BillToContactId"},
    "Opportunity": {"Name", "StageName", "CloseDate", "Amount", "AccountId", "ContactId"},
}
CUSTOM = {
    "Account": {"Hookshop_Tax_Id__c"},
    "Contact": {"Hookshop_VIP__c", "Hookshop_Order_Count__c", "Hookshop_Total_Spent__c"},
    "Order": {"Hookshop_Status__c", "Hookshop_Total__c", "Hookshop_Currency__c", "Hookshop_Channel__c",
              "Hookshop_VIP__c", "Hookshop_Gift__c", "Hookshop_Replacement__c", "Hookshop_Tracking_Number__c",
              "Hookshop_Estimated_Delivery__c"},
}
CUSTOM["Opportunity"] = set(CUSTOM["Order"]) - {"Hookshop_Total__c"}
RELATIONSHIPS = {"Account": "Account", "Contact": "Contact", "BillToContact": "Contact"}
EXTERNAL_ID = "Hookshop_Id__c"


@dataclass
class Call:
    method: str
    path: str
    host: str
    body: object = None
    status: int = 0

    @property
    def kind(self) -> str:
        if "/Soap/u/" in self.path:
            return "login"
        if "/composite/sobjects/" in self.path:
            return "collections"
        if "/query" in self.path:
            return "query"
        if self.path.rstrip("/").endswith("/limits"):
            return "limits"
        return "sobject"


@dataclass
class FakeSalesforce:
    username: str = "sync@shop.example"
    password: str = "s3cret"
    security_token: str = "TOKEN123"
    instance_host: str = "shop.my.salesforce.com"
    api_max: int = 15000
    records: dict = field(default_factory=lambda: {name: {} for name in PREFIXES})
    fields: dict = field(default_factory=lambda: {name: STANDARD[name] | CUSTOM[name] | {EXTERNAL_ID}
                                                  for name in PREFIXES})
    calls: list = field(default_factory=list)
    sessions: set = field(default_factory=set)
    logins: int = 0
    api_used: int = 0
    faults: list = field(default_factory=list)
    delay: float = 0.0

    def __post_init__(self):
        self._lock = threading.Lock()
        self._ids = 0
        self._server: ThreadingHTTPServer | None = None
        self.on_upsert = None  # called with (sobject, records) after a Collections upsert is applied

    # ------------------------------------------------------------------ control

    def start(self) -> FakeSalesforce:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, headers, body = fake.handle(self.command, self.path, dict(self.headers.items()), raw)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_DELETE = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    def session(self) -> requests.Session:
        """A requests session whose https:// calls reach this server (the Host the client meant is kept in
        ``X-Original-Host``)."""
        session = requests.Session()
        session.trust_env = False
        session.mount("https://", _Loopback(self.port))
        return session

    def expire_sessions(self) -> None:
        with self._lock:
            self.sessions.clear()

    def fail_next(self, status: int, code: str = "SERVER_UNAVAILABLE", message: str = "", times: int = 1) -> None:
        body = [{"errorCode": code, "message": message or {503: "Service Unavailable",
                                                         403: "TotalRequests Limit exceeded."}.get(status, code)}]
        with self._lock:
            self.faults.extend([(status, body)] * times)

    def remove_field(self, sobject: str, name: str) -> None:
        self.fields[sobject] = set(self.fields[sobject]) - {name}

    def change(self, sobject: str, external_id: str, **values) -> None:
        """A change made in Salesforce by a person (bumps LastModifiedDate)."""
        with self._lock:
            record = self.records[sobject][external_id]
            record.update(values)
            record["LastModifiedDate"] = _now()

    def data_calls(self, kind: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.kind != "login" and (kind is None or c.kind == kind)]

    # ------------------------------------------------------------------ the endpoints

    def handle(self, method: str, target: str, headers: dict, raw: bytes) -> tuple[int, dict, bytes]:
        parts = urlsplit(target)
        body: object = None
        if raw and "json" in (headers.get("Content-Type") or headers.get("content-type") or ""):
            body = json.loads(raw)
        elif raw:
            body = raw.decode()
        call = Call(method, target, headers.get("X-Original-Host", ""), body)
        with self._lock:
            self.calls.append(call)
        if self.delay:
            import time

            time.sleep(self.delay)
        status, out_headers, out = self._route(method, parts.path, parse_qs(parts.query), headers, body)
        call.status = status
        return status, out_headers, out

    def _route(self, method, path, query, headers, body):
        if method == "POST" and re.fullmatch(r"/services/Soap/u/[0-9.]+", path):
            return self._login(body or "")
        match = re.fullmatch(r"/services/data/v([0-9]+\.[0-9])/(.*)", path)
        if not match:
            return _json(404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])
        with self._lock:
            if self.faults:
                status, error = self.faults.pop(0)
                return _json(status, error)
            token = (headers.get("Authorization") or "").removeprefix("Bearer ")
            if token not in self.sessions:
                return _json(401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
            self.api_used += 1
            if self.api_used > self.api_max:
                return _json(403, [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
            limit_header = {"Sforce-Limit-Info": f"api-usage={self.api_used}/{self.api_max}"}
            rest = match.group(2)
            collection = re.fullmatch(r"composite/sobjects/(\w+)/(\w+)", rest)
            if method == "PATCH" and collection:
                status, headers_out, out = self._collections(collection.group(1), collection.group(2), body)
            elif method == "PATCH" and (single := re.fullmatch(r"sobjects/(\w+)/(\w+)/([^/]+)", rest)):
                status, headers_out, out = self._single(single.group(1), single.group(2), single.group(3), body)
            elif method == "GET" and rest.rstrip("/") == "query":
                status, headers_out, out = self._query((query.get("q") or [""])[0])
            elif method == "GET" and rest.rstrip("/") == "limits":
                status, headers_out, out = _json(200, {"DailyApiRequests": {
                    "Max": self.api_max, "Remaining": max(self.api_max - self.api_used, 0)}})
            else:
                status, headers_out, out = _json(404, [{"errorCode": "NOT_FOUND",
                                                        "message": "The requested resource does not exist"}])
        return status, {**headers_out, **limit_header}, out

    def _login(self, envelope: str):
        user = re.search(r"<n1:username>(.*?)</n1:username>", envelope)
        secret = re.search(r"<n1:password>(.*?)</n1:password>", envelope)
        if not user or not secret or user.group(1) != self.username or \
                secret.group(1) != self.password + self.security_token:
            fault = ('<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
                     'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
                     'xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault>'
                     '<faultcode>sf:INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: Invalid username, '
                     'password, security token; or user locked out.</faultstring><detail><sf:LoginFault>'
                     '<sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode><sf:exceptionMessage>Invalid username, '
                     'password, security token; or user locked out.</sf:exceptionMessage></sf:LoginFault>'
                     '</detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>')
            return 500, {"Content-Type": "text/xml"}, fault.encode()
        with self._lock:
            self.logins += 1
            session_id = f"00D000000000001!session{self.logins}"
            self.sessions.add(session_id)
        answer = ('<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
                  'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com">'
                  '<soapenv:Body><loginResponse><result><metadataServerUrl>'
                  f'https://{self.instance_host}/services/Soap/m/59.0/00D000000000001</metadataServerUrl>'
                  '<passwordExpired>false</passwordExpired><sandbox>false</sandbox>'
                  f'<serverUrl>https://{self.instance_host}/services/Soap/u/59.0/00D000000000001</serverUrl>'
                  f'<sessionId>{session_id}</sessionId><userId>005000000000001AAA</userId>'
                  '</result></loginResponse></soapenv:Body></soapenv:Envelope>')
        return 200, {"Content-Type": "text/xml"}, answer.encode()

    # called with the lock held
    def _new_id(self, sobject: str) -> str:
        self._ids += 1
        return f"{PREFIXES[sobject]}{self._ids:012d}AAA"

    def _upsert_one(self, sobject: str, ext_field: str, record: dict, ext_value: str | None = None) -> dict:
        values = {k: v for k, v in record.items() if k != "attributes"}
        ext_value = ext_value if ext_value is not None else values.pop(ext_field, None)
        values.pop(ext_field, None)
        if ext_value in (None, ""):
            return {"success": False, "errors": [{"statusCode": "MISSING_ARGUMENT",
                                                  "message": f"{ext_field} not specified", "fields": []}]}
        resolved = {}
        for name, value in values.items():
            if isinstance(value, dict):  # a relationship by external id
                target = RELATIONSHIPS.get(name)
                (key, wanted), = value.items()
                found = self.records.get(target, {}).get(str(wanted)) if target else None
                if found is None:
                    return {"success": False, "errors": [{
                        "statusCode": "INVALID_FIELD", "fields": [],
                        "message": f"Foreign key external ID: {wanted} not found for field {key} in entity "
                                   f"{target or name}"}]}
                resolved[name + "Id"] = found["Id"]
            else:
                resolved[name] = value
        existing = self.records[sobject].get(str(ext_value))
        merged = {**(existing or {}), **resolved}
        missing = sorted(f for f in REQUIRED[sobject] if merged.get(f) in (None, ""))
        if missing:
            return {"success": False, "errors": [{"statusCode": "REQUIRED_FIELD_MISSING",
                                                  "message": f"Required fields are missing: [{', '.join(missing)}]",
                                                  "fields": missing}]}
        if existing is None:
            merged["Id"] = self._new_id(sobject)
            merged[ext_field] = str(ext_value)
        merged["LastModifiedDate"] = _now()
        self.records[sobject][str(ext_value)] = merged
        return {"id": merged["Id"], "success": True, "errors": [], "created": existing is None}

    def _unknown_field(self, sobject: str, names) -> dict | None:
        for name in names:
            if name == "attributes":
                continue
            known = name in self.fields[sobject] or (name in RELATIONSHIPS and name + "Id" in self.fields[sobject])
            if not known:
                return {"errorCode": "INVALID_FIELD",
                        "message": f"No such column '{name}' on entity '{sobject}'. If you are attempting to use "
                                   "a custom field, be sure to append the '__c' after the custom field name. "
                                   "Please reference your WSDL or the describe call for the appropriate names."}
        return None

    def _collections(self, sobject: str, ext_field: str, body):
        if sobject not in PREFIXES:
            return _json(404, [{"errorCode": "NOT_FOUND", "message": f"sObject type '{sobject}' is not supported."}])
        records = (body or {}).get("records") or []
        if len(records) > 200:
            return _json(400, [{"errorCode": "EXCEEDED_ID_LIMIT",
                                "message": "record limit reached. cannot submit more than 200 records into this call"}])
        if ext_field not in self.fields[sobject]:
            return _json(404, [{"errorCode": "NOT_FOUND", "message": f"Provided external ID field does not exist "
                                                                       f"or is not accessible: {ext_field}"}])
        for record in records:
            problem = self._unknown_field(sobject, record)
            if problem:
                return _json(400, [problem])
        results = [self._upsert_one(sobject, ext_field, record) for record in records]
        if self.on_upsert is not None:
            self.on_upsert(sobject, records)
        return _json(200, results)

    def _single(self, sobject: str, ext_field: str, value: str, body):
        problem = self._unknown_field(sobject, body or {})
        if problem:
            return _json(400, [problem])
        result = self._upsert_one(sobject, ext_field, dict(body or {}), ext_value=value)
        if not result["success"]:
            return _json(400, [{"errorCode": result["errors"][0]["statusCode"], "message": result["errors"][0]["message"],
                                "fields": result["errors"][0]["fields"]}])
        if result["created"]:
            return _json(201, result)
        return 204, {}, b""

    def _query(self, soql: str):
        match = re.fullmatch(r"\s*SELECT\s+(.+?)\s+FROM\s+(\w+)(?:\s+WHERE\s+(.+?))?(?:\s+ORDER\s+BY\s+(\w+))?\s*",
                             soql, re.IGNORECASE | re.DOTALL)
        if not match or match.group(2) not in PREFIXES:
            return _json(400, [{"errorCode": "MALFORMED_QUERY", "message": f"unexpected query: {soql[:200]}"}])
        names = [n.strip() for n in match.group(1).split(",")]
        sobject = match.group(2)
        for name in names:
            if name not in self.fields[sobject] | {"Id", "LastModifiedDate"}:
                return _json(400, [{"errorCode": "INVALID_FIELD", "message": f"No such column '{name}' on entity "
                                                                             f"'{sobject}'."}])
        conditions = [c.strip() for c in re.split(r"\s+AND\s+", match.group(3) or "", flags=re.IGNORECASE) if c.strip()]
        rows = list(self.records[sobject].values())
        for condition in conditions:
            cond = re.fullmatch(r"(\w+)\s*(!=|=|>)\s*(.+)", condition)
            if not cond:
                return _json(400, [{"errorCode": "MALFORMED_QUERY", "message": f"unexpected condition {condition}"}])
            name, op, literal = cond.groups()
            if literal == "null":
                rows = [r for r in rows if (r.get(name) is not None) == (op == "!=")]
            elif literal.startswith("'"):
                rows = [r for r in rows if str(r.get(name)) == literal.strip("'")]
            else:
                limit = _parse(literal)
                rows = [r for r in rows if r.get(name) and _parse(r[name]) > limit]
        if match.group(4):
            rows.sort(key=lambda r: str(r.get(match.group(4)) or ""))
        out = [{"attributes": {"type": sobject, "url": f"/services/data/v59.0/sobjects/{sobject}/{r['Id']}"},
                **{n: r.get(n) for n in names}} for r in rows]
        return _json(200, {"totalSize": len(out), "done": True, "records": out})


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "+0000"


def _parse(value: str) -> datetime:
    text = value.replace("Z", "+0000")
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise ValueError(value)


def _json(status: int, data) -> tuple[int, dict, bytes]:
    return status, {"Content-Type": "application/json;charset=UTF-8"}, json.dumps(data).encode()


class _Loopback(HTTPAdapter):
    """Send https://<any host>/path to http://127.0.0.1:<port>/path (no TLS, no DNS, no internet)."""

    def __init__(self, port: int):
        super().__init__()
        self.port = port

    def send(self, request, **kwargs):
        parts = urlsplit(request.url)
        request.headers["X-Original-Host"] = parts.netloc
        request.url = f"http://127.0.0.1:{self.port}{parts.path}" + (f"?{parts.query}" if parts.query else "")
        kwargs["proxies"] = {}
        return super().send(request, **kwargs)
