/*
 * webhooks.c: CONTACT and INVOICE events delivered as Xero delivers them.
 *
 * A change queues an event; after XS_SIM_WEBHOOK_DELAY (Xero batches) a delivery thread
 * POSTs up to XS_SIM_WEBHOOK_BATCH events as {"events":[...],"firstEventSequence":f,
 * "lastEventSequence":l,"entropy":"..."}, signed with x-xero-signature =
 * base64(HMAC-SHA256(webhook key, the exact body bytes)). Anything but a 200 within
 * XS_SIM_WEBHOOK_TIMEOUT is a failure: the same body is sent again with a doubling back-off
 * (from XS_SIM_WEBHOOK_RETRY_BASE, at most an hour apart) for XS_SIM_WEBHOOK_RETRY_FOR, after
 * which the webhook is disabled and its queue dropped. With XS_SIM_WEBHOOK_REQUIRE_ITR, no
 * event is sent until intent to receive has passed: a series of empty, signed deliveries,
 * some deliberately mis-signed, which the receiver must answer 200 (empty body) and 401.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "webhooks.h"
#include "context.h"
#include "settings.h"
#include "store.h"
#include "util.h"
#include "xs/crypto.h"

#define LOG_KEEP 200

struct sim_webhooks {
    sim *s;
    pthread_t th;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    json_t *pending; /* queued events */
    xs_time first_pending;
    /* the batch being delivered, kept for retries */
    char *body;
    char sig[64];
    uint32_t bfirst, blast, bcount;
    int attempts;
    int64_t next_attempt; /* monotonic ms */
    int64_t batch_started;
    bool busy; /* a delivery is on the wire */
    uint32_t seq;
    bool itr_passed;
    bool disabled;
    bool flush;
    char url_seen[SIM_URL_MAX];
    /* counters */
    uint64_t events_queued, events_delivered, batches_delivered, failed_attempts;
    uint64_t dropped_unverified, dropped_no_url, dropped_disabled;
    json_t *log;
};

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    size_t *count = arg;
    (void)p;
    *count += size * n;
    return size * n;
}

/* post sends body to url with a signature; returns the HTTP status (0 on transport error)
 * and the reply body's length through *rlen. */
static long post(const char *url, const char *body, const char *sig, int64_t timeout_ms,
                 size_t *rlen, int64_t *ms)
{
    CURL *h = curl_easy_init();
    if (h == NULL) {
        return 0;
    }
    struct curl_slist *hdr = NULL;
    char sh[128];
    snprintf(sh, sizeof(sh), "x-xero-signature: %s", sig);
    hdr = curl_slist_append(hdr, "Content-Type: application/json; charset=utf-8");
    hdr = curl_slist_append(hdr, sh);
    hdr = curl_slist_append(hdr, "User-Agent: Xero-Webhooks (xero-sim)");
    *rlen = 0;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, rlen);
    int64_t t0 = xs_clock_mono_ms();
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    }
    *ms = xs_clock_mono_ms() - t0;
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return status;
}

static bool sign(const char *key, const char *body, char out[64])
{
    uint8_t mac[XS_SHA256_LEN];
    char *b64 = NULL;
    if (xs_hmac_sha256(key, strlen(key), body, strlen(body), mac) != XS_OK ||
        xs_base64_encode(mac, sizeof(mac), &b64) != XS_OK) {
        return false;
    }
    snprintf(out, 64, "%s", b64);
    free(b64);
    return true;
}

static void entropy(char out[21])
{
    uint8_t r[20];
    xs_crypto_random(r, sizeof(r));
    for (int i = 0; i < 20; i++) {
        out[i] = (char)('A' + r[i] % 26);
    }
    out[20] = '\0';
}

static void log_add(sim_webhooks *w, json_t *entry)
{
    json_array_append_new(w->log, entry);
    while (json_array_size(w->log) > LOG_KEEP) {
        json_array_remove(w->log, 0);
    }
}

static void drop_batch(sim_webhooks *w)
{
    free(w->body);
    w->body = NULL;
    w->attempts = 0;
    w->bcount = 0;
}

