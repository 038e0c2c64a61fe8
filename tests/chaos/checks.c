/*
 * checks.c: settling, then the six checks, exactly.
 *
 * Settling: faults off, every process running again, the connection's schedules off (so
 * nothing new starts while the checks read), the runs of the workload ended, then full runs
 * until one changes nothing (no created, updated, retired, linked, conflicts or failed in any
 * entity's pull or push counts), at most opt.settle_rounds of them, and the outbox empty.
 *
 * The checks (each failure is counted and printed with its evidence, report.c):
 *   1. duplicates: no marker of the workload twice on either side; the simulator's own
 *      duplicate detector at 0;
 *   2. links: every local contact, invoice and payment of the organisation linked to a Xero
 *      record that exists, every Xero record of the tenant linked to a local row that exists,
 *      and each pair the same record (name, number, reference, the contact and invoice named);
 *   3. last writes: on every linked pair the fields the workload edits agree; on every record
 *      it wrote, they hold the last value written by either side, or the loss is explained:
 *      by the documented window (a Xero write the engine overwrote before it could have read
 *      it), or by a recorded conflict settled as last_write_wins says, field by field (the
 *      side whose value was kept wrote later), or a local write to an invoice Xero holds as
 *      final (VOIDED, DELETED: a conflict records it undone), or by a Xero write that
 *      restored the value the engine had last agreed while the local change of the field
 *      waited (Xero keeps no history of fields; counted as restored_unseen; a local write
 *      is seen, edited_fields), or by a local write that
 * lost to an earlier Xero edit of an invoice whose UpdatedDateUTC a payment made or deleted since
 *      then moved (xero_time_was_a_payments). Anything else is a lost update;
 *   4. money: totals, amount due and paid, and payment amounts equal to the cent;
 *   5. no run queued or running, no step pending or running, among those begun before the
 *      converged round;
 *   6. (with fleet.c) no process died unasked; every one stops with 0 on SIGTERM (main.c).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chaos.h"
#include "xs/json.h"

/* ------------------------------------------------------------------ settling */

/* run_changed tells whether a run's counts show any change, naming them in why. */
static bool run_changed(const json_t *run, char *why, size_t cap)
{
    static const char *const keys[] = {"created", "updated",   "retired",
                                       "linked",  "conflicts", "failed"};
    bool changed = false;
    why[0] = '\0';
    const char *ent;
    json_t *c;
    json_object_foreach(json_object_get(run, "counts"), ent, c)
    {
        for (int d = 0; d < 2; d++) {
            json_t *dir = json_object_get(c, d == 0 ? "pull" : "push");
            for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
                json_int_t n = json_integer_value(json_object_get(dir, keys[k]));
                if (n > 0) {
                    changed = true;
                    size_t len = strlen(why);
                    snprintf(why + len, cap - len, "%s%s.%s.%s=%lld", len ? " " : "", ent,
                             d == 0 ? "pull" : "push", keys[k], (long long)n);
                }
            }
        }
    }
    return changed;
}

/* full_round starts a full run (waiting out one under way) and waits for it (new), or NULL. */
static json_t *full_round(chaos_world *w)
{
    char *id = NULL;
    for (int tries = 0; id == NULL && tries < 60; tries++) {
        id = chaos_run_start(w, "full", NULL);
        if (id == NULL) {
            xst_engine_settle(w->e, 60000);
        }
    }
    if (id == NULL) {
        return NULL;
    }
    json_t *run = xst_engine_wait_run(w->e, id, 900000);
    free(id);
    return run;
}

/* quiet turns the connection's schedules off and waits for the runs under way. */
static void quiet(chaos_world *w)
{
    char path[160];
    snprintf(path, sizeof(path), "/v1/connections/%s/settings", w->conn);
    xst_http r = xst_engine_api(w->e, "PUT", path,
                                "{\"schedule\":{\"full\":{\"enabled\":false},\"incremental\":{"
                                "\"enabled\":false}}}");
    if (r.status != 200) {
        fprintf(stderr, "chaos: cannot turn the schedules off: %ld %s\n", r.status, r.body);
    }
    xst_http_free(&r);
    if (!xst_engine_settle(w->e, 600000)) {
        fprintf(stderr, "chaos: runs or the outbox still busy 600 s after the workload\n");
    }
}

