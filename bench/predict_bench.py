#!/usr/bin/python3
"""bench/predict_bench.py - keel's prediction endpoint under wrk, beside the usual Python way.

Issue 6: `POST /v1/models/flight_delay:predict` end to end (3 feature views
from the RocksDB online store + request inputs + the bundle's transforms +
the flights model + the prediction log) next to bench/predict_peer.py, the
same job in FastAPI + uvicorn + redis-py + xgboost (Debian's packages),
reading the same feature values from Redis.

Steps:
  1. a copy of the flights example's state under .cache/bench/predict/repo:
     keel.yaml (KEEL_DATA absolute), the definitions, .keel/catalog.db, the
     RocksDB online store .keel/online (keel materialize, main job: as of
     2001-06-15) and the production bundle of flight_delay; a fresh registry
     in the copy with version 1 (that bundle, production) and version 2 (the
     same bundle registered again, trained; used by --swap);
  2. 300 real flights of 2001-06-15 from 06:00 on (origin, destination,
     date, distance; DuckDB through its C library picks them by a hash);
  3. `keel serve --model flight_delay` (the registry's production version,
     RocksDB, prediction log on); the feature values of every airport of the
     request set as keel reads them at 2001-06-15 06:00 (POST /v1/features)
     are written to Redis (127.0.0.1:6390, keys keel_bench_predict:VIEW:IATA,
     JSON), then the peer starts (uvicorn --workers 2: one per core);
  4. agreement: every row once alone and all rows in one request, to both;
     predictions must agree to 1e-6 and the missing features by name
     (prints the mismatch count; exits 1 on any);
  5. per run: wrk -t2 -c8 (load, flat out) and -t1 -c1 (latency) against
     each, the body cycling over the 300 single-row requests ("at" fixed at
     2001-06-15 06:00:00), then keel at a held rate (wrk -t2 -c16, each
     connection waiting 1 ms after an answer: about 10 000 req/s, the
     latency at a load below saturation); medians over --runs; ratios;
  6. --swap S: S seconds of wrk -t2 -c8 on keel while version 2 is promoted
     at S/3 and flight_delay rolled back at 2S/3 (keel models promote /
     rollback on the copy's registry); counts non-2xx answers and socket
     errors, then checks every logged prediction of that window (keel logs
     export) against the registry's history (keel models history --json):
     a prediction started at t must carry the production version at t, or
     the one before a transition at T when t < T + lag; lag = the poll
     interval (--poll-ms) + the time to load and verify a bundle (measured:
     the first logged request on the new version after T), and the measured
     lag must be <= poll + 2 s.

Needs Debian's wrk python3-fastapi uvicorn python3-redis python3-hiredis
python3-uvloop python3-httptools python3-xgboost python3-numpy, Redis on
6390 (scripts/services start) and the main job's state in
examples/flights/.keel (scripts/main), or --flights pointing at a repository
that has it.

    bench/predict_bench.py                          # 3 runs of 15 s + 60 s swap
    bench/predict_bench.py --runs 1 --duration 5 --swap 0
"""

import argparse
import csv
import ctypes
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import time

import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_bench import (BenchError, fmt_ms, http, lua_script, median_of, run, wait_ready,  # noqa: E402
                         start, stop, wrk, parse_ms)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = "/usr/bin/python3"
WORK = os.path.join(ROOT, ".cache", "bench", "predict")  # --work
RESULTS = os.path.join(ROOT, ".cache", "bench", "predict_results.json")  # --results
MODEL = "flight_delay"
AT = "2001-06-15 06:00:00"
PREFIX = "keel_bench_predict"
VIEWS = ["origin_delay", "destination_delay", "airport_info"]
PATH = f"/v1/models/{MODEL}:predict"
TARGET_RPS, TARGET_P99_MS, TARGET_RATIO = 10000.0, 2.0, 20.0


def set_paths(work, results):
    global WORK, RESULTS
    WORK, RESULTS = os.path.abspath(work), os.path.abspath(results)


