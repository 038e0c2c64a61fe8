/*
 * bus.c: the message bus over nng 1.5 (see bus.h).
 *
 * Hub: one REQ socket per domain and one SUB socket, all listening. Every xs_bus_request
 * opens its own nng context on the domain's REQ socket, so any number of threads can have a
 * request in flight; nng spreads the requests over the connected REP replicas.
 *
 * Resending. nng 1.5.2 resends a request in two cases: when NNG_OPT_REQ_RESENDTIME passes
 * without a reply, and, immediately, when the pipe holding the request closes -- but only
 * while the resend time is positive. With NNG_DURATION_INFINITE it does not resend on pipe
 * loss at all: the receive fails with NNG_ECONNRESET (verified against 1.5.2 by
 * bus_test's test_resend_infinite_fails_on_peer_loss). So for resend_ms == 0 ("only on peer
 * loss") each request's context gets a resend time longer than the request's own timeout
 * (capped at nng's largest duration, about 24.8 days): the timer can never fire within the
 * call, and nng still moves the request to another replica the moment the one holding it
 * goes away (test_replica_dies_request_answered_by_other).
 *
 * Sizes. NNG_OPT_RECVMAXSZ limits a whole frame, which on REQ/REP carries the protocol
 * header (request id and backtrace) before the body, so sockets accept max_msg plus
 * FRAME_HEADROOM; the body limit itself is enforced here, on send and on receive, so the
 * inproc transport (which does not check frame sizes) behaves like tcp and ipc.
 *
 * Peers. nng reports REM_POST for every pipe that saw ADD_PRE, including pipes the protocol
 * rejected before ADD_POST (a peer of the wrong protocol). Counting ADD_POST up and REM_POST
 * down would then drift negative, so each domain keeps the ids of the pipes it counted.
 *
 * Trust. With tls+tcp:// every socket of the hub has its own listener per domain, each with
 * a TLS configuration that trusts only that domain's CA (trust-<domain>.pem) and requires a
 * client certificate; the events SUB socket has one listener per domain, and an event's pipe
 * names the listener, so the domain it came from. nng 1.5.2 offers no way to read a peer's
 * certificate names (NNG_OPT_TLS_PEER_CN came later), so a role is proven by the CA that
 * issued its certificate, checked by mbedTLS during the handshake. Nodes verify the hub's
 * certificate against trust-orchestrator.pem and its name, XS_BUS_HUB_NAME.
 *
 * Lifetimes. Callers may be blocked in xs_bus_request or xs_bus_next_event when the hub is
 * destroyed: destroy closes the sockets (nng fails their operations with NNG_ECLOSED), then
 * waits until every call has left before freeing the hub. Workers own their context and
 * aio and never touch the node after creation, so a worker woken by xs_bus_node_destroy
 * can still be destroyed afterwards.
 */
#include "xs/bus.h"

#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <nng/supplemental/tls/tls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xs/clock.h"

/* Bytes a frame may carry beyond the body: REQ/REP headers are a 4-byte request id plus a
 * 4-byte hop for each device on the way (nng's default TTL is 8). */
#define FRAME_HEADROOM 64

/* How long a worker's reply may wait for room in the pipe's send queue. */
#define REPLY_TIMEOUT_MS 10000

/* Reconnect back-off for nodes: quick after a hub restart, never hammering. */
#define RECONNECT_MIN_MS 50
#define RECONNECT_MAX_MS 1000

/* Events queued per publisher (PUB send buffer) and at the hub (SUB receive buffer), in
 * messages. nng's defaults (16 and 128) drop events of an ordinary burst; beyond these the
 * oldest are dropped rather than memory growing without bound. */
#define EVENT_QUEUE 1024

/* The largest duration nng accepts (an int32_t of milliseconds). */
#define NNG_DURATION_MAX_MS 2147483647LL

static const char *const domain_names[XS_BUS_DOMAIN_COUNT] = {"auth",     "contacts", "invoices",
                                                              "payments", "files",    "jobs"};
static const char *const socket_suffix[XS_BUS_SOCKETS] = {
    "auth",         "contacts",    "invoices",        "payments",        "files",
    "jobs",         "events-auth", "events-contacts", "events-invoices", "events-payments",
    "events-files", "events-jobs"};

/* The largest certificate, key or trust file read. */
#define PEM_MAX (256 * 1024)

const char *xs_bus_domain_name(xs_bus_domain d)
{
    if (d < 0 || d >= XS_BUS_DOMAIN_COUNT) {
        return "none";
    }
    return domain_names[d];
}

xs_err xs_bus_domain_parse(const char *name, xs_bus_domain *out)
{
    if (name == NULL || out == NULL) {
        return XS_EINVAL;
    }
    for (int i = 0; i < XS_BUS_DOMAIN_COUNT; i++) {
        if (strcmp(name, domain_names[i]) == 0) {
            *out = (xs_bus_domain)i;
            return XS_OK;
        }
    }
    return XS_EINVAL;
}

/* err_from_nng translates an nng error into the closest xs_err. */
static xs_err err_from_nng(int rv)
{
    switch (rv) {
    case 0:
        return XS_OK;
    case NNG_ENOMEM:
        return XS_ENOMEM;
    case NNG_EINVAL:
    case NNG_EADDRINVAL:
    case NNG_EBADTYPE:
        return XS_EINVAL;
    case NNG_ETIMEDOUT:
        return XS_ETIMEDOUT;
    case NNG_ECLOSED:
    case NNG_ECONNRESET:
    case NNG_ECONNSHUT:
    case NNG_ECONNABORTED:
        return XS_ECLOSED;
    case NNG_ECANCELED:
    case NNG_EINTR:
        return XS_ECANCELED;
    case NNG_EMSGSIZE:
        return XS_ETOOBIG;
    case NNG_ESTATE:
        return XS_ESTATE;
    case NNG_EPROTO:
        return XS_EPROTO;
    case NNG_ENOTSUP:
        return XS_EUNSUPPORTED;
    case NNG_EAGAIN:
    case NNG_EBUSY:
        return XS_EBUSY;
    case NNG_ECONNREFUSED:
    case NNG_EUNREACHABLE:
        return XS_EUNAVAILABLE;
    default:
        return XS_EBUS;
    }
}