bool chaos_settle(chaos_world *w)
{
    chaos_faults_off(w->faults);
    if (!chaos_fleet_restore(w->fleet)) {
        chaos_fail(w, "not_restored", -1, NULL, NULL, NULL, NULL,
                   "the engine's processes could not all be brought back after the workload");
    }
    quiet(w);
    w->converged = false;
    for (int round = 1; round <= w->opt.settle_rounds && !w->converged; round++) {
        char *t = xst_engine_sql(w->e, "SELECT now()::text", 0, NULL);
        json_t *run = full_round(w);
        char why[1024];
        const char *st = xs_json_str_or(run, "status", "not started");
        bool changed = run == NULL || run_changed(run, why, sizeof(why));
        fprintf(stderr, "chaos: settle round %d: full run %s, %s\n", round, st,
                changed ? why : "nothing changed");
        if (run != NULL && strcmp(st, "succeeded") != 0) {
            char *text = xs_json_dump(json_object_get(run, "item_errors"), 0);
            fprintf(stderr, "chaos: its item errors: %.4000s\n", text);
            free(text);
        }
        w->converged = run != NULL && !changed && strcmp(st, "succeeded") == 0;
        w->settle_rounds = round;
        if (w->converged) {
            json_object_set_new(w->results, "settled_at", json_string(t));
        }
        free(t);
        json_decref(run);
    }
    if (!xst_engine_settle(w->e, 120000)) {
        fprintf(stderr, "chaos: the outbox is not empty after settling\n");
    }
    if (!w->converged) {
        chaos_fail(w, "not_converged", -1, NULL, NULL, NULL, NULL,
                   "does not converge: no full run changed nothing within %d rounds",
                   w->opt.settle_rounds);
    }
    return w->converged;
}

/* ------------------------------------------------------------------ the ledger's records */

/* rec_by finds the workload's record with local id lid, Xero id xid or marker m (any may be
 * NULL); -1 when it is not one of the workload's. */
static int rec_by(const chaos_world *w, const char *lid, const char *xid, const char *m)
{
    for (int i = 0; i < w->L.nrecs; i++) {
        const chaos_rec *c = &w->L.recs[i];
        if ((lid != NULL && strcasecmp(c->local_id, lid) == 0) ||
            (xid != NULL && strcasecmp(c->xero_id, xid) == 0) ||
            (m != NULL && m[0] != '\0' && strcmp(c->marker, m) == 0)) {
            return i;
        }
    }
    return -1;
}

/* ------------------------------------------------------------------ 1. duplicates */

/* marker_of writes the workload marker text starts with ("" when none). */
static void marker_of(const chaos_world *w, const char *text, char out[40])
{
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "CHX%llu-", (unsigned long long)w->opt.seed);
    out[0] = '\0';
    if (text != NULL && strncmp(text, prefix, strlen(prefix)) == 0) {
        snprintf(out, 40, "%.*s", (int)strcspn(text, " "), text);
    }
}

static const char *const XMARK[CE_N] = {"Name", "InvoiceNumber", "Reference"};
static const char *const LMARK[CE_N] = {"name", "invoice_number", "reference"};

/* dups_of counts the records of one side whose markers repeat, failing each. */
static void dups_of(chaos_world *w, json_t *recs, const char *key, bool xero, chaos_ent ent)
{
    json_t *seen = json_object();
    const char *id;
    json_t *r;
    json_object_foreach(recs, id, r)
    {
        char m[40];
        marker_of(w, xs_json_str_or(r, key, NULL), m);
        if (m[0] == '\0') {
            continue;
        }
        const char *first = xs_json_str_or(seen, m, NULL);
        if (first == NULL) {
            json_object_set_new(seen, m, json_string(id));
            continue;
        }
        chaos_fail(w, xero ? "duplicates_xero" : "duplicates_local", rec_by(w, NULL, NULL, m),
                   xero ? NULL : id, xero ? id : NULL, xero ? NULL : r, xero ? r : NULL,
                   "%s %s exists twice %s: %s and %s", chaos_ent_name(ent), m,
                   xero ? "in Xero" : "locally", first, id);
    }
    json_decref(seen);
}