def log(message):
    print(f"[predict-bench] {message}", file=sys.stderr, flush=True)


# --- DuckDB through its C library (no Python package on Debian) ---------------

class DuckDB:
    """Runs statements on an in-memory DuckDB (third_party/duckdb/libduckdb.so)."""

    def __init__(self, library):
        self.lib = ctypes.CDLL(library)
        self.lib.duckdb_result_error.restype = ctypes.c_char_p
        self.db, self.con = ctypes.c_void_p(), ctypes.c_void_p()
        if self.lib.duckdb_open(None, ctypes.byref(self.db)) != 0:
            raise BenchError("duckdb_open failed")
        if self.lib.duckdb_connect(self.db, ctypes.byref(self.con)) != 0:
            raise BenchError("duckdb_connect failed")

    def execute(self, sql):
        result = ctypes.create_string_buffer(256)  # duckdb_result (48 bytes in 1.4)
        state = self.lib.duckdb_query(self.con, sql.encode(), result)
        error = self.lib.duckdb_result_error(result)
        self.lib.duckdb_destroy_result(result)
        if state != 0:
            raise BenchError(f"DuckDB: {error.decode() if error else 'error'} in: {sql}")

    def to_rows(self, select, path):
        """The rows of `select` as dicts of strings (through a CSV file at `path`)."""
        self.execute(f"COPY ({select}) TO '{path}' (HEADER, DELIMITER ',')")
        with open(path, newline="") as f:
            return list(csv.DictReader(f))


# --- the copy of the flights state --------------------------------------------

def keel_json(keel, repo, *argv):
    return json.loads(run([keel, *argv, "--repo", repo, "--json"]))


def prepare_repo(keel, flights, repo):
    state = os.path.join(flights, ".keel")
    for needed in ("catalog.db", "online", "registry.db"):
        if not os.path.exists(os.path.join(state, needed)):
            raise BenchError(f"{state}/{needed} is missing: run scripts/main (or pass --flights)")
    model = keel_json(keel, flights, "models", "show", MODEL)
    if model.get("production_version") is None:
        raise BenchError(f"{flights}: {MODEL} has no production version")
    production = keel_json(keel, flights, "models", "show", MODEL,
                           str(model["production_version"]))
    bundle_src = production["lineage"]["bundle_uri"]
    if os.path.exists(repo):
        shutil.rmtree(repo)
    os.makedirs(os.path.join(repo, ".keel", "bundles"))
    for folder in ("features", "pipelines"):
        shutil.copytree(os.path.join(flights, folder), os.path.join(repo, folder))
    with open(os.path.join(repo, "keel.yaml"), "w") as f:
        f.write("# Generated by bench/predict_bench.py: a copy of examples/flights' state.\n"
                "project: flights\ndefinitions: [features]\nvariables:\n"
                f"  KEEL_DATA: {os.path.join(ROOT, '.cache', 'data')}\n")
    shutil.copy2(os.path.join(state, "catalog.db"), os.path.join(repo, ".keel", "catalog.db"))
    shutil.copytree(os.path.join(state, "online"), os.path.join(repo, ".keel", "online"))
    bundle = os.path.join(repo, ".keel", "bundles", "flight_delay")
    shutil.copytree(bundle_src, bundle)
    with open(os.path.join(bundle, "bundle.hash")) as f:
        bundle_hash = f.read().strip()
    for _ in range(2):
        run([keel, "models", "register", MODEL, "--repo", repo, "--bundle-uri", bundle,
             "--bundle-hash", bundle_hash, "--description", "bench/predict_bench.py"])
    run([keel, "models", "promote", MODEL, "1", "--repo", repo, "--to", "staging",
         "--reason", "benchmark"])
    run([keel, "models", "promote", MODEL, "1", "--repo", repo, "--to", "production",
         "--sign-off", "bench: benchmark copy", "--reason", "benchmark"])
    return bundle, bundle_hash, production


