#!/usr/bin/python3
"""Training benchmark (issue 5): keel's training path vs XGBoost's own boosting.

    bench/train_bench.py [--build DIR] [--train-rows N] [--rounds N] [--runs N]

Runs build/bench/bench_train (keel: pinned row order, ordinal encoding fitted
on train, dense matrices, XgboostModel::Train with early stopping on May,
predictions, ROC AUC) on flights-3m (January-April train, May validation),
then trains XGBoost itself (python3-xgboost 1.7.4: DMatrix + xgb.train with
the same parameters, evals and early stopping) on the very matrices keel
built. Prints both times and keel's overhead:

    overhead = keel total (from columns in memory to AUC) / XGBoost (DMatrix + boosting) - 1

target: <= 25 %. Also checks that both trained the same model: same best
iteration and validation predictions equal to 1e-6. Runs alternate (keel,
peer, keel, peer, ...); medians are reported. Needs Debian's /usr/bin/python3.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import xgboost as xgb

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_keel(binary, flights, out_dir, train_rows, rounds):
    command = [binary, "--flights", flights, "--dir", out_dir, "--rounds", str(rounds)]
    if train_rows:
        command += ["--train-rows", str(train_rows)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    for line in output.splitlines():
        if line.startswith("BENCH_RESULT "):
            return json.loads(line[len("BENCH_RESULT "):])
    raise RuntimeError("bench_train printed no BENCH_RESULT: " + output)


def run_peer(out_dir):
    config = json.load(open(os.path.join(out_dir, "params.json")))
    cols = config["cols"]
    load = lambda name, dtype: np.fromfile(os.path.join(out_dir, name), dtype=dtype)
    train_x = load("train_x.f32", np.float32).reshape(-1, cols)
    train_y = load("train_y.f64", np.float64)
    valid_x = load("valid_x.f32", np.float32).reshape(-1, cols)
    valid_y = load("valid_y.f64", np.float64)
    start = time.perf_counter()
    dtrain = xgb.DMatrix(train_x, label=train_y, nthread=2)
    dvalid = xgb.DMatrix(valid_x, label=valid_y, nthread=2)
    booster = xgb.train(config["params"], dtrain, num_boost_round=config["num_rounds"],
                        evals=[(dvalid, "valid")],
                        early_stopping_rounds=config["early_stopping_rounds"], verbose_eval=False)
    seconds = time.perf_counter() - start
    prediction = booster.predict(dvalid, iteration_range=(0, booster.best_iteration + 1))
    return seconds, booster.best_iteration, prediction


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--flights", default=os.path.join(ROOT, ".cache/data/flights-3m.parquet"))
    parser.add_argument("--train-rows", type=int, default=0, help="sample of the training months")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    binary = os.path.join(args.build, "bench", "bench_train")
    if not os.path.exists(binary):
        sys.exit(f"{binary} is missing: ninja -C {args.build} bench_train")
    keel_runs, peer_runs = [], []
    with tempfile.TemporaryDirectory(prefix="keel_train_bench_") as out_dir:
        for _ in range(args.runs):
            keel_runs.append(run_keel(binary, args.flights, out_dir, args.train_rows, args.rounds))
            peer_seconds, peer_best, peer_prediction = run_peer(out_dir)
            peer_runs.append(peer_seconds)
        keel_prediction = np.fromfile(os.path.join(out_dir, "keel_valid_pred.f64"), dtype=np.float64)
    last = keel_runs[-1]
    same_best = int(last["best_iteration"]) == peer_best
    max_diff = float(np.max(np.abs(keel_prediction - peer_prediction)))
    median = lambda key: statistics.median(run["seconds"][key] for run in keel_runs)
    keel_total, keel_boost = median("total"), median("boost")
    peer = statistics.median(peer_runs)
    overhead = keel_total / peer - 1.0
    print(f"training rows {int(last['train_rows'])}, validation rows "
          f"{int(last['valid_rows'])}, rounds boosted "
          f"{int(last['rounds_boosted'])}, best iteration {peer_best}, "
          f"validation AUC {last['valid_auc']:.4f}")
    print(f"{'tool':<36} {'seconds (median of ' + str(args.runs) + ')':>24}")
    print(f"{'keel prepare (order, encode, matrix)':<36} {median('prepare'):>24.3f}")
    print(f"{'keel boost (XgboostModel::Train)':<36} {keel_boost:>24.3f}")
    print(f"{'keel evaluate (predict, AUC, save)':<36} {median('evaluate'):>24.3f}")
    print(f"{'keel total':<36} {keel_total:>24.3f}")
    print(f"{'xgboost.py (DMatrix + xgb.train)':<36} {peer:>24.3f}")
    verdict = "PASS" if overhead <= 0.25 else "FAIL"
    print(f"keel overhead over XGBoost's own boosting: {overhead * 100:+.1f} % "
          f"(target <= 25 %): {verdict}")
    print(f"same model: best iteration {'equal' if same_best else 'DIFFERENT'}, "
          f"max |prediction difference| {max_diff:.3g}")
    print("BENCH_RESULT " + json.dumps({"tool": "keel-vs-xgboost", "bench": "train",
                                        "keel_total": keel_total, "keel_boost": keel_boost,
                                        "xgboost": peer, "overhead": overhead,
                                        "same_best_iteration": same_best,
                                        "max_prediction_difference": max_diff}))
    return 0 if same_best and max_diff <= 1e-6 else 1


if __name__ == "__main__":
    sys.exit(main())
