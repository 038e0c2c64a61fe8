/* store.c: what a jobs pull writes (see jobs.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs.h"
#include "xs/json.h"

xs_err jobs_store_has_xpm_scope(xs_pg *pg, const char *conn, bool *ok)
{
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(
        pg, &r,
        "SELECT coalesce((SELECT g.scopes && ARRAY['practicemanager', 'practicemanager.read'] OR "
        "(g.scopes && ARRAY['practicemanager.job', 'practicemanager.job.read'] AND g.scopes && "
        "ARRAY['practicemanager.client', 'practicemanager.client.read']) FROM sync.connections c "
        "JOIN sync.grants g ON g.id = c.grant_id WHERE c.id = $1::uuid), false)",
        conn);
    if (e == XS_OK) {
        e = xs_pg_res_bool(r, 0, 0, ok);
    }
    xs_pg_res_free(r);
    return e;
}

xs_err jobs_store_clients_mark(xs_pg *pg, const char *conn, char *mark)
{
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(pg, &r,
                       "SELECT clients_modified_since FROM app.xpm_sync_state WHERE "
                       "connection_id = $1::uuid",
                       conn);
    mark[0] = '\0';
    if (e == XS_OK && xs_pg_res_nrows(r) > 0 && xs_pg_res_get(r, 0, 0) != NULL) {
        snprintf(mark, XS_TIME_ISO_MAX, "%s", xs_pg_res_get(r, 0, 0));
    }
    xs_pg_res_free(r);
    return e;
}

/* count_rows adds, for each row of r, one to counts[<its column col>]. */
static void count_rows(json_t *counts, const xs_pg_res *r, int col)
{
    for (int i = 0; i < xs_pg_res_nrows(r); i++) {
        const char *k = xs_pg_res_get(r, i, col);
        if (k != NULL) {
            step_count(counts, k, 1);
        }
    }
}

/* The clients of a page, each matched: a key counts only when exactly one local contact of the
 * organisation has it (e-mail as contacts are matched, lower case; then the normalised name).
 * The clients come in uuid order, so that two steps lock the same rows in the same order. */
static const char UPSERT_CLIENTS[] =
    "WITH c AS (SELECT DISTINCT ON (r.uuid) r.uuid, r.name, nullif(btrim(r.email), '') AS email "
    "FROM jsonb_to_recordset($3::jsonb) AS r(uuid text, name text, email text) "
    "WHERE r.uuid IS NOT NULL ORDER BY r.uuid), "
    "m AS (SELECT c.*, "
    "(SELECT array_agg(k.id) FROM app.contacts k WHERE k.organisation_id = $2::uuid "
    "AND c.email IS NOT NULL AND k.email_key = lower(c.email)) AS by_email, "
    "(SELECT array_agg(k.id) FROM app.contacts k WHERE k.organisation_id = $2::uuid "
    "AND k.name_key = sync.normalise_name(coalesce(c.name, ''))) AS by_name FROM c), "
    "d AS (SELECT m.*, CASE WHEN cardinality(by_email) = 1 THEN 'email' "
    "WHEN cardinality(by_name) = 1 THEN 'name' END AS key FROM m) "
    "INSERT INTO app.xpm_clients AS t (connection_id, organisation_id, xpm_uuid, name, email, "
    "contact_id, matched_by, unmatched_reason) "
    "SELECT $1::uuid, $2::uuid, d.uuid, coalesce(d.name, ''), d.email, "
    "CASE d.key WHEN 'email' THEN d.by_email[1] WHEN 'name' THEN d.by_name[1] END, d.key, "
    "CASE WHEN d.key IS NOT NULL THEN NULL WHEN cardinality(d.by_email) > 1 OR "
    "cardinality(d.by_name) > 1 THEN 'ambiguous' ELSE 'no_match' END FROM d ORDER BY d.uuid "
    "ON CONFLICT (connection_id, xpm_uuid) DO UPDATE SET name = EXCLUDED.name, "
    "email = EXCLUDED.email, contact_id = EXCLUDED.contact_id, matched_by = EXCLUDED.matched_by, "
    "unmatched_reason = EXCLUDED.unmatched_reason, updated_at = now() "
    "WHERE (t.name, t.email, t.contact_id, t.matched_by, t.unmatched_reason) IS DISTINCT FROM "
    "(EXCLUDED.name, EXCLUDED.email, EXCLUDED.contact_id, EXCLUDED.matched_by, "
    "EXCLUDED.unmatched_reason) "
    "RETURNING CASE WHEN xmax = 0 THEN 'created' ELSE 'updated' END, "
    "CASE WHEN contact_id IS NOT NULL THEN 'linked' END";

