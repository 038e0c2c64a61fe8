/*
 * identity.c: Xero's identity service as the engine meets it.
 *
 * - GET /identity/connect/authorize checks client_id and redirect_uri (refusing without
 *   redirecting when either is wrong), then response_type, scope and the PKCE challenge (S256
 *   only). A browser (Accept naming text/html) then gets Xero's consent page: the app, its
 *   scopes in words, a ticked checkbox per tenant offered, Allow access and Cancel, the request
 *   in hidden fields (HTML-escaped). Any other client (curl, libcurl, the tests) is answered at
 *   once: the configured test user consents to every tenant offered, which are connected, and
 *   the reply redirects with code, scope and state.
 * - POST /identity/connect/authorize/consent, the page's form, checks the request again as the
 *   GET does; Allow connects exactly the tenants ticked and redirects as above, Allow with none
 *   ticked shows the page again with an error, Cancel redirects with error=access_denied.
 *   The tenants offered are those chosen through /_sim/consent, or every tenant.
 * - POST /connect/token: client authentication by HTTP Basic (or client_id/client_secret in
 *   the form); authorization_code (single use, 5 minutes, redirect_uri and code_verifier
 *   checked) and refresh_token. Refresh tokens rotate on every use; the token just replaced
 *   works again only inside the grace period and only while its replacement is unused (a
 *   reuse replaces the unused replacement); anything older is invalid_grant. Unused refresh
 *   tokens expire after XS_SIM_REFRESH_TTL.
 * - POST /connect/revocation revokes every grant of the user and removes its connections.
 * - GET /connections, DELETE /connections/{id}.
 * Access tokens are JWT-shaped (HS256 over a key private to this run) and expire after
 * XS_SIM_ACCESS_TOKEN_TTL; clients must treat them as opaque, as with Xero.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity.h"
#include "context.h"
#include "reply.h"
#include "settings.h"
#include "store.h"
#include "util.h"
#include "xs/crypto.h"

/* ------------------------------------------------------------------ helpers */

static bool list_has(const char *list, char sep, const char *word)
{
    size_t n = strlen(word);
    const char *p = list;
    while (*p != '\0') {
        while (*p == sep || *p == ' ') {
            p++;
        }
        const char *e = strchr(p, sep);
        size_t len = e ? (size_t)(e - p) : strlen(p);
        while (len > 0 && p[len - 1] == ' ') {
            len--;
        }
        if (len == n && len > 0 && strncmp(p, word, n) == 0) {
            return true;
        }
        if (e == NULL) {
            break;
        }
        p = e + 1;
    }
    return false;
}

bool sim__scope_has(const char *scope, const char *const *any)
{
    for (size_t i = 0; any[i] != NULL; i++) {
        if (list_has(scope, ' ', any[i])) {
            return true;
        }
    }
    return false;
}

static char *b64url_json(const json_t *j)
{
    char *txt = xs_json_dump(j, XS_JSON_COMPACT);
    char *out = NULL;
    if (txt != NULL) {
        xs_base64url_encode(txt, strlen(txt), &out);
    }
    free(txt);
    return out;
}

/* make_jwt signs header.payload with the run's key (new string). */
static char *make_jwt(sim *s, json_t *payload)
{
    json_t *hdr = json_pack("{s:s,s:s,s:s}", "alg", "HS256", "kid", "xero-sim", "typ", "JWT");
    char *h = b64url_json(hdr), *p = b64url_json(payload), *sig = NULL, *out = NULL;
    json_decref(hdr);
    if (h != NULL && p != NULL) {
        size_t n = strlen(h) + 1 + strlen(p);
        char *msg = malloc(n + 1);
        if (msg != NULL) {
            snprintf(msg, n + 1, "%s.%s", h, p);
            uint8_t mac[XS_SHA256_LEN];
            if (xs_hmac_sha256(s->jwt_key, sizeof(s->jwt_key), msg, n, mac) == XS_OK &&
                xs_base64url_encode(mac, sizeof(mac), &sig) == XS_OK) {
                size_t m = n + 1 + strlen(sig) + 1;
                out = malloc(m);
                if (out != NULL) {
                    snprintf(out, m, "%s.%s", msg, sig);
                }
            }
            free(msg);
        }
    }
    free(h);
    free(p);
    free(sig);
    return out;
}

static char *random_token(size_t n)
{
    char *t = NULL;
    if (xs_crypto_random_token(n, &t) != XS_OK) {
        return NULL;
    }
    return t;
}

/* client_auth checks HTTP Basic or form credentials against the configured client. */
static bool client_auth(sim_call *c, const char *body, size_t len)
{
    sim *s = c->s;
    const char *auth = xs_http_req_header(c->req, "Authorization");
    char *id = NULL, *secret = NULL;
    bool ok = false;
    if (auth != NULL && strncasecmp(auth, "Basic ", 6) == 0) {
        uint8_t *raw = NULL;
        size_t rawlen = 0;
        const char *b = auth + 6;
        while (*b == ' ') {
            b++;
        }
        if (xs_base64_decode(b, strlen(b), &raw, &rawlen) == XS_OK) {
            char *colon = memchr(raw, ':', rawlen);
            if (colon != NULL && strlen((char *)raw) == rawlen) {
                *colon = '\0';
                ok = xs_crypto_equal_str((char *)raw, s->client_id) &&
                     xs_crypto_equal_str(colon + 1, s->client_secret);
            }
            xs_crypto_wipe(raw, rawlen);
            free(raw);
        }
        return ok;
    }
    if (sim__form_get(body, len, "client_id", &id) == XS_OK &&
        sim__form_get(body, len, "client_secret", &secret) == XS_OK) {
        ok = xs_crypto_equal_str(id, s->client_id) && xs_crypto_equal_str(secret, s->client_secret);
    }
    free(id);
    if (secret != NULL) {
        xs_crypto_wipe(secret, strlen(secret));
        free(secret);
    }
    return ok;
}

static sim_conn *conn_find_tenant(sim *s, const xs_uuid *tenant)
{
    char k[XS_UUID_STR];
    xs_uuid_format(tenant, k);
    return sim__smap_get(&s->conn_tenants, k);
}

