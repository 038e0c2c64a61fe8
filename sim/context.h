/*
 * context.h: the simulator's one context (struct sim, made by sim_create): configuration read
 * at start, the live settings, the tenant list, the identity, limit, fault, statistics and
 * webhook state, and the simulator's clock and interruptible waits. Owns struct sim's layout;
 * the modules above own the state they keep in it.
 *
 * Concurrency: the HTTP server runs one thread per connection. Locks, always taken in this
 * order when more than one is held:
 *   sim.world_lock (rwlock: the tenant list; write only to add tenants or reset; writers are
 *                   preferred, so it is never taken recursively)
 *   sim_tenant.lock (rwlock: the tenant's records and indexes)
 *   sim.id_mu (identity: codes, grants, tokens, connections)
 *   sim.set_mu, sim.lim_mu, sim.fault_mu, sim.stats_mu, sim.idem_mu, webhook mutex (leaves)
 */
#ifndef XS_SIM_CONTEXT_H
#define XS_SIM_CONTEXT_H

#include <pthread.h>

#include "settings.h"
#include "sim.h"
#include "store.h"
#include "xs/config.h"
#include "xs/http.h"
#include "xs/log.h"

typedef struct sim_user {
    xs_uuid id;
    char ids[XS_UUID_STR];
    char email[256];
    char first[64], last[64];
} sim_user;

typedef struct sim_conn {
    xs_uuid id;
    xs_uuid tenant;
    xs_uuid auth_event;
    xs_time created, updated;
    struct sim_conn *next;
} sim_conn;

typedef struct sim_grant {
    uint64_t id;
    xs_uuid auth_event;
    char *scope;
    bool revoked;
    char *refresh_cur;  /* the current refresh token, or NULL (no offline_access) */
    char *refresh_prev; /* the token it replaced, usable inside the grace period */
    xs_time prev_rotated;
    xs_time cur_issued;
    xs_time cur_last_use; /* for the 60-day expiry of unused tokens */
    struct sim_grant *next;
} sim_grant;

typedef struct sim_access {
    sim_grant *grant;
    xs_time expires;
    xs_time issued;
} sim_access;

typedef struct sim_code {
    char *redirect_uri;
    char *scope;
    char *challenge;
    char *nonce;
    xs_uuid auth_event;
    xs_time expires;
    bool used;
} sim_code;

typedef struct sim_script {
    char method[12];
    char path[256]; /* prefix matched against the path ("*" any) */
    sim_fault_kind kind;
    int64_t times; /* remaining */
    int64_t skip;  /* matching requests to let through first */
    struct sim_script *next;
} sim_script;

/* One counter of calls by endpoint and status (stats.c). */
typedef struct sim_stat_ep {
    char key[80];
    int status;
    uint64_t n;
} sim_stat_ep;

/* Distinct (endpoint, status) counters kept; past this, new ones count under "other". */
#define SIM_STATS_EPS_MAX 512

typedef struct sim_logline {
    uint64_t seq;
    xs_time at;
    char method[8];
    char endpoint[64];
    char path[200];
    char tenant[XS_UUID_STR];
    char idem[48];
    int status;
    int32_t ms;
    int32_t latency_ms; /* injected latency drawn for the call */
    uint8_t fault;
    char problem[12];
} sim_logline;

typedef struct sim_dup {
    char tenant[XS_UUID_STR];
    sim_kind kind;
    char first[XS_UUID_STR], dup[XS_UUID_STR];
    uint64_t first_req, dup_req;
    xs_time at;
} sim_dup;

typedef struct sim_webhooks sim_webhooks;

struct sim {
    xs_log *log;
    xs_http_server *http;
    const xs_config *cfg;
    /* immutable after start */
    char addr[64];
    char public_url[SIM_URL_MAX];
    char client_id[256];
    char client_secret[256];
    char redirect_uris[4096]; /* comma separated */
    char scopes[2048];        /* allowed scopes, space separated */
    char app_name[128];
    int64_t call_log_cap;
    int64_t init_tenants, init_records, init_xpm_clients;
    uint8_t jwt_key[32];
    sim_user user;

    pthread_mutex_t set_mu;
    sim_settings set;
    int64_t clock_offset; /* under set_mu */

    pthread_rwlock_t world_lock;
    sim_tenant **tenants;
    size_t ntenants, captenants;
    sim_smap tenant_ids; /* tenant id (text) -> sim_tenant, the same tenants indexed */
    xs_uuid consent[64]; /* tenants the next authorisation connects; none: all */
    size_t nconsent;

    pthread_mutex_t id_mu;
    sim_smap codes;   /* code -> sim_code */
    sim_smap access;  /* access token -> sim_access */
    sim_smap refresh; /* refresh token -> sim_grant (current or previous) */
    sim_grant *grants;
    uint64_t next_grant;
    sim_conn *conns;       /* newest first */
    sim_smap conn_tenants; /* tenant id (text) -> its sim_conn in conns */

    pthread_mutex_t lim_mu;
    int64_t app_window, app_count, app_in_flight, app_max_in_flight;

    pthread_mutex_t fault_mu;
    sim_script *script;
    sim_counts occurrences; /* request fingerprint -> how often seen (faults, jitter) */

    pthread_mutex_t stats_mu;
    sim_smap eps; /* "<status> <endpoint>" -> sim_stat_ep */
    uint64_t calls_total, limited[4], faults[SIM_FAULT_NKINDS];
    uint64_t idem_replays, idem_conflicts, ims_ignored, ims_used;
    uint64_t dup_count[SIM_NKINDS];
    sim_dup *dups;
    size_t ndups, capdups;
    sim_logline *calls;
    uint64_t call_seq;

    pthread_mutex_t idem_mu;

    pthread_mutex_t hang_mu;
    pthread_cond_t hang_cv;
    uint64_t hang_gen;
    int resets; /* resets in progress: hangs starting meanwhile do not wait */
    bool stopping;

    sim_webhooks *wh;
    uint64_t req_seq; /* under stats_mu */
};

/* sim__now returns the simulator's clock: wall time plus the offset set through /_sim/clock. */
xs_time sim__now(sim *s);
/* sim__settings copies the current settings. */
void sim__settings(sim *s, sim_settings *out);
/* sim__tenant_find returns the tenant with id (borrowed; the caller holds world_lock). */
sim_tenant *sim__tenant_find(sim *s, const xs_uuid *id);
/* sim__hang waits up to ms or until the simulator stops or resets (at once while a reset is
 * in progress). */
void sim__hang(sim *s, int64_t ms);

#endif
