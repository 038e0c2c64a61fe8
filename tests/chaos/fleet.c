/*
 * fleet.c: the engine's processes under fire. xero-sim, the orchestrator, and two replicas of
 * xs-auth, xs-contacts, xs-invoices and xs-payments, as real processes (the harness), with
 * the variables that make them quick to recover (short back-off, short Xero time-out, short
 * push delay). While the workload runs, one killer thread alone starts and stops processes:
 * at seeded moments it SIGKILLs a seeded victim (any engine process; never PostgreSQL or the
 * simulator) and restarts the same replica after a seeded pause; between kills it watches for
 * processes that died unasked, reports them and restarts them. Once calm (the workload over)
 * it only restarts; it lives until the engine is stopped, because a process it started gets
 * SIGTERM when the thread that started it ends (the harness's PR_SET_PDEATHSIG is per
 * thread). The moments are drawn from the seed; when they land relative to the engine's work
 * is of course up to timing.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chaos.h"

#define NMEMBERS 13
#define MAX_LOGS 512

/* The orchestrator's variables: runs recover within seconds, the scheduler runs (the initial
 * import, incremental runs), local changes go as the defaults send them (at once, at most every
 * 250 ms, three pushes of other records at once), the rate budget matches the simulator's limits
 * below (Xero's 60 calls a minute with a "minute" of 10 s: 12 a second), pulls read several pages.
 */
static char *const ORCH_ENV[] = {"XS_SCHEDULER=true",           "XS_SCHEDULE_INCREMENTAL_EVERY=20s",
                                 "XS_SCHEDULE_JITTER=2s",       "XS_STEP_BACKOFF=100ms",
                                 "XS_STEP_BACKOFF_MAX=2s",      "XS_STEP_MAX_ATTEMPTS=12",
                                 "XS_PUSH_PARALLEL=3",          "XS_PUSH_POLL=2s",
                                 "XS_BUS_TIMEOUT=20s",          "XS_EXECUTORS=4",
                                 "XS_DB_POOL_SIZE=6",           "XS_BUDGET_TENANT_MINUTE=120",
                                 "XS_BUDGET_MINUTE_WINDOW=10s", "XS_BUDGET_TENANT_DAY=1000000",
                                 "XS_BUDGET_MARGIN=200ms",      "XS_PULL_PAGE_SIZE=200",
                                 "XS_PULL_PAGES_PER_STEP=2",    NULL};

/* The services': a call to Xero gives up after 3 s (the simulator's hang lasts 4 s), two
 * workers a replica (two cores for everything). */
static char *const SVC_ENV[] = {"XS_XERO_TIMEOUT=3s", "XS_WORKERS=2", NULL};

typedef struct member {
    const char *service; /* NULL for the orchestrator */
    char replica[32];
    xst_proc *p;
    bool down; /* killed by us, not restarted yet */
} member;

struct chaos_fleet {
    xst_engine *e;
    pthread_mutex_t mu;
    member m[NMEMBERS];
    char logs[MAX_LOGS][512];
    int nlogs;
    pthread_t thread;
    bool running;
    atomic_bool calm; /* no more kills: only restarts */
    atomic_bool park; /* stop touching anything: the engine is being stopped */
    atomic_bool parked;
    int kills_planned;
    int64_t duration_ms;
    uint64_t rng;
    int kills, restarts, unexpected;
};

/* keep_log remembers p's log file (mu held or single-threaded). */
static void keep_log(chaos_fleet *f, const xst_proc *p)
{
    if (f->nlogs < MAX_LOGS) {
        snprintf(f->logs[f->nlogs++], sizeof(f->logs[0]), "%s", p->log_path);
    }
}

/* start_member starts m (the orchestrator waits for /health; a service is live once it
 * heartbeats, which chaos_fleet_restore waits for). */
static void start_member(chaos_fleet *f, member *m)
{
    xst_proc *p = m->service == NULL
                      ? xst_engine_start_orchestrator(f->e, ORCH_ENV)
                      : xst_engine_start_service(f->e, m->service, m->replica, SVC_ENV);
    pthread_mutex_lock(&f->mu);
    m->p = p;
    m->down = false;
    keep_log(f, p);
    pthread_mutex_unlock(&f->mu);
}

