/*
 * xpmapi.h: the Xero Practice Manager API v3.1 (JSON) under /practicemanager/v3.1, the
 * read-only part the engine uses: job.api (current, list, get, client), jobstate.api/list,
 * client.api (list, get). Every call passes the Accounting API's order: bearer token, tenant,
 * scopes, rate limits (the tenant's and the app's, the same counters), injected faults and
 * latency, then the request. Owns no state: the data is xpm.h's.
 */
#ifndef XS_SIM_XPMAPI_H
#define XS_SIM_XPMAPI_H

#include "reply.h"

/* The XPM API's path prefix (Xero serves it at https://api.xero.com/practicemanager/). */
#define SIM_XPM_PREFIX "/practicemanager/v3.1"

/* sim__h_xpm serves SIM_XPM_PREFIX<rest> (world_lock held for reading by the caller). */
void sim__h_xpm(sim_call *c, const char *rest);

#endif
