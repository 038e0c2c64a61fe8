/*
 * hookout.h: HTTP POSTs to the host application's webhook receiver, over libcurl. The only
 * module that speaks HTTP to the host application (an external peer like Xero, behind its
 * own module: xero.h is Xero's).
 *
 * A delivery is one POST of a JSON body, signed: X-Xero-Sync-Signature is
 * "sha256=" and the lower-case hex HMAC-SHA256 of the raw body under the shared secret, so
 * the receiver can check the body came from us unchanged; X-Xero-Sync-Event-Id names the
 * event, so it can drop a redelivery. Neither the secret nor the body is ever logged.
 */
#ifndef XS_HOOKOUT_H
#define XS_HOOKOUT_H

#include <stddef.h>
#include <stdint.h>

#include "xs/err.h"

#define XS_HOOKOUT_ERROR_MAX 256
#define XS_HOOKOUT_SIG_MAX   72 /* "sha256=" and 64 hex digits */

typedef struct xs_hookout xs_hookout;

/* xs_hookout_create makes a sender (new; xs_hookout_destroy) for one thread; each POST takes
 * at most timeout_ms (connection included). */
xs_err xs_hookout_create(xs_hookout **out, int64_t timeout_ms);

/* xs_hookout_destroy frees h; NULL accepted. */
void xs_hookout_destroy(xs_hookout *h);

/* xs_hookout_sign writes "sha256=<hex>" of body under secret (secretlen bytes) into sig
 * (XS_HOOKOUT_SIG_MAX bytes). */
xs_err xs_hookout_sign(const void *secret, size_t secretlen, const char *body, size_t len,
                       char *sig);

/* xs_hookout_post POSTs body (len bytes, JSON) to url, signed under secret, with event_id in
 * X-Xero-Sync-Event-Id. XS_OK when a reply came: *status is its HTTP status (the caller
 * decides; 2xx is delivered). Otherwise XS_ETIMEDOUT or XS_EHTTP (no complete reply) or
 * XS_EINVAL (a URL that is not http:// or https://), with why (XS_HOOKOUT_ERROR_MAX bytes)
 * saying what happened, never the secret. */
xs_err xs_hookout_post(xs_hookout *h, const char *url, const void *secret, size_t secretlen,
                       const char *event_id, const char *body, size_t len, long *status, char *why);

#endif
