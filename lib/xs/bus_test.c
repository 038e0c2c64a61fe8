/* bus_test.c: tests of the message bus over inproc, ipc, tcp and tls+tcp on 127.0.0.1, and of
 * who may join it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xs/bus.h"
#include "xs/clock.h"

#define MAX_MSG (64 * 1024)

/* ---------------------------------------------------------------------------------------- */
/* helpers */

/* inproc_base returns a new inproc base URL unique within this process (static buffer per
 * call site is not enough under threads, so the caller's buffer is filled). */
static void inproc_base(char *buf, size_t size)
{
    static atomic_int seq;
    snprintf(buf, size, "inproc://bus_test_%d_%d", (int)getpid(), atomic_fetch_add(&seq, 1));
}

/* port_free tells whether a TCP port on 127.0.0.1 can be bound right now. */
static bool port_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return false;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

/* scheme_base writes a base URL of scheme on 127.0.0.1 whose ports are all free right now. */
static void scheme_base(const char *scheme, char *buf, size_t size)
{
    static atomic_uint seed;
    unsigned s = (unsigned)getpid() * 2654435761u + atomic_fetch_add(&seed, 7919u);
    for (int tries = 0; tries < 200; tries++) {
        s = s * 1103515245u + 12345u;
        int base = 20000 + (int)((s >> 8) % 40000u);
        bool ok = true;
        for (int i = 0; i < XS_BUS_SOCKETS && ok; i++) {
            ok = port_free(base + i);
        }
        if (ok) {
            snprintf(buf, size, "%s://127.0.0.1:%d", scheme, base);
            return;
        }
    }
    fail_msg("no %d free consecutive ports", XS_BUS_SOCKETS);
}

static void tcp_base(char *buf, size_t size)
{
    scheme_base("tcp", buf, size);
}

/* make_opts: options for the tests of the transport itself, which run over plain tcp:// too
 * (insecure); the rules of who may join have their own tests below. */
static xs_bus_opts make_opts(const char *url, size_t max_msg, int64_t resend_ms, xs_log *log)
{
    xs_bus_opts o = {
        .url = url, .max_msg = max_msg, .resend_ms = resend_ms, .log = log, .insecure = 1};
    return o;
}

/* wait_peers waits up to 5 s for the hub to see n replicas of domain. */
static bool wait_peers(xs_bus_hub *hub, xs_bus_domain d, int n)
{
    int64_t end = xs_clock_mono_ms() + 5000;
    while (xs_clock_mono_ms() < end) {
        if (xs_bus_peers(hub, d) == n) {
            return true;
        }
        xs_clock_sleep_ms(5);
    }
    return xs_bus_peers(hub, d) == n;
}

/* request_str sends a string and checks the reply equals want (when not NULL). */
static xs_err request_str(xs_bus_hub *hub, xs_bus_domain d, const char *req, int64_t timeout_ms,
                          char *got, size_t gotsize)
{
    void *rep = NULL;
    size_t len = 0;
    xs_err e = xs_bus_request(hub, d, req, strlen(req), timeout_ms, &rep, &len);
    if (e == XS_OK && got != NULL) {
        snprintf(got, gotsize, "%.*s", (int)len, (const char *)rep);
    }
    free(rep);
    return e;
}

/* A replica: worker threads on one node that answer "<tag>:<request>". */
#define MAX_WORKERS 8
typedef struct replica {
    xs_bus_node *node;
    const char *tag;
    int nworkers;
    int delay_ms; /* time each request takes */
    bool hold;    /* take one request and never answer it */
    atomic_bool stop;
    atomic_int handled;
    atomic_int held;   /* requests taken and held */
    atomic_int errors; /* unexpected results seen by worker threads */
    atomic_int closed; /* workers that saw XS_ECLOSED */
    pthread_t threads[MAX_WORKERS];
} replica;

static void *replica_main(void *arg)
{
    replica *r = arg;
    xs_bus_worker *w = NULL;
    if (xs_bus_worker_create(r->node, &w) != XS_OK) {
        atomic_fetch_add(&r->errors, 1);
        return NULL;
    }
    while (!atomic_load(&r->stop)) {
        void *buf = NULL;
        size_t len = 0;
        xs_err e = xs_bus_worker_recv(w, 50, &buf, &len);
        if (e == XS_ETIMEDOUT) {
            continue;
        }
        if (e == XS_ECLOSED) {
            atomic_fetch_add(&r->closed, 1);
            break;
        }
        if (e != XS_OK) {
            atomic_fetch_add(&r->errors, 1);
            break;
        }
        if (r->hold) {
            atomic_fetch_add(&r->held, 1);
            free(buf);
            /* Never answer; wait until the node goes away. */
            while (!atomic_load(&r->stop)) {
                xs_clock_sleep_ms(5);
            }
            break;
        }
        if (r->delay_ms > 0) {
            xs_clock_sleep_ms(r->delay_ms);
        }
        size_t taglen = strlen(r->tag);
        char *out = malloc(taglen + 1 + len);
        memcpy(out, r->tag, taglen);
        out[taglen] = ':';
        memcpy(out + taglen + 1, buf, len);
        free(buf);
        atomic_fetch_add(&r->handled, 1);
        if (xs_bus_worker_reply(w, out, taglen + 1 + len) != XS_OK) {
            atomic_fetch_add(&r->errors, 1);
        }
        free(out);
    }
    xs_bus_worker_destroy(w);
    return NULL;
}

static void replica_start(replica *r, xs_bus_domain d, const xs_bus_opts *opts, const char *tag,
                          int nworkers)
{
    r->tag = tag;
    r->nworkers = nworkers;
    atomic_init(&r->stop, false);
    atomic_init(&r->handled, 0);
    atomic_init(&r->held, 0);
    atomic_init(&r->errors, 0);
    atomic_init(&r->closed, 0);
    assert_int_equal(xs_bus_node_create(&r->node, d, opts), XS_OK);
    for (int i = 0; i < nworkers; i++) {
        assert_int_equal(pthread_create(&r->threads[i], NULL, replica_main, r), 0);
    }
}

/* replica_stop stops the workers, then destroys the node. */
static void replica_stop(replica *r)
{
    atomic_store(&r->stop, true);
    for (int i = 0; i < r->nworkers; i++) {
        pthread_join(r->threads[i], NULL);
    }
    xs_bus_node_destroy(r->node);
    r->node = NULL;
    assert_int_equal(atomic_load(&r->errors), 0);
}

/* replica_kill destroys the node under its workers (as a crash would cut the connection),
 * then lets them finish. */
static void replica_kill(replica *r)
{
    xs_bus_node_destroy(r->node);
    r->node = NULL;
    atomic_store(&r->stop, true);
    for (int i = 0; i < r->nworkers; i++) {
        pthread_join(r->threads[i], NULL);
    }
    assert_int_equal(atomic_load(&r->errors), 0);
}

/* A log written to a temporary file, to check what was logged. */
typedef struct logfile {
    FILE *f;
    xs_log *log;
} logfile;

static void logfile_open(logfile *lf)
{
    lf->f = tmpfile();
    assert_non_null(lf->f);
    assert_int_equal(xs_log_create(&lf->log, "bus_test", XS_LOG_DEBUG, fileno(lf->f)), XS_OK);
}

/* logfile_has tells whether any line logged so far contains needle. */
static bool logfile_has(logfile *lf, const char *needle)
{
    char line[4096];
    bool found = false;
    rewind(lf->f);
    while (!found && fgets(line, sizeof(line), lf->f) != NULL) {
        found = strstr(line, needle) != NULL;
    }
    fseek(lf->f, 0, SEEK_END);
    return found;
}

static void logfile_close(logfile *lf)
{
    xs_log_destroy(lf->log);
    fclose(lf->f);
}

/* ---------------------------------------------------------------------------------------- */
/* names and addresses */

static void test_domain_names(void **state)
{
    (void)state;
    xs_bus_domain d;
    for (int i = 0; i < XS_BUS_DOMAIN_COUNT; i++) {
        assert_int_equal(xs_bus_domain_parse(xs_bus_domain_name((xs_bus_domain)i), &d), XS_OK);
        assert_int_equal(d, i);
    }
    assert_string_equal(xs_bus_domain_name(XS_BUS_DOMAIN_CONTACTS), "contacts");
    assert_string_equal(xs_bus_domain_name(XS_BUS_DOMAIN_NONE), "none");
    assert_string_equal(xs_bus_domain_name(XS_BUS_DOMAIN_COUNT), "none");
    d = XS_BUS_DOMAIN_AUTH;
    assert_int_equal(xs_bus_domain_parse("Contacts", &d), XS_EINVAL);
    assert_int_equal(xs_bus_domain_parse("none", &d), XS_EINVAL);
    assert_int_equal(xs_bus_domain_parse("", &d), XS_EINVAL);
    assert_int_equal(xs_bus_domain_parse(NULL, &d), XS_EINVAL);
    assert_int_equal(d, XS_BUS_DOMAIN_AUTH); /* untouched on failure */
}

