/*
 * xero.h: the HTTP client for Xero, over libcurl. The only module that speaks to Xero.
 *
 * Three bases, each configurable so the simulator can stand in: the login host (the
 * authorize page people are sent to), the identity host (token and revocation) and the API
 * host (GET/DELETE /connections and the Accounting API under /api.xro/2.0).
 *
 * One xs_xero handle per thread: it keeps one libcurl handle and so one keep-alive
 * connection per host. Every call fills an xs_xero_call describing what happened (method,
 * path without host, status, duration, the rate-limit headers, Retry-After, the error): the
 * caller writes it to the audit (lib/xs/audit.h) and feeds the rate budget with it. No token,
 * secret or body is ever logged or put in an xs_xero_call.
 *
 * Replies that say they are JSON are parsed with xs_json_parse, so money stays exact.
 */
#ifndef XS_XERO_H
#define XS_XERO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xs/clock.h"
#include "xs/err.h"
#include "xs/json.h"
#include "xs/log.h"

#define XS_XERO_PATH_MAX    512
#define XS_XERO_ERROR_MAX   256
#define XS_XERO_PROBLEM_MAX 32
#define XS_XERO_CORR_MAX    64

typedef struct xs_xero_opts {
    const char *login_url;      /* "https://login.xero.com" */
    const char *identity_url;   /* "https://identity.xero.com" */
    const char *api_url;        /* "https://api.xero.com" */
    const char *client_id;      /* the app's OAuth client id */
    const char *client_secret;  /* borrowed; never logged */
    int64_t timeout_ms;         /* whole call; 0: 30 s */
    int64_t connect_timeout_ms; /* 0: 10 s */
    size_t max_reply;           /* larger replies fail with XS_ETOOBIG; 0: 64 MiB */
    xs_log *log;                /* borrowed, may be NULL */
} xs_xero_opts;

typedef struct xs_xero xs_xero;

/* The rate-limit state a reply reported; -1 for a header that was absent. */
typedef struct xs_xero_rate {
    int64_t min_remaining;             /* X-MinLimit-Remaining: this tenant, this minute */
    int64_t day_remaining;             /* X-DayLimit-Remaining: this tenant, today */
    int64_t app_min_remaining;         /* X-AppMinLimit-Remaining: the whole app, this minute */
    int64_t retry_after_s;             /* Retry-After on a 429 or 503 */
    char problem[XS_XERO_PROBLEM_MAX]; /* X-Rate-Limit-Problem: "minute", "day", ... or "" */
} xs_xero_rate;

/* What one call did. */
typedef struct xs_xero_call {
    char method[8];
    char path[XS_XERO_PATH_MAX]; /* path and query, without host (never a token) */
    long status;                 /* HTTP status; 0 when no reply came */
    int64_t duration_ms;
    xs_xero_rate rate;
    xs_err err;                            /* XS_OK, or how the call failed (see xs_xero_request) */
    char error[XS_XERO_ERROR_MAX];         /* for people; "" on success */
    char correlation_id[XS_XERO_CORR_MAX]; /* Xero-Correlation-Id, for Xero support */
} xs_xero_call;

/* Which host a request goes to. */
typedef enum xs_xero_base {
    XS_XERO_API = 0,      /* api_url: /connections, /api.xro/2.0/... */
    XS_XERO_IDENTITY = 1, /* identity_url: /connect/token, /connect/revocation */
} xs_xero_base;

/* A request. Strings are borrowed for the call. */
typedef struct xs_xero_req {
    const char *method; /* "GET", "POST", "PUT", "DELETE" */
    xs_xero_base base;
    const char *path;            /* "/api.xro/2.0/Contacts?page=1": already escaped */
    const char *bearer;          /* access token, or NULL */
    const char *tenant_id;       /* xero-tenant-id header, or NULL */
    const char *idempotency_key; /* Idempotency-Key header, or NULL */
    xs_time if_modified_since;   /* > 0: If-Modified-Since header in Xero's form */
    bool client_auth;            /* HTTP Basic with client id and secret (identity calls) */
    const char *content_type;    /* of body; NULL: application/json when body is given */
    const void *body;            /* NULL: no body */
    size_t body_len;
    /* list_key: a 2xx JSON reply that is an object holding an array at this top-level member
     * ("Contacts") is parsed without that array's elements, which the caller parses one by
     * one or not at all (see xs_xero_resp.items). NULL: the whole reply is parsed. */
    const char *list_key;
} xs_xero_req;

