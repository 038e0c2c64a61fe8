#!/usr/bin/env python3
"""api_contract.py: the orchestrator's REST API against its contract, docs/openapi.yaml.

Three checks, each of which fails the test:

1. The document itself: valid OpenAPI 3.1 by a maintained validator
   (@seriousme/openapi-schema-validator from npm, --validator; scripts/npm-tools installs it),
   every schema valid JSON Schema 2020-12 (python3-jsonschema's own meta-schema), every $ref
   resolving, every operation with an operationId (unique), a summary, its path parameters
   declared, and responses; every example valid against its schema.
2. The route table: every (method, path) in services/orchestrator/api.c's `routes[]` is in the
   document, and every operation of the document is in the table.
3. The replies: every reply of the orchestrator that the tests received (the harness writes
   them to XS_CONTRACT_LOG, one JSON line each) is validated: its route and status must be
   documented for that operation, its Content-Type must be the documented media type, and a
   JSON body must validate against the documented schema (python3-jsonschema,
   Draft 2020-12, formats uuid and date-time checked). Replies the HTTP server gives before
   any route runs (400 for a request target it refuses, 404 for an unknown path, 405 for a
   method a path does not have) must be the documented Error. When every test named by
   --expect contributed to the log, every
   operation must have been exercised at least once; otherwise that check is skipped and
   says so (a partial `ctest -R` run).

Usage: api_contract.py --spec docs/openapi.yaml --routes services/orchestrator/api.c
                       --log DIR --validator node_modules/.bin/validate-api
                       --expect e2e_a,e2e_b,...
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys
import urllib.parse
import warnings

import jsonschema
import yaml

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# The engine writes times as ISO 8601 UTC with milliseconds and Z (docs/API.md).
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
URI = re.compile(r"^[a-z][a-z0-9+.-]*://")
ROUTE = re.compile(r'\{\s*"(GET|POST|PUT|PATCH|DELETE|HEAD)",\s*"([^"]+)",')

failures = []


def fail(what):
    failures.append(what)
    print("FAIL:", what, file=sys.stderr)


def format_checker():
    """format_checker checks the formats the document uses, as the engine writes them."""
    fc = jsonschema.FormatChecker(formats=())
    for name, rx in (("uuid", UUID), ("date-time", DATETIME), ("uri", URI)):
        fc.checks(name)(lambda v, rx=rx: not isinstance(v, str) or bool(rx.match(v)))
    return fc


class Contract:
    def __init__(self, path):
        with open(path) as f:
            self.doc = yaml.safe_load(f)
        self.resolver = jsonschema.RefResolver.from_schema(self.doc)
        self.checker = format_checker()
        # Path templates, most literal first, so /v1/runs/{id}/cancel never takes a literal.
        self.templates = []
        for tpl in self.doc.get("paths", {}):
            parts = tpl.strip("/").split("/")
            pattern = "^/" + "/".join(
                "[^/]+" if p.startswith("{") else re.escape(p) for p in parts) + (
                    "/$" if tpl.endswith("/") and tpl != "/" else "$")
            self.templates.append((sum(p.startswith("{") for p in parts), tpl,
                                   re.compile(pattern)))
        self.templates.sort()

    def deref(self, node):
        while isinstance(node, dict) and "$ref" in node:
            _, node = self.resolver.resolve(node["$ref"])
        return node

    def match(self, path):
        for _, tpl, rx in self.templates:
            if rx.match(path):
                return tpl
        return None

    def operations(self):
        for tpl, item in self.doc.get("paths", {}).items():
            for m in METHODS:
                if m in item:
                    yield tpl, m, item[m]

    def validate(self, schema, instance):
        # The schema is validated as the root of a document that holds the components, so a
        # "#/components/..." reference resolves the same with every jsonschema version (4.10,
        # Debian 12's, resolves through RefResolver; 4.18 and later through `referencing`).
        root = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                "components": self.doc.get("components", {}), "allOf": [schema]}
        v = jsonschema.Draft202012Validator(root, format_checker=self.checker)
        return sorted(v.iter_errors(instance), key=lambda e: list(e.absolute_path))


def walk_refs(node, at, refs):
    if isinstance(node, dict):
        if "$ref" in node and isinstance(node["$ref"], str):
            refs.append((at, node["$ref"]))
        for k, v in node.items():
            walk_refs(v, at + "/" + str(k), refs)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            walk_refs(v, at + "/" + str(i), refs)


def check_structure(spec, validator):
    """check_structure runs the OpenAPI 3.1 validator from npm over the document."""
    try:
        p = subprocess.run([validator, spec], capture_output=True, text=True, timeout=60)
    except OSError as e:
        fail("document: cannot run the OpenAPI validator %s: %s (scripts/npm-tools installs it)"
             % (validator, e))
        return
    if p.returncode != 0:
        fail("document: not valid OpenAPI 3.1 (%s):\n%s%s" % (validator, p.stdout[:4000],
                                                              p.stderr[:1000]))


def check_document(c):
    doc = c.doc
    if not str(doc.get("openapi", "")).startswith("3.1."):
        fail("document: openapi must be 3.1.x, is %r" % doc.get("openapi"))
    for key in ("info", "paths", "components"):
        if key not in doc:
            fail("document: no %s" % key)
    refs = []
    walk_refs(doc, "#", refs)
    for at, ref in refs:
        try:
            c.resolver.resolve(ref)
        except jsonschema.RefResolutionError as e:
            fail("document: %s: $ref %s does not resolve (%s)" % (at, ref, e))
    for name, schema in doc.get("components", {}).get("schemas", {}).items():
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as e:
            fail("document: schema %s is not valid JSON Schema 2020-12: %s" % (name, e.message))
    seen_ids = {}
    for tpl, m, op in c.operations():
        where = "%s %s" % (m.upper(), tpl)
        oid = op.get("operationId")
        if not oid:
            fail("document: %s has no operationId" % where)
        elif oid in seen_ids:
            fail("document: operationId %s used by %s and %s" % (oid, seen_ids[oid], where))
        else:
            seen_ids[oid] = where
        if not op.get("summary"):
            fail("document: %s has no summary" % where)
        if not op.get("responses"):
            fail("document: %s has no responses" % where)
        params = [c.deref(p) for p in
                  doc["paths"][tpl].get("parameters", []) + op.get("parameters", [])]
        declared = {p.get("name") for p in params if p.get("in") == "path"}
        for name in re.findall(r"\{([^}]+)\}", tpl):
            if name not in declared:
                fail("document: %s does not declare path parameter %s" % (where, name))
        for p in params:
            if "schema" in p:
                try:
                    jsonschema.Draft202012Validator.check_schema(p["schema"])
                except jsonschema.SchemaError as e:
                    fail("document: %s parameter %s: %s" % (where, p.get("name"), e.message))
        for status, resp in op.get("responses", {}).items():
            if not re.match(r"^([1-5][0-9][0-9]|[1-5]XX|default)$", str(status)):
                fail("document: %s response %r is not a status" % (where, status))
            resp = c.deref(resp)
            if "description" not in resp:
                fail("document: %s response %s has no description" % (where, status))
            for media, body in resp.get("content", {}).items():
                if "schema" in body:
                    try:
                        jsonschema.Draft202012Validator.check_schema(body["schema"])
                    except jsonschema.SchemaError as e:
                        fail("document: %s %s %s: %s" % (where, status, media, e.message))
                examples = {n: c.deref(ex).get("value")
                            for n, ex in body.get("examples", {}).items()}
                if "example" in body:
                    examples["example"] = body["example"]
                for name, value in examples.items():
                    if value is None or "schema" not in body or media != "application/json":
                        continue
                    for err in c.validate(body["schema"], value):
                        fail("document: %s %s example %s: %s at %s" % (
                            where, status, name, err.message, list(err.absolute_path)))


def check_routes(c, routes_file):
    with open(routes_file) as f:
        text = f.read()
    start = text.find("routes[] = {")
    if start < 0:
        fail("route table: no `routes[] = {` in %s" % routes_file)
        return
    table = text[start:text.find("};", start)]
    code = set()
    for m, p in ROUTE.findall(table):
        if p.endswith("/*"):
            # A route for a whole folder ("/ui/*": the dashboard's files) stands for the
            # folder without and with its slash and its one-segment file names, documented as
            # "/ui", "/ui/" and "/ui/{file}" (whatever the parameter's name).
            base = p[:-2]
            code |= {(m.lower(), base), (m.lower(), base + "/")}
            code |= {(m.lower(), tpl) for tpl, dm, _ in c.operations()
                     if dm == m.lower() and re.match(re.escape(base) + r"/\{[^/}]+\}$", tpl)}
        else:
            code.add((m.lower(), p))
    if not code:
        fail("route table: no route read from %s" % routes_file)
    doc = {(m, tpl) for tpl, m, _ in c.operations()}
    for m, p in sorted(code - doc):
        fail("route %s %s is in the code's table but not in the document" % (m.upper(), p))
    for m, p in sorted(doc - code):
        fail("operation %s %s is in the document but not in the code's table" % (m.upper(), p))


def media_type(ct):
    return (ct or "").split(";")[0].strip().lower()


def check_reply(c, rec, seen):
    method = rec["method"].lower()
    url = urllib.parse.urlsplit(rec["url"])
    status = str(rec["status"])
    where = "%s %s -> %s (%s)" % (rec["method"], url.path, status, rec.get("test"))
    if rec.get("body_not_utf8"):
        fail("%s: the body is not UTF-8" % where)
        return
    tpl = c.match(url.path)
    item = c.doc["paths"].get(tpl) if tpl else None
    if item is None or method not in item:
        # The server's own answers before any route: a request target it refuses (400, e.g.
        # a dot segment), an unknown path, another method.
        if status not in ("400", "404", "405") or (item is not None and status == "404"):
            fail("%s: no such operation in the document" % where)
            return
        if status == "405" and item is None:
            fail("%s: 405 for a path the document does not have" % where)
            return
        schema = {"$ref": "#/components/schemas/Error"}
        check_body(c, where, rec, "application/json", schema)
        return
    op = item[method]
    seen.setdefault((method, tpl), set()).add(status)
    # A query argument the route took (no 4xx) must be one the document declares.
    if not status.startswith("4"):
        declared = {c.deref(p).get("name") for p in item.get("parameters", []) +
                    op.get("parameters", []) if c.deref(p).get("in") == "query"}
        for name in urllib.parse.parse_qs(url.query, keep_blank_values=True):
            if name not in declared:
                fail("%s: query argument %r taken but not declared" % (where, name))
    responses = op.get("responses", {})
    resp = responses.get(status) or responses.get(status[0] + "XX") or responses.get("default")
    if resp is None:
        fail("%s: status %s is not documented for %s %s (documented: %s)" % (
            where, status, method.upper(), tpl, ", ".join(sorted(map(str, responses)))))
        return
    resp = c.deref(resp)
    content = resp.get("content")
    if not content:
        if rec.get("body"):
            fail("%s: the document says no body, the reply has %d bytes" % (
                where, len(rec["body"])))
        return
    got = media_type(rec.get("content_type"))
    if got not in content:
        fail("%s: Content-Type %r, the document has %s" % (
            where, rec.get("content_type"), ", ".join(content)))
        return
    check_body(c, where, rec, got, content[got].get("schema"))


def check_body(c, where, rec, media, schema):
    got = media_type(rec.get("content_type"))
    if got != media:
        fail("%s: Content-Type %r, expected %s" % (where, rec.get("content_type"), media))
        return
    if schema is None or media != "application/json":
        return
    try:
        body = json.loads(rec.get("body") or "")
    except ValueError as e:
        fail("%s: the body is not JSON (%s): %.200r" % (where, e, rec.get("body")))
        return
    for err in c.validate(schema, body)[:5]:
        fail("%s: %s at %s" % (where, err.message[:300],
                               "/".join(map(str, err.absolute_path)) or "the top"))


def main():
    # jsonschema 4.18 and later deprecate RefResolver; Debian 12 has 4.10, where it is the way.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", required=True)
    ap.add_argument("--routes", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--validator", required=True)
    ap.add_argument("--expect", default="")
    args = ap.parse_args()

    check_structure(args.spec, args.validator)
    c = Contract(args.spec)
    check_document(c)
    check_routes(c, args.routes)

    records = []
    for path in sorted(glob.glob(os.path.join(args.log, "*.jsonl"))):
        with open(path) as f:
            for n, line in enumerate(f, 1):
                try:
                    records.append(json.loads(line))
                except ValueError:
                    fail("%s:%d: a line of the log is not JSON" % (path, n))
    seen = {}
    for rec in records:
        check_reply(c, rec, seen)

    tests = {r.get("test") for r in records}
    expect = [t for t in args.expect.split(",") if t]
    missing_tests = [t for t in expect if t not in tests]
    ops = sorted((m, tpl) for tpl, m, _ in c.operations())
    if not missing_tests:
        for m, tpl in ops:
            if (m, tpl) not in seen:
                fail("operation %s %s: no test received a reply from it" % (m.upper(), tpl))
    else:
        print("coverage not checked: these tests left no reply in the log (not run, or "
              "failed early): %s" % ", ".join(missing_tests))
    for m, tpl in ops:
        documented = {str(s) for s in c.doc["paths"][tpl][m].get("responses", {})}
        got = seen.get((m, tpl), set())
        print("%-7s %-42s seen %-28s documented, not seen: %s" % (
            m.upper(), tpl, ",".join(sorted(got)) or "-",
            ",".join(sorted(documented - got)) or "-"))
    print("%d replies from %d tests validated against %s; %d failures" % (
        len(records), len(tests), args.spec, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
