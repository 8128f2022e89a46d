/* core/league.c — a league's definition, its checks, its stored form and the rule of a move. */
#include "core/league.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "util/alloc.h"
#include "util/buf.h"

void league_alloc_tiers(league_t *l)
{
    free(l->tiers);
    l->tiers = xcalloc(LEAGUE_TIERS_MAX, sizeof *l->tiers);
    l->n_tiers = 0;
}

void league_clear(league_t *l)
{
    free(l->tiers);
    memset(l, 0, sizeof *l);
}

void league_copy(league_t *dst, const league_t *src)
{
    *dst = *src;
    dst->tiers = NULL;
    if (src->tiers) {
        dst->tiers = xcalloc(LEAGUE_TIERS_MAX, sizeof *dst->tiers);
        memcpy(dst->tiers, src->tiers, (size_t)src->n_tiers * sizeof *src->tiers);
    }
}

const char *league_check(const league_t *l, char *msg, size_t msg_len)
{
    if (l->size < LEAGUE_SIZE_MIN || l->size > LEAGUE_SIZE_MAX) {
        snprintf(msg, msg_len, "cohorts.size must be a whole number %d..%d", LEAGUE_SIZE_MIN, LEAGUE_SIZE_MAX);
        return "cohorts.size";
    }
    if (l->n_tiers < 1 || l->n_tiers > LEAGUE_TIERS_MAX || !l->tiers) {
        snprintf(msg, msg_len, "tiers must list 1 to %d tiers", LEAGUE_TIERS_MAX);
        return "tiers";
    }
    for (int i = 0; i < l->n_tiers; i++) {
        const league_tier_t *t = &l->tiers[i];
        if (!t->name[0]) {
            snprintf(msg, msg_len, "each tier needs a name of 1 to %d bytes", LEAGUE_TIER_NAME_MAX);
            return "tiers";
        }
        for (int j = 0; j < i; j++)
            if (strcmp(l->tiers[j].name, t->name) == 0) {
                snprintf(msg, msg_len, "tier names must differ: %s is listed twice", t->name);
                return "tiers";
            }
        if (t->promote < 0 || t->relegate < 0 || t->promote + t->relegate > l->size) {
            snprintf(msg, msg_len, "a tier's promote and relegate must be whole numbers >= 0 that add up to at "
                                   "most cohorts.size (%d)", l->size);
            return "tiers";
        }
    }
    return NULL;
}

int league_next_tier(const league_t *l, int tier, int64_t rank, int64_t players)
{
    if (tier < 0 || tier >= l->n_tiers)
        return tier;
    const league_tier_t *t = &l->tiers[tier];
    if (rank <= t->promote && tier < l->n_tiers - 1)
        return tier + 1;
    if (rank > players - t->relegate && tier > 0)
        return tier - 1;
    return tier;
}

char *league_tiers_json(const league_t *l)
{
    buf_t b;
    buf_init(&b);
    buf_putc(&b, '[');
    for (int i = 0; i < l->n_tiers; i++) {
        buf_puts(&b, i ? ",{\"name\":" : "{\"name\":");
        buf_json_str(&b, l->tiers[i].name, strlen(l->tiers[i].name));
        buf_printf(&b, ",\"promote\":%d,\"relegate\":%d}", l->tiers[i].promote, l->tiers[i].relegate);
    }
    buf_putc(&b, ']');
    return buf_steal(&b, NULL);
}

bool league_tiers_parse(const char *json, league_t *l)
{
    json_t *a = json_loads(json, 0, NULL);
    bool ok = json_is_array(a) && json_array_size(a) >= 1 && json_array_size(a) <= LEAGUE_TIERS_MAX;
    league_alloc_tiers(l);
    for (size_t i = 0; ok && i < json_array_size(a); i++) {
        json_t *t = json_array_get(a, i), *name = json_object_get(t, "name");
        json_t *up = json_object_get(t, "promote"), *down = json_object_get(t, "relegate");
        ok = json_is_string(name) && json_string_length(name) <= LEAGUE_TIER_NAME_MAX && json_is_integer(up) &&
             json_is_integer(down);
        if (!ok)
            break;
        league_tier_t *x = &l->tiers[l->n_tiers++];
        snprintf(x->name, sizeof x->name, "%s", json_string_value(name));
        x->promote = (int)json_integer_value(up);
        x->relegate = (int)json_integer_value(down);
    }
    json_decref(a);
    return ok;
}

bool league_same(const league_t *a, const league_t *b)
{
    if (a->on != b->on)
        return false;
    if (!a->on)
        return true;
    if (a->size != b->size || a->n_tiers != b->n_tiers)
        return false;
    for (int i = 0; i < a->n_tiers; i++)
        if (strcmp(a->tiers[i].name, b->tiers[i].name) != 0 || a->tiers[i].promote != b->tiers[i].promote ||
            a->tiers[i].relegate != b->tiers[i].relegate)
            return false;
    return true;
}