/* A reply. */
typedef struct xs_xero_resp {
    long status;
    char *body; /* new, NUL-terminated (free with xs_xero_resp_fini) */
    size_t len;
    json_t *json; /* the parsed body when it is JSON (new), else NULL */
    /* With xs_xero_req.list_key, when the reply holds that array: json has it empty, and
     * items (new) are the spans of its nitems elements in body, in order. The caller must
     * parse each element it uses with xs_json_parse, and take a reply with an element that
     * does not parse as garbled, as XS_EPROTO says. Otherwise items is NULL. */
    xs_json_span *items;
    size_t nitems;
} xs_xero_resp;

/* xs_xero_create makes a handle (new; xs_xero_destroy) for one thread. opts and its strings
 * must outlive the handle. XS_EINVAL when a URL is missing. */
xs_err xs_xero_create(xs_xero **out, const xs_xero_opts *opts);

/* xs_xero_destroy frees x; NULL accepted. */
void xs_xero_destroy(xs_xero *x);

/* xs_xero_request performs one HTTP call and describes it in *call (always written). It
 * returns XS_OK whenever a complete HTTP reply arrived, whatever its status (look at
 * resp->status), and fills *resp (free with xs_xero_resp_fini). Otherwise nothing reached
 * us, or not all of it, and it returns: XS_ETIMEDOUT (no reply in time), XS_EHTTP (could not
 * connect, connection reset, reply cut short: the request may or may not have been applied),
 * XS_ETOOBIG (reply over max_reply), XS_EPROTO (a reply that claims to be JSON and is not:
 * garbled), XS_ENOMEM. */
xs_err xs_xero_request(xs_xero *x, const xs_xero_req *req, xs_xero_resp *resp, xs_xero_call *call);

/* xs_xero_resp_fini frees what resp holds and clears it; safe on a zeroed resp. */
void xs_xero_resp_fini(xs_xero_resp *resp);

/* xs_xero_retryable tells whether a failed or refused call may succeed if made again later:
 * transport failures, time-outs, 429, 5xx. */
bool xs_xero_retryable(xs_err err, long status);

/* --- OAuth 2.0 --- */

/* Tokens from /connect/token. Strings new (xs_xero_tokens_fini wipes and frees them). */
typedef struct xs_xero_tokens {
    char *access_token;
    char *refresh_token; /* NULL without offline_access */
    char *scope;         /* space-separated, as granted */
    int64_t expires_in_s;
    char *auth_event_id; /* the access token's authentication_event_id claim, or NULL */
    char *xero_user_id;  /* its xero_userid claim, or NULL */
} xs_xero_tokens;

/* xs_xero_tokens_fini wipes and frees t's strings and clears it. */
void xs_xero_tokens_fini(xs_xero_tokens *t);

/* xs_xero_authorize_url writes the URL of Xero's consent page into *out (new): response_type
 * code, client_id, redirect_uri, scope (space-separated), state, and the PKCE challenge
 * with method S256. */
xs_err xs_xero_authorize_url(const xs_xero *x, const char *redirect_uri, const char *scopes,
                             const char *state, const char *code_challenge, char **out);

/* xs_xero_pkce_challenge writes base64url(SHA-256(verifier)) into *out (new). */
xs_err xs_xero_pkce_challenge(const char *verifier, char **out);

/* xs_xero_token_code exchanges an authorization code (with its PKCE verifier) for tokens.
 * XS_EAUTH when Xero refused the grant (the OAuth error, e.g. "invalid_grant", is in
 * call->error and in oauth_error, 64 bytes, may be NULL); XS_EPROTO for a reply that is not a
 * token; transport errors as xs_xero_request. */
xs_err xs_xero_token_code(xs_xero *x, const char *code, const char *verifier,
                          const char *redirect_uri, xs_xero_tokens *out, char *oauth_error,
                          xs_xero_call *call);

