/*
 * password.c — password hashes for users (see directory.h).
 *
 * argon2id through libsodium's crypto_pwhash_str_alg with the "interactive"
 * limits: about 64 MiB and a fraction of a second per hash, which is what a
 * login or a lifeboatctl call can afford and what an attacker with the store
 * cannot. The result is the self-describing PHC string ("$argon2id$v=19$m=...")
 * so the limits can be raised later without breaking old hashes.
 */
#include "directory/directory.h"

#include <sodium.h>
#include <string.h>

/* sodium_init is idempotent and thread-safe; it only fails when no source of
 * randomness can be opened, and then no salt can be made either. */
static int sodium_ready(void)
{
    return sodium_init() >= 0;
}

int password_hash(const char *password, char out[PASSWORD_HASH_MAX])
{
    _Static_assert(PASSWORD_HASH_MAX >= crypto_pwhash_STRBYTES, "hash buffer too small");
    if (!password || !sodium_ready())
        return -1;
    char buf[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str_alg(buf, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13) != 0)
        return -1; /* out of memory */
    memcpy(out, buf, sizeof buf);
    out[sizeof buf - 1] = 0;
    return 0;
}

int password_verify(const char *hash, const char *password)
{
    if (!hash || !password || !*hash || !sodium_ready())
        return 0;
    /* A hash that does not fit is not one of ours; never read past the buffer. */
    if (strnlen(hash, PASSWORD_HASH_MAX) >= crypto_pwhash_STRBYTES)
        return 0;
    return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}
