/*
 * received.h — the trace header an MTA adds to every message it accepts
 * (RFC 5321 4.4, with the protocol names of RFC 3848 and RFC 6531).
 *
 *   Received: from HELO ([192.0.2.1])
 *   	by HOSTNAME (lifeboat) with ESMTPS id QUEUEID
 *   	(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)
 *   	for <rcpt@example.test>; Fri, 27 Nov 2026 21:53:37 +0100
 *
 * lifeboat does no reverse DNS at accept time, so the TCP-info is the bare
 * address literal. The header is kept apart from the body (store_msg.prefix)
 * and put in front of it on delivery, so identical bodies stay one blob.
 */
#ifndef LB_MAIL_RECEIVED_H
#define LB_MAIL_RECEIVED_H

#include <stddef.h>
#include <time.h>

/* Large enough for the longest header the limits allow (HELO 255, hostname 255,
 * address 320, TLS details 128). */
#define RECEIVED_MAX 1536

struct received_info {
    const char *helo;      /* as the client sent it; "" or NULL: it sent none */
    const char *client_ip; /* numeric text, IPv4 or IPv6 */
    const char *hostname;  /* ours */
    const char *queue_id;
    const char *rcpt;      /* the one recipient, or NULL when there are several */
    int esmtp;             /* EHLO (else HELO) */
    int tls;               /* the session was encrypted */
    int auth;              /* the client authenticated */
    int smtputf8;          /* the transaction used SMTPUTF8 */
    const char *tls_info;  /* e.g. "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384", or NULL */
    time_t when;
};

/* "SMTP", "ESMTP", "ESMTPS", "ESMTPSA", "UTF8SMTPS", ... */
const char *received_protocol(const struct received_info *ri);

/*
 * Writes the header, folded, every line CRLF-ended, into out (NUL-terminated).
 * Returns its length, or -1 when it does not fit or an argument contains a
 * character that must not appear in a header (CR, LF, or other control bytes).
 */
int received_build(const struct received_info *ri, char *out, size_t outlen);

/* The hop limit past which a message is taken for a mail loop (as Postfix's hopcount_limit: no legitimate path has 50 relays, a
 * loop reaches it in seconds; RFC 5321 6.3 asks MTAs to detect loops this way). */
#define RECEIVED_HOP_LIMIT 50

/* Counts the Received: trace headers in the header
 * section of msg (up to the first empty line), case-insensitively. Pure. */
unsigned received_count_hops(const unsigned char *msg, size_t len);

#endif