/* xs_xero_token_refresh uses a refresh token; the reply carries its successor. Errors as
 * xs_xero_token_code. */
xs_err xs_xero_token_refresh(xs_xero *x, const char *refresh_token, xs_xero_tokens *out,
                             char *oauth_error, xs_xero_call *call);

/* xs_xero_revoke revokes a refresh token at Xero, which removes every connection of that
 * consent. XS_EAUTH when Xero refused (already invalid). */
xs_err xs_xero_revoke(xs_xero *x, const char *refresh_token, xs_xero_call *call);

/* xs_xero_connections lists the tenants the access token may act for (GET /connections,
 * filtered by auth_event_id when not NULL) into *out (new JSON array of Xero's connection
 * objects). XS_EAUTH on 401/403; XS_EPROTO for a reply that is not an array of objects. */
xs_err xs_xero_connections(xs_xero *x, const char *access_token, const char *auth_event_id,
                           json_t **out, xs_xero_call *call);

/* xs_xero_connection_delete removes one tenant connection (DELETE /connections/{id}).
 * XS_ENOTFOUND when Xero no longer has it; XS_EAUTH on 401/403. */
xs_err xs_xero_connection_delete(xs_xero *x, const char *access_token, const char *connection_id,
                                 xs_xero_call *call);

/* --- Xero Files (files.xro/1.0) ---
 *
 * Each call below makes one request under XS_XERO_FILES_PATH and returns as xs_xero_request:
 * XS_OK whenever a complete reply arrived, whatever its status (call->status; for a status
 * other than 2xx, call->error holds Xero's message: its Message, Detail or Title, else the
 * body's first bytes). On a 2xx reply *out (new, may be NULL for a reply without JSON) is
 * what the operation documents; otherwise *out is NULL. A 2xx reply whose JSON is not of the
 * documented shape is XS_EPROTO (garbled), like a reply that is not JSON at all. Strings are
 * borrowed for the call; key is the Idempotency-Key header (NULL: none). */
#define XS_XERO_FILES_PATH "/files.xro/1.0"

/* A Files API caller: the access token and the tenant every call carries. */
typedef struct xs_xero_files_who {
    const char *bearer;
    const char *tenant_id;
} xs_xero_files_who;

/* xs_xero_files_folders lists the folders (GET /Folders): *out an array of Folder objects. */
xs_err xs_xero_files_folders(xs_xero *x, const xs_xero_files_who *who, json_t **out,
                             xs_xero_call *call);

/* xs_xero_files_folder_create creates folder name (POST /Folders): *out the Folder (with Id). */
xs_err xs_xero_files_folder_create(xs_xero *x, const xs_xero_files_who *who, const char *name,
                                   const char *key, json_t **out, xs_xero_call *call);

/* xs_xero_files_recent lists the most recently created files, newest first (GET /Files with
 * pagesize 100, sort CreatedDateUTC, direction DESC): *out the Files object (Items). */
xs_err xs_xero_files_recent(xs_xero *x, const xs_xero_files_who *who, json_t **out,
                            xs_xero_call *call);

/* A file to upload: its name, MIME type and bytes (borrowed). */
typedef struct xs_xero_upload {
    const char *name;
    const char *mime_type;
    const void *bytes;
    size_t len;
} xs_xero_upload;

/* xs_xero_files_upload uploads file f into folder folder_id (POST /Files/{FolderId},
 * multipart/form-data with the parts name, filename, mimeType and body, as the spec's
 * UploadObject): *out the FileObject (with Id). */
xs_err xs_xero_files_upload(xs_xero *x, const xs_xero_files_who *who, const char *folder_id,
                            const xs_xero_upload *f, const char *key, json_t **out,
                            xs_xero_call *call);

/* xs_xero_files_associations lists a file's associations (GET /Files/{FileId}/Associations):
 * *out an array of Association objects. */
xs_err xs_xero_files_associations(xs_xero *x, const xs_xero_files_who *who, const char *file_id,
                                  json_t **out, xs_xero_call *call);