/* build_batch takes queued events into a new batch (mu held). */
static bool build_batch(sim_webhooks *w, const sim_settings *set)
{
    size_t n = json_array_size(w->pending);
    if (n == 0) {
        return false;
    }
    size_t take = n < (size_t)set->webhook_batch_max ? n : (size_t)set->webhook_batch_max;
    json_t *events = json_array();
    for (size_t i = 0; i < take; i++) {
        json_array_append(events, json_array_get(w->pending, i));
    }
    for (size_t i = 0; i < take; i++) {
        json_array_remove(w->pending, 0);
    }
    if (json_array_size(w->pending) > 0) {
        w->first_pending = sim__now(w->s);
    }
    uint32_t first = w->seq + 1, last = w->seq + (uint32_t)take;
    w->seq = last;
    char ent[21];
    entropy(ent);
    json_t *doc = json_pack("{s:o,s:i,s:i,s:s}", "events", events, "firstEventSequence", (int)first,
                            "lastEventSequence", (int)last, "entropy", ent);
    w->body = xs_json_dump(doc, XS_JSON_COMPACT);
    json_decref(doc);
    if (w->body == NULL || !sign(set->webhook_key, w->body, w->sig)) {
        drop_batch(w);
        return false;
    }
    w->bfirst = first;
    w->blast = last;
    w->bcount = (uint32_t)take;
    w->attempts = 0;
    w->batch_started = xs_clock_mono_ms();
    w->next_attempt = w->batch_started;
    return true;
}

static void *run(void *arg)
{
    sim_webhooks *w = arg;
    sim *s = w->s;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        sim_settings set;
        sim__settings(s, &set);
        int64_t now = xs_clock_mono_ms();
        int64_t wait_ms = -1;
        if (w->body == NULL && json_array_size(w->pending) > 0) {
            int64_t age = sim__now(s) - w->first_pending;
            if (w->flush || age >= set.webhook_delay_ms) {
                build_batch(w, &set);
            } else {
                wait_ms = set.webhook_delay_ms - age;
            }
        }
        if (w->body != NULL) {
            if (w->flush || now >= w->next_attempt) {
                char *body = strdup(w->body);
                char sig[64], url[SIM_URL_MAX];
                snprintf(sig, sizeof(sig), "%s", w->sig);
                snprintf(url, sizeof(url), "%s", set.webhook_url);
                w->busy = true;
                pthread_mutex_unlock(&w->mu);
                size_t rlen = 0;
                int64_t ms = 0;
                long st =
                    body != NULL ? post(url, body, sig, set.webhook_timeout_ms, &rlen, &ms) : 0;
                free(body);
                pthread_mutex_lock(&w->mu);
                w->busy = false;
                w->attempts++;
                bool ok = st == 200;
                char at[XS_TIME_ISO_MAX];
                xs_time_format_iso(sim__now(s), at);
                log_add(w, json_pack("{s:s,s:s,s:i,s:i,s:i,s:i,s:b,s:I,s:I}", "at", at, "kind",
                                     "events", "firstEventSequence", (int)w->bfirst,
                                     "lastEventSequence", (int)w->blast, "attempt", w->attempts,
                                     "status", (int)st, "ok", ok, "ms", (json_int_t)ms,
                                     "reply_bytes", (json_int_t)rlen));
                if (ok) {
                    w->events_delivered += w->bcount;
                    w->batches_delivered++;
                    drop_batch(w);
                } else {
                    w->failed_attempts++;
                    int64_t t = xs_clock_mono_ms();
                    if (t - w->batch_started >= set.webhook_retry_for_ms) {
                        /* Xero gives up after its retry period and disables the webhook */
                        w->disabled = true;
                        w->dropped_disabled += w->bcount + json_array_size(w->pending);
                        drop_batch(w);
                        json_array_clear(w->pending);
                    } else {
                        int64_t back = set.webhook_retry_base_ms;
                        for (int k = 1; k < w->attempts && back < 3600000; k++) {
                            back *= 2;
                        }
                        if (back > 3600000) {
                            back = 3600000;
                        }
                        w->next_attempt = t + back;
                    }
                }
                if (w->body == NULL && json_array_size(w->pending) == 0) {
                    w->flush = false;
                }
                pthread_cond_broadcast(&w->cv);
                continue;
            }
            int64_t until = w->next_attempt - now;
            wait_ms = wait_ms < 0 || until < wait_ms ? until : wait_ms;
        } else if (json_array_size(w->pending) == 0) {
            w->flush = false;
            pthread_cond_broadcast(&w->cv);
        }
        if (wait_ms < 0) {
            pthread_cond_wait(&w->cv, &w->mu);
        } else {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t ns = (int64_t)ts.tv_nsec + (wait_ms % 1000) * 1000000;
            ts.tv_sec += (time_t)(wait_ms / 1000 + ns / 1000000000);
            ts.tv_nsec = (long)(ns % 1000000000);
            pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

xs_err sim__webhooks_create(sim *s, sim_webhooks **out)
{
    sim_webhooks *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return XS_ENOMEM;
    }
    w->s = s;
    w->pending = json_array();
    w->log = json_array();
    if (w->pending == NULL || w->log == NULL || pthread_mutex_init(&w->mu, NULL) != 0) {
        json_decref(w->pending);
        json_decref(w->log);
        free(w);
        return XS_ENOMEM;
    }
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->th, NULL, run, w) != 0) {
        sim__webhooks_destroy(w);
        return XS_ENOMEM;
    }
    w->started = true;
    *out = w;
    return XS_OK;
}