/* has_prefix tells whether s starts with p. */
static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

/* url_tcp derives a tcp address: host kept, port + index. rest is what follows "scheme://". */
static xs_err url_tcp(const char *scheme, const char *rest, int index, char *buf)
{
    /* An empty host ("tcp://:7400") is nng's "every interface": valid for listening. */
    const char *colon = strrchr(rest, ':');
    if (colon == NULL) {
        return XS_EINVAL;
    }
    /* An IPv6 host must be bracketed, so the last colon is the port separator. */
    if (rest[0] == '[' && colon[-1] != ']') {
        return XS_EINVAL;
    }
    const char *digits = colon + 1;
    size_t nd = strlen(digits);
    if (nd == 0 || nd > 5) {
        return XS_EINVAL;
    }
    long port = 0;
    for (size_t i = 0; i < nd; i++) {
        if (digits[i] < '0' || digits[i] > '9') {
            return XS_EINVAL;
        }
        port = port * 10 + (digits[i] - '0');
    }
    /* The base must leave room for every socket, whichever one is asked for. */
    if (port < 1 || port + XS_BUS_SOCKETS - 1 > 65535) {
        return XS_EINVAL;
    }
    for (const char *h = rest; h < colon; h++) {
        if (*h == '/' || *h == '?' || *h == '#' || *h == '@' || *h <= ' ') {
            return XS_EINVAL;
        }
    }
    int n = snprintf(buf, XS_BUS_URL_MAX, "%s%.*s:%ld", scheme, (int)(colon - rest), rest,
                     port + index);
    if (n < 0 || n >= XS_BUS_URL_MAX) {
        return XS_EINVAL;
    }
    return XS_OK;
}

xs_err xs_bus_url(const char *base, int index, char *buf)
{
    static const char *const tcp_schemes[] = {"tls+tcp://", "tls+tcp4://", "tls+tcp6://",
                                              "tcp://",     "tcp4://",     "tcp6://"};
    static const char *const path_schemes[] = {"ipc://", "inproc://"};
    if (base == NULL || buf == NULL || index < 0 || index >= XS_BUS_SOCKETS) {
        return XS_EINVAL;
    }
    for (const char *c = base; *c != '\0'; c++) {
        if (*c <= ' ' || *c == 0x7f) {
            return XS_EINVAL;
        }
    }
    char out[XS_BUS_URL_MAX];
    for (size_t i = 0; i < sizeof(tcp_schemes) / sizeof(tcp_schemes[0]); i++) {
        if (has_prefix(base, tcp_schemes[i])) {
            xs_err e = url_tcp(tcp_schemes[i], base + strlen(tcp_schemes[i]), index, out);
            if (e == XS_OK) {
                memcpy(buf, out, strlen(out) + 1);
            }
            return e;
        }
    }
    for (size_t i = 0; i < sizeof(path_schemes) / sizeof(path_schemes[0]); i++) {
        if (has_prefix(base, path_schemes[i])) {
            if (base[strlen(path_schemes[i])] == '\0') {
                return XS_EINVAL;
            }
            int n = snprintf(out, sizeof(out), "%s.%s", base, socket_suffix[index]);
            if (n < 0 || n >= XS_BUS_URL_MAX) {
                return XS_EINVAL;
            }
            memcpy(buf, out, (size_t)n + 1);
            return XS_OK;
        }
    }
    return XS_EINVAL;
}

/* ipc_folder_private tells whether the folder of an ipc:// base exists, belongs to this
 * process's user and lets no one else in; why says what is wrong otherwise. */
static bool ipc_folder_private(const char *path, char *why, size_t size)
{
    char dir[XS_BUS_URL_MAX];
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        snprintf(dir, sizeof(dir), ".");
    } else if (slash == path) {
        snprintf(dir, sizeof(dir), "/");
    } else {
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(why, size, "the folder %s of the ipc:// socket does not exist", dir);
        return false;
    }
    if (st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
        snprintf(why, size,
                 "the folder %s of the ipc:// socket must belong to this user with mode 0700, "
                 "or anyone who can enter it can join the bus",
                 dir);
        return false;
    }
    return true;
}

/* split_bases splits a list of base URLs separated by commas (a node's: one per hub) into
 * out; how many, or -1 for an empty item, more than XS_BUS_HUBS_MAX or one too long. */
static int split_bases(const char *list, char out[XS_BUS_HUBS_MAX][XS_BUS_URL_MAX])
{
    int n = 0;
    for (const char *p = list;; n++) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len == 0 || len >= XS_BUS_URL_MAX || n == XS_BUS_HUBS_MAX) {
            return -1;
        }
        memcpy(out[n], p, len);
        out[n][len] = '\0';
        if (end == NULL) {
            return n + 1;
        }
        p = end + 1;
    }
}

/* check_base checks that one base URL lets in only peers that belong (see bus.h); every
 * refusal is logged with what to do. */
