/*
 * report.c: what a failure says and what the run counts. A failure names the check, the
 * record (its ids on both sides), both sides' values, every write the workload made to it
 * (side, how, value, time), and the lines of the engine's logs (every process the fleet ever
 * started, killed ones included) that mention its ids. The counters live in w->results and
 * go into the summary line.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chaos.h"
#include "xs/json.h"

#define LINE_MAX_LEN  65536
#define LINES_PER_LOG 8

void chaos_count(chaos_world *w, const char *counter, long n)
{
    json_t *v = json_object_get(w->results, counter);
    json_object_set_new(w->results, counter,
                        json_integer((v != NULL ? json_integer_value(v) : 0) + n));
}

long chaos_counter(const chaos_world *w, const char *counter)
{
    return (long)json_integer_value(json_object_get(w->results, counter));
}

/* xero_brief keeps the fields of a Xero record worth printing (new). */
static json_t *xero_brief(const json_t *x)
{
    static const char *const keys[] = {
        "ContactID", "InvoiceID",  "PaymentID", "Name",           "InvoiceNumber",
        "Type",      "Reference",  "Status",    "ContactStatus",  "EmailAddress",
        "LastName",  "DueDate",    "SubTotal",  "TotalTax",       "Total",
        "AmountDue", "AmountPaid", "Amount",    "UpdatedDateUTC", NULL};
    json_t *o = json_object();
    for (size_t i = 0; keys[i] != NULL; i++) {
        json_t *v = json_object_get(x, keys[i]);
        if (v != NULL) {
            json_object_set(o, keys[i], v);
        }
    }
    return o;
}

/* print_json prints label and v compactly. */
static void print_json(const char *label, const json_t *v)
{
    char *text = xs_json_dump(v, 0);
    fprintf(stderr, "    %s: %.3000s\n", label, text != NULL ? text : "null");
    free(text);
}

/* print_writes prints every write of the workload to rec. */
static void print_writes(const chaos_world *w, int rec)
{
    const chaos_rec *c = &w->L.recs[rec];
    fprintf(stderr, "    the workload's record: %s %s, %s, made %s%s\n", chaos_ent_name(c->ent),
            c->marker[0] ? c->marker : "(seeded)", c->final ? "final" : "open",
            c->seeded ? "by the seed in Xero" : chaos_side_name(c->origin),
            c->uncertain ? " (reply lost)" : "");
    for (int i = 0; i < w->L.nwrites; i++) {
        const chaos_write *o = &w->L.writes[i];
        /* an invoice's payments move its amounts, status and UpdatedDateUTC: shown too */
        bool payment = w->L.recs[o->rec].ent == CE_PAYMENT && w->L.recs[o->rec].invoice == rec;
        if (o->rec != rec && !payment) {
            continue;
        }
        char at[XS_TIME_ISO_MAX];
        xs_time_format_iso(o->at_ms, at);
        fprintf(stderr, "    write #%d %s (%s) %s%s%s = \"%s\" at %s%s\n", o->seq,
                chaos_side_name(o->side), o->how, payment ? "of its payment " : "",
                payment ? w->L.recs[o->rec].marker : "", chaos_field_name(o->field), o->value, at,
                o->uncertain ? " (reply lost: may not have happened)" : "");
    }
}

/* grep_log prints the first and last lines of path naming id (at most LINES_PER_LOG). */
static void grep_log(const char *path, const char *id)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return;
    }
    static char line[LINE_MAX_LEN];
    char *keep[LINES_PER_LOG] = {0};
    long n = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strstr(line, id) == NULL) {
            continue;
        }
        int slot =
            n < LINES_PER_LOG / 2 ? (int)n : LINES_PER_LOG / 2 + (int)(n % (LINES_PER_LOG / 2));
        free(keep[slot]);
        keep[slot] = strndup(line, 400);
        n++;
    }
    fclose(f);
    if (n == 0) {
        return;
    }
    const char *base = strrchr(path, '/');
    fprintf(stderr, "    log %s: %ld lines name %s%s\n", base != NULL ? base + 1 : path, n, id,
            n > LINES_PER_LOG ? " (first and last shown)" : "");
    int half = LINES_PER_LOG / 2;
    for (int i = 0; i < LINES_PER_LOG; i++) {
        /* the second half is a ring: print it oldest first */
        int slot = i < half || n <= LINES_PER_LOG ? i : half + (int)((n - half + i - half) % half);
        if (keep[slot] != NULL) {
            fprintf(stderr, "      %s%s", keep[slot], strchr(keep[slot], '\n') ? "" : "\n");
        }
    }
    for (int i = 0; i < LINES_PER_LOG; i++) {
        free(keep[i]);
    }
}

/* print_logs greps every engine log for the ids. */
static void print_logs(chaos_world *w, const char *local_id, const char *xero_id)
{
    int n;
    char **logs = chaos_fleet_logs(w->fleet, &n);
    for (int i = 0; i < n; i++) {
        if (local_id != NULL && local_id[0] != '\0') {
            grep_log(logs[i], local_id);
        }
        if (xero_id != NULL && xero_id[0] != '\0') {
            grep_log(logs[i], xero_id);
        }
    }
}

void chaos_fail(chaos_world *w, const char *counter, int rec, const char *local_id,
                const char *xero_id, const json_t *l, const json_t *x, const char *fmt, ...)
{
    chaos_count(w, counter, 1);
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (w->printed >= w->opt.details) {
        fprintf(stderr, "chaos: FAIL [%s] %s\n", counter, msg);
        return;
    }
    w->printed++;
    fprintf(stderr, "chaos: FAIL [%s] %s\n", counter, msg);
    fprintf(stderr, "    ids: local %s, Xero %s\n", local_id != NULL ? local_id : "-",
            xero_id != NULL ? xero_id : "-");
    if (l != NULL) {
        print_json("local", l);
    }
    if (x != NULL) {
        json_t *b = xero_brief(x);
        print_json("Xero", b);
        json_decref(b);
    }
    if (rec >= 0) {
        print_writes(w, rec);
    }
    print_logs(w, local_id, xero_id);
}
