/*
 * test_directory_import.c — user import from CSV: the reader (csv_import.c,
 * pure: quoting, line ends, the BOM, the header, the limits, line numbers)
 * and the import on a real store (user_import.c): the report names each bad
 * line, duplicates report the second one, a re-import updates instead of
 * duplicating, a store failure half-way leaves nothing imported, and what an
 * admin (not an operator) may not do.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_directory_fixture.h"
#include "util/log.h"

/* ---------------------------------------------------------------- the reader */

static void parse_ok(const char *csv, struct csv_import_file *f)
{
    char err[256] = "";
    if (csv_import_parse(csv, strlen(csv), f, err, sizeof err) != 0)
        fail_msg("parse failed: %s", err);
}

static void parse_refused(const char *csv, size_t len, const char *message)
{
    struct csv_import_file f;
    char err[256] = "";
    assert_int_equal(csv_import_parse(csv, len, &f, err, sizeof err), -1);
    assert_string_equal(err, message);
    assert_null(f.rows);
    assert_null(f.text);
}

static void test_parse_basic(void **state)
{
    (void)state;
    struct csv_import_file f;
    parse_ok("email,name,role\nbob@acme.test,Bob,admin\ncarol@acme.test,,\n", &f);
    assert_int_equal(f.columns, 1u << CSV_EMAIL | 1u << CSV_NAME | 1u << CSV_ROLE);
    assert_int_equal(f.nrows, 2);
    assert_int_equal(f.rows[0].line, 2);
    assert_string_equal(f.rows[0].field[CSV_EMAIL], "bob@acme.test");
    assert_string_equal(f.rows[0].field[CSV_NAME], "Bob");
    assert_string_equal(f.rows[0].field[CSV_ROLE], "admin");
    assert_null(f.rows[0].field[CSV_PASSWORD]); /* no such column */
    assert_null(f.rows[0].error);
    assert_int_equal(f.rows[1].line, 3);
    assert_string_equal(f.rows[1].field[CSV_NAME], "");
    csv_import_file_free(&f);
}

/* Columns in any order, any case, spaces around; no final line end. */
static void test_parse_header_order(void **state)
{
    (void)state;
    struct csv_import_file f;
    parse_ok(" Password ,ALIASES,Email,active,alt_email\nse cret ,a@x.test b@x.test,bob@acme.test,yes,b@home.test", &f);
    assert_int_equal(f.nrows, 1);
    assert_string_equal(f.rows[0].field[CSV_EMAIL], "bob@acme.test");
    assert_string_equal(f.rows[0].field[CSV_PASSWORD], "se cret "); /* as written: trimming is the caller's */
    assert_string_equal(f.rows[0].field[CSV_ALIASES], "a@x.test b@x.test");
    assert_string_equal(f.rows[0].field[CSV_ACTIVE], "yes");
    assert_string_equal(f.rows[0].field[CSV_ALT_EMAIL], "b@home.test");
    assert_null(f.rows[0].field[CSV_NAME]);
    csv_import_file_free(&f);
}

/* RFC 4180 quoting: commas, doubled quotes and line ends inside quotes; the
 * next record's number counts the lines the quoted one spanned. */
static void test_parse_quoting(void **state)
{
    (void)state;
    struct csv_import_file f;
    parse_ok("email,name\r\n"
             "bob@acme.test,\"Builder, Bob\"\r\n"
             "\"carol@acme.test\",\"Carol \"\"CC\"\" Clark\"\r\n"
             "dave@acme.test,\"two\r\nlines\"\r\n"
             "eve@acme.test,\"\"\r\n",
             &f);
    assert_int_equal(f.nrows, 4);
    assert_string_equal(f.rows[0].field[CSV_NAME], "Builder, Bob");
    assert_string_equal(f.rows[1].field[CSV_EMAIL], "carol@acme.test");
    assert_string_equal(f.rows[1].field[CSV_NAME], "Carol \"CC\" Clark");
    assert_int_equal(f.rows[2].line, 4);
    assert_string_equal(f.rows[2].field[CSV_NAME], "two\r\nlines");
    assert_int_equal(f.rows[3].line, 6);
    assert_string_equal(f.rows[3].field[CSV_NAME], "");
    csv_import_file_free(&f);
}

