/*
 * test_http_route.c — the HTTP router (http_route.c): exact paths, ":id"
 * segments (positive decimals only), 404 vs 405 with the Allow list, HEAD on
 * GET routes, and the daemon's own table.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "http/http_internal.h"

static void h_a(struct http_request *req, struct http_reply *rep) { (void)req, (void)rep; }
static void h_b(struct http_request *req, struct http_reply *rep) { (void)req, (void)rep; }
static void h_c(struct http_request *req, struct http_reply *rep) { (void)req, (void)rep; }
static void h_d(struct http_request *req, struct http_reply *rep) { (void)req, (void)rep; }

static const struct http_route table[] = {
    {HTTP_GET, "/healthz", h_a, 0, 0},
    {HTTP_GET, "/api/v1/messages/:id", h_b, ROUTE_SESSION, 0},
    {HTTP_PATCH, "/api/v1/messages/:id", h_c, ROUTE_SESSION | ROUTE_JSON, 100},
    {HTTP_GET, "/api/v1/messages/:id/raw", h_d, ROUTE_SESSION, 0},
    {HTTP_GET, "/api/v1/messages/:id/attachments/:n", h_d, ROUTE_SESSION, 0},
};
#define N (sizeof table / sizeof table[0])

static void test_exact_paths(void **state)
{
    (void)state;
    struct http_route_match m;
    assert_int_equal(http_route_find(table, N, HTTP_GET, "/healthz", &m, NULL, 0), ROUTE_FOUND);
    assert_ptr_equal(m.route->fn, h_a);
    assert_int_equal(m.id, 0);
    assert_int_equal(http_route_find(table, N, HTTP_GET, "/healthz/", &m, NULL, 0), ROUTE_NO_PATH);
    assert_int_equal(http_route_find(table, N, HTTP_GET, "/healthzz", &m, NULL, 0), ROUTE_NO_PATH);
    assert_int_equal(http_route_find(table, N, HTTP_GET, "/Healthz", &m, NULL, 0), ROUTE_NO_PATH);
    assert_int_equal(http_route_find(table, N, HTTP_GET, "healthz", &m, NULL, 0), ROUTE_NO_PATH);
    assert_int_equal(http_route_find(table, N, HTTP_GET, "", &m, NULL, 0), ROUTE_NO_PATH);
    assert_int_equal(http_route_find(table, N, HTTP_GET, "//healthz", &m, NULL, 0), ROUTE_NO_PATH);
    assert_int_equal(http_route_find(table, N, HTTP_GET, NULL, &m, NULL, 0), ROUTE_NO_PATH);
}

static void test_id_segments(void **state)
{
    (void)state;
    struct http_route_match m;
    assert_int_equal(http_route_find(table, N, HTTP_GET, "/api/v1/messages/42", &m, NULL, 0), ROUTE_FOUND);
    assert_ptr_equal(m.route->fn, h_b);
    assert_int_equal(m.id, 42);
    assert_int_equal(http_route_find(table, N, HTTP_GET, "/api/v1/messages/42/raw", &m, NULL, 0), ROUTE_FOUND);
    assert_ptr_equal(m.route->fn, h_d);
    assert_int_equal(m.id, 42);
    assert_int_equal(http_route_find(table, N, HTTP_GET, "/api/v1/messages/999999999999999999", &m, NULL, 0),
                     ROUTE_FOUND);
    assert_true(m.id == 999999999999999999LL);
    static const char *const bad[] = {
        "/api/v1/messages/0",   "/api/v1/messages/007", "/api/v1/messages/-1",
        "/api/v1/messages/+1",  "/api/v1/messages/1e3", "/api/v1/messages/",
        "/api/v1/messages/1 ",  "/api/v1/messages/0x10", "/api/v1/messages/1/",
        "/api/v1/messages/1/raw/", "/api/v1/messages/1/rawx", "/api/v1/messages/1234567890123456789",
        "/api/v1/messages",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(http_route_find(table, N, HTTP_GET, bad[i], &m, NULL, 0), ROUTE_NO_PATH);
}

static void test_methods(void **state)
{
    (void)state;
    struct http_route_match m;
    char allow[64];
    assert_int_equal(http_route_find(table, N, HTTP_PATCH, "/api/v1/messages/5", &m, allow, sizeof allow),
                     ROUTE_FOUND);
    assert_ptr_equal(m.route->fn, h_c);
    assert_int_equal(http_route_find(table, N, HTTP_DELETE, "/api/v1/messages/5", &m, allow, sizeof allow),
                     ROUTE_NO_METHOD);
    assert_string_equal(allow, "GET, HEAD, PATCH");
    assert_int_equal(http_route_find(table, N, HTTP_POST, "/healthz", &m, allow, sizeof allow), ROUTE_NO_METHOD);
    assert_string_equal(allow, "GET, HEAD");
    /* HEAD is served by the GET route */
    assert_int_equal(http_route_find(table, N, HTTP_HEAD, "/healthz", &m, allow, sizeof allow), ROUTE_FOUND);
    assert_ptr_equal(m.route->fn, h_a);
    /* 404 leaves Allow empty */
    assert_int_equal(http_route_find(table, N, HTTP_DELETE, "/nope", &m, allow, sizeof allow), ROUTE_NO_PATH);
    assert_string_equal(allow, "");

    assert_int_equal(http_method_parse("GET"), HTTP_GET);
    assert_int_equal(http_method_parse("PATCH"), HTTP_PATCH);
    assert_int_equal(http_method_parse("get"), HTTP_OTHER);
    assert_int_equal(http_method_parse("CONNECT"), HTTP_OTHER);
    assert_int_equal(http_method_parse(NULL), HTTP_OTHER);
    assert_false(http_method_changes_state(HTTP_GET));
    assert_false(http_method_changes_state(HTTP_HEAD));
    assert_true(http_method_changes_state(HTTP_POST));
    assert_true(http_method_changes_state(HTTP_DELETE));
    assert_true(http_method_changes_state(HTTP_OTHER));
}

