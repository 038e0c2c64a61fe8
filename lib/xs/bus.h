/*
 * bus.h: the message bus between processes, over nng. The only module that touches nng.
 *
 * The orchestrator is the hub: it listens on one REQ socket per domain (auth, contacts,
 * invoices, payments, files, jobs) and one SUB socket for events. Every other process is a node: it
 * dials the hub with a REP socket for its domain (so replicas of a domain share the work:
 * nng hands each request to a ready replica, and resends it elsewhere when the replica it
 * went to disconnects) and with a PUB socket to publish events.
 *
 * Addresses derive from one base URL: for "tls+tcp://host:7400" (or "tcp://") the sockets are
 * at ports 7400 (auth), 7401 (contacts), 7402 (invoices), 7403 (payments), 7404 (files),
 * 7405 (jobs) and 7406-7411 (events of auth, contacts, invoices, payments, files, jobs); for
 * "ipc:///run/xs/bus" and "inproc://name" a suffix ".auth", ".contacts", ".invoices",
 * ".payments", ".files", ".jobs", ".events-auth", ..., ".events-jobs" is appended. Each domain
 * publishes on its own events socket, so the hub knows which domain every event came from.
 *
 * Who may connect. The bus carries live Xero tokens, so a base URL must be one of:
 *   - "tls+tcp://": TLS with mutual certificate authentication. tls_dir holds cert.pem (this
 *     process's certificate, then its role CA), key.pem, and trust-<peer>.pem. The hub
 *     accepts on the sockets of domain D (its requests and its events) only certificates
 *     issued by a CA in trust-D.pem, so a peer of another role, of another deployment or
 *     with no certificate gets no connection; a node accepts only a hub whose certificate is
 *     issued by a CA in trust-orchestrator.pem and names "xs-orchestrator" (scripts/xs-certs).
 *   - "ipc://" in a folder only its owner (this process's user) can enter (mode 0700).
 *   - "inproc://" (one process).
 *   - "tcp://" or an ipc folder others may enter only with insecure set, logged at error level
 *     at every start.
 * Anything else is refused at create (XS_EINVAL, with a log line saying what to do).
 *
 * Messages are opaque bytes here; proto/ gives them their shape. Every socket refuses
 * messages larger than the configured limit, in both directions.
 */
#ifndef XS_BUS_H
#define XS_BUS_H

#include <stddef.h>
#include <stdint.h>

#include "xs/err.h"
#include "xs/log.h"

typedef enum xs_bus_domain {
    XS_BUS_DOMAIN_AUTH = 0,
    XS_BUS_DOMAIN_CONTACTS = 1,
    XS_BUS_DOMAIN_INVOICES = 2,
    XS_BUS_DOMAIN_PAYMENTS = 3,
    XS_BUS_DOMAIN_FILES = 4,
    XS_BUS_DOMAIN_JOBS = 5,
    XS_BUS_DOMAIN_COUNT = 6,
    XS_BUS_DOMAIN_NONE = -1,
} xs_bus_domain;

/* xs_bus_domain_name returns "auth", "contacts", "invoices", "payments", "files", "jobs"
 * (static), or "none". */
const char *xs_bus_domain_name(xs_bus_domain d);

/* xs_bus_domain_parse reads a domain name. */
xs_err xs_bus_domain_parse(const char *name, xs_bus_domain *out);

/* Index of the first events socket in address derivation: domain d publishes on socket
 * XS_BUS_EVENTS_INDEX + d. */
#define XS_BUS_EVENTS_INDEX 6
#define XS_BUS_SOCKETS      (XS_BUS_EVENTS_INDEX + XS_BUS_DOMAIN_COUNT)
#define XS_BUS_URL_MAX      512
/* The most hubs (orchestrators) a node dials: its base URL may be a list of this many. */
#define XS_BUS_HUBS_MAX 8

/* The name a hub's certificate carries (its subject alternative name), checked by nodes. */
#define XS_BUS_HUB_NAME "xs-orchestrator"

/* xs_bus_url writes the address of socket `index` (0 .. XS_BUS_SOCKETS - 1) derived from base
 * into buf (XS_BUS_URL_MAX bytes). XS_EINVAL for an unusable base. */
xs_err xs_bus_url(const char *base, int index, char *buf);

typedef struct xs_bus_opts {
    const char *url;     /* base URL (see above) */
    const char *tls_dir; /* folder of certificate, key and trust files; tls+tcp:// only */
    int insecure;        /* nonzero: allow tcp:// and ipc:// in a folder others may enter */
    size_t max_msg;      /* largest message in bytes, both directions; must be > 0 */
    int64_t resend_ms;   /* hub: resend a request unanswered this long (0: only on peer loss) */
    xs_log *log;         /* borrowed, may be NULL */
} xs_bus_opts;

/* --- hub (orchestrator side) --- */
typedef struct xs_bus_hub xs_bus_hub;

/* xs_bus_hub_create listens on every socket; *out is new (xs_bus_hub_destroy). XS_EBUS (with
 * a log line naming the address) when an address cannot be bound, XS_EINVAL (logged) for bad
 * opts, a base URL refused above, or certificate files that are missing or unusable. */
xs_err xs_bus_hub_create(xs_bus_hub **out, const xs_bus_opts *opts);

