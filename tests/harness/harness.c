/* harness.c: processes, databases and HTTP for tests. */
#include "harness.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "xs/buf.h"
#include "xs/json.h"
#include "xs/migrate.h"
#include "xs/pg.h"

extern char **environ;

void xst_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "test harness: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

int64_t xst_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return NULL;
    }
    char *buf = NULL;
    size_t cap = 0, len = 0;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *nb = realloc(buf, cap);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    if (buf == NULL) {
        buf = calloc(1, 1);
    } else {
        buf[len] = '\0';
    }
    return buf;
}

const char *xst_pg_admin_url(void)
{
    static char url[512];
    if (url[0] != '\0') {
        return url;
    }
    const char *dir = getenv("XS_TEST_PG_DIR");
    if (dir == NULL) {
        xst_die("XS_TEST_PG_DIR is not set: run this test through ctest (the pg fixture)");
    }
    char path[600];
    snprintf(path, sizeof(path), "%s/url", dir);
    char *text = read_file(path);
    if (text == NULL) {
        xst_die("no %s: the pg fixture (scripts/pg-cluster start) did not run", path);
    }
    text[strcspn(text, "\r\n")] = '\0';
    snprintf(url, sizeof(url), "%s", text);
    free(text);
    return url;
}

/* db_url replaces the database name at the end of the admin URL. */
static char *db_url(const char *name)
{
    const char *admin = xst_pg_admin_url();
    const char *slash = strrchr(admin, '/');
    if (slash == NULL || slash - admin < 12) {
        xst_die("cannot derive a database URL from %s", admin);
    }
    size_t n = (size_t)(slash - admin) + 1 + strlen(name) + 1;
    char *u = malloc(n);
    if (u == NULL) {
        xst_die("out of memory");
    }
    snprintf(u, n, "%.*s/%s", (int)(slash - admin), admin, name);
    return u;
}

char *xst_db_create(const char *prefix)
{
    static int counter;
    char name[64];
    snprintf(name, sizeof(name), "t_%.30s_%d_%d", prefix, (int)getpid(), ++counter);
    /* The name is made only of [a-z0-9_], so it is a safe identifier: CREATE DATABASE takes
     * no parameters. */
    for (char *c = name; *c; c++) {
        if (*c >= 'A' && *c <= 'Z') {
            *c = (char)(*c - 'A' + 'a');
        } else if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_')) {
            *c = '_';
        }
    }
    xs_pg *pg = NULL;
    if (xs_pg_connect(&pg, xst_pg_admin_url(), "xs-test", 10000, NULL) != XS_OK) {
        xst_die("cannot connect to the test cluster at %s", xst_pg_admin_url());
    }
    char sql[128];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
    if (xs_pg_q0(pg, NULL, sql) != XS_OK) {
        xst_die("CREATE DATABASE %s: %s", name, xs_pg_error(pg));
    }
    xs_pg_close(pg);
    return db_url(name);
}

void xst_db_drop_all(void)
{
    xs_pg *pg = NULL;
    if (xs_pg_connect(&pg, xst_pg_admin_url(), "xs-test", 10000, NULL) != XS_OK) {
        xst_die("cannot connect to the test cluster at %s", xst_pg_admin_url());
    }
    xs_pg_res *r = NULL;
    if (xs_pg_q0(pg, &r,
                 "SELECT quote_ident(datname) FROM pg_database WHERE datname LIKE 't\\_%'") !=
        XS_OK) {
        xst_die("cannot list the databases: %s", xs_pg_error(pg));
    }
    for (int i = 0; i < xs_pg_res_nrows(r); i++) {
        /* quote_ident made the name a safe identifier: DROP DATABASE takes no parameters. */
        char sql[200];
        snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)",
                 xs_pg_res_get(r, i, 0));
        if (xs_pg_q0(pg, NULL, sql) != XS_OK) {
            xst_die("%s: %s", sql, xs_pg_error(pg));
        }
    }
    xs_pg_res_free(r);
    xs_pg_close(pg);
}