/* A UTF-8 BOM is skipped; LF, CRLF and a lone CR all end lines; blank lines
 * are no rows but count as lines. */
static void test_parse_bom_line_ends(void **state)
{
    (void)state;
    struct csv_import_file f;
    parse_ok("\xef\xbb\xbf"
             "email\r\n"
             "a@acme.test\n"
             "\n"
             "b@acme.test\r"
             "c@acme.test\r\n"
             "\r\n"
             "d@acme.test\n\n",
             &f);
    assert_int_equal(f.nrows, 4);
    const unsigned lines[] = {2, 4, 5, 7};
    const char *emails[] = {"a@acme.test", "b@acme.test", "c@acme.test", "d@acme.test"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(f.rows[i].line, lines[i]);
        assert_string_equal(f.rows[i].field[CSV_EMAIL], emails[i]);
    }
    csv_import_file_free(&f);
    /* A quoted empty value is a record, not a blank line. */
    parse_ok("email\n\"\"\n", &f);
    assert_int_equal(f.nrows, 1);
    assert_string_equal(f.rows[0].field[CSV_EMAIL], "");
    csv_import_file_free(&f);
}

/* Records that cannot be read are rows with their error and no fields; the
 * records after them are read as usual. */
static void test_parse_bad_records(void **state)
{
    (void)state;
    struct csv_import_file f;
    static const char csv[] = "email,name\n"
                              "a@acme.test\n"                 /* 2: too few */
                              "b@acme.test,B,extra\n"         /* 3: too many */
                              "c@acme.test,C \"the\" C\n"     /* 4: stray quote */
                              "\"d@acme.test\"x,D\n"          /* 5: text after the quote */
                              "e@acme.test,\xff\xfe\n"        /* 6: not UTF-8 */
                              "f@acme.test,F\n"               /* 7: fine */
                              "g@acme.test,\"open\nquote\n";  /* 8: never closed */
    parse_ok(csv, &f);
    assert_int_equal(f.nrows, 7);
    assert_string_equal(f.rows[0].error, "fewer fields than the header has columns");
    assert_string_equal(f.rows[1].error, "more fields than the header has columns (quote a field with a comma)");
    assert_string_equal(f.rows[2].error,
                        "a quote inside a field that does not start with one (quote the whole field)");
    assert_string_equal(f.rows[3].error, "text after a closing quote (a quote inside a field is written \"\")");
    assert_string_equal(f.rows[4].error, "the line is not UTF-8 text (save the file as \"CSV UTF-8\")");
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(f.rows[i].line, i + 2);
        assert_null(f.rows[i].field[CSV_EMAIL]);
    }
    assert_null(f.rows[5].error);
    assert_int_equal(f.rows[5].line, 7);
    assert_string_equal(f.rows[5].field[CSV_NAME], "F");
    assert_int_equal(f.rows[6].line, 8);
    assert_string_equal(f.rows[6].error, "a quoted field is not closed (a missing \")");
    csv_import_file_free(&f);

    /* A NUL byte inside a field. */
    static const char nul[] = "email,name\na@acme.test,x\0y\nb@acme.test,ok\n";
    char err[128];
    assert_int_equal(csv_import_parse(nul, sizeof nul - 1, &f, err, sizeof err), 0);
    assert_int_equal(f.nrows, 2);
    assert_string_equal(f.rows[0].error, "a NUL byte in a field");
    assert_null(f.rows[1].error);
    csv_import_file_free(&f);
}

