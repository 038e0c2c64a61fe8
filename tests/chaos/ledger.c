/*
 * ledger.c: what the workload knows and did. The seeded PRNG (splitmix64: the same seed, the
 * same stream, on every machine), the records it made or chose (with their roles and ids on
 * each side), and every write it made, in the order it made them (the workload is one
 * thread, so that order is the chronological one), with the time each side stamped it.
 * Nothing here talks to a process.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chaos.h"
#include "harness.h"

uint64_t chaos_rand(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

int chaos_below(uint64_t r, int n)
{
    return n > 0 ? (int)(r % (uint64_t)n) : 0;
}

void chaos_ledger_init(chaos_ledger *L)
{
    memset(L, 0, sizeof(*L));
    L->counts = json_object();
}

void chaos_ledger_fini(chaos_ledger *L)
{
    free(L->recs);
    free(L->writes);
    json_decref(L->counts);
    memset(L, 0, sizeof(*L));
}

int chaos_rec_add(chaos_ledger *L, const chaos_rec *r)
{
    if (L->nrecs == L->caprecs) {
        L->caprecs = L->caprecs ? L->caprecs * 2 : 256;
        L->recs = realloc(L->recs, (size_t)L->caprecs * sizeof(*L->recs));
        if (L->recs == NULL) {
            xst_die("out of memory");
        }
    }
    L->recs[L->nrecs] = *r;
    return L->nrecs++;
}

void chaos_marker(chaos_ledger *L, uint64_t seed, const char *kind, char out[40])
{
    snprintf(out, 40, "CHX%llu-%s%05d", (unsigned long long)seed, kind, ++L->next_marker);
}

/* count_add adds one to counts[side][entity][kind]. */
static void count_add(json_t *counts, const char *side, const char *ent, const char *kind)
{
    json_t *s = json_object_get(counts, side);
    if (s == NULL) {
        json_object_set_new(counts, side, s = json_object());
    }
    json_t *e = json_object_get(s, ent);
    if (e == NULL) {
        json_object_set_new(s, ent, e = json_object());
    }
    json_t *k = json_object_get(e, kind);
    json_object_set_new(e, kind, json_integer(k != NULL ? json_integer_value(k) + 1 : 1));
}

int chaos_write_add(chaos_ledger *L, int rec, chaos_side side, chaos_field field, const char *value,
                    const char *how, int64_t at_ms, bool uncertain, const char *kind)
{
    if (L->nwrites == L->capwrites) {
        L->capwrites = L->capwrites ? L->capwrites * 2 : 1024;
        L->writes = realloc(L->writes, (size_t)L->capwrites * sizeof(*L->writes));
        if (L->writes == NULL) {
            xst_die("out of memory");
        }
    }
    chaos_write *wr = &L->writes[L->nwrites];
    memset(wr, 0, sizeof(*wr));
    wr->rec = rec;
    wr->seq = L->nwrites + 1;
    wr->side = side;
    wr->field = field;
    snprintf(wr->value, sizeof(wr->value), "%s", value != NULL ? value : "");
    snprintf(wr->how, sizeof(wr->how), "%s", how);
    wr->at_ms = at_ms;
    wr->uncertain = uncertain;
    L->recs[rec].last_ms = xs_clock_now();
    count_add(L->counts, chaos_side_name(side), chaos_ent_name(L->recs[rec].ent), kind);
    L->nwrites++;
    return wr->seq;
}

const char *chaos_last_value(const chaos_ledger *L, int rec, chaos_field field)
{
    for (int i = L->nwrites - 1; i >= 0; i--) {
        if (L->writes[i].rec == rec && L->writes[i].field == field) {
            return L->writes[i].value;
        }
    }
    return NULL;
}

const char *chaos_field_name(chaos_field f)
{
    static const char *const names[CF_N] = {"create",    "email",    "last_name", "status",
                                            "reference", "due_date", "status",    "status"};
    return f >= 0 && f < CF_N ? names[f] : "?";
}

const char *chaos_ent_name(chaos_ent e)
{
    static const char *const names[CE_N] = {"contact", "invoice", "payment"};
    return e >= 0 && e < CE_N ? names[e] : "?";
}

const char *chaos_side_name(chaos_side s)
{
    return s == SIDE_LOCAL ? "local" : "xero";
}
