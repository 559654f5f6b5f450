#!/usr/bin/python3
"""The pandas peer of bench/run's offline benchmarks (Debian's /usr/bin/python3).

    offline_pandas.py windows --flights flights.csv [--out out.csv] [--naive]
    offline_pandas.py asof --flights flights.csv --hourly hourly.csv [--out out.csv]

pandas here has no pyarrow, so it reads the CSV export of the very Parquet file
keel and DuckDB read ("read"); "compute" starts from the DataFrame in memory.
Prints one "BENCH_RESULT {json}" line, like the C++ programs.

windows: mean delay over [t - 1h, t), count over [t - 24h, t), mean delay over
[t - 7d, t) per origin, strictly before each flight.

pandas' rolling(closed='left') is not strict when timestamps tie: a row's window
ends before the row itself, but includes EARLIER rows with the same timestamp
(in pandas 1.5, two flights at 10:00 -> the second sees the first). flights-3m
has many flights per origin and minute, so the exact formulation first sums
delays and counts flights per (origin, minute) - then every timestamp in a
group is unique and closed='left' is exactly "ts < t" - and rolls those.
--naive runs the literal per-row groupby().rolling(closed='left') instead
(reported for information: it leaks same-minute flights).
"""

import argparse
import json
import resource
import sys
import time

import numpy as np
import pandas as pd

WINDOWS = (("mean_delay_1h", "1h", "mean"), ("flights_24h", "24h", "count"),
           ("mean_delay_7d", "7d", "mean"))


def read_flights(path, columns):
    return pd.read_csv(path, usecols=columns, parse_dates=["date"],
                       dtype={"id": "int64", "origin": "string", "delay": "float64"})


def windows_exact(df):
    # One row per (origin, minute), sorted by origin then time; `codes` maps
    # each flight to its row.
    groups = df.groupby(["origin", "date"], sort=True)
    codes = groups.ngroup().to_numpy()
    minutes = groups["delay"].agg(delay_sum="sum", flights="count").reset_index()
    by_origin = minutes.groupby("origin", sort=False)
    out = {"id": df["id"].to_numpy()}
    for name, length, kind in WINDOWS:
        # Rows come out indexed by (origin, date), in `minutes` order: its
        # origins are contiguous and sorted, and sort=False keeps that order.
        rolled = by_origin.rolling(length, on="date", closed="left")[["delay_sum", "flights"]].sum()
        flights = rolled["flights"].fillna(0.0).to_numpy()
        if kind == "count":
            values = flights.astype(np.int64)
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                values = np.where(flights > 0, rolled["delay_sum"].to_numpy() / flights, np.nan)
        out[name] = values[codes]
    return pd.DataFrame(out)


def windows_naive(df):
    df = df.sort_values(["origin", "date"], kind="stable")
    by_origin = df.groupby("origin", sort=False)
    out = {"id": df["id"].to_numpy()}
    for name, length, kind in WINDOWS:
        # In `df` order (see windows_exact), indexed by (origin, date).
        rolling = by_origin.rolling(length, on="date", closed="left")["delay"]
        values = (rolling.count() if kind == "count" else rolling.mean()).to_numpy()
        out[name] = np.nan_to_num(values).astype(np.int64) if kind == "count" else values
    return pd.DataFrame(out)


def asof(spine, hourly):
    left = spine.sort_values("date", kind="stable")
    right = hourly.sort_values("ts", kind="stable")
    joined = pd.merge_asof(left, right, left_on="date", right_on="ts", by="origin",
                           allow_exact_matches=False)
    return joined[["id", "flights", "mean_delay"]]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("bench", choices=["windows", "asof"])
    parser.add_argument("--flights", required=True)
    parser.add_argument("--hourly")
    parser.add_argument("--out")
    parser.add_argument("--naive", action="store_true")
    args = parser.parse_args()

    started = time.perf_counter()
    if args.bench == "windows":
        df = read_flights(args.flights, ["id", "date", "origin", "delay"])
        read = time.perf_counter() - started
        compute_started = time.perf_counter()
        result = windows_naive(df) if args.naive else windows_exact(df)
    else:
        if not args.hourly:
            parser.error("asof needs --hourly")
        spine = read_flights(args.flights, ["id", "date", "origin"])
        # round_trip: pandas' default float parser may be one ulp off.
        hourly = pd.read_csv(args.hourly, parse_dates=["ts"], float_precision="round_trip",
                             dtype={"origin": "string", "flights": "int64", "mean_delay": "float64"})
        read = time.perf_counter() - started
        compute_started = time.perf_counter()
        result = asof(spine, hourly)
    compute = time.perf_counter() - compute_started
    total = time.perf_counter() - started
    report = {
        "tool": "pandas-naive" if args.naive else "pandas",
        "bench": args.bench,
        "seconds": {"read": read, "compute": compute, "total": total},
        "rows": len(result),
        "pandas": pd.__version__,
        "peak_rss_before_output_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }
    if args.out:
        result.to_csv(args.out, index=False)
    print("BENCH_RESULT " + json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as error:  # report and fail loudly, for bench/run
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
