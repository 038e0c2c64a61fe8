/*
 * sim_bench.c: xero-sim's quality bars. It runs the simulator in-process, seeds one
 * organisation with N contacts (default 1,000,000) and another with a mixed N records, then
 * measures over real HTTP (libcurl, keep-alive) how long 1,000-contact pages take in the
 * engine's access patterns, how fast a full pull goes, and how much memory the store holds.
 *
 *   sim_bench [--contacts N] [--records N] [--reps R]
 *
 * Prints a Markdown report (see bench/RESULTS.md).
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "xs/buf.h"
#include "xs/clock.h"
#include "xs/config.h"
#include "xs/json.h"

typedef struct bench {
    sim *s;
    xs_config *cfg;
    char base[64];
    CURL *h;
    char token[4096];
    char tenant[64], mixed[64];
} bench;

/* BUF_FIRST is the first allocation of a reply buffer; it doubles from there (a client that
 * copies the whole body for every 16 KiB chunk would measure itself, not the server). */
#define BUF_FIRST 65536

/* collect appends a received chunk to the xs_buf arg. */
static size_t collect(char *d, size_t size, size_t nm, void *arg)
{
    size_t add = size * nm;
    return xs_buf_append(arg, d, add) == XS_OK ? add : 0;
}

static void die(const char *what)
{
    fprintf(stderr, "sim_bench: %s\n", what);
    exit(1);
}

