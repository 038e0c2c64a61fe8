/* settings.c: fault kinds by name, fault rates, and the settings' start values read from the
 * configuration. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "settings.h"

/* ------------------------------------------------------------------ faults names */

static const char *const fault_names[SIM_FAULT_NKINDS] = {
    "none", "500",     "503",  "hang",        "reset",  "truncated", "garbled",
    "lost", "revoked", "slow", "applied_5xx", "nil_id", "429"};

const char *sim__fault_name(sim_fault_kind k)
{
    return (unsigned)k < SIM_FAULT_NKINDS ? fault_names[k] : "none";
}

sim_fault_kind sim__fault_parse(const char *name)
{
    for (int i = 1; i < SIM_FAULT_NKINDS; i++) {
        if (strcmp(name, fault_names[i]) == 0) {
            return (sim_fault_kind)i;
        }
    }
    return SIM_FAULT_NONE;
}

xs_err sim__fault_rates_parse(const char *text, uint32_t ppm[SIM_FAULT_NKINDS], char *why)
{
    uint32_t tmp[SIM_FAULT_NKINDS];
    memcpy(tmp, ppm, sizeof(tmp));
    const char *p = text;
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char item[64];
        if (n == 0 || n >= sizeof(item)) {
            snprintf(why, 160, "fault rates: bad item near \"%.20s\"", p);
            return XS_EINVAL;
        }
        memcpy(item, p, n);
        item[n] = '\0';
        char *eq = strchr(item, '=');
        if (eq == NULL) {
            eq = strchr(item, ':');
        }
        if (eq == NULL) {
            snprintf(why, 160, "fault rates: \"%s\" is not kind=probability", item);
            return XS_EINVAL;
        }
        *eq = '\0';
        sim_fault_kind k = sim__fault_parse(item);
        xs_money m;
        if (k == SIM_FAULT_NONE) {
            snprintf(why, 160, "fault rates: unknown kind \"%.20s\" (" SIM_FAULT_KIND_LIST ")",
                     item);
            return XS_EINVAL;
        }
        if (xs_money_parse(eq + 1, &m) != XS_OK || xs_money_is_negative(m) ||
            m.units > XS_MONEY_ONE) {
            snprintf(why, 160, "fault rates: %s must be a probability from 0 to 1, got \"%s\"",
                     item, eq + 1);
            return XS_EINVAL;
        }
        tmp[k] = (uint32_t)m.units; /* 10^6 scale = parts per million */
        p = end ? end + 1 : p + n;
    }
    uint64_t sum = 0;
    for (int i = 1; i < SIM_FAULT_NKINDS; i++) {
        sum += tmp[i];
    }
    if (sum > 1000000) {
        snprintf(why, 160, "fault rates: the probabilities add up to more than 1");
        return XS_EINVAL;
    }
    memcpy(ppm, tmp, sizeof(tmp));
    return XS_OK;
}

/* files_types reads XS_SIM_FILES_TYPES ("pdf, PNG,jpg") into out as ",pdf,png,jpg,":
 * lowercase, each 1 to 10 letters or digits, a leading dot allowed. XS_EINVAL with why (200
 * bytes) otherwise. */
static xs_err files_types(const char *text, char out[512], char *why)
{
    size_t o = 0;
    out[o++] = ',';
    const char *p = text != NULL ? text : "";
    for (;;) {
        while (*p == ' ') {
            p++;
        }
        if (*p == '.') {
            p++;
        }
        size_t n = 0;
        while (isalnum((unsigned char)p[n])) {
            n++;
        }
        const char *q = p + n;
        while (*q == ' ') {
            q++;
        }
        if (n == 0 || n > 10 || (*q != ',' && *q != '\0') || o + n + 2 >= 512) {
            snprintf(why, 200,
                     "XS_SIM_FILES_TYPES: expected comma-separated extensions of 1 to 10 letters "
                     "or digits (e.g. \"pdf,png\"), got \"%.80s\"",
                     text != NULL ? text : "");
            return XS_EINVAL;
        }
        for (size_t i = 0; i < n; i++) {
            out[o++] = (char)tolower((unsigned char)p[i]);
        }
        out[o++] = ',';
        if (*q == '\0') {
            break;
        }
        p = q + 1;
    }
    out[o] = '\0';
    return XS_OK;
}

