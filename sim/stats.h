/*
 * stats.h: what the simulator saw: calls by endpoint and status, 429s by problem, faults,
 * idempotent replays, If-Modified-Since use, duplicate creations, and the call log. Owns the
 * counters and the log (under stats_mu).
 */
#ifndef XS_SIM_STATS_H
#define XS_SIM_STATS_H

#include "reply.h"

/* sim__stats_begin numbers a call. */
uint64_t sim__stats_begin(sim *s);
/* sim__stats_end records a finished call in the counters and the call log. */
void sim__stats_end(sim_call *c);
/* sim__stats_limited counts a 429 by its X-Rate-Limit-Problem. */
void sim__stats_limited(sim *s, const char *problem);
/* sim__stats_fault counts an injected fault. */
void sim__stats_fault(sim *s, sim_fault_kind k);
/* sim__stats_count counts one of "idem_replay", "idem_conflict", "ims_used", "ims_ignored". */
void sim__stats_count(sim *s, const char *what);
void sim__stats_dup(sim *s, const sim_dup *d);
/* sim__stats_json reports every counter, the duplicates of one tenant when only is not
 * NULL (new; world_lock held by the caller). */
json_t *sim__stats_json(sim *s, const sim_tenant *only);
/* sim__calls_json lists up to limit logged calls after sequence number since, of one tenant
 * when tenant is not NULL (new). */
json_t *sim__calls_json(sim *s, uint64_t since, size_t limit, const char *tenant);
/* sim__stats_reset zeroes the counters and empties the call log. */
void sim__stats_reset(sim *s);
/* sim__stats_init allocates the call log. */
xs_err sim__stats_init(sim *s);
/* sim__stats_fini frees what the statistics hold. */
void sim__stats_fini(sim *s);

#endif