void sim__webhooks_destroy(sim_webhooks *w)
{
    if (w == NULL) {
        return;
    }
    if (w->started) {
        pthread_mutex_lock(&w->mu);
        w->stop = true;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->th, NULL);
    }
    drop_batch(w);
    json_decref(w->pending);
    json_decref(w->log);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

/* url_check notes a change of URL: Xero then asks for intent to receive again (mu held). */
static void url_check(sim_webhooks *w, const char *url)
{
    if (strcmp(url, w->url_seen) != 0) {
        snprintf(w->url_seen, sizeof(w->url_seen), "%s", url);
        w->itr_passed = false;
        w->disabled = false;
    }
}

void sim__webhook_event(sim *s, const sim_tenant *t, sim_kind kind, const xs_uuid *id, bool create,
                        xs_time at)
{
    sim_webhooks *w = s->wh;
    if (w == NULL) {
        return;
    }
    sim_settings set;
    sim__settings(s, &set);
    pthread_mutex_lock(&w->mu);
    url_check(w, set.webhook_url);
    if (set.webhook_url[0] == '\0' || set.webhook_key[0] == '\0') {
        w->dropped_no_url++;
    } else if (w->disabled) {
        w->dropped_disabled++;
    } else if (set.webhook_require_itr && !w->itr_passed) {
        w->dropped_unverified++;
    } else {
        char ids[XS_UUID_STR], url[SIM_URL_MAX + 128], when[XS_TIME_ISO_MAX];
        xs_uuid_format(id, ids);
        const char *plural = kind == SIM_CONTACT ? "Contacts" : "Invoices";
        snprintf(url, sizeof(url), "%s%s/%s/%s", s->public_url, SIM_API_PREFIX, plural, ids);
        sim__time_format_ms(at, when);
        json_t *ev = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "resourceUrl", url, "resourceId",
                               ids, "tenantId", t->ids, "tenantType", "ORGANISATION",
                               "eventCategory", kind == SIM_CONTACT ? "CONTACT" : "INVOICE",
                               "eventType", create ? "CREATE" : "UPDATE", "eventDateUtc", when);
        if (json_array_size(w->pending) == 0) {
            w->first_pending = sim__now(s);
        }
        json_array_append_new(w->pending, ev);
        w->events_queued++;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
}

json_t *sim__webhooks_itr(sim *s, int count)
{
    sim_webhooks *w = s->wh;
    sim_settings set;
    sim__settings(s, &set);
    if (set.webhook_url[0] == '\0' || set.webhook_key[0] == '\0') {
        return json_pack("{s:b,s:s}", "ok", 0, "error",
                         "no webhook URL and key are configured (XS_SIM_WEBHOOK_URL/KEY or POST "
                         "/_sim/config)");
    }
    if (count < 2) {
        count = 2;
    }
    json_t *list = json_array();
    bool all = true;
    sim_rng rng = {set.seed ^ UINT64_C(0x697472)};
    for (int i = 0; i < count; i++) {
        bool good = i == 0 ? true : i == 1 ? false : (sim__rng_next(&rng) & 1) != 0;
        char ent[21];
        entropy(ent);
        json_t *doc = json_pack("{s:[],s:i,s:i,s:s}", "events", "firstEventSequence", 0,
                                "lastEventSequence", 0, "entropy", ent);
        char *body = xs_json_dump(doc, XS_JSON_COMPACT);
        json_decref(doc);
        char sig[64] = "";
        if (body != NULL) {
            if (good) {
                sign(set.webhook_key, body, sig);
            } else {
                /* a well-formed signature made with another key */
                char wrong[SIM_KEY_MAX + 8];
                snprintf(wrong, sizeof(wrong), "%s-not", set.webhook_key);
                sign(wrong, body, sig);
            }
        }
        size_t rlen = 0;
        int64_t ms = 0;
        long st =
            body != NULL ? post(set.webhook_url, body, sig, set.webhook_timeout_ms, &rlen, &ms) : 0;
        free(body);
        long want = good ? 200 : 401;
        bool ok = st == want && (!good || rlen == 0) && ms <= set.webhook_timeout_ms;
        all = all && ok;
        json_array_append_new(list, json_pack("{s:s,s:i,s:i,s:b,s:I,s:I}", "signature",
                                              good ? "correct" : "incorrect", "status", (int)st,
                                              "expected", (int)want, "ok", ok, "ms", (json_int_t)ms,
                                              "reply_bytes", (json_int_t)rlen));
    }
    pthread_mutex_lock(&w->mu);
    url_check(w, set.webhook_url);
    if (all) {
        w->itr_passed = true;
        w->disabled = false;
    }
    char at[XS_TIME_ISO_MAX];
    xs_time_format_iso(sim__now(s), at);
    log_add(w, json_pack("{s:s,s:s,s:b}", "at", at, "kind", "intent_to_receive", "ok", all));
    pthread_mutex_unlock(&w->mu);
    return json_pack("{s:b,s:s,s:o}", "ok", all, "url", set.webhook_url, "deliveries", list);
}

