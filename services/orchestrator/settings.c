/*
 * settings.c: a connection's sync settings (sync.connections.settings): which entities sync,
 * the conflict policy and merge fallback per entity, the match keys per entity, "fill empty
 * fields only", the Xero Types a typed entity's pull is limited to, and the schedules. Stored as
 * given; read through the defaults here.
 *
 *   {"entities": ["contact"],
 *    "conflict_policy": {"contact": "last_write_wins"},
 *    "merge_fallback": {"contact": "last_write_wins"},
 *    "matching": {"contact": ["contact_number", "email", "name"]},
 *    "fill_empty_only": false,
 *    "types": {"account": ["BANK", "REVENUE"]},
 *    "edits": {"payment": "refuse"},
 *    "import": {"invoice": {"months": 12}},
 *    "files": {"folder": "Acme Uploads"},
 *    "xpm": {"enabled": true, "needs_documents": ["Waiting on Client"],
 *            "webhook_url": "https://app.example.com/hooks/xero-sync"},
 *    "schedule": {"full": {"enabled": true, "at": "02:00"},
 *                 "incremental": {"enabled": true, "every_minutes": 15}}}
 */
#include "settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xs/json.h"
#include "engine/sync.h"

static xs_err bad(char *field, char *why, const char *f, const char *fmt, const char *arg)
{
    snprintf(field, 128, "%.120s", f);
    snprintf(why, 256, fmt, arg);
    return XS_EINVAL;
}

/* parse_hhmm reads "HH:MM" into minutes after midnight. */
static bool parse_hhmm(const char *s, int *minutes)
{
    if (s == NULL || strlen(s) != 5 || s[2] != ':' || s[0] < '0' || s[0] > '2' || s[1] < '0' ||
        s[1] > '9' || s[3] < '0' || s[3] > '5' || s[4] < '0' || s[4] > '9') {
        return false;
    }
    int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h > 23) {
        return false;
    }
    *minutes = h * 60 + m;
    return true;
}

/* per_entity checks an object keyed by entity names with values checked by check. */
static xs_err per_entity(const json_t *v, const char *name, char *field, char *why,
                         xs_err (*check)(const xs_entity_info *e, const json_t *v, char *field,
                                         char *why, const char *path))
{
    if (!json_is_object(v)) {
        return bad(field, why, name, "%s must be an object keyed by entity", name);
    }
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x)
    {
        char path[160];
        snprintf(path, sizeof(path), "%s.%.64s", name, k);
        const xs_entity_info *e = xs_entity_find(k);
        if (e == NULL) {
            return bad(field, why, path, "unknown entity %s", k);
        }
        xs_err r = check(e, x, field, why, path);
        if (r != XS_OK) {
            return r;
        }
    }
    return XS_OK;
}

static xs_err check_policy(const xs_entity_info *e, const json_t *v, char *field, char *why,
                           const char *path)
{
    (void)e;
    xs_policy p;
    if (xs_policy_parse(xs_json_string_value(v, NULL), &p) != XS_OK) {
        return bad(field, why, path, "%s",
                   "must be last_write_wins, local_wins, xero_wins, manual or merge");
    }
    return XS_OK;
}

static xs_err check_fallback(const xs_entity_info *e, const json_t *v, char *field, char *why,
                             const char *path)
{
    xs_policy p;
    if (check_policy(e, v, field, why, path) != XS_OK ||
        (xs_policy_parse(xs_json_string_value(v, NULL), &p) == XS_OK && p == XS_POLICY_MERGE)) {
        return bad(field, why, path, "%s",
                   "must be last_write_wins, local_wins, xero_wins or manual (not merge)");
    }
    return XS_OK;
}

static xs_err check_matching(const xs_entity_info *e, const json_t *v, char *field, char *why,
                             const char *path)
{
    if (!json_is_array(v)) {
        return bad(field, why, path, "%s", "must be an array of match keys");
    }
    size_t i;
    json_t *k;
    json_array_foreach(v, i, k)
    {
        if (!xs_entity_match_key_valid(e, xs_json_string_value(k, NULL))) {
            return bad(field, why, path, "%s", "holds a key this entity cannot match on");
        }
    }
    return XS_OK;
}

