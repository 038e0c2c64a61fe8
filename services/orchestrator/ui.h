/* ui.h: the dashboard (docs/UI.md): its static files, compiled into the binary
 * (scripts/embed-ui.cmake), served under /ui/ without an API key: they hold no data; every
 * figure the page shows comes from the REST API, with the key the person signs in with. */
#ifndef ORCH_UI_H
#define ORCH_UI_H

#include <stddef.h>

#include "xs/http.h"

/* One file of services/orchestrator/ui/. */
typedef struct orch_ui_asset {
    const char *name;  /* "app.js" */
    const char *ctype; /* its media type */
    const char *data;  /* its bytes (NUL-terminated beyond len) */
    size_t len;
    const char *etag; /* "\"<first 32 hex digits of its SHA-256>\"" */
} orch_ui_asset;

extern const orch_ui_asset orch_ui_assets[];
extern const size_t orch_ui_nassets;

/* orch_ui_file: GET /ui/... (the route "/ui/" "*"): /ui is a redirect to /ui/; /ui/ is index.html;
 * /ui/{file} the file, with If-None-Match answered 304, and the headers that keep the page to
 * itself: a Content-Security-Policy allowing only its own scripts, styles and API, no framing, no
 * referrer, no sniffing. 404 for any other name. */
void orch_ui_file(xs_http_req *req, void *arg);

#endif
