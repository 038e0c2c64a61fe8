/* ui.c: the dashboard's static files under /ui/ (ui.h, docs/UI.md). */
#include "ui.h"

#include <string.h>

/* What a browser may do with the page: its own scripts, styles and images, and requests to
 * this origin only (the REST API); no inline script, no plugin, no framing by any page (no
 * clickjacking), forms only to itself, no <base> moves. */
#define UI_CSP                                                                                     \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

/* etag_matches tells whether an If-None-Match value lists etag (or is "*"). */
static bool etag_matches(const char *inm, const char *etag)
{
    if (inm == NULL) {
        return false;
    }
    if (strcmp(inm, "*") == 0) {
        return true;
    }
    size_t n = strlen(etag);
    for (const char *p = strstr(inm, etag); p != NULL; p = strstr(p + 1, etag)) {
        /* A whole entry: W/ and blanks or commas around it, nothing glued on. */
        char after = p[n];
        if (after == '\0' || after == ',' || after == ' ') {
            return true;
        }
    }
    return false;
}

void orch_ui_file(xs_http_req *req, void *arg)
{
    (void)arg;
    /* "/ui" goes to "/ui/", so that the page's relative links resolve under it. */
    if (strcmp(xs_http_req_raw_path(req), "/ui") == 0) {
        xs_http_add_header(req, "Location", "/ui/");
        xs_http_reply(req, 308, NULL, NULL, 0);
        return;
    }
    const char *name = xs_http_req_param(req, "*");
    if (name == NULL || name[0] == '\0') {
        name = "index.html";
    }
    const orch_ui_asset *a = NULL;
    for (size_t i = 0; i < orch_ui_nassets && a == NULL; i++) {
        if (strcmp(orch_ui_assets[i].name, name) == 0) {
            a = &orch_ui_assets[i];
        }
    }
    if (a == NULL) {
        xs_http_reply_error(req, 404, "not_found", NULL, "the dashboard has no file %s", name);
        return;
    }
    /* no-cache: checked again every time (cheap with the ETag), so a new binary's page is
     * seen at once. */
    static const char *const headers[][2] = {
        {"Content-Security-Policy", UI_CSP},
        {"X-Frame-Options", "DENY"},
        {"X-Content-Type-Options", "nosniff"},
        {"Referrer-Policy", "no-referrer"},
        {"Cross-Origin-Opener-Policy", "same-origin"},
        {"Cross-Origin-Resource-Policy", "same-origin"},
        {"Cache-Control", "no-cache"},
    };
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        xs_http_add_header(req, headers[i][0], headers[i][1]);
    }
    xs_http_add_header(req, "ETag", a->etag);
    if (etag_matches(xs_http_req_header(req, "If-None-Match"), a->etag)) {
        xs_http_reply(req, 304, NULL, NULL, 0);
        return;
    }
    xs_http_reply(req, 200, a->ctype, a->data, a->len);
}