def request_rows(duckdb, count):
    data = os.path.join(ROOT, ".cache", "data", "flights-3m.parquet")
    select = (f"SELECT strftime(date, '%Y-%m-%d %H:%M:%S') AS date, origin, destination, "
              f"distance FROM read_parquet('{data}') WHERE date >= TIMESTAMP '{AT}' AND "
              "date < TIMESTAMP '2001-06-16 00:00:00' "
              "ORDER BY hash(origin || destination || CAST(date AS VARCHAR)), date, origin, "
              f"destination LIMIT {count}")
    rows = duckdb.to_rows(select, os.path.join(WORK, "rows.csv"))
    return [{"origin": r["origin"], "destination": r["destination"], "date": r["date"],
             "distance": int(r["distance"])} for r in rows]


# --- servers ------------------------------------------------------------------

def post(port, path, body):
    status, raw = http(port, path, body)
    if status != 200:
        raise BenchError(f"POST {path} on port {port}: HTTP {status}: {raw[:500]!r}")
    return json.loads(raw)


def export_features(keel_port, airports, store):
    """keel's values of the three views for `airports` at AT, into Redis as JSON objects."""
    answer = post(keel_port, "/v1/features",
                  {"features": VIEWS, "entities": {"iata": airports}, "at": AT})
    names = answer["metadata"]["feature_names"]
    for key in store.scan_iter(f"{PREFIX}:*", count=1000):
        store.delete(key)
    pipe = store.pipeline(transaction=False)
    written = 0
    for view in VIEWS:
        columns = [(i, n[len(view) + 2:]) for i, n in enumerate(names)
                   if n.startswith(view + "__")]
        for a, airport in enumerate(airports):
            statuses = [answer["results"][i]["statuses"][a] for i, _ in columns]
            if all(s == "NOT_FOUND" for s in statuses):
                continue  # the store holds nothing for this airport
            value = {feature: answer["results"][i]["values"][a] for i, feature in columns}
            pipe.set(f"{PREFIX}:{view}:{airport}", json.dumps(value))
            written += 1
    pipe.execute()
    return written


def check_agreement(keel_port, peer_port, rows):
    """Each row alone and all rows at once, to both servers: predictions to 1e-6 and the
    missing features must agree. Returns (compared, mismatches, max difference)."""
    bodies = [{"rows": [row], "at": AT} for row in rows] + [{"rows": rows, "at": AT}]
    compared, mismatches, worst, problems = 0, 0, 0.0, []
    for body in bodies:
        k, p = post(keel_port, PATH, body), post(peer_port, PATH, body)
        if k.get("fallback") is not None:
            problems.append(f"keel fell back: {k['fallback']}")
        for r, (a, b) in enumerate(zip(k["predictions"], p["predictions"])):
            compared += 1
            worst = max(worst, abs(a - b))
            missing_k = sorted(k["features"][r]["missing"])
            missing_p = sorted(p["features"][r]["missing"])
            if abs(a - b) > 1e-6 or missing_k != missing_p:
                mismatches += 1
                problems.append(f"{body['rows'][r]}: keel {a} {missing_k} vs peer {b} "
                                f"{missing_p}")
        if len(k["predictions"]) != len(body["rows"]) or len(p["predictions"]) != len(
                body["rows"]):
            mismatches += 1
            problems.append("a server answered another number of predictions")
    return compared, mismatches, worst, problems


# --- the hot-swap run -----------------------------------------------------------

def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("T", " ").rstrip("Z"))