static void test_url_derivation(void **state)
{
    (void)state;
    char buf[XS_BUS_URL_MAX];
    assert_int_equal(xs_bus_url("tcp://host:7400", XS_BUS_DOMAIN_AUTH, buf), XS_OK);
    assert_string_equal(buf, "tcp://host:7400");
    assert_int_equal(xs_bus_url("tcp://host:7400", XS_BUS_DOMAIN_PAYMENTS, buf), XS_OK);
    assert_string_equal(buf, "tcp://host:7403");
    assert_int_equal(xs_bus_url("tcp://10.0.0.1:7400", XS_BUS_EVENTS_INDEX, buf), XS_OK);
    assert_string_equal(buf, "tcp://10.0.0.1:7406");
    assert_int_equal(xs_bus_url("tcp://[::1]:9998", XS_BUS_DOMAIN_CONTACTS, buf), XS_OK);
    assert_string_equal(buf, "tcp://[::1]:9999");
    assert_int_equal(xs_bus_url("tcp4://h:100", XS_BUS_DOMAIN_INVOICES, buf), XS_OK);
    assert_string_equal(buf, "tcp4://h:102");
    assert_int_equal(xs_bus_url("tcp://:7400", XS_BUS_DOMAIN_CONTACTS, buf), XS_OK);
    assert_string_equal(buf, "tcp://:7401");
    assert_int_equal(xs_bus_url("tls+tcp://orchestrator:7400", XS_BUS_EVENTS_INDEX + 1, buf),
                     XS_OK);
    assert_string_equal(buf, "tls+tcp://orchestrator:7407");
    /* The highest base that leaves room for all twelve sockets. */
    assert_int_equal(xs_bus_url("tcp://h:65524", XS_BUS_SOCKETS - 1, buf), XS_OK);
    assert_string_equal(buf, "tcp://h:65535");
    assert_int_equal(xs_bus_url("ipc:///run/xs/bus", XS_BUS_DOMAIN_INVOICES, buf), XS_OK);
    assert_string_equal(buf, "ipc:///run/xs/bus.invoices");
    assert_int_equal(xs_bus_url("inproc://x", XS_BUS_EVENTS_INDEX, buf), XS_OK);
    assert_string_equal(buf, "inproc://x.events-auth");
    assert_int_equal(xs_bus_url("ipc:///run/xs/bus", XS_BUS_SOCKETS - 1, buf), XS_OK);
    assert_string_equal(buf, "ipc:///run/xs/bus.events-jobs");
    assert_int_equal(xs_bus_url("inproc://x", XS_BUS_DOMAIN_AUTH, buf), XS_OK);
    assert_string_equal(buf, "inproc://x.auth");

    strcpy(buf, "untouched");
    static const char *const bad[] = {
        "tcp://h:65525", /* 65536 for the jobs events */
        "tls://h:7400",
        "tls+ipc:///x",
        "tcp://h:0",
        "tcp://h:",
        "tcp://h",
        "tcp://h:74a0",
        "tcp://h:-1",
        "tcp://h:123456",
        "tcp://h:7400/path",
        "tcp://[::1:7400",
        "tcp://a b:7400",
        "tcp://u@h:7400",
        "ws://h:7400",
        "http://h:80",
        "inproc://",
        "ipc://",
        "",
        "tcp:/h:7400",
        "inproc://a b",
        "TCP://h:7400",
        "tcp://h:+740",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (xs_bus_url(bad[i], XS_BUS_DOMAIN_AUTH, buf) != XS_EINVAL) {
            fail_msg("accepted bad base %s", bad[i]);
        }
    }
    assert_string_equal(buf, "untouched");
    assert_int_equal(xs_bus_url(NULL, 0, buf), XS_EINVAL);
    assert_int_equal(xs_bus_url("inproc://x", 0, NULL), XS_EINVAL);
    assert_int_equal(xs_bus_url("inproc://x", -1, buf), XS_EINVAL);
    assert_int_equal(xs_bus_url("inproc://x", XS_BUS_SOCKETS, buf), XS_EINVAL);

    /* A derived address that would not fit. */
    char longbase[XS_BUS_URL_MAX];
    memset(longbase, 'a', sizeof(longbase));
    memcpy(longbase, "inproc://", 9);
    longbase[XS_BUS_URL_MAX - 5] = '\0';
    assert_int_equal(xs_bus_url(longbase, XS_BUS_DOMAIN_AUTH, buf), XS_EINVAL);
    longbase[XS_BUS_URL_MAX - 20] = '\0';
    assert_int_equal(xs_bus_url(longbase, XS_BUS_DOMAIN_AUTH, buf), XS_OK);
}

static void test_bad_opts(void **state)
{
    (void)state;
    xs_bus_hub *hub = NULL;
    xs_bus_node *node = NULL;
    xs_bus_opts o = make_opts("inproc://bad_opts", MAX_MSG, 0, NULL);
    o.max_msg = 0;
    assert_int_equal(xs_bus_hub_create(&hub, &o), XS_EINVAL);
    assert_int_equal(xs_bus_node_create(&node, XS_BUS_DOMAIN_AUTH, &o), XS_EINVAL);
    o = make_opts("ws://h:1", MAX_MSG, 0, NULL);
    assert_int_equal(xs_bus_hub_create(&hub, &o), XS_EINVAL);
    assert_int_equal(xs_bus_node_create(&node, XS_BUS_DOMAIN_AUTH, &o), XS_EINVAL);
    o = make_opts("inproc://bad_opts", MAX_MSG, -1, NULL);
    assert_int_equal(xs_bus_hub_create(&hub, &o), XS_EINVAL);
    o = make_opts(NULL, MAX_MSG, 0, NULL);
    assert_int_equal(xs_bus_hub_create(&hub, &o), XS_EINVAL);
    assert_int_equal(xs_bus_hub_create(&hub, NULL), XS_EINVAL);
    o = make_opts("inproc://bad_opts", MAX_MSG, 0, NULL);
    assert_int_equal(xs_bus_node_create(&node, XS_BUS_DOMAIN_COUNT, &o), XS_EINVAL);
    assert_int_equal(xs_bus_node_create(&node, (xs_bus_domain)-2, &o), XS_EINVAL);
    assert_null(hub);
    assert_null(node);
    xs_bus_hub_destroy(NULL);
    xs_bus_node_destroy(NULL);
    xs_bus_worker_destroy(NULL);
}

/* ---------------------------------------------------------------------------------------- */
/* request and reply */

/* round_trip_opts: a hub with ho, an invoices replica with ro, and requests both ways. */
static void round_trip_opts(const xs_bus_opts *ho, const xs_bus_opts *ro)
{
    xs_bus_hub *hub;
    assert_int_equal(xs_bus_hub_create(&hub, ho), XS_OK);
    replica r = {0};
    replica_start(&r, XS_BUS_DOMAIN_INVOICES, ro, "inv", 1);
    assert_true(wait_peers(hub, XS_BUS_DOMAIN_INVOICES, 1));
    char got[128];
    assert_int_equal(request_str(hub, XS_BUS_DOMAIN_INVOICES, "hello", 5000, got, sizeof(got)),
                     XS_OK);
    assert_string_equal(got, "inv:hello");

    /* Binary bytes, including NULs, come back exactly. */
    unsigned char bin[300];
    for (size_t i = 0; i < sizeof(bin); i++) {
        bin[i] = (unsigned char)(i * 7);
    }
    void *rep = NULL;
    size_t len = 0;
    assert_int_equal(
        xs_bus_request(hub, XS_BUS_DOMAIN_INVOICES, bin, sizeof(bin), 5000, &rep, &len), XS_OK);
    assert_int_equal(len, 4 + sizeof(bin));
    assert_memory_equal((char *)rep + 4, bin, sizeof(bin));
    free(rep);

    /* An empty request is a valid request. */
    rep = NULL;
    assert_int_equal(xs_bus_request(hub, XS_BUS_DOMAIN_INVOICES, NULL, 0, 5000, &rep, &len), XS_OK);
    assert_int_equal(len, 4);
    assert_memory_equal(rep, "inv:", 4);
    free(rep);

    /* Other domains have no replica. */
    assert_int_equal(xs_bus_peers(hub, XS_BUS_DOMAIN_CONTACTS), 0);
    assert_int_equal(request_str(hub, XS_BUS_DOMAIN_CONTACTS, "x", 100, NULL, 0), XS_ETIMEDOUT);

    /* Argument errors. */
    assert_int_equal(xs_bus_request(hub, XS_BUS_DOMAIN_NONE, "x", 1, 100, &rep, &len), XS_EINVAL);
    assert_int_equal(xs_bus_request(hub, XS_BUS_DOMAIN_AUTH, NULL, 1, 100, &rep, &len), XS_EINVAL);
    assert_int_equal(xs_bus_request(hub, XS_BUS_DOMAIN_AUTH, "x", 1, 100, NULL, &len), XS_EINVAL);
    assert_int_equal(xs_bus_request(NULL, XS_BUS_DOMAIN_AUTH, "x", 1, 100, &rep, &len), XS_EINVAL);
    assert_int_equal(xs_bus_peers(NULL, XS_BUS_DOMAIN_AUTH), 0);
    assert_int_equal(xs_bus_peers(hub, XS_BUS_DOMAIN_NONE), 0);

    replica_stop(&r);
    xs_bus_hub_destroy(hub);
}

static void round_trip(const char *base)
{
    xs_bus_opts o = make_opts(base, MAX_MSG, 0, NULL);
    round_trip_opts(&o, &o);
}

static void test_round_trip_inproc(void **state)
{
    (void)state;
    char base[64];
    inproc_base(base, sizeof(base));
    round_trip(base);
}

static void test_round_trip_tcp(void **state)
{
    (void)state;
    char base[64];
    tcp_base(base, sizeof(base));
    round_trip(base);
}

static void test_round_trip_ipc(void **state)
{
    (void)state;
    char dir[] = "/tmp/bus_test_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char base[128];
    snprintf(base, sizeof(base), "ipc://%s/bus", dir);
    round_trip(base);
    rmdir(dir);
}

/* Many threads, each with many requests in flight one after another. */
typedef struct caller {
    xs_bus_hub *hub;
    xs_bus_domain domain;
    int id;
    int count;
    int64_t timeout_ms;
    atomic_int *failures;
    atomic_int *closed;
} caller;

static void *caller_main(void *arg)
{
    caller *c = arg;
    for (int i = 0; i < c->count; i++) {
        char req[64], want[96], got[128];
        snprintf(req, sizeof(req), "c%d-r%d", c->id, i);
        xs_err e = request_str(c->hub, c->domain, req, c->timeout_ms, got, sizeof(got));
        if (e == XS_ECLOSED && c->closed != NULL) {
            atomic_fetch_add(c->closed, 1);
            return NULL;
        }
        /* The reply is the request behind one replica's tag. */
        const char *colon = strchr(got, ':');
        snprintf(want, sizeof(want), "%s", colon != NULL ? colon + 1 : "");
        if (e != XS_OK || strcmp(want, req) != 0) {
            atomic_fetch_add(c->failures, 1);
        }
    }
    return NULL;
}

