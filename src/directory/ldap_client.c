/*
 * ldap_client.c — talking to a directory with libldap (OpenLDAP): a
 * connection with timeouts and TLS, the sync's paged search, and the bind
 * of a user at login (directory.h, "LDAP").
 *
 * Everything here blocks, bounded: LDAP_CONNECT_TIMEOUT for the TCP connect,
 * LDAP_OP_TIMEOUT for each StartTLS, bind and page of the search (libldap's
 * LDAP_OPT_TIMEOUT for its synchronous calls), so a directory that hangs
 * costs a caller seconds, not forever. The callers are threads made for it
 * (HTTP threads, submission workers, the syncer), never an event loop.
 *
 * TLS: ldaps:// or ldap:// with StartTLS; the server's certificate is always
 * checked (libldap's default, TLS_REQCERT demand) against the CAs of
 * ldap.conf(5), which the environment can name (LDAPTLS_CACERT=FILE) for a
 * private CA. A result is all or nothing: the search is only a success when
 * every page came, so a directory that stops answering half-way can never make
 * the sync suspend the users it did not see.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ldap.h>

#include "directory/directory.h"
#include "util/errbuf.h"

static int status_of(int rc)
{
    switch (rc) {
    case LDAP_SUCCESS:
        return DIRECTORY_LDAP_OK;
    case LDAP_INVALID_CREDENTIALS:
        return DIRECTORY_LDAP_INVALID;
    case LDAP_SERVER_DOWN:
    case LDAP_CONNECT_ERROR:
    case LDAP_TIMEOUT:
        return DIRECTORY_LDAP_DOWN;
    default:
        return DIRECTORY_LDAP_FAILED;
    }
}

/* "what: Invalid credentials (the server's words)"; returns the status. */
static int fail_rc(LDAP *ld, int rc, char *err, size_t errlen, const char *what)
{
    char *diag = NULL;
    /* The server's own words come with its result codes (> 0); libldap's
     * client-side errors (< 0) have none worth showing. */
    if (ld && rc > 0)
        ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
    if (diag && *diag)
        errbuf_fail(err, errlen, "%s: %s (%.200s)", what, ldap_err2string(rc), diag);
    else
        errbuf_fail(err, errlen, "%s: %s", what, ldap_err2string(rc));
    ldap_memfree(diag);
    return status_of(rc) == DIRECTORY_LDAP_OK ? DIRECTORY_LDAP_FAILED : status_of(rc);
}

/* libldap 2.5 (Debian 12) has no timeout for the TLS handshake: its sockets
 * are non-blocking, and without LDAP_USE_NON_BLOCKING_TLS (a 2.6 default) the
 * handshake retries a read that would block at once, for ever, at full CPU,
 * while a server accepts the connection and says nothing. So each connection
 * gets a layer of our own between TLS and TCP (added by the connect callback,
 * before any TLS): a read or write that would block waits for the socket
 * with poll(2), at most LDAP_OP_TIMEOUT, and then fails with ETIMEDOUT, which
 * ends the handshake or the operation. libldap reads only what poll said is
 * there, so an answering server never meets the wait. */
static int io_setup(Sockbuf_IO_Desc *sbiod, void *arg)
{
    sbiod->sbiod_pvt = arg; /* the socket, as an intptr_t */
    return 0;
}

static int io_remove(Sockbuf_IO_Desc *sbiod)
{
    (void)sbiod;
    return 0;
}

static int io_ctrl(Sockbuf_IO_Desc *sbiod, int opt, void *arg)
{
    return LBER_SBIOD_CTRL_NEXT(sbiod, opt, arg);
}

/* 0 when fd became ready for events within LDAP_OP_TIMEOUT, else -1 with errno. */
static int io_wait(Sockbuf_IO_Desc *sbiod, short events)
{
    struct pollfd p = {.fd = (int)(intptr_t)sbiod->sbiod_pvt, .events = events};
    int n;
    do
        n = poll(&p, 1, LDAP_OP_TIMEOUT * 1000);
    while (n < 0 && errno == EINTR);
    if (n == 0)
        errno = ETIMEDOUT;
    return n > 0 ? 0 : -1;
}