static xs_err check_base(const xs_bus_opts *opts, const char *base)
{
    char url[XS_BUS_URL_MAX];
    xs_err e = xs_bus_url(base, 0, url);
    if (e != XS_OK) {
        return e;
    }
    char why[XS_BUS_URL_MAX + 160] = "";
    bool open_bus = false;
    if (has_prefix(base, "tls+")) {
        if (opts->tls_dir == NULL || opts->tls_dir[0] == '\0') {
            xs_log_error(opts->log, "bus.tls_dir_missing", "{s:s, s:s}", "url", base, "fix",
                         "set XS_BUS_TLS_DIR to this role's folder made by xs-certs");
            return XS_EINVAL;
        }
        return XS_OK;
    }
    if (has_prefix(base, "tcp")) {
        snprintf(why, sizeof(why), "plain tcp:// has no authentication and no encryption");
        open_bus = true;
    } else if (has_prefix(base, "ipc://")) {
        open_bus = !ipc_folder_private(base + strlen("ipc://"), why, sizeof(why));
    }
    if (!open_bus) {
        return XS_OK;
    }
    if (!opts->insecure) {
        xs_log_error(opts->log, "bus.refused", "{s:s, s:s, s:s}", "url", base, "reason", why, "fix",
                     "use tls+tcp:// with XS_BUS_TLS_DIR (xs-certs), ipc:// in a folder of "
                     "mode 0700, or accept the risk with XS_BUS_INSECURE=1");
        return XS_EINVAL;
    }
    xs_log_error(opts->log, "bus.insecure", "{s:s, s:s, s:s}", "url", base, "reason", why, "risk",
                 "XS_BUS_INSECURE is set: any process that reaches the bus can take work "
                 "holding live Xero tokens and forge heartbeats");
    return XS_OK;
}

/* check_opts validates the options shared by hub and node, and each base URL of the list
 * (a hub's list has one; a node's one per hub, all with TLS or all without). */
static xs_err check_opts(const xs_bus_opts *opts, bool many)
{
    if (opts == NULL || opts->url == NULL || opts->max_msg == 0 ||
        opts->max_msg > SIZE_MAX - FRAME_HEADROOM || opts->resend_ms < 0) {
        return XS_EINVAL;
    }
    char bases[XS_BUS_HUBS_MAX][XS_BUS_URL_MAX];
    int n = split_bases(opts->url, bases);
    if (n < 1 || (n > 1 && !many)) {
        xs_log_error(opts->log, "bus.bad_url", "{s:s, s:s}", "url", opts->url, "reason",
                     many ? "a list of at most 8 base URLs separated by commas is expected"
                          : "one base URL is expected");
        return XS_EINVAL;
    }
    for (int i = 0; i < n; i++) {
        if (has_prefix(bases[i], "tls+") != has_prefix(bases[0], "tls+")) {
            xs_log_error(opts->log, "bus.bad_url", "{s:s, s:s}", "url", opts->url, "reason",
                         "every hub is dialled with TLS (tls+tcp://) or none is");
            return XS_EINVAL;
        }
        xs_err e = check_base(opts, bases[i]);
        if (e != XS_OK) {
            return e;
        }
    }
    return XS_OK;
}

/* read_pem reads dir/name (at most PEM_MAX bytes) into a new NUL-terminated buffer. */
static xs_err read_pem(const char *dir, const char *name, char **out, xs_log *log)
{
    char path[XS_BUS_URL_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    char *buf = f != NULL ? malloc(PEM_MAX + 1) : NULL;
    size_t n = buf != NULL ? fread(buf, 1, PEM_MAX + 1, f) : 0;
    bool ok = buf != NULL && n > 0 && n <= PEM_MAX && !ferror(f);
    if (f != NULL) {
        fclose(f);
    }
    if (!ok) {
        free(buf);
        xs_log_error(log, "bus.tls_file", "{s:s, s:s}", "path", path, "reason",
                     f == NULL ? "cannot be read" : "empty, unreadable or too large");
        return XS_EINVAL;
    }
    buf[n] = '\0';
    *out = buf;
    return XS_OK;
}

/* tls_config makes a TLS configuration (new, nng_tls_config_free) from dir: this process's
 * cert.pem and key.pem, trusting the CAs in dir/trust-<peer>.pem and requiring the peer's
 * certificate; a client also requires the hub's name. */
static xs_err tls_config(nng_tls_config **out, const char *dir, const char *peer, bool server,
                         xs_log *log)
{
    char *cert = NULL, *key = NULL, *trust = NULL;
    char trust_name[64];
    snprintf(trust_name, sizeof(trust_name), "trust-%s.pem", peer);
    nng_tls_config *cfg = NULL;
    xs_err e = read_pem(dir, "cert.pem", &cert, log);
    if (e == XS_OK) {
        e = read_pem(dir, "key.pem", &key, log);
    }
    if (e == XS_OK) {
        e = read_pem(dir, trust_name, &trust, log);
    }
    int rv = 0;
    const char *step = "";
    if (e == XS_OK) {
        if ((rv = nng_tls_config_alloc(&cfg, server ? NNG_TLS_MODE_SERVER : NNG_TLS_MODE_CLIENT)) !=
            0) {
            step = "alloc";
        } else if ((rv = nng_tls_config_own_cert(cfg, cert, key, NULL)) != 0) {
            step = "cert.pem and key.pem";
        } else if ((rv = nng_tls_config_ca_chain(cfg, trust, NULL)) != 0) {
            step = trust_name;
        } else if ((rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED)) != 0) {
            step = "auth mode";
        } else if (!server && (rv = nng_tls_config_server_name(cfg, XS_BUS_HUB_NAME)) != 0) {
            step = "server name";
        }
        if (rv != 0) {
            xs_log_error(log, "bus.tls_config", "{s:s, s:s, s:s}", "dir", dir, "file", step,
                         "error", nng_strerror(rv));
            e = XS_EINVAL;
        }
    }
    if (key != NULL) {
        memset(key, 0, strlen(key));
    }
    free(cert);
    free(key);
    free(trust);
    if (e != XS_OK) {
        if (cfg != NULL) {
            nng_tls_config_free(cfg);
        }
        return e;
    }
    *out = cfg;
    return XS_OK;
}

/* msg_from_buf makes a new nng message holding a copy of len bytes at buf. */
static int msg_from_buf(nng_msg **out, const void *buf, size_t len)
{
    nng_msg *msg;
    int rv = nng_msg_alloc(&msg, 0);
    if (rv != 0) {
        return rv;
    }
    if (len > 0 && (rv = nng_msg_append(msg, buf, len)) != 0) {
        nng_msg_free(msg);
        return rv;
    }
    *out = msg;
    return 0;
}

