/*
 * roles.c — the names of user roles as lifeboatctl and the API spell them
 * (see directory.h and store.h's enum store_role).
 */
#include "directory/directory.h"

#include <string.h>

static const char *const role_names[] = {
    [ROLE_USER] = "user",
    [ROLE_ADMIN] = "admin",
    [ROLE_OPERATOR] = "operator",
};

int directory_role_parse(const char *s)
{
    for (int i = 0; i < (int)(sizeof role_names / sizeof role_names[0]); i++)
        if (s && !strcmp(s, role_names[i]))
            return i;
    return -1;
}

const char *directory_role_name(int role)
{
    if (role < 0 || role >= (int)(sizeof role_names / sizeof role_names[0]))
        return "unknown";
    return role_names[role];
}