static xs_err check_types(const xs_entity_info *e, const json_t *v, char *field, char *why,
                          const char *path)
{
    if (!e->typed) {
        return bad(field, why, path, "%s", "this entity has no types to filter on");
    }
    switch (xs_entity_types_check(v)) {
    case 1:
        return bad(field, why, path, "%s", "must be an array of 1 to 16 Xero Type names");
    case 2:
        return bad(field, why, path, "%s", "holds a name that is not a Xero Type (A-Z)");
    default:
        return XS_OK;
    }
}

static xs_err check_edits(const xs_entity_info *e, const json_t *v, char *field, char *why,
                          const char *path)
{
    if (!e->immutable) {
        return bad(field, why, path, "%s", "Xero edits this entity's records: no setting here");
    }
    const char *s = xs_json_string_value(v, NULL);
    if (s == NULL || (strcmp(s, "refuse") != 0 && strcmp(s, "recreate") != 0)) {
        return bad(field, why, path, "%s", "must be refuse or recreate");
    }
    return XS_OK;
}

static xs_err check_import(const xs_entity_info *e, const json_t *v, char *field, char *why,
                           const char *path)
{
    if (!e->two_phase) {
        return bad(field, why, path, "%s", "this entity has no two-phase import");
    }
    json_t *m = json_object_get(v, "months");
    if (!json_is_object(v) || json_object_size(v) != 1 || !json_is_integer(m) ||
        json_integer_value(m) < 1 || json_integer_value(m) > 240) {
        return bad(field, why, path, "%s",
                   "must be {\"months\": N}, N from 1 to 240 (the last N months, plus every "
                   "AUTHORISED record)");
    }
    return XS_OK;
}

/* check_text checks an optional text setting: a string of 1 to max bytes, no control
 * characters, not only spaces. */
static bool check_text(const json_t *v, size_t max)
{
    const char *s = xs_json_string_value(v, NULL);
    if (s == NULL || s[0] == '\0' || strlen(s) > max || strspn(s, " ") == strlen(s)) {
        return false;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            return false;
        }
    }
    return true;
}

/* check_files checks {"folder": name}: the Xero Files folder documents go into. */
static xs_err check_files(const json_t *v, char *field, char *why)
{
    if (!json_is_object(v)) {
        return bad(field, why, "files", "%s", "files must be an object: {\"folder\": name}");
    }
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x)
    {
        if (strcmp(k, "folder") != 0) {
            return bad(field, why, "files", "unknown setting files.%.64s", k);
        }
        if (!check_text(x, 100) || strpbrk(xs_json_string_value(x, NULL), "/\\") != NULL) {
            return bad(field, why, "files.folder", "%s",
                       "files.folder must be a folder name of 1 to 100 characters, without / "
                       "or \\ or control characters");
        }
    }
    return XS_OK;
}

/* check_xpm checks {"enabled", "needs_documents", "webhook_url"}: whether XPM jobs are
 * mirrored, which of their states mean "needs documents", and where job events are sent. */
static xs_err check_xpm(const json_t *v, char *field, char *why)
{
    if (!json_is_object(v)) {
        return bad(field, why, "xpm", "%s",
                   "xpm must be an object: {\"enabled\", \"needs_documents\", \"webhook_url\"}");
    }
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x)
    {
        if (strcmp(k, "enabled") == 0) {
            if (!json_is_boolean(x)) {
                return bad(field, why, "xpm.enabled", "%s", "xpm.enabled must be true or false");
            }
        } else if (strcmp(k, "needs_documents") == 0) {
            size_t i;
            json_t *st;
            bool ok = json_is_array(x) && json_array_size(x) <= 50;
            json_array_foreach(x, i, st)
            {
                ok = ok && check_text(st, 100);
            }
            if (!ok) {
                return bad(field, why, "xpm.needs_documents", "%s",
                           "xpm.needs_documents must be an array of at most 50 XPM job state "
                           "names, each 1 to 100 characters");
            }
        } else if (strcmp(k, "webhook_url") == 0) {
            const char *u = xs_json_string_value(x, NULL);
            if (!json_is_null(x) &&
                (!check_text(x, 2048) || strchr(u, ' ') != NULL ||
                 (strncmp(u, "https://", 8) != 0 && strncmp(u, "http://", 7) != 0))) {
                return bad(field, why, "xpm.webhook_url", "%s",
                           "xpm.webhook_url must be an http:// or https:// URL of at most 2048 "
                           "characters, or null for none");
            }
        } else {
            return bad(field, why, "xpm", "unknown setting xpm.%.64s", k);
        }
    }
    return XS_OK;
}