static void test_parse_refused(void **state)
{
    (void)state;
    parse_refused("", 0, "the file is empty (a header line is needed)");
    parse_refused("\xef\xbb\xbf", 3, "the file is empty (a header line is needed)");
    parse_refused("\nbob@acme.test\n", 15,
                  "line 1 must be the header, e.g. \"email,name,aliases,role,active\"");
    parse_refused("email,nmae\nbob@acme.test,Bob\n", 29,
                  "unknown column \"nmae\" in the header (columns: email, name, alt_email, aliases, role, active, "
                  "password)");
    parse_refused("email,\"x\ny\"\n", 12,
                  "unknown column \"x?y\" in the header (columns: email, name, alt_email, aliases, role, active, "
                  "password)");
    parse_refused("email,name,Email\n", 17, "column \"email\" appears twice in the header");
    parse_refused("name,role\nBob,user\n", 19, "the header has no \"email\" column");
    parse_refused("email,\"name\n", 12, "line 1 (the header): a quoted field is not closed (a missing \")");

    /* The limits: bytes, and users. */
    size_t big = CSV_IMPORT_BYTES_MAX + 1;
    char *buf = malloc(big);
    assert_non_null(buf);
    memset(buf, 'a', big);
    parse_refused(buf, big, "the file is larger than 10 MB: split it");
    free(buf);

    size_t rows = CSV_IMPORT_ROWS_MAX;
    buf = malloc(6 + (rows + 1) * 6 + 1);
    assert_non_null(buf);
    size_t n = 0;
    n += (size_t)sprintf(buf + n, "email\n");
    for (size_t i = 0; i < rows; i++)
        n += (size_t)sprintf(buf + n, "a@b.c\n");
    struct csv_import_file f;
    char err[128];
    assert_int_equal(csv_import_parse(buf, n, &f, err, sizeof err), 0); /* exactly the limit */
    assert_int_equal(f.nrows, rows);
    csv_import_file_free(&f);
    n += (size_t)sprintf(buf + n, "a@b.c\n");
    parse_refused(buf, n, "the file has more than 50000 users: split it");
    free(buf);
}

static void test_next_word(void **state)
{
    (void)state;
    const char *pos = "  a@x.test,b@x.test\t c@x.test , ";
    char w[16];
    assert_int_equal(csv_import_next_word(&pos, w, sizeof w), 1);
    assert_string_equal(w, "a@x.test");
    assert_int_equal(csv_import_next_word(&pos, w, sizeof w), 1);
    assert_string_equal(w, "b@x.test");
    assert_int_equal(csv_import_next_word(&pos, w, sizeof w), 1);
    assert_string_equal(w, "c@x.test");
    assert_int_equal(csv_import_next_word(&pos, w, sizeof w), 0);
    pos = "much-too-long@x.test";
    assert_int_equal(csv_import_next_word(&pos, w, sizeof w), -1);
    assert_int_equal(csv_import_next_word(&pos, w, sizeof w), 0);
}

/* ---------------------------------------------------------------- the import */

static int setup(void **state)
{
    return directory_fixture_setup(state, "test_directory_import");
}

/* acme (acme.test, acme.example), other (other.test); a user and an alias of
 * other's; an operator in acme.test. */
static void populate(struct fixture *f)
{
    assert_ok(directory_customer_add(f->st, "acme", ERR));
    assert_ok(directory_customer_add(f->st, "other", ERR));
    assert_ok(directory_domain_add(f->st, "acme.test", "acme", "mx.acme.test", ERR));
    assert_ok(directory_domain_add(f->st, "acme.example", "acme", "mx.acme.test", ERR));
    assert_ok(directory_domain_add(f->st, "other.test", "other", "mx.other.test", ERR));
    assert_ok(directory_user_add(f->st, "dave@other.test", NULL, NULL, NULL, 1, ERR));
    assert_ok(directory_user_add(f->st, "olga@acme.test", "Olga", "operator", NULL, 1, ERR));
    assert_ok(directory_alias_add(f->st, "olga@acme.test", "ops@acme.test", ERR));
    assert_ok(directory_alias_add(f->st, "olga@acme.test", "help@acme.test", ERR));
}

/* Imports csv into domain as max_role; returns the report as JSON text
 * (compact, keys sorted) or fails the test. */
static char *import(struct fixture *f, const char *domain, const char *csv, int max_role)
{
    struct directory_import *imp = NULL;
    f->err[0] = 0;
    int rc = directory_user_import(f->st, domain, csv, strlen(csv), max_role, &imp, ERR);
    if (rc != 0)
        fail_msg("import failed (%d): %s", rc, f->err);
    json_t *j = directory_import_report_json(directory_import_report(imp));
    assert_non_null(j);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    directory_import_free(imp);
    return s;
}