void xst_bench_start(const char *build_dir, const char *source_dir)
{
    char pgdir[600], cmd[1400];
    snprintf(pgdir, sizeof(pgdir), "%s/bench-pg", build_dir);
    setenv("XS_TEST_BINARY_DIR", build_dir, 1);
    setenv("XS_TEST_PG_DIR", pgdir, 1);
    snprintf(cmd, sizeof(cmd), "%s/scripts/pg-cluster start '%s' >/dev/null", source_dir, pgdir);
    if (system(cmd) != 0) {
        xst_die("cannot start PostgreSQL (%s)", cmd);
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* What earlier runs of the benchmarks left in this cluster, which autovacuum would visit
     * during this run. */
    xst_db_drop_all();
}

void xst_bench_stop(const char *build_dir, const char *source_dir)
{
    char cmd[1400];
    snprintf(cmd, sizeof(cmd), "%s/scripts/pg-cluster stop '%s/bench-pg' >/dev/null", source_dir,
             build_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not stop PostgreSQL\n");
    }
}

char *xst_db_migrated(const char *prefix)
{
    char *url = xst_db_create(prefix);
    xs_pg *pg = NULL;
    if (xs_pg_connect(&pg, url, "xs-test", 10000, NULL) != XS_OK) {
        xst_die("cannot connect to %s", url);
    }
    xs_err e = xs_migrate_apply(pg, NULL, NULL);
    if (e != XS_OK) {
        xst_die("migrations failed on %s: %s (%s)", url, xs_strerror(e), xs_pg_error(pg));
    }
    xs_pg_close(pg);
    return url;
}

uint16_t xst_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        xst_die("socket: %s", strerror(errno));
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        xst_die("bind: %s", strerror(errno));
    }
    uint16_t port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

uint16_t xst_free_ports(int n)
{
    static unsigned seed;
    if (seed == 0) {
        seed = (unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL);
    }
    for (int tries = 0; tries < 200; tries++) {
        int base = 20000 + rand_r(&seed) % 40000;
        bool free_all = true;
        for (int i = 0; i < n && free_all; i++) {
            int fd = socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in sa = {.sin_family = AF_INET,
                                     .sin_port = htons((uint16_t)(base + i)),
                                     .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
            free_all = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
            if (fd >= 0) {
                close(fd);
            }
        }
        if (free_all) {
            return (uint16_t)base;
        }
    }
    xst_die("no %d free consecutive ports", n);
}

int xst_tcp_open(const char *from, uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    struct sockaddr_in me = {.sin_family = AF_INET};
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, from != NULL ? from : "127.0.0.1", &me.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    if (bind(fd, (struct sockaddr *)&me, sizeof(me)) != 0 ||
        connect(fd, (struct sockaddr *)&to, sizeof(to)) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

bool xst_tcp_closed(int fd, long wait_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, (int)wait_ms) <= 0) {
        return false;
    }
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) {
        return true;
    }
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

long xst_fd_limit_raise(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        xst_die("getrlimit: %s", strerror(errno));
    }
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    return (long)rl.rlim_cur;
}

xst_http xst_raw_http(uint16_t port, const void *req, size_t len, long timeout_ms)
{
    xst_http r = {0};
    int fd = xst_tcp_open(NULL, port);
    if (fd < 0) {
        xst_die("connect to port %u: %s", (unsigned)port, strerror(errno));
    }
    size_t cap = 4096, got = 0;
    char *buf = malloc(cap);
    if (buf == NULL || send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len) {
        xst_die("send: %s", strerror(errno));
    }
    int64_t end = xst_now_ms() + timeout_ms;
    for (;;) {
        int64_t left = end - xst_now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
            break;
        }
        if (got + 1024 > cap) {
            char *b = realloc(buf, cap *= 2);
            if (b == NULL) {
                xst_die("out of memory");
            }
            buf = b;
        }
        ssize_t n = recv(fd, buf + got, cap - got - 1, 0);
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    int status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) == 1) {
        r.status = status;
    }
    const char *body = strstr(buf, "\r\n\r\n");
    body = body != NULL ? body + 4 : buf + got;
    r.len = got - (size_t)(body - buf);
    r.body = strdup(body);
    free(buf);
    if (r.body == NULL) {
        xst_die("out of memory");
    }
    if (r.len > 0) {
        r.json = xs_json_parse(r.body, r.len, NULL);
    }
    return r;
}

