/*
 * faults.h: injected faults and latency: by rate (deterministic under the seed) and by
 * script. Owns the script and the request occurrence counts (under fault_mu). The faults that
 * act on the connection are carried out by server.c.
 */
#ifndef XS_SIM_FAULTS_H
#define XS_SIM_FAULTS_H

#include "reply.h"

/* sim__fault_pick decides the fault for this call (scripted first, then by rate,
 * deterministic under the seed) and counts it in the statistics, except nil_id, which the
 * caller counts (sim__stats_fault) only when the call is a write it can act on. */
sim_fault_kind sim__fault_pick(sim_call *c, const char *body, size_t len, bool accounting);
/* sim__latency sleeps the configured latency plus deterministic jitter for this call. */
void sim__latency(sim_call *c, const char *body, size_t len);
/* sim__faults_script_add appends script entries from JSON; XS_EINVAL with why (256 bytes). */
xs_err sim__faults_script_add(sim *s, const json_t *script, char *why);
/* sim__faults_json lists the scripted faults still to come (new). */
json_t *sim__faults_json(sim *s);
/* sim__faults_reset drops the script and the request occurrence counts. */
void sim__faults_reset(sim *s);

#endif