static ber_slen_t io_read(Sockbuf_IO_Desc *sbiod, void *buf, ber_len_t len)
{
    for (;;) {
        ber_slen_t n = LBER_SBIOD_READ_NEXT(sbiod, buf, len);
        if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            return n;
        if (io_wait(sbiod, POLLIN) != 0)
            return -1; /* errno: ETIMEDOUT, a hard error for the layers above */
    }
}

static ber_slen_t io_write(Sockbuf_IO_Desc *sbiod, void *buf, ber_len_t len)
{
    for (;;) {
        ber_slen_t n = LBER_SBIOD_WRITE_NEXT(sbiod, buf, len);
        if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            return n;
        if (io_wait(sbiod, POLLOUT) != 0)
            return -1; /* errno: ETIMEDOUT, a hard error for the layers above */
    }
}

static int io_close(Sockbuf_IO_Desc *sbiod)
{
    (void)sbiod;
    return 0; /* the TCP layer below closes the socket */
}

static Sockbuf_IO io_bounded = {io_setup, io_remove, io_ctrl, io_read, io_write, io_close};

static int conn_add(LDAP *ld, Sockbuf *sb, LDAPURLDesc *srv, struct sockaddr *addr, struct ldap_conncb *ctx)
{
    (void)ld;
    (void)srv;
    (void)addr;
    (void)ctx;
    ber_socket_t fd = -1;
    if (ber_sockbuf_ctrl(sb, LBER_SB_OPT_GET_FD, &fd) != 1 || fd < 0)
        return -1;
    /* Above TCP (libldap adds it, at the provider level, after this
     * callback), below TLS (the transport level). */
    return ber_sockbuf_add_io(sb, &io_bounded, LBER_SBIOD_LEVEL_PROVIDER + 5, (void *)(intptr_t)fd);
}

static void conn_del(LDAP *ld, Sockbuf *sb, struct ldap_conncb *ctx)
{
    (void)ld;
    (void)sb;
    (void)ctx;
}

static struct ldap_conncb conn_bounded = {conn_add, conn_del, NULL};

/* A handle for s->url with the timeouts, after StartTLS when asked for. The
 * TCP connection is made by the first operation (libldap connects lazily),
 * so StartTLS, when asked for, is where an unreachable server shows. */
static int conn_open(const struct store_ldap_settings *s, LDAP **out, char *err, size_t errlen)
{
    *out = NULL;
    LDAP *ld = NULL;
    int rc = ldap_initialize(&ld, s->url);
    if (rc != LDAP_SUCCESS || !ld) {
        errbuf_fail(err, errlen, "%.200s: cannot use the URL: %s", s->url, ldap_err2string(rc));
        return DIRECTORY_LDAP_FAILED;
    }
    int v3 = LDAP_VERSION3;
    struct timeval net = {LDAP_CONNECT_TIMEOUT, 0}, op = {LDAP_OP_TIMEOUT, 0};
    if (ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3) != LDAP_OPT_SUCCESS ||
        ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF) != LDAP_OPT_SUCCESS ||
        ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &net) != LDAP_OPT_SUCCESS ||
        ldap_set_option(ld, LDAP_OPT_TIMEOUT, &op) != LDAP_OPT_SUCCESS ||
        ldap_set_option(ld, LDAP_OPT_CONNECT_CB, &conn_bounded) != LDAP_OPT_SUCCESS) {
        ldap_unbind_ext_s(ld, NULL, NULL);
        errbuf_fail(err, errlen, "%.200s: cannot set the connection's options", s->url);
        return DIRECTORY_LDAP_FAILED;
    }
    if (s->starttls && (rc = ldap_start_tls_s(ld, NULL, NULL)) != LDAP_SUCCESS) {
        char what[300];
        snprintf(what, sizeof what, "%.200s: StartTLS", s->url);
        int st = fail_rc(ld, rc, err, errlen, what);
        ldap_unbind_ext_s(ld, NULL, NULL);
        return st;
    }
    *out = ld;
    return DIRECTORY_LDAP_OK;
}