static void grant_drop_tokens(sim *s, sim_grant *g)
{
    if (g->refresh_cur != NULL) {
        sim__smap_del(&s->refresh, g->refresh_cur);
        free(g->refresh_cur);
        g->refresh_cur = NULL;
    }
    if (g->refresh_prev != NULL) {
        sim__smap_del(&s->refresh, g->refresh_prev);
        free(g->refresh_prev);
        g->refresh_prev = NULL;
    }
}

/* revoke_locked revokes every grant and removes every connection (id_mu held). */
static void revoke_locked(sim *s)
{
    for (sim_grant *g = s->grants; g != NULL; g = g->next) {
        g->revoked = true;
        grant_drop_tokens(s, g);
    }
    while (s->conns != NULL) {
        sim_conn *n = s->conns->next;
        free(s->conns);
        s->conns = n;
    }
    sim__smap_free(&s->conn_tenants, NULL);
}

void sim__revoke_all(sim *s)
{
    pthread_mutex_lock(&s->id_mu);
    revoke_locked(s);
    pthread_mutex_unlock(&s->id_mu);
}

static void free_code(void *p)
{
    sim_code *c = p;
    if (c != NULL) {
        free(c->redirect_uri);
        free(c->scope);
        free(c->challenge);
        free(c->nonce);
        free(c);
    }
}

void sim__identity_reset(sim *s)
{
    pthread_mutex_lock(&s->id_mu);
    revoke_locked(s);
    while (s->grants != NULL) {
        sim_grant *n = s->grants->next;
        free(s->grants->scope);
        free(s->grants);
        s->grants = n;
    }
    sim__smap_free(&s->codes, free_code);
    sim__smap_free(&s->access, free);
    sim__smap_free(&s->refresh, NULL);
    pthread_mutex_unlock(&s->id_mu);
}

static bool expire_access(const char *key, void *val, void *arg)
{
    (void)key;
    sim_access *a = val;
    a->expires = *(const xs_time *)arg;
    return false;
}

void sim__expire_access(sim *s)
{
    xs_time now = sim__now(s);
    pthread_mutex_lock(&s->id_mu);
    sim__smap_each(&s->access, expire_access, &now);
    pthread_mutex_unlock(&s->id_mu);
}

static bool purge_access(const char *key, void *val, void *arg)
{
    (void)key;
    sim_access *a = val;
    /* expired for a day: nobody can use it any more, and 401 tells the same story */
    if (a->expires + SIM_DAY_MS < *(const xs_time *)arg) {
        free(a);
        return true;
    }
    return false;
}

/* ------------------------------------------------------------------ authorize */

/* connect_tenant connects the user to tenant under auth_event, or renews the connection
 * (id_mu held). XS_ENOMEM. */
static xs_err connect_tenant(sim *s, const xs_uuid *tenant, const xs_uuid *auth_event, sim_rng *rng,
                             xs_time now)
{
    sim_conn *cn = conn_find_tenant(s, tenant);
    if (cn == NULL) {
        cn = calloc(1, sizeof(*cn));
        if (cn == NULL) {
            return XS_ENOMEM;
        }
        sim__rng_uuid(rng, &cn->id);
        cn->tenant = *tenant;
        cn->created = now;
        char k[XS_UUID_STR];
        xs_uuid_format(tenant, k);
        if (sim__smap_put(&s->conn_tenants, k, cn, NULL) != XS_OK) {
            free(cn);
            return XS_ENOMEM;
        }
        cn->next = s->conns;
        s->conns = cn;
    }
    cn->updated = now;
    cn->auth_event = *auth_event;
    return XS_OK;
}

/* redirect_to replies 302 to uri with the query parameters in kv (name, value pairs,
 * NULL-terminated; a NULL value leaves its parameter out), every value percent-encoded
 * whole: the Location has no length limit of its own. */
static void redirect_to(sim_call *c, const char *uri, const char *const *kv)
{
    xs_buf loc = {0};
    bool ok = sim__url_append(&loc, uri, false);
    const char *sep = strchr(uri, '?') ? "&" : "?";
    for (size_t i = 0; ok && kv[i] != NULL; i += 2) {
        if (kv[i + 1] == NULL) {
            continue;
        }
        ok = sim__url_append(&loc, sep, false) && sim__url_append(&loc, kv[i], false) &&
             sim__url_append(&loc, "=", false) && sim__url_append(&loc, kv[i + 1], true);
        sep = "&";
    }
    if (!ok) {
        xs_buf_fini(&loc);
        sim__reply_text(c, 500, "out of memory");
        return;
    }
    sim__reply_header(c, "Location", loc.p);
    xs_buf_fini(&loc);
    sim__reply_text(c, 302, "");
}

static void redirect_error(sim_call *c, const char *uri, const char *state, const char *err,
                           const char *desc)
{
    const char *kv[] = {"error", err, "error_description", desc, "state", state, NULL};
    redirect_to(c, uri, kv);
}

/* The parameters of an authorization request, by index; the consent form carries them in
 * hidden fields of the same names. */
enum {
    AZ_CLIENT,
    AZ_REDIRECT,
    AZ_RTYPE,
    AZ_SCOPE,
    AZ_STATE,
    AZ_CHALLENGE,
    AZ_METHOD,
    AZ_NONCE,
    AZ_N
};

static const char *const az_names[AZ_N] = {
    "client_id", "redirect_uri",   "response_type",         "scope",
    "state",     "code_challenge", "code_challenge_method", "nonce"};

typedef struct authz {
    const char *v[AZ_N]; /* NULL when absent; borrowed from the query string, or owned[i] */
    char *owned[AZ_N];   /* the values read from a consent form (new) */
} authz;

/* authz_from_query reads a's parameters from the request's query string (borrowed). */
static void authz_from_query(sim_call *c, authz *a)
{
    for (size_t i = 0; i < AZ_N; i++) {
        a->v[i] = xs_http_req_query(c->req, az_names[i]);
    }
}

/* authz_from_form reads a's parameters from a consent form's body (new copies in
 * a->owned, freed by authz_fini whatever this returns). XS_EPARSE for a bad escape,
 * XS_ENOMEM. */
static xs_err authz_from_form(const char *body, size_t len, authz *a)
{
    for (size_t i = 0; i < AZ_N; i++) {
        xs_err e = sim__form_get(body, len, az_names[i], &a->owned[i]);
        if (e != XS_OK && e != XS_ENOTFOUND) {
            return e;
        }
        a->v[i] = a->owned[i];
    }
    return XS_OK;
}