/* msg_take_body copies the body of msg into a new malloc'ed buffer (NUL-terminated after len
 * bytes, for convenience), frees msg (taken) and writes the buffer to *buf and *len. */
static xs_err msg_take_body(nng_msg *msg, void **buf, size_t *len)
{
    size_t n = nng_msg_len(msg);
    char *copy = malloc(n + 1);
    if (copy == NULL) {
        nng_msg_free(msg);
        return XS_ENOMEM;
    }
    if (n > 0) {
        memcpy(copy, nng_msg_body(msg), n);
    }
    copy[n] = '\0';
    nng_msg_free(msg);
    *buf = copy;
    *len = n;
    return XS_OK;
}

/* duration_from_ms turns a caller's timeout into an nng duration: negative means no limit,
 * and values beyond nng's range are capped. */
static nng_duration duration_from_ms(int64_t ms)
{
    if (ms < 0) {
        return NNG_DURATION_INFINITE;
    }
    if (ms > NNG_DURATION_MAX_MS) {
        return (nng_duration)NNG_DURATION_MAX_MS;
    }
    return (nng_duration)ms;
}

/* ---------------------------------------------------------------------------------------- */
/* hub */

typedef struct hub_domain {
    struct xs_bus_hub *hub;
    xs_bus_domain domain;
    nng_socket sock;
    bool open;
    atomic_int peers;
    pthread_mutex_t mu; /* guards pipes */
    uint32_t *pipes;    /* ids of the pipes counted in peers */
    size_t npipes;
    size_t cap;
} hub_domain;

struct xs_bus_hub {
    hub_domain dom[XS_BUS_DOMAIN_COUNT];
    nng_tls_config *tls[XS_BUS_DOMAIN_COUNT]; /* tls+tcp://: what each domain's listeners trust */
    nng_socket sub;
    bool sub_open;
    nng_listener events[XS_BUS_DOMAIN_COUNT]; /* the SUB socket's listener of each domain */
    size_t max_msg;
    int64_t resend_ms;
    xs_log *log;
    pthread_mutex_t mu; /* guards closed and calls */
    pthread_cond_t idle;
    bool closed;
    int calls; /* calls in progress, waited for by destroy */
};

/* hub_pipe_event counts replicas as their pipes come and go (called on nng's threads). */
static void hub_pipe_event(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
    hub_domain *d = arg;
    uint32_t id = (uint32_t)nng_pipe_id(pipe);
    bool changed = false;
    pthread_mutex_lock(&d->mu);
    if (ev == NNG_PIPE_EV_ADD_POST) {
        if (d->npipes == d->cap) {
            size_t cap = d->cap == 0 ? 8 : d->cap * 2;
            uint32_t *p = realloc(d->pipes, cap * sizeof(*p));
            if (p != NULL) {
                d->pipes = p;
                d->cap = cap;
            }
        }
        if (d->npipes < d->cap) {
            d->pipes[d->npipes++] = id;
            changed = true;
        }
    } else if (ev == NNG_PIPE_EV_REM_POST) {
        for (size_t i = 0; i < d->npipes; i++) {
            if (d->pipes[i] == id) {
                d->pipes[i] = d->pipes[--d->npipes];
                changed = true;
                break;
            }
        }
    }
    int count = (int)d->npipes;
    if (changed) {
        atomic_store(&d->peers, count);
    }
    pthread_mutex_unlock(&d->mu);
    if (changed) {
        xs_log_info(d->hub->log, ev == NNG_PIPE_EV_ADD_POST ? "bus.peer_up" : "bus.peer_down",
                    "{s:s, s:i}", "domain", xs_bus_domain_name(d->domain), "peers", count);
    } else if (ev == NNG_PIPE_EV_ADD_POST) {
        xs_log_error(d->hub->log, "bus.peer_untracked", "{s:s}", "domain",
                     xs_bus_domain_name(d->domain));
    }
}

/* hub_listen applies the size limit to sock and listens at the address of socket index, with
 * domain's TLS configuration when there is one; *out (may be NULL) is the listener. */
static xs_err hub_listen(xs_bus_hub *hub, nng_socket sock, int index, xs_bus_domain domain,
                         const char *base, nng_listener *out)
{
    char url[XS_BUS_URL_MAX];
    xs_err e = xs_bus_url(base, index, url);
    if (e != XS_OK) {
        return e;
    }
    nng_listener l = NNG_LISTENER_INITIALIZER;
    int rv = nng_socket_set_size(sock, NNG_OPT_RECVMAXSZ, hub->max_msg + FRAME_HEADROOM);
    if (rv == 0) {
        rv = nng_listener_create(&l, sock, url);
    }
    if (rv == 0 && hub->tls[domain] != NULL) {
        rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, hub->tls[domain]);
    }
    if (rv == 0) {
        rv = nng_listener_start(l, 0);
    }
    if (rv != 0) {
        xs_log_error(hub->log, "bus.listen_failed", "{s:s, s:s, s:s}", "socket",
                     socket_suffix[index], "url", url, "error", nng_strerror(rv));
        return XS_EBUS;
    }
    xs_log_info(hub->log, "bus.listen", "{s:s, s:s, s:b}", "socket", socket_suffix[index], "url",
                url, "tls", hub->tls[domain] != NULL);
    if (out != NULL) {
        *out = l;
    }
    return XS_OK;
}

/* hub_open_domain opens, watches and binds the REQ socket of one domain. */
static xs_err hub_open_domain(xs_bus_hub *hub, hub_domain *d, const char *base)
{
    int rv = nng_req0_open(&d->sock);
    if (rv != 0) {
        return err_from_nng(rv);
    }
    d->open = true;
    if ((rv = nng_pipe_notify(d->sock, NNG_PIPE_EV_ADD_POST, hub_pipe_event, d)) != 0 ||
        (rv = nng_pipe_notify(d->sock, NNG_PIPE_EV_REM_POST, hub_pipe_event, d)) != 0) {
        return err_from_nng(rv);
    }
    return hub_listen(hub, d->sock, (int)d->domain, d->domain, base, NULL);
}

