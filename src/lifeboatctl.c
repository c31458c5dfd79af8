/*
 * lifeboatctl.c — the administration command (SPEC.md "Administration"):
 *
 *   lifeboatctl [-c FILE] [--json] NOUN VERB [ARGS...]
 *   lifeboatctl [-c FILE] [--json] migrate --to postgresql://...
 *
 * It reads the same config file as lifeboatd, opens the same store and works on
 * it directly, also while the daemon runs (SQLite serialises the writers);
 * migrate, which copies the whole installation, is the one that needs the
 * daemon stopped. The command groups live in src/ctl/; this file parses the
 * global options, loads the config and dispatches.
 *
 * Exit status: 0 done, 1 refused or failed (one line on stderr saying why),
 * 2 bad usage or a config file that does not load.
 */
#include "ctl/ctl.h"
#include "util/log.h"

#include <stdio.h>
#include <string.h>

#define DEFAULT_CONFIG "/etc/lifeboat/lifeboat.conf"

struct command {
    const char *noun, *verb; /* verb "": a command of one word (migrate) */
    int (*run)(struct ctl *c, int argc, char **argv);
    const char *args; /* for the usage line */
};

static const struct command commands[] = {
    {"customer", "add", ctl_customer_add, "NAME"},
    {"customer", "list", ctl_customer_list, "[--json]"},
    {"customer", "del", ctl_customer_del, "NAME"},
    {"subscription", "start", ctl_subscription_start, "CUSTOMER [--months N]"},
    {"subscription", "cancel", ctl_subscription_cancel, "CUSTOMER"},
    {"domain", "add", ctl_domain_add, "DOMAIN --customer NAME --route HOST[:PORT][,HOST[:PORT]...]"},
    {"domain", "set", ctl_domain_set,
     "DOMAIN [--route ...] [--recipient-check on|off] [--outbound-from CIDR,...] [--webhook URL] "
     "[--dkim-selector S --dkim-key FILE]"},
    {"domain", "list", ctl_domain_list, "[--json]"},
    {"domain", "del", ctl_domain_del, "DOMAIN [--force] [--json]"},
    {"continuity", "enable", ctl_continuity_enable, "DOMAIN [--outgoing-to-own-server]"},
    {"continuity", "disable", ctl_continuity_disable, "DOMAIN"},
    {"continuity", "status", ctl_continuity_status, "[DOMAIN] [--json]"},
    {"continuity", "events", ctl_continuity_events, "[DOMAIN] [--limit N] [--json]"},
    {"continuity", "stats", ctl_continuity_stats, "[DOMAIN] [--hours N] [--json]"},
    {"user", "add", ctl_user_add,
     "EMAIL [--name N] [--role user|admin|operator] [--password-stdin] [--activate]"},
    {"user", "set", ctl_user_set,
     "EMAIL [--password-stdin] [--activate|--suspend] [--alt-email EMAIL] [--role R] [--name N]"},
    {"user", "del", ctl_user_del, "EMAIL"},
    {"user", "list", ctl_user_list, "[--domain D] [--json]"},
    {"user", "readiness", ctl_user_readiness, "[--domain D | --customer C] [--json]"},
    {"user", "import", ctl_user_import, "FILE.csv|- --domain D [--json]"},
    {"user", "unlock", ctl_user_unlock, "EMAIL"},
    {"alias", "add", ctl_alias_add, "EMAIL ALIAS"},
    {"alias", "del", ctl_alias_del, "ALIAS"},
    {"alias", "list", ctl_alias_list, "[EMAIL] [--json]"},
    {"policy", "set", ctl_policy_set,
     "CUSTOMER [--min-length N] [--upper] [--lower] [--digit] [--special] [--no-upper] [--no-lower] "
     "[--no-digit] [--no-special]"},
    {"policy", "show", ctl_policy_show, "CUSTOMER [--json]"},
    {"mailbox", "list", ctl_mailbox_list, "EMAIL [--folder INBOX|Sent|Trash] [--json]"},
    {"queue", "list", ctl_queue_list, "[--json]"},
    {"queue", "show", ctl_queue_show, "ID [--json]"},
    {"queue", "flush", ctl_queue_flush, "[DOMAIN]"},
    {"queue", "delete", ctl_queue_delete, "ID"},
    {"queue", "hold", ctl_queue_hold, "ID"},
    {"queue", "release", ctl_queue_release, "ID"},
    {"archive", "search", ctl_archive_search,
     "[--domain D | --user EMAIL] [--from A] [--to A] [--after DATE] [--before DATE] [TEXT...] [--limit N] "
     "[--offset N] [--json]"},
    {"archive", "release", ctl_archive_release, "ID [--to EMAIL,...]"},
    {"archive", "purge", ctl_archive_purge, ""},
    {"archive", "hold", ctl_archive_hold, "--user EMAIL | --customer NAME [--release]"},
    {"archive", "holds", ctl_archive_holds, "[--json]"},
    {"audit", "list", ctl_audit_list, "[--customer NAME] [--limit N] [--json]"},
    {"config", "check", ctl_config_check, ""},
    {"ldap", "set", ctl_ldap_set,
     "DOMAIN --url ldap[s]://HOST[:PORT] --base DN [--bind-dn DN --bind-password-stdin] [--filter F] "
     "[--interval 3h] [--starttls|--no-starttls]"},
    {"ldap", "sync", ctl_ldap_sync, "DOMAIN [--json]"},
    {"ldap", "status", ctl_ldap_status, "[DOMAIN] [--json]"},
    {"cluster", "status", ctl_cluster_status, "[--json]"},
    {"migrate", "", ctl_migrate, "--to postgresql://... [--batch N] [--json]"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage_line(FILE *f, const char *prefix, const struct command *cmd)
{
    fprintf(f, "%s%s%s%s%s%s\n", prefix, cmd->noun, *cmd->verb ? " " : "", cmd->verb, *cmd->args ? " " : "",
            cmd->args);
}

/* Usage of every command, or of one noun's commands when noun is set. */
static void usage(FILE *f, const char *noun)
{
    fprintf(f, "usage: lifeboatctl [-c FILE] [--json] NOUN VERB [ARGS...]\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!noun || !strcmp(noun, commands[i].noun))
            usage_line(f, "  ", &commands[i]);
    if (!noun)
        fprintf(f, "-c FILE defaults to %s. Passwords are read from standard input only.\n"
                   "Exit status: 0 done, 1 refused or failed, 2 bad usage or bad config.\n",
                DEFAULT_CONFIG);
}

static void usage_of(FILE *f, const struct command *cmd)
{
    usage_line(f, "usage: lifeboatctl ", cmd);
}

int ctl_config_check(struct ctl *c, int argc, char **argv)
{
    int n;
    if (ctl_getopt(argc, argv, NULL, NULL, 0, 0, &n) != CTL_OK)
        return CTL_USAGE;
    /* main has loaded the file already: reaching here means it is good. */
    printf("%s: configuration OK\n", c->config_path);
    return CTL_OK;
}

static int is_help(const char *a)
{
    return !strcmp(a, "--help") || !strcmp(a, "-h") || !strcmp(a, "help");
}

int main(int argc, char **argv)
{
    struct ctl c;
    memset(&c, 0, sizeof c);
    c.config_path = DEFAULT_CONFIG;

    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (is_help(a)) {
            usage(stdout, NULL);
            return CTL_OK;
        } else if (!strcmp(a, "--json")) {
            c.json = 1;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--config")) {
            if (++i == argc) {
                fprintf(stderr, "lifeboatctl: %s needs a file\n", a);
                usage(stderr, NULL);
                return CTL_USAGE;
            }
            c.config_path = argv[i];
        } else if (!strncmp(a, "--config=", 9)) {
            c.config_path = a + 9;
        } else if (!strncmp(a, "-c", 2)) {
            c.config_path = a + 2;
        } else {
            fprintf(stderr, "lifeboatctl: unknown option \"%s\"\n", a);
            usage(stderr, NULL);
            return CTL_USAGE;
        }
    }
    if (i == argc) {
        usage(stderr, NULL);
        return CTL_USAGE;
    }
    const char *noun = argv[i], *verb = i + 1 < argc ? argv[i + 1] : NULL;
    const struct command *cmd = NULL;
    int noun_known = 0;
    for (size_t k = 0; k < NCOMMANDS; k++) {
        if (strcmp(commands[k].noun, noun) != 0)
            continue;
        noun_known = 1;
        if (!*commands[k].verb || (verb && !strcmp(commands[k].verb, verb)))
            cmd = &commands[k];
    }
    /* A command of one word: its arguments start right after it. */
    int nwords = cmd && !*cmd->verb ? 1 : 2;
    if (!noun_known) {
        fprintf(stderr, "lifeboatctl: unknown command \"%s\"\n", noun);
        usage(stderr, NULL);
        return CTL_USAGE;
    }
    if (verb && is_help(verb)) {
        usage(stdout, noun);
        return CTL_OK;
    }
    if (!cmd) {
        if (verb)
            fprintf(stderr, "lifeboatctl: unknown command \"%s %s\"\n", noun, verb);
        usage(stderr, noun);
        return CTL_USAGE;
    }
    for (int k = i + nwords; k < argc; k++) {
        if (!strcmp(argv[k], "--"))
            break;
        if (!strcmp(argv[k], "--help")) {
            usage_of(stdout, cmd);
            return CTL_OK;
        }
    }

    char err[1024];
    if (config_load(&c.cfg, c.config_path, err, sizeof err) != 0) {
        fprintf(stderr, "lifeboatctl: %s\n", err);
        return CTL_USAGE;
    }
    /* Warnings and errors of the modules below (the store's causes) go to
     * stderr; routine information would only clutter an administrator's
     * terminal or a script's output. */
    log_init("lifeboatctl", c.cfg.hostname, 1);
    log_set_level(c.cfg.log_level > LOG_LEVEL_WARN ? c.cfg.log_level : LOG_LEVEL_WARN);

    int rc = cmd->run(&c, argc - i - nwords, argv + i + nwords);
    if (rc == CTL_USAGE)
        usage_of(stderr, cmd);
    if (c.st)
        store_close(c.st);
    if (fflush(stdout) != 0 && rc == CTL_OK) {
        fprintf(stderr, "lifeboatctl: cannot write the output\n");
        rc = CTL_FAIL;
    }
    return rc;
}
