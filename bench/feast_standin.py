"""bench/feast_standin.py - a stand-in for Feast's Python feature server.

Run it the way a Feast server is deployed, with Debian's Python and uvicorn:

    FEAST_STANDIN_REGISTRY=.cache/bench/serve/registry.json \\
    /usr/bin/python3 -m uvicorn feast_standin:app --app-dir bench --port 6602 --workers 2

It serves `POST /get-online-features` with the cost structure of Feast's
Python server (feast/feature_server.py with the Redis online store,
feast/infra/online_stores/redis.py), reading the keys `keel materialize`
wrote:

  - FastAPI + uvicorn; the body is validated by a pydantic model
    (GetOnlineFeaturesRequest); the answer is a dict that FastAPI serialises
    to JSON (Feast returns MessageToDict of its proto the same way);
  - redis-py (with hiredis, as feast[redis] installs it): one pipeline per
    request, one command per entity x view (Feast sends one HMGET per entity;
    keel stores one value per entity and view, so here it is one GET);
  - the values are decoded in Python, feature by feature.

It is a stand-in for the costs, not a re-implementation of keel. What it
computes from keel's encoding (src/features/online.cc EncodeEntityState,
src/features/window_kernel.cc BucketedSeries::AppendEncoded,
src/features/exact_sum.cc ExactSum::AppendEncoded):

  window views only; per stream the hop buckets whose start is at or after
  FloorToHop(at - length, hop), merged into count, the exact sum (the chunks
  as one Python integer, rounded once to the nearest double, as keel does),
  min and max. Aggregations: count, sum, mean (rounded sum / count), min,
  max. last and stddev are refused (501). min/max compare as plain floats
  (keel orders -0.0 below +0.0; the benchmark's values are integers).

Statuses follow keel's Feast answer (src/serve/lookup.h): an entity the store
does not hold is NOT_FOUND with count 0 and the rest null; an empty window
gives count 0 (PRESENT) and null (NULL_VALUE) otherwise; a null key is
INVALID. Like keel (and unlike Feast) it accepts "at" (the read time; default
now) so that both servers read the 2001 data at the same instant.

The "registry" (FEAST_STANDIN_REGISTRY, written by bench/serve_bench.py) is a
JSON file: {"project", "redis_url", "entities": {name: [[key, "string"|
"int64"], ...]}, "views": {name: {"version", "entity", "keys": [column per
entity key], "streams": n, "features": [{"name", "aggregation", "stream",
"length_us", "hop_us"}]}}}.
"""

import datetime
import json
import os
import struct
from typing import Any, Dict, List, Optional

import redis
import xxhash
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
EPOCH_TEXT = "1970-01-01T00:00:00Z"
SUPPORTED = {"count", "sum", "mean", "min", "max"}

_HEADER = struct.Struct("<BBqQqI")  # version, kind, newest_ts, next_arrival, applied_through, streams
_SERIES_HEADER = struct.Struct("<BqqI")  # version, hop, horizon, buckets
_BUCKET = struct.Struct("<qqdddqQ")  # start, count, min, max, last, last_ts, last_arrival
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_PLAIN = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@/=+-")
_SCALE = 1 << 1074  # an exact sum's unit is 2^-1074


def _escape(raw: bytes) -> str:
    """src/store/redis_store.cc AppendEscaped."""
    return "".join(chr(b) if b in _PLAIN else "%%%02X" % b for b in raw)


def _encode_entity(entity: str, key_types, values) -> Optional[bytes]:
    """features::EncodeEntityKey: length-prefixed entity name, then each typed key."""
    name = entity.encode()
    out = [_U32.pack(len(name)), name]
    for key_type, value in zip(key_types, values):
        if value is None:
            return None
        if key_type == "string":
            raw = str(value).encode()
            out += [b"s", _U32.pack(len(raw)), raw]
        else:
            out += [b"i", struct.pack("<q", int(value))]
    return b"".join(out)


def _sum_units(raw: bytes) -> int:
    """An ExactSum encoding as an integer count of 2^-1074."""
    count = raw[1]
    if count == 0:
        return 0
    lowest = raw[0]
    value = int.from_bytes(raw[2:-8], "little") + (
        int.from_bytes(raw[-8:], "little", signed=True) << (32 * (count - 1)))
    return value << (32 * lowest)


