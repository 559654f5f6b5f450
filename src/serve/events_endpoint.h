#pragma once

// The HTTP side of streaming ingestion (event_ingest.h), kept apart from the
// HTTP library: `keel serve` hands these the request and sends the Reply.
//
//   POST /v1/events[?source=NAME]
//     body: {"source": NAME, "events": [{...}, ...]}, or a JSON array of
//     events (source from ?source=), or JSON lines - one event object per
//     line (source from ?source=).
//     200 {"events": n, "accepted": n, "views": [{"view": "name@version",
//          "applied": rows, "duplicates": d, "late": l, "no_key": k}, ...],
//          "warnings": [{"check", "column", "value", "threshold", "detail"}]}
//          - durable: an answered batch survives kill -9;
//     422 {"error": "...", "rejected": [{"index": i, "reason": "..."}]} when
//          any event fails its schema or an error-level expectation: nothing
//          is applied;
//     400 malformed JSON (naming the line for JSON lines) or shape; 404 an
//     unknown source; 413 more events than the limit; 503 store errors.
//   GET /v1/freshness
//     200 {"views": [{"view", "source", "newest_event": "2001-06-15 10:30:00"
//          or null, "freshness_seconds": now - newest_event or null}, ...]}

#include <string_view>

#include "serve/event_ingest.h"
#include "serve/lookup.h"

namespace keel::serve {

Reply IngestEvents(EventIngestor* ingestor, std::string_view body, std::string_view source_param,
                   size_t max_events);

Reply FreshnessReply(EventIngestor* ingestor, Timestamp now);

}  // namespace keel::serve
