/*
 * sim.h: xero-sim as a library. The `xero-sim` binary is a thin main over it; tests and the
 * benchmark run it in-process.
 *
 * xero-sim stands in for Xero's identity service (OAuth 2.0 authorize/token/revocation and
 * /connections), the Accounting API (Contacts, Invoices, Payments, Accounts,
 * BankTransactions), the Practice Manager API v3.1 (jobs, job states, clients) and webhooks,
 * with Xero's rate limits, faults on demand and a control API under /_sim. All state is in
 * memory. See sim/README.md.
 */
#ifndef XS_SIM_H
#define XS_SIM_H

#include <stdint.h>

#include "xs/config.h"
#include "xs/err.h"
#include "xs/log.h"

typedef struct sim sim;

/* sim_create builds a simulator from cfg (loaded for XS_PROC_SIM; borrowed, must outlive the
 * simulator) and starts serving HTTP on XS_SIM_ADDR:XS_SIM_PORT (port 0: a free port). log is
 * borrowed and may be NULL. XS_EIO when the address cannot be bound, XS_ECONFIG when a
 * variable's text is invalid (the reason is logged), XS_ENOMEM. */
xs_err sim_create(sim **out, const xs_config *cfg, xs_log *log);

/* sim_port returns the TCP port the simulator listens on. */
uint16_t sim_port(const sim *s);

/* sim_destroy stops serving (interrupting injected hangs), stops webhook delivery and frees
 * everything. NULL accepted. */
void sim_destroy(sim *s);

#endif
