/* settings.h: a connection's sync settings (settings.c), read through their defaults. Pure:
 * no database, no context. */
#ifndef ORCH_SETTINGS_H
#define ORCH_SETTINGS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "xs/err.h"

xs_err orch_settings_validate(const json_t *in, char *field, char *why);
json_t *orch_settings_merge(const json_t *stored, const json_t *in);
/* orch_settings_entity_enabled tells whether a connection syncs entity: the "entities" list
 * (all when absent), and for "job" also xpm.enabled. */
bool orch_settings_entity_enabled(const json_t *settings, const char *entity);
/* orch_settings_xpm_enabled tells whether the connection mirrors XPM's jobs (xpm.enabled). */
bool orch_settings_xpm_enabled(const json_t *settings);
json_t *orch_settings_for_step(const json_t *settings, const char *entity);
bool orch_settings_schedule(const json_t *settings, const char *kind, int64_t dflt_every_ms,
                            int dflt_at_minutes, int64_t *every_ms, int *at_minutes);
/* orch_settings_full_at_fixed tells whether the connection fixes the time of its daily full run
 * (schedule.full.at): then it is not spread over XS_SCHEDULE_FULL_WINDOW. */
bool orch_settings_full_at_fixed(const json_t *settings);
bool orch_settings_parse_hhmm(const char *s, int *minutes);

#endif