/* xs_xero_files_associate associates file file_id with the Xero record object_id of
 * object_group ("Contact", "Invoice") and object_type (the spec's ObjectType, e.g. "Business",
 * "AccRec") (POST /Files/{FileId}/Associations): *out the Association. */
xs_err xs_xero_files_associate(xs_xero *x, const xs_xero_files_who *who, const char *file_id,
                               const char *object_id, const char *object_group,
                               const char *object_type, const char *key, json_t **out,
                               xs_xero_call *call);

/* xs_xero_files_type_ok tells whether file name's extension (after its last '.', any case) is
 * one of types, a comma-separated list of lower-case extensions ("pdf,png"). */
bool xs_xero_files_type_ok(const char *name, const char *types);

#define XS_XERO_FOLDER_NAME_MAX 100

/* xs_xero_files_folder_ok tells whether Xero Files takes name as a folder's name: 1 to
 * XS_XERO_FOLDER_NAME_MAX characters, not blank, without \ / : * ? " < > | or control
 * characters, not the Inbox's name; false with why (XS_XERO_ERROR_MAX bytes). */
bool xs_xero_files_folder_ok(const char *name, char *why);

/* --- Xero Practice Manager (XPM) Public API v3.1, JSON, under /practicemanager/v3.1 --- */

/* What an XPM read asks for. */
typedef enum xs_xpm_what {
    XS_XPM_CLIENTS = 0,      /* GET client.api/list[?modifiedSince=]: clients ("clients") */
    XS_XPM_JOBS_CURRENT = 1, /* GET job.api/current: the current jobs ("jobs") */
    XS_XPM_JOBS_LIST = 2,    /* GET job.api/list?from=&to=: jobs of a date window ("jobs") */
    XS_XPM_JOB = 3,          /* GET job.api/get/{number}: one job ("job") */
} xs_xpm_what;

/* An XPM read. Strings are borrowed for the call. */
typedef struct xs_xpm_ask {
    xs_xpm_what what;
    const char *bearer, *tenant_id;
    const char *modified_since; /* XS_XPM_CLIENTS: "yyyy-MM-ddTHH:mm:ss", or NULL: every client */
    const char *from, *to;      /* XS_XPM_JOBS_LIST: "yyyyMMdd" */
    const char *number;         /* XS_XPM_JOB: the job's number ([A-Za-z0-9_-], 1 to 64) */
} xs_xpm_ask;

/* xs_xero_xpm_get performs one XPM read; its errors are those of xs_xero_request (XS_EINVAL
 * also for an ask with a missing or malformed field, with nothing sent). On XS_OK *resp holds
 * the reply whatever its status (free with xs_xero_resp_fini): XPM answers a refused read
 * with an HTTP error status, or with 200 and {"status": "ERROR", "errorDescription": ...},
 * which xs_xero_xpm_refused reads. */
xs_err xs_xero_xpm_get(xs_xero *x, const xs_xpm_ask *ask, xs_xero_resp *resp, xs_xero_call *call);

/* xs_xero_xpm_refused tells whether a complete XPM reply refused the read (a status other
 * than 200, or a body whose "status" is not "OK"), writing XPM's reason into why (cap bytes). */
bool xs_xero_xpm_refused(const xs_xero_resp *resp, char *why, size_t cap);

#define XS_XERO_ENDPOINT_MAX 64

/* xs_xero_endpoint names the endpoint call went to, as "METHOD /Resource" with the record's
 * id as "{id}" and no query: "GET /Contacts", "POST /Payments/{id}", "POST /connect/token",
 * "DELETE /connections/{id}" (the simulator's names for its routes); a Files API path the same
 * way, its ids named as the simulator names them: "GET /Folders", "POST /Files/{FolderId}" (an
 * upload), "GET /Files/{FileId}", "POST /Files/{FileId}/Associations"; an XPM read is
 * "GET /practicemanager/v3.1/<group>.api/<action>", with "/{id}" for job.api/get/{number}.
 * Anything else (a deeper path, a resource name that is not a plain word, another method) is
 * "other", so the names form a small, fixed set fit for a metric's label. buf holds
 * XS_XERO_ENDPOINT_MAX bytes. */
void xs_xero_endpoint(const xs_xero_call *call, char *buf);

#endif