static void check_duplicates(chaos_world *w, chaos_sides *s)
{
    chaos_count(w, "duplicates_xero", 0);
    chaos_count(w, "duplicates_local", 0);
    for (int k = 0; k < CE_N; k++) {
        dups_of(w, s->xero[k], XMARK[k], true, (chaos_ent)k);
        dups_of(w, s->local[k], LMARK[k], false, (chaos_ent)k);
    }
    char path[128];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/stats", w->tenant);
    json_t *st = xst_engine_sim_json(w->e, "GET", path, NULL);
    json_t *d = json_object_get(st, "duplicates");
    chaos_count(w, "sim_duplicates", (long)json_integer_value(json_object_get(d, "total")));
    if (json_integer_value(json_object_get(d, "total")) > 0) {
        char *text = xs_json_dump(json_object_get(d, "items"), 0);
        fprintf(stderr,
                "chaos: FAIL [sim_duplicates] the simulator saw duplicate creations: %.4000s\n",
                text);
        free(text);
    }
    json_decref(st);
}

/* ------------------------------------------------------------------ 2. links */

/* same_record tells whether a linked pair is one record: its marker field and the record it
 * names (an invoice's contact, a payment's invoice) agree; why says what differs. */
static bool same_record(chaos_sides *s, chaos_ent ent, const json_t *l, const json_t *x,
                        char why[200])
{
    const char *lv = xs_json_str_or(l, LMARK[ent], ""), *xv = xs_json_str_or(x, XMARK[ent], "");
    if (strcmp(lv, xv) != 0) {
        snprintf(why, 200, "%s is \"%.60s\" here and \"%.60s\" in Xero", LMARK[ent], lv, xv);
        return false;
    }
    if (ent == CE_CONTACT) {
        return true;
    }
    chaos_ent parent = ent == CE_INVOICE ? CE_CONTACT : CE_INVOICE;
    const char *lp = xs_json_str_or(l, ent == CE_INVOICE ? "contact_id" : "invoice_id", "");
    const char *xp = xs_json_str_or(json_object_get(x, ent == CE_INVOICE ? "Contact" : "Invoice"),
                                    ent == CE_INVOICE ? "ContactID" : "InvoiceID", "");
    const char *mapped = xs_json_str_or(json_object_get(s->local[parent], lp), "xero_id", "");
    if (strcasecmp(mapped, xp) != 0) {
        snprintf(why, 200, "it names %s %s here (Xero %s) and %s in Xero", chaos_ent_name(parent),
                 lp, mapped[0] ? mapped : "none", xp);
        return false;
    }
    return true;
}

static void links_of(chaos_world *w, chaos_sides *s, chaos_ent ent)
{
    const char *id;
    json_t *l;
    json_object_foreach(s->local[ent], id, l)
    {
        const char *xid = xs_json_str_or(l, "xero_id", NULL);
        json_t *x = xid != NULL ? json_object_get(s->xero[ent], xid) : NULL;
        char why[200];
        if (xid == NULL || x == NULL) {
            chaos_fail(w, "unlinked_local", rec_by(w, id, NULL, NULL), id, xid, l, NULL,
                       "local %s %s is %s", chaos_ent_name(ent), id,
                       xid == NULL ? "linked to no Xero record"
                                   : "linked to a Xero record that does not exist");
        } else if (!same_record(s, ent, l, x, why)) {
            chaos_fail(w, "mislinked", rec_by(w, id, xid, NULL), id, xid, l, x,
                       "%s %s is linked to another record: %s", chaos_ent_name(ent), id, why);
        }
    }
    json_t *x;
    json_object_foreach(s->xero[ent], id, x)
    {
        const char *lid = xs_json_str_or(s->maps[ent], id, NULL);
        if (lid == NULL || json_object_get(s->local[ent], lid) == NULL) {
            chaos_fail(w, "unlinked_xero", rec_by(w, lid, id, NULL), lid, id, NULL, x,
                       "Xero %s %s is %s", chaos_ent_name(ent), id,
                       lid == NULL ? "linked to no local record"
                                   : "linked to a local row that does not exist");
        }
    }
}