chaos_fleet *chaos_fleet_start(xst_engine *e, uint64_t seed, char *const sim_env[])
{
    chaos_fleet *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        xst_die("out of memory");
    }
    f->e = e;
    f->rng = seed ^ UINT64_C(0x6b696c6c);
    pthread_mutex_init(&f->mu, NULL);
    atomic_init(&f->calm, false);
    atomic_init(&f->park, false);
    atomic_init(&f->parked, false);
    xst_engine_start_sim(e, sim_env);
    static const char *const services[] = {"auth",     "contacts", "invoices",
                                           "payments", "files",    "jobs"};
    f->m[0].service = NULL;
    snprintf(f->m[0].replica, sizeof(f->m[0].replica), "orchestrator");
    for (int i = 0; i < NMEMBERS - 1; i++) {
        member *m = &f->m[1 + i];
        m->service = services[i / 2];
        snprintf(m->replica, sizeof(m->replica), "%s-%d", m->service, 1 + i % 2);
    }
    for (int i = 0; i < NMEMBERS; i++) {
        start_member(f, &f->m[i]);
    }
    if (!chaos_fleet_restore(f)) {
        xst_die("the engine did not come up");
    }
    return f;
}

/* describe writes how p ended. */
static void describe(const xst_proc *p, char out[96])
{
    if (WIFEXITED(p->status)) {
        snprintf(out, 96, "exited with %d", WEXITSTATUS(p->status));
    } else if (WIFSIGNALED(p->status)) {
        snprintf(out, 96, "killed by signal %d", WTERMSIG(p->status));
    } else {
        snprintf(out, 96, "status %d", p->status);
    }
}

/* print_tail prints the last lines of a log file (about 3 KB). */
static void print_tail(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        return;
    }
    char buf[3073];
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, size > 3072 ? size - 3072 : 0, SEEK_SET);
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    fprintf(stderr, "----- last lines of %s -----\n%s\n-----\n", path, buf);
}

/* bury removes a dead member's process from the engine and frees it. */
static void bury(chaos_fleet *f, member *m)
{
    pthread_mutex_lock(&f->mu);
    xst_proc *p = m->p;
    m->p = NULL;
    m->down = true;
    pthread_mutex_unlock(&f->mu);
    xst_engine_forget(f->e, p);
    xst_proc_free(p);
}

/* watch reports every member that died unasked and restarts it; once calm, it also restarts
 * the members killed and not restarted yet. */
static void watch(chaos_fleet *f)
{
    for (int i = 0; i < NMEMBERS; i++) {
        member *m = &f->m[i];
        pthread_mutex_lock(&f->mu);
        bool dead = !m->down && m->p != NULL && !xst_alive(m->p);
        bool restart = dead || (m->down && atomic_load(&f->calm));
        if (dead) {
            char how[96];
            describe(m->p, how);
            fprintf(stderr, "chaos: UNEXPECTED DEATH: %s (pid %d) %s without being killed\n",
                    m->replica, (int)m->p->pid, how);
            print_tail(m->p->log_path);
            f->unexpected++;
        }
        pthread_mutex_unlock(&f->mu);
        if (dead) {
            bury(f, m);
        }
        if (restart) {
            start_member(f, m);
            f->restarts++;
        }
    }
}

/* nap sleeps until the monotonic time `until`, watching for deaths; false once calm. */
static bool nap(chaos_fleet *f, int64_t until)
{
    while (xst_now_ms() < until) {
        if (atomic_load(&f->calm)) {
            return false;
        }
        watch(f);
        usleep(50000);
    }
    return !atomic_load(&f->calm);
}