/* call performs one request; returns the status; *out (new) gets the body when not NULL. */
static long call(bench *b, const char *method, const char *path, const char *body,
                 const char *tenant, const char *ims, char **out, size_t *len)
{
    char url[2048], auth[4200], ten[128], im[128];
    snprintf(url, sizeof(url), "%s%s", b->base, path);
    struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
    hl = curl_slist_append(hl, "Expect:");
    if (tenant != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", b->token);
        snprintf(ten, sizeof(ten), "xero-tenant-id: %s", tenant);
        hl = curl_slist_append(hl, auth);
        hl = curl_slist_append(hl, ten);
    }
    if (ims != NULL) {
        snprintf(im, sizeof(im), "If-Modified-Since: %s", ims);
        hl = curl_slist_append(hl, im);
    }
    xs_buf r = {.first = BUF_FIRST};
    curl_easy_reset(b->h);
    curl_easy_setopt(b->h, CURLOPT_URL, url);
    curl_easy_setopt(b->h, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL) {
        curl_easy_setopt(b->h, CURLOPT_POSTFIELDS, body);
    }
    curl_easy_setopt(b->h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(b->h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(b->h, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(b->h, CURLOPT_TIMEOUT, 600L);
    long status = 0;
    if (curl_easy_perform(b->h) == CURLE_OK) {
        curl_easy_getinfo(b->h, CURLINFO_RESPONSE_CODE, &status);
    }
    curl_slist_free_all(hl);
    if (len != NULL) {
        *len = r.len;
    }
    if (out != NULL) {
        *out = xs_buf_take(&r, NULL);
    } else {
        xs_buf_fini(&r);
    }
    return status;
}

static json_t *call_json(bench *b, const char *method, const char *path, const char *body)
{
    char *out = NULL;
    size_t len = 0;
    long st = call(b, method, path, body, NULL, NULL, &out, &len);
    if (st < 200 || st > 299) {
        fprintf(stderr, "%s %s -> %ld %s\n", method, path, st, out ? out : "");
        die("control call failed");
    }
    json_t *j = xs_json_parse(out, len, NULL);
    free(out);
    return j;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            v = strtol(line + 6, NULL, 10);
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return v;
}

static void connect_app(bench *b)
{
    /* the plain code flow (no PKCE needed for a confidential client) */
    char *out = NULL;
    curl_easy_reset(b->h);
    char url[512];
    snprintf(url, sizeof(url),
             "%s/identity/connect/authorize?response_type=code&client_id=xero-sim-client&"
             "redirect_uri=http%%3A%%2F%%2F127.0.0.1%%3A9%%2Fcb&scope=accounting.contacts%%20"
             "accounting.transactions%%20accounting.settings&state=b",
             b->base);
    xs_buf hb = {.first = BUF_FIRST};
    curl_easy_setopt(b->h, CURLOPT_URL, url);
    curl_easy_setopt(b->h, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(b->h, CURLOPT_HEADERDATA, &hb);
    curl_easy_setopt(b->h, CURLOPT_WRITEFUNCTION, collect);
    xs_buf body = {.first = BUF_FIRST};
    curl_easy_setopt(b->h, CURLOPT_WRITEDATA, &body);
    curl_easy_perform(b->h);
    xs_buf_fini(&body);
    char *c = hb.p ? strstr(hb.p, "code=") : NULL;
    if (c == NULL) {
        die("authorize failed");
    }
    char code[128];
    snprintf(code, sizeof(code), "%.*s", (int)strcspn(c + 5, "&\r\n"), c + 5);
    xs_buf_fini(&hb);
    char form[512];
    snprintf(form, sizeof(form),
             "grant_type=authorization_code&code=%s&redirect_uri=http%%3A%%2F%%2F127.0.0.1%%3A9%%"
             "2Fcb&client_id=xero-sim-client&client_secret=xero-sim-secret",
             code);
    curl_easy_reset(b->h);
    snprintf(url, sizeof(url), "%s/connect/token", b->base);
    xs_buf tb = {.first = BUF_FIRST};
    curl_easy_setopt(b->h, CURLOPT_URL, url);
    curl_easy_setopt(b->h, CURLOPT_POSTFIELDS, form);
    curl_easy_setopt(b->h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(b->h, CURLOPT_WRITEDATA, &tb);
    curl_easy_perform(b->h);
    json_t *j = tb.p ? xs_json_parse(tb.p, tb.len, NULL) : NULL;
    const char *tok = j ? json_string_value(json_object_get(j, "access_token")) : NULL;
    if (tok == NULL) {
        die("token exchange failed");
    }
    snprintf(b->token, sizeof(b->token), "%s", tok);
    json_decref(j);
    xs_buf_fini(&tb);
    (void)out;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* last_seq returns the sequence number of the latest logged call. */
static long long last_seq(bench *b)
{
    json_t *calls = call_json(b, "GET", "/_sim/calls?since=0&limit=100000", NULL);
    long long seq = 0;
    size_t n = json_array_size(calls);
    if (n > 0) {
        seq = json_integer_value(json_object_get(json_array_get(calls, n - 1), "seq"));
    }
    json_decref(calls);
    return seq;
}

/* server_p50 returns the median time the simulator itself logged for the calls after seq. */
static double server_p50(bench *b, long long seq)
{
    char path[96];
    snprintf(path, sizeof(path), "/_sim/calls?since=%lld&limit=100000", seq);
    json_t *calls = call_json(b, "GET", path, NULL);
    size_t n = json_array_size(calls);
    int64_t *v = calloc(n ? n : 1, sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        v[i] = json_integer_value(json_object_get(json_array_get(calls, i), "ms"));
    }
    qsort(v, n, sizeof(*v), cmp_i64);
    double r = n ? (double)v[n / 2] : 0.0;
    free(v);
    json_decref(calls);
    return r;
}

/* measure runs path reps times and prints one table row. */
static void measure(bench *b, const char *label, const char *path, const char *tenant,
                    const char *ims, int reps, size_t expect_items)
{
    long long seq0 = last_seq(b);
    int64_t *us = calloc((size_t)reps, sizeof(*us));
    size_t bytes = 0, items = 0;
    for (int i = 0; i < reps; i++) {
        char *out = NULL;
        size_t len = 0;
        int64_t t0 = xs_clock_mono_ms();
        struct timespec a, z;
        clock_gettime(CLOCK_MONOTONIC, &a);
        long st = call(b, "GET", path, NULL, tenant, ims, &out, &len);
        clock_gettime(CLOCK_MONOTONIC, &z);
        (void)t0;
        us[i] = (int64_t)(z.tv_sec - a.tv_sec) * 1000000 + (z.tv_nsec - a.tv_nsec) / 1000;
        if (st != 200) {
            fprintf(stderr, "%s -> %ld %.300s\n", path, st, out ? out : "");
            die("page request failed");
        }
        if (i == 0) {
            json_t *j = xs_json_parse(out, len, NULL);
            json_t *arr = NULL;
            const char *k;
            json_t *v;
            json_object_foreach(j, k, v)
            {
                if (json_is_array(v)) {
                    arr = v;
                }
            }
            items = json_array_size(arr);
            json_decref(j);
        }
        bytes = len;
        free(out);
    }
    if (expect_items > 0 && items != expect_items) {
        fprintf(stderr, "%s: %zu items, expected %zu\n", path, items, expect_items);
        die("wrong page size");
    }
    qsort(us, (size_t)reps, sizeof(*us), cmp_i64);
    printf("| %s | %zu | %.1f | %.0f | %.1f | %.1f | %.1f |\n", label, items,
           (double)bytes / 1048576.0, server_p50(b, seq0), us[reps / 2] / 1000.0,
           us[(reps * 95) / 100 < reps ? (reps * 95) / 100 : reps - 1] / 1000.0,
           us[reps - 1] / 1000.0);
    fflush(stdout);
    free(us);
}

int main(int argc, char **argv)
{
    long contacts = 1000000, records = 1000000;
    int reps = 30;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--contacts") == 0) {
            contacts = strtol(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--records") == 0) {
            records = strtol(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--reps") == 0) {
            reps = (int)strtol(argv[i + 1], NULL, 10);
        } else {
            die("usage: sim_bench [--contacts N] [--records N] [--reps R]");
        }
    }
    curl_global_init(CURL_GLOBAL_ALL);
    static char *const env[] = {"XS_LOG_LEVEL=error",
                                "XS_SIM_PORT=0",
                                "XS_SIM_REDIRECT_URIS=http://127.0.0.1:9/cb",
                                "XS_SIM_LIMIT_MINUTE=1000000000",
                                "XS_SIM_LIMIT_DAY=1000000000",
                                "XS_SIM_LIMIT_APP_MINUTE=1000000000",
                                "XS_SIM_HIGH_VOLUME=100000",
                                "XS_SIM_CALL_LOG=100000",
                                NULL};
    bench b = {0};
    char err[XS_CONFIG_ERR_MAX];
    if (xs_config_load_from(&b.cfg, XS_PROC_SIM, env, err) != XS_OK) {
        die(err);
    }
    long rss0 = rss_kib();
    if (sim_create(&b.s, b.cfg, NULL) != XS_OK) {
        die("sim_create");
    }
    snprintf(b.base, sizeof(b.base), "http://127.0.0.1:%u", (unsigned)sim_port(b.s));
    b.h = curl_easy_init();
    json_t *ten = call_json(&b, "GET", "/_sim/tenants", NULL);
    snprintf(b.tenant, sizeof(b.tenant), "%s",
             json_string_value(json_object_get(json_array_get(ten, 0), "tenantId")));
    json_decref(ten);
    connect_app(&b);

    printf("## Run\n\n");
    char path[512], body[256];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/seed", b.tenant);
    snprintf(body, sizeof(body), "{\"contacts\":%ld,\"seed\":1}", contacts);
    int64_t t0 = xs_clock_mono_ms();
    json_t *rep = call_json(&b, "POST", path, body);
    int64_t seed_ms = xs_clock_mono_ms() - t0;
    json_decref(rep);
    long rss1 = rss_kib();
    printf("- Seeded %ld contacts into one organisation in %.1f s; resident memory grew by %.0f "
           "MiB (%.0f bytes per contact, all indexes included).\n",
           contacts, seed_ms / 1000.0, (rss1 - rss0) / 1024.0,
           contacts > 0 ? (rss1 - rss0) * 1024.0 / (double)contacts : 0.0);
    fflush(stdout);

    printf("\n## 1,000-contact pages from %ld contacts (over HTTP, keep-alive, %d runs each)\n\n",
           contacts, reps);
    printf("| request | items | MiB | server p50 ms | p50 ms | p95 ms | max ms |\n");
    printf("|---|---|---|---|---|---|---|\n");
    long last = (contacts + 999) / 1000;
    const char *q = "/api.xro/2.0/Contacts?pageSize=1000&includeArchived=true&order=UpdatedDateUTC"
                    "%20ASC&page=";
    snprintf(path, sizeof(path), "%s1", q);
    measure(&b, "UpdatedDateUTC ASC, page 1", path, b.tenant, NULL, reps, 1000);
    snprintf(path, sizeof(path), "%s%ld", q, last / 2);
    measure(&b, "UpdatedDateUTC ASC, middle page", path, b.tenant, NULL, reps, 1000);
    snprintf(path, sizeof(path), "%s%ld", q, last - 1);
    measure(&b, "UpdatedDateUTC ASC, next to last page", path, b.tenant, NULL, reps, 1000);
    snprintf(path, sizeof(path), "/api.xro/2.0/Contacts?pageSize=1000&page=%ld", last / 3);
    measure(&b, "default order, active only (archived filtered)", path, b.tenant, NULL, reps, 1000);
    snprintf(
        path, sizeof(path),
        "/api.xro/2.0/Contacts?pageSize=1000&page=%ld&where=ContactStatus%%3D%%3D%%22ACTIVE%%22"
        "&order=UpdatedDateUTC%%20DESC",
        last / 4);
    measure(&b, "where ContactStatus==\"ACTIVE\", DESC", path, b.tenant, NULL, reps, 1000);
    snprintf(path, sizeof(path), "/api.xro/2.0/Contacts?pageSize=1000&page=3&summaryOnly=true");
    measure(&b, "summaryOnly", path, b.tenant, NULL, reps, 1000);

    /* incremental: a user edits 1,000 contacts; the engine asks for what changed */
    char ims[32];
    xs_time_format_iso_seconds(xs_clock_now() - 1000, ims);
    snprintf(path, sizeof(path), "/_sim/tenants/%s/touch", b.tenant);
    json_decref(call_json(&b, "POST", path, "{\"kind\":\"Contacts\",\"count\":1000}"));
    measure(&b, "If-Modified-Since (1,000 changed), ASC",
            "/api.xro/2.0/Contacts?pageSize=1000&page=1&includeArchived=true&order="
            "UpdatedDateUTC%20ASC",
            b.tenant, ims, reps, 1000);
    /* fetch by IDs: 50 ids from the middle of the set */
    {
        char *out = NULL;
        size_t len = 0;
        snprintf(path, sizeof(path),
                 "/api.xro/2.0/Contacts?pageSize=50&page=%ld&includeArchived=true", last * 10);
        call(&b, "GET", path, NULL, b.tenant, NULL, &out, &len);
        json_t *j = xs_json_parse(out, len, NULL);
        free(out);
        static char ids[50 * 37 + 200];
        snprintf(ids, sizeof(ids), "/api.xro/2.0/Contacts?includeArchived=true&IDs=");
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(j, "Contacts"), i, c)
        {
            strcat(ids, json_string_value(json_object_get(c, "ContactID")));
            strcat(ids, ",");
        }
        ids[strlen(ids) - 1] = '\0';
        json_decref(j);
        measure(&b, "IDs= (50 ids)", ids, b.tenant, NULL, reps, 50);
    }

    /* a full pull */
    t0 = xs_clock_mono_ms();
    size_t got = 0, bytes = 0;
    for (long p = 1; p <= last; p++) {
        char *out = NULL;
        size_t len = 0;
        snprintf(path, sizeof(path), "%s%ld", q, p);
        if (call(&b, "GET", path, NULL, b.tenant, NULL, &out, &len) != 200) {
            die("full pull failed");
        }
        got += 1000;
        bytes += len;
        free(out);
    }
    int64_t pull_ms = xs_clock_mono_ms() - t0;
    printf("\n- Full pull of %ld contacts in %ld pages of 1,000 (UpdatedDateUTC ASC): %.1f s, "
           "%.0f records/s, %.0f MiB of JSON.\n",
           contacts, last, pull_ms / 1000.0, got / (pull_ms / 1000.0), bytes / 1048576.0);

    /* a mixed organisation */
    if (records > 0) {
        json_t *nt = call_json(&b, "POST", "/_sim/tenants", "{\"name\":\"Mixed Ltd\"}");
        snprintf(b.mixed, sizeof(b.mixed), "%s",
                 json_string_value(json_object_get(nt, "tenantId")));
        json_decref(nt);
        /* connect it: the user consents again */
        connect_app(&b);
        snprintf(path, sizeof(path), "/_sim/tenants/%s/seed", b.mixed);
        snprintf(body, sizeof(body), "{\"records\":%ld,\"seed\":2}", records);
        long r0 = rss_kib();
        t0 = xs_clock_mono_ms();
        json_t *mr = call_json(&b, "POST", path, body);
        int64_t ms = xs_clock_mono_ms() - t0;
        long r1 = rss_kib();
        json_t *cr = json_object_get(mr, "created");
        printf("\n## A mixed organisation of %ld records\n\n", records);
        printf("- Seeded %lld contacts, %lld invoices (1-5 lines), %lld payments and %lld bank "
               "transactions in %.1f s; resident memory grew by %.0f MiB. Process total: %.0f "
               "MiB.\n\n",
               (long long)json_integer_value(json_object_get(cr, "Contacts")),
               (long long)json_integer_value(json_object_get(cr, "Invoices")),
               (long long)json_integer_value(json_object_get(cr, "Payments")),
               (long long)json_integer_value(json_object_get(cr, "BankTransactions")), ms / 1000.0,
               (r1 - r0) / 1024.0, r1 / 1024.0);
        long ninv = (long)json_integer_value(json_object_get(cr, "Invoices"));
        long npay = (long)json_integer_value(json_object_get(cr, "Payments"));
        json_decref(mr);
        printf("| request | items | MiB | server p50 ms | p50 ms | p95 ms | max ms |\n");
        printf("|---|---|---|---|---|---|---|\n");
        snprintf(path, sizeof(path),
                 "/api.xro/2.0/Invoices?page=%ld&pageSize=1000&order=UpdatedDateUTC%%20ASC",
                 ninv / 2000 + 1);
        measure(&b, "Invoices page of 1,000 (with lines), UpdatedDateUTC ASC", path, b.mixed, NULL,
                reps, 1000);
        snprintf(path, sizeof(path),
                 "/api.xro/2.0/Invoices?page=%ld&pageSize=1000&Statuses=AUTHORISED,PAID",
                 ninv / 4000 + 1);
        measure(&b, "Invoices, Statuses=AUTHORISED,PAID, page of 1,000", path, b.mixed, NULL, reps,
                1000);
        snprintf(path, sizeof(path),
                 "/api.xro/2.0/Payments?page=%ld&pageSize=1000&order=UpdatedDateUTC",
                 npay / 2000 + 1);
        measure(&b, "Payments page of 1,000", path, b.mixed, NULL, reps, 1000);
        char *out = NULL;
        long st = call(&b, "GET", "/api.xro/2.0/Invoices", NULL, b.mixed, NULL, &out, NULL);
        printf("\n- An unpaged GET /Invoices on this organisation is refused as Xero refuses it: "
               "%ld \"%.60s...\"\n",
               st, out ? out : "");
        free(out);
    }
    curl_easy_cleanup(b.h);
    sim_destroy(b.s);
    xs_config_destroy(b.cfg);
    curl_global_cleanup();
    return 0;
}