static void check_links(chaos_world *w, chaos_sides *s)
{
    chaos_count(w, "unlinked_local", 0);
    chaos_count(w, "unlinked_xero", 0);
    chaos_count(w, "mislinked", 0);
    for (int k = 0; k < CE_N; k++) {
        links_of(w, s, (chaos_ent)k);
    }
}

/* ------------------------------------------------------------------ 3. last writes */

static const chaos_field FIELDS[CE_N][3] = {{CF_EMAIL, CF_LAST_NAME, CF_CSTATUS},
                                            {CF_REFERENCE, CF_DUE_DATE, CF_ISTATUS},
                                            {CF_PSTATUS, CF_N, CF_N}};

/* canon_key is field's name in the canonical records a conflict keeps. */
static const char *canon_key(chaos_field f)
{
    return chaos_field_name(f);
}

/* canon_value writes a canonical record's value of f ("" for null). */
static void canon_value(const json_t *rec, chaos_field f, char out[64])
{
    json_t *v = json_object_get(rec, canon_key(f));
    snprintf(out, 64, "%s", json_is_string(v) ? json_string_value(v) : "");
}

/* explained_by_conflict tells whether a recorded conflict settled by last_write_wins explains
 * why the last write wr (of field f) gave way to value: the conflict held wr's value on the
 * losing side, chose the other side's record (holding value), and that side had a write of
 * the workload after wr, before the conflict. note describes the nearest conflict otherwise. */
static bool explained_by_conflict(chaos_world *w, chaos_sides *s, const chaos_write *wr,
                                  const char *local_id, const char *value, char note[512])
{
    json_t *list = json_object_get(s->conflicts, local_id);
    snprintf(note, 512, "no conflict was recorded for it");
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c)
    {
        const char *reason = xs_json_str_or(c, "reason", "");
        char lost[64], kept[64], theirs[64];
        canon_value(json_object_get(c, wr->side == SIDE_LOCAL ? "local" : "xero"), wr->field, lost);
        canon_value(json_object_get(c, wr->side == SIDE_LOCAL ? "xero" : "local"), wr->field,
                    theirs);
        canon_value(json_object_get(c, "merged"), wr->field, kept);
        /* The side whose value of this field the conflict kept (last_write_wins decides field
         * by field). */
        chaos_side winner = strcmp(kept, theirs) == 0
                                ? (wr->side == SIDE_LOCAL ? SIDE_XERO : SIDE_LOCAL)
                                : wr->side;
        int64_t at = json_integer_value(json_object_get(c, "at"));
        if (at + 1000 < wr->at_ms) {
            continue; /* before the write */
        }
        char when[XS_TIME_ISO_MAX];
        xs_time_format_iso(at, when);
        snprintf(note, 512,
                 "conflict at %s: \"%.100s\"; its %s side held \"%.60s\", it kept \"%.60s\"", when,
                 reason, chaos_side_name(wr->side), lost, kept);
        char based[64];
        canon_value(json_object_get(c, "base"), wr->field, based);
        if (wr->side == SIDE_XERO && json_object_get(c, "base") != NULL &&
            strcmp(lost, wr->value) == 0 && strcmp(based, wr->value) == 0 &&
            strcmp(kept, value) == 0) {
            /* Xero's write restored the value the engine had last agreed, while the local
             * change of the field waited: Xero keeps no history of fields, so nothing can tell
             * that it was written (docs/ARCHITECTURE.md, "What remains"). A local write is
             * seen (edited_fields, migration 0012). */
            chaos_count(w, "restored_unseen", 1);
            fprintf(stderr,
                    "chaos: a %s write that restored the agreed value, unseen: %s \"%s\" (write "
                    "#%d) gave way to \"%s\" at %s\n",
                    chaos_side_name(wr->side), chaos_field_name(wr->field), wr->value, wr->seq,
                    value, when);
            return true;
        }
        if (winner == wr->side || strcmp(lost, wr->value) != 0 || strcmp(kept, value) != 0) {
            continue;
        }
        if (wr->side == SIDE_LOCAL && strstr(reason, "which is final there") != NULL) {
            return true; /* Xero never changes a VOIDED or DELETED invoice again */
        }
        for (int k = wr->seq; k < w->L.nwrites; k++) {
            const chaos_write *o = &w->L.writes[k];
            if (o->rec == wr->rec && o->side == winner && o->field != CF_CREATE &&
                o->at_ms <= at + 1000) {
                return true;
            }
        }
        snprintf(note + strlen(note), 512 - strlen(note),
                 "; but the %s side made no edit of it after the lost one: the timestamp that "
                 "won is no edit of this record",
                 chaos_side_name(winner));
        return false;
    }
    return false;
}

