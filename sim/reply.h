/*
 * reply.h: one HTTP call (sim_call) and the making of its reply: JSON, text, headers, Xero's
 * error forms (gateway problem, ErrorNumber, OAuth), the accounting envelope. Owns the
 * reply's body and headers until server.c sends them. Must not send anything or call the
 * handlers: every handler replies through it, and server.c alone writes to the connection.
 */
#ifndef XS_SIM_REPLY_H
#define XS_SIM_REPLY_H

#include "context.h"

#define SIM_MAX_HEADERS 12

typedef struct sim_call {
    sim *s;
    xs_http_req *req;
    sim_settings set;
    uint64_t id;
    char cid[XS_UUID_STR]; /* Xero-Correlation-Id */
    const char *method;
    char endpoint[80]; /* "GET /Contacts/{id}" for counters */
    char path[512];
    int64_t t0;
    sim_tenant *tenant; /* accounting calls, once authorised */
    sim_grant *grant;   /* the caller's grant (borrowed under id_mu rules: stable pointer) */
    char scope[1024];
    /* rate limits */
    bool limited_tenant, counted;
    int64_t win_min, win_day, win_app; /* the windows a counted call was counted in */
    int64_t rem_min, rem_day, rem_app;
    char problem[12];
    sim_fault_kind fault;
    int64_t latency_ms; /* injected latency drawn */
    /* the reply */
    int status;
    json_t *json;
    char *text;
    size_t text_len; /* bytes of text when it is binary (sim__reply_bytes); 0: strlen */
    const char *ctype;
    char *hname[SIM_MAX_HEADERS]; /* owned */
    char *hval[SIM_MAX_HEADERS];  /* owned, any length */
    int nh;
    bool header_lost; /* a header could not be stored: the reply becomes a 500 */
    char idem[SIM_IDEM_KEY_MAX + 1];
} sim_call;

/* sim__reply_json sets the reply (body taken over). */
void sim__reply_json(sim_call *c, int status, json_t *body);
/* sim__reply_json_text sets a JSON reply already written (text taken over; made with
 * xs_json_dump or xs_json_dump_items). NULL, their out of memory, sets a 500. */
void sim__reply_json_text(sim_call *c, int status, char *text);
/* sim__reply_text sets a text/plain reply (copied). */
void sim__reply_text(sim_call *c, int status, const char *text);
/* sim__reply_bytes sets a reply of len bytes (copied; any bytes, NULs included) of type
 * ctype (static). */
void sim__reply_bytes(sim_call *c, int status, const char *ctype, const void *data, size_t len);
/* sim__reply_html sets a text/html reply (html taken over: a page a person's browser shows).
 * NULL, its maker's out of memory, sets a 500. */
void sim__reply_html(sim_call *c, int status, char *html);
/* sim__reply_header adds a reply header (name and value copied, any length). A header that
 * cannot be stored (out of memory, more than SIM_MAX_HEADERS) is never dropped silently:
 * the call's reply becomes a 500 instead. */
void sim__reply_header(sim_call *c, const char *name, const char *value);
/* sim__reply_problem sets Xero's gateway error form {"Type":null,"Title":..,"Status":..,
 * "Detail":..,"Instance":..,"Extensions":{}}. */
void sim__reply_problem(sim_call *c, int status, const char *title, const char *detail);
/* sim__reply_gateway_timeout replaces whatever reply was made (headers included) with the
 * gateway's 504 in the problem form: the backend's answer did not reach the client. */
void sim__reply_gateway_timeout(sim_call *c);
/* sim__reply_too_large sets the 413 for a request body over the limit (plain text). */
void sim__reply_too_large(sim_call *c);
/* sim__reply_method_not_allowed sets the 405 of a method a resource does not support:
 * {"Message":"The requested resource does not support http method 'X'."}. */
void sim__reply_method_not_allowed(sim_call *c);
/* sim__reply_xero_error sets {"ErrorNumber":n,"Type":type,"Message":msg} (400 family). */
void sim__reply_xero_error(sim_call *c, int status, int number, const char *type, const char *msg);
/* sim__reply_oauth_error sets {"error":code} (+ error_description when not NULL). */
void sim__reply_oauth_error(sim_call *c, int status, const char *code, const char *desc);
/* sim__envelope makes the accounting reply envelope {Id, Status, ProviderName, DateTimeUTC}
 * (new). */
json_t *sim__envelope(sim_call *c);

/* sim__reply_headers_free frees the reply headers stored so far (the call keeps its body). */
void sim__reply_headers_free(sim_call *c);

#endif
