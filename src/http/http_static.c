/*
 * http_static.c — the webmail's files (web/ in the source tree) at "/": the
 * HTML page, its style sheet and its ES modules, with their Content-Type and
 * the server's usual security headers (http_server.c adds those).
 *
 * Only the paths of the routing table (http_routes.c) reach this handler: a
 * few named files, and any plain file name in the allow-listed folders js/
 * and admin/ (":file"), so a new module needs no C change; nothing else is
 * ever served and there is no directory listing. The handler still checks the path on its own (plain
 * segments of [A-Za-z0-9._-], none starting with a dot, a known extension):
 * a routing mistake must not turn into a path traversal. MHD hands us the
 * path percent-decoded, so "%2e%2e" arrives as ".." and is refused like it.
 *
 * Where the files are: the web_root config key; else LIFEBOAT_WEB_ROOT in the
 * environment; else next to the daemon's own executable: ../web (a build
 * directory in the source tree) and ../share/lifeboat/web (what `cmake
 * --install` lays out). The directory is found once at start; the files are
 * read per request (a few kilobytes, and an edited file shows on the next
 * reload without a restart).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/http_internal.h"
#include "util/log.h"

#define STATIC_FILE_MAX (1u << 20) /* no web file is near this; a bound on what one request reads */

static const struct {
    const char *ext;
    const char *type;
} content_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".json", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".txt", "text/plain; charset=utf-8"},
};

static int segment_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

int http_static_path(const char *url, char *rel, size_t rellen, const char **ctype)
{
    if (!url || url[0] != '/' || rellen == 0)
        return -1;
    /* A directory ("/", "/admin/") means its index.html. */
    char path[272];
    size_t ulen = strlen(url);
    if (ulen > 256)
        return -1;
    snprintf(path, sizeof path, "%s%s", url + 1, url[ulen - 1] == '/' ? "index.html" : "");
    const char *p = path;
    size_t len = strlen(p);
    if (len == 0 || len >= rellen || len > 255)
        return -1;
    /* Segments separated by single slashes; none empty, none starting with a
     * dot (no "..", no ".hidden"), only the allowed characters. */
    const char *seg = p;
    for (const char *q = p;; q++) {
        if (*q == '/' || *q == '\0') {
            if (q == seg || seg[0] == '.')
                return -1;
            if (*q == '\0')
                break;
            seg = q + 1;
        } else if (!segment_char_ok(*q)) {
            return -1;
        }
    }
    const char *dot = strrchr(seg, '.');
    if (!dot)
        return -1;
    for (size_t i = 0; i < sizeof content_types / sizeof content_types[0]; i++) {
        if (strcmp(dot, content_types[i].ext) == 0) {
            memcpy(rel, p, len + 1);
            if (ctype)
                *ctype = content_types[i].type;
            return 0;
        }
    }
    return -1;
}

/* ------------------------------------------------------------------ the web root */

static int root_fd = -1; /* set before the HTTP threads start, read-only after */

static int open_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0)
        log_info("http: serving the webmail from %s", path);
    return fd;
}

void http_static_init(const char *web_root)
{
    if (root_fd >= 0)
        return; /* found by an earlier start in this process (tests start several) */
    if (web_root && *web_root) {
        root_fd = open_dir(web_root);
        if (root_fd < 0)
            log_err("http: web_root %s: %s", web_root, strerror(errno));
        return;
    }
    const char *env = getenv("LIFEBOAT_WEB_ROOT");
    if (env && *env) {
        root_fd = open_dir(env);
        if (root_fd < 0)
            log_err("http: LIFEBOAT_WEB_ROOT=%s: %s", env, strerror(errno));
        return;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            static const char *const rels[] = {"../web", "../share/lifeboat/web"};
            for (size_t i = 0; i < sizeof rels / sizeof rels[0] && root_fd < 0; i++) {
                char dir[PATH_MAX + 32];
                snprintf(dir, sizeof dir, "%s/%s", exe, rels[i]);
                root_fd = open_dir(dir);
            }
        }
    }
    if (root_fd < 0)
        log_err("http: the webmail's files are not found (set web_root to the web/ directory)");
}

/* Reads rel under the web root: 0 and a malloc'd buffer, or -1 (logged unless
 * the file simply is not there). */
static int read_static(const char *rel, char **out, size_t *outlen)
{
    int fd = openat(root_fd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno != ENOENT)
            log_warn("http: web file %s: %s", rel, strerror(errno));
        return -1;
    }
    struct stat sb;
    char *buf = NULL;
    size_t len = 0;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size < 0 || (size_t)sb.st_size > STATIC_FILE_MAX) {
        log_warn("http: web file %s: not a regular file of at most %u bytes", rel, STATIC_FILE_MAX);
        goto fail;
    }
    buf = malloc((size_t)sb.st_size + 1);
    if (!buf)
        goto fail;
    while (len < (size_t)sb.st_size) {
        ssize_t r = read(fd, buf + len, (size_t)sb.st_size - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            log_warn("http: web file %s: %s", rel, r < 0 ? strerror(errno) : "shorter than its size");
            goto fail;
        }
        len += (size_t)r;
    }
    close(fd);
    *out = buf;
    *outlen = len;
    return 0;
fail:
    free(buf);
    close(fd);
    return -1;
}

void http_h_static(struct http_request *req, struct http_reply *rep)
{
    char rel[256];
    const char *ctype = NULL;
    if (http_static_path(req->path, rel, sizeof rel, &ctype) != 0) {
        http_reply_error(rep, 404, "not found");
        return;
    }
    char *body = NULL;
    size_t len = 0;
    if (root_fd < 0 || read_static(rel, &body, &len) != 0) {
        http_reply_error(rep, 404, "not found");
        return;
    }
    http_reply_raw(rep, 200, ctype, body, len);
}
