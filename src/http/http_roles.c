/*
 * http_roles.c — what each role may do with the routes that ask for one: the
 * one table of roles of the HTTP API (issue 11, item 7).
 *
 * A route says in the table of http_routes.c what it needs (ROUTE_ADMIN: a
 * customer's administration; ROUTE_OPERATOR: running the service); this file
 * says which roles have it. Reading and changing are separate grants, so a
 * read-only role (an auditor) is one more row here, not a change to every
 * handler. Which customer's objects a role sees is http_admin_scope.c's job.
 */
#include <stddef.h>

#include "http/http_internal.h"

enum {
    GRANT_ADMIN_READ = 1,  /* GET the control panel's API */
    GRANT_ADMIN_WRITE = 2, /* change through it */
    GRANT_OPERATE = 4,     /* the operator's routes: customers, subscriptions, domains */
};

static const struct {
    int role; /* enum store_role */
    unsigned grants;
} role_grants[] = {
    {ROLE_USER, 0},
    {ROLE_ADMIN, GRANT_ADMIN_READ | GRANT_ADMIN_WRITE},
    {ROLE_OPERATOR, GRANT_ADMIN_READ | GRANT_ADMIN_WRITE | GRANT_OPERATE},
};

static unsigned grants_of(int role)
{
    for (size_t i = 0; i < sizeof role_grants / sizeof role_grants[0]; i++)
        if (role_grants[i].role == role)
            return role_grants[i].grants;
    return 0;
}

int http_role_check(int role, unsigned route_flags, int method, const char **code, const char **msg)
{
    unsigned g = grants_of(role);
    if ((route_flags & ROUTE_OPERATOR) == ROUTE_OPERATOR && !(g & GRANT_OPERATE)) {
        *code = "operator_only";
        *msg = "operators only";
        return 403;
    }
    if ((route_flags & ROUTE_ADMIN) == ROUTE_ADMIN &&
        !(g & (http_method_changes_state(method) ? GRANT_ADMIN_WRITE : GRANT_ADMIN_READ))) {
        *code = "admin_only";
        *msg = "admins and operators only";
        return 403;
    }
    return 0;
}