static void test_concurrent_requests(void **state)
{
    (void)state;
    char base[64];
    tcp_base(base, sizeof(base));
    xs_bus_opts o = make_opts(base, MAX_MSG, 0, NULL);
    xs_bus_hub *hub;
    assert_int_equal(xs_bus_hub_create(&hub, &o), XS_OK);
    replica r = {0};
    replica_start(&r, XS_BUS_DOMAIN_CONTACTS, &o, "c", 4);
    assert_true(wait_peers(hub, XS_BUS_DOMAIN_CONTACTS, 1));

    enum { NTHREADS = 16, PER_THREAD = 60 };
    atomic_int failures;
    atomic_init(&failures, 0);
    caller callers[NTHREADS];
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        callers[i] = (caller){hub, XS_BUS_DOMAIN_CONTACTS, i, PER_THREAD, 10000, &failures, NULL};
        assert_int_equal(pthread_create(&th[i], NULL, caller_main, &callers[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
    }
    assert_int_equal(atomic_load(&failures), 0);
    assert_int_equal(atomic_load(&r.handled), NTHREADS * PER_THREAD);
    replica_stop(&r);
    xs_bus_hub_destroy(hub);
}

static void test_replicas_share_work(void **state)
{
    (void)state;
    char base[64];
    tcp_base(base, sizeof(base));
    xs_bus_opts o = make_opts(base, MAX_MSG, 0, NULL);
    xs_bus_hub *hub;
    assert_int_equal(xs_bus_hub_create(&hub, &o), XS_OK);
    replica a = {0}, b = {0};
    a.delay_ms = 20;
    b.delay_ms = 20;
    replica_start(&a, XS_BUS_DOMAIN_PAYMENTS, &o, "A", 4);
    replica_start(&b, XS_BUS_DOMAIN_PAYMENTS, &o, "B", 4);
    assert_true(wait_peers(hub, XS_BUS_DOMAIN_PAYMENTS, 2));

    enum { NTHREADS = 24, PER_THREAD = 3 };
    atomic_int failures;
    atomic_init(&failures, 0);
    caller callers[NTHREADS];
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        callers[i] = (caller){hub, XS_BUS_DOMAIN_PAYMENTS, i, PER_THREAD, 10000, &failures, NULL};
        assert_int_equal(pthread_create(&th[i], NULL, caller_main, &callers[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
    }
    assert_int_equal(atomic_load(&failures), 0);
    int ha = atomic_load(&a.handled), hb = atomic_load(&b.handled);
    assert_int_equal(ha + hb, NTHREADS * PER_THREAD);
    assert_true(ha > 0);
    assert_true(hb > 0);
    replica_stop(&a);
    replica_stop(&b);
    xs_bus_hub_destroy(hub);
}

/* A request in flight on its own thread. */
typedef struct pending {
    xs_bus_hub *hub;
    xs_bus_domain domain;
    const char *req;
    int64_t timeout_ms;
    xs_err result;
    char reply[128];
    int64_t elapsed_ms;
    pthread_t th;
} pending;

static void *pending_main(void *arg)
{
    pending *p = arg;
    int64_t t0 = xs_clock_mono_ms();
    p->result = request_str(p->hub, p->domain, p->req, p->timeout_ms, p->reply, sizeof(p->reply));
    p->elapsed_ms = xs_clock_mono_ms() - t0;
    return NULL;
}

static void pending_start(pending *p)
{
    assert_int_equal(pthread_create(&p->th, NULL, pending_main, p), 0);
}

/* wait_count waits up to 5 s for *v to reach n. */
static bool wait_count(atomic_int *v, int n)
{
    int64_t end = xs_clock_mono_ms() + 5000;
    while (atomic_load(v) < n && xs_clock_mono_ms() < end) {
        xs_clock_sleep_ms(5);
    }
    return atomic_load(v) >= n;
}

/* replica_dies: a request held by a replica that dies is answered by another (resend 0:
 * only on peer loss, no timer). */
static void replica_dies(const char *base)
{
    xs_bus_opts o = make_opts(base, MAX_MSG, 0, NULL);
    xs_bus_hub *hub;
    assert_int_equal(xs_bus_hub_create(&hub, &o), XS_OK);
    replica a = {0}, b = {0};
    a.hold = true;
    replica_start(&a, XS_BUS_DOMAIN_AUTH, &o, "A", 1);
    assert_true(wait_peers(hub, XS_BUS_DOMAIN_AUTH, 1));

    pending p = {.hub = hub, .domain = XS_BUS_DOMAIN_AUTH, .req = "job", .timeout_ms = 8000};
    pending_start(&p);
    assert_true(wait_count(&a.held, 1)); /* A holds the request now */
    replica_start(&b, XS_BUS_DOMAIN_AUTH, &o, "B", 1);
    assert_true(wait_peers(hub, XS_BUS_DOMAIN_AUTH, 2));
    xs_clock_sleep_ms(100); /* no timer resend: B has nothing yet */
    assert_int_equal(atomic_load(&b.handled), 0);

    replica_kill(&a);
    pthread_join(p.th, NULL);
    assert_int_equal(p.result, XS_OK);
    assert_string_equal(p.reply, "B:job");
    assert_true(p.elapsed_ms < 5000);
    assert_true(wait_peers(hub, XS_BUS_DOMAIN_AUTH, 1));
    replica_stop(&b);
    xs_bus_hub_destroy(hub);
}

static void test_replica_dies_request_answered_by_other(void **state)
{
    (void)state;
    char base[64];
    tcp_base(base, sizeof(base));
    replica_dies(base);
    inproc_base(base, sizeof(base));
    replica_dies(base);
}

/* test_resend_infinite_fails_on_peer_loss pins down the nng 1.5.2 behaviour bus.c works
 * around: with NNG_OPT_REQ_RESENDTIME infinite, losing the pipe that holds a request fails
 * the request with NNG_ECONNRESET instead of resending it to another peer. */
static void test_resend_infinite_fails_on_peer_loss(void **state)
{
    (void)state;
    char url[64];
    inproc_base(url, sizeof(url));
    nng_socket req, rep1, rep2;
    assert_int_equal(nng_req0_open(&req), 0);
    assert_int_equal(nng_listen(req, url, NULL, 0), 0);
    assert_int_equal(nng_rep0_open(&rep1), 0);
    assert_int_equal(nng_dial(rep1, url, NULL, 0), 0);
    nng_ctx ctx;
    assert_int_equal(nng_ctx_open(&ctx, req), 0);
    assert_int_equal(nng_ctx_set_ms(ctx, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE), 0);
    nng_aio *aio;
    assert_int_equal(nng_aio_alloc(&aio, NULL, NULL), 0);
    nng_msg *msg;
    assert_int_equal(nng_msg_alloc(&msg, 0), 0);
    assert_int_equal(nng_msg_append(msg, "q", 1), 0);
    nng_aio_set_msg(aio, msg);
    nng_aio_set_timeout(aio, 2000);
    nng_ctx_send(ctx, aio);
    nng_aio_wait(aio);
    assert_int_equal(nng_aio_result(aio), 0);
    nng_msg *got;
    assert_int_equal(nng_recvmsg(rep1, &got, 0), 0); /* rep1 holds the request */
    nng_msg_free(got);
    assert_int_equal(nng_rep0_open(&rep2), 0);
    assert_int_equal(nng_dial(rep2, url, NULL, 0), 0);
    assert_int_equal(nng_socket_set_ms(rep2, NNG_OPT_RECVTIMEO, 500), 0);

    nng_aio_set_timeout(aio, 2000);
    nng_ctx_recv(ctx, aio);
    nng_close(rep1);
    nng_aio_wait(aio);
    assert_int_equal(nng_aio_result(aio), NNG_ECONNRESET);
    assert_int_equal(nng_recvmsg(rep2, &got, 0), NNG_ETIMEDOUT); /* never resent */

    nng_aio_free(aio);
    nng_ctx_close(ctx);
    nng_close(rep2);
    nng_close(req);
}

/* With resend_ms set, a request a replica sits on is resent to another by timer. */
static void test_resend_by_timer(void **state)
{
    (void)state;
    char base[64];
    inproc_base(base, sizeof(base));
    xs_bus_opts o = make_opts(base, MAX_MSG, 200, NULL);
    xs_bus_hub *hub;
    assert_int_equal(xs_bus_hub_create(&hub, &o), XS_OK);
    replica a = {0}, b = {0};
    a.hold = true;
    replica_start(&a, XS_BUS_DOMAIN_CONTACTS, &o, "A", 1);
    assert_true(wait_peers(hub, XS_BUS_DOMAIN_CONTACTS, 1));
    pending p = {.hub = hub, .domain = XS_BUS_DOMAIN_CONTACTS, .req = "slow", .timeout_ms = 5000};
    pending_start(&p);
    assert_true(wait_count(&a.held, 1));
    replica_start(&b, XS_BUS_DOMAIN_CONTACTS, &o, "B", 1);
    assert_true(wait_peers(hub, XS_BUS_DOMAIN_CONTACTS, 2));
    pthread_join(p.th, NULL);
    assert_int_equal(p.result, XS_OK);
    assert_string_equal(p.reply, "B:slow");
    assert_true(p.elapsed_ms >= 200);
    replica_stop(&a);
    replica_stop(&b);
    xs_bus_hub_destroy(hub);
}

static void test_timeouts(void **state)
{
    xs_bus_domain from = XS_BUS_DOMAIN_NONE;
    (void)state;
    char base[64];
    tcp_base(base, sizeof(base));
    xs_bus_opts o = make_opts(base, MAX_MSG, 0, NULL);
    xs_bus_hub *hub;
    assert_int_equal(xs_bus_hub_create(&hub, &o), XS_OK);

    /* No replica at all. */
    int64_t t0 = xs_clock_mono_ms();
    assert_int_equal(request_str(hub, XS_BUS_DOMAIN_AUTH, "x", 300, NULL, 0), XS_ETIMEDOUT);
    int64_t took = xs_clock_mono_ms() - t0;
    assert_true(took >= 250 && took < 2000);
    assert_int_equal(request_str(hub, XS_BUS_DOMAIN_AUTH, "x", 0, NULL, 0), XS_ETIMEDOUT);

    /* A replica that never answers. */
    replica a = {0};
    a.hold = true;
    replica_start(&a, XS_BUS_DOMAIN_AUTH, &o, "A", 1);
    assert_true(wait_peers(hub, XS_BUS_DOMAIN_AUTH, 1));
    t0 = xs_clock_mono_ms();
    assert_int_equal(request_str(hub, XS_BUS_DOMAIN_AUTH, "x", 300, NULL, 0), XS_ETIMEDOUT);
    took = xs_clock_mono_ms() - t0;
    assert_true(took >= 250 && took < 2000);
    assert_int_equal(atomic_load(&a.held), 1);
    replica_stop(&a);

    /* Nothing published. */
    void *buf = NULL;
    size_t len = 0;
    t0 = xs_clock_mono_ms();
    assert_int_equal(xs_bus_next_event(hub, 200, &buf, &len, &from), XS_ETIMEDOUT);
    assert_true(xs_clock_mono_ms() - t0 >= 150);
    assert_null(buf);
    xs_bus_hub_destroy(hub);
}

/* Sizes: local refusal both ways, and exactly max_msg passes over tcp. */
static void test_oversize_refused(void **state)
{
    (void)state;
    char base[64];
    tcp_base(base, sizeof(base));
    enum { LIMIT = 4096 };
    xs_bus_opts o = make_opts(base, LIMIT, 0, NULL);
    xs_bus_hub *hub;
    assert_int_equal(xs_bus_hub_create(&hub, &o), XS_OK);
    xs_bus_node *node;
    assert_int_equal(xs_bus_node_create(&node, XS_BUS_DOMAIN_INVOICES, &o), XS_OK);
    assert_true(wait_peers(hub, XS_BUS_DOMAIN_INVOICES, 1));
    xs_bus_worker *w;
    assert_int_equal(xs_bus_worker_create(node, &w), XS_OK);

    char *big = malloc(LIMIT + 1);
    memset(big, 'z', LIMIT + 1);
    void *rep = NULL;
    size_t len = 0;
    assert_int_equal(xs_bus_request(hub, XS_BUS_DOMAIN_INVOICES, big, LIMIT + 1, 1000, &rep, &len),
                     XS_ETOOBIG);
    assert_int_equal(xs_bus_publish(node, big, LIMIT + 1), XS_ETOOBIG);

    /* Exactly the limit goes through, both ways, despite the protocol header. */
    pending p = {.hub = hub, .domain = XS_BUS_DOMAIN_INVOICES, .timeout_ms = 5000};
    big[LIMIT] = '\0';
    p.req = big;
    pending_start(&p);
    void *in = NULL;
    assert_int_equal(xs_bus_worker_recv(w, 5000, &in, &len), XS_OK);
    assert_int_equal(len, LIMIT);
    assert_memory_equal(in, big, LIMIT);
    free(in);
    assert_int_equal(xs_bus_worker_reply(w, big, LIMIT + 1), XS_ETOOBIG);
    assert_int_equal(xs_bus_worker_reply(w, "ok", 2), XS_OK);
    pthread_join(p.th, NULL);
    assert_int_equal(p.result, XS_OK);
    assert_string_equal(p.reply, "ok");

    rep = NULL;
    pending q = {
        .hub = hub, .domain = XS_BUS_DOMAIN_INVOICES, .req = "give me max", .timeout_ms = 5000};
    pending_start(&q);
    assert_int_equal(xs_bus_worker_recv(w, 5000, &in, &len), XS_OK);
    free(in);
    assert_int_equal(xs_bus_worker_reply(w, big, LIMIT), XS_OK);
    pthread_join(q.th, NULL);
    assert_int_equal(q.result, XS_OK);

    free(big);
    xs_bus_worker_destroy(w);
    xs_bus_node_destroy(node);
    xs_bus_hub_destroy(hub);
}

/* A peer with a larger limit cannot push a message past the receiver's limit. */
static void oversize_received(const char *base, xs_err want_reply)
{
    xs_bus_domain from = XS_BUS_DOMAIN_NONE;
    xs_bus_opts ho = make_opts(base, 1024, 0, NULL);
    xs_bus_opts no = make_opts(base, MAX_MSG, 0, NULL);
    xs_bus_hub *hub;
    assert_int_equal(xs_bus_hub_create(&hub, &ho), XS_OK);
    xs_bus_node *node;
    assert_int_equal(xs_bus_node_create(&node, XS_BUS_DOMAIN_CONTACTS, &no), XS_OK);
    assert_true(wait_peers(hub, XS_BUS_DOMAIN_CONTACTS, 1));
    xs_bus_worker *w;
    assert_int_equal(xs_bus_worker_create(node, &w), XS_OK);
    char *big = calloc(1, 4096);

    pending p = {.hub = hub, .domain = XS_BUS_DOMAIN_CONTACTS, .req = "q", .timeout_ms = 700};
    pending_start(&p);
    void *in = NULL;
    size_t len;
    assert_int_equal(xs_bus_worker_recv(w, 5000, &in, &len), XS_OK);
    free(in);
    assert_int_equal(xs_bus_worker_reply(w, big, 4096), XS_OK); /* within the node's limit */
    pthread_join(p.th, NULL);
    assert_int_equal(p.result, want_reply);

    /* Events: the big one never arrives (on tcp it also costs the connection, which the
     * node redials); later small ones do. */
    void *ev = NULL;
    int64_t end = xs_clock_mono_ms() + 5000;
    xs_err e = XS_ETIMEDOUT;
    while (e != XS_OK && xs_clock_mono_ms() < end) { /* until the publisher is connected */
        assert_int_equal(xs_bus_publish(node, "ready", 5), XS_OK);
        e = xs_bus_next_event(hub, 100, &ev, &len, &from);
    }
    assert_int_equal(e, XS_OK);
    free(ev);
    while (xs_bus_next_event(hub, 100, &ev, &len, &from) == XS_OK) {
        free(ev);
    }
    assert_int_equal(xs_bus_publish(node, big, 4096), XS_OK);
    end = xs_clock_mono_ms() + 5000;
    e = XS_ETIMEDOUT;
    while (e != XS_OK && xs_clock_mono_ms() < end) {
        assert_int_equal(xs_bus_publish(node, "small", 5), XS_OK);
        e = xs_bus_next_event(hub, 100, &ev, &len, &from);
    }
    assert_int_equal(e, XS_OK);
    assert_int_equal(len, 5);
    assert_memory_equal(ev, "small", 5);
    free(ev);

    free(big);
    xs_bus_worker_destroy(w);
    xs_bus_node_destroy(node);
    xs_bus_hub_destroy(hub);
}

static void test_oversize_received(void **state)
{
    (void)state;
    char base[64];
    /* tcp: nng refuses the frame and drops the connection; the caller times out. */
    tcp_base(base, sizeof(base));
    oversize_received(base, XS_ETIMEDOUT);
    /* inproc does not check frame sizes; bus.c refuses the reply itself. */
    inproc_base(base, sizeof(base));
    oversize_received(base, XS_ETOOBIG);
}

static void test_events(void **state)
{
    xs_bus_domain from = XS_BUS_DOMAIN_NONE;
    (void)state;
    char base[64];
    tcp_base(base, sizeof(base));
    xs_bus_opts o = make_opts(base, MAX_MSG, 0, NULL);
    xs_bus_hub *hub;
    assert_int_equal(xs_bus_hub_create(&hub, &o), XS_OK);
    xs_bus_node *n1, *n2;
    assert_int_equal(xs_bus_node_create(&n1, XS_BUS_DOMAIN_CONTACTS, &o), XS_OK);
    assert_int_equal(xs_bus_node_create(&n2, XS_BUS_DOMAIN_PAYMENTS, &o), XS_OK);
    const xs_bus_domain domains[2] = {XS_BUS_DOMAIN_CONTACTS, XS_BUS_DOMAIN_PAYMENTS};

    /* Wait until both publishers are connected: an event is dropped while away. */
    xs_bus_node *nodes[2] = {n1, n2};
    for (int i = 0; i < 2; i++) {
        void *buf = NULL;
        size_t len = 0;
        int64_t end = xs_clock_mono_ms() + 5000;
        xs_err e = XS_ETIMEDOUT;
        char want[16];
        snprintf(want, sizeof(want), "hello%d", i);
        while (xs_clock_mono_ms() < end) {
            assert_int_equal(xs_bus_publish(nodes[i], want, strlen(want)), XS_OK);
            e = xs_bus_next_event(hub, 50, &buf, &len, &from);
            if (e == XS_OK) {
                break;
            }
        }
        assert_int_equal(e, XS_OK);
        assert_int_equal(len, strlen(want));
        assert_memory_equal(buf, want, len);
        assert_int_equal(from, domains[i]); /* each domain publishes on its own socket */
        free(buf);
        /* Drain duplicates of the greeting. */
        while (xs_bus_next_event(hub, 100, &buf, &len, &from) == XS_OK) {
            free(buf);
        }
    }

    /* Each publisher's events arrive, in order. */
    enum { N = 50 };
    for (int i = 0; i < N; i++) {
        char ev[32];
        int n = snprintf(ev, sizeof(ev), "%d:%d", i % 2, i);
        assert_int_equal(xs_bus_publish(nodes[i % 2], ev, (size_t)n), XS_OK);
    }
    int next[2] = {0, 1};
    for (int got = 0; got < N; got++) {
        void *buf = NULL;
        size_t len = 0;
        assert_int_equal(xs_bus_next_event(hub, 5000, &buf, &len, &from), XS_OK);
        int who = -1, seq = -1;
        assert_int_equal(sscanf(buf, "%d:%d", &who, &seq), 2);
        assert_true(who == 0 || who == 1);
        assert_int_equal(from, domains[who]);
        assert_int_equal(seq, next[who]);
        next[who] += 2;
        free(buf);
    }
    assert_int_equal(xs_bus_publish(n1, NULL, 0), XS_OK);
    void *buf = NULL;
    size_t len = 7;
    assert_int_equal(xs_bus_next_event(hub, 5000, &buf, &len, &from), XS_OK);
    assert_int_equal(len, 0);
    free(buf);
    assert_int_equal(xs_bus_publish(n1, NULL, 1), XS_EINVAL);
    assert_int_equal(xs_bus_next_event(hub, 10, NULL, &len, &from), XS_EINVAL);

    xs_bus_node_destroy(n1);
    xs_bus_node_destroy(n2);
    xs_bus_hub_destroy(hub);
}

static void test_peer_counts(void **state)
{
    (void)state;
    char base[64];
    tcp_base(base, sizeof(base));
    logfile lf;
    logfile_open(&lf);
    xs_bus_opts o = make_opts(base, MAX_MSG, 0, lf.log);
    xs_bus_hub *hub;
    assert_int_equal(xs_bus_hub_create(&hub, &o), XS_OK);
    for (int d = 0; d < XS_BUS_DOMAIN_COUNT; d++) {
        assert_int_equal(xs_bus_peers(hub, (xs_bus_domain)d), 0);
    }
    xs_bus_node *c1, *c2, *p1;
    assert_int_equal(xs_bus_node_create(&c1, XS_BUS_DOMAIN_CONTACTS, &o), XS_OK);
    assert_true(wait_peers(hub, XS_BUS_DOMAIN_CONTACTS, 1));
    assert_int_equal(xs_bus_node_create(&c2, XS_BUS_DOMAIN_CONTACTS, &o), XS_OK);
    assert_int_equal(xs_bus_node_create(&p1, XS_BUS_DOMAIN_PAYMENTS, &o), XS_OK);
    assert_true(wait_peers(hub, XS_BUS_DOMAIN_CONTACTS, 2));
    assert_true(wait_peers(hub, XS_BUS_DOMAIN_PAYMENTS, 1));
    assert_int_equal(xs_bus_peers(hub, XS_BUS_DOMAIN_AUTH), 0);
    assert_int_equal(xs_bus_peers(hub, XS_BUS_DOMAIN_INVOICES), 0);

    /* A peer speaking the wrong protocol is refused and never counted, nor uncounted. */
    char url[XS_BUS_URL_MAX];
    assert_int_equal(xs_bus_url(base, XS_BUS_DOMAIN_CONTACTS, url), XS_OK);
    nng_socket wrong;
    assert_int_equal(nng_pub0_open(&wrong), 0);
    assert_int_equal(nng_dial(wrong, url, NULL, NNG_FLAG_NONBLOCK), 0);
    xs_clock_sleep_ms(300);
    assert_int_equal(xs_bus_peers(hub, XS_BUS_DOMAIN_CONTACTS), 2);
    nng_close(wrong);
    xs_clock_sleep_ms(100);
    assert_int_equal(xs_bus_peers(hub, XS_BUS_DOMAIN_CONTACTS), 2);

    xs_bus_node_destroy(c1);
    assert_true(wait_peers(hub, XS_BUS_DOMAIN_CONTACTS, 1));
    xs_bus_node_destroy(c2);
    assert_true(wait_peers(hub, XS_BUS_DOMAIN_CONTACTS, 0));
    assert_int_equal(xs_bus_peers(hub, XS_BUS_DOMAIN_PAYMENTS), 1);
    xs_bus_node_destroy(p1);
    assert_true(wait_peers(hub, XS_BUS_DOMAIN_PAYMENTS, 0));
    xs_bus_hub_destroy(hub);
    assert_true(logfile_has(&lf, "\"event\":\"bus.listen\""));
    assert_true(logfile_has(&lf, "\"event\":\"bus.peer_up\""));
    assert_true(logfile_has(&lf, "\"event\":\"bus.peer_down\""));
    assert_true(logfile_has(&lf, "\"event\":\"bus.dial\""));
    logfile_close(&lf);
}

/* A node started before the hub connects once it appears, and again after a hub restart. */
static void test_node_before_hub(void **state)
{
    (void)state;
    char base[64];
    tcp_base(base, sizeof(base));
    xs_bus_opts o = make_opts(base, MAX_MSG, 0, NULL);
    replica r = {0};
    replica_start(&r, XS_BUS_DOMAIN_INVOICES, &o, "r", 2);
    xs_clock_sleep_ms(300); /* several failed dials */

    for (int round = 0; round < 2; round++) {
        xs_bus_hub *hub;
        assert_int_equal(xs_bus_hub_create(&hub, &o), XS_OK);
        int64_t t0 = xs_clock_mono_ms();
        char got[64];
        assert_int_equal(request_str(hub, XS_BUS_DOMAIN_INVOICES, "up", 5000, got, sizeof(got)),
                         XS_OK);
        assert_string_equal(got, "r:up");
        assert_true(xs_clock_mono_ms() - t0 < 3000);
        assert_true(wait_peers(hub, XS_BUS_DOMAIN_INVOICES, 1));
        xs_bus_hub_destroy(hub);
        xs_clock_sleep_ms(200);
    }
    replica_stop(&r);
}

/* A node away from the hub longer than the stale time gets fresh dialers (and, with the hub
 * back, is served again); a connected node is left alone. */
static void test_node_check_redials(void **state)
{
    (void)state;
    char base[64];
    tcp_base(base, sizeof(base));
    xs_bus_opts o = make_opts(base, MAX_MSG, 0, NULL);
    xs_bus_hub *hub;
    assert_int_equal(xs_bus_hub_create(&hub, &o), XS_OK);
    replica r = {0};
    replica_start(&r, XS_BUS_DOMAIN_INVOICES, &o, "r", 1);
    assert_true(wait_peers(hub, XS_BUS_DOMAIN_INVOICES, 1));
    xs_clock_sleep_ms(300);
    assert_int_equal(xs_bus_node_check(r.node, 200), 0); /* connected: nothing to do */
    assert_int_equal(xs_bus_node_check(NULL, 200), 0);
    xs_bus_hub_destroy(hub);
    xs_clock_sleep_ms(100);
    assert_int_equal(xs_bus_node_check(r.node, 200), 0); /* not stale yet */
    xs_clock_sleep_ms(250);
    assert_int_equal(xs_bus_node_check(r.node, 200), 2); /* both sockets, REP and PUB */
    assert_int_equal(xs_bus_node_check(r.node, 200), 0); /* the new dialers start the clock */
    assert_int_equal(xs_bus_hub_create(&hub, &o), XS_OK);
    char got[64];
    assert_int_equal(request_str(hub, XS_BUS_DOMAIN_INVOICES, "back", 5000, got, sizeof(got)),
                     XS_OK);
    assert_string_equal(got, "r:back");
    xs_bus_hub_destroy(hub);
    replica_stop(&r);
}

/* A node given a list of hubs dials every one: each hub's requests are answered to it, each
 * event reaches every hub, a hub that goes away leaves the others served (and is redialled
 * alone); a list is refused to a hub, and a list mixing TLS and plain is refused. */
static void test_node_dials_every_hub(void **state)
{
    (void)state;
    char a[64], b[64], list[160];
    tcp_base(a, sizeof(a));
    do {
        tcp_base(b, sizeof(b));
    } while (abs(atoi(strrchr(a, ':') + 1) - atoi(strrchr(b, ':') + 1)) < XS_BUS_SOCKETS);
    snprintf(list, sizeof(list), "%s,%s", a, b);
    xs_bus_opts oa = make_opts(a, MAX_MSG, 0, NULL), ob = make_opts(b, MAX_MSG, 0, NULL);
    xs_bus_opts ol = make_opts(list, MAX_MSG, 0, NULL);
    xs_bus_hub *ha, *hb, *hl = NULL;
    assert_int_equal(xs_bus_hub_create(&hl, &ol), XS_EINVAL); /* a hub listens on one base */
    assert_int_equal(xs_bus_hub_create(&ha, &oa), XS_OK);
    assert_int_equal(xs_bus_hub_create(&hb, &ob), XS_OK);
    replica r = {0};
    replica_start(&r, XS_BUS_DOMAIN_CONTACTS, &ol, "r", 2);
    assert_true(wait_peers(ha, XS_BUS_DOMAIN_CONTACTS, 1));
    assert_true(wait_peers(hb, XS_BUS_DOMAIN_CONTACTS, 1));
    char got[64];
    assert_int_equal(request_str(ha, XS_BUS_DOMAIN_CONTACTS, "to-a", 5000, got, sizeof(got)),
                     XS_OK);
    assert_string_equal(got, "r:to-a");
    assert_int_equal(request_str(hb, XS_BUS_DOMAIN_CONTACTS, "to-b", 5000, got, sizeof(got)),
                     XS_OK);
    assert_string_equal(got, "r:to-b");
    /* One event, heard by both hubs. */
    xs_bus_hub *hubs[2] = {ha, hb};
    for (int i = 0; i < 2; i++) {
        xs_bus_domain from = XS_BUS_DOMAIN_NONE;
        void *buf = NULL;
        size_t len = 0;
        xs_err e = XS_ETIMEDOUT;
        for (int64_t end = xs_clock_mono_ms() + 5000; e != XS_OK && xs_clock_mono_ms() < end;) {
            assert_int_equal(xs_bus_publish(r.node, "ev", 2), XS_OK);
            e = xs_bus_next_event(hubs[i], 50, &buf, &len, &from);
        }
        assert_int_equal(e, XS_OK);
        assert_memory_equal(buf, "ev", 2);
        assert_int_equal(from, XS_BUS_DOMAIN_CONTACTS);
        free(buf);
    }
    /* Hub a goes: b is still served; only a's dialers (REP and PUB) are started again. */
    xs_bus_hub_destroy(ha);
    xs_clock_sleep_ms(350);
    assert_int_equal(xs_bus_node_check(r.node, 200), 2);
    assert_int_equal(request_str(hb, XS_BUS_DOMAIN_CONTACTS, "still", 5000, got, sizeof(got)),
                     XS_OK);
    assert_string_equal(got, "r:still");
    assert_int_equal(xs_bus_hub_create(&ha, &oa), XS_OK);
    assert_int_equal(request_str(ha, XS_BUS_DOMAIN_CONTACTS, "back", 5000, got, sizeof(got)),
                     XS_OK);
    assert_string_equal(got, "r:back");
    replica_stop(&r);
    xs_bus_hub_destroy(ha);
    xs_bus_hub_destroy(hb);

    xs_bus_node *n = NULL;
    char mixed[200], empty[160];
    snprintf(mixed, sizeof(mixed), "%s,tls+%s", a, b);
    snprintf(empty, sizeof(empty), "%s,", a);
    xs_bus_opts om = make_opts(mixed, MAX_MSG, 0, NULL), oe = make_opts(empty, MAX_MSG, 0, NULL);
    om.tls_dir = "/nonexistent";
    assert_int_equal(xs_bus_node_create(&n, XS_BUS_DOMAIN_CONTACTS, &om), XS_EINVAL);
    assert_int_equal(xs_bus_node_create(&n, XS_BUS_DOMAIN_CONTACTS, &oe), XS_EINVAL);
    assert_null(n);
}

/* Destroying the hub wakes callers waiting for replies and events with XS_ECLOSED. */
static void test_hub_destroy_wakes_callers(void **state)
{
    (void)state;
    char base[64];
    tcp_base(base, sizeof(base));
    xs_bus_opts o = make_opts(base, MAX_MSG, 0, NULL);
    xs_bus_hub *hub;
    assert_int_equal(xs_bus_hub_create(&hub, &o), XS_OK);
    replica a = {0};
    a.hold = true;
    replica_start(&a, XS_BUS_DOMAIN_AUTH, &o, "A", 1);
    assert_true(wait_peers(hub, XS_BUS_DOMAIN_AUTH, 1));

    /* One caller waits for a reply that never comes, several for a replica that is not
     * there. */
    enum { NWAIT = 6 };
    pending p[NWAIT];
    for (int i = 0; i < NWAIT; i++) {
        p[i] = (pending){.hub = hub, .req = "wait", .timeout_ms = 20000};
        p[i].domain = i == 0 ? XS_BUS_DOMAIN_AUTH : XS_BUS_DOMAIN_CONTACTS;
        pending_start(&p[i]);
    }
    assert_true(wait_count(&a.held, 1));
    xs_clock_sleep_ms(200);
    int64_t t0 = xs_clock_mono_ms();
    xs_bus_hub_destroy(hub);
    assert_true(xs_clock_mono_ms() - t0 < 5000);
    for (int i = 0; i < NWAIT; i++) {
        pthread_join(p[i].th, NULL);
        assert_int_equal(p[i].result, XS_ECLOSED);
        assert_true(p[i].elapsed_ms < 10000);
    }
    replica_stop(&a);
}

typedef struct event_waiter {
    xs_bus_hub *hub;
    xs_err result;
} event_waiter;

static void *event_waiter_main(void *arg)
{
    xs_bus_domain from = XS_BUS_DOMAIN_NONE;
    event_waiter *ew = arg;
    void *buf = NULL;
    size_t len = 0;
    ew->result = xs_bus_next_event(ew->hub, 20000, &buf, &len, &from);
    free(buf);
    return NULL;
}

static void test_hub_destroy_wakes_event_waiter(void **state)
{
    (void)state;
    char base[64];
    inproc_base(base, sizeof(base));
    xs_bus_opts o = make_opts(base, MAX_MSG, 0, NULL);
    xs_bus_hub *hub;
    assert_int_equal(xs_bus_hub_create(&hub, &o), XS_OK);
    event_waiter ew = {hub, XS_OK};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, event_waiter_main, &ew), 0);
    xs_clock_sleep_ms(100);
    xs_bus_hub_destroy(hub);
    pthread_join(th, NULL);
    assert_int_equal(ew.result, XS_ECLOSED);
}

/* Workers: timeouts, closing, and misuse. */
static void *blocked_recv_main(void *arg)
{
    xs_bus_worker *w = arg;
    void *buf = NULL;
    size_t len;
    xs_err e = xs_bus_worker_recv(w, -1, &buf, &len);
    free(buf);
    return (void *)(intptr_t)e;
}

static void test_worker_lifecycle(void **state)
{
    (void)state;
    char base[64];
    inproc_base(base, sizeof(base));
    xs_bus_opts o = make_opts(base, MAX_MSG, 0, NULL);

    /* A node needs no hub to exist, and always belongs to a domain. */
    xs_bus_node *none = NULL;
    assert_int_equal(xs_bus_node_create(&none, XS_BUS_DOMAIN_NONE, &o), XS_EINVAL);
    assert_null(none);
    xs_bus_worker *w = NULL;

    xs_bus_node *node;
    assert_int_equal(xs_bus_node_create(&node, XS_BUS_DOMAIN_AUTH, &o), XS_OK);
    assert_int_equal(xs_bus_worker_create(node, &w), XS_OK);
    void *buf = NULL;
    size_t len;
    int64_t t0 = xs_clock_mono_ms();
    assert_int_equal(xs_bus_worker_recv(w, 100, &buf, &len), XS_ETIMEDOUT);
    assert_true(xs_clock_mono_ms() - t0 >= 80);
    assert_null(buf);
    assert_int_equal(xs_bus_worker_reply(w, "x", 1), XS_ESTATE); /* nothing received */
    assert_int_equal(xs_bus_worker_recv(w, 10, NULL, &len), XS_EINVAL);
    assert_int_equal(xs_bus_worker_reply(w, NULL, 1), XS_EINVAL);

    /* Destroying the node wakes a worker blocked without a deadline; the worker is destroyed
     * afterwards. */
    xs_bus_worker *w2;
    assert_int_equal(xs_bus_worker_create(node, &w2), XS_OK);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, blocked_recv_main, w2), 0);
    xs_clock_sleep_ms(100);
    xs_bus_worker_destroy(w);
    xs_bus_node_destroy(node);
    void *res;
    pthread_join(th, &res);
    assert_int_equal((xs_err)(intptr_t)res, XS_ECLOSED);
    assert_int_equal(xs_bus_worker_recv(w2, 10, &buf, &len), XS_ECLOSED);
    xs_bus_worker_destroy(w2);
}