static void authz_fini(authz *a)
{
    for (size_t i = 0; i < AZ_N; i++) {
        free(a->owned[i]);
    }
}

/* authz_check validates the request a as Xero does, in Xero's order: client_id and
 * redirect_uri are refused with a 400 page and no redirect; then response_type, scope and the
 * PKCE challenge, refused by redirecting with error=. True when a is valid; otherwise the
 * reply is made. */
static bool authz_check(sim_call *c, const authz *a)
{
    sim *s = c->s;
    const char *client = a->v[AZ_CLIENT], *redirect = a->v[AZ_REDIRECT], *rtype = a->v[AZ_RTYPE];
    const char *scope = a->v[AZ_SCOPE], *state = a->v[AZ_STATE];
    const char *challenge = a->v[AZ_CHALLENGE], *method = a->v[AZ_METHOD];
    if (client == NULL || !xs_crypto_equal_str(client, s->client_id)) {
        sim__reply_text(c, 400, "Error: unauthorized_client. The client_id is not known.");
        return false;
    }
    if (redirect == NULL || !list_has(s->redirect_uris, ',', redirect)) {
        sim__reply_text(c, 400,
                        "Error: invalid_request. The redirect_uri is not registered for this "
                        "app.");
        return false;
    }
    if (rtype == NULL || strcmp(rtype, "code") != 0) {
        redirect_error(c, redirect, state, "unsupported_response_type",
                       "response_type must be code");
        return false;
    }
    if (scope == NULL || scope[0] == '\0' || strlen(scope) >= 1024) {
        redirect_error(c, redirect, state, "invalid_scope", "scope is required");
        return false;
    }
    /* every requested scope must be allowed for the app */
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", scope);
    for (char *save = NULL, *w = strtok_r(buf, " ", &save); w != NULL;
         w = strtok_r(NULL, " ", &save)) {
        if (!list_has(s->scopes, ' ', w)) {
            redirect_error(c, redirect, state, "invalid_scope", "a requested scope is not valid");
            return false;
        }
    }
    if (challenge != NULL && challenge[0] != '\0') {
        if (method == NULL || strcmp(method, "S256") != 0) {
            redirect_error(c, redirect, state, "invalid_request",
                           "code_challenge_method must be S256");
            return false;
        }
        size_t n = strlen(challenge);
        bool ok = n >= 43 && n <= 128;
        for (size_t i = 0; ok && i < n; i++) {
            char ch = challenge[i];
            ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                 ch == '-' || ch == '_';
        }
        if (!ok) {
            redirect_error(c, redirect, state, "invalid_request", "code_challenge is malformed");
            return false;
        }
    } else if (c->set.require_pkce) {
        redirect_error(c, redirect, state, "invalid_request", "code_challenge is required");
        return false;
    }
    return true;
}

/* offered_n is the number of places in the list of tenants a consent offers: those chosen
 * through /_sim/consent, or every tenant, however many (world_lock held). */
static size_t offered_n(sim *s)
{
    return s->nconsent > 0 ? s->nconsent : s->ntenants;
}

/* offered_at returns the tenant at place i of the consent's list (borrowed; world_lock
 * held), or NULL when there is none there: a tenant chosen through /_sim/consent that does
 * not exist, or one chosen twice (its first place stands). */
static sim_tenant *offered_at(sim *s, size_t i)
{
    if (s->nconsent == 0) {
        return s->tenants[i];
    }
    for (size_t k = 0; k < i; k++) {
        if (xs_uuid_eq(&s->consent[k], &s->consent[i])) {
            return NULL;
        }
    }
    return sim__tenant_find(s, &s->consent[i]);
}

/* authz_grant finishes the valid request a for the test user: it connects the tenants
 * consented to (the places ticked, offered_n of them; NULL: every tenant offered) under a
 * new authEventId, stores a code for them and redirects with code, scope, state and
 * session_state (world_lock held for reading, so the tenants stand still). */
static void authz_grant(sim_call *c, const authz *a, const bool *ticked)
{
    sim *s = c->s;
    const char *redirect = a->v[AZ_REDIRECT], *scope = a->v[AZ_SCOPE];
    const char *challenge = a->v[AZ_CHALLENGE], *nonce = a->v[AZ_NONCE];
    xs_time now = sim__now(s);
    sim_code *code = calloc(1, sizeof(*code));
    char *token = random_token(32);
    if (code == NULL || token == NULL) {
        free(code);
        free(token);
        sim__reply_text(c, 500, "out of memory");
        return;
    }
    code->redirect_uri = strdup(redirect);
    code->scope = strdup(scope);
    code->challenge = challenge != NULL && challenge[0] ? strdup(challenge) : NULL;
    code->nonce = nonce != NULL ? strdup(nonce) : NULL;
    code->expires = now + c->set.code_ttl_ms;
    if (code->redirect_uri == NULL || code->scope == NULL ||
        (code->challenge == NULL && challenge != NULL && challenge[0]) ||
        (code->nonce == NULL && nonce != NULL)) {
        free_code(code);
        free(token);
        sim__reply_text(c, 500, "out of memory");
        return;
    }
    char ss[XS_UUID_STR];
    pthread_mutex_lock(&s->id_mu);
    sim_rng rng = {c->set.seed ^ (uint64_t)now ^ s->next_grant * 977};
    uint8_t rnd[16];
    xs_crypto_random(rnd, sizeof(rnd));
    rng.s ^= sim__hash64(rnd, sizeof(rnd), 5);
    sim__rng_uuid(&rng, &code->auth_event);
    xs_uuid_format(&code->auth_event, ss); /* once stored, the code is another thread's */
    xs_err e = XS_OK;
    size_t nt = offered_n(s);
    for (size_t i = 0; i < nt && e == XS_OK; i++) {
        sim_tenant *t = offered_at(s, i);
        if (t != NULL && (ticked == NULL || ticked[i])) {
            e = connect_tenant(s, &t->id, &code->auth_event, &rng, now);
        }
    }
    if (e == XS_OK) {
        e = sim__smap_put(&s->codes, token, code, NULL);
    }
    pthread_mutex_unlock(&s->id_mu);
    if (e != XS_OK) {
        free_code(code);
        free(token);
        sim__reply_text(c, 500, "out of memory");
        return;
    }
    const char *kv[] = {"code",         token,           "scope", scope, "state",
                        a->v[AZ_STATE], "session_state", ss,      NULL};
    redirect_to(c, redirect, kv);
    free(token);
}