static int simple_bind(LDAP *ld, const char *dn, const char *password)
{
    struct berval cred = {.bv_len = password ? strlen(password) : 0, .bv_val = (char *)(password ? password : "")};
    return ldap_sasl_bind_s(ld, dn && *dn ? dn : NULL, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
}

int directory_ldap_user_bind(const struct store_ldap_settings *s, const char *dn, const char *password, char *err,
                             size_t errlen)
{
    /* An empty password is an unauthenticated bind (RFC 4513 5.1.2), which
     * many servers accept: it proves nothing. */
    if (!dn || !*dn || !password || !*password) {
        errbuf_fail(err, errlen, "an empty password or DN is never sent to the directory");
        return DIRECTORY_LDAP_INVALID;
    }
    LDAP *ld;
    int st = conn_open(s, &ld, err, errlen);
    if (st != DIRECTORY_LDAP_OK)
        return st;
    int rc = simple_bind(ld, dn, password);
    if (rc != LDAP_SUCCESS) {
        char what[1300];
        snprintf(what, sizeof what, "%.200s: bind as %.1000s", s->url, dn);
        st = fail_rc(ld, rc, err, errlen, what);
    }
    ldap_unbind_ext_s(ld, NULL, NULL);
    return st;
}

/* ------------------------------------------------------------------ the search */

/* An attribute's values as NUL-terminated strings (NULL: absent; values with
 * a NUL byte are left out). Free with vals_free. */
static char **vals_get(LDAP *ld, LDAPMessage *e, const char *attr, int *oom)
{
    struct berval **bv = ldap_get_values_len(ld, e, attr);
    if (!bv)
        return NULL;
    size_t n = (size_t)ldap_count_values_len(bv);
    char **v = calloc(n + 1, sizeof *v);
    if (!v)
        *oom = 1;
    for (size_t i = 0, k = 0; v && i < n; i++) {
        if (memchr(bv[i]->bv_val, 0, bv[i]->bv_len))
            continue;
        if (!(v[k] = strndup(bv[i]->bv_val, bv[i]->bv_len))) {
            *oom = 1;
            break;
        }
        k++;
    }
    ldap_value_free_len(bv);
    return v;
}

static void vals_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static char *attrs[] = {"mail", "userPrincipalName", "displayName", "cn", "proxyAddresses", "mailAlternateAddress",
                        "userAccountControl", NULL};

/* One entry into out when it is a user of domain. 0, or -1 out of memory. */
static int take_entry(LDAP *ld, LDAPMessage *e, const char *domain, struct ldap_person_list *out)
{
    int oom = 0;
    char *dn = ldap_get_dn(ld, e);
    struct ldap_entry_values v = {
        .dn = dn,
        .mail = vals_get(ld, e, "mail", &oom),
        .upn = vals_get(ld, e, "userPrincipalName", &oom),
        .display_name = vals_get(ld, e, "displayName", &oom),
        .cn = vals_get(ld, e, "cn", &oom),
        .proxy = vals_get(ld, e, "proxyAddresses", &oom),
        .alt = vals_get(ld, e, "mailAlternateAddress", &oom),
        .uac = vals_get(ld, e, "userAccountControl", &oom),
    };
    int rc = 0;
    struct ldap_person p;
    int r = oom ? -1 : ldap_person_from_entry(&v, domain, &p);
    if (r < 0) {
        rc = -1;
    } else if (r == 1) {
        if (out->n == out->cap) {
            size_t cap = out->cap ? out->cap * 2 : 256;
            struct ldap_person *nv = realloc(out->v, cap * sizeof *nv);
            if (!nv) {
                ldap_person_free(&p);
                rc = -1;
                goto done;
            }
            out->v = nv;
            out->cap = cap;
        }
        out->v[out->n++] = p;
    }
done:
    ldap_memfree(dn);
    vals_free(v.mail);
    vals_free(v.upn);
    vals_free(v.display_name);
    vals_free(v.cn);
    vals_free(v.proxy);
    vals_free(v.alt);
    vals_free(v.uac);
    return rc;
}

int directory_ldap_search(const struct store_ldap_settings *s, const char *domain, struct ldap_person_list *out,
                          unsigned *entries, char *err, size_t errlen)
{
    *entries = 0;
    LDAP *ld;
    int st = conn_open(s, &ld, err, errlen);
    if (st != DIRECTORY_LDAP_OK)
        return st;
    char what[1400];
    int rc = simple_bind(ld, s->bind_dn, s->bind_password);
    if (rc != LDAP_SUCCESS) {
        snprintf(what, sizeof what, "%.200s: bind as %.1000s", s->url, *s->bind_dn ? s->bind_dn : "(anonymous)");
        st = fail_rc(ld, rc, err, errlen, what);
        ldap_unbind_ext_s(ld, NULL, NULL);
        return st;
    }
    /* RFC 2696: the server hands out the result a page at a time, with a
     * cookie for the next one; Active Directory refuses more than 1,000
     * entries to a search that does not page (MaxPageSize), and slapd its
     * sizelimit. */
    struct berval *cookie = NULL;
    snprintf(what, sizeof what, "%.200s: search %.600s", s->url, s->base);
    for (;;) {
        LDAPControl *page = NULL;
        rc = ldap_create_page_control(ld, LDAP_PAGE_SIZE, cookie, 0, &page);
        if (rc != LDAP_SUCCESS) {
            st = fail_rc(ld, rc, err, errlen, what);
            break;
        }
        LDAPControl *sctrls[] = {page, NULL};
        LDAPMessage *res = NULL;
        struct timeval tv = {LDAP_OP_TIMEOUT, 0};
        rc = ldap_search_ext_s(ld, s->base, LDAP_SCOPE_SUBTREE, s->filter, attrs, 0, sctrls, NULL, &tv,
                               LDAP_NO_LIMIT, &res);
        ldap_control_free(page);
        if (rc != LDAP_SUCCESS) {
            st = fail_rc(ld, rc, err, errlen, what);
            ldap_msgfree(res);
            break;
        }
        for (LDAPMessage *e = ldap_first_entry(ld, res); e; e = ldap_next_entry(ld, e)) {
            ++*entries;
            if (take_entry(ld, e, domain, out) != 0) {
                errbuf_fail(err, errlen, "%s: out of memory", what);
                st = DIRECTORY_LDAP_FAILED;
                break;
            }
        }
        LDAPControl **rctrls = NULL;
        int code = LDAP_SUCCESS;
        if (st == DIRECTORY_LDAP_OK &&
            (rc = ldap_parse_result(ld, res, &code, NULL, NULL, NULL, &rctrls, 0)) != LDAP_SUCCESS)
            st = fail_rc(ld, rc, err, errlen, what);
        ldap_msgfree(res);
        ber_bvfree(cookie);
        cookie = NULL;
        LDAPControl *pc = rctrls ? ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, rctrls, NULL) : NULL;
        if (st == DIRECTORY_LDAP_OK && pc) {
            ber_int_t estimate;
            struct berval next = {0, NULL};
            if ((rc = ldap_parse_pageresponse_control(ld, pc, &estimate, &next)) != LDAP_SUCCESS)
                st = fail_rc(ld, rc, err, errlen, what);
            else if (next.bv_len > 0 && !(cookie = ber_bvdup(&next)))
                st = fail_rc(ld, LDAP_NO_MEMORY, err, errlen, what);
            ber_memfree(next.bv_val);
        }
        ldap_controls_free(rctrls);
        if (st != DIRECTORY_LDAP_OK || !cookie)
            break;
    }
    ber_bvfree(cookie);
    ldap_unbind_ext_s(ld, NULL, NULL);
    return st;
}
