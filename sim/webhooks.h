/*
 * webhooks.h: Xero's webhooks: events queued on changes, batched, signed and delivered by
 * a thread of its own with retries; intent to receive. Owns the queue, the delivery thread
 * and its log.
 */
#ifndef XS_SIM_WEBHOOKS_H
#define XS_SIM_WEBHOOKS_H

#include "context.h"

xs_err sim__webhooks_create(sim *s, sim_webhooks **out);
/* sim__webhooks_destroy stops the delivery thread and frees w (NULL accepted). */
void sim__webhooks_destroy(sim_webhooks *w);
/* sim__webhook_event queues a CONTACT or INVOICE event (kind SIM_CONTACT or SIM_INVOICE). */
void sim__webhook_event(sim *s, const sim_tenant *t, sim_kind kind, const xs_uuid *id, bool create,
                        xs_time at);
/* sim__webhooks_itr runs the intent-to-receive sequence and returns its report (new). */
json_t *sim__webhooks_itr(sim *s, int count);
/* sim__webhooks_flush delivers every queued event now, waiting up to timeout_ms. */
json_t *sim__webhooks_flush(sim *s, int64_t timeout_ms);
/* sim__webhooks_json reports status, counters and the delivery log (new). */
json_t *sim__webhooks_json(sim *s);
/* sim__webhooks_reset drops queued events, counters and intent to receive. */
void sim__webhooks_reset(sim *s);
/* sim__webhooks_enable re-enables a disabled webhook (it needs intent to receive again when
 * that is required). */
void sim__webhooks_enable(sim *s);

#endif