xs_err xs_bus_hub_create(xs_bus_hub **out, const xs_bus_opts *opts)
{
    if (out == NULL) {
        return XS_EINVAL;
    }
    xs_err e = check_opts(opts, false);
    if (e != XS_OK) {
        return e;
    }
    xs_bus_hub *hub = calloc(1, sizeof(*hub));
    if (hub == NULL) {
        return XS_ENOMEM;
    }
    hub->max_msg = opts->max_msg;
    hub->resend_ms = opts->resend_ms;
    hub->log = opts->log;
    pthread_mutex_init(&hub->mu, NULL);
    pthread_cond_init(&hub->idle, NULL);
    for (int i = 0; i < XS_BUS_DOMAIN_COUNT; i++) {
        hub->dom[i].hub = hub;
        hub->dom[i].domain = (xs_bus_domain)i;
        atomic_init(&hub->dom[i].peers, 0);
        pthread_mutex_init(&hub->dom[i].mu, NULL);
    }
    for (int i = 0; i < XS_BUS_DOMAIN_COUNT && has_prefix(opts->url, "tls+"); i++) {
        if ((e = tls_config(&hub->tls[i], opts->tls_dir, domain_names[i], true, hub->log)) !=
            XS_OK) {
            goto fail;
        }
    }
    for (int i = 0; i < XS_BUS_DOMAIN_COUNT; i++) {
        if ((e = hub_open_domain(hub, &hub->dom[i], opts->url)) != XS_OK) {
            goto fail;
        }
    }
    int rv = nng_sub0_open(&hub->sub);
    if (rv != 0) {
        e = err_from_nng(rv);
        goto fail;
    }
    hub->sub_open = true;
    if ((rv = nng_socket_set(hub->sub, NNG_OPT_SUB_SUBSCRIBE, "", 0)) != 0 ||
        (rv = nng_socket_set_int(hub->sub, NNG_OPT_RECVBUF, EVENT_QUEUE)) != 0) {
        e = err_from_nng(rv);
        goto fail;
    }
    for (int i = 0; i < XS_BUS_DOMAIN_COUNT; i++) {
        if ((e = hub_listen(hub, hub->sub, XS_BUS_EVENTS_INDEX + i, (xs_bus_domain)i, opts->url,
                            &hub->events[i])) != XS_OK) {
            goto fail;
        }
    }
    *out = hub;
    return XS_OK;

fail:
    xs_bus_hub_destroy(hub);
    return e;
}

void xs_bus_hub_close(xs_bus_hub *hub)
{
    if (hub == NULL) {
        return;
    }
    pthread_mutex_lock(&hub->mu);
    bool was = hub->closed;
    hub->closed = true;
    pthread_mutex_unlock(&hub->mu);
    if (!was) {
        /* Closing a socket fails the operations of its contexts with NNG_ECLOSED and returns
         * only after its pipes, and so their notifications, are gone. */
        for (int i = 0; i < XS_BUS_DOMAIN_COUNT; i++) {
            if (hub->dom[i].open) {
                nng_close(hub->dom[i].sock);
            }
        }
        if (hub->sub_open) {
            nng_close(hub->sub);
        }
    }
    pthread_mutex_lock(&hub->mu);
    while (hub->calls > 0) {
        pthread_cond_wait(&hub->idle, &hub->mu);
    }
    pthread_mutex_unlock(&hub->mu);
}

void xs_bus_hub_destroy(xs_bus_hub *hub)
{
    if (hub == NULL) {
        return;
    }
    xs_bus_hub_close(hub);
    for (int i = 0; i < XS_BUS_DOMAIN_COUNT; i++) {
        pthread_mutex_destroy(&hub->dom[i].mu);
        free(hub->dom[i].pipes);
        if (hub->tls[i] != NULL) {
            nng_tls_config_free(hub->tls[i]);
        }
    }
    pthread_cond_destroy(&hub->idle);
    pthread_mutex_destroy(&hub->mu);
    free(hub);
}

/* hub_enter registers a call in progress; XS_ECLOSED once destroy has begun. */
static xs_err hub_enter(xs_bus_hub *hub)
{
    pthread_mutex_lock(&hub->mu);
    if (hub->closed) {
        pthread_mutex_unlock(&hub->mu);
        return XS_ECLOSED;
    }
    hub->calls++;
    pthread_mutex_unlock(&hub->mu);
    return XS_OK;
}

/* hub_leave ends a call registered by hub_enter. */
static void hub_leave(xs_bus_hub *hub)
{
    pthread_mutex_lock(&hub->mu);
    if (--hub->calls == 0) {
        pthread_cond_broadcast(&hub->idle);
    }
    pthread_mutex_unlock(&hub->mu);
}

/* remaining_ms returns the time left until deadline (negative deadline: no limit). */
static int64_t remaining_ms(int64_t deadline)
{
    if (deadline < 0) {
        return -1;
    }
    int64_t left = deadline - xs_clock_mono_ms();
    return left > 0 ? left : 0;
}