static void test_listen_and_dial_failures(void **state)
{
    (void)state;
    char base[64];
    tcp_base(base, sizeof(base));
    logfile lf;
    logfile_open(&lf);
    xs_bus_opts o = make_opts(base, MAX_MSG, 0, lf.log);
    xs_bus_hub *hub, *again = NULL;
    assert_int_equal(xs_bus_hub_create(&hub, &o), XS_OK);
    assert_int_equal(xs_bus_hub_create(&again, &o), XS_EBUS);
    assert_null(again);
    assert_true(logfile_has(&lf, "\"event\":\"bus.listen_failed\""));
    xs_bus_hub_destroy(hub);

    /* The events port alone taken: the hub fails at its last socket and cleans up. */
    char url[XS_BUS_URL_MAX];
    assert_int_equal(xs_bus_url(base, XS_BUS_EVENTS_INDEX, url), XS_OK);
    nng_socket squat;
    assert_int_equal(nng_rep0_open(&squat), 0);
    assert_int_equal(nng_listen(squat, url, NULL, 0), 0);
    assert_int_equal(xs_bus_hub_create(&hub, &o), XS_EBUS);
    nng_close(squat);

    /* A dial nng refuses at once (an ipc path longer than a socket address holds). */
    char longbase[300];
    memset(longbase, 'p', sizeof(longbase) - 1);
    longbase[sizeof(longbase) - 1] = '\0';
    memcpy(longbase, "ipc:///tmp/", 11);
    o.url = longbase;
    xs_bus_node *node = NULL;
    assert_int_equal(xs_bus_node_create(&node, XS_BUS_DOMAIN_AUTH, &o), XS_EBUS);
    assert_null(node);
    assert_true(logfile_has(&lf, "\"event\":\"bus.dial_failed\""));

    /* An unreachable hub is not an error: the node keeps dialling. */
    o.url = "tcp://127.0.0.1:1";
    assert_int_equal(xs_bus_node_create(&node, XS_BUS_DOMAIN_AUTH, &o), XS_OK);
    xs_bus_node_destroy(node);
    logfile_close(&lf);
}

