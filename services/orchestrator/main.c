/*
 * xs-orchestrator: the hub. It owns the HTTP front door (REST API, OAuth callback, webhooks,
 * health), listens on the bus for the domain services, and tracks their replicas.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "connections.h"
#include "engine.h"
#include "inbox.h"
#include "jobhooks.h"
#include "retention.h"
#include "sched.h"
#include "settings.h"
#include "webhooks.h"
#include "proto.h"
#include "xs/clock.h"
#include "xs/json.h"
#include "xs/migrate.h"

static const char usage[] =
    "xs-orchestrator: serves the REST API on XS_HTTP_ADDR:XS_HTTP_PORT (GET /health needs no "
    "key; GET /metrics takes one of XS_METRICS_KEYS too; every other route needs Authorization: "
    "Bearer <one of XS_API_KEYS>), listens for the "
    "domain services on XS_BUS_LISTEN, and keeps the sync state in XS_DATABASE_URL. Stop with "
    "SIGTERM.";

/* event_sender tells which domain an event must come from: a heartbeat from the domain it
 * names, a connection's change of status from auth; NONE for any other event (a heartbeat
 * naming no domain is refused by orch_replicas_observe). */
static xs_bus_domain event_sender(const xs_msg *m)
{
    xs_bus_domain d = XS_BUS_DOMAIN_NONE;
    if (strcmp(m->type, "event.heartbeat") == 0) {
        if (xs_bus_domain_parse(xs_json_str_or(m->body, "domain", ""), &d) != XS_OK) {
            d = XS_BUS_DOMAIN_NONE;
        }
    } else if (strcmp(m->type, "event.connection") == 0) {
        d = XS_BUS_DOMAIN_AUTH;
    }
    return d;
}

/* events_main consumes published events until the orchestrator stops. An event that claims
 * to come from a domain other than the one whose events socket it arrived on (with TLS: the
 * role of the publisher's certificate) is dropped and logged. */
static void *events_main(void *arg)
{
    orch *o = arg;
    while (!atomic_load(&o->stop)) {
        void *buf = NULL;
        size_t len = 0;
        xs_bus_domain from = XS_BUS_DOMAIN_NONE;
        xs_err e = xs_bus_next_event(o->hub, 250, &buf, &len, &from);
        if (e == XS_ETIMEDOUT) {
            continue;
        }
        if (e == XS_ECLOSED) {
            break;
        }
        if (e != XS_OK) {
            xs_log_warn(o->proc.log, "bus.event_failed", "{s:s}", "err", xs_err_name(e));
            xs_clock_sleep_ms(100);
            continue;
        }
        xs_msg *m = NULL;
        char why[XS_PROTO_ERR_MAX];
        e = xs_proto_decode(buf, len, &m, NULL, why);
        free(buf);
        if (e != XS_OK) {
            xs_log_warn(o->proc.log, "bus.bad_event", "{s:s, s:s}", "from",
                        xs_bus_domain_name(from), "reason", why);
            continue;
        }
        xs_bus_domain sender = event_sender(m);
        if (sender != XS_BUS_DOMAIN_NONE && sender != from) {
            xs_log_error(o->proc.log, "bus.event_forged", "{s:s, s:s, s:s, s:s}", "type", m->type,
                         "event", m->id, "from", xs_bus_domain_name(from), "claims",
                         xs_bus_domain_name(sender));
        } else if (strcmp(m->type, "event.heartbeat") == 0) {
            if (orch_replicas_observe(o->replicas, m, xs_clock_mono_ms()) != XS_OK) {
                xs_log_warn(o->proc.log, "bus.bad_heartbeat", "{s:s}", "event", m->id);
            }
        } else if (strcmp(m->type, "event.connection") == 0) {
            orch_event_connection(o, m);
        } else {
            xs_log_debug(o->proc.log, "bus.event", "{s:s, s:s}", "type", m->type, "from",
                         xs_bus_domain_name(from));
        }
        xs_msg_free(m);
    }
    return NULL;
}