json_t *sim__webhooks_flush(sim *s, int64_t timeout_ms)
{
    sim_webhooks *w = s->wh;
    int64_t deadline = xs_clock_mono_ms() + timeout_ms;
    pthread_mutex_lock(&w->mu);
    w->flush = true;
    pthread_cond_broadcast(&w->cv);
    while ((w->body != NULL || json_array_size(w->pending) > 0 || w->busy) && !w->stop) {
        int64_t left = deadline - xs_clock_mono_ms();
        if (left <= 0) {
            break;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t wait = left < 50 ? left : 50;
        int64_t ns = (int64_t)ts.tv_nsec + wait * 1000000;
        ts.tv_sec += (time_t)(ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        if (w->body != NULL && w->attempts > 0 && !w->busy) {
            /* a failing receiver: one forced attempt is all a flush asks for */
            break;
        }
    }
    size_t pending = json_array_size(w->pending) + w->bcount;
    w->flush = false;
    pthread_mutex_unlock(&w->mu);
    return json_pack("{s:b,s:I}", "idle", pending == 0, "pending", (json_int_t)pending);
}

json_t *sim__webhooks_json(sim *s)
{
    sim_webhooks *w = s->wh;
    sim_settings set;
    sim__settings(s, &set);
    pthread_mutex_lock(&w->mu);
    url_check(w, set.webhook_url);
    const char *status = set.webhook_url[0] == '\0' ? "NOT_CONFIGURED"
                         : w->disabled              ? "DISABLED"
                         : (set.webhook_require_itr && !w->itr_passed)
                             ? "AWAITING_INTENT_TO_RECEIVE"
                             : "OK";
    json_t *o = json_pack(
        "{s:s,s:s,s:b,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:i,s:o}", "status", status, "url",
        set.webhook_url, "intent_to_receive_passed", w->itr_passed, "require_intent_to_receive",
        set.webhook_require_itr, "events_queued", (json_int_t)w->events_queued, "events_delivered",
        (json_int_t)w->events_delivered, "batches_delivered", (json_int_t)w->batches_delivered,
        "failed_attempts", (json_int_t)w->failed_attempts, "pending",
        (json_int_t)(json_array_size(w->pending) + w->bcount), "dropped_unverified",
        (json_int_t)w->dropped_unverified, "dropped_no_url", (json_int_t)w->dropped_no_url,
        "dropped_disabled", (json_int_t)w->dropped_disabled, "last_sequence", (int)w->seq, "log",
        /* a copy: the delivery thread keeps appending to the log once the mutex is released */
        json_deep_copy(w->log));
    pthread_mutex_unlock(&w->mu);
    return o;
}

void sim__webhooks_reset(sim *s)
{
    sim_webhooks *w = s->wh;
    pthread_mutex_lock(&w->mu);
    while (w->busy) {
        pthread_cond_wait(&w->cv, &w->mu);
    }
    drop_batch(w);
    json_array_clear(w->pending);
    json_array_clear(w->log);
    w->seq = 0;
    w->itr_passed = false;
    w->disabled = false;
    w->url_seen[0] = '\0';
    w->events_queued = w->events_delivered = w->batches_delivered = w->failed_attempts = 0;
    w->dropped_unverified = w->dropped_no_url = w->dropped_disabled = 0;
    pthread_mutex_unlock(&w->mu);
}

void sim__webhooks_enable(sim *s)
{
    sim_webhooks *w = s->wh;
    pthread_mutex_lock(&w->mu);
    w->disabled = false;
    w->itr_passed = false;
    pthread_mutex_unlock(&w->mu);
}