/* After close every call fails at once, also one blocked in progress; destroy frees. */
static void test_close_then_destroy(void **state)
{
    xs_bus_domain from = XS_BUS_DOMAIN_NONE;
    (void)state;
    xs_bus_opts o = make_opts("inproc://close_then_destroy", MAX_MSG, 0, NULL);
    xs_bus_hub *hub = NULL;
    assert_int_equal(xs_bus_hub_create(&hub, &o), XS_OK);
    xs_bus_hub_close(hub);
    xs_bus_hub_close(hub); /* idempotent */
    void *rep = NULL;
    size_t len = 0;
    int64_t t0 = xs_clock_mono_ms();
    assert_int_equal(xs_bus_request(hub, XS_BUS_DOMAIN_CONTACTS, "x", 1, 10000, &rep, &len),
                     XS_ECLOSED);
    assert_int_equal(xs_bus_next_event(hub, 10000, &rep, &len, &from), XS_ECLOSED);
    assert_true(xs_clock_mono_ms() - t0 < 1000);
    xs_bus_hub_destroy(hub);
}

/* ---------------------------------------------------------------------------------------- */
/* who may join: TLS with one CA per role, and the rules for tcp:// and ipc:// */

/* Two deployments' certificates (scripts/xs-certs), made once for the group. */
static char certs_root[64];

