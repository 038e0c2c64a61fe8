/*
 * chaos.h: the chaos suite, a hostile tester of the engine's first promise: it never
 * duplicates a record and never loses an edit.
 *
 * One run (`chaos --seed S --duration D --kills K`) starts PostgreSQL's fresh database, xero-sim
 * and the engine with two replicas of every domain service and of auth, connects an
 * organisation, seeds Xero, then for D seconds writes on both sides at once (REST and SQL
 * locally, the simulator's control API in Xero) on a few dozen hot records, starts runs of
 * every mode, SIGKILLs K engine processes at random moments (restarting each), and makes the
 * simulator inject every fault it knows. Then it settles (faults off, every process back, full
 * runs until one changes nothing) and checks, exactly, what README-level promises say:
 * duplicates, links both ways, the last write of every edited record, money to the cent, no
 * stuck run, no process that died unasked. It prints what broke and one JSON summary line,
 * and exits non-zero when any check failed.
 *
 * The files, one job each:
 *   main.c      options, the phases, the summary line
 *   fleet.c     the engine's processes: start, the killer thread, restarts, liveness
 *   faults.c    the one list of fault kinds, the probe, the fault weather, 429 storms
 *   ledger.c    the seeded PRNG, the records the workload knows and every write it made
 *   workload.c  seeding, the hot sets, the tick loop and runs
 *   writes.c    the writes themselves: local (REST, SQL) and Xero (control API)
 *   sides.c     reading both sides whole: the simulator's records, the local rows, mappings,
 *               conflicts, the call log
 *   checks.c    settling and the six checks
 *   report.c    a failure's evidence (ids, values, writes, log lines) and the counters
 *
 * Everything here is single-threaded except fleet.c's killer thread, which alone starts and
 * stops processes while the workload runs.
 */
#ifndef XS_CHAOS_H
#define XS_CHAOS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine.h"
#include "xs/clock.h"
#include "xs/money.h"

/* ------------------------------------------------------------------ records and writes */

typedef enum chaos_ent { CE_CONTACT = 0, CE_INVOICE = 1, CE_PAYMENT = 2, CE_N = 3 } chaos_ent;
typedef enum chaos_side { SIDE_LOCAL = 0, SIDE_XERO = 1 } chaos_side;

/* The fields the workload writes; CF_CREATE marks a record's creation. */
typedef enum chaos_field {
    CF_CREATE = 0,
    CF_EMAIL,     /* contact */
    CF_LAST_NAME, /* contact */
    CF_CSTATUS,   /* contact: ACTIVE / ARCHIVED */
    CF_REFERENCE, /* invoice */
    CF_DUE_DATE,  /* invoice, YYYY-MM-DD */
    CF_ISTATUS,   /* invoice: AUTHORISED, SUBMITTED, VOIDED, DELETED */
    CF_PSTATUS,   /* payment: DELETED */
    CF_N
} chaos_field;

/* Roles of a record in the workload. */
enum {
    ROLE_HOT = 1u << 0,        /* edited on both sides */
    ROLE_ARCHIVABLE = 1u << 1, /* contact: archived and restored (never given invoices) */
    ROLE_PAYER = 1u << 2,      /* contact: new invoices are made for it (never archived) */
    ROLE_PAYABLE = 1u << 3,    /* invoice: takes payments (never voided) */
    ROLE_VOIDABLE = 1u << 4,   /* invoice: AUTHORISED, unpaid, may be voided once */
    ROLE_DRAFT = 1u << 5,      /* invoice: DRAFT, may change status once */
};

typedef struct chaos_rec {
    chaos_ent ent;
    char marker[40]; /* the unique mark of a record the workload made; "" for seeded ones */
    char local_id[40], xero_id[40]; /* "" until known */
    chaos_side origin;
    bool seeded;
    unsigned roles;
    bool final;          /* a final status was written (void, delete): no more writes */
    bool status_written; /* invoices change status once, payments are deleted once */
    bool uncertain;      /* made by a call whose reply was lost: it may not exist */
    int64_t last_ms;     /* wall time of the last write to it */
    xs_money due;        /* payable invoice: what the workload may still pay of it */
    int invoice;         /* payment: its invoice's index, or -1 */
    char type[8];        /* invoice: ACCREC or ACCPAY */
} chaos_rec;

typedef struct chaos_write {
    int rec;
    int seq;
    chaos_side side;
    chaos_field field;
    char value[64];
    char how[8];    /* "rest", "sql", "sim" */
    int64_t at_ms;  /* when it was made: Xero's UpdatedDateUTC, the row's updated_at, or the
                       wall clock just after a REST reply */
    bool uncertain; /* its reply was lost: it may or may not have been applied */
} chaos_write;

typedef struct chaos_ledger {
    chaos_rec *recs;
    int nrecs, caprecs;
    chaos_write *writes;
    int nwrites, capwrites;
    int next_marker;
    json_t *counts; /* {side: {entity: {kind: n}}} */
} chaos_ledger;

/* ------------------------------------------------------------------ the world */

