import time, subprocess
from conftest import ADMIN_KEY, WRITE_KEY, READ_KEY, create_board, submit_ok, metric, series, free_port

def test_repro(rankd_factory, db, redis_db):
    url, rcl = redis_db
    inst = rankd_factory(env={"RANKD_REFRESH_INTERVAL_S": "0"})
    adm = inst.client(ADMIN_KEY)
    b = create_board(adm, "big")["id"]
    gen = db.query("SELECT gen FROM boards WHERE id = %s", (b,))[0][0]
    n = 300000
    db.query("INSERT INTO standings (board_gen, win, player_id, score, sort_key, achieved_ms, metadata, version)"
             " SELECT %s, DATE '1970-01-01', 'p' || lpad(i::text, 12, '0'), (random()*1000000)::bigint, 0, 0, NULL, nextval('standing_version')"
             " FROM generate_series(1, %s) i", (gen, n))
    db.query("UPDATE standings SET sort_key = -score WHERE board_gen = %s", (gen,))
    db.query("INSERT INTO window_counts (board_gen, win, players, submissions) VALUES (%s, DATE '1970-01-01', %s, %s)"
             " ON CONFLICT (board_gen, win) DO UPDATE SET players = EXCLUDED.players", (gen, n, n))
    db.query("SELECT rankd_rank_buckets_build(%s, DATE '1970-01-01')", (gen,))
    inst.stop()
    dead = free_port()
    results = []
    for it in range(12):
        x = rankd_factory(env={"RANKD_REFRESH_INTERVAL_S": "0", "RANKD_RANK_TIER": "2147483648", "RANKD_LOG_LEVEL": "warn"},
                          extra_config={"postgres": {"replicas": ["host=127.0.0.1 port=%d dbname=x user=rankd" % dead]}})
        c = x.client(READ_KEY)
        t0 = time.time()
        ok = False
        for _ in range(600):
            if series(x, "rankd_rank_tier_windows", state="ready"):
                ok = True
                break
            c.get("/v1/leaderboards/big/players/p000000000007")
            time.sleep(0.1)
        dt = time.time() - t0
        final = series(x, "rankd_rank_tier_windows", state="ready")
        results.append((it, ok, final, round(dt, 2)))
        print("iter", it, ok, final, round(dt, 2), flush=True)
        if not ok or not final:
            print(x.client(ADMIN_KEY).get("/metrics").body.decode(), flush=True)
            print(x.stderr_tail(), flush=True)
        x.stop()
    assert 0, results
