/*
 * jobhooks.h: the delivery of job events to the host application's webhooks (jobhooks.c).
 *
 * xs-jobs records each job event in app.job_events; when its connection had xpm.webhook_url
 * set, the event is to be delivered (webhook). A thread of the orchestrator POSTs each such
 * event, oldest first, to the connection's current xpm.webhook_url (lib/xs/hookout.h: signed
 * with XS_JOB_WEBHOOK_SECRET, X-Xero-Sync-Event-Id its id) until the receiver answers 2xx: at
 * least once, with back-off between attempts (2 s, doubling, at most an hour). An event is
 * claimed for a lease before it is sent (its next attempt moved past the delivery's time-out),
 * so two orchestrators never send it at once and one killed mid-delivery leaves it to be sent
 * again. Events of a connection whose XPM is disabled, or that no longer names a URL, wait.
 */
#ifndef ORCH_JOBHOOKS_H
#define ORCH_JOBHOOKS_H

#include "orch.h"
#include "xs/config.h"
#include "xs/err.h"

/* orch_jobhooks_read reads XS_JOB_WEBHOOK_SECRET and XS_JOB_WEBHOOK_TIMEOUT of cfg (borrowed,
 * outliving o) into o->jobhook. A secret shorter than 16 bytes is refused: XS_ECONFIG with a
 * message naming the variable in err (XS_CONFIG_ERR_MAX bytes). */
xs_err orch_jobhooks_read(orch *o, const xs_config *cfg, char *err);

/* orch_jobhooks_start starts the delivery thread of o; orch_jobhooks_stop waits for it to end
 * once o->stop is set (after the delivery in hand). */
xs_err orch_jobhooks_start(orch *o);
void orch_jobhooks_stop(orch *o);

#endif
