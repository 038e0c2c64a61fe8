#!/usr/bin/env python3
"""compose_check: what can be checked of the compose deployment without a Docker engine, in a
second; the deployment itself is built and run by tests/deploy/run (ctest: deploy_compose).

- docker-compose.yml has the services the deployment needs: postgres with a volume and a
  healthcheck; a one-shot migrate after it; the orchestrator and the four domain services, each
  depending on postgres directly (so that docker-compose v1 stops them before it), with
  replicas settable through XS_<DOMAIN>_REPLICAS and the bus and Xero's API host from the one
  x-domain-env block; xero-sim under the dev profile only;
- every service of ours runs our image with `init: true`; no port is published on all
  addresses by default; the four secrets are required (`${VAR:?...}`), so that the
  production path refuses to start without them, while deploy/dev.env sets each of them;
- the binaries: every one the build makes (BIN_DIR) is built by deploy/Dockerfile, and every
  command docker-compose.yml runs is one of them or a script the image copies in (xs-certs);
- two orchestrators, `orchestrator` and `orchestrator-2`, alike but for their published port,
  and every domain dials both (XS_BUS_URL lists each one's bus);
- the bus is TLS: the orchestrators listen and the domains dial tls+tcp://, each engine
  service mounts exactly one certificate volume, its own role's, read-only where XS_BUS_TLS_DIR
  points, and every engine service waits for the one-shot `certs` service;
- every FROM of deploy/Dockerfile and tests/deploy/postgres.Dockerfile is the local base image
  debian:bookworm-slim (no registry is reachable where the test runs);
- every XS_* variable docker-compose.yml or deploy/dev.env uses is documented in docs/CONFIG.md.

Usage: compose_check.py TOP BIN_DIR
"""
import os
import re
import sys

import yaml

DOMAINS = ["auth", "contacts", "invoices", "payments", "files", "jobs"]
SECRETS = ["XS_API_KEYS", "XS_TOKEN_KEY", "XS_XERO_CLIENT_ID", "XS_XERO_CLIENT_SECRET"]
BASE_IMAGE = "debian:bookworm-slim"

problems = []


def check(ok, msg):
    if not ok:
        problems.append(msg)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


TARGET_BINARY = {"xs-cli": "xs"}


def dockerfile_targets(text):
    """The targets of the `cmake --build ... --target a b c` of a Dockerfile, continued lines
    joined."""
    joined = re.sub(r"\\\n", " ", text)
    m = re.search(r"cmake --build\b[^\n]*?--target\s+([^\n&;]*)", joined)
    return set(m.group(1).split()) if m else set()


