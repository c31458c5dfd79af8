/*
 * http_routes.c — the API's routing table (SPEC.md "HTTP API"): which method
 * and path run which handler, whether a logged-in session is needed (then a
 * state change also needs the CSRF token, http_server.c) and whose (ROUTE_ADMIN:
 * an admin's or an operator's), whether the body is JSON, and how large a body
 * may be.
 */
#include "http/http_internal.h"

const struct http_route http_routes[] = {
    {HTTP_GET, "/healthz", http_h_healthz, 0, 0},
    {HTTP_GET, "/metrics", http_h_metrics, 0, 0},
    {HTTP_POST, "/api/v1/login", http_h_login, ROUTE_JSON, HTTP_JSON_MAX},
    {HTTP_POST, "/api/v1/logout", http_h_logout, ROUTE_SESSION, HTTP_JSON_MAX},
    {HTTP_GET, "/api/v1/me", http_h_me, ROUTE_SESSION, 0},
    {HTTP_GET, "/api/v1/status", http_h_status, ROUTE_SESSION, 0},
    {HTTP_GET, "/api/v1/folders", http_h_folders, ROUTE_SESSION, 0},
    {HTTP_GET, "/api/v1/messages", http_h_messages, ROUTE_SESSION, 0},
    {HTTP_GET, "/api/v1/messages/:id", http_h_message_get, ROUTE_SESSION, 0},
    {HTTP_PATCH, "/api/v1/messages/:id", http_h_message_patch, ROUTE_SESSION | ROUTE_JSON, HTTP_JSON_MAX},
    {HTTP_DELETE, "/api/v1/messages/:id", http_h_message_delete, ROUTE_SESSION, 0},
    {HTTP_GET, "/api/v1/messages/:id/raw", http_h_message_raw, ROUTE_SESSION, 0},
    {HTTP_POST, "/api/v1/send", http_h_send, ROUTE_SESSION | ROUTE_JSON, HTTP_SEND_MAX},
    {HTTP_GET, "/api/v1/messages/:id/attachments/:n", http_h_message_attachment, ROUTE_SESSION, 0},
    {HTTP_POST, "/api/v1/password", http_h_password, ROUTE_SESSION | ROUTE_JSON, HTTP_JSON_MAX},
    /* No session: the user forgot the password. The reset token is the credential. */
    {HTTP_POST, "/api/v1/password-reset/request", http_h_password_reset_request, ROUTE_JSON, HTTP_JSON_MAX},
    {HTTP_POST, "/api/v1/password-reset/confirm", http_h_password_reset_confirm, ROUTE_JSON, HTTP_JSON_MAX},
    /* The archive (http_archive.c, http_export.c) and its control panel API (http_admin.c). */
    {HTTP_GET, "/api/v1/archive", http_h_archive_list, ROUTE_SESSION, 0},
    {HTTP_GET, "/api/v1/archive/export", http_h_archive_export, ROUTE_ADMIN, 0},
    {HTTP_GET, "/api/v1/archive/:id", http_h_archive_get, ROUTE_SESSION, 0},
    {HTTP_GET, "/api/v1/archive/:id/raw", http_h_archive_raw, ROUTE_SESSION, 0},
    {HTTP_GET, "/api/v1/archive/:id/attachments/:n", http_h_archive_attachment, ROUTE_SESSION, 0},
    {HTTP_POST, "/api/v1/archive/:id/release", http_h_archive_release, ROUTE_SESSION | ROUTE_JSON, HTTP_JSON_MAX},
    {HTTP_GET, "/api/v1/admin/archive/holds", http_h_admin_holds, ROUTE_ADMIN, 0},
    {HTTP_POST, "/api/v1/admin/archive/holds", http_h_admin_hold_add, ROUTE_ADMIN | ROUTE_JSON, HTTP_JSON_MAX},
    {HTTP_DELETE, "/api/v1/admin/archive/holds", http_h_admin_hold_del, ROUTE_ADMIN, 0},
    {HTTP_DELETE, "/api/v1/admin/archive/holds/:id", http_h_admin_hold_del, ROUTE_ADMIN, 0},
    {HTTP_GET, "/api/v1/admin/audit", http_h_admin_audit, ROUTE_ADMIN, 0},
    /* customers and subscriptions: the operator's; an admin sees their own */
    {HTTP_GET, "/api/v1/admin/customers", http_h_admin_customers, ROUTE_ADMIN, 0},
    {HTTP_POST, "/api/v1/admin/customers", http_h_admin_customer_add, ROUTE_OPERATOR | ROUTE_JSON, HTTP_JSON_MAX},
    {HTTP_POST, "/api/v1/admin/customers/:s/subscription", http_h_admin_subscription_start,
     ROUTE_OPERATOR | ROUTE_JSON, HTTP_JSON_MAX},
    {HTTP_DELETE, "/api/v1/admin/customers/:s/subscription", http_h_admin_subscription_cancel, ROUTE_OPERATOR, 0},
    /* domains: the operator adds them, their customer's admin sets them up */
    {HTTP_GET, "/api/v1/admin/domains", http_h_admin_domains, ROUTE_ADMIN, 0},
    {HTTP_POST, "/api/v1/admin/domains", http_h_admin_domain_add, ROUTE_OPERATOR | ROUTE_JSON, HTTP_JSON_MAX},
    {HTTP_GET, "/api/v1/admin/domains/:s", http_h_admin_domain_get, ROUTE_ADMIN, 0},
    {HTTP_PATCH, "/api/v1/admin/domains/:s", http_h_admin_domain_patch, ROUTE_ADMIN | ROUTE_JSON, HTTP_JSON_MAX},
    {HTTP_PUT, "/api/v1/admin/domains/:s/continuity", http_h_admin_continuity_put, ROUTE_ADMIN | ROUTE_JSON,
     HTTP_JSON_MAX},
    /* users and aliases */
    {HTTP_GET, "/api/v1/admin/users", http_h_admin_users, ROUTE_ADMIN, 0},
    {HTTP_POST, "/api/v1/admin/users", http_h_admin_user_add, ROUTE_ADMIN | ROUTE_JSON, HTTP_JSON_MAX},
    {HTTP_GET, "/api/v1/admin/users/:s", http_h_admin_user_get, ROUTE_ADMIN, 0},
    {HTTP_PATCH, "/api/v1/admin/users/:s", http_h_admin_user_patch, ROUTE_ADMIN | ROUTE_JSON, HTTP_JSON_MAX},
    {HTTP_DELETE, "/api/v1/admin/users/:s", http_h_admin_user_del, ROUTE_ADMIN, 0},
    {HTTP_POST, "/api/v1/admin/users/:s/aliases", http_h_admin_alias_add, ROUTE_ADMIN | ROUTE_JSON, HTTP_JSON_MAX},
    {HTTP_DELETE, "/api/v1/admin/users/:s/aliases/:s", http_h_admin_alias_del, ROUTE_ADMIN, 0},
    /* password policy (an operator names the customer: ?customer=) */
    {HTTP_GET, "/api/v1/admin/policy", http_h_admin_policy_get, ROUTE_ADMIN, 0},
    {HTTP_PUT, "/api/v1/admin/policy", http_h_admin_policy_put, ROUTE_ADMIN | ROUTE_JSON, HTTP_JSON_MAX},
    /* A domain's directory and readiness (http_admin_ldap.c). sync and test
     * take an optional JSON body (test: settings to try), read by the handler. */
    {HTTP_GET, "/api/v1/admin/domains/:s/ldap", http_h_admin_ldap_get, ROUTE_ADMIN, 0},
    {HTTP_PUT, "/api/v1/admin/domains/:s/ldap", http_h_admin_ldap_put, ROUTE_ADMIN | ROUTE_JSON, HTTP_JSON_MAX},
    {HTTP_POST, "/api/v1/admin/domains/:s/ldap/sync", http_h_admin_ldap_sync, ROUTE_ADMIN, HTTP_JSON_MAX},
    {HTTP_POST, "/api/v1/admin/domains/:s/ldap/test", http_h_admin_ldap_test, ROUTE_ADMIN, HTTP_JSON_MAX},
    {HTTP_GET, "/api/v1/admin/readiness", http_h_admin_readiness, ROUTE_ADMIN, 0},
    /* Import, unlock and the operator's deletions (http_admin_import.c). The
     * import's body is CSV (checked by the handler), up to the import's limit. */
    {HTTP_POST, "/api/v1/admin/users/import", http_h_admin_users_import, ROUTE_ADMIN, CSV_IMPORT_BYTES_MAX},
    {HTTP_POST, "/api/v1/admin/users/:s/unlock", http_h_admin_user_unlock, ROUTE_ADMIN, 0},
    {HTTP_DELETE, "/api/v1/admin/domains/:s", http_h_admin_domain_del, ROUTE_OPERATOR, 0},
    {HTTP_DELETE, "/api/v1/admin/customers/:s", http_h_admin_customer_del, ROUTE_OPERATOR, 0},
    /* The outage dashboard and the queue page (http_admin_ops.c). */
    {HTTP_GET, "/api/v1/admin/continuity", http_h_admin_continuity, ROUTE_ADMIN, 0},
    {HTTP_GET, "/api/v1/admin/events", http_h_admin_events, ROUTE_ADMIN, 0},
    {HTTP_GET, "/api/v1/admin/stats", http_h_admin_stats, ROUTE_ADMIN, 0},
    {HTTP_GET, "/api/v1/admin/queue", http_h_admin_queue, ROUTE_ADMIN, 0},
    {HTTP_POST, "/api/v1/admin/queue/flush", http_h_admin_queue_flush, ROUTE_ADMIN | ROUTE_JSON, HTTP_JSON_MAX},
    {HTTP_POST, "/api/v1/admin/queue/:s/hold", http_h_admin_queue_hold, ROUTE_ADMIN, 0},
    {HTTP_POST, "/api/v1/admin/queue/:s/release", http_h_admin_queue_release, ROUTE_ADMIN, 0},
    {HTTP_DELETE, "/api/v1/admin/queue/:s", http_h_admin_queue_delete, ROUTE_ADMIN, 0},
    /* The web app's files (web/, http_static.c): the two pages, the top
     * files, and any plain file of the allow-listed folders js/ and admin/,
     * so a new module needs no change here. Nothing else is served. */
    {HTTP_GET, "/", http_h_static, 0, 0},
    {HTTP_GET, "/index.html", http_h_static, 0, 0},
    {HTTP_GET, "/app.css", http_h_static, 0, 0},
    {HTTP_GET, "/favicon.svg", http_h_static, 0, 0},
    {HTTP_GET, "/js/:file", http_h_static, 0, 0},
    /* The control panel (admins and operators; its API answers 403 to users). */
    {HTTP_GET, "/admin/", http_h_static, 0, 0},
    {HTTP_GET, "/admin/:file", http_h_static, 0, 0},
};

const size_t http_nroutes = sizeof http_routes / sizeof http_routes[0];