/* hub_exchange does one request on a fresh context of sock; see xs_bus_request. */
static xs_err hub_exchange(xs_bus_hub *hub, nng_socket sock, const void *req, size_t len,
                           int64_t timeout_ms, void **rep, size_t *replen)
{
    int64_t deadline = timeout_ms < 0 ? -1 : xs_clock_mono_ms() + timeout_ms;
    nng_ctx ctx;
    nng_aio *aio = NULL;
    nng_msg *msg = NULL;
    int rv = nng_ctx_open(&ctx, sock);
    if (rv != 0) {
        return err_from_nng(rv);
    }
    xs_err e;
    int64_t resend = hub->resend_ms;
    if (resend == 0) {
        /* Never by timer within this call; nng still resends at once on peer loss. */
        resend = timeout_ms < 0 || timeout_ms > NNG_DURATION_MAX_MS - 1000 ? NNG_DURATION_MAX_MS
                                                                           : timeout_ms + 1000;
    }
    if ((rv = nng_ctx_set_ms(ctx, NNG_OPT_REQ_RESENDTIME, duration_from_ms(resend))) != 0 ||
        (rv = nng_aio_alloc(&aio, NULL, NULL)) != 0 || (rv = msg_from_buf(&msg, req, len)) != 0) {
        e = err_from_nng(rv);
        goto done;
    }
    /* The send completes when a replica takes the request; with none connected it waits. */
    nng_aio_set_msg(aio, msg);
    nng_aio_set_timeout(aio, duration_from_ms(timeout_ms));
    nng_ctx_send(ctx, aio);
    nng_aio_wait(aio);
    if ((rv = nng_aio_result(aio)) != 0) {
        nng_msg_free(nng_aio_get_msg(aio));
        e = err_from_nng(rv);
        goto done;
    }
    int64_t left = remaining_ms(deadline);
    if (left == 0) {
        e = XS_ETIMEDOUT;
        goto done;
    }
    nng_aio_set_timeout(aio, duration_from_ms(left));
    nng_ctx_recv(ctx, aio);
    nng_aio_wait(aio);
    if ((rv = nng_aio_result(aio)) != 0) {
        e = err_from_nng(rv);
        goto done;
    }
    msg = nng_aio_get_msg(aio);
    if (nng_msg_len(msg) > hub->max_msg) {
        xs_log_warn(hub->log, "bus.reply_too_big", "{s:I, s:I}", "bytes",
                    (json_int_t)nng_msg_len(msg), "max", (json_int_t)hub->max_msg);
        nng_msg_free(msg);
        e = XS_ETOOBIG;
        goto done;
    }
    e = msg_take_body(msg, rep, replen);

done:
    nng_aio_free(aio);
    nng_ctx_close(ctx);
    return e;
}

xs_err xs_bus_request(xs_bus_hub *hub, xs_bus_domain domain, const void *req, size_t len,
                      int64_t timeout_ms, void **rep, size_t *replen)
{
    if (hub == NULL || domain < 0 || domain >= XS_BUS_DOMAIN_COUNT || (req == NULL && len > 0) ||
        rep == NULL || replen == NULL) {
        return XS_EINVAL;
    }
    if (len > hub->max_msg) {
        return XS_ETOOBIG;
    }
    xs_err e = hub_enter(hub);
    if (e != XS_OK) {
        return e;
    }
    e = hub_exchange(hub, hub->dom[domain].sock, req, len, timeout_ms, rep, replen);
    hub_leave(hub);
    return e;
}

int xs_bus_peers(const xs_bus_hub *hub, xs_bus_domain domain)
{
    if (hub == NULL || domain < 0 || domain >= XS_BUS_DOMAIN_COUNT) {
        return 0;
    }
    return atomic_load(&hub->dom[domain].peers);
}

/* event_source tells the domain whose events listener msg arrived on. */
static xs_bus_domain event_source(const xs_bus_hub *hub, nng_msg *msg)
{
    nng_listener l = nng_pipe_listener(nng_msg_get_pipe(msg));
    for (int i = 0; i < XS_BUS_DOMAIN_COUNT; i++) {
        if (nng_listener_id(l) > 0 && nng_listener_id(l) == nng_listener_id(hub->events[i])) {
            return (xs_bus_domain)i;
        }
    }
    return XS_BUS_DOMAIN_NONE;
}

xs_err xs_bus_next_event(xs_bus_hub *hub, int64_t timeout_ms, void **buf, size_t *len,
                         xs_bus_domain *from)
{
    if (hub == NULL || buf == NULL || len == NULL || from == NULL) {
        return XS_EINVAL;
    }
    xs_err e = hub_enter(hub);
    if (e != XS_OK) {
        return e;
    }
    nng_aio *aio;
    int rv = nng_aio_alloc(&aio, NULL, NULL);
    if (rv != 0) {
        hub_leave(hub);
        return err_from_nng(rv);
    }
    int64_t deadline = timeout_ms < 0 ? -1 : xs_clock_mono_ms() + timeout_ms;
    for (;;) {
        nng_aio_set_timeout(aio, duration_from_ms(remaining_ms(deadline)));
        nng_recv_aio(hub->sub, aio);
        nng_aio_wait(aio);
        if ((rv = nng_aio_result(aio)) != 0) {
            e = err_from_nng(rv);
            break;
        }
        nng_msg *msg = nng_aio_get_msg(aio);
        xs_bus_domain source = event_source(hub, msg);
        if (source == XS_BUS_DOMAIN_NONE) {
            /* Cannot happen while every listener is one of ours; never guess a source. */
            xs_log_error(hub->log, "bus.event_unplaced", "{s:I}", "bytes",
                         (json_int_t)nng_msg_len(msg));
            nng_msg_free(msg);
            continue;
        }
        if (nng_msg_len(msg) <= hub->max_msg) {
            e = msg_take_body(msg, buf, len);
            *from = source;
            break;
        }
        xs_log_warn(hub->log, "bus.event_too_big", "{s:I, s:I}", "bytes",
                    (json_int_t)nng_msg_len(msg), "max", (json_int_t)hub->max_msg);
        nng_msg_free(msg);
    }
    nng_aio_free(aio);
    hub_leave(hub);
    return e;
}

/* ---------------------------------------------------------------------------------------- */
/* node */

/* One hub a node's socket dials, with what xs_bus_node_check needs to notice it has been
 * without a connection to it for too long. */
typedef struct node_hub {
    nng_dialer dialer;
    char url[XS_BUS_URL_MAX];
    atomic_int pipes;
    _Atomic int64_t down_since; /* monotonic ms when pipes last became 0 (or the dial) */
} node_hub;

/* One of a node's two dialled sockets (0: REP for requests, 1: PUB for events), dialling
 * every hub of the list: the REP socket answers each request on the pipe it came from, the
 * PUB socket sends each event to every hub. */
