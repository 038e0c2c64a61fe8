/*
 * config_vars.c: every environment variable any xero-sync process reads, in one table.
 * docs/CONFIG.md is checked against this table (tests/config_doc_test), so add a variable
 * here and document it there in the same change.
 */
#include "xs/config.h"

#define MS(x)  ((int64_t)(x))
#define SEC(x) ((int64_t)(x)*1000)

const xs_config_var xs_config_vars[] = {
    /* --- every process --- */
    {"XS_LOG_LEVEL", XS_CFG_ENUM, "info", false, 0, 0, "debug|info|warn|error", XS_PROC_ALL,
     "Lowest level of log line written to standard error (one JSON object per line)."},

    /* --- PostgreSQL --- */
    {"XS_DATABASE_URL", XS_CFG_SECRET, NULL, false, 0, 0, NULL, XS_PROC_ENGINE | XS_PROC_MIGRATE,
     "PostgreSQL connection URL (libpq form, e.g. postgresql://xs@127.0.0.1:5432/xs). "
     "Treated as a secret: it may hold a password."},
    {"XS_DB_CONNECT_WAIT", XS_CFG_DURATION, "30s", false, 0, SEC(3600), NULL,
     XS_PROC_ENGINE | XS_PROC_MIGRATE,
     "How long a process keeps retrying to reach PostgreSQL at start before giving up."},
    {"XS_DB_POOL_SIZE", XS_CFG_INT, "8", false, 1, 256, NULL, XS_PROC_ORCHESTRATOR,
     "Connections the orchestrator keeps open to PostgreSQL."},

    /* --- the message bus --- */
    {"XS_BUS_LISTEN", XS_CFG_URL, "tls+tcp://127.0.0.1:7400", false, 0, 0, "tls+tcp|tcp|ipc|inproc",
     XS_PROC_ORCHESTRATOR,
     "Base address the orchestrator listens on for the bus. For tls+tcp://host:P it uses ports "
     "P (auth), P+1 (contacts), P+2 (invoices), P+3 (payments) and P+4 to P+7 (each domain's "
     "events). tls+tcp:// needs XS_BUS_TLS_DIR; ipc:// needs a folder of mode 0700; tcp:// "
     "needs XS_BUS_INSECURE."},
    {"XS_BUS_URL", XS_CFG_URL, "tls+tcp://127.0.0.1:7400", false, 0, 0, "tls+tcp|tcp|ipc|inproc",
     XS_PROC_DOMAINS,
     "Base address of the orchestrator's bus that domain services dial (same port layout and "
     "rules as XS_BUS_LISTEN); with several orchestrators, each one's base address, separated "
     "by commas (at most 8, all tls+tcp:// or none): a service dials every orchestrator, "
     "answers each one's requests and sends its events to all."},
    {"XS_BUS_TLS_DIR", XS_CFG_STRING, NULL, true, 0, 0, NULL, XS_PROC_ENGINE,
     "Folder of this process's bus certificate (cert.pem), key (key.pem) and the CAs it trusts "
     "(trust-<role>.pem): one role's folder made by scripts/xs-certs. Required with "
     "tls+tcp://."},
    {"XS_BUS_INSECURE", XS_CFG_BOOL, "false", false, 0, 0, NULL, XS_PROC_ENGINE,
     "Allow a bus anyone can join: plain tcp:// or ipc:// in a folder others may enter. Logged "
     "at error level at every start; for tests of the transport only."},
    {"XS_BUS_MAX_MSG", XS_CFG_INT, "16777216", false, 65536, 268435456, NULL, XS_PROC_ENGINE,
     "Largest bus message in bytes, in both directions; larger ones are refused."},
    {"XS_BUS_TIMEOUT", XS_CFG_DURATION, "120s", false, 100, SEC(3600), NULL, XS_PROC_ORCHESTRATOR,
     "How long the orchestrator waits for a domain service to answer one request."},
    {"XS_BUS_RESEND", XS_CFG_DURATION, "0", false, 0, SEC(3600), NULL, XS_PROC_ORCHESTRATOR,
     "Resend a request unanswered for this long to another replica; 0 resends only when the "
     "replica holding it disconnects (requests are idempotent either way)."},
    {"XS_LEASE_TTL", XS_CFG_DURATION, "10s", false, 900, SEC(600), NULL, XS_PROC_ORCHESTRATOR,
     "How long an orchestrator's lease on a shard of connections lasts unrenewed. It renews "
     "every third of it and stops acting for a shard a quarter of it before the lease could "
     "expire; when it dies, another orchestrator takes its shards within this plus a third "
     "of it."},
    {"XS_HEARTBEAT", XS_CFG_DURATION, "1s", false, 50, SEC(60), NULL, XS_PROC_ENGINE,
     "Interval of domain services' heartbeats; the orchestrator counts a replica as live while "
     "its last heartbeat is younger than three intervals."},

    /* --- domain services --- */
    {"XS_WORKERS", XS_CFG_INT, "4", false, 1, 256, NULL, XS_PROC_DOMAINS,
     "Requests one replica of a domain service handles at the same time. Each worker holds one "
     "PostgreSQL connection, and a second one once it has read pages ahead in a pull."},
    {"XS_REPLICA_ID", XS_CFG_STRING, NULL, true, 0, 0, NULL, XS_PROC_DOMAINS,
     "Name of this replica in heartbeats, /health and logs; default: <hostname>-<pid>."},

    /* --- the orchestrator's HTTP API --- */
    {"XS_HTTP_ADDR", XS_CFG_STRING, "127.0.0.1", false, 0, 0, NULL, XS_PROC_ORCHESTRATOR,
     "IPv4 address the REST API, OAuth callback, webhooks and metrics listen on."},
    {"XS_HTTP_PORT", XS_CFG_INT, "8080", false, 1, 65535, NULL, XS_PROC_ORCHESTRATOR,
     "TCP port of the REST API."},
    {"XS_HTTP_MAX_BODY", XS_CFG_INT, "4194304", false, 1024, 67108864, NULL, XS_PROC_ORCHESTRATOR,
     "Largest request body in bytes the API accepts (413 beyond)."},
    {"XS_HTTP_MAX_CONNECTIONS", XS_CFG_INT, "4096", false, 16, 1000000, NULL, XS_PROC_ORCHESTRATOR,
     "Most connections the API holds open at once; at the limit it accepts none until one "
     "closes. An idle connection costs a descriptor and a little memory, no thread. Lowered, "
     "with a warning (http.fd_limit), to what the process may open (`ulimit -n`; every process "
     "raises its soft limit to the hard one at start)."},
    {"XS_HTTP_MAX_CONNECTIONS_PER_IP", XS_CFG_INT, "64", false, 0, 1000000, NULL,
     XS_PROC_ORCHESTRATOR,
     "Most connections the API holds open from one client address; more are closed as soon as "
     "they are accepted. At most XS_HTTP_MAX_CONNECTIONS. 0: no limit (behind a reverse proxy, "
     "where every client has the proxy's address; limit at the proxy then)."},
    {"XS_HTTP_HEADER_TIMEOUT", XS_CFG_DURATION, "10s", false, 100, SEC(3600), NULL,
     XS_PROC_ORCHESTRATOR,
     "A request's line and headers must arrive whole within this long of the connection's "
     "opening or of the previous reply on it, however steadily bytes trickle in; else the "
     "connection is closed. So an idle kept-alive connection is closed after it too."},
    {"XS_HTTP_BODY_TIMEOUT", XS_CFG_DURATION, "60s", false, 100, SEC(3600), NULL,
     XS_PROC_ORCHESTRATOR,
     "A request's body must arrive whole within this long of its headers; else the connection "
     "is closed."},
    {"XS_HTTP_IDLE_TIMEOUT", XS_CFG_DURATION, "30s", false, SEC(1), SEC(3600), NULL,
     XS_PROC_ORCHESTRATOR,
     "A connection on which no byte moves either way for this long is closed (a client that "
     "stops reading its reply, say); in whole seconds, rounded up."},
    {"XS_API_KEYS", XS_CFG_SECRET, NULL, false, 0, 0, NULL, XS_PROC_ORCHESTRATOR,
     "Comma-separated API keys; every REST route except /health, the OAuth callback and the "
     "Xero webhook requires `Authorization: Bearer <key>` with one of them. Each key must be "
     "at least 16 characters."},
    {"XS_METRICS_KEYS", XS_CFG_SECRET, NULL, true, 0, 0, NULL, XS_PROC_ORCHESTRATOR,
     "Comma-separated scrape-only keys: `Authorization: Bearer <key>` with one of them opens "
     "GET /metrics and no other route (a key of XS_API_KEYS opens it too). Same rules as "
     "XS_API_KEYS: each key at least 16 characters. Unset: none."},

    /* --- the run engine (orchestrator) --- */
    {"XS_EXECUTORS", XS_CFG_INT, "8", false, 1, 256, NULL, XS_PROC_ORCHESTRATOR,
     "Steps the orchestrator runs at the same time, across tenants (each makes one call to "
     "Xero at a time)."},
    {"XS_STEP_MAX_ATTEMPTS", XS_CFG_INT, "10", false, 1, 1000, NULL, XS_PROC_ORCHESTRATOR,
     "Attempts of one step (a 429, 5xx, time-out or lost reply is retried) before it fails."},
    {"XS_STEP_BACKOFF", XS_CFG_DURATION, "1s", false, 1, SEC(3600), NULL, XS_PROC_ORCHESTRATOR,
     "First retry delay of a failed step; it doubles with each attempt (plus jitter), up to "
     "XS_STEP_BACKOFF_MAX. A 429's Retry-After wins over it."},
    {"XS_STEP_BACKOFF_MAX", XS_CFG_DURATION, "5m", false, 1, SEC(86400), NULL, XS_PROC_ORCHESTRATOR,
     "Longest retry delay of a step."},
    {"XS_PULL_PAGE_SIZE", XS_CFG_INT, "1000", false, 1, 1000, NULL, XS_PROC_ORCHESTRATOR,
     "Records per page of a pull (Xero allows at most 1,000)."},
    {"XS_PULL_PAGES_PER_STEP", XS_CFG_INT, "8", false, 1, 100, NULL, XS_PROC_ORCHESTRATOR,
     "Pages one pull step may read, one after another, with the next page fetched while the "
     "one before is written (it holds a permit of the rate budget for each; 1: a page a step)."},
    {"XS_PULL_STEP_TIME", XS_CFG_DURATION, "2s", false, 1, SEC(600), NULL, XS_PROC_ORCHESTRATOR,
     "A pull step asks for no new page after it has run this long, so a push of the same "
     "entity and connection (a realtime one, say) waits about this long at most."},
    {"XS_INCREMENTAL_LOOKBACK", XS_CFG_DURATION, "24h", false, 0, SEC(31536000), NULL,
     XS_PROC_ORCHESTRATOR,
     "How far back an incremental run of an entity never pulled before looks."},
    {"XS_BUDGET_TENANT_CONCURRENT", XS_CFG_INT, "5", false, 1, 1000, NULL, XS_PROC_ORCHESTRATOR,
     "Calls in flight per tenant (Xero: 5)."},
    {"XS_BUDGET_TENANT_MINUTE", XS_CFG_INT, "60", false, 1, 1000000, NULL, XS_PROC_ORCHESTRATOR,
     "Calls per tenant per minute window (Xero: 60)."},
    {"XS_BUDGET_TENANT_BURST", XS_CFG_INT, "5", false, 2, 1000000, NULL, XS_PROC_ORCHESTRATOR,
     "Calls a tenant may make at once; beyond them its calls are paced at "
     "XS_BUDGET_TENANT_MINUTE per minute window, so a busy tenant spends its minute evenly "
     "instead of all at once and then nothing for most of a minute. A larger burst lets short "
     "runs go at once but may fill Xero's fixed window early, costing a saturated tenant a wait "
     "of up to this many paces once a minute; at least 2 (a push that re-reads needs two at "
     "once); XS_BUDGET_TENANT_MINUTE or more: no pacing."},
    {"XS_BUDGET_TENANT_DAY", XS_CFG_INT, "5000", false, 1, 100000000, NULL, XS_PROC_ORCHESTRATOR,
     "Calls per tenant per day window (Xero: 5,000; 1,000 on the Starter tier)."},
    {"XS_BUDGET_APP_MINUTE", XS_CFG_INT, "10000", false, 1, 100000000, NULL, XS_PROC_ORCHESTRATOR,
     "Calls per minute window across every tenant of the app (Xero: 10,000)."},
    {"XS_BUDGET_MINUTE_WINDOW", XS_CFG_DURATION, "60s", false, 10, SEC(86400), NULL,
     XS_PROC_ORCHESTRATOR,
     "Length of the minute windows the budget counts in (Xero: 60 s; shorter only to run "
     "Xero's ratios faster against the simulator)."},
    {"XS_BUDGET_DAY_WINDOW", XS_CFG_DURATION, "24h", false, 10, SEC(2592000), NULL,
     XS_PROC_ORCHESTRATOR, "Length of the day window the budget counts in (Xero: 24 h)."},
    {"XS_BUDGET_DAY_PROBE", XS_CFG_DURATION, "5m", false, 10, SEC(3600), NULL, XS_PROC_ORCHESTRATOR,
     "How long a tenant Xero said has no calls left today (X-DayLimit-Remaining: 0, without a "
     "429 saying until when) is held before one probe call goes to find out; the probe's 429 "
     "Retry-After then sets the block's end, and its success lifts it."},
    {"XS_BUDGET_MARGIN", XS_CFG_DURATION, "1s", false, 0, SEC(60), NULL, XS_PROC_ORCHESTRATOR,
     "Added to each window: the most a call may take to reach Xero, so calls counted in one "
     "of our windows never land in one of Xero's beyond its limit."},
    {"XS_BUDGET_SHARED", XS_CFG_BOOL, "true", false, 0, 0, NULL, XS_PROC_ORCHESTRATOR,
     "Share XS_BUDGET_APP_MINUTE with every orchestrator on the same database: each takes the "
     "app's permits in chunks from a ledger in PostgreSQL (sync.app_budget_grants), so "
     "together they never exceed it. false: this orchestrator counts the app's calls alone "
     "(right only when it is the only one)."},
    {"XS_BUDGET_SHARED_CHUNK", XS_CFG_INT, "0", false, 0, 100000, NULL, XS_PROC_ORCHESTRATOR,
     "Permits an orchestrator takes from the shared app budget at a time. 0: one hundredth of "
     "XS_BUDGET_APP_MINUTE. At least 2 (a push that re-reads needs two at once) and at most "
     "XS_BUDGET_APP_MINUTE, whatever is set. Larger chunks mean fewer grants; what one holds "
     "unused is held from the others until it goes back."},
    {"XS_BUDGET_SHARED_TTL", XS_CFG_DURATION, "0ms", false, 0, SEC(60), NULL, XS_PROC_ORCHESTRATOR,
     "How long a chunk of the shared app budget may be spent after it was asked for; what is "
     "left of it then goes back. Each chunk counts for every orchestrator for a window, its "
     "margin and this long after its grant. 0: a sixtieth of XS_BUDGET_MINUTE_WINDOW (1 s at "
     "60 s), at least 10 ms."},
    {"XS_APP_NAME", XS_CFG_STRING, "xero-sync", false, 0, 0, NULL,
     XS_PROC_ORCHESTRATOR | XS_PROC_FILES,
     "The application's name as Xero users see it: documents go into the Xero Files folder "
     "\"<XS_APP_NAME> Uploads\" unless a connection's settings name another (files.folder)."},
    {"XS_FILES_MAX_BYTES", XS_CFG_INT, "10485760", false, 1, 104857600, NULL, XS_PROC_FILES,
     "Largest document xs-files uploads to Xero Files, in bytes (Xero's documented limit, 10 MB, "
     "by default); a larger one is skipped with its reason, no call made."},
    {"XS_FILES_TYPES", XS_CFG_STRING,
     "7z,bmp,csv,doc,docx,eml,gif,heic,jpeg,jpg,keynote,msg,numbers,odf,ods,odt,pages,pdf,png,"
     "ppt,pptx,rar,rtf,tif,tiff,txt,xls,xlsx,xml,zip",
     false, 0, 0, NULL, XS_PROC_FILES | XS_PROC_ORCHESTRATOR,
     "File extensions (lower case, comma-separated) Xero Files takes: a document of another "
     "type is skipped by xs-files, and refused (415) by POST /v1/documents."},
    {"XS_DOCUMENTS_DIR", XS_CFG_STRING, NULL, true, 0, 0, NULL, XS_PROC_FILES,
     "Folder under which the files of documents with a path (app.documents.path, relative) "
     "live; a path leading out of it is refused. Unset: such documents fail."},
    {"XS_DOCUMENTS_MAX_BYTES", XS_CFG_INT, "10485760", false, 1, 104857600, NULL,
     XS_PROC_ORCHESTRATOR, "Largest file POST /v1/documents takes, in bytes (413 beyond it)."},
    {"XS_FILES_RETRY_BASE", XS_CFG_DURATION, "30s", false, 10, SEC(86400), NULL, XS_PROC_FILES,
     "First wait before a document whose push failed for a reason that may pass (no reply, "
     "429, 5xx) is tried again; it doubles with each failed try up to XS_FILES_RETRY_MAX."},
    {"XS_FILES_RETRY_MAX", XS_CFG_DURATION, "6h", false, 10, SEC(7 * 86400), NULL, XS_PROC_FILES,
     "Longest wait between two tries of a document's push."},
    {"XS_SCHEDULER", XS_CFG_BOOL, "true", false, 0, 0, NULL, XS_PROC_ORCHESTRATOR,
     "Start scheduled runs (a connection's initial full import, then daily full and periodic "
     "incremental runs); false leaves only API-started runs and realtime pushes."},
    {"XS_SCHEDULE_FULL_AT", XS_CFG_STRING, "02:00", false, 0, 0, NULL, XS_PROC_ORCHESTRATOR,
     "Default time of day (HH:MM, UTC) of the daily full run; per connection in its settings. "
     "A change moves the stored next full runs when the orchestrator starts."},
    {"XS_SCHEDULE_INCREMENTAL_EVERY", XS_CFG_DURATION, "15m", false, SEC(1), SEC(604800), NULL,
     XS_PROC_ORCHESTRATOR,
     "Default interval of incremental runs; per connection in its settings. A change moves the "
     "stored next incremental runs when the orchestrator starts."},
    {"XS_SCHEDULE_JITTER", XS_CFG_DURATION, "60s", false, 0, SEC(3600), NULL, XS_PROC_ORCHESTRATOR,
     "Up to this much random delay is added to each incremental run, and to each full run at a "
     "fixed time (a connection's own schedule.full.at, or XS_SCHEDULE_FULL_WINDOW 0), so "
     "tenants do not all start at once."},
    {"XS_SCHEDULE_FULL_WINDOW", XS_CFG_DURATION, "4h", false, 0, SEC(86400), NULL,
     XS_PROC_ORCHESTRATOR,
     "Daily full runs are spread over this long from XS_SCHEDULE_FULL_AT (by default 02:00 to "
     "06:00 UTC): each connection without a time of its own gets a fixed slot in it, derived "
     "from its id, the same every day. 0: every such full run is due at XS_SCHEDULE_FULL_AT "
     "plus the jitter. A change moves the stored next full runs when the orchestrator starts."},
    {"XS_POLL_MAX_EVERY", XS_CFG_DURATION, "4h", false, 0, SEC(604800), NULL, XS_PROC_ORCHESTRATOR,
     "Longest interval adaptive polling backs off to: each time a scheduled incremental pull of "
     "an entity finds nothing, that entity of the connection is next polled twice as long after, "
     "up to this; a change found, a webhook or a push of the entity brings it back to the "
     "connection's incremental interval. 0 (or shorter than the interval): no back-off."},
    {"XS_PUSH_DELAY", XS_CFG_DURATION, "0ms", false, 0, SEC(600), NULL, XS_PROC_ORCHESTRATOR,
     "An organisation's first local change since its last push waits this long, gathering the "
     "changes that follow, before it is pushed (never sooner than XS_PUSH_EVERY after that "
     "push). 0: it leaves at once."},
    {"XS_PUSH_EVERY", XS_CFG_DURATION, "250ms", false, 0, SEC(600), NULL, XS_PROC_ORCHESTRATOR,
     "An organisation's local changes are pushed at most this often: the changes that come "
     "within this long of a push leave together when it ends, so a burst of edits costs few "
     "calls and a steady stream leaves every this often."},
    {"XS_PUSH_PARALLEL", XS_CFG_INT, "3", false, 1, 5, NULL, XS_PROC_ORCHESTRATOR,
     "Pushes of one connection and entity that may be under way at once, when they carry "
     "different records (a record is in one push at a time): a push that comes while one is in "
     "flight need not wait for it. Pulls, scans and lookups still run alone. At most 5, Xero's "
     "calls at once per tenant."},
    {"XS_WEBHOOK_DELAY", XS_CFG_DURATION, "250ms", false, 0, SEC(600), NULL, XS_PROC_ORCHESTRATOR,
     "Xero's webhook events of a connection gather this long after the first of them, then "
     "become one run that fetches the records they name by id."},
    {"XS_WEBHOOK_POLL_EVERY", XS_CFG_DURATION, "1h", false, 0, SEC(604800), NULL,
     XS_PROC_ORCHESTRATOR,
     "While a connection's webhooks are healthy, its scheduled incremental runs pull the "
     "entities Xero sends webhooks for (contact, invoice) only this often; the others keep their "
     "interval. 0: no relaxing (adaptive polling alone, XS_POLL_MAX_EVERY)."},
    {"XS_WEBHOOK_SILENCE", XS_CFG_DURATION, "1h", false, SEC(1), SEC(604800), NULL,
     XS_PROC_ORCHESTRATOR,
     "A connection whose tenant sent no webhook event for this long counts as silent (webhooks "
     "lost or the subscription disabled): its incremental runs pull every entity again."},
    {"XS_PUSH_POLL", XS_CFG_DURATION, "5s", false, 100, SEC(3600), NULL, XS_PROC_ORCHESTRATOR,
     "How often the outbox is checked even without a notification."},
    {"XS_PUSH_REREAD_AFTER", XS_CFG_DURATION, "2s", false, 0, SEC(3600), NULL, XS_PROC_ORCHESTRATOR,
     "A push of updates that starts this long after its run's pull of the entity ended (or "
     "that retries, or whose run has no such pull) first reads the records again from Xero and "
     "decides them again, so a Xero edit made since is a conflict, not overwritten; 0: every "
     "push of updates reads first. It then holds two permits of the rate budget."},

    /* --- retention (orchestrator): how long history is kept --- */
    {"XS_RETAIN_RUNS", XS_CFG_DURATION, "30d", false, 0, SEC(315360000), NULL, XS_PROC_ORCHESTRATOR,
     "How long a run that succeeded is kept after it finished, with its steps and per-item "
     "errors; 0: forever, else at least 1h. The latest run of each kind of a connection, and "
     "runs a pending conflict or an unsettled push claim points at, are kept whatever their "
     "age."},
    {"XS_RETAIN_RUNS_FAILED", XS_CFG_DURATION, "90d", false, 0, SEC(315360000), NULL,
     XS_PROC_ORCHESTRATOR,
     "How long a run that failed, was partial or was canceled is kept after it finished, with "
     "its steps and per-item errors; 0: forever, else at least 1h."},
    {"XS_RETAIN_API_CALLS", XS_CFG_DURATION, "30d", false, 0, SEC(315360000), NULL,
     XS_PROC_ORCHESTRATOR,
     "How long the audit of calls to Xero (sync.api_calls) is kept; 0: forever, else at least "
     "1h. The calls of the last XS_BUDGET_DAY_WINDOW (at least a day, by the database's clock) "
     "are always kept: the rate budget counts them after a restart."},
    {"XS_RETAIN_CHANGES", XS_CFG_DURATION, "7d", false, 0, SEC(315360000), NULL,
     XS_PROC_ORCHESTRATOR,
     "How long a local change the outbox has handed to push runs is kept after that; 0: "
     "forever, else at least 1h. Changes not yet handed on are never deleted."},
    {"XS_RETAIN_WEBHOOK_EVENTS", XS_CFG_DURATION, "7d", false, 0, SEC(315360000), NULL,
     XS_PROC_ORCHESTRATOR,
     "How long a webhook event that is done, failed or ignored is kept after that; 0: forever, "
     "else at least 1h. Events pending or in progress, those received in the last day or "
     "XS_WEBHOOK_SILENCE (by the database's clock; Xero redelivers for up to a day) and a "
     "tenant's latest event are always kept."},
    {"XS_RETAIN_EVERY", XS_CFG_DURATION, "1h", false, SEC(1), SEC(604800), NULL,
     XS_PROC_ORCHESTRATOR,
     "How often the orchestrator prunes history past the XS_RETAIN_* periods (the first time "
     "at start); one pass at a time across all orchestrators."},
    {"XS_RETAIN_BATCH", XS_CFG_INT, "500", false, 1, 100000, NULL, XS_PROC_ORCHESTRATOR,
     "Most rows one pruning statement deletes (each statement its own short transaction)."},
    {"XS_RETAIN_PAUSE", XS_CFG_DURATION, "100ms", false, 0, SEC(60), NULL, XS_PROC_ORCHESTRATOR,
     "Pause between two pruning statements, leaving the database to sync work."},

    /* --- Xero and OAuth (xs-auth) --- */
    {"XS_XERO_LOGIN_URL", XS_CFG_URL, "https://login.xero.com", false, 0, 0, "http|https",
     XS_PROC_DOMAINS,
     "Base URL of Xero's login host; people are sent to <it>/identity/connect/authorize to "
     "consent."},
    {"XS_XERO_IDENTITY_URL", XS_CFG_URL, "https://identity.xero.com", false, 0, 0, "http|https",
     XS_PROC_DOMAINS, "Base URL of Xero's identity host (/connect/token, /connect/revocation)."},
    {"XS_XERO_API_URL", XS_CFG_URL, "https://api.xero.com", false, 0, 0, "http|https",
     XS_PROC_DOMAINS,
     "Base URL of Xero's API host (/connections, and the Accounting API under /api.xro/2.0)."},
    {"XS_XERO_CLIENT_ID", XS_CFG_STRING, NULL, false, 0, 0, NULL, XS_PROC_AUTH,
     "The OAuth 2.0 client id of the Xero app (developer.xero.com, My Apps)."},
    {"XS_XERO_CLIENT_SECRET", XS_CFG_SECRET, NULL, false, 0, 0, NULL, XS_PROC_AUTH,
     "The Xero app's client secret, sent by HTTP Basic to the token and revocation endpoints."},
    {"XS_XERO_WEBHOOK_KEY", XS_CFG_SECRET, NULL, true, 0, 0, NULL, XS_PROC_ORCHESTRATOR,
     "The Xero app's webhook key (developer.xero.com, My Apps, Webhooks): a delivery to POST "
     "/v1/webhooks/xero is taken only when its x-xero-signature is the HMAC-SHA256 of its body "
     "under this key. Unset: every delivery is refused with 401."},
    {"XS_JOB_WEBHOOK_SECRET", XS_CFG_SECRET, NULL, true, 0, 0, NULL, XS_PROC_ORCHESTRATOR,
     "The shared secret job events are signed with when they are POSTed to a connection's "
     "xpm.webhook_url: X-Xero-Sync-Signature is sha256= and the hex HMAC-SHA256 of the raw body "
     "under it (at least 16 bytes). Unset: a connection's settings may not name a webhook_url."},
    {"XS_JOB_WEBHOOK_TIMEOUT", XS_CFG_DURATION, "10s", false, 100, SEC(120), NULL,
     XS_PROC_ORCHESTRATOR,
     "How long one delivery of a job event to the host application's webhook may take before "
     "it counts as failed (and is tried again later)."},
    {"XS_XPM_JOB_WINDOW_DAYS", XS_CFG_INT, "364", false, 0, 3650, NULL, XS_PROC_JOBS,
     "A full pull of XPM jobs reads, besides the current ones, every job created from this "
     "many days before today up to today (job.api/list, which selects by creation day), one "
     "call per 365 days (XPM's limit is a year a call): the default takes one call."},
    {"XS_XERO_WEBHOOK_KEY_PREVIOUS", XS_CFG_SECRET, NULL, true, 0, 0, NULL, XS_PROC_ORCHESTRATOR,
     "The webhook key before the current one, still accepted while Xero moves to the new key "
     "(a rotation); remove it once deliveries are signed with XS_XERO_WEBHOOK_KEY."},
    {"XS_XERO_TIMEOUT", XS_CFG_DURATION, "30s", false, 100, SEC(600), NULL, XS_PROC_DOMAINS,
     "How long one call to Xero may take, connection included, before it counts as failed."},
    {"XS_PUSH_RESEND_WINDOW", XS_CFG_DURATION, "5m", false, 0, SEC(86400), NULL,
     XS_PROC_CONTACTS | XS_PROC_INVOICES | XS_PROC_PAYMENTS,
     "A create whose reply never came is sent again, byte for byte with its Idempotency-Key, "
     "only this long after it was first sent; later, Xero may have forgotten the key, so the "
     "step ends with it in doubt and the next pull links the record if Xero made it (else it "
     "is sent anew). Keep it well below the time Xero remembers a key."},
    {"XS_OAUTH_REDIRECT_URIS", XS_CFG_STRING, "http://127.0.0.1:8080/v1/oauth/callback", false, 0,
     0, NULL, XS_PROC_AUTH,
     "Comma-separated redirect URIs registered for the app, each pointing at the "
     "orchestrator's GET /v1/oauth/callback; the first is the default."},
    {"XS_OAUTH_SCOPES", XS_CFG_STRING,
     "offline_access accounting.contacts accounting.invoices accounting.payments "
     "accounting.banktransactions.read accounting.settings.read files",
     false, 0, 0, NULL, XS_PROC_AUTH,
     "Space-separated scopes asked for when connecting (offline_access is required; older "
     "apps may use accounting.transactions instead of the granular transaction scopes; "
     "`files` lets xs-files put documents into Xero Files)."},
    {"XS_OAUTH_XPM_SCOPES", XS_CFG_STRING, "practicemanager.read", false, 0, 0, NULL, XS_PROC_AUTH,
     "Space-separated scopes added to XS_OAUTH_SCOPES when a connection is authorised with "
     "\"xpm\": true (POST /v1/connections/authorize): what xs-jobs needs to read Xero Practice "
     "Manager's jobs, job states and clients. Asked for only then, so an organisation without "
     "XPM is never asked to consent to it."},
    {"XS_OAUTH_STATE_TTL", XS_CFG_DURATION, "10m", false, SEC(10), SEC(86400), NULL, XS_PROC_AUTH,
     "How long a person has, from POST /v1/connections/authorize, to finish consenting."},
    {"XS_TOKEN_KEY", XS_CFG_SECRET, NULL, false, 0, 0, NULL, XS_PROC_AUTH,
     "Key that seals OAuth tokens at rest with AES-256-GCM: the base64 of exactly 32 random "
     "bytes (`openssl rand -base64 32`). xs-auth refuses to start without a valid one."},
    {"XS_TOKEN_OLD_KEYS", XS_CFG_SECRET, NULL, true, 0, 0, NULL, XS_PROC_AUTH,
     "Comma-separated earlier values of XS_TOKEN_KEY, still accepted for opening tokens while "
     "`xs-auth rotate-key` re-seals them under the current key."},
    {"XS_TOKEN_REFRESH_MARGIN", XS_CFG_DURATION, "5m", false, 0, SEC(1500), NULL, XS_PROC_AUTH,
     "An access token expiring within this is refreshed before it is handed out."},
    {"XS_TOKEN_LOCK_WAIT", XS_CFG_DURATION, "30s", false, 100, SEC(600), NULL, XS_PROC_AUTH,
     "How long a token request waits for a refresh another replica is doing."},

    /* --- xero-sim --- */
    {"XS_SIM_ADDR", XS_CFG_STRING, "127.0.0.1", false, 0, 0, NULL, XS_PROC_SIM,
     "IPv4 address xero-sim listens on."},
    {"XS_SIM_PORT", XS_CFG_INT, "7480", false, 0, 65535, NULL, XS_PROC_SIM,
     "TCP port xero-sim listens on; 0 picks a free port (logged at start as sim.listen)."},
    {"XS_SIM_PUBLIC_URL", XS_CFG_URL, NULL, true, 0, 0, "http|https", XS_PROC_SIM,
     "Base URL xero-sim names itself by (webhook resourceUrl, token issuer); default "
     "http://XS_SIM_ADDR:port."},
    {"XS_SIM_CLIENT_ID", XS_CFG_STRING, "xero-sim-client", false, 0, 0, NULL, XS_PROC_SIM,
     "The OAuth client id of the one app xero-sim knows."},
    {"XS_SIM_CLIENT_SECRET", XS_CFG_SECRET, "xero-sim-secret", false, 0, 0, NULL, XS_PROC_SIM,
     "That app's client secret (HTTP Basic at /connect/token and /connect/revocation)."},
    {"XS_SIM_REDIRECT_URIS", XS_CFG_STRING, "http://127.0.0.1:8080/v1/oauth/callback", false, 0, 0,
     NULL, XS_PROC_SIM,
     "Comma-separated redirect URIs registered for the app; authorize refuses any other."},
    {"XS_SIM_SCOPES", XS_CFG_STRING,
     "openid profile email offline_access accounting.contacts accounting.contacts.read "
     "accounting.transactions accounting.transactions.read accounting.invoices "
     "accounting.invoices.read accounting.payments accounting.payments.read "
     "accounting.banktransactions accounting.banktransactions.read accounting.settings "
     "accounting.settings.read files files.read practicemanager practicemanager.read "
     "practicemanager.job practicemanager.job.read practicemanager.client "
     "practicemanager.client.read",
     false, 0, 0, NULL, XS_PROC_SIM,
     "Space-separated scopes the app may request; authorize answers invalid_scope for others."},
    {"XS_SIM_APP_NAME", XS_CFG_STRING, "xero-sync", false, 0, 0, NULL, XS_PROC_SIM,
     "The app's name, written as ProviderName in every accounting reply and shown on the "
     "consent page."},
    {"XS_SIM_USER_EMAIL", XS_CFG_STRING, "test.user@example.com", false, 0, 0, NULL, XS_PROC_SIM,
     "The test user who consents at /identity/connect/authorize: at once for clients other "
     "than browsers, on the consent page for a browser."},
    {"XS_SIM_REQUIRE_PKCE", XS_CFG_BOOL, "false", false, 0, 0, NULL, XS_PROC_SIM,
     "Refuse an authorization request without a PKCE code_challenge (S256 is always checked "
     "when one is given)."},
    {"XS_SIM_TENANTS", XS_CFG_INT, "1", false, 0, 64, NULL, XS_PROC_SIM,
     "Organisations created at start (and at /_sim/reset), with ids derived from XS_SIM_SEED."},
    {"XS_SIM_SEED_RECORDS", XS_CFG_INT, "0", false, 0, 2000000, NULL, XS_PROC_SIM,
     "Realistic records seeded into each start organisation (a fifth contacts, half invoices, "
     "a fifth payments, the rest bank transactions)."},
    {"XS_SIM_SEED_XPM_CLIENTS", XS_CFG_INT, "0", false, 0, 10000, NULL, XS_PROC_SIM,
     "Xero Practice Manager clients seeded into each start organisation, with one to three "
     "jobs each; about half carry the name and e-mail address of one of its seeded contacts."},
    {"XS_SIM_SEED", XS_CFG_INT, "1", false, 0, INT64_MAX, NULL, XS_PROC_SIM,
     "Seed of everything xero-sim draws: ids, seeded data, rate-window phases, fault and "
     "jitter draws."},
    {"XS_SIM_ACCESS_TOKEN_TTL", XS_CFG_DURATION, "30m", false, 1000, SEC(86400), NULL, XS_PROC_SIM,
     "Lifetime of an access token (Xero: 30 minutes)."},
    {"XS_SIM_REFRESH_GRACE", XS_CFG_DURATION, "30m", false, 0, SEC(86400), NULL, XS_PROC_SIM,
     "How long a rotated refresh token still works while its replacement is unused (Xero: 30 "
     "minutes)."},
    {"XS_SIM_REFRESH_TTL", XS_CFG_DURATION, "1440h", false, 1000, SEC(31536000), NULL, XS_PROC_SIM,
     "How long an unused refresh token lives (Xero: 60 days)."},
    {"XS_SIM_CODE_TTL", XS_CFG_DURATION, "5m", false, 1000, SEC(3600), NULL, XS_PROC_SIM,
     "How long an authorization code can be exchanged (Xero: 5 minutes)."},
    {"XS_SIM_LIMIT_CONCURRENT", XS_CFG_INT, "5", false, 1, 1000000, NULL, XS_PROC_SIM,
     "Calls in flight allowed per tenant (Xero: 5)."},
    {"XS_SIM_LIMIT_MINUTE", XS_CFG_INT, "60", false, 1, 1000000000, NULL, XS_PROC_SIM,
     "Calls per tenant per minute window (Xero: 60)."},
    {"XS_SIM_LIMIT_DAY", XS_CFG_INT, "5000", false, 1, 1000000000, NULL, XS_PROC_SIM,
     "Calls per tenant per day window (Xero: 5,000)."},
    {"XS_SIM_LIMIT_APP_MINUTE", XS_CFG_INT, "10000", false, 1, 1000000000, NULL, XS_PROC_SIM,
     "Calls per minute window across all tenants of the app (Xero: 10,000)."},
    {"XS_SIM_MINUTE_WINDOW", XS_CFG_DURATION, "60s", false, 10, SEC(86400), NULL, XS_PROC_SIM,
     "Length of the per-minute windows; shorten it to run Xero's ratios in less time."},
    {"XS_SIM_DAY_WINDOW", XS_CFG_DURATION, "24h", false, 10, SEC(2592000), NULL, XS_PROC_SIM,
     "Length of the per-day window."},
    {"XS_SIM_LATENCY", XS_CFG_DURATION, "0", false, 0, SEC(600), NULL, XS_PROC_SIM,
     "Fixed latency added to every accounting call (the call stays in flight meanwhile)."},
    {"XS_SIM_LATENCY_JITTER", XS_CFG_DURATION, "0", false, 0, SEC(600), NULL, XS_PROC_SIM,
     "Extra latency drawn from 0 to this, deterministically under XS_SIM_SEED."},
    {"XS_SIM_FAULTS", XS_CFG_STRING, NULL, true, 0, 0, NULL, XS_PROC_SIM,
     "Fault probabilities per accounting call, e.g. \"500=0.01,503=0.01,hang=0.001\" (kinds: "
     "500, 503, hang, reset, truncated, garbled, lost, revoked)."},
    {"XS_SIM_HANG", XS_CFG_DURATION, "120s", false, 0, SEC(3600), NULL, XS_PROC_SIM,
     "How long a `hang` fault holds a call before closing the connection without a reply."},
    {"XS_SIM_SERVE_AT_ROOT", XS_CFG_BOOL, "false", false, 0, 0, NULL, XS_PROC_SIM,
     "Also serve the Accounting API at / (e.g. /Contacts), as other mocks of the spec do."},
    {"XS_SIM_MAX_BODY", XS_CFG_INT, "3670016", false, 1024, 33554432, NULL, XS_PROC_SIM,
     "Largest write body in bytes; larger ones get 413 (Xero: 3.5 MB)."},
    {"XS_SIM_FILES_MAX_SIZE", XS_CFG_INT, "10485760", false, 1, 33554432, NULL, XS_PROC_SIM,
     "Largest file the Files API accepts, in bytes; a larger upload is refused with 400 naming "
     "the limit (Xero: 10 MB)."},
    {"XS_SIM_FILES_TYPES", XS_CFG_STRING,
     "7z,bmp,csv,doc,docx,eml,gif,jpeg,jpg,keynote,msg,numbers,odf,ods,odt,pages,pdf,png,ppt,"
     "pptx,rar,rtf,tif,tiff,txt,xls,xlsx,zip",
     false, 0, 0, NULL, XS_PROC_SIM,
     "Comma-separated file extensions the Files API accepts (letters and digits, up to 10 "
     "each; Xero's list by default); a file named otherwise is refused."},
    {"XS_SIM_FILES_NAME_MAX", XS_CFG_INT, "255", false, 1, 1000, NULL, XS_PROC_SIM,
     "Longest file or folder name the Files API accepts, in characters."},
    {"XS_SIM_HIGH_VOLUME", XS_CFG_INT, "100000", false, 1, 1000000000, NULL, XS_PROC_SIM,
     "Above this many records of a kind, unpaged or unindexed list reads are refused as Xero "
     "refuses them (\"not filtering ... efficiently\")."},
    {"XS_SIM_IDEMPOTENCY_TTL", XS_CFG_DURATION, "10m", false, 0, SEC(86400), NULL, XS_PROC_SIM,
     "How long an Idempotency-Key's recorded reply is kept."},
    {"XS_SIM_WEBHOOK_URL", XS_CFG_URL, NULL, true, 0, 0, "http|https", XS_PROC_SIM,
     "Where CONTACT and INVOICE events are delivered; unset: no webhooks."},
    {"XS_SIM_WEBHOOK_KEY", XS_CFG_SECRET, NULL, true, 0, 0, NULL, XS_PROC_SIM,
     "Webhook signing key (x-xero-signature is base64 HMAC-SHA256 of the body with it)."},
    {"XS_SIM_WEBHOOK_REQUIRE_ITR", XS_CFG_BOOL, "true", false, 0, 0, NULL, XS_PROC_SIM,
     "Deliver events only after intent to receive has passed (POST /_sim/webhooks/itr), as "
     "Xero does."},
    {"XS_SIM_WEBHOOK_DELAY", XS_CFG_DURATION, "1s", false, 0, SEC(3600), NULL, XS_PROC_SIM,
     "How long events are gathered into one delivery."},
    {"XS_SIM_WEBHOOK_TIMEOUT", XS_CFG_DURATION, "5s", false, 10, SEC(600), NULL, XS_PROC_SIM,
     "How long the receiver has to answer a delivery (Xero: 5 seconds)."},
    {"XS_SIM_WEBHOOK_RETRY_BASE", XS_CFG_DURATION, "60s", false, 1, SEC(3600), NULL, XS_PROC_SIM,
     "First retry delay of a failed delivery; it doubles up to an hour."},
    {"XS_SIM_WEBHOOK_RETRY_FOR", XS_CFG_DURATION, "24h", false, 0, SEC(604800), NULL, XS_PROC_SIM,
     "How long failed deliveries are retried before the webhook is disabled (Xero: "
     "24 hours)."},
    {"XS_SIM_WEBHOOK_BATCH", XS_CFG_INT, "100", false, 1, 10000, NULL, XS_PROC_SIM,
     "Most events in one delivery."},
    {"XS_SIM_CALL_LOG", XS_CFG_INT, "100000", false, 0, 10000000, NULL, XS_PROC_SIM,
     "Calls kept in the call log (GET /_sim/calls)."},
    {"XS_SIM_MAX_CONNECTIONS", XS_CFG_INT, "512", false, 16, 10000, NULL, XS_PROC_SIM,
     "Most simultaneous HTTP connections xero-sim accepts."},
    /* --- end xero-sim --- */
};

const size_t xs_config_nvars = sizeof(xs_config_vars) / sizeof(xs_config_vars[0]);
