/*
 * SHA-1 (FIPS 180-4), for UUIDv5 event ids.
 *
 * OpenSSL's, when the package was built with its headers (setup.py defines WAL2HTTP_OPENSSL
 * then): one reused digest context, 0.11 µs an id here with the CPU's SHA instructions. The
 * portable one below otherwise (about 0.5 µs): OpenSSL's headers come with libssl-dev, which a
 * machine with only gcc and the Python headers lacks. Both are tested against hashlib
 * (tests/unit/test_native_events.py; the sanitized build of test_native_memory.py is built
 * without OpenSSL, so it runs the portable one).
 */
#include "native.h"

static inline uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

/* One 64-byte block; the four kinds of rounds in loops of their own (no branch per round). */
#define ROUND(f, k)                                                                          \
    do {                                                                                     \
        uint32_t t = rol(a, 5) + (f) + e + (k) + w[i];                                       \
        e = d;                                                                               \
        d = c;                                                                               \
        c = rol(b, 30);                                                                      \
        b = a;                                                                               \
        a = t;                                                                               \
    } while (0)

static void block(uint32_t h[5], const unsigned char *p) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = ((uint32_t)p[4 * i] << 24) | ((uint32_t)p[4 * i + 1] << 16) |
               ((uint32_t)p[4 * i + 2] << 8) | (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    int i = 0;
    for (; i < 20; i++)
        ROUND((b & c) | (~b & d), 0x5A827999);
    for (; i < 40; i++)
        ROUND(b ^ c ^ d, 0x6ED9EBA1);
    for (; i < 60; i++)
        ROUND((b & c) | (b & d) | (c & d), 0x8F1BBCDC);
    for (; i < 80; i++)
        ROUND(b ^ c ^ d, 0xCA62C1D6);
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

static void portable_sha1(const unsigned char *data, size_t len, unsigned char digest[20]) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    size_t full = len / 64 * 64;
    for (size_t i = 0; i < full; i += 64)
        block(h, data + i);
    unsigned char tail[128] = {0};
    size_t rest = len - full;
    memcpy(tail, data + full, rest);
    tail[rest] = 0x80;
    size_t tail_len = rest + 1 + 8 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        tail[tail_len - 1 - i] = (unsigned char)(bits >> (8 * i));
    block(h, tail);
    if (tail_len == 128)
        block(h, tail + 64);
    for (int i = 0; i < 5; i++) {
        digest[4 * i] = (unsigned char)(h[i] >> 24);
        digest[4 * i + 1] = (unsigned char)(h[i] >> 16);
        digest[4 * i + 2] = (unsigned char)(h[i] >> 8);
        digest[4 * i + 3] = (unsigned char)h[i];
    }
}

#ifdef WAL2HTTP_OPENSSL
#include <openssl/evp.h>

/* Callers hold the GIL: one context serves them all. */
static EVP_MD_CTX *context;
static const EVP_MD *algorithm;
static int unavailable;

void sha1(const unsigned char *data, size_t len, unsigned char digest[20]) {
    if (context == NULL && !unavailable) {
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
        algorithm = EVP_MD_fetch(NULL, "SHA1", NULL);
#else
        algorithm = EVP_sha1();
#endif
        context = algorithm ? EVP_MD_CTX_new() : NULL;
        unavailable = context == NULL;
    }
    unsigned int size;
    if (!unavailable && EVP_DigestInit_ex(context, algorithm, NULL) &&
        EVP_DigestUpdate(context, data, len) && EVP_DigestFinal_ex(context, digest, &size))
        return;
    portable_sha1(data, len, digest);
}
#else
void sha1(const unsigned char *data, size_t len, unsigned char digest[20]) {
    portable_sha1(data, len, digest);
}
#endif
