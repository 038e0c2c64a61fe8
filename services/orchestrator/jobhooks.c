/* jobhooks.c: see jobhooks.h. */
#include "jobhooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"
#include "xs/clock.h"
#include "xs/hookout.h"
#include "xs/json.h"

#define BATCH      20 /* as CLAIM's LIMIT */
#define POLL_MS    500
#define NAP_MS     100
#define BACKOFF_MS 2000
#define SECRET_MIN 16

xs_err orch_jobhooks_read(orch *o, const xs_config *cfg, char *err)
{
    o->jobhook.secret = xs_config_str(cfg, "XS_JOB_WEBHOOK_SECRET");
    o->jobhook.secret_len = o->jobhook.secret != NULL ? strlen(o->jobhook.secret) : 0;
    o->jobhook.timeout_ms = xs_config_int(cfg, "XS_JOB_WEBHOOK_TIMEOUT");
    if (o->jobhook.secret != NULL && o->jobhook.secret_len < SECRET_MIN) {
        snprintf(err, XS_CONFIG_ERR_MAX, "XS_JOB_WEBHOOK_SECRET: must be at least %d bytes",
                 SECRET_MIN);
        return XS_ECONFIG;
    }
    return XS_OK;
}

/* nap sleeps ms in short naps; false when the orchestrator is stopping. */
static bool nap(orch *o, int64_t ms)
{
    for (int64_t slept = 0; slept < ms && !atomic_load(&o->stop); slept += NAP_MS) {
        xs_clock_sleep_ms(ms - slept < NAP_MS ? ms - slept : NAP_MS);
    }
    return !atomic_load(&o->stop);
}

/* Back-off: BACKOFF_MS doubling with each attempt, at most an hour (3600000 ms in UPDATE's SQL). */

/* Claims the due events (a lease of $1 ms) and reads what their deliveries carry. */
static const char CLAIM[] =
    "WITH d AS (SELECT e.id FROM app.job_events e JOIN sync.connections c ON c.id = "
    "e.connection_id WHERE e.webhook AND e.delivered_at IS NULL AND e.next_attempt_at <= now() "
    "AND c.status <> 'disconnected' AND c.settings->'xpm'->>'enabled' = 'true' AND "
    "coalesce(c.settings->'xpm'->>'webhook_url', '') <> '' ORDER BY e.id LIMIT 20 FOR UPDATE OF e "
    "SKIP LOCKED), "
    "u AS (UPDATE app.job_events e SET next_attempt_at = now() + $1::bigint * interval '1 "
    "millisecond' FROM d WHERE e.id = d.id RETURNING e.*) "
    "SELECT u.id, u.type, sync.iso(u.created_at), u.organisation_id, u.connection_id, j.id, "
    "j.number, j.name, u.state, j.client_uuid, j.client_name, j.contact_id, "
    "c.settings->'xpm'->>'webhook_url' FROM u JOIN app.jobs j ON j.id = u.job_id JOIN "
    "sync.connections c ON c.id = u.connection_id ORDER BY u.id";

/* event_body is the JSON the receiver gets for row i of a CLAIM (new text; free). */
static char *event_body(const xs_pg_res *r, int i)
{
    int64_t id = 0;
    xs_pg_res_int(r, i, 0, &id);
    json_t *b =
        json_pack("{s:I, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s, s:{s:s?, s:s?}, s:s?}}", "id",
                  (json_int_t)id, "type", xs_pg_res_get(r, i, 1), "occurred_at",
                  xs_pg_res_get(r, i, 2), "organisation_id", xs_pg_res_get(r, i, 3),
                  "connection_id", xs_pg_res_get(r, i, 4), "job", "id", xs_pg_res_get(r, i, 5),
                  "number", xs_pg_res_get(r, i, 6), "name", xs_pg_res_get(r, i, 7), "state",
                  xs_pg_res_get(r, i, 8), "client", "uuid", xs_pg_res_get(r, i, 9), "name",
                  xs_pg_res_get(r, i, 10), "contact_id", xs_pg_res_get(r, i, 11));
    char *text = b != NULL ? xs_json_dump(b, XS_JSON_SORT_KEYS) : NULL;
    json_decref(b);
    return text;
}