const char *xst_bin(const char *name)
{
    static char paths[16][512];
    static int next;
    const char *bdir = getenv("XS_TEST_BINARY_DIR");
    if (bdir == NULL) {
        xst_die("XS_TEST_BINARY_DIR is not set: run this test through ctest");
    }
    /* Binaries live in <build>/bin (see services/CMakeLists.txt). */
    char *p = paths[next++ % 16];
    snprintf(p, 512, "%s/bin/%s", bdir, name);
    if (access(p, X_OK) != 0) {
        xst_die("%s is not built", p);
    }
    return p;
}

xst_proc *xst_spawn(const char *name, const char *path, char *const argv[], char *const env[])
{
    xst_proc *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        xst_die("out of memory");
    }
    snprintf(p->name, sizeof(p->name), "%s", name);
    const char *bdir = getenv("XS_TEST_BINARY_DIR");
    snprintf(p->log_path, sizeof(p->log_path), "%s/test-logs", bdir ? bdir : "/tmp");
    mkdir(p->log_path, 0755);
    snprintf(p->log_path + strlen(p->log_path), sizeof(p->log_path) - strlen(p->log_path),
             "/%s-%d-%lld.log", name, (int)getpid(), (long long)xst_now_ms());

    /* The child's environment: ours, then `env` overriding. */
    size_t n_ours = 0, n_env = 0;
    while (environ[n_ours] != NULL) {
        n_ours++;
    }
    while (env != NULL && env[n_env] != NULL) {
        n_env++;
    }
    char **cenv = calloc(n_ours + n_env + 1, sizeof(char *));
    if (cenv == NULL) {
        xst_die("out of memory");
    }
    size_t k = 0;
    for (size_t i = 0; i < n_ours; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t klen = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        bool overridden = false;
        for (size_t j = 0; j < n_env; j++) {
            if (strncmp(env[j], environ[i], klen) == 0 && env[j][klen] == '=') {
                overridden = true;
            }
        }
        if (!overridden) {
            cenv[k++] = environ[i];
        }
    }
    for (size_t j = 0; j < n_env; j++) {
        cenv[k++] = env[j];
    }
    cenv[k] = NULL;

    char *default_argv[] = {(char *)path, NULL};
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        xst_die("fork: %s", strerror(errno));
    }
    if (pid == 0) {
        /* A test that fails (cmocka leaves the test function at the failed assertion, so
         * its own clean-up never runs) or dies must not leave its engine running: the
         * process gets SIGTERM, and stops cleanly, when the test process goes. */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent) {
            _exit(126);
        }
        int fd = open(p->log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
            close(fd);
        }
        execve(path, argv != NULL ? argv : default_argv, cenv);
        fprintf(stderr, "execve %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    free(cenv);
    p->pid = pid;
    return p;
}

static bool reap(xst_proc *p, bool block)
{
    if (p->reaped) {
        return true;
    }
    int st;
    pid_t r = waitpid(p->pid, &st, block ? 0 : WNOHANG);
    if (r == p->pid) {
        p->status = st;
        p->reaped = true;
        return true;
    }
    return false;
}

bool xst_alive(xst_proc *p)
{
    return !reap(p, false);
}

int xst_stop(xst_proc *p, int timeout_ms)
{
    if (!p->reaped) {
        kill(p->pid, SIGTERM);
        int64_t end = xst_now_ms() + timeout_ms;
        while (!reap(p, false) && xst_now_ms() < end) {
            usleep(10000);
        }
        if (!p->reaped) {
            fprintf(stderr, "%s did not stop within %d ms of SIGTERM; killing it\n", p->name,
                    timeout_ms);
            kill(p->pid, SIGKILL);
            reap(p, true);
            return -1;
        }
    }
    if (WIFEXITED(p->status)) {
        return WEXITSTATUS(p->status);
    }
    return -1;
}

void xst_kill9(xst_proc *p)
{
    if (!p->reaped) {
        kill(p->pid, SIGKILL);
        reap(p, true);
    }
}

void xst_proc_free(xst_proc *p)
{
    if (p == NULL) {
        return;
    }
    xst_kill9(p);
    free(p);
}

