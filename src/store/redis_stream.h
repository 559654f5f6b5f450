#pragma once

// A Redis Streams consumer-group reader: how `keel ingest` takes events from
// a stream. At-least-once delivery: an entry stays pending in the group until
// Ack, and a consumer that restarts (same group and consumer name) first gets
// back every entry it read and did not acknowledge. Exactly-once application
// comes from the event-id de-duplication of the online path
// (features/online_events.h), with the entry id as the default event id.

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "common/time.h"

namespace keel::store {

// One stream entry: its id ("1700000000000-0") and its field/value pairs.
struct StreamEntry {
  std::string id;
  std::vector<std::pair<std::string, std::string>> fields;
  // The value of `name`, or nullptr.
  const std::string* Field(std::string_view name) const;
};

// Thread-safety: none; one consumer per thread.
class RedisStreamConsumer {
 public:
  // Connects to `url` ("redis://host:port", database 0) and creates `group` on
  // `stream` (with MKSTREAM; starting at the stream's first entry) unless it
  // exists. Errors: InvalidArgument for a malformed url or empty names;
  // Unavailable when the server cannot be reached; IoError for a server error
  // (e.g. the key holds another type).
  static Result<std::unique_ptr<RedisStreamConsumer>> Open(std::string_view url, std::string stream,
                                                           std::string group, std::string consumer);

  // Entries this consumer was given before and has not acknowledged, oldest
  // first, after `*cursor` (start with "0"); advances `*cursor`. Empty when
  // none are left.
  Result<std::vector<StreamEntry>> ReadPending(size_t count, std::string* cursor);

  // New entries for the group (up to `count`), waiting up to `block` for the
  // first one; empty when none came.
  Result<std::vector<StreamEntry>> ReadNew(size_t count, Duration block);

  // Acknowledges entries: they leave the group's pending list for good.
  Status Ack(const std::vector<std::string>& ids);

  // Appends `entry`'s fields, its id and `reason` to the dead-letter stream
  // "<stream>:dead".
  Status DeadLetter(const StreamEntry& entry, std::string_view reason);

  const std::string& stream() const { return stream_; }

 private:
  RedisStreamConsumer() = default;
  Result<std::vector<StreamEntry>> ReadGroup(size_t count, Duration block, const std::string& id);

  std::string host_;
  int port_ = 0;
  std::string stream_, group_, consumer_;
};

}  // namespace keel::store
