/* util/secret_scrub.c — removing pieces of secrets from a library's text (see secret_scrub.h). */
#include "util/secret_scrub.h"

#include <string.h>

#include "util/alloc.h"

void secret_set_init(secret_set_t *s)
{
    s->v = NULL;
    s->n = s->cap = 0;
}

void secret_set_clear(secret_set_t *s)
{
    for (size_t i = 0; i < s->n; i++) {
        explicit_bzero(s->v[i].text, s->v[i].len);
        free(s->v[i].text);
    }
    free(s->v);
    secret_set_init(s);
}

void secret_set_add(secret_set_t *s, const char *text, size_t len, bool whole)
{
    if (!text || len < SECRET_SCRUB_MIN)
        return;
    for (size_t i = 0; i < s->n; i++) {
        secret_piece_t *p = &s->v[i];
        if (p->len == len && memcmp(p->text, text, len) == 0) {
            p->whole = p->whole && whole; /* known as a password too: every piece goes */
            return;
        }
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->v = xrealloc(s->v, s->cap * sizeof *s->v);
    }
    s->v[s->n++] = (secret_piece_t){xstrndup(text, len), len, whole};
}

bool secret_uri_userinfo(const char *s, const char **at, size_t *len)
{
    const char *sep = strstr(s, "://");
    if (!sep || sep == s)
        return false;
    for (const char *c = s; c < sep; c++) /* a scheme: letters, digits, + - . */
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '+' ||
              *c == '-' || *c == '.'))
            return false;
    const char *from = sep + 3, *last = strrchr(from, '@');
    if (!last)
        return false;
    *at = from;
    *len = (size_t)(last - from);
    return true;
}

/* A user name of ordinary characters: no separator a malformed URI could have put in it. */
static bool plain_user(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '@' || s[i] == '/' || s[i] == ':' || s[i] == '%')
            return false;
    return true;
}

void secret_set_add_uri(secret_set_t *s, const char *uri)
{
    const char *ui;
    size_t n;
    if (!secret_uri_userinfo(uri, &ui, &n) || n == 0)
        return;
    const char *colon = memchr(ui, ':', n);
    size_t user = colon ? (size_t)(colon - ui) : n;
    if (plain_user(ui, user)) {
        secret_set_add(s, ui, user, true);
        if (colon)
            secret_set_add(s, colon + 1, n - user - 1, false);
    } else { /* what is user and what is password cannot be told: all of it, piece by piece */
        secret_set_add(s, ui, n, false);
    }
}

/* Mark in `mark` every byte of `in` (`len`) inside a piece of `p` (see secret_scrub.h). */
static void mark_piece(const secret_piece_t *p, const char *in, size_t len, unsigned char *mark)
{
    if (p->whole) {
        for (const char *at = in; (at = memmem(at, len - (size_t)(at - in), p->text, p->len)) != NULL; at++)
            memset(mark + (at - in), 1, p->len);
        return;
    }
    /* The longest common stretch starting at each pair of positions: inputs are a message and
     * a password, a few hundred bytes each. */
    for (size_t i = 0; i + SECRET_SCRUB_MIN <= len; i++) {
        size_t best = 0;
        for (size_t j = 0; j + SECRET_SCRUB_MIN <= p->len && best < len - i; j++) {
            size_t k = 0;
            while (i + k < len && j + k < p->len && in[i + k] == p->text[j + k])
                k++;
            if (k > best)
                best = k;
        }
        if (best >= SECRET_SCRUB_MIN)
            memset(mark + i, 1, best);
    }
}

char *secret_scrub(const secret_set_t *s, const char *in, char *out, size_t n)
{
    if (n == 0)
        return out;
    size_t len = strlen(in);
    unsigned char *mark = xcalloc(len + 1, 1);
    for (size_t i = 0; i < s->n; i++)
        mark_piece(&s->v[i], in, len, mark);
    size_t o = 0, marklen = strlen(SECRET_SCRUB_MARK);
    for (size_t i = 0; i < len && o + 1 < n;) {
        if (!mark[i]) {
            out[o++] = in[i++];
            continue;
        }
        while (i < len && mark[i])
            i++;
        size_t k = marklen < n - 1 - o ? marklen : n - 1 - o;
        memcpy(out + o, SECRET_SCRUB_MARK, k);
        o += k;
    }
    out[o] = '\0';
    free(mark);
    return out;
}
