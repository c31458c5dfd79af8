/*
 * test_http_static.c — the webmail's file serving (http_static.c): which URL
 * paths name a file under web/ and with which Content-Type, that nothing else
 * (dot segments, hidden files, empty segments, odd characters, unknown
 * extensions) does, and that every static route of the daemon's table names a
 * file that exists in the source tree's web/.
 */
#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "http/http_internal.h"

static void test_good_paths(void **state)
{
    (void)state;
    char rel[256];
    const char *type = NULL;
    assert_int_equal(http_static_path("/", rel, sizeof rel, &type), 0);
    assert_string_equal(rel, "index.html");
    assert_string_equal(type, "text/html; charset=utf-8");
    assert_int_equal(http_static_path("/js/app.js", rel, sizeof rel, &type), 0);
    assert_string_equal(rel, "js/app.js");
    assert_string_equal(type, "text/javascript; charset=utf-8");
    assert_int_equal(http_static_path("/app.css", rel, sizeof rel, &type), 0);
    assert_string_equal(type, "text/css; charset=utf-8");
    assert_int_equal(http_static_path("/favicon.svg", rel, sizeof rel, &type), 0);
    assert_string_equal(type, "image/svg+xml");
    assert_int_equal(http_static_path("/a-b_c/d.e.js", rel, sizeof rel, NULL), 0);
    assert_string_equal(rel, "a-b_c/d.e.js");
    /* a directory is its index.html (the control panel at /admin/) */
    assert_int_equal(http_static_path("/admin/", rel, sizeof rel, &type), 0);
    assert_string_equal(rel, "admin/index.html");
    assert_string_equal(type, "text/html; charset=utf-8");
}

static void test_bad_paths(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "index.html", "/..", "/../etc/passwd", "/js/../index.html", "/js/..", "/./index.html",
        "/.git/config", "/js/.hidden.js", "//index.html", "/js//app.js", "/js", "/index", "/../",
        "/.git/", "//", "/index.php", "/index.HTML", "/a b.js", "/a%2e.js", "/a\\b.js", "/a:b.js",
        "/\xc3\xa9.js", "/index.html?x=1",
    };
    char rel[256];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (http_static_path(bad[i], rel, sizeof rel, NULL) != -1)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    assert_int_equal(http_static_path(NULL, rel, sizeof rel, NULL), -1);
    /* rel too small: refused, not cut */
    char small[8];
    assert_int_equal(http_static_path("/js/app.js", small, sizeof small, NULL), -1);
    char longpath[400] = "/";
    memset(longpath + 1, 'a', 300);
    strcpy(longpath + 301, ".js");
    assert_int_equal(http_static_path(longpath, rel, sizeof rel, NULL), -1);
}

/* Every route to http_h_static names a file of web/, and every file of a
 * ":file" folder (web/js/, web/admin/) is routed there: the table and the
 * directory stay in step, and a new module needs no C change. The source tree
 * is found from this file's path. */
static void test_routes_name_existing_files(void **state)
{
    (void)state;
    char root[1024];
    snprintf(root, sizeof root, "%s", __FILE__);
    char *cut = strstr(root, "tests/unit/");
    if (!cut)
        fail_msg("cannot find the source tree from %s", __FILE__);
    *cut = '\0';
    size_t n = 0;
    for (size_t i = 0; i < http_nroutes; i++) {
        if (http_routes[i].fn != http_h_static)
            continue;
        n++;
        assert_int_equal(http_routes[i].method, HTTP_GET);
        assert_int_equal(http_routes[i].flags, 0);
        char rel[256], path[1400];
        const char *file = strstr(http_routes[i].pattern, ":file");
        if (file) {
            /* every plain file of the folder routes here and is a path the handler serves */
            char folder[256], url[600];
            snprintf(folder, sizeof folder, "%.*s", (int)(file - http_routes[i].pattern), http_routes[i].pattern);
            snprintf(path, sizeof path, "%sweb%s", root, folder);
            DIR *d = opendir(path);
            if (!d)
                fail_msg("route %s: no folder %s", http_routes[i].pattern, path);
            size_t files = 0;
            for (struct dirent *e; (e = readdir(d)) != NULL;) {
                if (e->d_name[0] == '.')
                    continue;
                snprintf(url, sizeof url, "%s%s", folder, e->d_name);
                struct http_route_match m;
                assert_int_equal(http_route_find(http_routes, http_nroutes, HTTP_GET, url, &m, NULL, 0), ROUTE_FOUND);
                assert_ptr_equal(m.route->fn, http_h_static);
                if (http_static_path(url, rel, sizeof rel, NULL) != 0)
                    fail_msg("%s is routed but not servable", url);
                files++;
            }
            closedir(d);
            assert_true(files >= 1);
            continue;
        }
        assert_int_equal(http_static_path(http_routes[i].pattern, rel, sizeof rel, NULL), 0);
        snprintf(path, sizeof path, "%sweb/%s", root, rel);
        if (access(path, R_OK) != 0)
            fail_msg("route %s: %s is missing", http_routes[i].pattern, path);
    }
    assert_true(n >= 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_paths),
        cmocka_unit_test(test_bad_paths),
        cmocka_unit_test(test_routes_name_existing_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