/* The daemon's table: every API route needs a session but login and the
 * password reset (whose token is the credential), bodies only where JSON is read. */
static void test_daemon_table(void **state)
{
    (void)state;
    struct http_route_match m;
    for (size_t i = 0; i < http_nroutes; i++) {
        const struct http_route *r = &http_routes[i];
        int no_session = strcmp(r->pattern, "/api/v1/login") == 0 ||
                         strncmp(r->pattern, "/api/v1/password-reset/", 23) == 0;
        if (strncmp(r->pattern, "/api/", 5) == 0 && !no_session)
            assert_true(r->flags & ROUTE_SESSION);
        /* the control panel's API and the export: the role is declared in the table */
        int admin = strncmp(r->pattern, "/api/v1/admin/", 14) == 0 || strcmp(r->pattern, "/api/v1/archive/export") == 0;
        assert_int_equal((r->flags & ROUTE_ADMIN) == ROUTE_ADMIN, admin);
        /* JSON bodies are small, but for /send, whose attachments come base64 in the JSON. */
        if (r->flags & ROUTE_JSON)
            assert_true(r->body_max > 0 &&
                        r->body_max <= (strcmp(r->pattern, "/api/v1/send") == 0 ? HTTP_SEND_MAX : HTTP_JSON_MAX));
        /* no route shadows another */
        for (size_t j = 0; j < i; j++)
            assert_false(http_routes[j].method == r->method && strcmp(http_routes[j].pattern, r->pattern) == 0);
    }
    assert_int_equal(http_route_find(http_routes, http_nroutes, HTTP_POST, "/api/v1/login", &m, NULL, 0),
                     ROUTE_FOUND);
    assert_int_equal(http_route_find(http_routes, http_nroutes, HTTP_DELETE, "/api/v1/messages/3", &m, NULL, 0),
                     ROUTE_FOUND);
    assert_int_equal(m.id, 3);
    assert_int_equal(http_route_find(http_routes, http_nroutes, HTTP_GET, "/api/v1/messages/3/raw", &m, NULL, 0),
                     ROUTE_FOUND);
}