/* print_conflicts lists the conflicts recorded for local_id, with field f's three values. */
static void print_conflicts(chaos_sides *s, const char *local_id, chaos_field f)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(s->conflicts, local_id), i, c)
    {
        char when[XS_TIME_ISO_MAX], lv[64], xv[64], mv[64];
        xs_time_format_iso(json_integer_value(json_object_get(c, "at")), when);
        canon_value(json_object_get(c, "local"), f, lv);
        canon_value(json_object_get(c, "xero"), f, xv);
        canon_value(json_object_get(c, "merged"), f, mv);
        fprintf(stderr, "    conflict at %s (%s): %s: local \"%s\", Xero \"%s\", kept \"%s\"\n",
                when, xs_json_str_or(c, "reason", ""), chaos_field_name(f), lv, xv, mv);
    }
}

/* acceptable tells whether value is what the writes of f to rec leave: the last certain
 * write, or an uncertain one after it (its reply was lost); *last is that certain write. */
static bool acceptable(const chaos_world *w, int rec, chaos_field f, const char *value,
                       const chaos_write **last)
{
    *last = NULL;
    bool ok = false;
    for (int k = w->L.nwrites - 1; k >= 0; k--) {
        const chaos_write *o = &w->L.writes[k];
        if (o->rec != rec || o->field != f) {
            continue;
        }
        ok = ok || strcmp(o->value, value) == 0 ||
             (f == CF_ISTATUS && strcmp(o->value, "AUTHORISED") == 0 && strcmp(value, "PAID") == 0);
        if (!o->uncertain) {
            *last = o;
            return ok;
        }
    }
    return true; /* nothing certain was written */
}

/* xero_time_was_a_payments explains a local write wr of an invoice's field that a conflict
 * (the first after it keeping value, Xero's) gave way to, when Xero's edit of the field came
 * before wr and a payment of the invoice was made or deleted after it (in Xero, or here and
 * pushed): Xero then moved the invoice's UpdatedDateUTC for the payment (AmountPaid,
 * AmountDue, Status), and that is the time last_write_wins compared, not the edit's; Xero
 * keeps no time of an edit of a field (docs/ARCHITECTURE.md, "What remains"). */
static bool xero_time_was_a_payments(const chaos_world *w, chaos_sides *s, const chaos_write *wr,
                                     const char *local_id, const char *value)
{
    if (wr->side != SIDE_LOCAL || w->L.recs[wr->rec].ent != CE_INVOICE) {
        return false;
    }
    int64_t at = -1;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(s->conflicts, local_id), i, c)
    {
        char kept[64];
        canon_value(json_object_get(c, "merged"), wr->field, kept);
        int64_t t = json_integer_value(json_object_get(c, "at"));
        if (t + 1000 >= wr->at_ms && strcmp(kept, value) == 0) {
            at = t;
            break;
        }
    }
    bool payment = false;
    for (int k = 0; at >= 0 && k < w->L.nwrites; k++) {
        const chaos_write *o = &w->L.writes[k];
        if (o->at_ms <= wr->at_ms || o->at_ms > at + 1000) {
            continue;
        }
        if (o->side == SIDE_XERO && o->rec == wr->rec && o->field == wr->field) {
            return false; /* a later Xero edit of the field: not this case */
        }
        const chaos_rec *r = &w->L.recs[o->rec];
        payment = payment || (r->ent == CE_PAYMENT && r->invoice == wr->rec);
    }
    return payment;
}