static void assert_report(char *got, const char *want)
{
    assert_string_equal(got, want);
    free(got);
}

static struct store_user user(struct fixture *f, const char *email)
{
    struct store_user u;
    if (store_user_get(f->st, email, &u) != STORE_OK)
        fail_msg("no user %s", email);
    return u;
}

static int64_t alias_owner(struct fixture *f, const char *alias)
{
    int64_t owner = 0;
    return store_alias_get(f->st, alias, &owner) == STORE_OK ? owner : 0;
}

static int64_t count(struct fixture *f, const char *sql)
{
    return tmp_raw_count(&f->t, sql);
}

/* Good, bad and duplicate lines: each bad one is named with its line and
 * reason, the good ones are in. */
static void test_import_report(void **state)
{
    struct fixture *f = *state;
    populate(f);
    static const char csv[] =
        "email,name,aliases,role,active,alt_email\n"
        "bob@acme.test,\"Builder, Bob\",bob.b@acme.test b@acme.example,admin,yes,bob@home.example\n" /* 2 */
        "carol@acme.test,Carol,,,no,\n"                                                          /* 3 */
        "not-an-address,X,,,,\n"                                                                 /* 4 */
        "zed@other.test,Z,,,,\n"                                                                 /* 5 */
        "BOB@acme.test,Again,,,,\n"                                                              /* 6 */
        "erin@acme.test,Erin,bob.b@acme.test,,,\n"                                               /* 7 */
        "fred@acme.test,Fred,,boss,,\n"                                                          /* 8 */
        "gina@acme.test,Gina,,,maybe,\n"                                                         /* 9 */
        "hans@acme.test,Hans,,,,hans@acme.test\n"                                                /* 10 */
        "ida@acme.test,Ida,dave@other.test,,,\n"                                                 /* 11 */
        "jo@acme.test,Jo,ops@acme.test,,,\n"                                                     /* 12 */
        "kim@acme.test,Kim,k@other.test,,,\n"                                                    /* 13 */
        "lea@acme.test,Lea,l@nowhere.test,,,\n"                                                  /* 14 */
        "help@acme.test,Help,,,,\n"                                                               /* 15 */
        "max@acme.test,Max,olga@acme.test,,,\n"                                                  /* 16 */
        "nina@acme.test,\"bad\x01name\",,,,\n"                                                   /* 17 */
        "oskar@acme.test,Oskar,,,,\"unclosed\n";                                                 /* 18 */
    assert_report(import(f, "acme.test", csv, ROLE_OPERATOR),
                  "{\"errors\":["
                  "{\"error\":\"\\\"not-an-address\\\" is not a valid address\",\"line\":4},"
                  "{\"error\":\"zed@other.test is not in domain acme.test\",\"line\":5},"
                  "{\"error\":\"bob@acme.test is already on line 2\",\"line\":6},"
                  "{\"error\":\"erin@acme.test: alias bob.b@acme.test is already on line 2\",\"line\":7},"
                  "{\"error\":\"fred@acme.test: unknown role \\\"boss\\\" (expected user, admin or operator)\",\"line\":8},"
                  "{\"error\":\"gina@acme.test: active must be yes or no, not \\\"maybe\\\"\",\"line\":9},"
                  "{\"error\":\"hans@acme.test: the alternate address must be another address\",\"line\":10},"
                  "{\"error\":\"alias dave@other.test: domain other.test belongs to another customer than user ida@acme.test\",\"line\":11},"
                  "{\"error\":\"alias ops@acme.test already exists (for olga@acme.test)\",\"line\":12},"
                  "{\"error\":\"alias k@other.test: domain other.test belongs to another customer than user kim@acme.test\",\"line\":13},"
                  "{\"error\":\"alias l@nowhere.test: domain nowhere.test is not hosted\",\"line\":14},"
                  "{\"error\":\"help@acme.test is already an alias of olga@acme.test\",\"line\":15},"
                  "{\"error\":\"alias olga@acme.test: the address is a user's own address\",\"line\":16},"
                  "{\"error\":\"nina@acme.test: the name is too long or has control characters\",\"line\":17},"
                  "{\"error\":\"a quoted field is not closed (a missing \\\")\",\"line\":18}"
                  "],\"imported\":2,\"updated\":0}");
    struct store_user bob = user(f, "bob@acme.test");
    assert_string_equal(bob.name, "Builder, Bob");
    assert_int_equal(bob.role, ROLE_ADMIN);
    assert_int_equal(bob.active, 1);
    assert_string_equal(bob.alt_email, "bob@home.example");
    assert_int_equal(alias_owner(f, "bob.b@acme.test"), bob.id);
    assert_int_equal(alias_owner(f, "b@acme.example"), bob.id);
    struct store_user carol = user(f, "carol@acme.test");
    assert_int_equal(carol.active, 0);
    assert_int_equal(carol.role, ROLE_USER);
    /* The refused lines left nothing behind (ida's user row went with her alias). */
    assert_int_equal(count(f, "SELECT count(*) FROM users WHERE domain_id = 1"), 3); /* olga, bob, carol */
    assert_int_equal(count(f, "SELECT count(*) FROM aliases"), 4);
}

