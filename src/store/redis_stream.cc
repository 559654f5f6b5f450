#include "store/redis_stream.h"

#include "store/redis_cluster.h"

namespace keel::store {

using redis::OwnedReply;

const std::string* StreamEntry::Field(std::string_view name) const {
  for (const auto& [field, value] : fields) {
    if (field == name) return &value;
  }
  return nullptr;
}

namespace {

// XREADGROUP's answer: [[stream, [[id, [field, value, ...]], ...]]] or nil.
Result<std::vector<StreamEntry>> ParseEntries(const OwnedReply& reply) {
  std::vector<StreamEntry> entries;
  if (reply.kind == redis::Reply::Kind::kNil) return entries;
  auto malformed = [] { return IoError("redis: unexpected XREADGROUP reply shape"); };
  if (reply.kind != redis::Reply::Kind::kArray) return malformed();
  for (const OwnedReply& stream : reply.elements) {
    if (stream.elements.size() != 2) return malformed();
    for (const OwnedReply& item : stream.elements[1].elements) {
      if (item.elements.size() != 2) return malformed();
      StreamEntry entry;
      entry.id = item.elements[0].text;
      // A pending entry deleted from the stream comes back with nil fields.
      const std::vector<OwnedReply>& pairs = item.elements[1].elements;
      for (size_t i = 0; i + 1 < pairs.size(); i += 2) {
        entry.fields.emplace_back(pairs[i].text, pairs[i + 1].text);
      }
      entries.push_back(std::move(entry));
    }
  }
  return entries;
}

}  // namespace

Result<std::unique_ptr<RedisStreamConsumer>> RedisStreamConsumer::Open(std::string_view url,
                                                                       std::string stream,
                                                                       std::string group,
                                                                       std::string consumer) {
  if (stream.empty()) return InvalidArgument("--stream: empty");
  if (group.empty()) return InvalidArgument("--group: empty");
  if (consumer.empty()) return InvalidArgument("--consumer: empty");
  ASSIGN_OR_RETURN(redis::Url parsed, redis::ParseUrl(url, false));
  if (parsed.db != 0) {
    return InvalidArgument(std::string(url) + ": streams are read from database 0");
  }
  std::unique_ptr<RedisStreamConsumer> consumer_ptr(new RedisStreamConsumer());
  consumer_ptr->host_ = parsed.nodes[0].host;
  consumer_ptr->port_ = parsed.nodes[0].port;
  consumer_ptr->stream_ = std::move(stream);
  consumer_ptr->group_ = std::move(group);
  consumer_ptr->consumer_ = std::move(consumer);
  Result<OwnedReply> created = redis::RunCommand(
      parsed.nodes[0],
      {"XGROUP", "CREATE", consumer_ptr->stream_, consumer_ptr->group_, "0", "MKSTREAM"});
  if (!created.ok() && created.status().message().find("BUSYGROUP") == std::string::npos) {
    return created.status().WithContext("creating consumer group '" + consumer_ptr->group_ +
                                        "' on stream '" + consumer_ptr->stream_ + "'");
  }
  return consumer_ptr;
}

Result<std::vector<StreamEntry>> RedisStreamConsumer::ReadGroup(size_t count, Duration block,
                                                                const std::string& id) {
  std::vector<std::string> args = {"XREADGROUP", "GROUP", group_,
                                   consumer_,    "COUNT", std::to_string(count)};
  if (block > 0) {
    args.push_back("BLOCK");
    args.push_back(std::to_string(block / 1000));
  }
  args.insert(args.end(), {"STREAMS", stream_, id});
  ASSIGN_OR_RETURN(OwnedReply reply,
                   redis::RunCommand({host_, port_}, args, block + 5 * kMicrosPerSecond));
  return ParseEntries(reply);
}

Result<std::vector<StreamEntry>> RedisStreamConsumer::ReadPending(size_t count,
                                                                  std::string* cursor) {
  ASSIGN_OR_RETURN(std::vector<StreamEntry> entries, ReadGroup(count, 0, *cursor));
  if (!entries.empty()) *cursor = entries.back().id;
  return entries;
}

Result<std::vector<StreamEntry>> RedisStreamConsumer::ReadNew(size_t count, Duration block) {
  return ReadGroup(count, block, ">");
}

Status RedisStreamConsumer::Ack(const std::vector<std::string>& ids) {
  if (ids.empty()) return Status::Ok();
  std::vector<std::string> args = {"XACK", stream_, group_};
  args.insert(args.end(), ids.begin(), ids.end());
  Result<OwnedReply> reply = redis::RunCommand({host_, port_}, args);
  return reply.status();
}

Status RedisStreamConsumer::DeadLetter(const StreamEntry& entry, std::string_view reason) {
  std::vector<std::string> args = {"XADD",   stream_ + ":dead",  "*", "entry_id", entry.id,
                                   "reason", std::string(reason)};
  for (const auto& [field, value] : entry.fields) {
    args.push_back(field);
    args.push_back(value);
  }
  Result<OwnedReply> reply = redis::RunCommand({host_, port_}, args);
  return reply.status();
}

}  // namespace keel::store