typedef struct chaos_opts {
    uint64_t seed;
    int duration_s;
    int kills;
    int tick_ms;
    int settle_rounds;
    int contacts, invoices, payments; /* seeded into Xero */
    int details;                      /* failures printed with their evidence, at most */
} chaos_opts;

typedef struct chaos_fleet chaos_fleet;
typedef struct chaos_faults chaos_faults;

typedef struct chaos_world {
    chaos_opts opt;
    xst_engine *e;
    char *org;
    char conn[40], tenant[40];
    chaos_fleet *fleet;
    chaos_faults *faults;
    chaos_ledger L;
    uint64_t rng; /* the workload's decisions */
    char bank_code[16];
    char sales_code[4][16], purchase_code[4][16];
    int nsales, npurchase;
    json_t *runs;    /* {"started": {mode: n}, "refused": {mode: n}} */
    json_t *results; /* the checks' counters, by name */
    int printed;     /* failures printed with evidence so far */
    bool converged;
    int settle_rounds;
} chaos_world;

/* ------------------------------------------------------------------ ledger.c */

/* chaos_rand is splitmix64 over *s; chaos_below draws from 0 to n-1 (0 when n <= 0). */
uint64_t chaos_rand(uint64_t *s);
int chaos_below(uint64_t r, int n);

/* chaos_ledger_init / fini make and free an empty ledger. */
void chaos_ledger_init(chaos_ledger *L);
void chaos_ledger_fini(chaos_ledger *L);

/* chaos_rec_add appends a record and returns its index (the pointer is borrowed until the
 * next add). chaos_marker writes the next unique marker of a kind ("C", "I", "P") for seed. */
int chaos_rec_add(chaos_ledger *L, const chaos_rec *r);
void chaos_marker(chaos_ledger *L, uint64_t seed, const char *kind, char out[40]);

/* chaos_write_add records a write (value copied) and counts it under side, entity and kind
 * ("create", "edit", "status", "delete"); returns its sequence number. */
int chaos_write_add(chaos_ledger *L, int rec, chaos_side side, chaos_field field, const char *value,
                    const char *how, int64_t at_ms, bool uncertain, const char *kind);

/* chaos_last_value is the value of the last write of field to rec (borrowed), or NULL. */
const char *chaos_last_value(const chaos_ledger *L, int rec, chaos_field field);

/* chaos_field_name, chaos_ent_name, chaos_side_name: names for output. */
const char *chaos_field_name(chaos_field f);
const char *chaos_ent_name(chaos_ent e);
const char *chaos_side_name(chaos_side s);

/* ------------------------------------------------------------------ fleet.c */

/* chaos_fleet_start starts xero-sim (sim_env), the orchestrator and two replicas of auth and
 * of each domain service, and waits until each domain has two live replicas. */
chaos_fleet *chaos_fleet_start(xst_engine *e, uint64_t seed, char *const sim_env[]);

/* chaos_fleet_unleash starts the killer thread: `kills` SIGKILLs spread over duration_ms at
 * seeded moments and targets, each victim restarted after a seeded pause; it also restarts
 * (and reports) any process that dies unasked. chaos_fleet_leash stops it. */
void chaos_fleet_unleash(chaos_fleet *f, int kills, int64_t duration_ms);
void chaos_fleet_leash(chaos_fleet *f);

/* chaos_fleet_restore restarts whatever is down and waits until every domain has two live
 * replicas; false (printed) when that does not happen. */
bool chaos_fleet_restore(chaos_fleet *f);

/* chaos_fleet_orch_up tells whether the orchestrator is running (not between a kill and its
 * restart). */
bool chaos_fleet_orch_up(chaos_fleet *f);

/* chaos_fleet_alive_check counts the processes the suite did not kill that are not running,
 * printing each. */
int chaos_fleet_alive_check(chaos_fleet *f);

/* chaos_fleet_logs lists the log files of every process ever started (borrowed; n out). */
char **chaos_fleet_logs(chaos_fleet *f, int *n);

/* chaos_fleet_counts: kills made, restarts made, unexpected deaths seen. */
void chaos_fleet_counts(chaos_fleet *f, int *kills, int *restarts, int *unexpected);

/* chaos_fleet_stop stops every process with SIGTERM (xst_engine_free) and returns how many
 * did not exit with 0; frees f and the engine. */
int chaos_fleet_stop(chaos_fleet *f);

/* ------------------------------------------------------------------ faults.c */

/* chaos_faults_new probes which fault kinds the running simulator accepts (printing a note
 * for each it refuses) and draws the weather for duration_ms from seed. */
chaos_faults *chaos_faults_new(xst_engine *e, uint64_t seed, int64_t duration_ms);

/* chaos_faults_weather applies the weather due at elapsed_ms (rates on or off, a 429 storm,
 * a script of one fault of each kind on writes); cheap when nothing changes. */
void chaos_faults_weather(chaos_faults *f, int64_t elapsed_ms);

/* chaos_faults_off turns every fault off: rates to 0, scripts dropped, limits restored. */
void chaos_faults_off(chaos_faults *f);

/* chaos_faults_summary adds "faults" (injected, by kind, from /_sim/stats), "faults_skipped",
 * "storms_429" and "rate_limited" to summary. */
