/*
 * seed.h: realistic, deterministic records for an organisation (contacts, invoices with
 * their lines, payments, bank transactions).
 */
#ifndef XS_SIM_SEED_H
#define XS_SIM_SEED_H

#include "context.h"

typedef struct sim_seed_spec {
    uint64_t seed;
    uint32_t contacts, invoices, payments, banktx;
    xs_time now;
    int64_t span_days;
} sim_seed_spec;

/* sim__seed fills a tenant with realistic records (tenant write lock held). */
xs_err sim__seed(sim *s, sim_tenant *t, const sim_seed_spec *spec, json_t **report);

#endif