/* The web app's folders: any plain file name in js/ and admin/ is routed (a
 * new module needs no C change), nothing that is not one. */
static void test_file_segments(void **state)
{
    (void)state;
    struct http_route_match m;
    const char *found[] = {"/js/app.js", "/js/a-new_module.2.js", "/admin/admin.js", "/admin/panel.css", "/admin/"};
    for (size_t i = 0; i < sizeof found / sizeof *found; i++)
        assert_int_equal(http_route_find(http_routes, http_nroutes, HTTP_GET, found[i], &m, NULL, 0), ROUTE_FOUND);
    const char *not_found[] = {"/js/", "/js/..", "/js/.hidden.js", "/js/a/b.js", "/js/a b.js", "/js/x%2f.js",
                               "/css/app.css", "/js//app.js"};
    for (size_t i = 0; i < sizeof not_found / sizeof *not_found; i++)
        assert_int_equal(http_route_find(http_routes, http_nroutes, HTTP_GET, not_found[i], &m, NULL, 0),
                         ROUTE_NO_PATH);
    char name[140];
    memset(name, 'a', sizeof name);
    memcpy(name, "/js/", 4);
    name[sizeof name - 1] = '\0';
    assert_int_equal(http_route_find(http_routes, http_nroutes, HTTP_GET, name, &m, NULL, 0), ROUTE_NO_PATH);
    /* the files are GET only */
    assert_int_equal(http_route_find(http_routes, http_nroutes, HTTP_POST, "/js/app.js", &m, NULL, 0),
                     ROUTE_NO_METHOD);
}

/* ":s" segments: the admin API's names (addresses, domains, customers),
 * decoded already; up to two a pattern, never empty, never a control
 * character, never longer than an address. */