xs_err sim__settings_from_config(const xs_config *cfg, sim_settings *set, xs_log *log)
{
    memset(set, 0, sizeof(*set));
    set->limit_concurrent = xs_config_int(cfg, "XS_SIM_LIMIT_CONCURRENT");
    set->limit_minute = xs_config_int(cfg, "XS_SIM_LIMIT_MINUTE");
    set->limit_day = xs_config_int(cfg, "XS_SIM_LIMIT_DAY");
    set->limit_app_minute = xs_config_int(cfg, "XS_SIM_LIMIT_APP_MINUTE");
    set->minute_window_ms = xs_config_int(cfg, "XS_SIM_MINUTE_WINDOW");
    set->day_window_ms = xs_config_int(cfg, "XS_SIM_DAY_WINDOW");
    set->latency_ms = xs_config_int(cfg, "XS_SIM_LATENCY");
    set->jitter_ms = xs_config_int(cfg, "XS_SIM_LATENCY_JITTER");
    set->hang_ms = xs_config_int(cfg, "XS_SIM_HANG");
    set->access_ttl_ms = xs_config_int(cfg, "XS_SIM_ACCESS_TOKEN_TTL");
    set->refresh_grace_ms = xs_config_int(cfg, "XS_SIM_REFRESH_GRACE");
    set->refresh_ttl_ms = xs_config_int(cfg, "XS_SIM_REFRESH_TTL");
    set->code_ttl_ms = xs_config_int(cfg, "XS_SIM_CODE_TTL");
    set->idem_ttl_ms = xs_config_int(cfg, "XS_SIM_IDEMPOTENCY_TTL");
    set->max_body = xs_config_int(cfg, "XS_SIM_MAX_BODY");
    set->high_volume = xs_config_int(cfg, "XS_SIM_HIGH_VOLUME");
    set->serve_at_root = xs_config_bool(cfg, "XS_SIM_SERVE_AT_ROOT");
    set->require_pkce = xs_config_bool(cfg, "XS_SIM_REQUIRE_PKCE");
    set->webhook_require_itr = xs_config_bool(cfg, "XS_SIM_WEBHOOK_REQUIRE_ITR");
    set->webhook_delay_ms = xs_config_int(cfg, "XS_SIM_WEBHOOK_DELAY");
    set->webhook_timeout_ms = xs_config_int(cfg, "XS_SIM_WEBHOOK_TIMEOUT");
    set->webhook_retry_base_ms = xs_config_int(cfg, "XS_SIM_WEBHOOK_RETRY_BASE");
    set->webhook_retry_for_ms = xs_config_int(cfg, "XS_SIM_WEBHOOK_RETRY_FOR");
    set->webhook_batch_max = xs_config_int(cfg, "XS_SIM_WEBHOOK_BATCH");
    set->seed = (uint64_t)xs_config_int(cfg, "XS_SIM_SEED");
    const char *url = xs_config_str(cfg, "XS_SIM_WEBHOOK_URL");
    const char *key = xs_config_str(cfg, "XS_SIM_WEBHOOK_KEY");
    if ((url != NULL && strlen(url) >= sizeof(set->webhook_url)) ||
        (key != NULL && strlen(key) >= sizeof(set->webhook_key))) {
        xs_log_error(log, "config.invalid", "{s:s}", "error",
                     "XS_SIM_WEBHOOK_URL or XS_SIM_WEBHOOK_KEY is too long");
        return XS_ECONFIG;
    }
    snprintf(set->webhook_url, sizeof(set->webhook_url), "%s", url ? url : "");
    snprintf(set->webhook_key, sizeof(set->webhook_key), "%s", key ? key : "");
    set->files_max_size = xs_config_int(cfg, "XS_SIM_FILES_MAX_SIZE");
    set->files_name_max = xs_config_int(cfg, "XS_SIM_FILES_NAME_MAX");
    char twhy[200];
    if (files_types(xs_config_str(cfg, "XS_SIM_FILES_TYPES"), set->files_types, twhy) != XS_OK) {
        xs_log_error(log, "config.invalid", "{s:s}", "error", twhy);
        return XS_ECONFIG;
    }
    const char *faults = xs_config_str(cfg, "XS_SIM_FAULTS");
    if (faults != NULL) {
        char why[160];
        if (sim__fault_rates_parse(faults, set->fault_ppm, why) != XS_OK) {
            char msg[200];
            snprintf(msg, sizeof(msg), "XS_SIM_FAULTS: %s", why);
            xs_log_error(log, "config.invalid", "{s:s}", "error", msg);
            return XS_ECONFIG;
        }
    }
    return XS_OK;
}