static void *killer(void *arg)
{
    chaos_fleet *f = arg;
    int64_t t0 = xst_now_ms();
    int64_t slot = f->kills_planned > 0 ? f->duration_ms / f->kills_planned : 0;
    for (int i = 0; i < f->kills_planned; i++) {
        uint64_t r_at = chaos_rand(&f->rng), r_who = chaos_rand(&f->rng);
        uint64_t r_pause = chaos_rand(&f->rng);
        if (!nap(f, t0 + i * slot + chaos_below(r_at, (int)slot))) {
            break;
        }
        member *m = &f->m[chaos_below(r_who, NMEMBERS)];
        pthread_mutex_lock(&f->mu);
        bool up = !m->down && m->p != NULL;
        if (up) {
            fprintf(stderr, "chaos: t=%llds kill -9 %s (pid %d)\n",
                    (long long)((xst_now_ms() - t0) / 1000), m->replica, (int)m->p->pid);
            xst_kill9(m->p);
        }
        pthread_mutex_unlock(&f->mu);
        if (!up) {
            continue;
        }
        bury(f, m);
        f->kills++;
        nap(f, xst_now_ms() + 200 + chaos_below(r_pause, 2800));
        start_member(f, m);
        f->restarts++;
    }
    /* Calm: only restarts. The thread lives until the engine is stopped, since a process it
     * started gets SIGTERM when it ends (the harness's PR_SET_PDEATHSIG is per thread). */
    while (!atomic_load(&f->park)) {
        watch(f);
        usleep(100000);
    }
    atomic_store(&f->parked, true);
    for (;;) {
        pause();
    }
    return NULL;
}

void chaos_fleet_unleash(chaos_fleet *f, int kills, int64_t duration_ms)
{
    f->kills_planned = kills;
    f->duration_ms = duration_ms;
    if (pthread_create(&f->thread, NULL, killer, f) != 0) {
        xst_die("cannot start the killer thread");
    }
    pthread_detach(f->thread);
    f->running = true;
}

void chaos_fleet_leash(chaos_fleet *f)
{
    atomic_store(&f->calm, true);
}

/* all_up tells whether every member runs (not killed and waiting for its restart). */
static bool all_up(chaos_fleet *f)
{
    bool up = true;
    pthread_mutex_lock(&f->mu);
    for (int i = 0; i < NMEMBERS; i++) {
        up = up && !f->m[i].down && f->m[i].p != NULL;
    }
    pthread_mutex_unlock(&f->mu);
    return up;
}

bool chaos_fleet_restore(chaos_fleet *f)
{
    int64_t end = xst_now_ms() + 60000;
    if (!f->running) {
        watch(f);
    }
    while (!all_up(f)) {
        if (xst_now_ms() > end) {
            fprintf(stderr, "chaos: the killed processes were not restarted within 60 s\n");
            return false;
        }
        usleep(50000);
    }
    static const char *const domains[] = {"auth",     "contacts", "invoices",
                                          "payments", "files",    "jobs"};
    for (int i = 0; i < 6; i++) {
        if (!xst_engine_wait_live(f->e, domains[i], 2, 60000)) {
            fprintf(stderr, "chaos: %s does not have two live replicas\n", domains[i]);
            return false;
        }
    }
    return true;
}

bool chaos_fleet_orch_up(chaos_fleet *f)
{
    pthread_mutex_lock(&f->mu);
    bool up = !f->m[0].down && f->m[0].p != NULL;
    pthread_mutex_unlock(&f->mu);
    return up;
}

int chaos_fleet_alive_check(chaos_fleet *f)
{
    int dead = 0;
    pthread_mutex_lock(&f->mu);
    for (int i = 0; i < NMEMBERS; i++) {
        member *m = &f->m[i];
        if (m->p == NULL || m->down || !xst_alive(m->p)) {
            char how[96] = "was never restarted";
            if (m->p != NULL) {
                describe(m->p, how);
            }
            fprintf(stderr, "chaos: %s is not running at the end: %s\n", m->replica, how);
            dead++;
        }
    }
    pthread_mutex_unlock(&f->mu);
    return dead;
}

char **chaos_fleet_logs(chaos_fleet *f, int *n)
{
    static char *list[MAX_LOGS];
    for (int i = 0; i < f->nlogs; i++) {
        list[i] = f->logs[i];
    }
    *n = f->nlogs;
    return list;
}

void chaos_fleet_counts(chaos_fleet *f, int *kills, int *restarts, int *unexpected)
{
    *kills = f->kills;
    *restarts = f->restarts;
    *unexpected = f->unexpected;
}

int chaos_fleet_stop(chaos_fleet *f)
{
    chaos_fleet_leash(f);
    if (f->running) {
        atomic_store(&f->park, true);
        while (!atomic_load(&f->parked)) {
            usleep(10000);
        }
    }
    int bad = xst_engine_free(f->e);
    pthread_mutex_destroy(&f->mu);
    free(f);
    return bad;
}
