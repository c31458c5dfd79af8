/*
 * admin_json.c — JSON helpers of the views (see admin.h).
 */
#include <glib.h>

#include "admin/admin.h"

json_t *admin_jstr(const char *s)
{
    if (!s)
        s = "";
    json_t *j = json_string(s);
    if (j)
        return j;
    gchar *valid = g_utf8_make_valid(s, -1); /* json_string refuses invalid UTF-8 */
    j = json_string(valid);
    g_free(valid);
    return j;
}