/* ------------------------------------------------------------------ consent page */

/* What each scope lets the app do, as the consent page says it; a scope not listed here
 * (XS_SIM_SCOPES may name any) is shown by its name. */
static const struct {
    const char *scope, *words;
} scope_words[] = {
    {"openid", "Confirm who you are with your Xero sign-in"},
    {"profile", "See your name"},
    {"email", "See your email address"},
    {"offline_access", "Keep access to your data when you are not using the app"},
    {"accounting.contacts", "View and manage your contacts"},
    {"accounting.contacts.read", "View your contacts"},
    {"accounting.transactions", "View and manage your business transactions"},
    {"accounting.transactions.read", "View your business transactions"},
    {"accounting.invoices", "View and manage your invoices"},
    {"accounting.invoices.read", "View your invoices"},
    {"accounting.payments", "View and manage your payments"},
    {"accounting.payments.read", "View your payments"},
    {"accounting.banktransactions", "View and manage your bank transactions"},
    {"accounting.banktransactions.read", "View your bank transactions"},
    {"accounting.settings", "View and manage your organisation settings"},
    {"accounting.settings.read", "View your organisation settings"},
    {"files", "View and manage your files and folders"},
    {"files.read", "View your files and folders"},
    {"practicemanager", "View and manage your Practice Manager data"},
    {"practicemanager.read", "View your Practice Manager data"},
    {"practicemanager.client", "View and manage your Practice Manager client data"},
    {"practicemanager.client.read", "View your Practice Manager client data"},
    {"practicemanager.job", "View and manage your Practice Manager job data"},
    {"practicemanager.job.read", "View your Practice Manager job data"},
};

/* The path the consent page posts to. */
#define CONSENT_PATH "/identity/connect/authorize/consent"

static const char consent_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>Xero — Allow access</title>\n<style>\n"
    "body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1e272e}\n"
    "main{max-width:32rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:8px}\n"
    "h1{font-size:1.4rem}h2{font-size:1.05rem}fieldset{border:1px solid #ccd;margin:1rem 0}\n"
    ".error{color:#a40000;font-weight:bold}.org{margin:.4rem 0}\n"
    "button{font-size:1rem;padding:.6rem 1.2rem;margin-right:.6rem;border-radius:4px;"
    "border:1px solid #0b5394}\n#allow{background:#0b5394;color:#fff}"
    "#cancel{background:#fff;color:#0b5394}\n"
    "</style>\n</head>\n<body>\n<main>\n";

/* scopes_html appends the requested scopes to b as list items in words. */
static void scopes_html(xs_buf *b, const char *scope)
{
    for (const char *p = scope; *p != '\0';) {
        size_t n = strcspn(p, " ");
        if (n > 0) {
            const char *words = NULL;
            for (size_t i = 0; words == NULL && i < sizeof(scope_words) / sizeof(*scope_words);
                 i++) {
                if (strlen(scope_words[i].scope) == n && strncmp(scope_words[i].scope, p, n) == 0) {
                    words = scope_words[i].words;
                }
            }
            xs_buf_puts(b, "<li>");
            if (words != NULL) {
                xs_buf_puts(b, words);
            } else {
                char name[1024]; /* a valid request's scope is shorter */
                snprintf(name, sizeof(name), "%.*s", (int)n, p);
                sim__html_append(b, name);
            }
            xs_buf_puts(b, "</li>\n");
        }
        p += n;
        p += strspn(p, " ");
    }
}

/* tenants_html appends a checkbox per tenant offered to b, ticked when checked. */
static void tenants_html(xs_buf *b, sim *s, bool checked)
{
    size_t nt = offered_n(s), shown = 0;
    for (size_t i = 0; i < nt; i++) {
        sim_tenant *t = offered_at(s, i);
        if (t == NULL) {
            continue;
        }
        xs_buf_printf(b,
                      "<div class=\"org\"><input type=\"checkbox\" id=\"tenant-%s\" "
                      "name=\"tenant\" value=\"%s\"%s> <label for=\"tenant-%s\">",
                      t->ids, t->ids, checked ? " checked" : "", t->ids);
        sim__html_append(b, t->name);
        xs_buf_puts(b, "</label></div>\n");
        shown++;
    }
    if (shown == 0) {
        xs_buf_puts(b, "<p>You have no organisation to connect.</p>\n");
    }
}

/* consent_page replies 200 with the consent page for the valid request a: the app, what its
 * scopes allow, a checkbox per tenant offered (ticked when checked), Allow access and Cancel,
 * and a's parameters in hidden fields for the POST to CONSENT_PATH; error, when not NULL, is
 * said first (world_lock held for reading). */
static void consent_page(sim_call *c, const authz *a, const char *error, bool checked)
{
    sim *s = c->s;
    xs_buf b;
    xs_buf_init(&b, 4096);
    xs_buf_puts(&b, consent_head);
    xs_buf_puts(&b, "<h1>Allow <span id=\"app\">");
    sim__html_append(&b, s->app_name);
    xs_buf_puts(&b, "</span> to access your Xero data?</h1>\n<p>Signed in as ");
    sim__html_append(&b, s->user.email);
    xs_buf_puts(&b, "</p>\n<form method=\"post\" action=\"" CONSENT_PATH "\">\n");
    if (error != NULL) {
        xs_buf_puts(&b, "<p class=\"error\" id=\"error\" role=\"alert\">");
        sim__html_append(&b, error);
        xs_buf_puts(&b, "</p>\n");
    }
    xs_buf_puts(&b, "<h2>It will be able to</h2>\n<ul id=\"scopes\">\n");
    scopes_html(&b, a->v[AZ_SCOPE]);
    xs_buf_puts(&b, "</ul>\n<fieldset>\n<legend>Organisations to connect</legend>\n");
    tenants_html(&b, s, checked);
    xs_buf_puts(&b, "</fieldset>\n");
    for (size_t i = 0; i < AZ_N; i++) {
        if (a->v[i] != NULL) {
            xs_buf_printf(&b, "<input type=\"hidden\" name=\"%s\" value=\"", az_names[i]);
            sim__html_append(&b, a->v[i]);
            xs_buf_puts(&b, "\">\n");
        }
    }
    xs_buf_puts(&b, "<button type=\"submit\" id=\"allow\" name=\"action\" value=\"allow\">Allow "
                    "access</button>\n<button type=\"submit\" id=\"cancel\" name=\"action\" "
                    "value=\"cancel\">Cancel</button>\n</form>\n</main>\n</body>\n</html>\n");
    char *html = xs_buf_take(&b, NULL);
    if (html != NULL) {
        /* the page acts on the person's behalf: never cached, never framed by another site */
        sim__reply_header(c, "Cache-Control", "no-store");
        sim__reply_header(c, "X-Frame-Options", "DENY");
        sim__reply_header(c, "Content-Security-Policy",
                          "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'");
    }
    sim__reply_html(c, 200, html);
}