/* xs_bus_hub_close closes every socket, failing calls in progress with XS_ECLOSED and every
 * later call at once, and returns when none is in progress; the hub stays valid until
 * xs_bus_hub_destroy. Idempotent. */
void xs_bus_hub_close(xs_bus_hub *hub);

/* xs_bus_hub_destroy closes (if not yet) and frees hub. No call may start during or after
 * it. NULL accepted. */
void xs_bus_hub_destroy(xs_bus_hub *hub);

/* xs_bus_request sends req (len bytes, borrowed) to one replica of domain and waits up to
 * timeout_ms (negative: no limit) for its reply, which it writes into *rep (new, free with
 * free()) and *replen. Safe to call from many threads at once. XS_ETIMEDOUT when no reply
 * came in time (including when no replica is connected), XS_ETOOBIG for a message over the
 * limit (a request, refused before sending, or a reply), XS_ECLOSED after destroy. */
xs_err xs_bus_request(xs_bus_hub *hub, xs_bus_domain domain, const void *req, size_t len,
                      int64_t timeout_ms, void **rep, size_t *replen);

/* xs_bus_peers returns how many replicas of domain are connected right now. */
int xs_bus_peers(const xs_bus_hub *hub, xs_bus_domain domain);

/* xs_bus_next_event waits up to timeout_ms (negative: no limit) for the next published event
 * and writes it into *buf (new, free with free()) and *len, and the domain whose events
 * socket it came on into *from: with tls+tcp:// the domain the publisher's certificate
 * belongs to, so a caller must drop an event that claims to be from any other. XS_ETIMEDOUT
 * when none came, XS_ECLOSED after destroy. Events over the limit are dropped. One thread
 * consumes events. */
xs_err xs_bus_next_event(xs_bus_hub *hub, int64_t timeout_ms, void **buf, size_t *len,
                         xs_bus_domain *from);

/* --- node (domain service side) --- */
typedef struct xs_bus_node xs_bus_node;
typedef struct xs_bus_worker xs_bus_worker;

/* xs_bus_node_create dials the hub: a REP socket for domain and a PUB socket for its events;
 * *out is new (xs_bus_node_destroy). opts->url may list up to XS_BUS_HUBS_MAX base URLs
 * separated by commas, one per hub (every orchestrator of a deployment, all with TLS or all
 * without): both sockets dial every hub, each request is answered to the hub that sent it and
 * each event goes to every hub. Dialling goes on in the
 * background, so a node may start before the hub; nng reconnects whenever the hub restarts
 * (retrying every 50 ms, backing off to 1 s). XS_EBUS (logged) only when nng refuses an
 * address outright, XS_EINVAL (logged) as for xs_bus_hub_create; an unreachable hub, or one
 * whose certificate is refused (logged by nng's reconnects as no connection), is not an
 * error. */
xs_err xs_bus_node_create(xs_bus_node **out, xs_bus_domain domain, const xs_bus_opts *opts);

/* xs_bus_node_destroy closes the sockets, waking workers blocked in recv with XS_ECLOSED.
 * Workers may be destroyed before or after: a worker outliving its node answers every call
 * with XS_ECLOSED and must still be freed with xs_bus_worker_destroy. No xs_bus_publish or
 * xs_bus_worker_create may run concurrently with destroy. NULL accepted. */
void xs_bus_node_destroy(xs_bus_node *node);

/* xs_bus_node_check starts afresh the dialer of each of the node's sockets that has had no
 * connection for stale_ms or more (logging bus.redial), and returns how many it restarted.
 * Call it now and then (the domain-service runtime does, at every heartbeat): a dialer
 * whose peer dies mid-handshake may otherwise never dial again. */
int xs_bus_node_check(xs_bus_node *node, int64_t stale_ms);

/* xs_bus_publish publishes one event (len bytes, borrowed). Safe from any thread. Events
 * are dropped, not queued without bound, when the hub is away (and the oldest beyond a
 * queue of 1024 when it is slow). XS_ETOOBIG for an event over the limit. */
xs_err xs_bus_publish(xs_bus_node *node, const void *buf, size_t len);

/* xs_bus_worker_create makes a worker (new): an independent receive/reply context on the
 * node's REP socket, for one thread. Several workers let a replica take several requests at
 * once. */
xs_err xs_bus_worker_create(xs_bus_node *node, xs_bus_worker **out);

/* xs_bus_worker_destroy frees w; NULL accepted. */
void xs_bus_worker_destroy(xs_bus_worker *w);

/* xs_bus_worker_recv waits up to timeout_ms (negative: no limit) for the next request,
 * written into *buf (new, free with free()) and *len. XS_ETIMEDOUT when none came (so the
 * caller can check for shutdown), XS_ECLOSED once the node is destroyed. After a successful
 * recv the worker must reply before receiving again (receiving again abandons the request:
 * the hub's caller times out). Requests over the limit are dropped unanswered. */
xs_err xs_bus_worker_recv(xs_bus_worker *w, int64_t timeout_ms, void **buf, size_t *len);

/* xs_bus_worker_reply sends the reply to the request last received (len bytes, borrowed).
 * XS_ETOOBIG when over the limit (the caller should send a small error reply instead),
 * XS_ESTATE when there is no request to answer. */
xs_err xs_bus_worker_reply(xs_bus_worker *w, const void *buf, size_t len);

#endif
