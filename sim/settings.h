/*
 * settings.h: what can change at run time (/_sim/config): the fault kinds and their names,
 * the settings record, and reading its start values from the configuration. Owns no state:
 * the live copy is the context's (sim.set under set_mu).
 */
#ifndef XS_SIM_SETTINGS_H
#define XS_SIM_SETTINGS_H

#include "util.h"
#include "xs/config.h"
#include "xs/log.h"

typedef enum sim_fault_kind {
    SIM_FAULT_NONE = 0,
    SIM_FAULT_500,         /* 500 before the request is applied */
    SIM_FAULT_503,         /* 503 before the request is applied */
    SIM_FAULT_HANG,        /* no reply for hang_ms, then the connection is closed */
    SIM_FAULT_RESET,       /* TCP reset before the request is applied */
    SIM_FAULT_TRUNCATED,   /* applied; the body is cut short and the connection closed */
    SIM_FAULT_GARBLED,     /* applied; the body bytes are corrupted */
    SIM_FAULT_LOST,        /* applied; the reply is lost (TCP reset) */
    SIM_FAULT_REVOKED,     /* the caller's grant is revoked; 401 (invalid_grant on /token) */
    SIM_FAULT_SLOW,        /* applied, but only after hang_ms (a write's key is held meanwhile) */
    SIM_FAULT_APPLIED_5XX, /* applied (its Idempotency-Key recorded), then a 504 from the gateway */
    SIM_FAULT_NIL_ID,      /* a write is not applied: 200, its items as sent with the nil id */
    SIM_FAULT_429,         /* a 429 as the rate limiter gives one, counting against nothing */
    SIM_FAULT_NKINDS
} sim_fault_kind;

/* The kinds' names, for messages that list them. */
#define SIM_FAULT_KIND_LIST                                                                        \
    "500, 503, hang, reset, truncated, garbled, lost, revoked, slow, applied_5xx, nil_id, 429"

/* sim__fault_name returns "500", "503", "hang", "reset", "truncated", "garbled", "lost",
 * "revoked", "slow", "applied_5xx", "nil_id", "429" (or "none"). */
const char *sim__fault_name(sim_fault_kind k);
/* sim__fault_parse reads a kind name; SIM_FAULT_NONE when unknown. */
sim_fault_kind sim__fault_parse(const char *name);

/* What can change at run time through /_sim/config. Copied whole under set_mu. */
typedef struct sim_settings {
    int64_t limit_concurrent, limit_minute, limit_day, limit_app_minute;
    int64_t minute_window_ms, day_window_ms;
    int64_t latency_ms, jitter_ms;
    uint32_t fault_ppm[SIM_FAULT_NKINDS]; /* probability per kind, in millionths */
    int64_t hang_ms;
    int64_t access_ttl_ms, refresh_grace_ms, refresh_ttl_ms, code_ttl_ms;
    int64_t idem_ttl_ms;
    int64_t max_body;
    int64_t files_max_size, files_name_max;
    char files_types[512]; /* ",ext,ext,...," lowercase, for a search of ",ext," */
    int64_t high_volume;
    bool serve_at_root;
    bool require_pkce;
    char webhook_url[SIM_URL_MAX];
    char webhook_key[SIM_KEY_MAX];
    bool webhook_require_itr;
    int64_t webhook_delay_ms, webhook_timeout_ms, webhook_retry_base_ms, webhook_retry_for_ms;
    int64_t webhook_batch_max;
    uint64_t seed;
} sim_settings;

/* sim__fault_rates_parse reads "500=0.01,hang=0.001" into ppm (kinds not named stay as
 * they are). XS_EINVAL with a reason in why (160 bytes) when malformed. */
xs_err sim__fault_rates_parse(const char *text, uint32_t ppm[SIM_FAULT_NKINDS], char *why);

/* sim__settings_from_config reads the settings' start values from the configuration (the
 * same at start and at every reset); XS_ECONFIG, logged, when a value is unusable. */
xs_err sim__settings_from_config(const xs_config *cfg, sim_settings *set, xs_log *log);

#endif