xs_err orch_settings_validate(const json_t *in, char *field, char *why)
{
    if (!json_is_object(in)) {
        return bad(field, why, "settings", "%s", "the settings must be a JSON object");
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)in, k, v)
    {
        xs_err e = XS_OK;
        if (strcmp(k, "entities") == 0) {
            if (!json_is_array(v)) {
                return bad(field, why, "entities", "%s", "entities must be an array of names");
            }
            size_t i;
            json_t *x;
            json_array_foreach(v, i, x)
            {
                const char *name = xs_json_string_value(x, NULL);
                if (xs_entity_find(name) == NULL) {
                    return bad(field, why, "entities", "unknown entity %s",
                               name != NULL ? name : "(not a string)");
                }
            }
        } else if (strcmp(k, "conflict_policy") == 0) {
            e = per_entity(v, k, field, why, check_policy);
        } else if (strcmp(k, "merge_fallback") == 0) {
            e = per_entity(v, k, field, why, check_fallback);
        } else if (strcmp(k, "matching") == 0) {
            e = per_entity(v, k, field, why, check_matching);
        } else if (strcmp(k, "types") == 0) {
            e = per_entity(v, k, field, why, check_types);
        } else if (strcmp(k, "edits") == 0) {
            e = per_entity(v, k, field, why, check_edits);
        } else if (strcmp(k, "import") == 0) {
            e = per_entity(v, k, field, why, check_import);
        } else if (strcmp(k, "files") == 0) {
            e = check_files(v, field, why);
        } else if (strcmp(k, "xpm") == 0) {
            e = check_xpm(v, field, why);
        } else if (strcmp(k, "fill_empty_only") == 0) {
            if (!json_is_boolean(v)) {
                return bad(field, why, k, "%s", "fill_empty_only must be true or false");
            }
        } else if (strcmp(k, "schedule") == 0) {
            if (!json_is_object(v)) {
                return bad(field, why, k, "%s", "schedule must be an object");
            }
            const char *sk;
            json_t *sv;
            json_object_foreach(v, sk, sv)
            {
                bool full = strcmp(sk, "full") == 0, inc = strcmp(sk, "incremental") == 0;
                char path[64];
                snprintf(path, sizeof(path), "schedule.%.32s", sk);
                if ((!full && !inc) || !json_is_object(sv)) {
                    return bad(field, why, path, "%s",
                               "schedule has objects full and incremental only");
                }
                json_t *en = json_object_get(sv, "enabled");
                if (en != NULL && !json_is_boolean(en)) {
                    return bad(field, why, path, "%s", "enabled must be true or false");
                }
                int minutes;
                json_t *at = json_object_get(sv, "at");
                if (full && at != NULL && !parse_hhmm(xs_json_string_value(at, NULL), &minutes)) {
                    return bad(field, why, "schedule.full.at", "%s", "at must be HH:MM (UTC)");
                }
                json_t *ev = json_object_get(sv, "every_minutes");
                if (inc && ev != NULL &&
                    (!json_is_integer(ev) || json_integer_value(ev) < 1 ||
                     json_integer_value(ev) > 10080)) {
                    return bad(field, why, "schedule.incremental.every_minutes", "%s",
                               "every_minutes must be a whole number from 1 to 10080");
                }
            }
        } else {
            return bad(field, why, k, "unknown setting %s", k);
        }
        if (e != XS_OK) {
            return e;
        }
    }
    return XS_OK;
}

