/* documents.h: the documents' routes (POST /v1/documents, GET /v1/documents[/{id}],
 * POST /v1/documents/{id}/retry) and the scheduler's re-queue of documents whose back-off has
 * passed. The pushes themselves are xs-files'. */
#ifndef ORCH_DOCUMENTS_H
#define ORCH_DOCUMENTS_H

#include "rest.h"

void orch_documents_create(xs_http_req *req, void *arg);
void orch_documents_list(xs_http_req *req, void *arg);
void orch_documents_get(xs_http_req *req, void *arg);
void orch_documents_retry(xs_http_req *req, void *arg);

/* orch_documents_requeue puts into the outbox the documents pending on an active connection
 * whose next attempt is due (and not queued already), so they are pushed again. */
void orch_documents_requeue(orch *o, xs_pg *pg);

#endif