/* accepts_html tells whether an Accept header names text/html: a person's browser, which
 * gets the consent page. curl, libcurl and the tests' clients send none, or one accepting
 * anything, and are answered at once. */
static bool accepts_html(const char *accept)
{
    for (const char *p = accept; p != NULL && *p != '\0';) {
        p += strspn(p, " \t");
        size_t n = strcspn(p, ",; \t");
        if (n == 9 && strncasecmp(p, "text/html", 9) == 0) {
            return true;
        }
        p = strchr(p, ',');
        if (p != NULL) {
            p++;
        }
    }
    return false;
}

void sim__h_authorize(sim_call *c)
{
    snprintf(c->endpoint, sizeof(c->endpoint), "%s /identity/connect/authorize", c->method);
    if (strcmp(c->method, "GET") != 0) {
        sim__reply_text(c, 405, "Method Not Allowed");
        return;
    }
    authz a = {0};
    authz_from_query(c, &a);
    if (!authz_check(c, &a)) {
        return;
    }
    if (accepts_html(xs_http_req_header(c->req, "Accept"))) {
        consent_page(c, &a, NULL, true);
    } else {
        authz_grant(c, &a, NULL);
    }
}

/* consent_ticked reads the tenants ticked on a consent form (its "tenant" fields) into
 * ticked, one flag per place of the consent's list (offered_n), and counts them in *n.
 * XS_EINVAL when one is not a tenant the consent offers, XS_EPARSE for a bad escape,
 * XS_ENOMEM. */
static xs_err consent_ticked(sim *s, const char *body, size_t len, bool *ticked, size_t *n)
{
    size_t nt = offered_n(s), pos = 0;
    char *v = NULL;
    xs_err e;
    *n = 0;
    while ((e = sim__form_next(body, len, "tenant", &pos, &v)) == XS_OK) {
        xs_uuid id;
        bool found = false;
        if (xs_uuid_parse(v, &id)) {
            for (size_t i = 0; !found && i < nt; i++) {
                sim_tenant *t = offered_at(s, i);
                if (t != NULL && xs_uuid_eq(&t->id, &id)) {
                    *n += !ticked[i];
                    ticked[i] = found = true;
                }
            }
        }
        free(v);
        if (!found) {
            return XS_EINVAL;
        }
    }
    return e == XS_ENOTFOUND ? XS_OK : e;
}

/* consent_answer acts on a valid consent form: Cancel redirects with access_denied; Allow
 * with tenants ticked grants them; Allow with none shows the page again with an error. */
static void consent_answer(sim_call *c, const authz *a, const char *action, const char *body,
                           size_t len)
{
    if (strcmp(action, "cancel") == 0) {
        /* what Xero sends when the person declines: no description */
        redirect_error(c, a->v[AZ_REDIRECT], a->v[AZ_STATE], "access_denied", NULL);
        return;
    }
    bool *ticked = calloc(offered_n(c->s) + 1, sizeof(*ticked));
    size_t n = 0;
    xs_err e = ticked != NULL ? consent_ticked(c->s, body, len, ticked, &n) : XS_ENOMEM;
    if (e == XS_ENOMEM) {
        sim__reply_text(c, 500, "out of memory");
    } else if (e != XS_OK) {
        sim__reply_text(c, 400,
                        "Error: invalid_request. An organisation chosen is not one this consent "
                        "offers.");
    } else if (n == 0) {
        consent_page(c, a, "Choose at least one organisation to allow access to.", false);
    } else {
        authz_grant(c, a, ticked);
    }
    free(ticked);
}

void sim__h_authorize_consent(sim_call *c)
{
    snprintf(c->endpoint, sizeof(c->endpoint), "%s " CONSENT_PATH, c->method);
    if (strcmp(c->method, "POST") != 0) {
        sim__reply_text(c, 405, "Method Not Allowed");
        return;
    }
    const char *ctype = xs_http_req_header(c->req, "Content-Type");
    size_t flen = strlen("application/x-www-form-urlencoded");
    if (ctype == NULL || strncasecmp(ctype, "application/x-www-form-urlencoded", flen) != 0 ||
        (ctype[flen] != '\0' && ctype[flen] != ';' && ctype[flen] != ' ')) {
        sim__reply_text(c, 400,
                        "Error: invalid_request. The consent form must be sent as "
                        "application/x-www-form-urlencoded.");
        return;
    }
    size_t len = 0;
    const char *body = xs_http_req_body(c->req, &len);
    authz a = {0};
    char *action = NULL;
    xs_err e = authz_from_form(body, len, &a);
    if (e == XS_OK) {
        e = sim__form_get(body, len, "action", &action);
    }
    if (e == XS_ENOMEM) {
        sim__reply_text(c, 500, "out of memory");
    } else if (e != XS_OK) {
        sim__reply_text(c, 400, "Error: invalid_request. The consent form could not be read.");
    } else if (authz_check(c, &a)) {
        if (strcmp(action, "allow") == 0 || strcmp(action, "cancel") == 0) {
            consent_answer(c, &a, action, body, len);
        } else {
            sim__reply_text(c, 400, "Error: invalid_request. The consent form could not be read.");
        }
    }
    free(action);
    authz_fini(&a);
}

/* ------------------------------------------------------------------ tokens */

/* issue makes an access token (and id token) for g and writes the token reply (id_mu
 * held). refresh is the refresh token to return, or NULL. */