/* A re-import updates: no duplicates, the columns present change, the
 * aliases become the file's, an unchanged password keeps its hash (and the
 * user's sessions), a new one replaces it. */
static void test_import_updates(void **state)
{
    struct fixture *f = *state;
    populate(f);
    static const char first[] = "email,name,aliases,password\n"
                                "bob@acme.test,Bob,bob.b@acme.test b@acme.example,correct-horse\n"
                                "carol@acme.test,Carol,c@acme.test,\n";
    assert_report(import(f, "acme.test", first, ROLE_OPERATOR), "{\"errors\":[],\"imported\":2,\"updated\":0}");
    struct store_user bob1 = user(f, "bob@acme.test");
    assert_true(password_verify(bob1.pw_hash, "correct-horse"));
    struct store_user carol1 = user(f, "carol@acme.test");
    assert_string_equal(carol1.pw_hash, "");

    /* The same file again: two updates, nothing new, the hash kept. */
    assert_report(import(f, "acme.test", first, ROLE_OPERATOR), "{\"errors\":[],\"imported\":0,\"updated\":2}");
    struct store_user bob2 = user(f, "bob@acme.test");
    assert_int_equal(bob2.id, bob1.id);
    assert_string_equal(bob2.pw_hash, bob1.pw_hash);
    assert_int_equal(count(f, "SELECT count(*) FROM users"), 4);
    assert_int_equal(count(f, "SELECT count(*) FROM aliases"), 5);

    /* Changed: bob's aliases, name and password; carol's name cleared; role
     * and active given for bob only (an empty cell leaves carol's alone). */
    assert_ok(directory_user_set(f->st, "carol@acme.test",
                                 &(struct directory_user_changes){.active = -1, .suspended = -1, .role = "admin"}, ERR));
    static const char second[] = "Email,Name,Aliases,Password,Role,Active\n"
                                 "bob@acme.test,Robert,b@acme.example b2@acme.example,battery-staple,admin,yes\n"
                                 "carol@acme.test,,c@acme.test,,,\n";
    assert_report(import(f, "acme.test", second, ROLE_OPERATOR), "{\"errors\":[],\"imported\":0,\"updated\":2}");
    struct store_user bob3 = user(f, "bob@acme.test");
    assert_string_equal(bob3.name, "Robert");
    assert_int_equal(bob3.role, ROLE_ADMIN);
    assert_int_equal(bob3.active, 1);
    assert_string_not_equal(bob3.pw_hash, bob1.pw_hash);
    assert_true(password_verify(bob3.pw_hash, "battery-staple"));
    assert_int_equal(alias_owner(f, "bob.b@acme.test"), 0);
    assert_int_equal(alias_owner(f, "b@acme.example"), bob3.id);
    assert_int_equal(alias_owner(f, "b2@acme.example"), bob3.id);
    struct store_user carol3 = user(f, "carol@acme.test");
    assert_string_equal(carol3.name, "");
    assert_int_equal(carol3.role, ROLE_ADMIN);
    assert_int_equal(alias_owner(f, "c@acme.test"), carol3.id);

    /* Without the aliases column, aliases stay. active=no deactivates. */
    assert_report(import(f, "acme.test", "email,active\nbob@acme.test,No\n", ROLE_OPERATOR),
                  "{\"errors\":[],\"imported\":0,\"updated\":1}");
    assert_int_equal(user(f, "bob@acme.test").active, 0);
    assert_int_equal(alias_owner(f, "b2@acme.example"), bob3.id);
    assert_string_equal(user(f, "bob@acme.test").name, "Robert");
}

