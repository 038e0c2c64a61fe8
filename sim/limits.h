/*
 * limits.h: Xero's rate limits: calls in flight per tenant, the minute and day windows per
 * tenant and the app's minute window; the 429 replies and the X-*-Remaining headers. Owns the
 * window counters (under lim_mu).
 */
#ifndef XS_SIM_LIMITS_H
#define XS_SIM_LIMITS_H

#include "reply.h"

/* sim__limits_acquire counts c against its tenant's and the app's limits. On a limit it
 * replies 429 with Retry-After and X-Rate-Limit-Problem and returns false. */
bool sim__limits_acquire(sim_call *c);
/* sim__limits_fault_429 replies 429 as the minute limit does (Retry-After to the end of the
 * tenant's minute window, or the app's for a call without a tenant; X-Rate-Limit-Problem
 * minute) for an injected 429, and takes back what acquiring the call counted: a refused call
 * counts against nothing. */
void sim__limits_fault_429(sim_call *c);
/* sim__limits_release ends an acquired call (in-flight count). */
void sim__limits_release(sim_call *c);
/* sim__limits_headers adds the three X-*-Remaining headers to the reply. */
void sim__limits_headers(sim_call *c);
/* sim__limits_reset clears every window and in-flight counter's maximum. */
void sim__limits_reset(sim *s);
/* sim__limits_json describes a tenant's windows: counts and the time left in each (new). */
json_t *sim__limits_json(sim *s, sim_tenant *t);
/* sim__tenant_phase sets a tenant's window phases from the seed. */
void sim__tenant_phase(sim *s, sim_tenant *t);

#endif
