/*
 * files.h: xs-files, the files domain. It serves sync.push of entity "document": each
 * document of app.documents goes into the connection's Xero Files folder (found or created
 * once, remembered), uploaded once per connection and SHA-256, then associated with its
 * contact's or invoice's Xero record; its status per connection is kept in
 * sync.document_pushes (migration 0016). Limits are checked before any call; an upload or an
 * association whose reply was lost is looked up in Xero before it is sent again.
 *
 * Modules: main.c (the service, its configuration), push.c (a step: the documents in turn,
 * within its permits), doc.c (one document: its rows, its bytes, its statuses).
 */
#ifndef XS_FILES_H
#define XS_FILES_H

#include "engine/runtime.h"
#include "engine/step.h"

/* The service's state: the engine's (step.h reads it as an xs_domain_svc) and the limits. */
typedef struct files_state {
    xs_domain_svc svc; /* first: ctx->state is read as one by step_req_read */
    int64_t max_bytes; /* XS_FILES_MAX_BYTES */
    const char *types; /* XS_FILES_TYPES */
    const char *dir;   /* XS_DOCUMENTS_DIR, or NULL */
    const char *app;   /* XS_APP_NAME */
    int64_t retry_base_ms, retry_max_ms;
} files_state;

/* The entity xs-files serves. */
extern const xs_entity_ops files_document_ops;

/* files_handle_push serves sync.push of entity "document". */
xs_err files_handle_push(xs_svc_ctx *ctx, const xs_msg *msg, json_t **reply);

/* What one step knows while it works through its documents. */
typedef struct files_step {
    xs_svc_ctx *ctx;
    const step_req *req;
    const files_state *st;
    xs_xero_files_who who;
    char folder[XS_XERO_FOLDER_NAME_MAX + 1]; /* the folder's name */
    char folder_id[XS_ID_MAX];                /* its Xero id, "" until known */
    int64_t left, calls;                      /* permits left; calls made */
    xs_xero_call last;                        /* the last call, when calls > 0 */
    bool token_rejected;                      /* Xero refused the access token: stop */
    json_t *counts, *errors;                  /* the reply's counts; item errors */
    json_t *blocked;                          /* {"ids": [...], "on": {entity: [...]}} or NULL */
} files_step;

/* How one document ended in a step. */
typedef enum files_doc_end {
    FILES_DOC_DONE,       /* nothing more this step can do for it */
    FILES_DOC_UNFINISHED, /* it needs calls the step has no permit left for */
} files_doc_end;

/* files_doc_push takes document id as far as the step's permits allow: *end says where it
 * stands. An error is a database failure (the step fails, retryable). */
xs_err files_doc_push(files_step *s, const char *id, files_doc_end *end);

/* files_call_begin tells whether a permit is left for one more call (and takes it). */
bool files_call_begin(files_step *s);

/* files_call_end records a finished call: audit, heartbeat counters, the step's last call. */
void files_call_end(files_step *s, const xs_xero_call *call);

#endif
