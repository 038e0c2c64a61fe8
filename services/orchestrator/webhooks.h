/*
 * webhooks.h: the receiver of Xero's webhooks, POST /v1/webhooks/xero (public: Xero signs
 * instead of sending an API key).
 *
 * A delivery is taken only when x-xero-signature is the base64 HMAC-SHA256 of the exact body
 * bytes under the Xero app's webhook key (XS_XERO_WEBHOOK_KEY, or XS_XERO_WEBHOOK_KEY_PREVIOUS
 * during a rotation), compared in constant time; anything else is 401 with an empty body, as
 * Xero's intent-to-receive check requires. A signed delivery's events are stored in
 * sync.webhook_events in one statement, each once (a redelivered event is a no-op), before the
 * answer: 200 with an empty body once they are stored; 503 when they cannot be (Xero sends the
 * batch again); 400 for a signed body that is not a batch of events, with nothing stored. An
 * event of a tenant with no connection is kept as `ignored`, counted in the log. It owns the
 * keys' bytes; it makes no call to Xero and runs nothing: the events wait in the inbox.
 */
#ifndef ORCH_WEBHOOKS_H
#define ORCH_WEBHOOKS_H

#include "orch.h"

/* orch_webhook_keys_read reads the webhook keys from the configuration into o; XS_OK even when
 * none is set (every delivery is then refused). */
xs_err orch_webhook_keys_read(orch *o);

/* orch_webhook_keys_free wipes and frees the keys o holds. */
void orch_webhook_keys_free(orch *o);

/* orch_webhooks_xero serves POST /v1/webhooks/xero. */
void orch_webhooks_xero(xs_http_req *req, void *arg);

#endif