bool xst_log_contains(const xst_proc *p, const char *needle)
{
    char *text = read_file(p->log_path);
    bool found = text != NULL && strstr(text, needle) != NULL;
    free(text);
    return found;
}

/* dump_line says whether a log line is worth printing when the whole log is too long: what
 * is not a JSON log line (a sanitizer's report, a crash, a stray print), a warning or worse. */
static bool dump_line(const char *line, size_t len)
{
    if (len == 0 || line[0] != '{') {
        return len > 0;
    }
    const char *lv = memmem(line, len, "\"level\":\"", 9);
    return lv == NULL || (strncmp(lv + 9, "debug", 5) != 0 && strncmp(lv + 9, "info", 4) != 0);
}

void xst_log_dump(const xst_proc *p)
{
    enum { WHOLE = 200, TAIL = 40, KEPT = 400 };
    char *text = read_file(p->log_path);
    if (text == NULL) {
        fprintf(stderr, "----- %s (%s): no log -----\n", p->name, p->log_path);
        return;
    }
    size_t lines = 0;
    for (const char *c = text; *c != '\0'; c++) {
        lines += *c == '\n';
    }
    /* A long log (a debug one runs to thousands of lines) is cut to what tells why the
     * process failed, so a CI excerpt keeps it: every line that is not a log line or not
     * debug or info (at most KEPT), then the last TAIL lines whole. */
    fprintf(stderr, "----- %s (%s, %zu lines%s) -----\n", p->name, p->log_path, lines,
            lines > WHOLE ? ": warnings, errors and other output, then the last lines" : "");
    size_t n = 0, kept = 0;
    for (char *line = text, *end; *line != '\0'; line = *end ? end + 1 : end) {
        end = strchr(line, '\n');
        if (end == NULL) {
            end = line + strlen(line);
        }
        size_t len = (size_t)(end - line);
        bool tail = lines <= WHOLE || n + TAIL >= lines;
        if (lines > WHOLE && n + TAIL == lines) {
            fprintf(stderr, "[... the last %d lines]\n", TAIL);
        }
        if (tail || (dump_line(line, len) && kept++ < KEPT)) {
            fprintf(stderr, "%.*s\n", (int)len, line);
        }
        n++;
    }
    fprintf(stderr, "----- end of %s -----\n", p->name);
    free(text);
}

/* on_data appends a received chunk to the xs_buf ud. */
static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    size_t n = size * nmemb;
    return xs_buf_append(ud, ptr, n) == XS_OK ? n : 0;
}

static void curl_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* contract_note appends one exchange to the contract log, when XS_CONTRACT_LOG names a
 * folder: a JSON line {test, method, url, status, content_type, body} in <folder>/<pid>.jsonl,
 * which tests/contract/api_contract.py validates against docs/openapi.yaml once every test has
 * run. One write per line with O_APPEND, so threads of one test do not interleave. */
static void contract_note(const char *method, const char *url, const xst_http *r)
{
    const char *dir = getenv("XS_CONTRACT_LOG");
    if (dir == NULL || *dir == '\0' || r->status == 0) {
        return;
    }
    /* Only the orchestrator's routes: the simulator's (under /_sim, /api.xro, /connect ...)
     * have their own contract test. */
    const char *host = strstr(url, "://");
    const char *path = host != NULL ? strchr(host + 3, '/') : NULL;
    if (path == NULL || (strncmp(path, "/v1/", 4) != 0 && strncmp(path, "/health", 7) != 0 &&
                         strncmp(path, "/metrics", 8) != 0 && strncmp(path, "/ui", 3) != 0)) {
        return;
    }
    (void)mkdir(dir, 0777);
    char file[4096];
    snprintf(file, sizeof(file), "%s/%ld.jsonl", dir, (long)getpid());
    json_t *line = json_pack("{s:s, s:s, s:s, s:I, s:s?}", "test", program_invocation_short_name,
                             "method", method, "url", url, "status", (json_int_t)r->status,
                             "content_type", r->content_type);
    /* A body that is not UTF-8 is written as null with a mark, for the check to refuse. */
    json_t *b = json_stringn(r->body, r->len);
    json_object_set_new(line, "body", b != NULL ? b : json_null());
    json_object_set_new(line, "body_not_utf8", json_boolean(b == NULL));
    char *text = json_dumps(line, JSON_COMPACT);
    json_decref(line);
    if (text == NULL) {
        xst_die("contract log: cannot encode the reply of %s %s", method, url);
    }
    size_t n = strlen(text);
    text[n] = '\n';
    int fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, text, n + 1) != (ssize_t)(n + 1)) {
        xst_die("contract log: cannot write %s: %s", file, strerror(errno));
    }
    close(fd);
    free(text);
}