def check_froms(name, text):
    stages = set()
    froms = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, re.M | re.I)
    check(froms, "%s has no FROM" % name)
    for image, stage in froms:
        check(image == BASE_IMAGE or image in stages,
              "%s: FROM %s: only %s (made locally) or an earlier stage" % (name, image, BASE_IMAGE))
        if stage:
            stages.add(stage)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    top, bin_dir = sys.argv[1:]
    raw = read(os.path.join(top, "docker-compose.yml"))
    doc = yaml.safe_load(raw)
    dockerfile = read(os.path.join(top, "deploy", "Dockerfile"))
    pg_dockerfile = read(os.path.join(top, "tests", "deploy", "postgres.Dockerfile"))
    dev_env = read(os.path.join(top, "deploy", "dev.env"))
    config_md = read(os.path.join(top, "docs", "CONFIG.md"))
    built = set(os.listdir(bin_dir))

    services = doc.get("services") or {}
    for name in ["postgres", "migrate", "orchestrator", "xero-sim"] + DOMAINS:
        if name not in services:
            sys.exit("compose_check: service %s is missing" % name)
    ours = {n: s for n, s in services.items() if str(s.get("image", "")).startswith("xero-sync:")}
    check(set(ours) == set(services) - {"postgres"},
          "every service but postgres runs the xero-sync image (ours: %s)" % sorted(ours))

    pg = services["postgres"]
    check(pg.get("volumes"), "postgres has no volume: its data would not survive a restart")
    check("healthcheck" in pg, "postgres has no healthcheck")
    check(services["migrate"].get("depends_on", {}).get("postgres", {}).get("condition")
          == "service_healthy", "migrate must wait for a healthy postgres")
    check(services["xero-sim"].get("profiles") == ["dev"], "xero-sim must run only under the dev profile")
    check("healthcheck" in services["orchestrator"], "the orchestrator has no healthcheck")

    for name, s in ours.items():
        check(s.get("init") is True, "%s: needs `init: true` (so SIGTERM reaches the process)" % name)
        env = s.get("environment") or {}
        if "XS_DATABASE_URL" in env and name != "migrate":
            deps = s.get("depends_on") or {}
            check("postgres" in deps and "migrate" in deps,
                  "%s uses PostgreSQL: it must depend on postgres directly and on migrate" % name)
    for d in DOMAINS:
        s = services[d]
        reps = str((s.get("deploy") or {}).get("replicas", ""))
        check(re.fullmatch(r"\$\{XS_%s_REPLICAS(:-\d+)?\}" % d.upper(), reps),
              "%s: replicas must be settable through XS_%s_REPLICAS" % (d, d.upper()))
        for k in ("XS_BUS_URL", "XS_DATABASE_URL", "XS_XERO_API_URL"):
            check(k in (s.get("environment") or {}), "%s does not set %s" % (d, k))
    # the bus settings come from the one x-domain-env block: the same for every domain
    bus = {d: {k: v for k, v in (services[d].get("environment") or {}).items() if k.startswith("XS_BUS_")}
           for d in DOMAINS}
    check(len({repr(sorted(b.items())) for b in bus.values()}) == 1,
          "the domains' XS_BUS_* differ (keep them in x-domain-env): %s" % bus)
    check(re.search(r"^x-domain-env:.*\n(?:[ #].*\n)*\s+XS_BUS_URL:", raw, re.M),
          "XS_BUS_URL must be set in the x-domain-env block")

    for k in ("XS_TOKEN_KEY", "XS_XERO_CLIENT_ID", "XS_XERO_CLIENT_SECRET", "XS_OAUTH_REDIRECT_URIS",
              "XS_XERO_LOGIN_URL", "XS_XERO_IDENTITY_URL"):
        check(k in (services["auth"].get("environment") or {}), "auth does not set %s" % k)
    for k in ("XS_API_KEYS", "XS_BUS_LISTEN", "XS_DATABASE_URL", "XS_HTTP_ADDR"):
        check(k in (services["orchestrator"].get("environment") or {}), "orchestrator does not set %s" % k)
    for k in SECRETS:
        check(re.search(r"\$\{%s:\?" % k, raw), "%s must be required (${%s:?...})" % (k, k))
        check(re.search(r"^%s=\S" % k, dev_env, re.M), "deploy/dev.env does not set %s" % k)
    check(re.search(r"^COMPOSE_PROFILES=dev$", dev_env, re.M), "deploy/dev.env must select the dev profile")

    for name, s in services.items():
        for p in s.get("ports") or []:
            p = str(p)
            check(p.startswith("${XS_PUBLISH_ADDR:-127.0.0.1}:"),
                  "%s publishes %s: bind it to ${XS_PUBLISH_ADDR:-127.0.0.1}" % (name, p))

    # A target whose binary has another name: `xs` (the CLI) is the target xs-cli, since the
    # target xs is the shared library.
    targets = {TARGET_BINARY.get(t, t) for t in dockerfile_targets(dockerfile)}
    check(built, "the build made no binary in %s" % bin_dir)
    missing = sorted(built - targets)
    check(not missing, "deploy/Dockerfile does not build %s (its targets: %s)"
          % (", ".join(missing), " ".join(sorted(targets))))
    check(not targets - built, "deploy/Dockerfile builds %s, which this build does not make"
          % ", ".join(sorted(targets - built)))
    scripts = set(re.findall(r"^COPY\s+scripts/(\S+)\s+/usr/local/bin/", dockerfile, re.M))
    for name, s in ours.items():
        cmd = s.get("command")
        argv0 = cmd[0] if isinstance(cmd, list) else str(cmd).split()[0]
        check(argv0 in built or argv0 in scripts,
              "%s runs %s, which this build does not make" % (name, argv0))

    # two orchestrators, alike but for the published port; the domains dial both
    check("orchestrator-2" in services, "no second orchestrator (orchestrator-2)")
    if "orchestrator-2" in services:
        a = {k: v for k, v in services["orchestrator"].items() if k != "ports"}
        b = {k: v for k, v in services["orchestrator-2"].items() if k != "ports"}
        check(a == b, "orchestrator and orchestrator-2 differ but for their ports")
        check(services["orchestrator"].get("ports") != services["orchestrator-2"].get("ports"),
              "orchestrator and orchestrator-2 publish the same port")
    for d in DOMAINS:
        hubs = str((services[d].get("environment") or {}).get("XS_BUS_URL", "")).split(",")
        check(sorted(h.split("://")[-1].split(":")[0] for h in hubs) == ["orchestrator", "orchestrator-2"],
              "%s must dial both orchestrators (XS_BUS_URL: %s)" % (d, ",".join(hubs)))
        check("orchestrator-2" in (services[d].get("depends_on") or {}),
              "%s must start after orchestrator-2 too" % d)

    # the bus: TLS, each engine service with its own role's certificates only
    check(str(services["orchestrator"].get("environment", {}).get("XS_BUS_LISTEN", "")).startswith("tls+tcp://"),
          "the orchestrator must listen on tls+tcp://")
    check("certs" in services, "no certs service makes the bus's certificates")
    for role in ["orchestrator"] + DOMAINS:
        s = services[role]
        env = s.get("environment") or {}
        vols = [str(v) for v in s.get("volumes") or []]
        want = "certs-%s:%s:ro" % (role, env.get("XS_BUS_TLS_DIR", "?"))
        check(vols == [want], "%s must mount exactly its own certificates (%s), not %s" % (role, want, vols))
        check((s.get("depends_on") or {}).get("certs", {}).get("condition")
              == "service_completed_successfully", "%s must wait for the certs service" % role)
        if role != "orchestrator":
            check(str(env.get("XS_BUS_URL", "")).startswith("tls+tcp://"), "%s must dial tls+tcp://" % role)
    check_froms("deploy/Dockerfile", dockerfile)
    check_froms("tests/deploy/postgres.Dockerfile", pg_dockerfile)

    used = set(re.findall(r"\$\{(XS_[A-Z0-9_]+)", raw))
    used.update(re.findall(r"^(XS_[A-Z0-9_]+)=", dev_env, re.M))
    for s in services.values():
        env = s.get("environment") or {}
        keys = env.keys() if isinstance(env, dict) else [e.split("=", 1)[0] for e in env]
        used.update(k for k in keys if k.startswith("XS_"))
    documented = set(re.findall(r"^\|\s*`(XS_[A-Z0-9_]+)`", config_md, re.M))
    undocumented = sorted(used - documented)
    check(not undocumented, "variables used in docker-compose.yml or deploy/dev.env but not "
          "documented in docs/CONFIG.md: " + ", ".join(undocumented))

    if problems:
        for p in problems:
            print("compose_check: " + p, file=sys.stderr)
        sys.exit(1)
    print("compose_check: %d services, %d variables, all documented; the image builds all %d "
          "binaries" % (len(services), len(used), len(built)))


if __name__ == "__main__":
    main()
