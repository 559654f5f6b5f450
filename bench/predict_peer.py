"""bench/predict_peer.py - the flights prediction endpoint done the usual Python way.

Run it as such a service is deployed, with Debian's Python and uvicorn:

    PREDICT_PEER_CONFIG=.cache/bench/predict/peer.json \\
    /usr/bin/python3 -m uvicorn predict_peer:app --app-dir bench --port 6632 --workers 2

It serves `POST /v1/models/{name}:predict` with the request and answer of
keel's endpoint (src/serve/predict_api.h) for the flights model
(examples/flights, pipelines/delay.yaml), doing the same job:

  - FastAPI + uvicorn; the body is validated by pydantic models; the answer
    is a dict FastAPI serialises to JSON;
  - the features: redis-py (with hiredis) reads the three feature views of
    every row in one pipelined MGET - origin_delay of the origin,
    destination_delay of the destination, airport_info of both - from keys
    `{prefix}:{view}:{iata}` holding JSON objects {feature: value} (written
    by bench/predict_bench.py from keel's own values, so that both servers
    read the same numbers);
  - the request inputs: distance, hour(date) and day_of_week(date) (Sunday
    = 0, as keel's expression evaluator);
  - the bundle's transforms (transforms.json): ordinal encoding of the two
    state columns (index among the sorted training categories; an unseen
    category gets the reserved index len(categories); missing stays NaN);
  - the model: xgboost.Booster(model.ubj).inplace_predict on a float32 row
    matrix in the bundle's model_columns order (nthread 1 per worker);
  - the log: one JSON line per request (request id, time, model, version,
    rows, inputs, predictions) through the logging module to a file per worker
    process.

Null values (the mean of an empty window) are NaN, XGBoost's missing; an
entity the store lacks gives NaN for all the view's features, which are named
in "missing", as keel does. "at" is accepted and not used: Redis holds the values as of the
benchmark's one read time. The config (PREDICT_PEER_CONFIG) is a JSON file:
{"redis_url", "prefix", "bundle", "model", "version", "log_dir"}.
"""

import datetime
import json
import logging
import math
import os
import time
import uuid
from typing import Dict, List, Optional

import numpy as np
import redis
import xgboost
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

CONFIG = json.load(open(os.environ["PREDICT_PEER_CONFIG"]))
PREFIX = CONFIG["prefix"]
MODEL = CONFIG["model"]
VERSION = CONFIG["version"]
REDIS = redis.Redis.from_url(CONFIG["redis_url"])

with open(os.path.join(CONFIG["bundle"], "manifest.json")) as f:
    MANIFEST = json.load(f)
with open(os.path.join(CONFIG["bundle"], "transforms.json")) as f:
    TRANSFORMS = json.load(f)["transforms"]
COLUMNS: List[str] = MANIFEST["model_columns"]
INDEX = {name: i for i, name in enumerate(COLUMNS)}
# column -> {category: code}, and the code of an unseen category.
ORDINAL: Dict[str, Dict[str, float]] = {}
UNSEEN: Dict[str, float] = {}
for transform in TRANSFORMS:
    if transform["kind"] != "ordinal":
        raise SystemExit(f"predict_peer: transform kind {transform['kind']} not supported")
    ORDINAL[transform["column"]] = {c: float(i) for i, c in enumerate(transform["categories"])}
    UNSEEN[transform["column"]] = float(len(transform["categories"]))

BOOSTER = xgboost.Booster(model_file=os.path.join(CONFIG["bundle"], MANIFEST["model"]["file"]))
BOOSTER.set_param({"nthread": 1})

# (view, key column of the row, prefix of the model columns)
READS = [("origin_delay", "origin", "origin_delay__"),
         ("destination_delay", "destination", "destination_delay__"),
         ("airport_info", "origin", "origin__"),
         ("airport_info", "destination", "dest__")]
# The features each view's stored object holds, in model-column order.
VIEW_FEATURES: Dict[str, List[str]] = {}
for _view, _, _prefix in READS:
    VIEW_FEATURES.setdefault(_view, [c[len(_prefix):] for c in COLUMNS if c.startswith(_prefix)])

LOG = logging.getLogger("predictions")
LOG.propagate = False
LOG.setLevel(logging.INFO)
os.makedirs(CONFIG["log_dir"], exist_ok=True)
_handler = logging.FileHandler(os.path.join(CONFIG["log_dir"], f"predictions-{os.getpid()}.jsonl"))
_handler.setFormatter(logging.Formatter("%(message)s"))
LOG.addHandler(_handler)

app = FastAPI()


class Row(BaseModel):
    origin: Optional[str]
    destination: Optional[str]
    date: str
    distance: float


class PredictRequest(BaseModel):
    rows: List[Row]
    at: Optional[str] = None
    request_id: Optional[str] = None
    deadline_ms: Optional[int] = None


@app.get("/health")
def health():
    return {"status": "ok"}


@app.post("/v1/models/{name}:predict")
def predict(name: str, request: PredictRequest):
    started = time.time()
    if name != MODEL:
        raise HTTPException(status_code=404, detail=f"model '{name}' is not served")
    rows = request.rows
    if not rows:
        raise HTTPException(status_code=400, detail="rows: empty")
    keys = [f"{PREFIX}:{view}:{getattr(row, column)}" for row in rows
            for view, column, _ in READS]
    values = REDIS.mget(keys)
    matrix = np.full((len(rows), len(COLUMNS)), np.nan, dtype=np.float32)
    features = []
    inputs = []
    for r, row in enumerate(rows):
        try:
            when = datetime.datetime.strptime(row.date, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            raise HTTPException(status_code=400, detail=f"rows[{r}].date: not a timestamp")
        line = [math.nan] * len(COLUMNS)
        line[INDEX["distance"]] = row.distance
        line[INDEX["hour"]] = float(when.hour)
        line[INDEX["weekday"]] = float((when.weekday() + 1) % 7)
        missing = []
        for v, (view, _, prefix) in enumerate(READS):
            raw = values[r * len(READS) + v]
            if raw is None:  # the store has nothing for this entity
                missing += [prefix + feature for feature in VIEW_FEATURES[view]]
                continue
            stored = json.loads(raw)
            for feature in VIEW_FEATURES[view]:
                column = prefix + feature
                value = stored.get(feature)
                if value is None:  # e.g. the mean of an empty window
                    continue
                if column in ORDINAL:
                    value = ORDINAL[column].get(value, UNSEEN[column])
                line[INDEX[column]] = float(value)
        matrix[r] = line
        inputs.append(line)
        features.append({"missing": missing, "stale": []})
    predictions = BOOSTER.inplace_predict(matrix).tolist()
    request_id = request.request_id or uuid.uuid4().hex
    LOG.info(json.dumps({"request_id": request_id, "time": started, "model": MODEL,
                         "version": VERSION, "rows": [row.dict() for row in rows],
                         "inputs": [[None if math.isnan(x) else x for x in line]
                                    for line in inputs],
                         "predictions": predictions}))
    return {"model": MODEL, "version": VERSION, "request_id": request_id,
            "predictions": predictions, "features": features, "fallback": None}