/* The password policy of the domain's customer applies to each line. */
static void test_import_password_policy(void **state)
{
    struct fixture *f = *state;
    populate(f);
    struct directory_policy_changes ch = {.min_length = 10, .upper = -1, .lower = -1, .digit = 1, .special = -1};
    assert_ok(directory_password_policy_set(f->st, "acme", &ch, NULL, ERR));
    assert_report(import(f, "acme.test", "email,password\nbob@acme.test,short1\ncarol@acme.test,longenough1\n",
                         ROLE_OPERATOR),
                  "{\"errors\":[{\"error\":\"bob@acme.test: password must be at least 10 characters\",\"line\":2}],"
                  "\"imported\":1,\"updated\":0}");
    assert_true(password_verify(user(f, "carol@acme.test").pw_hash, "longenough1"));
}

/* An admin may not make operators nor change one. */
static void test_import_admin_limits(void **state)
{
    struct fixture *f = *state;
    populate(f);
    assert_report(import(f, "acme.test",
                         "email,role,name\n"
                         "bob@acme.test,operator,Bob\n"
                         "olga@acme.test,user,Olga\n"
                         "carol@acme.test,admin,Carol\n",
                         ROLE_ADMIN),
                  "{\"errors\":["
                  "{\"error\":\"bob@acme.test: only an operator can give the role operator\",\"line\":2},"
                  "{\"error\":\"olga@acme.test is an operator: only an operator can change them\",\"line\":3}"
                  "],\"imported\":1,\"updated\":0}");
    assert_int_equal(user(f, "olga@acme.test").role, ROLE_OPERATOR);
    assert_int_equal(user(f, "carol@acme.test").role, ROLE_ADMIN);
}

/* The directory owns its users: a file does not change them (the next sync
 * would undo it). */
static void test_import_leaves_directory_users(void **state)
{
    struct fixture *f = *state;
    populate(f);
    assert_ok(directory_user_add(f->st, "lena@acme.test", "Lena", NULL, NULL, 1, ERR));
    assert_int_equal(store_ldap_user_set(f->st, user(f, "lena@acme.test").id, "uid=lena,dc=acme", 0), STORE_OK);
    assert_report(import(f, "acme.test", "email,name\nlena@acme.test,Other\nnew@acme.test,New\n", ROLE_OPERATOR),
                  "{\"errors\":["
                  "{\"error\":\"lena@acme.test comes from the directory (LDAP): change it there\",\"line\":2}"
                  "],\"imported\":1,\"updated\":0}");
    assert_string_equal(user(f, "lena@acme.test").name, "Lena");
}

static void test_import_refused_whole(void **state)
{
    struct fixture *f = *state;
    populate(f);
    struct directory_import *imp = (void *)1;
    assert_refused_as(directory_user_import(f->st, "nowhere.test", "email\n", 6, ROLE_OPERATOR, &imp, ERR),
                      DIR_NOTFOUND, "domain nowhere.test is not hosted");
    assert_null(imp);
    assert_refused_as(directory_user_import(f->st, "acme.test", "mail\nbob@acme.test\n", 19, ROLE_OPERATOR, &imp, ERR),
                      DIR_INVALID,
                      "unknown column \"mail\" in the header (columns: email, name, alt_email, aliases, role, active, "
                      "password)");
    assert_refused_as(directory_user_import(f->st, "bad domain", "email\n", 6, ROLE_OPERATOR, &imp, ERR), DIR_INVALID,
                      "\"bad domain\" is not a valid domain name");
    assert_int_equal(count(f, "SELECT count(*) FROM users"), 2);
}

/* A store failure half-way (a trigger refuses the third user) rolls every
 * line back, the ones before it included. */