/* judge checks the last write of f to rec against the agreed value of both sides. */
static void judge(chaos_world *w, chaos_sides *s, int rec, chaos_field f, const char *value,
                  const json_t *l, const json_t *x)
{
    const chaos_rec *c = &w->L.recs[rec];
    const chaos_write *last;
    if (acceptable(w, rec, f, value, &last)) {
        return;
    }
    char why[300];
    if (last->side == SIDE_XERO && chaos_in_window(w, s, c->ent, c->xero_id, last->at_ms, why)) {
        chaos_count(w, "overwritten_in_window", 1);
        fprintf(stderr,
                "chaos: overwritten in the documented window: %s %s %s: Xero's \"%s\" (write #%d) "
                "gave way to \"%s\"; %s\n",
                chaos_ent_name(c->ent), c->xero_id, chaos_field_name(f), last->value, last->seq,
                value, why);
        return;
    }
    char note[512];
    if (explained_by_conflict(w, s, last, c->local_id, value, note)) {
        chaos_count(w, "conflicts_settled", 1);
        return;
    }
    if (xero_time_was_a_payments(w, s, last, c->local_id, value)) {
        chaos_count(w, "xero_time_was_a_payments", 1);
        fprintf(stderr,
                "chaos: Xero's time was a payment's: %s %s %s: the local \"%s\" (write #%d) gave "
                "way to Xero's earlier \"%s\", its invoice's UpdatedDateUTC moved later by a "
                "payment made or deleted since\n",
                chaos_ent_name(c->ent), c->xero_id, chaos_field_name(f), last->value, last->seq,
                value);
        return;
    }
    int printed = w->printed;
    chaos_fail(w, "lost_updates", rec, c->local_id, c->xero_id, l, x,
               "lost update: %s %s: the last write (#%d, %s, \"%s\") is lost; both sides hold "
               "\"%s\"; %s%s%s",
               chaos_ent_name(c->ent), chaos_field_name(f), last->seq, chaos_side_name(last->side),
               last->value, value, note, last->side == SIDE_XERO ? "; " : "",
               last->side == SIDE_XERO ? why : "");
    if (w->printed > printed) {
        print_conflicts(s, c->local_id, f);
    }
}

static void last_writes_of(chaos_world *w, chaos_sides *s, chaos_ent ent, json_t *by_local)
{
    const char *id;
    json_t *l;
    json_object_foreach(s->local[ent], id, l)
    {
        const char *xid = xs_json_str_or(l, "xero_id", NULL);
        json_t *x = xid != NULL ? json_object_get(s->xero[ent], xid) : NULL;
        if (x == NULL) {
            continue; /* check 2 says so */
        }
        json_t *ri = json_object_get(by_local, id);
        int rec = ri != NULL ? (int)json_integer_value(ri) : -1;
        for (int k = 0; k < 3 && FIELDS[ent][k] != CF_N; k++) {
            chaos_field f = FIELDS[ent][k];
            char lv[64], xv[64];
            chaos_local_value(l, f, lv);
            chaos_xero_value(x, f, xv);
            if (strcmp(lv, xv) != 0) {
                chaos_fail(w, "diverged", rec, id, xid, l, x,
                           "the sides disagree: %s %s is \"%s\" here and \"%s\" in Xero",
                           chaos_ent_name(ent), chaos_field_name(f), lv, xv);
            } else if (rec >= 0) {
                judge(w, s, rec, f, lv, l, x);
            }
        }
    }
}

static void check_last_writes(chaos_world *w, chaos_sides *s)
{
    chaos_count(w, "lost_updates", 0);
    chaos_count(w, "diverged", 0);
    chaos_count(w, "overwritten_in_window", 0);
    chaos_count(w, "conflicts_settled", 0);
    chaos_count(w, "restored_unseen", 0);
    chaos_count(w, "xero_time_was_a_payments", 0);
    json_t *by_local = json_object();
    for (int i = 0; i < w->L.nrecs; i++) {
        chaos_resolve(w, i, SIDE_LOCAL);
        chaos_resolve(w, i, SIDE_XERO);
        if (w->L.recs[i].local_id[0] != '\0') {
            json_object_set_new(by_local, w->L.recs[i].local_id, json_integer(i));
        }
    }
    for (int k = 0; k < CE_N; k++) {
        last_writes_of(w, s, (chaos_ent)k, by_local);
    }
    json_decref(by_local);
    const char *p[] = {w->conn};
    chaos_count(w, "conflicts",
                xst_engine_sql_long(w->e,
                                    "SELECT count(*) FROM sync.conflicts WHERE "
                                    "connection_id = $1",
                                    1, p));
}

