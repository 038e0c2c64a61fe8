/*
 * hookwatch.h: the safety net under Xero's webhooks (hookwatch.c). Webhooks can be lost or
 * late, and Xero disables a subscription whose deliveries failed for a day, so the scheduled
 * incremental runs keep pulling everything; while a connection's webhooks are healthy the
 * pulls of the entities Xero sends events for (contact, invoice) relax to
 * XS_WEBHOOK_POLL_EVERY, and they return to every incremental run when events stop
 * (XS_WEBHOOK_SILENCE) or a pull finds a change no webhook brought.
 *
 * A connection's state is derived, whenever it is asked for, from what PostgreSQL holds: the
 * tenant's events (sync.webhook_events) and the connection's incremental runs (sync.runs:
 * when the webhook entities were last pulled, and the counts of the last such pull to end).
 * The polling the scheduler last chose is kept beside the incremental schedule
 * (sync.schedules.settings, "webhooks"), so a change is logged once, across restarts.
 */
#ifndef ORCH_HOOKWATCH_H
#define ORCH_HOOKWATCH_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "orch.h"
#include "xs/clock.h"
#include "xs/err.h"
#include "xs/pg.h"

typedef struct orch_hookwatch {
    /* "not_configured" (no XS_XERO_WEBHOOK_KEY), "silent" (no event within
     * XS_WEBHOOK_SILENCE), "missed" (the last pull of the webhook entities found records
     * created or updated that no webhook run had brought), "healthy"; static */
    const char *state;
    bool relaxed;       /* healthy, and XS_WEBHOOK_POLL_EVERY is longer than the interval */
    bool polled_lately; /* the webhook entities were pulled less than XS_WEBHOOK_POLL_EVERY ago */
    char polled_at[XS_TIME_ISO_MAX];    /* when their last incremental run started; "" never */
    char next_poll_at[XS_TIME_ISO_MAX]; /* when the schedule pulls them next; "" not scheduled */
} orch_hookwatch;

/* orch_hookwatch_read reads the webhook state of connection conn, whose settings are settings
 * (borrowed), into *out (XS_ENOTFOUND: no such connection). */
xs_err orch_hookwatch_read(orch *o, xs_pg *pg, const char *conn, const json_t *settings,
                           orch_hookwatch *out);

/* orch_hookwatch_note records h as the polling the scheduler chose for conn, in the caller's
 * transaction, and logs webhook.polling_relaxed or webhook.polling_normal when the polling
 * differs from the one recorded before (none recorded: normal). */
void orch_hookwatch_note(orch *o, xs_pg *pg, const char *conn, const orch_hookwatch *h);

/* orch_hookwatch_others is the array of entity names (new) that settings enable and an
 * incremental run pulls, but for those Xero sends webhooks for: what a relaxed incremental
 * run covers. */
json_t *orch_hookwatch_others(const json_t *settings);

/* orch_hookwatch_put adds h to block (borrowed), the stats' webhooks block: state, polling
 * ("relaxed" or "normal"), polled_at and next_poll_at (null when none). */
void orch_hookwatch_put(const orch_hookwatch *h, json_t *block);

#endif