static void issue(sim_call *c, sim_grant *g, const char *refresh, const char *nonce, xs_time now)
{
    sim *s = c->s;
    int64_t ttl = c->set.access_ttl_ms;
    char jti[33], sid[33], auth_event[XS_UUID_STR];
    uint8_t rnd[16];
    xs_crypto_random(rnd, sizeof(rnd));
    for (int i = 0; i < 16; i++) {
        snprintf(jti + 2 * i, 3, "%02x", rnd[i]);
    }
    xs_crypto_random(rnd, sizeof(rnd));
    for (int i = 0; i < 16; i++) {
        snprintf(sid + 2 * i, 3, "%02x", rnd[i]);
    }
    xs_uuid_format(&g->auth_event, auth_event);
    char iss[SIM_URL_MAX + 16];
    snprintf(iss, sizeof(iss), "%s/identity", s->public_url);
    json_t *scopes = json_array();
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", g->scope);
    for (char *save = NULL, *w = strtok_r(buf, " ", &save); w != NULL;
         w = strtok_r(NULL, " ", &save)) {
        json_array_append_new(scopes, json_string(w));
    }
    json_t *payload =
        json_pack("{s:I,s:I,s:s,s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:s,s:s,s:o,s:[s]}", "nbf",
                  (json_int_t)(now / 1000), "exp", (json_int_t)((now + ttl) / 1000), "iss", iss,
                  "aud", "https://identity.xero.com/resources", "client_id", s->client_id, "sub",
                  s->user.ids, "auth_time", (json_int_t)(now / 1000), "xero_userid", s->user.ids,
                  "global_session_id", sid, "sid", sid, "jti", jti, "authentication_event_id",
                  auth_event, "scope", scopes, "amr", "pwd");
    char *access = make_jwt(s, payload);
    json_decref(payload);
    sim_access *a = calloc(1, sizeof(*a));
    if (access == NULL || a == NULL) {
        free(access);
        free(a);
        sim__reply_oauth_error(c, 500, "server_error", NULL);
        return;
    }
    a->grant = g;
    a->issued = now;
    a->expires = now + ttl;
    sim__smap_each(&s->access, purge_access, &now);
    if (sim__smap_put(&s->access, access, a, NULL) != XS_OK) {
        free(access);
        free(a);
        sim__reply_oauth_error(c, 500, "server_error", NULL);
        return;
    }
    json_t *out = json_object();
    if (list_has(g->scope, ' ', "openid")) {
        json_t *idp = json_pack(
            "{s:I,s:I,s:s,s:s,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "nbf", (json_int_t)(now / 1000),
            "exp", (json_int_t)((now + 300000) / 1000), "iss", iss, "aud", s->client_id, "iat",
            (json_int_t)(now / 1000), "sub", s->user.ids, "xero_userid", s->user.ids, "email",
            s->user.email, "given_name", s->user.first, "family_name", s->user.last,
            "preferred_username", s->user.email, "sid", sid);
        if (nonce != NULL) {
            json_object_set_new(idp, "nonce", json_string(nonce));
        }
        char *idt = make_jwt(s, idp);
        json_decref(idp);
        if (idt != NULL) {
            json_object_set_new(out, "id_token", json_string(idt));
        }
        free(idt);
    }
    json_object_set_new(out, "access_token", json_string(access));
    json_object_set_new(out, "expires_in", json_integer(ttl / 1000));
    json_object_set_new(out, "token_type", json_string("Bearer"));
    if (refresh != NULL) {
        json_object_set_new(out, "refresh_token", json_string(refresh));
    }
    json_object_set_new(out, "scope", json_string(g->scope));
    free(access);
    sim__reply_header(c, "Cache-Control", "no-store");
    sim__reply_header(c, "Pragma", "no-cache");
    sim__reply_json(c, 200, out);
}

static void token_code(sim_call *c, const char *body, size_t len, xs_time now)
{
    sim *s = c->s;
    char *code = NULL, *redirect = NULL, *verifier = NULL;
    sim__form_get(body, len, "code", &code);
    sim__form_get(body, len, "redirect_uri", &redirect);
    sim__form_get(body, len, "code_verifier", &verifier);
    pthread_mutex_lock(&s->id_mu);
    sim_code *cd = code != NULL ? sim__smap_get(&s->codes, code) : NULL;
    const char *why = NULL;
    if (cd == NULL) {
        why = "The authorization code is not valid.";
    } else if (cd->used) {
        why = "The authorization code has already been used.";
    } else if (cd->expires <= now) {
        why = "The authorization code has expired.";
    } else if (redirect == NULL || strcmp(redirect, cd->redirect_uri) != 0) {
        why = "The redirect_uri does not match the one used to authorize.";
    } else if (cd->challenge != NULL) {
        if (verifier == NULL || strlen(verifier) < 43 || strlen(verifier) > 128) {
            why = "The code_verifier is missing or malformed.";
        } else {
            uint8_t h[XS_SHA256_LEN];
            char *enc = NULL;
            xs_sha256(verifier, strlen(verifier), h);
            if (xs_base64url_encode(h, sizeof(h), &enc) != XS_OK ||
                !xs_crypto_equal_str(enc, cd->challenge)) {
                why = "The code_verifier does not match the code_challenge.";
            }
            free(enc);
        }
    }
    if (why == NULL) {
        cd->used = true;
    }
    if (why != NULL) {
        pthread_mutex_unlock(&s->id_mu);
        sim__reply_oauth_error(c, 400, "invalid_grant", why);
        goto out;
    }
    sim_grant *g = calloc(1, sizeof(*g));
    if (g == NULL || (g->scope = strdup(cd->scope)) == NULL) {
        free(g);
        pthread_mutex_unlock(&s->id_mu);
        sim__reply_oauth_error(c, 500, "server_error", NULL);
        goto out;
    }
    g->id = ++s->next_grant;
    g->auth_event = cd->auth_event;
    g->next = s->grants;
    s->grants = g;
    if (list_has(g->scope, ' ', "offline_access")) {
        g->refresh_cur = random_token(32);
        g->cur_issued = now;
        if (g->refresh_cur != NULL) {
            sim__smap_put(&s->refresh, g->refresh_cur, g, NULL);
        }
    }
    issue(c, g, g->refresh_cur, cd->nonce, now);
    pthread_mutex_unlock(&s->id_mu);
out:
    free(code);
    free(redirect);
    free(verifier);
}

