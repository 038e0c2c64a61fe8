/*
 * engine/runtime.h: the domain-service runtime. xs_domain_svc_main makes a domain service
 * out of its entities: the service state (xs_domain_svc), each worker's Xero clients and
 * read-ahead connection (domain_worker), and the four routes of the sync engine (sync.pull,
 * sync.push, sync.resolve, local.upsert) on the bus runtime of engine/svc.h. It owns the
 * workers' clients and nothing of a request; it never reads or writes a record itself.
 */
#ifndef XS_ENGINE_RUNTIME_H
#define XS_ENGINE_RUNTIME_H

#include "engine/domain.h"

/* The service's state (ctx->state) of every domain service. */
typedef struct xs_domain_svc {
    const xs_entity_ops *const *entities; /* NULL-terminated */
    xs_xero_opts xero;                    /* for each worker's client */
    const char *db_url;                   /* for each worker's read-ahead connection, */
    char ahead_app[64];                   /* named "<process> read-ahead" */
    xs_log *log;
} xs_domain_svc;

/* A worker's state (ctx->wstate): x for its requests, and for the pages a pull step reads
 * ahead, the helper thread's Xero client and database connection (opened on first use;
 * db_failed once it could not be, so the helper reads every record in full instead). */
typedef struct domain_worker {
    xs_xero *x, *ahead;
    const xs_domain_svc *svc;
    xs_pg *db_ahead;
    bool db_failed;
} domain_worker;

/* xs_domain_svc_main runs a domain service (xs_svc_main) syncing entities (NULL-terminated,
 * static): def, less its routes and its init, fini and worker hooks, which are the engine's.
 * One per process; returns the exit code. */
int xs_domain_svc_main(const xs_svc_def *def, const xs_entity_ops *const *entities, int argc,
                       char **argv);

/* xs_domain_worker_init makes a worker's clients (a domain_worker) from state, an
 * xs_domain_svc or a state that begins with one, its Xero client options filled
 * (xs_svc_def.worker_init); xs_domain_worker_fini frees them (xs_svc_def.worker_fini). */
xs_err xs_domain_worker_init(void *state, void **wstate);
void xs_domain_worker_fini(void *wstate);

/* xs_domain_xero_opts fills the Xero client options from a loaded configuration. */
void xs_domain_xero_opts(const xs_config *cfg, xs_log *log, xs_xero_opts *out);

#endif