/* ------------------------------------------------------------------ 4. money */

/* money_eq compares a local decimal text with Xero's number to the cent. */
static bool money_eq(const char *local, const json_t *xero, char out[96])
{
    xs_money a = xs_money_zero(), b = xs_money_zero();
    bool ok = local != NULL && xs_money_parse(local, &a) == XS_OK &&
              (xero == NULL || json_is_null(xero) || xs_json_to_money(xero, &b) == XS_OK);
    xs_money_round(a, 2, XS_ROUND_HALF_UP, &a);
    xs_money_round(b, 2, XS_ROUND_HALF_UP, &b);
    char ta[XS_MONEY_TEXT_MAX], tb[XS_MONEY_TEXT_MAX];
    xs_money_format(a, 2, ta);
    xs_money_format(b, 2, tb);
    snprintf(out, 96, "%s here, %s in Xero", ta, tb);
    return ok && xs_money_cmp(a, b) == 0;
}

static void check_money(chaos_world *w, chaos_sides *s)
{
    static const char *const inv[][2] = {
        {"sub_total", "SubTotal"},   {"total_tax", "TotalTax"},     {"total", "Total"},
        {"amount_due", "AmountDue"}, {"amount_paid", "AmountPaid"}, {"amount", "Amount"}};
    chaos_count(w, "amount_mismatches", 0);
    for (int k = CE_INVOICE; k <= CE_PAYMENT; k++) {
        const char *id;
        json_t *l;
        json_object_foreach(s->local[k], id, l)
        {
            const char *xid = xs_json_str_or(l, "xero_id", NULL);
            json_t *x = xid != NULL ? json_object_get(s->xero[k], xid) : NULL;
            for (int f = k == CE_INVOICE ? 0 : 5; x != NULL && f < (k == CE_INVOICE ? 5 : 6); f++) {
                char why[96];
                if (!money_eq(xs_json_str_or(l, inv[f][0], NULL), json_object_get(x, inv[f][1]),
                              why)) {
                    chaos_fail(w, "amount_mismatches", rec_by(w, id, xid, NULL), id, xid, l, x,
                               "%s %s: %s", chaos_ent_name((chaos_ent)k), inv[f][0], why);
                }
            }
        }
    }
}

/* ------------------------------------------------------------------ 5. stuck runs */

static void check_stuck(chaos_world *w)
{
    const char *at = xs_json_str_or(w->results, "settled_at", NULL);
    const char *p[] = {w->conn, at != NULL ? at : "infinity"};
    json_t *stuck = chaos_sql_json(
        w,
        "SELECT coalesce(json_agg(json_build_object('run', r.id, 'mode', r.mode, 'status', "
        "r.status, 'created_at', r.created_at, 'steps', (SELECT json_agg(json_build_object('id', "
        "s.id, 'kind', s.kind, 'entity', s.entity, 'status', s.status, 'attempts', s.attempts, "
        "'error', s.error)) FROM sync.run_steps s WHERE s.run_id = r.id AND s.status IN "
        "('pending', 'running')))), '[]')::text FROM sync.runs r WHERE r.connection_id = $1 AND "
        "r.created_at < $2::timestamptz AND (r.status IN ('queued', 'running') OR EXISTS (SELECT "
        "1 FROM sync.run_steps s WHERE s.run_id = r.id AND s.status IN ('pending', 'running')))",
        2, p);
    chaos_count(w, "stuck_runs", (long)json_array_size(stuck));
    size_t i;
    json_t *r;
    json_array_foreach(stuck, i, r)
    {
        char *text = xs_json_dump(r, 0);
        fprintf(stderr, "chaos: FAIL [stuck_runs] %.2000s\n", text);
        free(text);
    }
    json_decref(stuck);
    chaos_count(w, "outbox_pending",
                xst_engine_sql_long(
                    w->e, "SELECT count(*) FROM sync.changes WHERE processed_at IS NULL", 0, NULL));
}

void chaos_check(chaos_world *w)
{
    chaos_sides s;
    chaos_sides_read(w, &s);
    check_duplicates(w, &s);
    check_links(w, &s);
    check_last_writes(w, &s);
    check_money(w, &s);
    check_stuck(w);
    chaos_sides_free(&s);
}
