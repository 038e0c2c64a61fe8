/*
 * control.h: the control API (/_sim): tenants, seeding, changes made as a Xero user,
 * identity, configuration, clock, faults, webhooks, statistics, reset. Not part of Xero.
 */
#ifndef XS_SIM_CONTROL_H
#define XS_SIM_CONTROL_H

#include "reply.h"

/* sim__h_control serves /_sim/<rest> (rest starts after "/_sim/"). */
void sim__h_control(sim_call *c, const char *rest);

#endif