static void test_import_store_failure(void **state)
{
    struct fixture *f = *state;
    populate(f);
    tmp_raw_exec(&f->t, tmp_is_pg(&f->t)
                            ? "CREATE FUNCTION fail_carol() RETURNS trigger LANGUAGE plpgsql AS "
                              "$$ BEGIN RAISE EXCEPTION 'forced failure'; END $$;"
                              "CREATE TRIGGER fail_carol BEFORE INSERT ON users FOR EACH ROW "
                              "WHEN (NEW.email = 'carol@acme.test') EXECUTE FUNCTION fail_carol();"
                            : "CREATE TRIGGER fail_carol BEFORE INSERT ON users WHEN NEW.email = 'carol@acme.test' "
                              "BEGIN SELECT RAISE(ABORT, 'forced failure'); END;");
    static const char csv[] = "email,name,aliases\n"
                              "olga@acme.test,Olga Changed,\n"
                              "bob@acme.test,Bob,bob.b@acme.test\n"
                              "carol@acme.test,Carol,\n"
                              "dan@acme.test,Dan,\n";
    struct directory_import *imp = NULL;
    f->err[0] = 0;
    assert_int_equal(directory_user_import(f->st, "acme.test", csv, sizeof csv - 1, ROLE_OPERATOR, &imp, ERR),
                     DIR_STORE);
    assert_string_equal(f->err,
                        "user import into acme.test: line 4: carol@acme.test: store error; nothing was imported");
    assert_null(imp);
    assert_int_equal(count(f, "SELECT count(*) FROM users"), 2);
    assert_int_equal(store_user_get(f->st, "bob@acme.test", &(struct store_user){0}), STORE_NOTFOUND);
    assert_int_equal(alias_owner(f, "bob.b@acme.test"), 0);
    assert_string_equal(user(f, "olga@acme.test").name, "Olga");
    assert_int_equal(alias_owner(f, "ops@acme.test"), user(f, "olga@acme.test").id); /* not replaced */
    assert_false(store_in_transaction(f->st));

    /* Without the trigger the same file goes in. */
    tmp_raw_exec(&f->t, tmp_is_pg(&f->t) ? "DROP TRIGGER fail_carol ON users" : "DROP TRIGGER fail_carol");
    assert_report(import(f, "acme.test", csv, ROLE_OPERATOR), "{\"errors\":[],\"imported\":3,\"updated\":1}");
    assert_int_equal(alias_owner(f, "ops@acme.test"), 0); /* olga's aliases are the file's: none */
}

/* Inside a caller's transaction (a writer job) the import is a savepoint:
 * the caller's other work stays. */
static void test_import_in_transaction(void **state)
{
    struct fixture *f = *state;
    populate(f);
    static const char csv[] = "email,password\nbob@acme.test,correct-horse\n";
    struct directory_import *imp = NULL;
    assert_ok(directory_import_prepare(f->st, "acme.test", csv, sizeof csv - 1, ROLE_ADMIN, &imp, ERR));
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_ok(directory_customer_add(f->st, "third", ERR));
    assert_ok(directory_import_apply(f->st, imp, ERR));
    assert_true(store_in_transaction(f->st));
    assert_int_equal(store_commit(f->st), STORE_OK);
    assert_int_equal(directory_import_report(imp)->imported, 1);
    directory_import_free(imp);
    assert_true(password_verify(user(f, "bob@acme.test").pw_hash, "correct-horse"));
    assert_int_equal(store_customer_get(f->st, "third", &(struct store_customer){0}), STORE_OK);
}

int main(void)
{
    log_init("test_directory_import", "test", 1);
    log_set_level(LOG_LEVEL_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_basic),
        cmocka_unit_test(test_parse_header_order),
        cmocka_unit_test(test_parse_quoting),
        cmocka_unit_test(test_parse_bom_line_ends),
        cmocka_unit_test(test_parse_bad_records),
        cmocka_unit_test(test_parse_refused),
        cmocka_unit_test(test_next_word),
        cmocka_unit_test_setup_teardown(test_import_report, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_updates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_password_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_admin_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_refused_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_leaves_directory_users, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_store_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_in_transaction, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