xst_http xst_http_do(const char *method, const char *url, const char *body,
                     const char *const *headers, long timeout_ms)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, curl_init);
    xst_http r = {0};
    xs_buf s = {0};
    CURL *c = curl_easy_init();
    if (c == NULL) {
        xst_die("curl_easy_init failed");
    }
    struct curl_slist *hl = NULL;
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
        hl = curl_slist_append(hl, headers[i]);
    }
    if (body != NULL) {
        hl = curl_slist_append(hl, "Content-Type: application/json");
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    xs_buf hs = {0};
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &hs);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    if (curl_easy_perform(c) == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
        char *loc = NULL;
        if (curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc != NULL) {
            r.location = strdup(loc);
        }
        char *ctype = NULL;
        if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ctype) == CURLE_OK && ctype != NULL) {
            r.content_type = strdup(ctype);
        }
    }
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    size_t hlen = 0;
    r.headers = xs_buf_take(&hs, &hlen);
    r.headers = r.headers != NULL ? r.headers : calloc(1, 1);
    r.body = xs_buf_take(&s, &r.len);
    r.body = r.body != NULL ? r.body : calloc(1, 1);
    contract_note(method, url, &r);
    if (r.len > 0) {
        r.json = xs_json_parse(r.body, r.len, NULL);
    }
    return r;
}

void xst_http_free(xst_http *r)
{
    free(r->body);
    free(r->location);
    free(r->content_type);
    free(r->headers);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

char *xst_slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return NULL;
    }
    char *text = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        text = calloc(1, (size_t)n + 1);
        if (text != NULL && n > 0 && fread(text, 1, (size_t)n, f) != (size_t)n) {
            free(text);
            text = NULL;
        }
    }
    fclose(f);
    return text;
}

const char *xst_http_header(const xst_http *r, const char *name, char *out, size_t n)
{
    size_t len = strlen(name);
    for (const char *line = r->headers; line != NULL && *line != '\0';) {
        const char *eol = strstr(line, "\r\n");
        size_t ll = eol != NULL ? (size_t)(eol - line) : strlen(line);
        if (ll > len && line[len] == ':' && strncasecmp(line, name, len) == 0) {
            const char *v = line + len + 1;
            while (*v == ' ' || *v == '\t') {
                v++;
            }
            snprintf(out, n, "%.*s", (int)(line + ll - v), v);
            return out;
        }
        line = eol != NULL ? eol + 2 : NULL;
    }
    return NULL;
}

bool xst_http_error_is(const xst_http *r, long status, const char *code, const char *says)
{
    json_t *err = json_object_get(r->json, "error");
    const char *c = json_string_value(json_object_get(err, "code"));
    const char *m = json_string_value(json_object_get(err, "message"));
    if (r->status == status && c != NULL && strcmp(c, code) == 0 && m != NULL &&
        (says == NULL || strstr(m, says) != NULL)) {
        return true;
    }
    fprintf(stderr, "expected %ld %s \"%s\", got %ld %s\n", status, code, says != NULL ? says : "",
            r->status, r->body != NULL ? r->body : "");
    return false;
}

bool xst_wait_http(const char *url, long status, long timeout_ms)
{
    int64_t end = xst_now_ms() + timeout_ms;
    for (;;) {
        xst_http r = xst_http_do("GET", url, NULL, NULL, 2000);
        long got = r.status;
        xst_http_free(&r);
        if (got == status) {
            return true;
        }
        if (xst_now_ms() > end) {
            return false;
        }
        usleep(50000);
    }
}
