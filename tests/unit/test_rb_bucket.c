/* The bucket of a player's hash entry: the C function and the scripts' Lua bucket(), run
 * under Lua 5.1 (the version Redis embeds), agree on every id, whatever its bytes and length
 * (the Lua takes six bytes per step, then one at a time). A disagreement would make a script
 * look for a player in a bucket the writer never wrote. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "store/rb_bucket.h"

/* A Lua state holding bucket() of the scripts, with an empty key prefix (pk). */
static lua_State *lua_with_bucket(void)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    const char *src = "local pk = ''\n" RB_LUA_BUCKET "return bucket\n";
    assert_int_equal(luaL_loadstring(L, src), 0);
    assert_int_equal(lua_pcall(L, 0, 1, 0), 0);
    lua_setglobal(L, "bucket");
    return L;
}

static void assert_agree(lua_State *L, const char *id, size_t len)
{
    char c_bucket[16];
    rb_player_bucket(id, len, c_bucket);
    lua_getglobal(L, "bucket");
    lua_pushlstring(L, id, len);
    assert_int_equal(lua_pcall(L, 1, 1, 0), 0);
    size_t n = 0;
    const char *lua_bucket = lua_tolstring(L, -1, &n);
    if (strlen(c_bucket) != n || memcmp(c_bucket, lua_bucket, n) != 0)
        fail_msg("id of %zu bytes: C bucket %s, Lua bucket %.*s", len, c_bucket, (int)n, lua_bucket);
    lua_pop(L, 1);
}

static void test_known_values(void **state)
{
    (void)state;
    char out[16];
    rb_player_bucket("", 0, out);
    assert_string_equal(out, "0");
    rb_player_bucket("a", 1, out); /* 97 */
    assert_string_equal(out, "97");
    rb_player_bucket("ab", 2, out); /* 97 * 31 + 98 = 3105 */
    assert_string_equal(out, "3105");
    /* Past the modulus: h grows beyond 1000003 within four bytes, then wraps. */
    uint32_t h = 0;
    const char *id = "player-000123";
    for (const char *p = id; *p; p++)
        h = (h * 31 + (unsigned char)*p) % 1000003;
    char want[16];
    snprintf(want, sizeof want, "%u", h % 16384);
    rb_player_bucket(id, strlen(id), out);
    assert_string_equal(out, want);
}

static void test_lua_agrees_on_every_length(void **state)
{
    (void)state;
    lua_State *L = lua_with_bucket();
    /* Lengths 0..128 cover every remainder of the six-byte steps, with bytes 0..255. */
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    char id[129];
    for (size_t len = 0; len <= 128; len++) {
        for (int round = 0; round < 50; round++) {
            for (size_t i = 0; i < len; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift: any byte, NUL and 0xff too */
                id[i] = (char)(x >> 24);
            }
            assert_agree(L, id, len);
        }
    }
    /* The largest bytes at every position: the biggest intermediate values. */
    memset(id, 0xff, sizeof id);
    for (size_t len = 0; len <= 128; len++)
        assert_agree(L, id, len);
    lua_close(L);
}

static void test_lua_agrees_on_realistic_ids(void **state)
{
    (void)state;
    lua_State *L = lua_with_bucket();
    char id[64];
    for (int i = 0; i < 100000; i++) {
        int n = snprintf(id, sizeof id, "player-%06d", i);
        assert_agree(L, id, (size_t)n);
    }
    lua_close(L);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_values),
        cmocka_unit_test(test_lua_agrees_on_every_length),
        cmocka_unit_test(test_lua_agrees_on_realistic_ids),
    };
    return cmocka_run_group_tests_name("rb_bucket", tests, NULL, NULL);
}
