/*
 * world.h: the tenant list and its life: adding an organisation, creating the configured
 * ones, and resetting the whole simulator to its state at start. Takes world_lock for
 * writing only as stated.
 */
#ifndef XS_SIM_WORLD_H
#define XS_SIM_WORLD_H

#include "context.h"

/* sim__tenant_add creates a tenant (world_lock held for writing by the caller). */
xs_err sim__tenant_add(sim *s, const xs_uuid *id, const char *name, const char *currency,
                       sim_tenant **out);
/* sim__reset returns the simulator to its state at start (configuration, tenants, seeding).
 * It wakes injected hangs and latency sleeps first, and hangs that start while it runs do
 * not wait, so none can hold the world lock it needs. */
xs_err sim__reset(sim *s);
/* sim__tenants_start creates the configured organisations, seeded as configured (world_lock
 * held for writing by the caller). */
xs_err sim__tenants_start(sim *s);

#endif
