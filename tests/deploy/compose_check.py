#!/usr/bin/env python3
"""compose_check: what can be checked of docker-compose.yml without a Docker engine.

- it parses, and has the services the deployment needs (postgres with a volume and a health
  check, a one-shot migrate, the orchestrator, the four domain services with settable
  replicas, each pointed at Xero's API host through XS_XERO_API_URL, and xero-sim under the
  "dev" profile);
- every command it runs names a binary this build makes, and deploy/Dockerfile builds it;
- every XS_* variable it sets or interpolates is documented in docs/CONFIG.md.

Usage: compose_check.py COMPOSE DOCKERFILE CONFIG_MD BIN_DIR
"""
import os
import re
import sys

import yaml

DOMAINS = ["auth", "contacts", "invoices", "payments"]


def fail(msg):
    print("compose_check: " + msg, file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) != 5:
        fail(__doc__)
    compose_path, dockerfile_path, config_path, bin_dir = sys.argv[1:]
    raw = open(compose_path, encoding="utf-8").read()
    doc = yaml.safe_load(raw)
    config_md = open(config_path, encoding="utf-8").read()
    dockerfile = open(dockerfile_path, encoding="utf-8").read()
    built = set(os.listdir(bin_dir))

    services = doc.get("services") or {}
    for name in ["postgres", "migrate", "orchestrator", "xero-sim"] + DOMAINS:
        if name not in services:
            fail("service %s is missing" % name)

    pg = services["postgres"]
    if not pg.get("volumes"):
        fail("postgres has no volume: its data would not survive a restart")
    if "healthcheck" not in pg:
        fail("postgres has no healthcheck")
    if services["migrate"].get("depends_on", {}).get("postgres", {}).get("condition") != "service_healthy":
        fail("migrate must wait for a healthy postgres")
    if services["xero-sim"].get("profiles") != ["dev"]:
        fail("xero-sim must run only under the dev profile")
    for d in DOMAINS:
        s = services[d]
        reps = str((s.get("deploy") or {}).get("replicas", ""))
        if not re.fullmatch(r"\$\{XS_%s_REPLICAS(:-\d+)?\}" % d.upper(), reps):
            fail("%s: replicas must be settable through XS_%s_REPLICAS" % (d, d.upper()))
        if "migrate" not in (s.get("depends_on") or {}):
            fail("%s must start after the migration" % d)
        # every domain service calls Xero's API host, so each must follow XS_XERO_API_URL
        # (to xero-sim under the dev profile)
        for k in ("XS_BUS_URL", "XS_DATABASE_URL", "XS_XERO_API_URL"):
            if k not in (s.get("environment") or {}):
                fail("%s does not set %s" % (d, k))
    for k in ("XS_TOKEN_KEY", "XS_XERO_CLIENT_ID", "XS_XERO_CLIENT_SECRET", "XS_OAUTH_REDIRECT_URIS"):
        if k not in (services["auth"].get("environment") or {}):
            fail("auth does not set %s" % k)
    for k in ("XS_API_KEYS", "XS_BUS_LISTEN", "XS_DATABASE_URL", "XS_HTTP_ADDR"):
        if k not in (services["orchestrator"].get("environment") or {}):
            fail("orchestrator does not set %s" % k)

    for name, s in services.items():
        cmd = s.get("command") or s.get("entrypoint")
        if cmd is None:
            if "image" in s and not s["image"].startswith("xero-sync"):
                continue  # a third-party image (postgres)
            fail("%s runs no command" % name)
        argv0 = cmd[0] if isinstance(cmd, list) else cmd.split()[0]
        if argv0 not in built:
            fail("%s runs %s, which this build does not make (built: %s)"
                 % (name, argv0, ", ".join(sorted(built))))
        if not re.search(r"--target[^\n]*(\\\n[^\n]*)*\b%s\b" % re.escape(argv0), dockerfile):
            fail("deploy/Dockerfile does not build %s" % argv0)

    used = set(re.findall(r"\$\{(XS_[A-Z0-9_]+)", raw))
    for s in services.values():
        env = s.get("environment") or {}
        keys = env.keys() if isinstance(env, dict) else [e.split("=", 1)[0] for e in env]
        used.update(k for k in keys if k.startswith("XS_"))
    documented = set(re.findall(r"^\|\s*`(XS_[A-Z0-9_]+)`", config_md, re.M))
    missing = sorted(used - documented)
    if missing:
        fail("variables used in docker-compose.yml but not documented in docs/CONFIG.md: "
             + ", ".join(missing))
    print("compose_check: %d services, %d variables, all documented; binaries built"
          % (len(services), len(used)))


if __name__ == "__main__":
    main()