static void token_refresh(sim_call *c, const char *body, size_t len, xs_time now)
{
    sim *s = c->s;
    char *rt = NULL;
    if (sim__form_get(body, len, "refresh_token", &rt) != XS_OK) {
        sim__reply_oauth_error(c, 400, "invalid_request", "refresh_token is required");
        return;
    }
    pthread_mutex_lock(&s->id_mu);
    sim_grant *g = sim__smap_get(&s->refresh, rt);
    const char *why = NULL;
    if (g == NULL || g->revoked) {
        why = "The refresh token is not valid (rotated, revoked or unknown).";
    } else if (c->fault == SIM_FAULT_REVOKED) {
        revoke_locked(s);
        why = "The grant has been revoked.";
    } else if (g->refresh_cur != NULL && strcmp(rt, g->refresh_cur) == 0) {
        if (now - g->cur_issued > c->set.refresh_ttl_ms) {
            why = "The refresh token has expired.";
        } else {
            char *next = random_token(32);
            if (next == NULL) {
                why = "out of memory";
            } else {
                if (g->refresh_prev != NULL) {
                    sim__smap_del(&s->refresh, g->refresh_prev);
                    free(g->refresh_prev);
                }
                g->refresh_prev = g->refresh_cur;
                g->prev_rotated = now;
                g->refresh_cur = next;
                g->cur_issued = now;
                sim__smap_put(&s->refresh, next, g, NULL);
            }
        }
    } else if (g->refresh_prev != NULL && strcmp(rt, g->refresh_prev) == 0) {
        if (now - g->prev_rotated > c->set.refresh_grace_ms) {
            why = "The refresh token was rotated and its grace period has passed.";
        } else {
            /* the reply carrying the replacement was lost: the unused replacement gives way
             * to a new one */
            char *next = random_token(32);
            if (next == NULL) {
                why = "out of memory";
            } else {
                sim__smap_del(&s->refresh, g->refresh_cur);
                free(g->refresh_cur);
                g->refresh_cur = next;
                g->cur_issued = now;
                sim__smap_put(&s->refresh, next, g, NULL);
            }
        }
    } else {
        why = "The refresh token is not valid.";
    }
    if (why != NULL) {
        pthread_mutex_unlock(&s->id_mu);
        sim__reply_oauth_error(c, 400, "invalid_grant", why);
        free(rt);
        return;
    }
    issue(c, g, g->refresh_cur, NULL, now);
    pthread_mutex_unlock(&s->id_mu);
    free(rt);
}

/* client_post opens a call of the client to endpoint path: it names the call's endpoint and
 * returns the form body (borrowed from the request; its length in *len), or NULL once it has
 * answered a call that is not a POST, or whose client does not authenticate, itself. */
static const char *client_post(sim_call *c, const char *path, size_t *len)
{
    snprintf(c->endpoint, sizeof(c->endpoint), "%s %s", c->method, path);
    if (strcmp(c->method, "POST") != 0) {
        sim__reply_oauth_error(c, 405, "invalid_request", "use POST");
        return NULL;
    }
    const char *body = xs_http_req_body(c->req, len);
    if (!client_auth(c, body, *len)) {
        sim__reply_oauth_error(c, 400, "invalid_client", NULL);
        return NULL;
    }
    return body;
}

void sim__h_token(sim_call *c)
{
    size_t len = 0;
    const char *body = client_post(c, "/connect/token", &len);
    if (body == NULL) {
        return;
    }
    char *gt = NULL;
    sim__form_get(body, len, "grant_type", &gt);
    xs_time now = sim__now(c->s);
    if (gt != NULL && strcmp(gt, "authorization_code") == 0) {
        token_code(c, body, len, now);
    } else if (gt != NULL && strcmp(gt, "refresh_token") == 0) {
        token_refresh(c, body, len, now);
    } else {
        sim__reply_oauth_error(c, 400, "unsupported_grant_type", NULL);
    }
    free(gt);
}

void sim__h_revoke(sim_call *c)
{
    sim *s = c->s;
    size_t len = 0;
    const char *body = client_post(c, "/connect/revocation", &len);
    if (body == NULL) {
        return;
    }
    char *tok = NULL;
    if (sim__form_get(body, len, "token", &tok) != XS_OK) {
        sim__reply_oauth_error(c, 400, "invalid_request", "token is required");
        return;
    }
    pthread_mutex_lock(&s->id_mu);
    sim_grant *g = sim__smap_get(&s->refresh, tok);
    sim_access *a = g == NULL ? sim__smap_get(&s->access, tok) : NULL;
    if (g != NULL || a != NULL) {
        /* revoking removes every connection of the user to the app */
        revoke_locked(s);
    }
    pthread_mutex_unlock(&s->id_mu);
    free(tok);
    sim__reply_text(c, 200, "");
}

/* ------------------------------------------------------------------ bearer checks */

bool sim__auth_bearer(sim_call *c)
{
    sim *s = c->s;
    const char *auth = xs_http_req_header(c->req, "Authorization");
    if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0) {
        sim__reply_header(c, "WWW-Authenticate", "Bearer");
        sim__reply_problem(c, 401, "Unauthorized", "AuthenticationUnsuccessful");
        return false;
    }
    const char *tok = auth + 7;
    while (*tok == ' ') {
        tok++;
    }
    xs_time now = sim__now(s);
    pthread_mutex_lock(&s->id_mu);
    sim_access *a = sim__smap_get(&s->access, tok);
    if (a == NULL || a->grant->revoked) {
        pthread_mutex_unlock(&s->id_mu);
        sim__reply_header(c, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
        sim__reply_problem(c, 401, "Unauthorized", "AuthenticationUnsuccessful");
        return false;
    }
    if (a->expires <= now) {
        char detail[96], when[XS_TIME_ISO_MAX];
        sim__time_format_plain(a->expires, when);
        /* Xero writes MM/dd/yyyy HH:mm:ss */
        snprintf(detail, sizeof(detail), "TokenExpired: token expired at %.2s/%.2s/%.4s %.8s",
                 when + 5, when + 8, when, when + 11);
        pthread_mutex_unlock(&s->id_mu);
        sim__reply_header(c, "WWW-Authenticate",
                          "Bearer error=\"invalid_token\", error_description=\"The token "
                          "expired\"");
        sim__reply_problem(c, 401, "Unauthorized", detail);
        return false;
    }
    c->grant = a->grant;
    snprintf(c->scope, sizeof(c->scope), "%s", a->grant->scope);
    pthread_mutex_unlock(&s->id_mu);
    return true;
}