static void test_s_segments(void **state)
{
    (void)state;
    static const struct http_route t[] = {
        {HTTP_POST, "/api/v1/admin/users/import", h_a, ROUTE_ADMIN, 10},
        {HTTP_GET, "/api/v1/admin/users/:s", h_b, ROUTE_ADMIN, 0},
        {HTTP_DELETE, "/api/v1/admin/users/:s/aliases/:s", h_c, ROUTE_ADMIN, 0},
    };
    struct http_route_match m;
    assert_int_equal(http_route_find(t, 3, HTTP_GET, "/api/v1/admin/users/bob@acme.test", &m, NULL, 0), ROUTE_FOUND);
    assert_ptr_equal(m.route->fn, h_b);
    assert_string_equal(m.arg[0], "bob@acme.test");
    assert_string_equal(m.arg[1], "");
    assert_int_equal(
        http_route_find(t, 3, HTTP_DELETE, "/api/v1/admin/users/bob@acme.test/aliases/b+x@acme.test", &m, NULL, 0),
        ROUTE_FOUND);
    assert_string_equal(m.arg[0], "bob@acme.test");
    assert_string_equal(m.arg[1], "b+x@acme.test");
    /* a literal segment wins where its method is asked for */
    assert_int_equal(http_route_find(t, 3, HTTP_POST, "/api/v1/admin/users/import", &m, NULL, 0), ROUTE_FOUND);
    assert_ptr_equal(m.route->fn, h_a);
    char allow[64];
    assert_int_equal(http_route_find(t, 3, HTTP_PUT, "/api/v1/admin/users/import", &m, allow, sizeof allow),
                     ROUTE_NO_METHOD);
    assert_string_equal(allow, "POST, GET, HEAD");
    const char *bad[] = {"/api/v1/admin/users/", "/api/v1/admin/users//aliases/x", "/api/v1/admin/users/a\nb",
                         "/api/v1/admin/users/a\x7f"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(http_route_find(t, 3, HTTP_GET, bad[i], &m, NULL, 0), ROUTE_NO_PATH);
    char longer[HTTP_ROUTE_ARG_MAX + 40];
    memset(longer, 'a', sizeof longer);
    memcpy(longer, "/api/v1/admin/users/", 20);
    longer[20 + HTTP_ROUTE_ARG_MAX] = '\0';
    assert_int_equal(http_route_find(t, 3, HTTP_GET, longer, &m, NULL, 0), ROUTE_NO_PATH);
    longer[20 + HTTP_ROUTE_ARG_MAX - 1] = '\0';
    assert_int_equal(http_route_find(t, 3, HTTP_GET, longer, &m, NULL, 0), ROUTE_FOUND);
    assert_int_equal(strlen(m.arg[0]), HTTP_ROUTE_ARG_MAX - 1);
}

/* The roles' table: users nothing, admins their customer's administration,
 * operators also the service's. */
static void test_roles(void **state)
{
    (void)state;
    const char *code, *msg;
    assert_int_equal(http_role_check(ROLE_USER, ROUTE_SESSION, HTTP_POST, &code, &msg), 0);
    assert_int_equal(http_role_check(ROLE_USER, ROUTE_ADMIN, HTTP_GET, &code, &msg), 403);
    assert_string_equal(code, "admin_only");
    assert_int_equal(http_role_check(ROLE_ADMIN, ROUTE_ADMIN, HTTP_GET, &code, &msg), 0);
    assert_int_equal(http_role_check(ROLE_ADMIN, ROUTE_ADMIN, HTTP_DELETE, &code, &msg), 0);
    assert_int_equal(http_role_check(ROLE_ADMIN, ROUTE_OPERATOR, HTTP_GET, &code, &msg), 403);
    assert_string_equal(code, "operator_only");
    assert_int_equal(http_role_check(ROLE_USER, ROUTE_OPERATOR, HTTP_GET, &code, &msg), 403);
    assert_int_equal(http_role_check(ROLE_OPERATOR, ROUTE_OPERATOR, HTTP_POST, &code, &msg), 0);
    assert_int_equal(http_role_check(ROLE_OPERATOR, ROUTE_ADMIN, HTTP_PATCH, &code, &msg), 0);
    assert_int_equal(http_role_check(99, ROUTE_ADMIN, HTTP_GET, &code, &msg), 403);
}

static void test_n_segments(void **state)
{
    (void)state;
    struct http_route_match m;
    assert_int_equal(http_route_find(table, N, HTTP_GET, "/api/v1/messages/42/attachments/0", &m, NULL, 0),
                     ROUTE_FOUND);
    assert_int_equal(m.id, 42);
    assert_int_equal(m.n, 0);
    assert_int_equal(http_route_find(table, N, HTTP_GET, "/api/v1/messages/42/attachments/17", &m, NULL, 0),
                     ROUTE_FOUND);
    assert_int_equal(m.n, 17);
    /* ":n" allows 0 but no leading zeros, signs or empty segments; ":id" still refuses 0. */
    assert_int_equal(http_route_find(table, N, HTTP_GET, "/api/v1/messages/42/attachments/01", &m, NULL, 0),
                     ROUTE_NO_PATH);
    assert_int_equal(http_route_find(table, N, HTTP_GET, "/api/v1/messages/42/attachments/-1", &m, NULL, 0),
                     ROUTE_NO_PATH);
    assert_int_equal(http_route_find(table, N, HTTP_GET, "/api/v1/messages/42/attachments/", &m, NULL, 0),
                     ROUTE_NO_PATH);
    assert_int_equal(http_route_find(table, N, HTTP_GET, "/api/v1/messages/0/attachments/0", &m, NULL, 0),
                     ROUTE_NO_PATH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_paths),
        cmocka_unit_test(test_id_segments),
        cmocka_unit_test(test_n_segments),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_daemon_table),
        cmocka_unit_test(test_file_segments),
        cmocka_unit_test(test_s_segments),
        cmocka_unit_test(test_roles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
