/*
 * xs-files: the files domain (files.h). Documents of the host application pushed to Xero
 * Files, each once per connection and SHA-256, into the connection's folder, associated with
 * their contact or invoice.
 */
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "xs/json.h"

/* The document entity as the engine's step helpers see it: no table of the engine's rooms
 * (xs-files reads and writes its own rows), only its entry in the one table. */
const xs_entity_ops files_document_ops = {.info = &xs_entity_table[XS_ENTITY_DOCUMENT]};

static const xs_entity_ops *const entities[] = {&files_document_ops, NULL};

/* check_config refuses a XS_FILES_TYPES that is not a list of extensions. */
static xs_err check_config(const xs_proc *proc, char *err)
{
    const char *types = xs_config_str(proc->cfg, "XS_FILES_TYPES");
    for (const char *p = types; p != NULL && *p != '\0'; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                  (*p == ',' && p != types && p[1] != '\0' && p[1] != ',');
        if (!ok) {
            snprintf(err, XS_CONFIG_ERR_MAX,
                     "XS_FILES_TYPES must be file extensions in lower case, comma-separated "
                     "(\"pdf,png\")");
            return XS_ECONFIG;
        }
    }
    return XS_OK;
}

static xs_err init(const xs_proc *proc, xs_pg *pg, void **state)
{
    (void)pg;
    files_state *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return XS_ENOMEM;
    }
    const xs_config *cfg = proc->cfg;
    st->svc.entities = entities;
    st->svc.log = proc->log;
    xs_domain_xero_opts(cfg, proc->log, &st->svc.xero);
    st->max_bytes = xs_config_int(cfg, "XS_FILES_MAX_BYTES");
    st->types = xs_config_str(cfg, "XS_FILES_TYPES");
    st->dir = xs_config_str(cfg, "XS_DOCUMENTS_DIR");
    st->app = xs_config_str(cfg, "XS_APP_NAME");
    st->retry_base_ms = xs_config_int(cfg, "XS_FILES_RETRY_BASE");
    st->retry_max_ms = xs_config_int(cfg, "XS_FILES_RETRY_MAX");
    *state = st;
    return XS_OK;
}

static void fini(void *state)
{
    free(state);
}

static const xs_svc_route routes[] = {
    {"sync.push", files_handle_push},
};

static const xs_svc_def def = {
    .name = "xs-files",
    .service = "files",
    .procmask = XS_PROC_FILES,
    .domain = XS_BUS_DOMAIN_FILES,
    .routes = routes,
    .nroutes = sizeof(routes) / sizeof(routes[0]),
    .usage = "xs-files: pushes the host application's documents (app.documents) to Xero Files: "
             "into the connection's folder (setting files.folder, default \"<XS_APP_NAME> "
             "Uploads\"), each SHA-256 uploaded once per connection, then associated with the "
             "document's contact or invoice once that has its Xero id. Files over "
             "XS_FILES_MAX_BYTES or of a type outside XS_FILES_TYPES are skipped; files on disk "
             "are read under XS_DOCUMENTS_DIR. It dials the orchestrator's bus (XS_BUS_URL). "
             "Start as many replicas as you like; stop with SIGTERM.",
    .check_config = check_config,
    .init = init,
    .fini = fini,
    /* each worker's Xero client, where the step helpers find it */
    .worker_init = xs_domain_worker_init,
    .worker_fini = xs_domain_worker_fini,
    .json_arena = true,
};

int main(int argc, char **argv)
{
    return xs_svc_main(&def, argc, argv);
}