void chaos_faults_summary(chaos_faults *f, json_t *summary);

/* chaos_fault_applied tells whether a call met with fault kind name changed Xero (the write
 * went through though the reply did not); false for unknown kinds. */
bool chaos_fault_applied(const char *name);

void chaos_faults_free(chaos_faults *f);

/* ------------------------------------------------------------------ workload.c */

/* chaos_setup seeds Xero, reads the chart, connects the organisation and waits for the
 * initial import; dies when it cannot. */
void chaos_setup(chaos_world *w);

/* chaos_workload runs the ticks for the duration, with the faults' weather. */
void chaos_workload(chaos_world *w);

/* chaos_run_start starts a run of mode ("full", "incremental", "push", or "entity" with
 * body's record) and counts it; the run's id (new) or NULL when refused. */
char *chaos_run_start(chaos_world *w, const char *mode, const char *entity_body);

/* chaos_sql_json runs sql, whose one result is JSON text, and returns it parsed (new), or
 * NULL when there is no row. */
json_t *chaos_sql_json(chaos_world *w, const char *sql, int n, const char *const *params);

/* ------------------------------------------------------------------ writes.c */

/* Each write picks its target with the draws r (four 64-bit values, always drawn, so the
 * same seed makes the same decisions whatever the timing) and returns false when it found
 * nothing to do. */
bool chaos_local_create(chaos_world *w, chaos_ent ent, const uint64_t r[4]);
bool chaos_local_edit(chaos_world *w, chaos_ent ent, const uint64_t r[4]);
bool chaos_local_status(chaos_world *w, chaos_ent ent, const uint64_t r[4]);
bool chaos_xero_create(chaos_world *w, chaos_ent ent, const uint64_t r[4]);
bool chaos_xero_edit(chaos_world *w, chaos_ent ent, const uint64_t r[4]);
bool chaos_xero_status(chaos_world *w, chaos_ent ent, const uint64_t r[4]);

/* chaos_pick returns the index of a record of ent with all of roles, not final, not written
 * in the last 100 ms, whose id on side is known (looked up in the mappings when not), chosen
 * by r; -1 when none. */
int chaos_pick(chaos_world *w, chaos_ent ent, unsigned roles, chaos_side side, uint64_t r);

/* chaos_resolve fills rec's missing ids from the mappings (or, for a record made by a call
 * whose reply was lost, from its marker); false when the id of side is still unknown. */
bool chaos_resolve(chaos_world *w, int rec, chaos_side side);

/* ------------------------------------------------------------------ sides.c */

/* Both sides, read whole after settling. Every map is keyed by id (local or Xero). */
typedef struct chaos_sides {
    json_t *xero[CE_N];  /* Xero id -> the simulator's record */
    json_t *local[CE_N]; /* local id -> {fields..., "xero_id": mapping or null} */
    json_t *maps[CE_N];  /* Xero id -> local id, from sync.mappings */
    json_t *conflicts;   /* local id -> [conflict...] */
    json_t *calls;       /* the simulator's call log for the tenant, oldest first (lazy) */
    json_t *steps;       /* idempotency key (47 chars) -> request body (lazy) */
} chaos_sides;

/* chaos_sides_read reads everything but the call log; dies when a side cannot be read. */
void chaos_sides_read(chaos_world *w, chaos_sides *s);
void chaos_sides_free(chaos_sides *s);

/* chaos_xero_value / chaos_local_value write field's value in a record of each side,
 * normalised so the two compare ("" for none). */
void chaos_xero_value(const json_t *x, chaos_field f, char out[64]);
void chaos_local_value(const json_t *l, chaos_field f, char out[64]);

/* chaos_in_window tells whether the engine's first request to ent's endpoint for the tenant
 * after at_ms that could have seen the record or changed it was a write (the documented
 * window: Xero has no conditional write); why says what came first. */
bool chaos_in_window(chaos_world *w, chaos_sides *s, chaos_ent ent, const char *xero_id,
                     int64_t at_ms, char why[256]);

/* ------------------------------------------------------------------ checks.c */

/* chaos_settle turns the faults off, brings every process back and runs full runs until one
 * changes nothing; false when it does not converge (printed). */
bool chaos_settle(chaos_world *w);

/* chaos_check runs the six checks, printing each failure, and fills w->results. */
void chaos_check(chaos_world *w);

/* ------------------------------------------------------------------ report.c */

/* chaos_fail counts one failure under counter (in w->results) and, while fewer than
 * opt.details were printed, prints title, the record's ids and values on both sides (l and x
 * may be NULL), the writes the workload made to it and the engine's log lines naming its
 * ids. rec may be -1 (a record the workload did not make). */
void chaos_fail(chaos_world *w, const char *counter, int rec, const char *local_id,
                const char *xero_id, const json_t *l, const json_t *x, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

/* chaos_count adds n to counter in w->results. */
void chaos_count(chaos_world *w, const char *counter, long n);

/* chaos_counter reads a counter of w->results (0 when absent). */
long chaos_counter(const chaos_world *w, const char *counter);

#endif