typedef struct node_link {
    nng_socket sock;
    bool open;
    int index;           /* the socket index of the URL */
    nng_tls_config *tls; /* borrowed from the node; NULL without TLS */
    node_hub hub[XS_BUS_HUBS_MAX];
    int nhubs;
} node_link;

struct xs_bus_node {
    xs_bus_domain domain;
    node_link link[2];
    nng_tls_config *tls; /* tls+tcp://: the hub it trusts, and this node's certificate */
    size_t max_msg;
    xs_log *log;
};

/* link_pipe_event keeps the pipe count of the hub a link's pipe was dialled to (nng's pipe
 * callback thread). A pipe of a dialer already replaced (xs_bus_node_check) counts for none. */
static void link_pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    node_link *l = arg;
    int id = nng_dialer_id(nng_pipe_dialer(p));
    for (int h = 0; h < l->nhubs; h++) {
        node_hub *hub = &l->hub[h];
        if (nng_dialer_id(hub->dialer) != id) {
            continue;
        }
        if (ev == NNG_PIPE_EV_ADD_POST) {
            atomic_fetch_add(&hub->pipes, 1);
        } else if (ev == NNG_PIPE_EV_REM_POST && atomic_fetch_sub(&hub->pipes, 1) == 1) {
            atomic_store(&hub->down_since, xs_clock_mono_ms());
        }
        return;
    }
}

struct xs_bus_worker {
    nng_ctx ctx;
    nng_aio *aio;
    size_t max_msg;
    xs_log *log;
};

/* link_dial starts (or starts again) the dialer of a link's hub h, dialling in the
 * background. */
static int link_dial(node_link *l, int h)
{
    node_hub *hub = &l->hub[h];
    atomic_store(&hub->pipes, 0);
    atomic_store(&hub->down_since, xs_clock_mono_ms());
    int rv = nng_dialer_create(&hub->dialer, l->sock, hub->url);
    if (rv == 0 && l->tls != NULL) {
        rv = nng_dialer_set_ptr(hub->dialer, NNG_OPT_TLS_CONFIG, l->tls);
    }
    if (rv == 0) {
        rv = nng_dialer_start(hub->dialer, NNG_FLAG_NONBLOCK);
    }
    return rv;
}

/* node_dial applies limits and reconnect back-off to the link's socket, watches its pipes and
 * dials socket index of every base of the list in the background. */
static xs_err node_dial(xs_bus_node *node, node_link *l, int index, const char *list)
{
    char bases[XS_BUS_HUBS_MAX][XS_BUS_URL_MAX];
    int n = split_bases(list, bases);
    if (n < 1) {
        return XS_EINVAL;
    }
    for (int h = 0; h < n; h++) {
        xs_err e = xs_bus_url(bases[h], index, l->hub[h].url);
        if (e != XS_OK) {
            return e;
        }
        atomic_init(&l->hub[h].pipes, 0);
        atomic_init(&l->hub[h].down_since, xs_clock_mono_ms());
    }
    l->index = index;
    l->tls = node->tls;
    int rv = nng_socket_set_size(l->sock, NNG_OPT_RECVMAXSZ, node->max_msg + FRAME_HEADROOM);
    if (rv == 0) {
        rv = nng_socket_set_ms(l->sock, NNG_OPT_RECONNMINT, RECONNECT_MIN_MS);
    }
    if (rv == 0) {
        rv = nng_socket_set_ms(l->sock, NNG_OPT_RECONNMAXT, RECONNECT_MAX_MS);
    }
    if (rv == 0) {
        rv = nng_pipe_notify(l->sock, NNG_PIPE_EV_ADD_POST, link_pipe_event, l);
    }
    if (rv == 0) {
        rv = nng_pipe_notify(l->sock, NNG_PIPE_EV_REM_POST, link_pipe_event, l);
    }
    /* Counted before dialling: a pipe may come up before link_dial returns. */
    l->nhubs = rv == 0 ? n : 0;
    for (int h = 0; h < l->nhubs && rv == 0; h++) {
        rv = link_dial(l, h);
        if (rv != 0) {
            xs_log_error(node->log, "bus.dial_failed", "{s:s, s:s, s:s}", "socket",
                         socket_suffix[index], "url", l->hub[h].url, "error", nng_strerror(rv));
            return XS_EBUS;
        }
        xs_log_info(node->log, "bus.dial", "{s:s, s:s, s:b}", "socket", socket_suffix[index], "url",
                    l->hub[h].url, "tls", l->tls != NULL);
    }
    if (rv != 0) {
        xs_log_error(node->log, "bus.dial_failed", "{s:s, s:s, s:s}", "socket",
                     socket_suffix[index], "url", list, "error", nng_strerror(rv));
        return XS_EBUS;
    }
    return XS_OK;
}

int xs_bus_node_check(xs_bus_node *node, int64_t stale_ms)
{
    if (node == NULL) {
        return 0;
    }
    int redialled = 0;
    int64_t now = xs_clock_mono_ms();
    for (int k = 0; k < 2; k++) {
        node_link *l = &node->link[k];
        for (int h = 0; l->open && h < l->nhubs; h++) {
            node_hub *hub = &l->hub[h];
            if (atomic_load(&hub->pipes) > 0 || now - atomic_load(&hub->down_since) < stale_ms) {
                continue;
            }
            /* No connection for that long although the dialer retries every RECONNECT_MAX_MS
             * at most: a dialer can stop retrying when its peer dies during the handshake (nng
             * 1.5, nanomsg/nng#970 and #1518). A new dialer starts afresh. */
            int64_t down_ms = now - atomic_load(&hub->down_since);
            nng_dialer_close(hub->dialer);
            int rv = link_dial(l, h);
            xs_log_warn(node->log, "bus.redial", "{s:s, s:s, s:I, s:s?}", "socket",
                        socket_suffix[l->index], "url", hub->url, "down_ms", (json_int_t)down_ms,
                        "error", rv != 0 ? nng_strerror(rv) : NULL);
            redialled++;
        }
    }
    return redialled;
}