static void sh(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    if (system(cmd) != 0) {
        fail_msg("command failed: %s", cmd);
    }
}

static int certs_setup(void **state)
{
    (void)state;
    snprintf(certs_root, sizeof(certs_root), "/tmp/bus_certs_XXXXXX");
    if (mkdtemp(certs_root) == NULL) {
        return -1;
    }
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "sh '%s' init %s/a >/dev/null && sh '%s' init %s/b >/dev/null",
             XS_CERTS_SCRIPT, certs_root, XS_CERTS_SCRIPT, certs_root);
    return system(cmd) == 0 ? 0 : -1;
}

static int certs_teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", certs_root);
    return system(cmd) == 0 ? 0 : -1;
}

/* cert_dir writes the folder of role in deployment ("a" or "b") into buf. */
static void cert_dir(char *buf, size_t size, const char *deployment, const char *role)
{
    snprintf(buf, size, "%s/%s/%s", certs_root, deployment, role);
}

/* mixed_dir makes a folder (written into buf) holding the certificate and key of one folder
 * and the trust files of another: a stranger who knows whom to trust. */
static void mixed_dir(char *buf, size_t size, const char *cert_from, const char *trust_from)
{
    static int n;
    snprintf(buf, size, "%s/mixed%d", certs_root, ++n);
    sh("mkdir -m 700 %s && cp %s/cert.pem %s/key.pem %s/ && cp %s/trust-*.pem %s/", buf, cert_from,
       cert_from, buf, trust_from, buf);
}

