/* hookout.c: see hookout.h. */
#include "xs/hookout.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xs/crypto.h"

struct xs_hookout {
    CURL *h;
    int64_t timeout_ms;
};

xs_err xs_hookout_create(xs_hookout **out, int64_t timeout_ms)
{
    /* curl_global_init is done once by the process (xero.c's handles do it too): calling it
     * again is counted, not repeated. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return XS_EHTTP;
    }
    xs_hookout *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return XS_ENOMEM;
    }
    h->h = curl_easy_init();
    if (h->h == NULL) {
        free(h);
        return XS_ENOMEM;
    }
    h->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
    *out = h;
    return XS_OK;
}

void xs_hookout_destroy(xs_hookout *h)
{
    if (h == NULL) {
        return;
    }
    curl_easy_cleanup(h->h);
    free(h);
}

xs_err xs_hookout_sign(const void *secret, size_t secretlen, const char *body, size_t len,
                       char *sig)
{
    uint8_t mac[XS_SHA256_LEN];
    xs_err e = xs_hmac_sha256(secret, secretlen, body, len, mac);
    if (e != XS_OK) {
        return e;
    }
    memcpy(sig, "sha256=", 7);
    xs_hex_encode(mac, sizeof(mac), sig + 7);
    return XS_OK;
}

/* discard drops the receiver's reply body: only its status counts. */
static size_t discard(char *data, size_t size, size_t n, void *arg)
{
    (void)data;
    (void)arg;
    return size * n;
}

xs_err xs_hookout_post(xs_hookout *h, const char *url, const void *secret, size_t secretlen,
                       const char *event_id, const char *body, size_t len, long *status, char *why)
{
    why[0] = '\0';
    if (strncasecmp(url, "https://", 8) != 0 && strncasecmp(url, "http://", 7) != 0) {
        snprintf(why, XS_HOOKOUT_ERROR_MAX, "the webhook URL is not http:// or https://");
        return XS_EINVAL;
    }
    char sig[XS_HOOKOUT_SIG_MAX + 48], id[96];
    memcpy(sig, "X-Xero-Sync-Signature: ", 23);
    xs_err e = xs_hookout_sign(secret, secretlen, body, len, sig + 23);
    if (e != XS_OK) {
        return e;
    }
    snprintf(id, sizeof(id), "X-Xero-Sync-Event-Id: %.64s", event_id);
    struct curl_slist *hdrs = NULL, *n = NULL;
    const char *lines[] = {"Content-Type: application/json", "Expect:", sig, id};
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        n = curl_slist_append(hdrs, lines[i]);
        if (n == NULL) {
            curl_slist_free_all(hdrs);
            return XS_ENOMEM;
        }
        hdrs = n;
    }
    CURL *c = h->h;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)h->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(hdrs);
    xs_crypto_wipe(sig, sizeof(sig));
    if (rc != CURLE_OK) {
        /* curl's message names the host or the failure, never a header. */
        snprintf(why, XS_HOOKOUT_ERROR_MAX, "%s", curl_easy_strerror(rc));
        return rc == CURLE_OPERATION_TIMEDOUT ? XS_ETIMEDOUT : XS_EHTTP;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    return XS_OK;
}