bool sim__auth_tenant(sim_call *c)
{
    sim *s = c->s;
    const char *tid = xs_http_req_header(c->req, "xero-tenant-id");
    xs_uuid id;
    bool ok = tid != NULL && xs_uuid_parse(tid, &id);
    if (ok) {
        pthread_mutex_lock(&s->id_mu);
        ok = !c->grant->revoked && conn_find_tenant(s, &id) != NULL;
        pthread_mutex_unlock(&s->id_mu);
    }
    sim_tenant *t = ok ? sim__tenant_find(s, &id) : NULL;
    if (t == NULL) {
        sim__reply_problem(c, 403, "Forbidden", "AuthenticationUnsuccessful");
        return false;
    }
    c->tenant = t;
    return true;
}

/* ------------------------------------------------------------------ connections */

static json_t *conn_json(sim *s, const sim_conn *cn)
{
    char id[XS_UUID_STR], tid[XS_UUID_STR], ev[XS_UUID_STR], cr[XS_TIME_ISO_MAX],
        up[XS_TIME_ISO_MAX];
    xs_uuid_format(&cn->id, id);
    xs_uuid_format(&cn->tenant, tid);
    xs_uuid_format(&cn->auth_event, ev);
    sim__time_format_7(cn->created, cr);
    sim__time_format_7(cn->updated, up);
    sim_tenant *t = sim__tenant_find(s, &cn->tenant);
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "id", id, "authEventId", ev, "tenantId", tid,
                     "tenantType", "ORGANISATION", "tenantName", t ? t->name : "", "createdDateUtc",
                     cr, "updatedDateUtc", up);
}

void sim__h_connections(sim_call *c)
{
    sim *s = c->s;
    snprintf(c->endpoint, sizeof(c->endpoint), "%s /connections", c->method);
    if (strcmp(c->method, "GET") != 0) {
        sim__reply_json(c, 405, json_pack("{s:s}", "Message", "Method Not Allowed"));
        return;
    }
    if (!sim__auth_bearer(c)) {
        return;
    }
    if (c->fault == SIM_FAULT_REVOKED) {
        sim__revoke_all(s);
        sim__reply_problem(c, 401, "Unauthorized", "AuthenticationUnsuccessful");
        return;
    }
    const char *ev = xs_http_req_query(c->req, "authEventId");
    xs_uuid evid;
    bool filter = ev != NULL && xs_uuid_parse(ev, &evid);
    json_t *arr = json_array();
    pthread_mutex_lock(&s->id_mu);
    /* oldest first: the list is newest first; the ones listed gathered, then read backwards */
    size_t n = 0, cap = 0;
    const sim_conn **pick = NULL;
    bool ok = arr != NULL;
    for (sim_conn *cn = s->conns; ok && cn != NULL; cn = cn->next) {
        if (filter && !xs_uuid_eq(&cn->auth_event, &evid)) {
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            const sim_conn **g = realloc(pick, cap * sizeof(*g));
            if (g == NULL) {
                ok = false;
                break;
            }
            pick = g;
        }
        pick[n++] = cn;
    }
    for (size_t k = n; ok && k > 0; k--) {
        ok = json_array_append_new(arr, conn_json(s, pick[k - 1])) == 0;
    }
    pthread_mutex_unlock(&s->id_mu);
    free(pick);
    if (!ok) {
        json_decref(arr);
        sim__reply_problem(c, 500, "Internal Server Error", "out of memory");
        return;
    }
    sim__reply_json(c, 200, arr);
}

void sim__h_connection_delete(sim_call *c, const char *id)
{
    sim *s = c->s;
    snprintf(c->endpoint, sizeof(c->endpoint), "%s /connections/{id}", c->method);
    if (strcmp(c->method, "DELETE") != 0) {
        sim__reply_json(c, 405, json_pack("{s:s}", "Message", "Method Not Allowed"));
        return;
    }
    if (!sim__auth_bearer(c)) {
        return;
    }
    xs_uuid u;
    bool found = false;
    if (xs_uuid_parse(id, &u)) {
        pthread_mutex_lock(&s->id_mu);
        for (sim_conn **pp = &s->conns; *pp != NULL; pp = &(*pp)->next) {
            if (xs_uuid_eq(&(*pp)->id, &u)) {
                sim_conn *d = *pp;
                char k[XS_UUID_STR];
                xs_uuid_format(&d->tenant, k);
                sim__smap_del(&s->conn_tenants, k);
                *pp = d->next;
                free(d);
                found = true;
                break;
            }
        }
        pthread_mutex_unlock(&s->id_mu);
    }
    if (!found) {
        sim__reply_problem(c, 404, "Not Found", "The connection could not be found.");
        return;
    }
    c->status = 204;
}

json_t *sim__identity_json(sim *s)
{
    json_t *o = json_object();
    json_t *grants = json_array(), *conns = json_array();
    pthread_mutex_lock(&s->id_mu);
    for (sim_grant *g = s->grants; g != NULL; g = g->next) {
        char ev[XS_UUID_STR];
        xs_uuid_format(&g->auth_event, ev);
        json_array_append_new(
            grants, json_pack("{s:I,s:s,s:s,s:b,s:b,s:b}", "id", (json_int_t)g->id, "authEventId",
                              ev, "scope", g->scope, "revoked", g->revoked, "refreshable",
                              g->refresh_cur != NULL, "in_grace", g->refresh_prev != NULL));
    }
    for (sim_conn *cn = s->conns; cn != NULL; cn = cn->next) {
        json_array_append_new(conns, conn_json(s, cn));
    }
    size_t naccess = s->access.n;
    pthread_mutex_unlock(&s->id_mu);
    json_object_set_new(o, "user",
                        json_pack("{s:s,s:s}", "id", s->user.ids, "email", s->user.email));
    json_object_set_new(o, "grants", grants);
    json_object_set_new(o, "connections", conns);
    json_object_set_new(o, "access_tokens", json_integer((json_int_t)naccess));
    return o;
}
