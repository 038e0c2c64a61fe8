/*
 * main.c: `chaos [--seed N] [--duration S] [--kills K] [--tick MS] [--rounds R] [--contacts C]
 * [--invoices I] [--payments P] [--details D]`: one chaos run (see chaos.h), then one JSON
 * summary line on standard output; everything else goes to standard error. Exits 0 when
 * every check passed, 1 when any failed. Without options it is the run `make test` makes:
 * seed 1, 90 s of workload, 10 kills.
 *
 * It needs the test environment (ctest gives it: XS_TEST_PG_DIR, a running PostgreSQL
 * cluster, and XS_TEST_BINARY_DIR, the build); bench/chaos-soak sets both up itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chaos.h"
#include "xs/json.h"

static void usage(void)
{
    fprintf(stderr, "usage: chaos [--seed N] [--duration SECONDS] [--kills K] [--tick MS] "
                    "[--rounds R] [--contacts C] [--invoices I] [--payments P] [--details D]\n");
    exit(2);
}

static void parse(int argc, char **argv, chaos_opts *o)
{
    *o = (chaos_opts){.seed = 1,
                      .duration_s = 90,
                      .kills = 10,
                      .tick_ms = 150,
                      .settle_rounds = 6,
                      .contacts = 300,
                      .invoices = 400,
                      .payments = 150,
                      .details = 40};
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) {
            usage();
        }
        char *end;
        long long v = strtoll(argv[i + 1], &end, 10);
        if (*end != '\0' || v < 0) {
            usage();
        }
        const char *k = argv[i++];
        if (strcmp(k, "--seed") == 0) {
            o->seed = (uint64_t)v;
        } else if (strcmp(k, "--duration") == 0 && v > 0) {
            o->duration_s = (int)v;
        } else if (strcmp(k, "--kills") == 0) {
            o->kills = (int)v;
        } else if (strcmp(k, "--tick") == 0 && v >= 20) {
            o->tick_ms = (int)v;
        } else if (strcmp(k, "--rounds") == 0 && v > 0) {
            o->settle_rounds = (int)v;
        } else if (strcmp(k, "--contacts") == 0) {
            o->contacts = (int)v;
        } else if (strcmp(k, "--invoices") == 0) {
            o->invoices = (int)v;
        } else if (strcmp(k, "--payments") == 0) {
            o->payments = (int)v;
        } else if (strcmp(k, "--details") == 0) {
            o->details = (int)v;
        } else {
            usage();
        }
    }
}

/* start makes the engine: a migrated database, the simulator (its faults drawn from the
 * seed, Xero's limits with a minute of 10 s, a long call log), the fleet. */
static void start(chaos_world *w)
{
    static char seed[64], hang[] = "XS_SIM_HANG=4s";
    snprintf(seed, sizeof(seed), "XS_SIM_SEED=%llu", (unsigned long long)w->opt.seed);
    char *sim_env[] = {seed,
                       hang,
                       "XS_SIM_LATENCY=5ms",
                       "XS_SIM_LATENCY_JITTER=20ms",
                       "XS_SIM_LIMIT_MINUTE=120",
                       "XS_SIM_MINUTE_WINDOW=10s",
                       "XS_SIM_LIMIT_DAY=1000000",
                       "XS_SIM_CALL_LOG=1000000",
                       NULL};
    w->e = xst_engine_new("chaos");
    w->fleet = chaos_fleet_start(w->e, w->opt.seed, sim_env);
    w->faults = chaos_faults_new(w->e, w->opt.seed, (int64_t)w->opt.duration_s * 1000);
}

/* FAILING are the counters any of which above 0 fails the run. */
static const char *const FAILING[] = {
    "duplicates_xero",   "duplicates_local", "sim_duplicates", "unlinked_local",
    "unlinked_xero",     "mislinked",        "lost_updates",   "diverged",
    "amount_mismatches", "stuck_runs",       "outbox_pending", "unexpected_deaths",
    "unclean_stops",     "not_converged",    "not_restored",   NULL};

/* summary builds the summary line's object (new). */
static json_t *summary(chaos_world *w)
{
    int kills, restarts, unexpected;
    chaos_fleet_counts(w->fleet, &kills, &restarts, &unexpected);
    chaos_count(w, "unexpected_deaths", unexpected + chaos_fleet_alive_check(w->fleet));
    json_t *o = json_pack("{s:I,s:i,s:i,s:i}", "seed", (json_int_t)w->opt.seed, "duration",
                          w->opt.duration_s, "kills", kills, "restarts", restarts);
    json_object_set(o, "runs_started", json_object_get(w->runs, "started"));
    json_object_set(o, "runs_refused", json_object_get(w->runs, "refused"));
    json_object_set(o, "writes", w->L.counts);
    chaos_faults_summary(w->faults, o);
    const char *k;
    json_t *v;
    json_object_foreach(w->results, k, v)
    {
        if (strcmp(k, "settled_at") != 0) {
            json_object_set(o, k, v);
        }
    }
    json_object_set_new(o, "converged", json_boolean(w->converged));
    json_object_set_new(o, "settle_rounds", json_integer(w->settle_rounds));
    return o;
}

int main(int argc, char **argv)
{
    chaos_world w;
    memset(&w, 0, sizeof(w));
    parse(argc, argv, &w.opt);
    chaos_ledger_init(&w.L);
    w.rng = w.opt.seed;
    w.results = json_object();
    w.runs = json_pack("{s:{},s:{}}", "started", "refused");
    int64_t t0 = xst_now_ms();
    fprintf(stderr, "chaos: seed %llu, %d s of workload, %d kills\n",
            (unsigned long long)w.opt.seed, w.opt.duration_s, w.opt.kills);
    start(&w);
    chaos_setup(&w);
    chaos_workload(&w);
    fprintf(stderr, "chaos: workload done after %lld s: %d writes; settling\n",
            (long long)((xst_now_ms() - t0) / 1000), w.L.nwrites);
    chaos_settle(&w);
    chaos_check(&w);
    json_t *sum = summary(&w);
    chaos_faults_free(w.faults);
    int unclean = chaos_fleet_stop(w.fleet);
    json_object_set_new(sum, "unclean_stops", json_integer(unclean));
    chaos_count(&w, "unclean_stops", unclean);
    bool passed = true;
    for (int i = 0; FAILING[i] != NULL; i++) {
        passed = passed && chaos_counter(&w, FAILING[i]) == 0;
    }
    json_object_set_new(sum, "seconds", json_integer((xst_now_ms() - t0) / 1000));
    json_object_set_new(sum, "passed", json_boolean(passed));
    char *text = xs_json_dump(sum, 0);
    printf("%s\n", text);
    fflush(stdout);
    fprintf(stderr, "chaos: %s\n", passed ? "every check passed" : "FAILED (see above)");
    free(text);
    json_decref(sum);
    json_decref(w.results);
    json_decref(w.runs);
    chaos_ledger_fini(&w.L);
    free(w.org);
    return passed ? 0 : 1;
}
