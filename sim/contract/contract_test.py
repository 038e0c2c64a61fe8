#!/usr/bin/env python3
"""contract_test.py: xero-sim's replies against Xero's own OpenAPI specs.

Starts the xero-sim binary, drives every endpoint the engine uses (identity: authorize,
token, connections and their deletion, revocation; accounting: Contacts, Invoices, Payments,
Accounts and BankTransactions list/get/put/post, Organisation, and the error replies, 429
included; Practice Manager v3.1: jobs, job states, clients and their error replies, also the replies of the injected faults a client reads: applied_5xx, nil_id, 429;
files: every route of the Files API, its refusals and an applied_5xx upload),
captures the real replies, and validates each one against the schema the spec
declares for that path, method and status in third_party/xero-openapi/*.yaml. What the specs
do not describe is checked against the standards Xero follows: the authorize redirect's query
against RFC 6749 section 4.1.2 (plus Xero's scope and session_state), revocation against
RFC 7009, 429's Retry-After against RFC 9110 and X-Rate-Limit-Problem against Xero's limits
page. Webhook bodies, received by a receiver run here, are validated against
xero-webhooks.yaml and their signatures checked.

The adapter for OpenAPI: $ref into components resolves against the spec document; OpenAPI
3.0's `nullable` becomes a null type; `format` is checked for uuid, date, date-time (ISO 8601
with or without a zone, as Xero writes them) and uri; the x-is-msdate / x-is-msdate-time
marks require Xero's "/Date(ms+0000)/" form; x-is-money requires a JSON number. The XPM
spec's allOf parts, each closed with additionalProperties: false, are merged into one closed
object (merge_allof). On top of the
schema, a strict pass refuses any property the schema does not declare (the specs do not set
additionalProperties: false), apart from the few Xero sends that the spec's own examples show.

Usage: contract_test.py XERO_SIM_BINARY SPEC_DIR
"""
import base64
import copy
import decimal
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

import jsonschema
import yaml

KEY = "contract-webhook-key"
REDIRECT = "http://127.0.0.1:9/callback"
# Properties Xero sends that the schemas do not declare; every one appears in the spec's own
# response examples (the envelope of every accounting reply, the ISO twins of dates) or, for
# "scope", in the token reply of RFC 6749 section 5.1 that Xero follows.
UNDECLARED_OK = {"DateString", "DueDateString"}
ENVELOPE = {"Id", "Status", "ProviderName", "DateTimeUTC"}

failures = []


def fail(what):
    failures.append(what)
    print("FAIL:", what, file=sys.stderr)


# ---------------------------------------------------------------- the spec adapter

