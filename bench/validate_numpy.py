#!/usr/bin/python3
"""The NumPy/SciPy peer of the validation benchmark (bench/validate_keel.cc).

What a data scientist writes for "profile January and June, then PSI/KS/JS per
column", vectorised: per column and part count, nulls, mean, variance, min,
max, quantiles (np.quantile), distinct count and top-k (one np.unique with
counts), a histogram (np.histogram) on the reference's decile bins
(np.quantile, deduplicated, outer bins open), then PSI on those bins (shares
floored at 1e-4, as keel and Evidently), scipy.stats.ks_2samp and
scipy.spatial.distance.jensenshannon(base=2) of the binned counts. Categories:
counts per value (np.unique), PSI and Jensen-Shannon on the aligned shares.

    validate_numpy.py --dataset flights|synthetic --dir DIR [--out FILE.json]
                      [--check KEEL.json]

Reads the .npy files bench_validate prepare wrote (no Parquet reader here:
there is no pyarrow), so *read* is np.load. Prints one "BENCH_RESULT {json}"
line. --out writes every statistic as JSON; --check (with --out, outside the
timed part) adds what the agreement check needs to judge keel's sketch-based
numbers from KEEL.json: histograms, PSI and Jensen-Shannon on keel's bins, the
true ranks of keel's quantiles and bin edges, and SciPy's p-value for keel's
KS statistic.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import scipy.spatial.distance
import scipy.stats

QUANTILES = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]
DECILES = np.arange(1, 10) / 10
EPSILON = 1e-4  # PSI's floor for empty bins (keel's PopulationStabilityIndex)


def load(directory, dataset):
    with open(os.path.join(directory, dataset + ".json")) as f:
        meta = json.load(f)
    parts = {}
    for part in ("reference", "current"):
        numeric = np.load(os.path.join(directory, f"{dataset}_{part}.npy"))
        columns, row = {}, 0
        for column in meta["columns"]:
            if column["kind"] == "numeric":
                columns[column["name"]] = numeric[row]
                row += 1
            else:
                columns[column["name"]] = np.load(
                    os.path.join(directory, f"{dataset}_{part}_{column['name']}.npy"))
        parts[part] = columns
    return meta["columns"], parts


def profile_numeric(x):
    valid = x[~np.isnan(x)]
    values, counts = np.unique(valid, return_counts=True)
    top = np.argsort(-counts, kind="stable")[:10]
    return valid, {"rows": int(x.size), "nulls": int(x.size - valid.size),
                   "count": int(valid.size), "mean": float(valid.mean()),
                   "var": float(valid.var()), "min": float(valid.min()),
                   "max": float(valid.max()),
                   "quantiles": np.quantile(valid, QUANTILES).tolist(),
                   "distinct": int(values.size),
                   "top": [[float(values[i]), int(counts[i])] for i in top]}


def histogram(valid, edges):
    return np.histogram(valid, bins=np.concatenate(([-np.inf], edges, [np.inf])))[0]


def psi(reference_counts, current_counts):
    r = np.maximum(reference_counts / reference_counts.sum(), EPSILON)
    c = np.maximum(current_counts / current_counts.sum(), EPSILON)
    return float(np.sum((c - r) * np.log(c / r)))


def compare_numeric(reference, current):
    ref_valid, ref_profile = profile_numeric(reference)
    cur_valid, cur_profile = profile_numeric(current)
    edges = np.unique(np.quantile(ref_valid, DECILES))
    edges = edges[np.isfinite(edges)]
    ref_counts, cur_counts = histogram(ref_valid, edges), histogram(cur_valid, edges)
    ref_profile["histogram"] = ref_counts.tolist()
    cur_profile["histogram"] = cur_counts.tolist()
    ks = scipy.stats.ks_2samp(ref_valid, cur_valid)
    return {"kind": "numeric", "reference": ref_profile, "current": cur_profile,
            "edges": edges.tolist(), "psi": psi(ref_counts, cur_counts),
            "ks_statistic": float(ks.statistic), "ks": float(ks.pvalue),
            "jensen_shannon": float(scipy.spatial.distance.jensenshannon(
                ref_counts, cur_counts, base=2))}


def profile_categorical(x):
    values, counts = np.unique(x, return_counts=True)
    top = np.argsort(-counts, kind="stable")[:10]
    names = [v.decode() for v in values]
    return values, counts, {"rows": int(x.size), "nulls": 0, "count": int(x.size),
                            "distinct": int(values.size),
                            "top": [[names[i], int(counts[i])] for i in top],
                            "categories": dict(zip(names, counts.tolist()))}


def compare_categorical(reference, current):
    ref_values, ref_counts, ref_profile = profile_categorical(reference)
    cur_values, cur_counts, cur_profile = profile_categorical(current)
    union = np.union1d(ref_values, cur_values)
    ref_aligned = np.zeros(union.size)
    cur_aligned = np.zeros(union.size)
    ref_aligned[np.searchsorted(union, ref_values)] = ref_counts
    cur_aligned[np.searchsorted(union, cur_values)] = cur_counts
    return {"kind": "categorical", "reference": ref_profile, "current": cur_profile,
            "psi": psi(ref_aligned, cur_aligned),
            "jensen_shannon": float(scipy.spatial.distance.jensenshannon(
                ref_aligned, cur_aligned, base=2))}


def check_against(keel, parts, result):
    """Statistics on keel's bins and true ranks of keel's quantiles (untimed)."""
    for column in keel["columns"]:
        name = column["name"]
        if column["kind"] != "numeric":
            continue
        ours = result[name]
        ref_valid = np.sort(parts["reference"][name][~np.isnan(parts["reference"][name])])
        cur_valid = np.sort(parts["current"][name][~np.isnan(parts["current"][name])])
        edges = np.array(column["edges"], dtype=float)
        ref_counts, cur_counts = histogram(ref_valid, edges), histogram(cur_valid, edges)

        def ranks(sorted_values, points):
            points = np.array([np.nan if p is None else p for p in points], dtype=float)
            n = sorted_values.size
            return [np.searchsorted(sorted_values, points, side="left").tolist(),
                    np.searchsorted(sorted_values, points, side="right").tolist(), n]

        ours["on_keel_bins"] = {
            "reference_histogram": ref_counts.tolist(),
            "current_histogram": cur_counts.tolist(),
            "psi": psi(ref_counts, cur_counts),
            "jensen_shannon": float(scipy.spatial.distance.jensenshannon(
                ref_counts, cur_counts, base=2)),
            "edge_ranks": ranks(ref_valid, column["edges"]),
            "reference_quantile_ranks": ranks(ref_valid, column["reference"]["quantiles"]),
            "current_quantile_ranks": ranks(cur_valid, column["current"]["quantiles"])}
        statistic = column.get("ks_statistic")
        if statistic is not None:
            n, m = ref_valid.size, cur_valid.size
            ours["on_keel_bins"]["ks_pvalue_of_keel_statistic"] = float(
                scipy.stats.kstwo.sf(statistic, np.round(n * m / (n + m))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True, choices=["flights", "synthetic"])
    parser.add_argument("--dir", required=True)
    parser.add_argument("--out")
    parser.add_argument("--check", help="keel's --out JSON, to add the agreement data")
    args = parser.parse_args()

    started = time.perf_counter()
    columns, parts = load(args.dir, args.dataset)
    read_seconds = time.perf_counter() - started

    compute_started = time.perf_counter()
    compute_cpu_started = time.thread_time()
    result = {}
    for column in columns:
        name = column["name"]
        compare = compare_numeric if column["kind"] == "numeric" else compare_categorical
        result[name] = compare(parts["reference"][name], parts["current"][name])
    compute_seconds = time.perf_counter() - compute_started
    compute_cpu_seconds = time.thread_time() - compute_cpu_started

    rows = parts["reference"][columns[0]["name"]].size + parts["current"][columns[0]["name"]].size
    values = rows * len(columns)
    if args.out:
        if args.check:
            with open(args.check) as f:
                check_against(json.load(f), parts, result)
        out = {"columns": [dict(name=c["name"], **result[c["name"]]) for c in columns]}
        with open(args.out + ".tmp", "w") as f:
            json.dump(out, f, indent=1, allow_nan=True)
        os.replace(args.out + ".tmp", args.out)
    print("BENCH_RESULT " + json.dumps({
        "tool": "numpy", "bench": "validate-" + args.dataset,
        "seconds": {"read": read_seconds, "compute": compute_seconds,
                    "total": read_seconds + compute_seconds,
                    "compute_cpu": compute_cpu_seconds},
        "values": values, "threads": 1, "columns": len(columns),
        "values_per_second_per_core": values / compute_seconds,
        "numpy": np.__version__, "scipy": scipy.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