def _rfc3339(micros: int) -> str:
    moment = EPOCH + datetime.timedelta(microseconds=micros)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = micros % 1_000_000
    if fraction:
        text += ".%03d" % (fraction // 1000) if fraction % 1000 == 0 else ".%06d" % fraction
    return text + "Z"


def _parse_at(text: Optional[str]) -> int:
    if text is None:
        moment = datetime.datetime.now(datetime.timezone.utc)
    else:
        try:
            moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise HTTPException(400, f"at: bad timestamp '{text}'")
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.timezone.utc)
    delta = moment - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


class _View:
    def __init__(self, name, spec, project, entities):
        self.name = name
        self.entity = spec["entity"]
        self.key_types = [t for _, t in entities[self.entity]]
        self.keys = spec["keys"]  # the request's column for each entity key
        self.streams = spec["streams"]
        self.features = spec["features"]
        self.index = {f["name"]: i for i, f in enumerate(self.features)}
        for feature in self.features:
            if feature["aggregation"] not in SUPPORTED:
                raise ValueError(f"{name}:{feature['name']}: {feature['aggregation']} unsupported")
        self.key_prefix = "keel:" + _escape(project.encode()) + ":{"
        self.key_suffix = ":" + _escape(f"{name}@{spec['version']}".encode())

    def redis_key(self, entity_bytes: bytes) -> str:
        return "%s%016x}:%s%s" % (self.key_prefix, xxhash.xxh3_64_intdigest(entity_bytes),
                                  _escape(entity_bytes), self.key_suffix)

    def read(self, value: Optional[bytes], selected: List[int], at: int):
        """(values, statuses, event timestamp) of the selected features for one entity."""
        if value is None:
            values = [0 if self.features[i]["aggregation"] == "count" else None for i in selected]
            return values, ["NOT_FOUND"] * len(selected), EPOCH_TEXT
        version, kind, newest, _, _, streams = _HEADER.unpack_from(value, 0)
        if version != 1 or kind != 1 or streams != self.streams:
            raise HTTPException(500, f"view {self.name}: unexpected value encoding")
        offset = _HEADER.size
        series = []
        for _ in range(streams):
            (length,) = _U32.unpack_from(value, offset)
            series.append((offset + 4, offset + 4 + length))
            offset += 4 + length
        # Per stream: the distinct windows asked for, and whether sums are needed.
        wanted: Dict[int, Dict[int, None]] = {}
        need_sum = set()
        for i in selected:
            feature = self.features[i]
            wanted.setdefault(feature["stream"], {})[feature["length_us"]] = None
            if feature["aggregation"] in ("sum", "mean"):
                need_sum.add(feature["stream"])
        merged = {}  # (stream, length) -> [count, sum units, min, max]
        for stream, lengths in wanted.items():
            for length, state in zip(*self._read_stream(value, series[stream], sorted(lengths),
                                                        at, stream in need_sum)):
                merged[stream, length] = state
        values, statuses = [], []
        for i in selected:
            feature = self.features[i]
            count, total, low, high = merged[feature["stream"], feature["length_us"]]
            aggregation = feature["aggregation"]
            result = None
            if aggregation == "count":
                result = count
            elif count:
                if aggregation in ("sum", "mean"):
                    try:
                        result = total / _SCALE
                        if aggregation == "mean":
                            result = result / count
                    except OverflowError:
                        result = None
                elif aggregation == "min":
                    result = low
                else:
                    result = high
            values.append(result)
            statuses.append("NULL_VALUE" if result is None else "PRESENT")
        return values, statuses, _rfc3339(newest)

    @staticmethod
    def _read_stream(value, bounds, lengths, at, with_sums):
        """Merged states of the windows `lengths` (ascending) of one BucketedSeries."""
        offset, end = bounds
        _, hop, _, buckets = _SERIES_HEADER.unpack_from(value, offset)
        offset += _SERIES_HEADER.size
        # Window k covers buckets starting at or after starts[k] (descending).
        starts = [((at - length) // hop) * hop for length in lengths]
        segments = [[0, 0, None, None] for _ in lengths]  # bucket ranges between window starts
        for _ in range(buckets):
            start, count, low, high, _, _, _ = _BUCKET.unpack_from(value, offset)
            offset += _BUCKET.size
            (sum_length,) = _U16.unpack_from(value, offset)
            sum_raw = value[offset + 2:offset + 2 + sum_length]
            offset += 2 + sum_length
            (squares_length,) = _U16.unpack_from(value, offset)
            offset += 2 + squares_length
            if start < starts[-1]:
                continue
            k = 0
            while start < starts[k]:
                k += 1
            segment = segments[k]
            segment[0] += count
            if with_sums:
                segment[1] += _sum_units(sum_raw)
            if segment[2] is None or low < segment[2]:
                segment[2] = low
            if segment[3] is None or high > segment[3]:
                segment[3] = high
        if offset != end:
            raise HTTPException(500, "bucketed series: trailing bytes")
        # Fold the segments from the shortest window outwards.
        states, running = [], [0, 0, None, None]
        for segment in segments:
            running = [running[0] + segment[0], running[1] + segment[1],
                       segment[2] if running[2] is None else
                       running[2] if segment[2] is None else min(running[2], segment[2]),
                       segment[3] if running[3] is None else
                       running[3] if segment[3] is None else max(running[3], segment[3])]
            states.append(running)
        return lengths, states


def _load_registry(path):
    with open(path) as f:
        registry = json.load(f)
    views = {name: _View(name, spec, registry["project"], registry["entities"])
             for name, spec in registry["views"].items()}
    return registry, views


REGISTRY, VIEWS = _load_registry(os.environ.get("FEAST_STANDIN_REGISTRY",
                                                ".cache/bench/serve/registry.json"))
REDIS = redis.Redis.from_url(REGISTRY["redis_url"])
app = FastAPI()


class GetOnlineFeaturesRequest(BaseModel):
    features: List[str]
    entities: Dict[str, List[Any]]
    full_feature_names: bool = False
    at: Optional[str] = None  # keel's replay time (not Feast's)


@app.get("/health")
def health():
    return {"status": "ok"}


@app.post("/get-online-features")
def get_online_features(request: GetOnlineFeaturesRequest):
    at = _parse_at(request.at)
    # Feature references, grouped by view (Feast's _get_features /
    # _group_feature_refs): "view:feature", or "view" for all its features.
    uses: Dict[str, List[int]] = {}
    for ref in request.features:
        view_name, _, feature = ref.partition(":")
        view = VIEWS.get(view_name)
        if view is None:
            raise HTTPException(404, f"no feature view '{view_name}'")
        if not feature:
            uses.setdefault(view_name, []).extend(range(len(view.features)))
        elif feature in view.index:
            uses.setdefault(view_name, []).append(view.index[feature])
        else:
            raise HTTPException(400, f"view '{view_name}' has no feature '{feature}'")
    columns = list(request.entities)
    rows = len(request.entities[columns[0]]) if columns else 0
    if rows == 0 or any(len(v) != rows for v in request.entities.values()):
        raise HTTPException(400, "entities: columns of one non-zero length expected")
    # One pipeline: a GET per entity x view.
    pipe = REDIS.pipeline(transaction=False)
    plan = []
    for view_name in uses:
        view = VIEWS[view_name]
        for column in view.keys:
            if column not in request.entities:
                raise HTTPException(400, f"entities: missing '{column}'")
        key_columns = [request.entities[c] for c in view.keys]
        for row in range(rows):
            entity = _encode_entity(view.entity, view.key_types, [c[row] for c in key_columns])
            if entity is not None:
                pipe.get(view.redis_key(entity))
            plan.append(entity is not None)
    stored = iter(pipe.execute())
    names = list(columns)
    results = [{"values": request.entities[c],
                "statuses": ["NULL_VALUE" if v is None else "PRESENT" for v in request.entities[c]],
                "event_timestamps": [EPOCH_TEXT] * rows} for c in columns]
    planned = iter(plan)
    for view_name, selected in uses.items():
        view = VIEWS[view_name]
        per_feature = [{"values": [], "statuses": [], "event_timestamps": []} for _ in selected]
        for _ in range(rows):
            if next(planned):
                values, statuses, ts = view.read(next(stored), selected, at)
            else:
                values, statuses, ts = [None] * len(selected), ["INVALID"] * len(selected), \
                    EPOCH_TEXT
            for out, value, status in zip(per_feature, values, statuses):
                out["values"].append(value)
                out["statuses"].append(status)
                out["event_timestamps"].append(ts)
        for i, out in zip(selected, per_feature):
            feature = view.features[i]["name"]
            names.append(f"{view_name}__{feature}" if request.full_feature_names else feature)
            results.append(out)
    return {"metadata": {"feature_names": names}, "results": results}