json_t *orch_settings_merge(const json_t *stored, const json_t *in)
{
    json_t *out = json_is_object(stored) ? json_deep_copy(stored) : json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)in, k, v)
    {
        json_t *cur = json_object_get(out, k);
        if (json_is_object(v) && json_is_object(cur) && strcmp(k, "entities") != 0) {
            /* Per-entity and per-schedule objects merge one level down. */
            const char *k2;
            json_t *v2;
            json_object_foreach(v, k2, v2)
            {
                json_t *c2 = json_object_get(cur, k2);
                if (json_is_object(v2) && json_is_object(c2)) {
                    json_object_update(c2, v2);
                } else {
                    json_object_set(cur, k2, v2);
                }
            }
        } else {
            json_object_set(out, k, v);
        }
    }
    return out;
}

bool orch_settings_xpm_enabled(const json_t *settings)
{
    return json_is_true(json_object_get(json_object_get(settings, "xpm"), "enabled"));
}

bool orch_settings_entity_enabled(const json_t *settings, const char *entity)
{
    if (entity != NULL && strcmp(entity, "job") == 0 && !orch_settings_xpm_enabled(settings)) {
        return false; /* XPM's jobs only where the connection enabled XPM */
    }
    json_t *list = json_object_get(settings, "entities");
    if (!json_is_array(list)) {
        return xs_entity_find(entity) != NULL;
    }
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        const char *name = xs_json_string_value(v, NULL);
        if (name != NULL && strcmp(name, entity) == 0) {
            return true;
        }
    }
    return false;
}

json_t *orch_settings_for_step(const json_t *settings, const char *entity)
{
    const char *policy =
        xs_json_str_or(json_object_get(settings, "conflict_policy"), entity, "last_write_wins");
    const char *fallback =
        xs_json_str_or(json_object_get(settings, "merge_fallback"), entity, "last_write_wins");
    json_t *out =
        json_pack("{s:s, s:s, s:b}", "policy", policy, "fallback", fallback, "fill_empty_only",
                  json_is_true(json_object_get(settings, "fill_empty_only")));
    json_t *m = json_object_get(json_object_get(settings, "matching"), entity);
    if (json_is_array(m)) {
        json_object_set(out, "matching", m);
    }
    json_t *t = json_object_get(json_object_get(settings, "types"), entity);
    if (json_is_array(t)) {
        json_object_set(out, "types", t);
    }
    json_t *ed = json_object_get(json_object_get(settings, "edits"), entity);
    if (json_is_string(ed)) {
        json_object_set(out, "edits", ed);
    }
    /* The documents' folder, and XPM's settings, to the services of those entities. */
    json_t *own = strcmp(entity, "document") == 0 ? json_object_get(settings, "files")
                  : strcmp(entity, "job") == 0    ? json_object_get(settings, "xpm")
                                                  : NULL;
    if (json_is_object(own)) {
        json_object_set(out, strcmp(entity, "job") == 0 ? "xpm" : "files", own);
    }
    return out;
}

bool orch_settings_schedule(const json_t *settings, const char *kind, int64_t dflt_every_ms,
                            int dflt_at_minutes, int64_t *every_ms, int *at_minutes)
{
    json_t *s = json_object_get(json_object_get(settings, "schedule"), kind);
    json_t *en = json_object_get(s, "enabled");
    *every_ms = dflt_every_ms;
    *at_minutes = dflt_at_minutes;
    json_t *ev = json_object_get(s, "every_minutes");
    if (json_is_integer(ev)) {
        *every_ms = json_integer_value(ev) * 60000;
    }
    int m;
    if (parse_hhmm(xs_json_str_or(s, "at", NULL), &m)) {
        *at_minutes = m;
    }
    return en == NULL || json_is_true(en);
}

bool orch_settings_full_at_fixed(const json_t *settings)
{
    int m;
    return parse_hhmm(
        xs_json_str_or(json_object_get(json_object_get(settings, "schedule"), "full"), "at", NULL),
        &m);
}

bool orch_settings_parse_hhmm(const char *s, int *minutes)
{
    return parse_hhmm(s, minutes);
}
