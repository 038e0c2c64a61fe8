/* keys.c: the token-sealing keys, and sealing values for PostgreSQL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

/* load_one reads one base64 key of text[0..n) into out. */
static xs_err load_one(const char *text, size_t n, xs_aead_key *out)
{
    char buf[128];
    if (n == 0 || n >= sizeof(buf)) {
        return XS_ECONFIG;
    }
    memcpy(buf, text, n);
    buf[n] = '\0';
    xs_err e = xs_aead_key_from_base64(buf, out);
    xs_crypto_wipe(buf, sizeof(buf));
    return e;
}

xs_err auth_keys_load(const xs_config *cfg, auth_keys *k, char *err)
{
    memset(k, 0, sizeof(*k));
    const char *cur = xs_config_str(cfg, "XS_TOKEN_KEY");
    if (cur == NULL || load_one(cur, strlen(cur), &k->current) != XS_OK) {
        snprintf(err, XS_CONFIG_ERR_MAX,
                 "XS_TOKEN_KEY: must be the base64 of exactly 32 bytes (make one with "
                 "`openssl rand -base64 32`)");
        return XS_ECONFIG;
    }
    const char *old = xs_config_str(cfg, "XS_TOKEN_OLD_KEYS");
    for (const char *p = old; p != NULL && *p != '\0';) {
        const char *end = strchr(p, ',');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        while (n > 0 && *p == ' ') {
            p++;
            n--;
        }
        while (n > 0 && p[n - 1] == ' ') {
            n--;
        }
        if (n > 0) {
            if (k->nold == AUTH_MAX_OLD_KEYS) {
                snprintf(err, XS_CONFIG_ERR_MAX, "XS_TOKEN_OLD_KEYS: at most %d keys",
                         AUTH_MAX_OLD_KEYS);
                return XS_ECONFIG;
            }
            if (load_one(p, n, &k->old[k->nold]) != XS_OK) {
                snprintf(err, XS_CONFIG_ERR_MAX,
                         "XS_TOKEN_OLD_KEYS: key %d is not the base64 of exactly 32 bytes",
                         k->nold + 1);
                return XS_ECONFIG;
            }
            k->nold++;
        }
        p = end != NULL ? end + 1 : NULL;
    }
    return XS_OK;
}

const xs_aead_key *auth_keys_find(const auth_keys *k, const char *id)
{
    if (id == NULL) {
        return NULL;
    }
    if (strcmp(k->current.id, id) == 0) {
        return &k->current;
    }
    for (int i = 0; i < k->nold; i++) {
        if (strcmp(k->old[i].id, id) == 0) {
            return &k->old[i];
        }
    }
    return NULL;
}

xs_err auth_keys_check(const auth_keys *k, xs_pg *pg, char *err)
{
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q0(pg, &r,
                        "SELECT key_id, count(*) FROM (SELECT key_id FROM sync.grants WHERE key_id "
                        "IS NOT NULL UNION ALL SELECT key_id FROM sync.oauth_states WHERE used_at "
                        "IS NULL AND expires_at > now()) k GROUP BY key_id ORDER BY key_id");
    if (e != XS_OK) {
        snprintf(err, XS_CONFIG_ERR_MAX, "cannot read the sealed tokens: %s", xs_pg_error(pg));
        return e;
    }
    char missing[200] = "";
    long long rows = 0;
    for (int i = 0; i < xs_pg_res_nrows(r); i++) {
        const char *id = xs_pg_res_get(r, i, 0);
        if (auth_keys_find(k, id) == NULL) {
            size_t n = strlen(missing);
            snprintf(missing + n, sizeof(missing) - n, "%s%s", n > 0 ? ", " : "", id);
            rows += atoll(xs_pg_res_get(r, i, 1));
        }
    }
    xs_pg_res_free(r);
    if (missing[0] != '\0') {
        snprintf(err, XS_CONFIG_ERR_MAX,
                 "XS_TOKEN_KEY: %lld stored token sets are sealed with key id %.120s, which is "
                 "neither XS_TOKEN_KEY (id %.16s) nor in XS_TOKEN_OLD_KEYS",
                 rows, missing, k->current.id);
        return XS_ECONFIG;
    }
    return XS_OK;
}

void auth_aad(char *buf, size_t cap, const char *kind, const char *id, const char *what)
{
    snprintf(buf, cap, "xs:%s:%s:%s", kind, id, what);
}

void auth_secret_free(char *s)
{
    if (s != NULL) {
        xs_crypto_wipe(s, strlen(s));
        free(s);
    }
}

xs_err auth_seal(const auth_keys *k, const char *pt, const char *aad, char **hex)
{
    uint8_t *ct = NULL;
    size_t n = 0;
    xs_err e = xs_aead_seal(&k->current, pt, strlen(pt), aad, strlen(aad), &ct, &n);
    if (e != XS_OK) {
        return e;
    }
    char *out = malloc(2 * n + 3);
    if (out == NULL) {
        free(ct);
        return XS_ENOMEM;
    }
    out[0] = '\\';
    out[1] = 'x';
    xs_hex_encode(ct, n, out + 2);
    free(ct);
    *hex = out;
    return XS_OK;
}

xs_err auth_open(const auth_keys *k, const char *key_id, const char *hex, const char *aad,
                 char **pt)
{
    const xs_aead_key *key = auth_keys_find(k, key_id);
    if (key == NULL || hex == NULL || hex[0] != '\\' || hex[1] != 'x') {
        return XS_ECRYPTO;
    }
    uint8_t *ct = NULL;
    size_t n = 0;
    if (xs_hex_decode(hex + 2, strlen(hex + 2), &ct, &n) != XS_OK) {
        return XS_ECRYPTO;
    }
    uint8_t *out = NULL;
    size_t outlen = 0;
    xs_err e = xs_aead_open(key, ct, n, aad, strlen(aad), &out, &outlen);
    free(ct);
    if (e != XS_OK) {
        return XS_ECRYPTO;
    }
    if (memchr(out, '\0', outlen) != NULL) {
        xs_crypto_wipe(out, outlen);
        free(out);
        return XS_ECRYPTO;
    }
    *pt = (char *)out;
    return XS_OK;
}
