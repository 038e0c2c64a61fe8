/* audit.c: sync.api_calls (see audit.h). */
#include "xs/audit.h"

#include <inttypes.h>
#include <stdio.h>

/* num writes v into buf, or returns NULL for an absent (-1) value. */
static const char *num(int64_t v, char *buf, size_t cap)
{
    if (v < 0) {
        return NULL;
    }
    snprintf(buf, cap, "%" PRId64, v);
    return buf;
}

xs_err xs_audit_call(xs_pg *pg, const xs_audit_ctx *who, const xs_xero_call *call)
{
    static const xs_audit_ctx none = {0};
    if (who == NULL) {
        who = &none;
    }
    char step[24], status[24], dur[24], minr[24], dayr[24], appr[24], retry[24];
    const char *params[] = {
        who->connection_id,
        who->tenant_id,
        who->run_id,
        num(who->step_id > 0 ? who->step_id : -1, step, sizeof(step)),
        call->method[0] != '\0' ? call->method : "GET",
        call->path,
        num(call->status > 0 ? call->status : -1, status, sizeof(status)),
        num(call->duration_ms, dur, sizeof(dur)),
        num(call->rate.min_remaining, minr, sizeof(minr)),
        num(call->rate.day_remaining, dayr, sizeof(dayr)),
        num(call->rate.app_min_remaining, appr, sizeof(appr)),
        num(call->rate.retry_after_s, retry, sizeof(retry)),
        call->rate.problem[0] != '\0' ? call->rate.problem : NULL,
        call->error[0] != '\0' ? call->error : NULL,
    };
    return xs_pg_exec(pg, NULL,
                      "INSERT INTO sync.api_calls (connection_id, tenant_id, run_id, step_id, "
                      "method, path, status, duration_ms, min_remaining, day_remaining, "
                      "app_min_remaining, retry_after, rate_problem, error) VALUES ($1, $2, $3, "
                      "$4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                      (int)(sizeof(params) / sizeof(params[0])), params);
}