MSDATE = re.compile(r"^/Date\(-?\d+([+-]\d{4})?\)/$")
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,7})?(Z|[+-]\d{2}:?\d{2})?$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def adapt(node):
    """adapt rewrites an OpenAPI 3.0 schema tree into plain JSON Schema (new)."""
    if isinstance(node, list):
        return [adapt(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for k, v in node.items():
        if k in ("example", "examples", "externalDocs", "xml"):
            continue
        out[k] = adapt(v)
    if out.get("nullable") is True and "type" in out:
        t = out["type"]
        out["type"] = (t if isinstance(t, list) else [t]) + ["null"]
    out.pop("nullable", None)
    return out


def make_checker():
    fc = jsonschema.FormatChecker(formats=())

    @fc.checks("uuid")
    def _uuid(v):
        return not isinstance(v, str) or bool(UUID.match(v))

    @fc.checks("date-time")
    def _dt(v):
        return not isinstance(v, str) or bool(DATETIME.match(v))

    @fc.checks("date")
    def _d(v):
        return not isinstance(v, str) or bool(DATE.match(v))

    @fc.checks("uri")
    def _uri(v):
        return not isinstance(v, str) or bool(re.match(r"^[a-z][a-z0-9+.-]*://", v))

    return fc


def xero_keywords(base):
    """xero_keywords extends a validator class with the x-is-* marks of Xero's spec."""

    def msdate(validator, value, instance, schema):
        if value and isinstance(instance, str) and not MSDATE.match(instance):
            yield jsonschema.ValidationError("%r is not a /Date(...)/ value" % instance)

    def money(validator, value, instance, schema):
        if value and not isinstance(instance, (int, decimal.Decimal, float)):
            yield jsonschema.ValidationError("%r is not a JSON number" % (instance,))
        if (value and isinstance(instance, decimal.Decimal)
                and -instance.as_tuple().exponent > 6):
            yield jsonschema.ValidationError("%r has more than 6 places" % (instance,))

    return jsonschema.validators.extend(
        base, {"x-is-msdate": msdate, "x-is-msdate-time": msdate, "x-is-money": money})


class Spec:
    def __init__(self, path, base):
        with open(path) as f:
            raw = yaml.safe_load(f)
        self.raw = raw
        self.doc = adapt(raw)
        self.cls = xero_keywords(base)
        self.resolver = jsonschema.RefResolver.from_schema(self.doc)
        self.checker = make_checker()

    def resolve(self, schema):
        while isinstance(schema, dict) and "$ref" in schema:
            _, schema = self.resolver.resolve(schema["$ref"])
        return schema

    def response_schema(self, path, method, status):
        op = self.doc["paths"][path][method.lower()]
        resp = op["responses"][str(status)]
        if "$ref" in resp:
            resp = self.resolve(resp)
        return resp["content"]["application/json"]["schema"]

    def validate(self, instance, schema, what, top_ok=(), element=None):
        """validate checks instance against schema, then strictly: top_ok names undeclared
        top-level properties allowed (the envelope), element the schema whose properties an
        error reply's Elements may carry besides Element's own (the record that failed)."""
        v = self.cls(schema, resolver=self.resolver, format_checker=self.checker)
        errs = sorted(v.iter_errors(instance), key=lambda e: list(e.absolute_path))
        for e in errs[:5]:
            fail("%s: %s at %s" % (what, e.message[:200], "/".join(map(str, e.absolute_path))))
        self.strict(instance, schema, what, "", set(top_ok), element)
        return not errs

    def properties(self, schema):
        """properties collects the declared properties of a schema (through $ref, allOf)."""
        schema = self.resolve(schema)
        props = dict(schema.get("properties", {}))
        for sub in schema.get("allOf", []):
            props.update(self.properties(sub))
        return props

    def strict(self, instance, schema, what, path, top_ok=frozenset(), element=None):
        schema = self.resolve(schema)
        if isinstance(instance, dict):
            props = self.properties(schema)
            if element is not None and "ValidationErrors" in props and "ContactID" in props \
                    and "InvoiceID" in props:
                # an Element: the failed record with its ValidationErrors
                props = dict(self.properties(element), **props)
            if props:
                for k, v in instance.items():
                    if k not in props:
                        if k not in UNDECLARED_OK and not (path == "" and k in top_ok):
                            fail("%s: property %s%s is not in the schema" % (what, path, k))
                        continue
                    self.strict(v, props[k], what, "%s%s." % (path, k), frozenset(), element)
        elif isinstance(instance, list):
            items = schema.get("items")
            if items is not None:
                for i, v in enumerate(instance):
                    self.strict(v, items, what, "%s%d." % (path, i), frozenset(), element)


def merge_allof(doc):
    """merge_allof rewrites, in place, every schema of doc made of allOf parts into one object
    schema with the union of their properties. The XPM spec marks each part
    additionalProperties: false, so taken literally no instance could satisfy two parts (each
    refuses the other's properties); what it means is one object with all of them, closed."""
    schemas = doc["components"]["schemas"]

    def flat(schema, seen):
        if isinstance(schema, dict) and "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if name in seen:
                return schema
            return flat(schemas[name], seen | {name})
        if not isinstance(schema, dict) or "allOf" not in schema:
            return schema
        props = {}
        for part in schema["allOf"]:
            props.update(flat(part, seen).get("properties", {}))
        return {"type": "object", "additionalProperties": False, "properties": props}

    for name in list(schemas):
        schemas[name] = flat(schemas[name], {name})


# ---------------------------------------------------------------- HTTP

ALL_SCOPES = ("openid profile email offline_access accounting.contacts accounting.contacts.read "
              "accounting.transactions accounting.transactions.read accounting.invoices "
              "accounting.invoices.read accounting.payments accounting.payments.read "
              "accounting.banktransactions accounting.banktransactions.read accounting.settings "
              "accounting.settings.read")
# RFC 6749 section 4.1.2.1
AUTHORIZE_ERRORS = {"invalid_request", "unauthorized_client", "access_denied",
                    "unsupported_response_type", "invalid_scope", "server_error",
                    "temporarily_unavailable"}
RATE_PROBLEMS = {"minute", "day", "appminute", "concurrent"}
LIMIT_HEADERS = ("x-minlimit-remaining", "x-daylimit-remaining", "x-appminlimit-remaining")


def check_redirect(location, want, label):
    """check_redirect validates an authorize redirect: the registered URI, then exactly the
    query parameters of RFC 6749 section 4.1.2 (code, state) and Xero's (scope,
    session_state), or those of an error (section 4.1.2.1), each once. want maps a parameter to
    its expected value (None: any non-empty value). Returns the parameters."""
    u = urllib.parse.urlsplit(location)
    if urllib.parse.urlunsplit((u.scheme, u.netloc, u.path, "", "")) != REDIRECT:
        fail("%s: redirect to %s, not the registered %s" % (label, location[:80], REDIRECT))
    pairs = urllib.parse.parse_qsl(u.query, keep_blank_values=True, strict_parsing=True)
    got = {}
    for k, v in pairs:
        if k in got:
            fail("%s: query parameter %s given twice" % (label, k))
        got[k] = v
    if set(got) != set(want):
        fail("%s: query parameters %s, expected %s" % (label, sorted(got), sorted(want)))
    for k, v in want.items():
        if k not in got:
            continue
        if v is None and not got[k]:
            fail("%s: %s is empty" % (label, k))
        elif v is not None and got[k] != v:
            fail("%s: %s is %r, expected %r" % (label, k, got[k][:80], v[:80]))
    if "code" in got and not re.match(r"^[A-Za-z0-9._~-]+$", got["code"]):
        fail("%s: code %r is not URL-safe" % (label, got["code"][:40]))
    if "error" in got and got["error"] not in AUTHORIZE_ERRORS:
        fail("%s: error %r is not one of RFC 6749's" % (label, got["error"]))
    return got


def check_429(reply, problem, label):
    """check_429 validates a rate-limit refusal: Retry-After in delay-seconds (RFC 9110
    section 10.2.3) of at least 1, X-Rate-Limit-Problem as on Xero's limits page, the
    X-*-Remaining headers, and the gateway problem body."""
    st, h, body, raw = reply
    if st != 429:
        fail("%s: status %s, expected 429: %s" % (label, st, raw[:200]))
        return
    ra = h.get("retry-after", "")
    if not re.match(r"^[0-9]+$", ra) or int(ra) < 1:
        fail("%s: Retry-After %r is not a number of seconds >= 1" % (label, ra))
    p = h.get("x-rate-limit-problem")
    if p not in RATE_PROBLEMS or (problem is not None and p != problem):
        fail("%s: X-Rate-Limit-Problem %r, expected %s" % (label, p, problem or RATE_PROBLEMS))
    for k in LIMIT_HEADERS:
        if not re.match(r"^[0-9]+$", h.get(k, "")):
            fail("%s: %s is %r" % (label, k, h.get(k)))
    if not isinstance(body, dict) or list(body.keys()) != [
            "Type", "Title", "Status", "Detail", "Instance", "Extensions"] \
            or body.get("Status") != 429:
        fail("%s: body %s is not the gateway problem form" % (label, raw[:200]))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Client:
    def __init__(self, port):
        self.port = port
        self.token = None
        self.tenant = None

    def req(self, method, path, body=None, headers=None, raw=False):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = dict(headers or {})
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        payload = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        c.close()
        parsed = None
        if payload[:1] in (b"{", b"["):
            parsed = json.loads(payload, parse_float=decimal.Decimal)
        return r.status, hdrs, parsed, payload

    def api(self, method, path, body=None, extra=None):
        h = {"Authorization": "Bearer " + self.token, "xero-tenant-id": self.tenant,
             "Accept": "application/json"}
        h.update(extra or {})
        return self.req(method, "/api.xro/2.0" + path, body, h)

    def basic(self):
        return "Basic " + base64.b64encode(b"xero-sim-client:xero-sim-secret").decode()


# ---------------------------------------------------------------- the webhook receiver

received = []


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        sig = self.headers.get("x-xero-signature", "")
        want = base64.b64encode(hmac.new(KEY.encode(), body, hashlib.sha256).digest()).decode()
        ok = hmac.compare_digest(sig, want)
        received.append((body, ok))
        self.send_response(200 if ok else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


# ---------------------------------------------------------------- the run

def main():
    binary, spec_dir = sys.argv[1], sys.argv[2]
    acc = Spec(os.path.join(spec_dir, "xero_accounting.yaml"), jsonschema.Draft7Validator)
    ident = Spec(os.path.join(spec_dir, "xero-identity.yaml"), jsonschema.Draft7Validator)
    hooks = Spec(os.path.join(spec_dir, "xero-webhooks.yaml"), jsonschema.Draft202012Validator)
    files = Spec(os.path.join(spec_dir, "xero_files.yaml"), jsonschema.Draft7Validator)
    drop_undeclared_required(files.doc)
    xpm = Spec(os.path.join(spec_dir, "xero-practicemanager-v3-1.yaml"),
               jsonschema.Draft7Validator)
    merge_allof(xpm.doc)
    xpm.resolver = jsonschema.RefResolver.from_schema(xpm.doc)

    hook_srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook_srv.serve_forever, daemon=True).start()
    port = free_port()
    env = dict(os.environ)
    env.update({
        "XS_SIM_PORT": str(port), "XS_LOG_LEVEL": "warn",
        "XS_SIM_REDIRECT_URIS": REDIRECT,
        "XS_SIM_WEBHOOK_URL": "http://127.0.0.1:%d/hook" % hook_srv.server_address[1],
        "XS_SIM_WEBHOOK_KEY": KEY, "XS_SIM_WEBHOOK_DELAY": "20ms",
        "XS_SIM_LIMIT_MINUTE": "100000", "XS_SIM_LIMIT_DAY": "100000",
    })
    proc = subprocess.Popen([binary], env=env, stderr=subprocess.PIPE)
    try:
        cl = Client(port)
        for _ in range(200):
            try:
                if cl.req("GET", "/_sim/health")[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
        else:
            fail("xero-sim did not start")
            return
        run(cl, acc, ident, hooks, xpm, files)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = -1
        if code != 0:
            fail("xero-sim exited with %s: %s" % (code, proc.stderr.read().decode()[-2000:]))
        hook_srv.shutdown()


def token_for(cl, scope):
    """token_for authorizes scope (the test user consents at once) and exchanges the code:
    (status, token reply)."""
    q = urllib.parse.urlencode({
        "response_type": "code", "client_id": "xero-sim-client", "redirect_uri": REDIRECT,
        "scope": scope, "state": "s"})
    st, h, _, _ = cl.req("GET", "/identity/connect/authorize?" + q)
    code = urllib.parse.parse_qs(urllib.parse.urlparse(h.get("location", "")).query).get(
        "code", [""])[0]
    form = urllib.parse.urlencode({"grant_type": "authorization_code", "code": code,
                                   "redirect_uri": REDIRECT})
    th = {"Authorization": cl.basic(), "Content-Type": "application/x-www-form-urlencoded"}
    st, _, tok, _ = cl.req("POST", "/connect/token", form, th)
    return st, tok


def drop_undeclared_required(doc):
    """drop_undeclared_required removes, from every schema of doc, the `required` names the
    schema does not declare as properties. xero_files.yaml's FileObject requires "id", "name",
    "manufacturer" and "releaseDate" (left over from a template; its properties are "Id",
    "Name", ...), and Folder requires "name": no reply of Xero's has them, so as written no
    reply could validate. The declared properties are checked as they stand."""
    for schema in doc["components"]["schemas"].values():
        props = schema.get("properties")
        if props is not None and "required" in schema:
            schema["required"] = [k for k in schema["required"] if k in props]
            if not schema["required"]:
                del schema["required"]


def multipart(name, data, ctype="application/octet-stream", boundary="contractBoundary42"):
    """multipart builds an upload body as the SDKs send it: the file part "body" with its
    filename and content type, then the "name" and "filename" fields."""
    b = boundary.encode()
    out = (b"--" + b + b'\r\nContent-Disposition: form-data; name="body"; filename="' +
           name.encode() + b'"\r\nContent-Type: ' + ctype.encode() + b"\r\n\r\n" + data)
    for field in ("name", "filename"):
        out += (b"\r\n--" + b + b'\r\nContent-Disposition: form-data; name="' +
                field.encode() + b'"\r\n\r\n' + name.encode())
    out += b"\r\n--" + b + b"--\r\n"
    return out, "multipart/form-data; boundary=" + boundary


def run_files(cl, files, contact_id, invoice_id):
    """run_files drives every Files API route with a token holding the files scope and
    validates each reply against xero_files.yaml: the schema its path, method and status
    declare, strictly (no undeclared property), and the error form of the spec's examples
    for the refusals, whose responses declare no schema."""
    st, tok = token_for(cl, "openid offline_access accounting.contacts files")
    if st != 200:
        fail("files: token exchange: %s" % st)
        return
    auth = {"Authorization": "Bearer " + tok["access_token"], "xero-tenant-id": cl.tenant,
            "Accept": "application/json"}

    def call(method, path, body=None, ctype=None, extra=None):
        hh = dict(auth)
        if ctype:
            hh["Content-Type"] = ctype
        hh.update(extra or {})
        data = json.dumps(body) if isinstance(body, (dict, list)) else body
        return cl.req(method, "/files.xro/1.0" + path, data, hh)

    def check(method, spec_path, status, reply, label):
        st, hh, body, raw = reply
        if st != status:
            fail("%s: status %s, expected %s: %s" % (label, st, status, raw[:300]))
            return None
        if status in (204,):
            if raw != b"":
                fail("%s: a 204 with a body" % label)
            return None
        for k in LIMIT_HEADERS:
            if not re.match(r"^[0-9]+$", hh.get(k, "")):
                fail("%s: %s is %r" % (label, k, hh.get(k)))
        files.validate(body, files.response_schema(spec_path, method, status), label)
        return body

    def refused(reply, status, label, kind="Validation"):
        st, _, body, raw = reply
        if st != status or not isinstance(body, list) or len(body) != 1 \
                or set(body[0]) != {"type", "title", "detail"} or body[0]["type"] != kind:
            fail("%s: %s %s is not the Files API's error form" % (label, st, raw[:200]))

    inbox = check("get", "/Inbox", 200, call("GET", "/Inbox"), "GET /Inbox")
    folder = check("post", "/Folders", 200, call("POST", "/Folders", {"Name": "Contract docs"},
                                                 "application/json"), "POST /Folders")
    if not inbox or not folder:
        return
    fid = folder["Id"]
    check("get", "/Folders", 200, call("GET", "/Folders?sort=Name"), "GET /Folders")
    check("get", "/Folders/{FolderId}", 200, call("GET", "/Folders/" + fid),
          "GET /Folders/{FolderId}")
    check("put", "/Folders/{FolderId}", 200,
          call("PUT", "/Folders/" + fid, {"Name": "Contract papers"}, "application/json"),
          "PUT /Folders/{FolderId}")
    refused(call("POST", "/Folders", {"Name": "a/b"}, "application/json"), 400,
            "POST /Folders (bad name)")
    body, ct = multipart("contract.pdf", b"%PDF-1.4\n\x00\xff binary")
    f = check("post", "/Files", 201, call("POST", "/Files", body, ct,
                                          {"Idempotency-Key": "contract-upload"}), "POST /Files")
    again = call("POST", "/Files", body, ct, {"Idempotency-Key": "contract-upload"})
    if f and (again[0] != 201 or again[2] != f):
        fail("POST /Files replayed with its Idempotency-Key: %s" % again[3][:200])
    body2, ct2 = multipart("scan.png", b"\x89PNG\r\n", "image/png")
    f2 = check("post", "/Files/{FolderId}", 201, call("POST", "/Files/" + fid, body2, ct2),
               "POST /Files/{FolderId}")
    if not f or not f2:
        return
    refused(call("POST", "/Files", *multipart("virus.exe", b"MZ")), 400, "POST /Files (type)")
    refused(call("POST", "/Files", b"{}", "application/json"), 400, "POST /Files (malformed)")
    check("get", "/Files", 200, call("GET", "/Files?pagesize=1&page=2&sort=Name&direction=DESC"),
          "GET /Files")
    check("get", "/Files/{FileId}", 200, call("GET", "/Files/" + f["Id"]), "GET /Files/{FileId}")
    st, hh, _, raw = call("GET", "/Files/%s/Content" % f["Id"])
    if st != 200 or raw != b"%PDF-1.4\n\x00\xff binary" \
            or hh.get("content-type") != "application/octet-stream":
        fail("GET /Files/{FileId}/Content: %s %s %r" % (st, hh.get("content-type"), raw[:40]))
    if "application/octet-stream" not in \
            files.raw["paths"]["/Files/{FileId}/Content"]["get"]["responses"]["200"]["content"]:
        fail("GET /Files/{FileId}/Content: the spec no longer declares application/octet-stream")
    check("put", "/Files/{FileId}", 200,
          call("PUT", "/Files/" + f2["Id"], {"Name": "scan-1.png", "FolderId": inbox["Id"]},
               "application/json"), "PUT /Files/{FileId}")
    refused(call("PUT", "/Files/" + f2["Id"], {"Name": "FooBar"}, "application/json"), 400,
            "PUT /Files/{FileId} (rename failed)", "Rename")
    ap = "/Files/%s/Associations" % f["Id"]
    check("post", "/Files/{FileId}/Associations", 201,
          call("POST", ap, {"ObjectId": contact_id, "ObjectGroup": "Contact"}, "application/json"),
          "POST /Files/{FileId}/Associations (Contact)")
    check("post", "/Files/{FileId}/Associations", 201,
          call("POST", ap, {"ObjectId": invoice_id, "ObjectGroup": "Invoice",
                            "ObjectType": "AccRec"}, "application/json"),
          "POST /Files/{FileId}/Associations (Invoice)")
    refused(call("POST", ap, {"ObjectId": contact_id, "ObjectGroup": "Account"},
                 "application/json"), 400, "POST /Files/{FileId}/Associations (no such object)")
    check("get", "/Files/{FileId}/Associations", 200, call("GET", ap),
          "GET /Files/{FileId}/Associations")
    check("get", "/Associations/{ObjectId}", 200,
          call("GET", "/Associations/%s?sort=Name&direction=ASC" % invoice_id),
          "GET /Associations/{ObjectId}")
    b = check("get", "/Associations/Count", 200,
              call("GET", "/Associations/Count?ObjectIds=%s,%s" % (invoice_id, contact_id)),
              "GET /Associations/Count")
    if b is not None and b != {invoice_id: 1, contact_id: 1}:
        fail("GET /Associations/Count: %s" % b)
    check("delete", "/Files/{FileId}/Associations/{ObjectId}", 204,
          call("DELETE", "%s/%s" % (ap, contact_id)),
          "DELETE /Files/{FileId}/Associations/{ObjectId}")
    refused(call("GET", "/Files/00000000-0000-0000-0000-000000000001"), 404,
            "GET /Files/{FileId} (unknown)", "NotFound")
    # a lost upload reply: applied once, replayed by its key
    cl.req("POST", "/_sim/faults", {"script": [
        {"method": "POST", "path": "/files.xro/1.0/Files", "fault": "applied_5xx", "times": 1}]})
    body3, ct3 = multipart("gateway.pdf", b"%PDF")
    st, hh, b, raw = call("POST", "/Files", body3, ct3, {"Idempotency-Key": "contract-504"})
    if st != 504 or not isinstance(b, dict) or b.get("Status") != 504:
        fail("POST /Files (applied_5xx): %s %s" % (st, raw[:200]))
    check("post", "/Files", 201, call("POST", "/Files", body3, ct3,
                                      {"Idempotency-Key": "contract-504"}),
          "POST /Files (applied_5xx, replayed)")
    st, _, state, _ = cl.req("GET", "/_sim/files?tenant=" + cl.tenant)
    if st != 200 or [x["name"] for x in state["files"]].count("gateway.pdf") != 1:
        fail("/_sim/files after applied_5xx: %s" % state)
    check("delete", "/Files/{FileId}", 204, call("DELETE", "/Files/" + f2["Id"]),
          "DELETE /Files/{FileId}")
    check("delete", "/Folders/{FolderId}", 204, call("DELETE", "/Folders/" + fid),
          "DELETE /Folders/{FolderId}")
    st, _, _, _ = call("POST", "/Files", body, ct)
    if st != 201:
        fail("POST /Files with the accounting token's tenant: %s" % st)
    st, _, body, _ = cl.req("GET", "/files.xro/1.0/Files", None, {
        "Authorization": "Bearer " + cl.token, "xero-tenant-id": cl.tenant})
    if st != 401 or not body or body.get("Detail") != "AuthorizationUnsuccessful":
        fail("GET /Files without the files scope: %s %s" % (st, body))


def run(cl, acc, ident, hooks, xpm, files):
    # seed a realistic organisation
    st, _, tenants, _ = cl.req("GET", "/_sim/tenants")
    cl.tenant = tenants[0]["tenantId"]
    cl.req("POST", "/_sim/tenants/%s/seed" % cl.tenant,
           {"contacts": 40, "invoices": 80, "payments": 30, "bank_transactions": 20})
    # intent to receive, then events flow
    st, _, itr, _ = cl.req("POST", "/_sim/webhooks/itr", {"count": 4})
    if not itr or not itr.get("ok"):
        fail("intent to receive did not pass: %s" % itr)

    # ---- identity: authorize, token (code and refresh), connections
    # the redirect for the full scope list and a state that needs encoding arrives whole
    state = "Xk3-9_q.Z~p7/aB+c=d&e f%g:h" + "s" * 500
    q = urllib.parse.urlencode({
        "response_type": "code", "client_id": "xero-sim-client", "redirect_uri": REDIRECT,
        "scope": ALL_SCOPES, "state": state})
    st, h, _, _ = cl.req("GET", "/identity/connect/authorize?" + q)
    if st != 302:
        fail("authorize (all scopes): status %s" % st)
    check_redirect(h.get("location", ""), {"code": None, "scope": ALL_SCOPES, "state": state,
                                           "session_state": None}, "authorize redirect")
    q = urllib.parse.urlencode({
        "response_type": "code", "client_id": "xero-sim-client", "redirect_uri": REDIRECT,
        "scope": ALL_SCOPES + " accounting.unknown", "state": state})
    st, h, _, _ = cl.req("GET", "/identity/connect/authorize?" + q)
    if st != 302:
        fail("authorize (bad scope): status %s" % st)
    check_redirect(h.get("location", ""), {"error": "invalid_scope", "error_description": None,
                                           "state": state}, "authorize error redirect")
    st, tok = token_for(cl, "openid profile email offline_access accounting.contacts "
                            "accounting.transactions accounting.settings")
    th = {"Authorization": cl.basic(), "Content-Type": "application/x-www-form-urlencoded"}
    token_schema = {"$ref": "#/components/schemas/AccessToken"}
    if st != 200:
        fail("token exchange: %s" % st)
        return
    ident.validate(tok, token_schema, "POST /connect/token (authorization_code)", {"scope"})
    form = urllib.parse.urlencode({"grant_type": "refresh_token",
                                   "refresh_token": tok["refresh_token"]})
    st, _, tok2, _ = cl.req("POST", "/connect/token", form, th)
    ident.validate(tok2, token_schema, "POST /connect/token (refresh_token)", {"scope"})
    cl.token = tok2["access_token"]
    st, _, conns, _ = cl.req("GET", "/connections", None, {"Authorization": "Bearer " + cl.token})
    ident.validate(conns, ident.response_schema("/Connections", "get", 200), "GET /connections")

    entity = {"/Contacts": "Contact", "/Invoices": "Invoice", "/Payments": "Payment",
              "/Accounts": "Account", "/BankTransactions": "BankTransaction",
              "/Organisation": "Organisation"}

    def check(method, spec_path, status, reply, label):
        st, _, body, raw = reply
        if st != status:
            fail("%s: status %s, expected %s: %s" % (label, st, status, raw[:300]))
            return None
        kind = "/" + spec_path.split("/")[1]
        element = {"$ref": "#/components/schemas/" + entity[kind]}
        acc.validate(body, acc.response_schema(spec_path, method, status), label,
                     ENVELOPE if status < 300 else (), element)
        return body

    # ---- Contacts
    b = check("get", "/Contacts", 200, cl.api("GET", "/Contacts?page=1&includeArchived=true"),
              "GET /Contacts (paged)")
    cid = b["Contacts"][0]["ContactID"]
    check("get", "/Contacts/{ContactID}", 200, cl.api("GET", "/Contacts/" + cid),
          "GET /Contacts/{id}")
    check("get", "/Contacts", 200, cl.api("GET", "/Contacts?summaryOnly=true&page=1"),
          "GET /Contacts (summaryOnly)")
    b = check("put", "/Contacts", 200, cl.api("PUT", "/Contacts", {"Contacts": [{
        "Name": "Contract Co", "EmailAddress": "a@b.example", "ContactNumber": "C-1",
        "Addresses": [{"AddressType": "POBOX", "AddressLine1": "PO Box 1", "City": "Wellington"}],
        "Phones": [{"PhoneType": "MOBILE", "PhoneNumber": "021 1"}],
        "ContactPersons": [{"FirstName": "A", "LastName": "B", "IncludeInEmails": True}]}]}),
        "PUT /Contacts")
    new_cid = b["Contacts"][0]["ContactID"]
    b = check("get", "/Contacts/{ContactNumber}", 200, cl.api("GET", "/Contacts/C-1"),
              "GET /Contacts/{ContactNumber}")
    if b and b["Contacts"][0]["ContactID"] != new_cid:
        fail("GET /Contacts/{ContactNumber}: another contact")
    check("post", "/Contacts", 200, cl.api("POST", "/Contacts?summarizeErrors=false", {
        "Contacts": [{"ContactID": new_cid, "FirstName": "Ann"}, {"Name": "Contract Co"}]}),
        "POST /Contacts (summarizeErrors=false, one item failing)")
    check("post", "/Contacts/{ContactID}", 200,
          cl.api("POST", "/Contacts/" + new_cid, {"LastName": "Smith"}), "POST /Contacts/{id}")
    check("put", "/Contacts", 400, cl.api("PUT", "/Contacts", {"Contacts": [{"Name": ""}]}),
          "PUT /Contacts (400 ValidationException)")
    check("put", "/Contacts", 400, cl.api("PUT", "/Contacts", "{\"Contacts\":[{"),
          "PUT /Contacts (400 PostDataInvalidException)")

    # ---- Organisation
    b = check("get", "/Organisation", 200, cl.api("GET", "/Organisation"), "GET /Organisation")
    if b and b["Organisations"][0].get("OrganisationID") != cl.tenant:
        fail("GET /Organisation: not the tenant asked for")

    # ---- Accounts
    check("get", "/Accounts", 200, cl.api("GET", "/Accounts"), "GET /Accounts")
    b = check("put", "/Accounts", 200, cl.api("PUT", "/Accounts", {
        "Code": "205", "Name": "Contract Sales", "Type": "SALES"}), "PUT /Accounts")
    aid = b["Accounts"][0]["AccountID"]
    check("get", "/Accounts/{AccountID}", 200, cl.api("GET", "/Accounts/" + aid),
          "GET /Accounts/{id}")
    check("post", "/Accounts/{AccountID}", 200, cl.api("POST", "/Accounts/" + aid, {
        "Accounts": [{"Description": "Sold online"}]}), "POST /Accounts/{id}")
    check("delete", "/Accounts/{AccountID}", 200, cl.api("DELETE", "/Accounts/" + aid),
          "DELETE /Accounts/{id}")
    check("put", "/Accounts", 400, cl.api("PUT", "/Accounts", {"Code": "200", "Name": "X",
                                                               "Type": "SALES"}),
          "PUT /Accounts (400)")

    # ---- Invoices
    check("get", "/Invoices", 200, cl.api("GET", "/Invoices?page=1&unitdp=4"),
          "GET /Invoices (paged)")
    check("get", "/Invoices", 200, cl.api("GET", "/Invoices?Statuses=AUTHORISED,PAID"),
          "GET /Invoices (unpaged)")
    line = {"Description": "Contract work", "Quantity": "2.5", "UnitAmount": "10.1234",
            "AccountCode": "200", "DiscountRate": "10"}
    b = check("put", "/Invoices", 200, cl.api("PUT", "/Invoices?unitdp=4", {"Invoices": [{
        "Type": "ACCREC", "Contact": {"ContactID": new_cid}, "Date": "2024-05-01",
        "DueDate": "2024-05-31", "LineItems": [line], "Status": "AUTHORISED",
        "Reference": "R-1"}]}), "PUT /Invoices")
    iid = b["Invoices"][0]["InvoiceID"]
    total = b["Invoices"][0]["Total"]
    check("get", "/Invoices/{InvoiceID}", 200, cl.api("GET", "/Invoices/" + iid),
          "GET /Invoices/{id}")
    check("post", "/Invoices/{InvoiceID}", 200,
          cl.api("POST", "/Invoices/" + iid, {"Reference": "R-2"}), "POST /Invoices/{id}")
    # lines named by LineItemID are updated in place; a line without one is new
    lid = b["Invoices"][0]["LineItems"][0]["LineItemID"]
    lines = [{"LineItemID": lid, "Description": "Contract work, edited"},
             {"Description": "Extra", "Quantity": 1, "UnitAmount": "1.00", "AccountCode": "200"}]
    b = check("post", "/Invoices/{InvoiceID}", 200,
              cl.api("POST", "/Invoices/%s?unitdp=4" % iid, {"LineItems": lines}),
              "POST /Invoices/{id} (LineItems by LineItemID)")
    if b:
        got = [x["LineItemID"] for x in b["Invoices"][0]["LineItems"]]
        if len(got) != 2 or got[0] != lid or got[1] == lid:
            fail("POST /Invoices/{id} (LineItems by LineItemID): LineItemIDs %s" % got)
    check("post", "/Invoices", 200, cl.api("POST", "/Invoices?summarizeErrors=false", {
        "Invoices": [{"Type": "ACCPAY", "Contact": {"ContactID": new_cid},
                      "LineItems": [{"Description": "Bill", "Quantity": 1, "UnitAmount": 5,
                                     "AccountCode": "429"}]},
                     {"Type": "ACCREC"}]}), "POST /Invoices (summarizeErrors=false)")
    check("put", "/Invoices", 400, cl.api("PUT", "/Invoices", {"Invoices": [{
        "Type": "ACCREC", "Status": "PAID"}]}), "PUT /Invoices (400)")

    # ---- Payments
    half = (decimal.Decimal(total) / 2).quantize(decimal.Decimal("0.01"))
    b = check("put", "/Payments", 200, cl.api("PUT", "/Payments", {"Payments": [{
        "Invoice": {"InvoiceID": iid}, "Account": {"Code": "090"}, "Date": "2024-05-10",
        "Amount": str(half), "Reference": "part"}]}), "PUT /Payments")
    pid = b["Payments"][0]["PaymentID"]
    check("get", "/Payments", 200, cl.api("GET", "/Payments?page=1"), "GET /Payments (paged)")
    check("get", "/Payments/{PaymentID}", 200, cl.api("GET", "/Payments/" + pid),
          "GET /Payments/{id}")
    # with a payment the invoice's lines are locked: lines without their ids replace them
    check("post", "/Invoices/{InvoiceID}", 400, cl.api("POST", "/Invoices/" + iid, {
        "LineItems": [{"Description": "Contract work", "Quantity": 1, "UnitAmount": 1,
                       "AccountCode": "200"}]}),
          "POST /Invoices/{id} (400 lines of a paid invoice)")
    check("post", "/Payments/{PaymentID}", 200,
          cl.api("POST", "/Payments/" + pid, {"Status": "DELETED"}),
          "POST /Payments/{id} (delete)")
    # the spec's PaymentDelete schema is {"Status": ...}; its example wraps it in Payments
    b = check("put", "/Payments", 200, cl.api("PUT", "/Payments", {
        "Invoice": {"InvoiceID": iid}, "Account": {"Code": "090"}, "Amount": "1.00"}),
        "PUT /Payments (single object)")
    pid2 = b["Payments"][0]["PaymentID"] if b else ""
    check("post", "/Payments", 400, cl.api("POST", "/Payments", {
        "Payments": [{"PaymentID": pid2, "Status": "DELETED"}]}),
        "POST /Payments (400 a batch deleting a payment)")
    check("post", "/Payments/{PaymentID}", 200,
          cl.api("POST", "/Payments/" + pid2, {"Payments": [{"Status": "DELETED"}]}),
          "POST /Payments/{id} (delete, the example's wrapped form)")
    check("put", "/Payments", 400, cl.api("PUT", "/Payments", {
        "Invoice": {"InvoiceID": iid}, "Account": {"Code": "090"}, "Amount": "99999"}),
        "PUT /Payments (400 above the amount due)")

    # ---- BankTransactions
    check("get", "/BankTransactions", 200, cl.api("GET", "/BankTransactions?page=1"),
          "GET /BankTransactions (paged)")
    b = check("put", "/BankTransactions", 200, cl.api("PUT", "/BankTransactions", {
        "BankTransactions": [{"Type": "SPEND", "Contact": {"ContactID": new_cid},
                              "BankAccount": {"Code": "090"},
                              "LineItems": [{"Description": "Fuel", "Quantity": 1,
                                             "UnitAmount": "57.50", "AccountCode": "493"}]}]}),
        "PUT /BankTransactions")
    bid = b["BankTransactions"][0]["BankTransactionID"]
    check("get", "/BankTransactions/{BankTransactionID}", 200,
          cl.api("GET", "/BankTransactions/" + bid), "GET /BankTransactions/{id}")
    check("post", "/BankTransactions/{BankTransactionID}", 200,
          cl.api("POST", "/BankTransactions/" + bid, {"Reference": "fuel"}),
          "POST /BankTransactions/{id}")
    check("post", "/BankTransactions", 200, cl.api("POST", "/BankTransactions", {
        "BankTransactions": [{"BankTransactionID": bid, "Status": "DELETED"}]}),
        "POST /BankTransactions (delete)")

    # ---- error shapes the spec does not declare: 404 text, gateway problem JSON
    st, _, _, raw = cl.api("GET", "/Contacts/00000000-0000-0000-0000-000000000001")
    if st != 404 or raw != b"The resource you're looking for cannot be found":
        fail("404 shape: %s %r" % (st, raw[:80]))
    problem_keys = ["Type", "Title", "Status", "Detail", "Instance", "Extensions"]
    good_token = cl.token
    cl.token = "x"
    st, _, body, _ = cl.api("GET", "/Contacts")
    if st != 401 or list(body.keys()) != problem_keys:
        fail("401 shape: %s %s" % (st, body))
    cl.token = good_token
    saved = cl.tenant
    cl.tenant = "00000000-0000-0000-0000-000000000002"
    st, _, body, _ = cl.api("GET", "/Contacts")
    if st != 403 or list(body.keys()) != problem_keys:
        fail("403 shape: %s %s" % (st, body))
    cl.tenant = saved
    st, _, body, _ = cl.req("POST", "/connect/token", "grant_type=refresh_token&refresh_token=x",
                            th)
    if st != 400 or body != {"error": "invalid_grant",
                             "error_description": body.get("error_description")}:
        fail("token error shape: %s %s" % (st, body))

    # ---- injected faults whose replies a client reads: applied_5xx (the gateway's 504 after
    # the write was applied), nil_id (the items as sent with the nil id: still a valid reply),
    # 429 (as the limiter's)
    def script(method, path, fault):
        cl.req("POST", "/_sim/faults", {"script": [
            {"method": method, "path": "/api.xro/2.0" + path, "fault": fault, "times": 1}]})

    script("PUT", "/Contacts", "applied_5xx")
    st, h, body, raw = cl.api("PUT", "/Contacts", {"Name": "Gateway Co"})
    if st != 504 or not isinstance(body, dict) or list(body.keys()) != problem_keys \
            or body.get("Status") != 504 or body.get("Instance") != h.get("xero-correlation-id"):
        fail("504 (applied_5xx) shape: %s %s" % (st, raw[:200]))
    for k in LIMIT_HEADERS:
        if not re.match(r"^[0-9]+$", h.get(k, "")):
            fail("504 (applied_5xx): %s is %r" % (k, h.get(k)))
    script("PUT", "/Invoices", "nil_id")
    b = check("put", "/Invoices", 200, cl.api("PUT", "/Invoices", {"Invoices": [{
        "Type": "ACCPAY", "Contact": {"ContactID": new_cid}, "Reference": "nil",
        "LineItems": [{"Description": "Nil", "Quantity": 1, "UnitAmount": "5.00",
                       "AccountCode": "429"}]}]}), "PUT /Invoices (nil_id fault)")
    if b and (b["Invoices"][0].get("InvoiceID") != "00000000-0000-0000-0000-000000000000"
              or b["Invoices"][0].get("StatusAttributeString") != "OK"):
        fail("PUT /Invoices (nil_id fault): %s" % b["Invoices"][0])
    script("GET", "/Accounts", "429")
    check_429(cl.api("GET", "/Accounts"), "minute", "429 (injected)")

    # ---- the Files API, with associations to a contact and an invoice made above
    st, _, inv, _ = cl.api("GET", "/Invoices?page=1&Statuses=AUTHORISED")
    acc_rec = [i for i in (inv or {}).get("Invoices", []) if i["Type"] == "ACCREC"]
    if not acc_rec:
        fail("no ACCREC invoice to associate a file with")
    else:
        run_files(cl, files, new_cid, acc_rec[0]["InvoiceID"])

    # ---- 429: a tenant's minute limit, then the app's
    cl.req("POST", "/_sim/config", {"limits": {"minute": 1}})
    cl.api("GET", "/Accounts")
    check_429(cl.api("GET", "/Accounts"), "minute", "429 (minute)")
    cl.req("POST", "/_sim/config", {"limits": {"minute": 100000, "app_minute": 1}})
    cl.api("GET", "/Accounts")
    check_429(cl.api("GET", "/Accounts"), "appminute", "429 (app minute)")
    cl.req("POST", "/_sim/config", {"limits": {"app_minute": 100000}})

    run_xpm(cl, xpm)

    # ---- identity, last (they take the connections away): DELETE /connections/{id}, then
    # revocation (RFC 7009: 200 with no body; the refresh token then fails)
    h_auth = {"Authorization": "Bearer " + cl.token}
    st, _, conns, _ = cl.req("GET", "/connections", None, h_auth)
    st, _, _, raw = cl.req("DELETE", "/connections/" + conns[0]["id"], None, h_auth)
    if st != 204 or raw != b"":
        fail("DELETE /connections/{id}: %s %r" % (st, raw[:80]))
    if "204" not in ident.doc["paths"]["/Connections/{id}"]["delete"]["responses"]:
        fail("DELETE /connections/{id}: the spec no longer declares 204")
    st, _, _, _ = cl.req("DELETE", "/connections/" + conns[0]["id"], None, h_auth)
    if st != 404:
        fail("DELETE /connections/{id} (gone): %s, the spec declares 404" % st)
    st, _, body, _ = cl.api("GET", "/Contacts")
    if st != 403:
        fail("a deleted connection's tenant: %s, expected 403" % st)
    form = urllib.parse.urlencode({"token": tok2["refresh_token"],
                                   "token_type_hint": "refresh_token"})
    st, _, _, raw = cl.req("POST", "/connect/revocation", form, th)
    if st != 200 or raw != b"":
        fail("POST /connect/revocation: %s %r" % (st, raw[:80]))
    form = urllib.parse.urlencode({"grant_type": "refresh_token",
                                   "refresh_token": tok2["refresh_token"]})
    st, _, body, _ = cl.req("POST", "/connect/token", form, th)
    if st != 400 or not body or body.get("error") != "invalid_grant":
        fail("refresh after revocation: %s %s" % (st, body))
    st, _, conns, _ = cl.req("GET", "/connections", None, h_auth)
    if st != 401:
        fail("GET /connections after revocation: %s, expected 401" % st)

    # ---- webhooks
    cl.req("POST", "/_sim/webhooks/flush", {"timeout_ms": 5000})
    itr_schema = copy.deepcopy(hooks.doc["components"]["schemas"]["WebhookEvent"])
    for k in ("firstEventSequence", "lastEventSequence"):
        # Xero's intent-to-receive payloads carry 0, below the spec's minimum of 1 (Xero's
        # webhook documentation shows 0); everything else is as the schema says
        itr_schema["properties"][k].pop("minimum", None)
    events = 0
    if not received:
        fail("no webhook deliveries received")
    for body, ok in received:
        doc = json.loads(body)
        is_itr = doc.get("events") == [] and doc.get("firstEventSequence") == 0
        if is_itr:
            hooks.validate(doc, itr_schema, "webhook intent to receive")
            if doc["lastEventSequence"] != 0:
                fail("intent to receive: lastEventSequence %s" % doc["lastEventSequence"])
            continue
        if not ok:
            fail("an event delivery was not signed with the webhook key")
        hooks.validate(doc, {"$ref": "#/components/schemas/WebhookEvent"}, "webhook events")
        events += len(doc["events"])
    if events < 5:
        fail("expected CONTACT and INVOICE events, got %d" % events)


def run_xpm(cl, xpm):
    """run_xpm validates the XPM API v3.1 replies (every route the simulator serves, its
    error replies and an injected 500) against xero-practicemanager-v3-1.yaml."""
    ctl = "/_sim/xpm%s?tenant=" + cl.tenant
    st, _, body, raw = cl.req("POST", ctl % "/clients", {"clients": [
        {"name": "Contract Client", "email": "cc@example.com", "phone": "04 555",
         "address": "1 Main St", "city": "Wellington", "postCode": "6011",
         "country": "New Zealand"}, {"name": "Second Client"}]})
    if st != 200:
        fail("POST /_sim/xpm/clients: %s %s" % (st, raw[:200]))
        return
    client = body["clients"][0]["uuid"]
    st, _, _, raw = cl.req("POST", ctl % "/jobs", {"jobs": [
        {"name": "Annual accounts", "client": client, "type": "Annual Accounts",
         "budget": 1200, "startDate": "2024-07-01", "dueDate": "2024-09-30"},
        {"name": "GST", "client": client, "state": "Completed"}]})
    if st != 200:
        fail("POST /_sim/xpm/jobs: %s %s" % (st, raw[:200]))
        return
    q = urllib.parse.urlencode({
        "response_type": "code", "client_id": "xero-sim-client", "redirect_uri": REDIRECT,
        "scope": "offline_access practicemanager", "state": "x"})
    st, h, _, _ = cl.req("GET", "/identity/connect/authorize?" + q)
    code = urllib.parse.parse_qs(urllib.parse.urlparse(h.get("location", "")).query).get(
        "code", [""])[0]
    form = urllib.parse.urlencode({"grant_type": "authorization_code", "code": code,
                                   "redirect_uri": REDIRECT})
    st, _, tok, _ = cl.req("POST", "/connect/token", form, {
        "Authorization": cl.basic(), "Content-Type": "application/x-www-form-urlencoded"})
    if st != 200:
        fail("token for the practicemanager scope: %s" % st)
        return
    hdr = {"Authorization": "Bearer " + tok["access_token"], "xero-tenant-id": cl.tenant,
           "Accept": "application/json"}
    today = time.strftime("%Y%m%d", time.gmtime())

    def check(spec_path, path, status=200, schema=None):
        st, _, body, raw = cl.req("GET", "/practicemanager" + path, None, hdr)
        label = "GET %s (%s)" % (path, status)
        if st != status:
            fail("%s: status %s: %s" % (label, st, raw[:300]))
            return None
        if schema is None:
            schema = xpm.response_schema(spec_path, "get", status)
        xpm.validate(body, schema, label)
        return body

    error = {"$ref": "#/components/schemas/ResponseErrorDto"}
    check("/v3.1/job.api/current", "/v3.1/job.api/current")
    check("/v3.1/job.api/current", "/v3.1/job.api/current?detailed=true")
    b = check("/v3.1/job.api/list", "/v3.1/job.api/list?from=%s&to=%s" % (today, today))
    if b and len(b.get("jobs", [])) != 2:
        fail("job.api/list of today: %s jobs, expected 2" % len(b.get("jobs", [])))
    check("/v3.1/job.api/get/{jobNumber}", "/v3.1/job.api/get/J000001")
    check("/v3.1/job.api/client/{identifier}", "/v3.1/job.api/client/" + client)
    check("/v3.1/jobstate.api/list", "/v3.1/jobstate.api/list")
    check("/v3.1/client.api/list", "/v3.1/client.api/list")
    check("/v3.1/client.api/list", "/v3.1/client.api/list?detailed=true"
          "&modifiedSince=2000-01-01T00:00:00")
    check("/v3.1/client.api/get/{identifier}", "/v3.1/client.api/get/" + client)
    check(None, "/v3.1/job.api/get/J999999", 404, error)
    check(None, "/v3.1/client.api/get/" + "0" * 8 + "-0000-4000-8000-" + "0" * 12, 404, error)
    check(None, "/v3.1/job.api/list?from=" + today, 400, error)
    check(None, "/v3.1/client.api/list?modifiedSince=yesterday", 400, error)
    cl.req("POST", "/_sim/faults", {"script": [
        {"path": "/practicemanager/v3.1/job.api", "fault": "500", "times": 1}]})
    check("/v3.1/job.api/current", "/v3.1/job.api/current", 500)


if __name__ == "__main__":
    main()
    if failures:
        print("%d contract failure(s)" % len(failures), file=sys.stderr)
        sys.exit(1)
    print("contract: every reply validates against the Xero OpenAPI specs")