def swap_run(keel, repo, keel_port, script, seconds, poll_ms, duckdb):
    log(f"hot swap: {seconds} s of wrk -t2 -c8; promote version 2 at {seconds / 3:.0f} s, "
        f"roll back at {2 * seconds / 3:.0f} s")
    since = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M:%S.%f")
    argv = ["wrk", "-t2", "-c8", f"-d{seconds}s", "--timeout=5s", "--latency", "-s", script,
            f"http://127.0.0.1:{keel_port}"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    t0 = time.time()
    time.sleep(seconds / 3)
    run([keel, "models", "promote", MODEL, "2", "--repo", repo, "--to", "staging",
         "--reason", "benchmark swap"])
    run([keel, "models", "promote", MODEL, "2", "--repo", repo, "--to", "production",
         "--sign-off", "bench: hot swap under load", "--reason", "benchmark swap"])
    log(f"  promoted version 2 at {time.time() - t0:.1f} s")
    time.sleep(max(0.0, t0 + 2 * seconds / 3 - time.time()))
    run([keel, "models", "rollback", MODEL, "--repo", repo, "--reason", "benchmark rollback"])
    log(f"  rolled back at {time.time() - t0:.1f} s")
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise BenchError(f"wrk failed:\n{out}")
    total = int(re.search(r"^\s+(\d+) requests in", out, re.M).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       out)
    non2xx = int(bad.group(1)) if bad else 0
    socket_errors = sum(int(n) for n in errors.groups()) if errors else 0
    rps = float(re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M).group(1))
    p99 = parse_ms(dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", out, re.M))["99"])
    time.sleep(1.0)  # the log's writer thread

    history = keel_json(keel, repo, "models", "history", MODEL)
    # Production over time: [(since, version)], from the registry's transitions.
    timeline = []
    for event in history:
        if event["to"] == "production":
            timeline.append((parse_time(event["time"]), event["version"]))
    timeline.sort()
    exported = os.path.join(WORK, "swap_log.parquet")
    run([keel, "logs", "export", "--repo", repo, "--model", MODEL, "--since", since, "--out",
         exported])
    records = duckdb.to_rows(
        f"SELECT strftime(time, '%Y-%m-%d %H:%M:%S.%f') AS time, version, "
        f"coalesce(fallback, '') AS fallback FROM read_parquet('{exported}') ORDER BY time",
        os.path.join(WORK, "swap_log.csv"))

    def production_at(t):
        version = None
        for start_time, v in timeline:
            if start_time <= t:
                version = v
        return version

    transitions = [(t, v) for t, v in timeline if t >= parse_time(since)]
    lag_budget = datetime.timedelta(milliseconds=poll_ms + 2000)
    lags = []
    for t, v in transitions:
        first = next((parse_time(r["time"]) for r in records
                      if parse_time(r["time"]) >= t and int(r["version"]) == v), None)
        lags.append(None if first is None else (first - t).total_seconds())
    previous = [production_at(t - datetime.timedelta(microseconds=1)) for t, _ in transitions]
    wrong, late_old, fallbacks, versions_seen = 0, 0, 0, []
    for r in records:
        t, v = parse_time(r["time"]), int(r["version"])
        if r["fallback"]:
            fallbacks += 1
        if not versions_seen or versions_seen[-1] != v:
            versions_seen.append(v)
        allowed = {production_at(t)}
        for (tt, new), old, lag in zip(transitions, previous, lags):
            if tt <= t <= tt + lag_budget:
                allowed.add(old)  # not yet polled / still loading
                if v == old and lag is not None and t > tt + datetime.timedelta(seconds=lag):
                    late_old += 1  # started after the first request on the new version
        if v not in allowed:
            wrong += 1
    result = {"seconds": seconds, "requests": total, "rps": rps, "p99_ms": p99,
              "non_2xx": non2xx, "socket_errors": socket_errors, "logged": len(records),
              "fallbacks": fallbacks, "wrong_version": wrong,
              "old_after_switch": late_old,
              "transitions": [{"time": str(t), "version": v, "lag_s": lag}
                              for (t, v), lag in zip(transitions, lags)],
              "versions_in_order": versions_seen, "poll_ms": poll_ms}
    ok = (non2xx == 0 and socket_errors == 0 and wrong == 0 and len(transitions) == 2 and
          all(lag is not None and lag <= lag_budget.total_seconds() for lag in lags))
    result["passed"] = ok
    return result


# --- main -----------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keel", default=os.path.join(ROOT, "build", "src", "keel"))
    parser.add_argument("--flights", default=os.path.join(ROOT, "examples", "flights"),
                        help="the flights repository whose .keel state is copied")
    parser.add_argument("--redis", default="redis://127.0.0.1:6390")
    parser.add_argument("--rows", type=int, default=300, help="distinct request rows")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk measurement")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads under load")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections under load")
    # keel serve's own default: an event loop per core serves any number of
    # connections; more loops than cores only add context switches.
    parser.add_argument("--rate-connections", type=int, default=16,
                        help="connections of the held-rate load (each waits 1 ms after an answer)")
    parser.add_argument("--keel-threads", type=int, default=2 * (os.cpu_count() or 1),
                        help="keel serve --threads: event loops (default: two per core, since "
                        "wrk's threads share the cores; see bench/README.md)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers for the peer")
    parser.add_argument("--poll-ms", type=int, default=1000, help="keel serve --model-poll-ms")
    parser.add_argument("--swap", type=int, default=60,
                        help="seconds of the hot-swap run (0: none)")
    parser.add_argument("--keel-port", type=int, default=6631)
    parser.add_argument("--peer-port", type=int, default=6632)
    parser.add_argument("--work", default=WORK,
                        help="scratch folder (the repository copy, logs; another one lets two "
                        "benchmarks run side by side)")
    parser.add_argument("--results", default=RESULTS, help="where the results JSON goes")
    args = parser.parse_args()
    set_paths(args.work, args.results)

    if shutil.which("wrk") is None:
        raise BenchError("wrk is missing (apt-get install wrk)")
    for module in ("fastapi", "uvicorn", "redis", "xgboost", "numpy"):
        probe = subprocess.run([PYTHON, "-c", f"import {module}"], capture_output=True)
        if probe.returncode != 0:
            raise BenchError(f"{PYTHON} cannot import {module} (see the docstring's packages)")
    if not os.path.exists(args.keel):
        raise BenchError(f"{args.keel} is missing: scripts/build release")
    library = os.path.join(ROOT, "third_party", "duckdb", "libduckdb.so")
    if not os.path.exists(library):
        raise BenchError(f"{library} is missing: scripts/setup")
    os.makedirs(WORK, exist_ok=True)
    keel = os.path.join(WORK, "keel")
    shutil.copy2(args.keel, keel)  # a rebuild during the benchmark does not change it
    repo = os.path.join(WORK, "repo")
    bundle, bundle_hash, source_version = prepare_repo(keel, os.path.abspath(args.flights), repo)
    log(f"copied {args.flights} state: {MODEL} version {source_version['version']} (bundle "
        f"{bundle_hash}) registered as versions 1 (production) and 2 in {repo}")
    duckdb = DuckDB(library)
    rows = request_rows(duckdb, args.rows)
    airports = sorted({r["origin"] for r in rows} | {r["destination"] for r in rows})
    log(f"{len(rows)} request rows of 2001-06-15 ({len(airports)} airports)")

    keel_proc = peer_proc = None
    scripts, samples, swap = [], {}, None
    try:
        keel_proc = start([keel, "serve", "--repo", repo, "--port", str(args.keel_port),
                           "--threads", str(args.keel_threads), "--model", MODEL,
                           "--model-poll-ms", str(args.poll_ms)],
                          os.path.join(WORK, "keel_serve.log"))
        wait_ready(args.keel_port, "/v2/health/ready", keel_proc, "keel serve", seconds=120)
        store = redis.Redis.from_url(args.redis)
        written = export_features(args.keel_port, airports, store)
        log(f"wrote {written} feature view values (keel's, at {AT}) to Redis")
        config = os.path.join(WORK, "peer.json")
        with open(config, "w") as f:
            json.dump({"redis_url": args.redis, "prefix": PREFIX, "bundle": bundle,
                       "model": MODEL, "version": 1,
                       "log_dir": os.path.join(WORK, "peer_log")}, f, indent=1)
        shutil.rmtree(os.path.join(WORK, "peer_log"), ignore_errors=True)
        env = dict(os.environ, PREDICT_PEER_CONFIG=config, OMP_NUM_THREADS="1")
        peer_proc = start([PYTHON, "-m", "uvicorn", "predict_peer:app", "--app-dir",
                           os.path.join(ROOT, "bench"), "--host", "127.0.0.1", "--port",
                           str(args.peer_port), "--workers", str(args.workers),
                           "--no-access-log", "--log-level", "warning"],
                          os.path.join(WORK, "peer.log"), env=env, cwd=ROOT)
        wait_ready(args.peer_port, "/health", peer_proc, "the peer", seconds=120)

        compared, mismatches, worst, problems = check_agreement(args.keel_port, args.peer_port,
                                                                rows)
        log(f"agreement: {compared} predictions compared, {mismatches} mismatches, largest "
            f"difference {worst:.3g}")
        if mismatches or problems:
            raise BenchError("keel and the peer disagree:\n  " + "\n  ".join(problems[:20]))

        bodies = [{"rows": [row], "at": AT} for row in rows]
        keel_script = lua_script(PATH, bodies, WORK)
        peer_script = lua_script(PATH, bodies, WORK)
        rate_script = lua_script(PATH, bodies, WORK, delay_ms=1)
        scripts += [keel_script, peer_script, rate_script]
        plan = [("keel", args.keel_port, keel_script), ("peer", args.peer_port, peer_script)]
        log("warm-up: 3 s per server")
        for _, port, script in plan:
            wrk(port, script, args.threads, args.connections, 3)
        loads = {"load": (args.threads, args.connections), "low": (1, 1)}
        for r in range(args.runs):
            for server, port, script in plan:
                for load, (threads, connections) in loads.items():
                    result = wrk(port, script, threads, connections, args.duration)
                    samples.setdefault((server, load), []).append(result)
                    log(f"run {r + 1}/{args.runs} {server:5} {load:5} {result['rps']:9.1f} "
                        f"req/s  p50 {fmt_ms(result['p50_ms'])} ms  p99 "
                        f"{fmt_ms(result['p99_ms'])} ms")
            # keel at a held rate (each connection waits 1 ms after an answer):
            # the latency a service sees at >= 10 000 req/s, without the queueing of a
            # flat-out load that also takes the cores from the server.
            result = wrk(args.keel_port, rate_script, args.threads, args.rate_connections,
                         args.duration)
            samples.setdefault(("keel", "rate"), []).append(result)
            log(f"run {r + 1}/{args.runs} keel  rate  {result['rps']:9.1f} req/s  p50 "
                f"{fmt_ms(result['p50_ms'])} ms  p99 {fmt_ms(result['p99_ms'])} ms")
        stop(peer_proc)
        peer_proc = None
        if args.swap > 0:
            swap = swap_run(keel, repo, args.keel_port, keel_script, args.swap, args.poll_ms,
                            duckdb)
    finally:
        stop(keel_proc)
        stop(peer_proc)
        for script in scripts:
            os.unlink(script)

    medians = {key: median_of(value) for key, value in samples.items()}
    print(f"\nPOST {PATH}, 1 row per request over {len(rows)} June flights, {args.runs} run(s) x "
          f"{args.duration} s, median; load = wrk -t{args.threads} -c{args.connections}, low = "
          f"-t1 -c1; keel serve --threads {args.keel_threads} (RocksDB, prediction log on) vs "
          f"FastAPI + uvicorn --workers {args.workers} + redis-py + xgboost (log on); "
          f"{os.cpu_count()} cores shared with wrk and Redis")
    header = (f"{'load':5} {'server':6} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
              f"   {'keel x req/s':>12} {'p99 ratio':>9}")
    print(header)
    print("-" * len(header))
    results = {"at": AT, "rows": len(rows), "runs": args.runs, "duration_s": args.duration,
               "load": {"threads": args.threads, "connections": args.connections},
               "keel_threads": args.keel_threads, "peer_workers": args.workers,
               "agreement": {"compared": compared, "mismatches": mismatches,
                             "max_difference": worst}}
    for load in loads:
        k, p = medians["keel", load], medians["peer", load]
        speedup, p99_ratio = k["rps"] / p["rps"], p["p99_ms"] / k["p99_ms"]
        results[load] = {"keel": k, "peer": p, "throughput_ratio": speedup,
                         "p99_ratio": p99_ratio}
        for server, m in (("keel", k), ("peer", p)):
            extra = f"   {speedup:11.1f}x {p99_ratio:8.1f}x" if server == "keel" else ""
            print(f"{load:5} {server:6} {m['rps']:9.1f} {fmt_ms(m['p50_ms']):>8} "
                  f"{fmt_ms(m['p99_ms']):>8}{extra}")
    k_load, k_low, k_rate = medians["keel", "load"], medians["keel", "low"], medians["keel", "rate"]
    results["rate"] = {"keel": k_rate, "connections": args.rate_connections, "delay_ms": 1}
    print(f"rate  keel   {k_rate['rps']:9.1f} {fmt_ms(k_rate['p50_ms']):>8} "
          f"{fmt_ms(k_rate['p99_ms']):>8}   (wrk -t{args.threads} -c{args.rate_connections}, "
          f"each connection waits 1 ms after an answer)")
    ratio = results["load"]["throughput_ratio"]
    print()
    print(f"throughput: keel {k_load['rps']:.0f} req/s, target >= {TARGET_RPS:.0f}: "
          f"{'PASS' if k_load['rps'] >= TARGET_RPS else 'MISS'}")
    print(f"p99: keel {fmt_ms(k_low['p99_ms'])} ms at -c1, {fmt_ms(k_load['p99_ms'])} ms flat out "
          f"({k_load['rps']:.0f} req/s), target <= {TARGET_P99_MS} ms: "
          f"{'PASS' if max(k_low['p99_ms'], k_load['p99_ms']) <= TARGET_P99_MS else 'MISS'}"
          f" (at a held {k_rate['rps']:.0f} req/s: {fmt_ms(k_rate['p99_ms'])} ms)")
    print(f"ratio: keel {ratio:.1f}x the peer's req/s, target >= {TARGET_RATIO:.0f}x: "
          f"{'PASS' if ratio >= TARGET_RATIO else 'MISS'}")
    print(f"agreement: {compared} predictions, {mismatches} mismatches (largest difference "
          f"{worst:.3g})")
    if swap is not None:
        results["swap"] = swap
        lags = ", ".join(f"{t['version']} after {t['lag_s']:.2f} s" if t["lag_s"] is not None
                         else f"{t['version']} never served" for t in swap["transitions"])
        print(f"hot swap ({swap['seconds']} s, {swap['requests']} requests, "
              f"{swap['rps']:.0f} req/s, p99 {fmt_ms(swap['p99_ms'])} ms): non-2xx "
              f"{swap['non_2xx']}, socket errors {swap['socket_errors']}, logged "
              f"{swap['logged']}, fallbacks {swap['fallbacks']}, versions in order "
              f"{swap['versions_in_order']}, served: {lags}; predictions on a version that "
              f"was not production (poll {swap['poll_ms']} ms + 2 s allowed): "
              f"{swap['wrong_version']} (old version after the first new one: "
              f"{swap['old_after_switch']}): {'PASS' if swap['passed'] else 'FAIL'}")
    with open(RESULTS, "w") as f:
        json.dump(results, f, indent=1)
    log(f"wrote {os.path.relpath(RESULTS, ROOT)}")
    return 0 if swap is None or swap["passed"] else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        log(f"FAILED: {error}")
        sys.exit(1)