static xs_bus_opts tls_opts(const char *url, const char *dir, xs_log *log)
{
    xs_bus_opts o = {.url = url, .tls_dir = dir, .max_msg = MAX_MSG, .log = log};
    return o;
}

/* drain_events counts the events that arrive within ms. */
static int drain_events(xs_bus_hub *hub, int64_t ms)
{
    int n = 0;
    int64_t end = xs_clock_mono_ms() + ms;
    while (xs_clock_mono_ms() < end) {
        void *buf = NULL;
        size_t len = 0;
        xs_bus_domain from = XS_BUS_DOMAIN_NONE;
        if (xs_bus_next_event(hub, 20, &buf, &len, &from) == XS_OK) {
            n++;
            free(buf);
        }
    }
    return n;
}

/* publish_until_heard publishes ev from node until the hub hears it (5 s at most) and returns
 * the domain it came from. */
static xs_bus_domain publish_until_heard(xs_bus_hub *hub, xs_bus_node *node, const char *ev)
{
    int64_t end = xs_clock_mono_ms() + 5000;
    while (xs_clock_mono_ms() < end) {
        assert_int_equal(xs_bus_publish(node, ev, strlen(ev)), XS_OK);
        void *buf = NULL;
        size_t len = 0;
        xs_bus_domain from = XS_BUS_DOMAIN_NONE;
        if (xs_bus_next_event(hub, 50, &buf, &len, &from) == XS_OK) {
            bool same = len == strlen(ev) && memcmp(buf, ev, len) == 0;
            free(buf);
            if (same) {
                drain_events(hub, 100);
                return from;
            }
        }
    }
    fail_msg("event %s never arrived", ev);
    return XS_BUS_DOMAIN_NONE;
}

/* Peers of the deployment with the right certificates work as over any transport. */
static void test_tls_round_trip(void **state)
{
    (void)state;
    char base[64], hub_dir[128], inv_dir[128], con_dir[128];
    scheme_base("tls+tcp", base, sizeof(base));
    cert_dir(hub_dir, sizeof(hub_dir), "a", "orchestrator");
    cert_dir(inv_dir, sizeof(inv_dir), "a", "invoices");
    cert_dir(con_dir, sizeof(con_dir), "a", "contacts");
    xs_bus_opts ho = tls_opts(base, hub_dir, NULL);
    xs_bus_opts io = tls_opts(base, inv_dir, NULL);
    round_trip_opts(&ho, &io);

    /* Events carry the domain of the certificate they were published under. */
    xs_bus_hub *hub;
    assert_int_equal(xs_bus_hub_create(&hub, &ho), XS_OK);
    replica r = {0};
    replica_start(&r, XS_BUS_DOMAIN_INVOICES, &io, "inv", 1);
    xs_bus_opts co = tls_opts(base, con_dir, NULL);
    xs_bus_node *contacts;
    assert_int_equal(xs_bus_node_create(&contacts, XS_BUS_DOMAIN_CONTACTS, &co), XS_OK);
    assert_int_equal(publish_until_heard(hub, contacts, "from-contacts"), XS_BUS_DOMAIN_CONTACTS);
    assert_int_equal(publish_until_heard(hub, r.node, "from-invoices"), XS_BUS_DOMAIN_INVOICES);
    xs_bus_node_destroy(contacts);
    replica_stop(&r);
    xs_bus_hub_destroy(hub);
}

/* A raw nng dialer with no certificate at all (but TLS), as an intruder would write it. */
typedef struct intruder {
    nng_socket rep, pub;
    nng_tls_config *tls;
} intruder;

static void intruder_dial(intruder *in, const char *base, xs_bus_domain d)
{
    char url[XS_BUS_URL_MAX];
    nng_dialer dr, dp;
    assert_int_equal(nng_tls_config_alloc(&in->tls, NNG_TLS_MODE_CLIENT), 0);
    assert_int_equal(nng_tls_config_auth_mode(in->tls, NNG_TLS_AUTH_MODE_NONE), 0);
    assert_int_equal(nng_rep0_open(&in->rep), 0);
    assert_int_equal(xs_bus_url(base, (int)d, url), XS_OK);
    assert_int_equal(nng_dialer_create(&dr, in->rep, url), 0);
    assert_int_equal(nng_dialer_set_ptr(dr, NNG_OPT_TLS_CONFIG, in->tls), 0);
    assert_int_equal(nng_dialer_start(dr, NNG_FLAG_NONBLOCK), 0);
    assert_int_equal(nng_pub0_open(&in->pub), 0);
    assert_int_equal(xs_bus_url(base, XS_BUS_EVENTS_INDEX + (int)d, url), XS_OK);
    assert_int_equal(nng_dialer_create(&dp, in->pub, url), 0);
    assert_int_equal(nng_dialer_set_ptr(dp, NNG_OPT_TLS_CONFIG, in->tls), 0);
    assert_int_equal(nng_dialer_start(dp, NNG_FLAG_NONBLOCK), 0);
}

/* intruder_requests counts the requests the intruder received within ms (it never answers),
 * publishing a forged heartbeat all along. */
static int intruder_requests(intruder *in, int64_t ms)
{
    int n = 0;
    int64_t end = xs_clock_mono_ms() + ms;
    while (xs_clock_mono_ms() < end) {
        const char forged[] = "forged heartbeat";
        nng_send(in->pub, (void *)forged, sizeof(forged), NNG_FLAG_NONBLOCK);
        nng_msg *m = NULL;
        nng_socket_set_ms(in->rep, NNG_OPT_RECVTIMEO, 20);
        if (nng_recvmsg(in->rep, &m, 0) == 0) {
            n++;
            nng_msg_free(m);
        }
    }
    return n;
}

static void intruder_close(intruder *in)
{
    nng_close(in->rep);
    nng_close(in->pub);
    nng_tls_config_free(in->tls);
}

/* Nobody without a certificate of the contacts role gets a connection on the contacts
 * sockets: no certificate at all, one from another deployment's CA, a valid certificate of
 * another role. None of them receives a request or gets an event through; then the real
 * contacts replica connects and gets the work. */
static void test_tls_refuses_strangers(void **state)
{
    (void)state;
    char base[64], hub_dir[128], a_orch[128], b_contacts[128], a_invoices[128], a_contacts[128];
    char other_ca[160];
    scheme_base("tls+tcp", base, sizeof(base));
    cert_dir(hub_dir, sizeof(hub_dir), "a", "orchestrator");
    cert_dir(a_orch, sizeof(a_orch), "a", "contacts"); /* trust files of a's contacts */
    cert_dir(b_contacts, sizeof(b_contacts), "b", "contacts");
    cert_dir(a_invoices, sizeof(a_invoices), "a", "invoices");
    cert_dir(a_contacts, sizeof(a_contacts), "a", "contacts");
    mixed_dir(other_ca, sizeof(other_ca), b_contacts, a_orch);
    logfile lf;
    logfile_open(&lf);
    xs_bus_opts ho = tls_opts(base, hub_dir, lf.log);
    xs_bus_hub *hub;
    assert_int_equal(xs_bus_hub_create(&hub, &ho), XS_OK);

    intruder none;
    intruder_dial(&none, base, XS_BUS_DOMAIN_CONTACTS);
    xs_bus_opts oo = tls_opts(base, other_ca, NULL);
    replica other = {0};
    replica_start(&other, XS_BUS_DOMAIN_CONTACTS, &oo, "other-ca", 1);
    xs_bus_opts ro = tls_opts(base, a_invoices, NULL);
    replica role = {0};
    replica_start(&role, XS_BUS_DOMAIN_CONTACTS, &ro, "other-role", 1);

    /* A second of dialling and publishing: no pipe, no request, no event. */
    int64_t end = xs_clock_mono_ms() + 1500;
    int events = 0, taken = 0;
    while (xs_clock_mono_ms() < end) {
        xs_bus_publish(other.node, "forged", 6);
        xs_bus_publish(role.node, "forged", 6);
        taken += intruder_requests(&none, 50);
        events += drain_events(hub, 50);
    }
    assert_int_equal(xs_bus_peers(hub, XS_BUS_DOMAIN_CONTACTS), 0);
    assert_int_equal(request_str(hub, XS_BUS_DOMAIN_CONTACTS, "token", 300, NULL, 0), XS_ETIMEDOUT);
    taken += intruder_requests(&none, 200);
    assert_int_equal(taken, 0);
    assert_int_equal(atomic_load(&other.handled) + atomic_load(&other.held), 0);
    assert_int_equal(atomic_load(&role.handled) + atomic_load(&role.held), 0);
    assert_int_equal(events, 0);

    /* The contacts replica of this deployment gets in, and gets the work. */
    xs_bus_opts co = tls_opts(base, a_contacts, NULL);
    replica good = {0};
    replica_start(&good, XS_BUS_DOMAIN_CONTACTS, &co, "good", 1);
    assert_true(wait_peers(hub, XS_BUS_DOMAIN_CONTACTS, 1));
    char got[64];
    for (int i = 0; i < 5; i++) {
        assert_int_equal(request_str(hub, XS_BUS_DOMAIN_CONTACTS, "work", 5000, got, sizeof(got)),
                         XS_OK);
        assert_string_equal(got, "good:work");
    }
    assert_int_equal(xs_bus_peers(hub, XS_BUS_DOMAIN_CONTACTS), 1);
    replica_stop(&good);
    replica_stop(&other);
    replica_stop(&role);
    intruder_close(&none);
    xs_bus_hub_destroy(hub);
    logfile_close(&lf);
}