/* deliver sends row i of a CLAIM and records how it went. */
static void deliver(orch *o, xs_pg *pg, xs_hookout *h, const xs_pg_res *r, int i)
{
    const char *id = xs_pg_res_get(r, i, 0), *conn = xs_pg_res_get(r, i, 4);
    char *body = event_body(r, i);
    if (body == NULL) {
        return; /* out of memory: the lease runs out and it is sent later */
    }
    long status = 0;
    char why[XS_HOOKOUT_ERROR_MAX];
    xs_err e = xs_hookout_post(h, xs_pg_res_get(r, i, 12), o->jobhook.secret, o->jobhook.secret_len,
                               id, body, strlen(body), &status, why);
    free(body);
    bool ok = e == XS_OK && status >= 200 && status < 300;
    if (e == XS_OK && !ok) {
        snprintf(why, sizeof(why), "the receiver answered HTTP %ld", status);
    }
    char backoff[24];
    snprintf(backoff, sizeof(backoff), "%d", BACKOFF_MS);
    xs_err w = xs_pg_q(
        pg, NULL,
        "UPDATE app.job_events SET attempts = attempts + 1, delivered_at = CASE "
        "WHEN $2::boolean THEN now() END, last_error = $3, next_attempt_at = CASE WHEN $2::boolean "
        "THEN next_attempt_at ELSE now() + least($4::bigint * 2 ^ least(attempts, "
        "20), 3600000) * interval '1 millisecond' END WHERE id "
        "= $1::bigint",
        id, ok ? "true" : "false", ok ? NULL : why, backoff);
    if (ok) {
        xs_log_info(o->proc.log, "jobhook.delivered", "{s:s, s:s, s:I}", "event", id, "connection",
                    conn, "status", (json_int_t)status);
    } else {
        xs_log_warn(o->proc.log, "jobhook.failed", "{s:s, s:s, s:s}", "event", id, "connection",
                    conn, "error", why);
    }
    if (w != XS_OK) {
        xs_log_warn(o->proc.log, "jobhook.record_failed", "{s:s, s:s}", "event", id, "error",
                    xs_pg_error(pg));
    }
}

/* deliver_due delivers the events due now, one batch; how many it claimed. */
static int deliver_due(orch *o, xs_pg *pg, xs_hookout *h)
{
    char lease[24];
    snprintf(lease, sizeof(lease), "%lld", (long long)(o->jobhook.timeout_ms * 2 + 5000));
    xs_pg_res *r = NULL;
    if (xs_pg_q(pg, &r, CLAIM, lease) != XS_OK) {
        xs_log_warn(o->proc.log, "jobhook.claim_failed", "{s:s}", "error", xs_pg_error(pg));
        return 0;
    }
    int n = xs_pg_res_nrows(r);
    for (int i = 0; i < n && !atomic_load(&o->stop); i++) {
        deliver(o, pg, h, r, i);
    }
    xs_pg_res_free(r);
    return n;
}

/* jobhooks_main delivers what is due, then looks again every POLL_MS. */
static void *jobhooks_main(void *arg)
{
    orch *o = arg;
    xs_pg *pg = NULL;
    xs_hookout *h = NULL;
    if (xs_hookout_create(&h, o->jobhook.timeout_ms) != XS_OK) {
        xs_log_error(o->proc.log, "jobhook.start_failed", "{s:s}", "error",
                     "cannot make the webhook client");
        return NULL;
    }
    while (!atomic_load(&o->stop)) {
        if (pg == NULL || !xs_pg_is_ok(pg)) {
            if (!orch_pg_open(o, &pg, "xs-orchestrator jobhooks", NULL, 1000)) {
                continue;
            }
        }
        if (deliver_due(o, pg, h) < BATCH) {
            nap(o, POLL_MS);
        }
    }
    xs_hookout_destroy(h);
    xs_pg_close(pg);
    return NULL;
}

xs_err orch_jobhooks_start(orch *o)
{
    if (o->jobhook.secret == NULL) {
        return XS_OK; /* no webhook_url can be set: nothing to deliver */
    }
    if (pthread_create(&o->jobhooks, NULL, jobhooks_main, o) != 0) {
        return XS_ENOMEM;
    }
    o->jobhooks_started = true;
    return XS_OK;
}

void orch_jobhooks_stop(orch *o)
{
    if (o->jobhooks_started) {
        pthread_join(o->jobhooks, NULL);
        o->jobhooks_started = false;
    }
}