xs_err jobs_store_clients(xs_pg *pg, const jobs_scope *sc, const json_t *clients, const char *mark,
                          json_t *counts)
{
    xs_pg_res *r = NULL;
    const char *p[] = {sc->conn, sc->org};
    xs_err e = xs_pg_begin(pg);
    if (e == XS_OK) {
        e = step_exec_json(pg, &r, UPSERT_CLIENTS, 2, p, clients);
    }
    if (e == XS_OK) {
        count_rows(counts, r, 0);
        count_rows(counts, r, 1);
        /* The jobs of a client whose link changed follow it. */
        e = xs_pg_q(pg, NULL,
                    "UPDATE app.jobs j SET contact_id = c.contact_id, updated_at = now() FROM "
                    "app.xpm_clients c WHERE j.connection_id = $1::uuid AND c.connection_id = "
                    "$1::uuid AND c.xpm_uuid = j.client_uuid AND j.contact_id IS DISTINCT FROM "
                    "c.contact_id",
                    sc->conn);
    }
    if (e == XS_OK) {
        e = xs_pg_q(pg, NULL,
                    "INSERT INTO app.xpm_sync_state (connection_id, clients_modified_since) "
                    "VALUES ($1::uuid, $2) ON CONFLICT (connection_id) DO UPDATE SET "
                    "clients_modified_since = EXCLUDED.clients_modified_since, updated_at = now()",
                    sc->conn, mark);
    }
    if (e == XS_OK) {
        e = xs_pg_commit(pg);
    }
    xs_pg_res_free(r);
    if (e != XS_OK) {
        xs_pg_rollback(pg);
    }
    return e;
}

xs_err jobs_store_jobs(xs_pg *pg, const jobs_scope *sc, const json_t *jobs, bool current,
                       json_t *counts, json_t *events)
{
    char *mapped = json_is_array(sc->mapped) ? xs_json_dump(sc->mapped, 0) : strdup("[]");
    if (mapped == NULL) {
        return XS_ENOMEM;
    }
    xs_pg_res *r = NULL;
    const char *p[] = {sc->conn, sc->org, mapped, sc->webhook ? "true" : "false",
                       current ? "true" : NULL};
    xs_err e = xs_pg_begin(pg);
    if (e == XS_OK) {
        /* In uuid order, so that two steps lock the same jobs in the same order. */
        e = step_exec_json(
            pg, &r,
            "SELECT app.xpm_job_apply($1::uuid, $2::uuid, j, ARRAY(SELECT "
            "jsonb_array_elements_text($3::jsonb)), $4::boolean, $5::boolean) FROM "
            "(SELECT j FROM jsonb_array_elements($6::jsonb) AS j ORDER BY j->>'uuid') AS s",
            5, p, jobs);
    }
    for (int i = 0; e == XS_OK && i < xs_pg_res_nrows(r); i++) {
        /* "<created|updated|unchanged>[ <event type>]" */
        const char *v = xs_pg_res_get(r, i, 0), *sp = strchr(v, ' ');
        char key[16];
        snprintf(key, sizeof(key), "%.*s", (int)(sp != NULL ? sp - v : (long)strlen(v)), v);
        step_count(counts, key, 1);
        if (sp != NULL) {
            step_count(events, sp + 1, 1);
        }
    }
    if (e == XS_OK && current) {
        /* What was current and is not any more is read again, one by one, to learn its
         * state (job.api/current lists only the jobs still open). */
        e = step_exec_json(pg, NULL,
                           "UPDATE app.jobs SET current = false, recheck = true, updated_at = "
                           "now() WHERE connection_id = $1::uuid AND current AND xpm_uuid <> ALL "
                           "(ARRAY(SELECT j->>'uuid' FROM jsonb_array_elements($2::jsonb) AS j))",
                           1, p, jobs);
    }
    if (e == XS_OK) {
        e = xs_pg_commit(pg);
    }
    xs_pg_res_free(r);
    free(mapped);
    if (e != XS_OK) {
        xs_pg_rollback(pg);
    }
    return e;
}

xs_err jobs_store_rechecks(xs_pg *pg, const char *conn, int64_t max, json_t **out)
{
    char lim[24];
    snprintf(lim, sizeof(lim), "%lld", (long long)max);
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(pg, &r,
                       "SELECT number FROM app.jobs WHERE connection_id = $1::uuid AND recheck "
                       "ORDER BY number LIMIT $2::bigint",
                       conn, lim);
    if (e != XS_OK) {
        return e;
    }
    json_t *a = json_array();
    for (int i = 0; a != NULL && i < xs_pg_res_nrows(r); i++) {
        json_array_append_new(a, json_string(xs_pg_res_get(r, i, 0)));
    }
    xs_pg_res_free(r);
    if (a == NULL) {
        return XS_ENOMEM;
    }
    *out = a;
    return XS_OK;
}

xs_err jobs_store_recheck_drop(xs_pg *pg, const char *conn, const char *number)
{
    return xs_pg_q(pg, NULL,
                   "UPDATE app.jobs SET recheck = false, current = false, updated_at = now() "
                   "WHERE connection_id = $1::uuid AND number = $2",
                   conn, number);
}