/* A node accepts only the deployment's orchestrator: a hub with another deployment's
 * certificates, or with a certificate of another role, gets no replica. */
static void test_tls_node_checks_hub(void **state)
{
    (void)state;
    char base[64], b_orch[128], a_contacts[128], a_orch[128], impostor[160];
    cert_dir(b_orch, sizeof(b_orch), "b", "orchestrator");
    cert_dir(a_contacts, sizeof(a_contacts), "a", "contacts");
    cert_dir(a_orch, sizeof(a_orch), "a", "orchestrator");
    mixed_dir(impostor, sizeof(impostor), a_contacts, a_orch);
    const char *hubs[] = {b_orch, impostor};
    for (size_t i = 0; i < 2; i++) {
        scheme_base("tls+tcp", base, sizeof(base));
        xs_bus_opts ho = tls_opts(base, hubs[i], NULL);
        xs_bus_hub *hub;
        assert_int_equal(xs_bus_hub_create(&hub, &ho), XS_OK);
        xs_bus_opts co = tls_opts(base, a_contacts, NULL);
        replica r = {0};
        replica_start(&r, XS_BUS_DOMAIN_CONTACTS, &co, "contacts", 1);
        xs_clock_sleep_ms(1000);
        assert_int_equal(xs_bus_peers(hub, XS_BUS_DOMAIN_CONTACTS), 0);
        assert_int_equal(request_str(hub, XS_BUS_DOMAIN_CONTACTS, "x", 200, NULL, 0), XS_ETIMEDOUT);
        assert_int_equal(atomic_load(&r.handled) + atomic_load(&r.held), 0);
        replica_stop(&r);
        xs_bus_hub_destroy(hub);
    }
}

/* connects tells whether a contacts node with folder dir gets a connection to hub within 3 s
 * (and is refused for at least 1 s when it should not). */
static bool contacts_connects(xs_bus_hub *hub, const char *base, const char *dir, bool expect)
{
    xs_bus_opts o = tls_opts(base, dir, NULL);
    xs_bus_node *node;
    assert_int_equal(xs_bus_node_create(&node, XS_BUS_DOMAIN_CONTACTS, &o), XS_OK);
    int64_t end = xs_clock_mono_ms() + (expect ? 3000 : 1000);
    bool up = false;
    while (!up && xs_clock_mono_ms() < end) {
        up = xs_bus_peers(hub, XS_BUS_DOMAIN_CONTACTS) > 0;
        xs_clock_sleep_ms(10);
    }
    xs_bus_node_destroy(node);
    wait_peers(hub, XS_BUS_DOMAIN_CONTACTS, 0);
    return up;
}

/* rotation_step runs `xs-certs STEP DIR contacts`, then starts a hub with the orchestrator's
 * folder as it now is and checks whether contacts certificates made before the step
 * (before) and the current ones are let in. */
static void rotation_step(const char *dep, const char *step, const char *before, bool old_in)
{
    char orch[128], contacts[128], base[64];
    snprintf(orch, sizeof(orch), "%s/orchestrator", dep);
    snprintf(contacts, sizeof(contacts), "%s/contacts", dep);
    sh("sh '%s' %s %s contacts >/dev/null", XS_CERTS_SCRIPT, step, dep);
    scheme_base("tls+tcp", base, sizeof(base));
    xs_bus_opts ho = tls_opts(base, orch, NULL);
    xs_bus_hub *hub;
    assert_int_equal(xs_bus_hub_create(&hub, &ho), XS_OK);
    assert_true(contacts_connects(hub, base, before, old_in) == old_in);
    assert_true(contacts_connects(hub, base, contacts, true));
    xs_bus_hub_destroy(hub);
}

/* Rotation (scripts/xs-certs): a renewed certificate needs no change at the hub; a rotated
 * CA is trusted beside the old one until retired, so replicas can move one by one. */
static void test_tls_rotation(void **state)
{
    (void)state;
    char dep[96], contacts[128], before[160];
    snprintf(dep, sizeof(dep), "%s/rot", certs_root);
    sh("sh '%s' init %s >/dev/null", XS_CERTS_SCRIPT, dep);
    snprintf(contacts, sizeof(contacts), "%s/contacts", dep);
    mixed_dir(before, sizeof(before), contacts, contacts);
    /* renew: the old and the new certificate both work with the hub as it is. */
    rotation_step(dep, "renew", before, true);
    /* rotate-ca: a hub restarted with the new trust takes replicas of the old CA and the new. */
    rotation_step(dep, "rotate-ca", before, true);
    /* retire-ca: then only the new CA's certificates. */
    rotation_step(dep, "retire-ca", before, false);
}

/* What may not be a bus is refused at create, with a log line saying what to do. */
static void test_bus_rules(void **state)
{
    (void)state;
    logfile lf;
    logfile_open(&lf);
    char base[64];
    tcp_base(base, sizeof(base));
    xs_bus_opts o = {.url = base, .max_msg = MAX_MSG, .log = lf.log};
    xs_bus_hub *hub = NULL;
    xs_bus_node *node = NULL;
    /* tcp:// only when asked for, loudly. */
    assert_int_equal(xs_bus_hub_create(&hub, &o), XS_EINVAL);
    assert_int_equal(xs_bus_node_create(&node, XS_BUS_DOMAIN_AUTH, &o), XS_EINVAL);
    assert_true(logfile_has(&lf, "\"event\":\"bus.refused\""));
    assert_true(logfile_has(&lf, "XS_BUS_INSECURE=1"));
    o.insecure = 1;
    assert_int_equal(xs_bus_hub_create(&hub, &o), XS_OK);
    assert_true(logfile_has(&lf, "\"level\":\"error\",\"event\":\"bus.insecure\"") ||
                logfile_has(&lf, "\"event\":\"bus.insecure\""));
    xs_bus_hub_destroy(hub);
    hub = NULL;

    /* ipc:// only in a folder of this user's that no one else may enter. */
    char dir[] = "/tmp/bus_rules_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char ipc[128];
    snprintf(ipc, sizeof(ipc), "ipc://%s/bus", dir);
    o.url = ipc;
    o.insecure = 0;
    assert_int_equal(chmod(dir, 0755), 0);
    assert_int_equal(xs_bus_hub_create(&hub, &o), XS_EINVAL);
    assert_int_equal(xs_bus_node_create(&node, XS_BUS_DOMAIN_AUTH, &o), XS_EINVAL);
    assert_true(logfile_has(&lf, "mode 0700"));
    assert_int_equal(chmod(dir, 0700), 0);
    assert_int_equal(xs_bus_hub_create(&hub, &o), XS_OK);
    xs_bus_hub_destroy(hub);
    hub = NULL;
    snprintf(ipc, sizeof(ipc), "ipc://%s/missing/bus", dir);
    assert_int_equal(xs_bus_node_create(&node, XS_BUS_DOMAIN_AUTH, &o), XS_EINVAL);
    sh("rm -rf %s", dir);

    /* tls+tcp:// needs the folder, and every file in it usable. */
    char tls[64];
    scheme_base("tls+tcp", tls, sizeof(tls));
    o.url = tls;
    assert_int_equal(xs_bus_hub_create(&hub, &o), XS_EINVAL);
    assert_true(logfile_has(&lf, "\"event\":\"bus.tls_dir_missing\""));
    char empty[96];
    snprintf(empty, sizeof(empty), "%s/empty", certs_root);
    sh("mkdir -p %s", empty);
    o.tls_dir = empty;
    assert_int_equal(xs_bus_hub_create(&hub, &o), XS_EINVAL);
    assert_int_equal(xs_bus_node_create(&node, XS_BUS_DOMAIN_AUTH, &o), XS_EINVAL);
    assert_true(logfile_has(&lf, "\"event\":\"bus.tls_file\""));
    char a_auth[128], broken[160];
    cert_dir(a_auth, sizeof(a_auth), "a", "auth");
    mixed_dir(broken, sizeof(broken), a_auth, a_auth);
    sh("echo not-a-certificate > %s/trust-orchestrator.pem", broken);
    o.tls_dir = broken;
    assert_int_equal(xs_bus_node_create(&node, XS_BUS_DOMAIN_AUTH, &o), XS_EINVAL);
    assert_true(logfile_has(&lf, "\"event\":\"bus.tls_config\""));
    /* The key never reaches the log. */
    assert_false(logfile_has(&lf, "PRIVATE KEY"));
    assert_null(hub);
    assert_null(node);
    logfile_close(&lf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_domain_names),
        cmocka_unit_test(test_url_derivation),
        cmocka_unit_test(test_bad_opts),
        cmocka_unit_test(test_close_then_destroy),
        cmocka_unit_test(test_round_trip_inproc),
        cmocka_unit_test(test_round_trip_tcp),
        cmocka_unit_test(test_round_trip_ipc),
        cmocka_unit_test(test_concurrent_requests),
        cmocka_unit_test(test_replicas_share_work),
        cmocka_unit_test(test_replica_dies_request_answered_by_other),
        cmocka_unit_test(test_resend_infinite_fails_on_peer_loss),
        cmocka_unit_test(test_resend_by_timer),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_oversize_refused),
        cmocka_unit_test(test_oversize_received),
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_peer_counts),
        cmocka_unit_test(test_node_before_hub),
        cmocka_unit_test(test_node_check_redials),
        cmocka_unit_test(test_node_dials_every_hub),
        cmocka_unit_test(test_hub_destroy_wakes_callers),
        cmocka_unit_test(test_hub_destroy_wakes_event_waiter),
        cmocka_unit_test(test_worker_lifecycle),
        cmocka_unit_test(test_listen_and_dial_failures),
        cmocka_unit_test(test_tls_round_trip),
        cmocka_unit_test(test_tls_refuses_strangers),
        cmocka_unit_test(test_tls_node_checks_hub),
        cmocka_unit_test(test_tls_rotation),
        cmocka_unit_test(test_bus_rules),
    };
    return cmocka_run_group_tests(tests, certs_setup, certs_teardown);
}