/* check_schema refuses a database at another schema version than this build's. */
static xs_err check_schema(orch *o)
{
    xs_pg *pg = NULL;
    xs_err e = xs_pg_pool_acquire(o->pool, 5000, &pg);
    if (e != XS_OK) {
        xs_log_error(o->proc.log, "db.unreachable", "{s:s}", "err", xs_err_name(e));
        return e;
    }
    char why[160];
    e = xs_migrate_check(pg, why);
    xs_pg_pool_release(o->pool, pg);
    if (e != XS_OK) {
        xs_log_error(o->proc.log, "db.schema_mismatch", "{s:s}", "reason", why);
    }
    return e;
}

/* max_body is the largest request body taken: XS_HTTP_MAX_BODY, or more when a document of
 * XS_DOCUMENTS_MAX_BYTES needs it (with room for the form around it). */
static size_t max_body(const xs_config *cfg)
{
    int64_t body = xs_config_int(cfg, "XS_HTTP_MAX_BODY");
    int64_t doc = xs_config_int(cfg, "XS_DOCUMENTS_MAX_BYTES") + 65536;
    return (size_t)(doc > body ? doc : body);
}

int main(int argc, char **argv)
{
    orch o;
    memset(&o, 0, sizeof(o));
    int code;
    if (xs_proc_start(&o.proc, "xs-orchestrator", XS_PROC_ORCHESTRATOR, argc, argv, usage, &code) !=
        XS_OK) {
        return code;
    }
    const xs_config *cfg = o.proc.cfg;
    pthread_t events;
    bool events_started = false;
    char err[XS_CONFIG_ERR_MAX];

    if (orch_webhook_keys_read(&o) != XS_OK) {
        goto done;
    }
    const char *mkeys = xs_config_str(cfg, "XS_METRICS_KEYS");
    if (orch_api_keys_parse("XS_API_KEYS", xs_config_str(cfg, "XS_API_KEYS"), false,
                            &o.api_key_sums, &o.napi_keys, err) != XS_OK ||
        orch_api_keys_parse("XS_METRICS_KEYS", mkeys != NULL ? mkeys : "", true,
                            &o.metrics_key_sums, &o.nmetrics_keys, err) != XS_OK) {
        xs_log_error(o.proc.log, "config.invalid", "{s:s}", "error", err);
        code = XS_EXIT_CONFIG;
        goto done;
    }
    if (xs_config_int(cfg, "XS_HTTP_MAX_CONNECTIONS_PER_IP") >
        xs_config_int(cfg, "XS_HTTP_MAX_CONNECTIONS")) {
        snprintf(err, sizeof(err),
                 "XS_HTTP_MAX_CONNECTIONS_PER_IP: must be at most XS_HTTP_MAX_CONNECTIONS (%lld)",
                 (long long)xs_config_int(cfg, "XS_HTTP_MAX_CONNECTIONS"));
        xs_log_error(o.proc.log, "config.invalid", "{s:s}", "error", err);
        code = XS_EXIT_CONFIG;
        goto done;
    }
    if (orch_retention_read(&o, cfg, err) != XS_OK || orch_jobhooks_read(&o, cfg, err) != XS_OK) {
        xs_log_error(o.proc.log, "config.invalid", "{s:s}", "error", err);
        code = XS_EXIT_CONFIG;
        goto done;
    }
    code = XS_EXIT_FAIL;
    o.bus_timeout_ms = xs_config_int(cfg, "XS_BUS_TIMEOUT");
    o.lease_ttl_ms = xs_config_int(cfg, "XS_LEASE_TTL");

    xs_err e = xs_pg_pool_create(&o.pool, xs_config_str(cfg, "XS_DATABASE_URL"), "xs-orchestrator",
                                 (int)xs_config_int(cfg, "XS_DB_POOL_SIZE"),
                                 xs_config_int(cfg, "XS_DB_CONNECT_WAIT"), o.proc.log);
    if (e != XS_OK) {
        xs_log_error(o.proc.log, "db.unreachable", "{s:s}", "err", xs_err_name(e));
        goto done;
    }
    if (check_schema(&o) != XS_OK) {
        goto done;
    }
    if (orch_replicas_create(&o.replicas, xs_config_int(cfg, "XS_HEARTBEAT")) != XS_OK ||
        orch_metrics_create(&o.metrics) != XS_OK) {
        goto done;
    }
    xs_bus_opts bo = {.url = xs_config_str(cfg, "XS_BUS_LISTEN"),
                      .tls_dir = xs_config_str(cfg, "XS_BUS_TLS_DIR"),
                      .insecure = xs_config_bool(cfg, "XS_BUS_INSECURE"),
                      .max_msg = (size_t)xs_config_int(cfg, "XS_BUS_MAX_MSG"),
                      .resend_ms = xs_config_int(cfg, "XS_BUS_RESEND"),
                      .log = o.proc.log};
    if ((e = xs_bus_hub_create(&o.hub, &bo)) != XS_OK) {
        xs_log_error(o.proc.log, "bus.listen_failed", "{s:s}", "url", bo.url);
        if (e == XS_EINVAL) {
            code = XS_EXIT_CONFIG;
        }
        goto done;
    }
    if (pthread_create(&events, NULL, events_main, &o) != 0) {
        goto done;
    }
    events_started = true;

    o.step_max_attempts = xs_config_int(cfg, "XS_STEP_MAX_ATTEMPTS");
    o.backoff_ms = xs_config_int(cfg, "XS_STEP_BACKOFF");
    o.backoff_max_ms = xs_config_int(cfg, "XS_STEP_BACKOFF_MAX");
    o.page_size = xs_config_int(cfg, "XS_PULL_PAGE_SIZE");
    o.pull_pages = xs_config_int(cfg, "XS_PULL_PAGES_PER_STEP");
    o.pull_step_ms = xs_config_int(cfg, "XS_PULL_STEP_TIME");
    o.lookback_ms = xs_config_int(cfg, "XS_INCREMENTAL_LOOKBACK");
    o.push_delay_ms = xs_config_int(cfg, "XS_PUSH_DELAY");
    o.push_every_ms = xs_config_int(cfg, "XS_PUSH_EVERY");
    o.push_parallel = xs_config_int(cfg, "XS_PUSH_PARALLEL");
    o.webhook_delay_ms = xs_config_int(cfg, "XS_WEBHOOK_DELAY");
    o.webhook_poll_every_ms = xs_config_int(cfg, "XS_WEBHOOK_POLL_EVERY");
    o.webhook_silence_ms = xs_config_int(cfg, "XS_WEBHOOK_SILENCE");
    o.push_poll_ms = xs_config_int(cfg, "XS_PUSH_POLL");
    o.reread_after_ms = xs_config_int(cfg, "XS_PUSH_REREAD_AFTER");
    o.jitter_ms = xs_config_int(cfg, "XS_SCHEDULE_JITTER");
    o.incremental_every_ms = xs_config_int(cfg, "XS_SCHEDULE_INCREMENTAL_EVERY");
    o.full_window_ms = xs_config_int(cfg, "XS_SCHEDULE_FULL_WINDOW");
    o.poll_max_every_ms = xs_config_int(cfg, "XS_POLL_MAX_EVERY");
    o.start_limit = xs_config_int(cfg, "XS_BUDGET_APP_MINUTE") * ORCH_START_WINDOWS;
    o.start_window_ms = xs_config_int(cfg, "XS_BUDGET_MINUTE_WINDOW");
    o.scheduler_on = xs_config_bool(cfg, "XS_SCHEDULER");
    o.app_name = xs_config_str(cfg, "XS_APP_NAME");
    o.files_types = xs_config_str(cfg, "XS_FILES_TYPES");
    o.documents_max_bytes = xs_config_int(cfg, "XS_DOCUMENTS_MAX_BYTES");
    if (!orch_settings_parse_hhmm(xs_config_str(cfg, "XS_SCHEDULE_FULL_AT"), &o.full_at_minutes)) {
        xs_log_error(o.proc.log, "config.invalid", "{s:s}", "error",
                     "XS_SCHEDULE_FULL_AT: must be HH:MM (UTC), e.g. 02:00");
        code = XS_EXIT_CONFIG;
        goto done;
    }
    if (orch_engine_start(&o) != XS_OK || orch_sched_start(&o) != XS_OK ||
        orch_inbox_start(&o) != XS_OK) {
        xs_log_error(o.proc.log, "engine.start_failed", NULL);
        goto done;
    }
    /* The front door opens last: a request may use everything above (the settings, the
     * budget, the executors' wake-up), none of which may be half made when it comes. */
    size_t nroutes = 0;
    const xs_http_route *routes = orch_api_routes(&nroutes);
    xs_http_opts ho = {.bind_addr = xs_config_str(cfg, "XS_HTTP_ADDR"),
                       .port = (uint16_t)xs_config_int(cfg, "XS_HTTP_PORT"),
                       .max_body = max_body(cfg),
                       .max_connections = (unsigned)xs_config_int(cfg, "XS_HTTP_MAX_CONNECTIONS"),
                       .max_connections_per_ip =
                           (unsigned)xs_config_int(cfg, "XS_HTTP_MAX_CONNECTIONS_PER_IP"),
                       .header_timeout_ms = xs_config_int(cfg, "XS_HTTP_HEADER_TIMEOUT"),
                       .body_timeout_ms = xs_config_int(cfg, "XS_HTTP_BODY_TIMEOUT"),
                       .idle_timeout_ms = xs_config_int(cfg, "XS_HTTP_IDLE_TIMEOUT"),
                       .routes = routes,
                       .nroutes = nroutes,
                       .before = orch_api_authorised,
                       .arg = &o,
                       .log = o.proc.log};
    if (xs_http_server_create(&o.http, &ho) != XS_OK) {
        xs_log_error(o.proc.log, "http.listen_failed", "{s:s, s:i}", "addr", ho.bind_addr, "port",
                     ho.port);
        goto done;
    }
    xs_log_info(o.proc.log, "orchestrator.ready", "{s:s, s:i, s:s}", "http_addr", ho.bind_addr,
                "http_port", xs_http_server_port(o.http), "bus", bo.url);

    int sig;
    while ((sig = xs_proc_wait_signal(&o.proc, 1000)) == 0) {
    }
    xs_log_info(o.proc.log, "orchestrator.stopping", "{s:i}", "signal", sig);
    code = XS_EXIT_OK;

done:
    /* Stop taking requests first; then the scheduler; then fail the bus calls in progress,
     * so the executors come back at once (a step cut short is run again after a restart);
     * then the bus, then the database. */
    xs_http_server_destroy(o.http);
    atomic_store(&o.stop, true);
    orch_sched_stop(&o);
    orch_inbox_stop(&o);
    xs_bus_hub_close(o.hub);
    orch_engine_stop(&o);
    if (events_started) {
        pthread_join(events, NULL);
    }
    xs_bus_hub_destroy(o.hub);
    orch_replicas_destroy(o.replicas);
    xs_pg_pool_destroy(o.pool);
    if (o.api_key_sums != NULL) {
        xs_crypto_wipe(o.api_key_sums, o.napi_keys * sizeof(*o.api_key_sums));
    }
    free(o.api_key_sums);
    if (o.metrics_key_sums != NULL) {
        xs_crypto_wipe(o.metrics_key_sums, o.nmetrics_keys * sizeof(*o.metrics_key_sums));
    }
    free(o.metrics_key_sums);
    orch_metrics_destroy(o.metrics);
    orch_webhook_keys_free(&o);
    xs_proc_finish(&o.proc, code);
    return code;
}
