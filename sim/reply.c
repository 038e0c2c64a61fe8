/* reply.c: the reply of one call: body, headers, Xero's error forms and the accounting
 * envelope. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"
#include "context.h"

void sim__reply_json(sim_call *c, int status, json_t *body)
{
    json_decref(c->json);
    free(c->text);
    c->text = NULL;
    c->text_len = 0;
    c->status = status;
    c->json = body;
    c->ctype = "application/json; charset=utf-8";
}

/* reply_set sets the reply's body to text (taken over; NULL: none) of type ctype. */
static void reply_set(sim_call *c, int status, char *text, const char *ctype)
{
    json_decref(c->json);
    c->json = NULL;
    free(c->text);
    c->text = text;
    c->text_len = 0;
    c->status = status;
    c->ctype = ctype;
}

void sim__reply_bytes(sim_call *c, int status, const char *ctype, const void *data, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        sim__reply_problem(c, 500, "Internal Server Error", "out of memory");
        return;
    }
    memcpy(copy, data, len);
    copy[len] = '\0';
    reply_set(c, status, copy, ctype);
    c->text_len = len;
}

void sim__reply_json_text(sim_call *c, int status, char *text)
{
    if (text == NULL) {
        sim__reply_problem(c, 500, "Internal Server Error", "out of memory");
        return;
    }
    reply_set(c, status, text, "application/json; charset=utf-8");
}

void sim__reply_text(sim_call *c, int status, const char *text)
{
    reply_set(c, status, strdup(text != NULL ? text : ""), "text/plain; charset=utf-8");
}

void sim__reply_html(sim_call *c, int status, char *html)
{
    if (html == NULL) {
        sim__reply_text(c, 500, "out of memory");
        return;
    }
    reply_set(c, status, html, "text/html; charset=utf-8");
}

void sim__reply_header(sim_call *c, const char *name, const char *value)
{
    if (c->nh >= SIM_MAX_HEADERS) {
        c->header_lost = true;
        return;
    }
    char *n = strdup(name), *v = strdup(value);
    if (n == NULL || v == NULL) {
        free(n);
        free(v);
        c->header_lost = true;
        return;
    }
    c->hname[c->nh] = n;
    c->hval[c->nh] = v;
    c->nh++;
}

void sim__reply_headers_free(sim_call *c)
{
    for (int i = 0; i < c->nh; i++) {
        free(c->hname[i]);
        free(c->hval[i]);
    }
    c->nh = 0;
}

void sim__reply_problem(sim_call *c, int status, const char *title, const char *detail)
{
    json_t *o = json_object();
    json_object_set_new(o, "Type", json_null());
    json_object_set_new(o, "Title", json_string(title));
    json_object_set_new(o, "Status", json_integer(status));
    json_object_set_new(o, "Detail", json_string(detail));
    json_object_set_new(o, "Instance", json_string(c->cid));
    json_object_set_new(o, "Extensions", json_object());
    sim__reply_json(c, status, o);
}

void sim__reply_method_not_allowed(sim_call *c)
{
    char msg[160];
    snprintf(msg, sizeof(msg), "The requested resource does not support http method '%.12s'.",
             c->method);
    sim__reply_json(c, 405, json_pack("{s:s}", "Message", msg));
}

void sim__reply_xero_error(sim_call *c, int status, int number, const char *type, const char *msg)
{
    sim__reply_json(
        c, status, json_pack("{s:i,s:s,s:s}", "ErrorNumber", number, "Type", type, "Message", msg));
}

void sim__reply_oauth_error(sim_call *c, int status, const char *code, const char *desc)
{
    json_t *o = json_pack("{s:s}", "error", code);
    if (desc != NULL) {
        json_object_set_new(o, "error_description", json_string(desc));
    }
    sim__reply_json(c, status, o);
}

void sim__reply_gateway_timeout(sim_call *c)
{
    sim__reply_headers_free(c);
    c->header_lost = false;
    sim__reply_problem(c, 504, "Gateway Timeout",
                       "The server did not receive a timely response from the upstream server.");
}

json_t *sim__envelope(sim_call *c)
{
    json_t *o = json_object();
    json_object_set_new(o, "Id", json_string(c->cid));
    json_object_set_new(o, "Status", json_string("OK"));
    json_object_set_new(o, "ProviderName", json_string(c->s->app_name));
    char buf[XS_TIME_XERO_MAX];
    /* the envelope's DateTimeUTC carries no offset, as Xero writes it */
    snprintf(buf, sizeof(buf), "/Date(%lld)/", (long long)sim__now(c->s));
    json_object_set_new(o, "DateTimeUTC", json_string(buf));
    return o;
}

void sim__reply_too_large(sim_call *c)
{
    sim__reply_text(c, 413,
                    "The request is too large. A single request is limited to 3.5 MB; send "
                    "smaller batches.");
}
