/*
 * engine/step.h: what every step handler shares. The entity a request names, the
 * connection's settings for it, the counts a reply reports, the outcome and audit of each
 * Xero call, item errors, database failures and the transaction id that stamps what the
 * engine writes (so the outbox knows its own writes). It owns no record; it never calls Xero
 * and never decides a record.
 */
#ifndef XS_ENGINE_STEP_H
#define XS_ENGINE_STEP_H

#include "engine/domain.h"

/* A request of the sync engine (sync.pull, sync.push, sync.resolve, local.upsert), decoded
 * once where its handler starts: what every stage reads of it, typed. The strings are
 * borrowed from msg, which outlives it. */
typedef struct step_req {
    const xs_msg *msg;        /* the message, for the fields only its handler reads */
    const char *conn;         /* the connection (msg->conn), "" when none */
    const xs_entity_ops *ops; /* the entity it names */
    const char *org;          /* organisation_id, or NULL */
    const char *tenant_id;    /* Xero's tenant, or NULL */
    const char *bearer;       /* access_token, or NULL */
    const char *run_id;       /* the run, or NULL (a REST write) */
    int64_t step_id;          /* the step, 0 when none */
    char step[24];            /* step_id as text */
    bool final;               /* the records' last chance: one still waiting for another fails */
} step_req;

/* step_req_read decodes msg into *out, or fails the request (XS_EINVAL) when it names an
 * entity this service does not sync. */
xs_err step_req_read(xs_svc_ctx *ctx, const xs_msg *msg, step_req *out);

/* step_or_empty is s, or "" for NULL. */
static inline const char *step_or_empty(const char *s)
{
    return s != NULL ? s : "";
}

/* step_xero returns the worker's Xero client. */
xs_xero *step_xero(xs_svc_ctx *ctx);

/* The settings a step runs under. */
typedef struct settings {
    xs_policy policy, fallback;
    json_t *keys; /* borrowed or owned (keys_owned) */
    bool keys_owned;
    bool fill_empty_only;
    const json_t *types; /* the Types the pull is limited to (borrowed), or NULL */
} settings;

xs_err step_settings_read(xs_svc_ctx *ctx, const xs_entity_ops *ops, const step_req *req,
                          settings *s);

void step_settings_fini(settings *s);

/* step_count adds n to counts[key]. It changes a count in place: a pull step's counts outlive its
 * pages' values, which go back to the arena after each page, so every key a pull counts is made by
 * step_counts_new. */
void step_count(json_t *counts, const char *key, json_int_t n);

json_t *step_counts_new(const char *const *keys);

/* step_call_json describes a call for the orchestrator's budget. */
json_t *step_call_json(const xs_xero_call *c);

/* step_call_outcome classifies a finished call: NULL when its reply is to be used, else the
 * outcome to report ("retry", "token_rejected", "failed"). keyed says the call carried an
 * Idempotency-Key: a 409 then means an earlier send of the same request (say, by a replica
 * killed mid-call) is still being applied, so this one waits and asks again. */
const char *step_call_outcome(xs_err e, long status, bool keyed);

/* step_audit records a call (after any transaction). */
void step_audit(xs_svc_ctx *ctx, const step_req *req, const xs_xero_call *call);

/* step_db_fail describes a database failure (retryable: the step runs again). */
xs_err step_db_fail(xs_svc_ctx *ctx, xs_err e, const char *what);

/* step_exec_json runs sql with parameters $1.. = params, the last being a JSON document. */
xs_err step_exec_json(xs_pg *pg, xs_pg_res **out, const char *sql, int n, const char **params,
                      const json_t *doc);

/* step_item_errors records per-item failures of a step: [{"local_id", "xero_id", "message"}]. */
xs_err step_item_errors(xs_svc_ctx *ctx, const step_req *req, const char *entity,
                        const json_t *errors);

/* step_item_error appends one failure. */
void step_item_error(json_t *errors, const char *local_id, const char *xero_id, const char *msg);

/* step_refresh_stats re-analyses the tables big writes changed: during an initial import
 * PostgreSQL's statistics lag far behind the tables, and plans made on them (an anti-join
 * over "one" mapping that is really ten thousand) turn a 10 ms lookup into seconds. It runs
 * when the rows this process wrote since the last time reach those it had written before
 * then (at least ANALYZE_MIN_ROWS, at most ANALYZE_MAX_ROWS): the tables have about doubled,
 * so an import of n rows analyses about log2(n / ANALYZE_MIN_ROWS) times, and only the columns
 * lookups filter on (the canonical jsonb columns would cost more to analyse than the page), from
 * a small sample (statistics target ANALYZE_TARGET: 3,000 rows instead of 30,000, which took 0.8 s
 * of a 100,000-contact import each time; the plans need row counts, not fine histograms). Best
 * effort: a failure (say, no right to analyse the host application's table) is logged and ignored.
 */
void step_refresh_stats(xs_svc_ctx *ctx, const xs_entity_ops *ops, size_t written);

/* step_new_txid makes the id a sync write carries (the mapping keeps it). */
void step_new_txid(const step_req *req, char *buf, size_t cap);

/* retry_reply answers a step whose call did not give a usable reply. */
xs_err step_outcome_reply(const char *outcome, json_t *counts, const xs_xero_call *call,
                          const char *message, json_t **reply);

extern const char *const STEP_PULL_COUNTS[];

extern const char *const STEP_PUSH_COUNTS[];

#endif