xs_err xs_bus_node_create(xs_bus_node **out, xs_bus_domain domain, const xs_bus_opts *opts)
{
    if (out == NULL || domain < 0 || domain >= XS_BUS_DOMAIN_COUNT) {
        return XS_EINVAL;
    }
    xs_err e = check_opts(opts, true);
    if (e != XS_OK) {
        return e;
    }
    xs_bus_node *node = calloc(1, sizeof(*node));
    if (node == NULL) {
        return XS_ENOMEM;
    }
    node->domain = domain;
    node->max_msg = opts->max_msg;
    node->log = opts->log;
    if (has_prefix(opts->url, "tls+") &&
        (e = tls_config(&node->tls, opts->tls_dir, "orchestrator", false, node->log)) != XS_OK) {
        goto fail;
    }
    int rv;
    if ((rv = nng_rep0_open(&node->link[0].sock)) != 0) {
        e = err_from_nng(rv);
        goto fail;
    }
    node->link[0].open = true;
    if ((e = node_dial(node, &node->link[0], (int)domain, opts->url)) != XS_OK) {
        goto fail;
    }
    if ((rv = nng_pub0_open(&node->link[1].sock)) != 0) {
        e = err_from_nng(rv);
        goto fail;
    }
    node->link[1].open = true;
    if ((rv = nng_socket_set_int(node->link[1].sock, NNG_OPT_SENDBUF, EVENT_QUEUE)) != 0) {
        e = err_from_nng(rv);
        goto fail;
    }
    if ((e = node_dial(node, &node->link[1], XS_BUS_EVENTS_INDEX + (int)domain, opts->url)) !=
        XS_OK) {
        goto fail;
    }
    *out = node;
    return XS_OK;

fail:
    xs_bus_node_destroy(node);
    return e;
}

void xs_bus_node_destroy(xs_bus_node *node)
{
    if (node == NULL) {
        return;
    }
    /* Closing the REP socket closes its contexts: workers blocked in recv get ECLOSED. */
    for (int k = 0; k < 2; k++) {
        if (node->link[k].open) {
            nng_close(node->link[k].sock);
        }
    }
    if (node->tls != NULL) {
        nng_tls_config_free(node->tls);
    }
    free(node);
}

xs_err xs_bus_publish(xs_bus_node *node, const void *buf, size_t len)
{
    if (node == NULL || (buf == NULL && len > 0)) {
        return XS_EINVAL;
    }
    if (len > node->max_msg) {
        return XS_ETOOBIG;
    }
    nng_msg *msg;
    int rv = msg_from_buf(&msg, buf, len);
    if (rv != 0) {
        return err_from_nng(rv);
    }
    /* PUB never waits: with no subscriber connected, or a full pipe, the event is dropped. */
    if ((rv = nng_sendmsg(node->link[1].sock, msg, NNG_FLAG_NONBLOCK)) != 0) {
        nng_msg_free(msg);
        return err_from_nng(rv);
    }
    return XS_OK;
}

xs_err xs_bus_worker_create(xs_bus_node *node, xs_bus_worker **out)
{
    if (node == NULL || out == NULL) {
        return XS_EINVAL;
    }
    xs_bus_worker *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return XS_ENOMEM;
    }
    w->max_msg = node->max_msg;
    w->log = node->log;
    int rv = nng_aio_alloc(&w->aio, NULL, NULL);
    if (rv != 0) {
        free(w);
        return err_from_nng(rv);
    }
    if ((rv = nng_ctx_open(&w->ctx, node->link[0].sock)) != 0) {
        nng_aio_free(w->aio);
        free(w);
        return err_from_nng(rv);
    }
    *out = w;
    return XS_OK;
}

void xs_bus_worker_destroy(xs_bus_worker *w)
{
    if (w == NULL) {
        return;
    }
    /* After xs_bus_node_destroy the context is already gone; nng then just says ECLOSED. */
    nng_ctx_close(w->ctx);
    nng_aio_free(w->aio);
    free(w);
}

xs_err xs_bus_worker_recv(xs_bus_worker *w, int64_t timeout_ms, void **buf, size_t *len)
{
    if (w == NULL || buf == NULL || len == NULL) {
        return XS_EINVAL;
    }
    int64_t deadline = timeout_ms < 0 ? -1 : xs_clock_mono_ms() + timeout_ms;
    for (;;) {
        nng_aio_set_timeout(w->aio, duration_from_ms(remaining_ms(deadline)));
        nng_ctx_recv(w->ctx, w->aio);
        nng_aio_wait(w->aio);
        int rv = nng_aio_result(w->aio);
        if (rv != 0) {
            return err_from_nng(rv);
        }
        nng_msg *msg = nng_aio_get_msg(w->aio);
        if (nng_msg_len(msg) <= w->max_msg) {
            return msg_take_body(msg, buf, len);
        }
        /* Left unanswered: the hub's caller times out, as for any lost request. */
        xs_log_warn(w->log, "bus.request_too_big", "{s:I, s:I}", "bytes",
                    (json_int_t)nng_msg_len(msg), "max", (json_int_t)w->max_msg);
        nng_msg_free(msg);
    }
}

xs_err xs_bus_worker_reply(xs_bus_worker *w, const void *buf, size_t len)
{
    if (w == NULL || (buf == NULL && len > 0)) {
        return XS_EINVAL;
    }
    if (len > w->max_msg) {
        return XS_ETOOBIG;
    }
    nng_msg *msg;
    int rv = msg_from_buf(&msg, buf, len);
    if (rv != 0) {
        return err_from_nng(rv);
    }
    nng_aio_set_msg(w->aio, msg);
    nng_aio_set_timeout(w->aio, REPLY_TIMEOUT_MS);
    nng_ctx_send(w->ctx, w->aio);
    nng_aio_wait(w->aio);
    if ((rv = nng_aio_result(w->aio)) != 0) {
        nng_msg_free(nng_aio_get_msg(w->aio));
        return err_from_nng(rv);
    }
    return XS_OK;
}
