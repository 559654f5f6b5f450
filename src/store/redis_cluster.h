#pragma once

// The Redis client behind the Redis online store (redis_store.cc): URL parsing,
// pooled connections, and request routing for one server or a Redis Cluster
// (key slots, the slot map from CLUSTER SLOTS, MOVED and ASK redirections).
// hiredis has no cluster support and stays inside redis_cluster.cc.

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/time.h"
#include "store/online_store.h"

struct redisContext;  // hiredis's connection; opaque outside redis_cluster.cc

namespace keel::store::redis {

// One server address.
struct Endpoint {
  std::string host;
  int port = 0;

  // "host:port" ("[::1]:port" for IPv6), as errors name it.
  std::string ToString() const;
};

// A parsed store url.
struct Url {
  std::vector<Endpoint> nodes;  // one for a single server; the seeds of a cluster
  int db = 0;                   // SELECT index; single server only
};

// Parses "redis://host:port[/db]" (cluster == false) or
// "redis://host:port[,host:port...]" (cluster == true); IPv6 hosts go in
// brackets. Errors: InvalidArgument naming `url` and what is wrong with it.
Result<Url> ParseUrl(std::string_view url, bool cluster);

inline constexpr int kSlotCount = 16384;

// The Redis Cluster hash slot of `key`: CRC16 (XMODEM) of the key modulo 16384,
// where a key with a hash tag (bytes between the first '{' and the first '}'
// after it, when there is at least one) hashes only the tag.
uint16_t KeySlot(std::string_view key);

// Commands to run in one Client::Execute call, grouped into requests. A
// request is routed by its slot; a request of more than one command runs as
// one MULTI/EXEC transaction on its shard (all its keys must share the slot).
// Arguments are views: the bytes must outlive the Execute call.
// Thread-safety: a value; not for concurrent mutation.
class CommandBatch {
 public:
  // Starts a request routed by `slot`; following AddCommand calls belong to it.
  void BeginRequest(uint16_t slot);
  // Adds a command to the current request. Precondition: BeginRequest was called.
  void AddCommand(std::initializer_list<std::string_view> args);

  size_t request_count() const { return requests_.size(); }
  size_t command_count() const { return commands_.size(); }

 private:
  friend class Client;
  struct Request {
    uint16_t slot;
    uint32_t first_command;
    uint32_t command_count;
  };
  struct Command {
    uint32_t first_arg;
    uint32_t arg_count;
  };
  std::vector<const char*> arg_data_;  // hiredis argv form
  std::vector<size_t> arg_size_;
  std::vector<Command> commands_;
  std::vector<Request> requests_;
};

// A successful reply to one command (errors become a Status instead).
struct Reply {
  enum class Kind { kNil, kString, kStatus, kInteger, kArray };
  Kind kind = Kind::kNil;
  std::string_view text;  // kString and kStatus; valid during the callback only
  long long integer = 0;  // kInteger
};

// Called once per command that succeeded, with its index in the batch (in
// batch order). May be called again for the same command when a dropped
// connection makes the client resend it; the last call wins.
using ReplyHandler = std::function<void(size_t command_index, const Reply& reply)>;

struct ClientOptions {
  Duration connect_timeout = 2 * kMicrosPerSecond;
  Duration command_timeout = 2 * kMicrosPerSecond;  // per socket read or write
  int max_idle_connections_per_node = 16;
  int max_attempts = 10;  // rounds of redirections / TRYAGAIN before giving up
};

class NodePool;

// A client of one Redis server or one Redis Cluster. Each node has a pool of
// connections, created on demand and reused; a call takes one connection per
// node it talks to, so calls from many threads never share a connection.
// In cluster mode the slot map (from CLUSTER SLOTS) routes requests; MOVED
// updates the map (and reloads it once per call), ASK sends ASKING and the
// request to the named node without updating the map, TRYAGAIN / CLUSTERDOWN /
// LOADING are retried with backoff, all within ClientOptions::max_attempts.
// A pooled connection that turns out to be dropped is replaced and the node's
// requests resent once (writes are whole-value SETs and DELs: idempotent).
// Thread-safety: every method may be called from many threads at once.
class Client {
 public:
  // Connects to `url` (see ParseUrl) and checks the server answers: PING (and
  // SELECT) for a single server, the slot map for a cluster.
  // Errors: InvalidArgument for a malformed url, Unavailable naming host:port
  // when no server can be reached or the cluster has no slots assigned.
  static Result<std::unique_ptr<Client>> Open(std::string_view url, bool cluster,
                                              ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool cluster() const { return cluster_; }

  // Runs every request of `batch`: pipelined, one round trip per node it
  // touches (more only after redirections), the nodes' pipelines in flight at
  // once. `on_reply` sees each successful command's reply. OK when every
  // request succeeded. Errors: Unavailable naming host:port for an
  // unreachable node, a timeout, or redirections / TRYAGAIN beyond
  // max_attempts; IoError with the server's message for an error reply (e.g.
  // WRONGTYPE). On error some requests may have been applied; each
  // transaction is applied whole or not at all.
  Status Execute(const CommandBatch& batch, const ReplyHandler& on_reply);

  // What the client did so far, for tests and diagnostics.
  struct Counters {
    uint64_t round_trips = 0;  // pipelines sent to a node and read back
    uint64_t moved = 0;        // MOVED redirections followed
    uint64_t ask = 0;          // ASK redirections followed
    uint64_t try_again = 0;    // TRYAGAIN / CLUSTERDOWN / LOADING retries
    uint64_t reconnects = 0;   // dropped pooled connections replaced
    uint64_t slot_map_loads = 0;
  };
  Counters counters() const;

 private:
  struct Outcome;
  struct NodeBatch;

  Client(Url url, bool cluster, ClientOptions options);
  static Outcome ClassifyError(std::string_view message, const NodePool& node, bool cluster);
  NodePool* Pool(const Endpoint& endpoint);
  Status LoadSlotMap();
  Status Route(const CommandBatch& batch, const std::vector<uint32_t>& pending,
               const std::vector<NodePool*>& ask_target, std::vector<NodeBatch>* node_batches);
  void RunRound(const CommandBatch& batch, std::vector<NodeBatch>* node_batches,
                const std::vector<NodePool*>& ask_target, const ReplyHandler& on_reply,
                std::vector<Outcome>* outcomes);
  Status Send(redisContext* context, const CommandBatch& batch, const NodeBatch& node,
              const std::vector<NodePool*>& ask_target);
  Status Receive(redisContext* context, const CommandBatch& batch, const NodeBatch& node,
                 const std::vector<NodePool*>& ask_target, const ReplyHandler& on_reply,
                 std::vector<Outcome>* outcomes);

  const Url url_;
  const bool cluster_;
  const ClientOptions options_;

  std::mutex pools_mutex_;
  std::map<std::string, std::unique_ptr<NodePool>> pools_;  // guarded by pools_mutex_

  std::shared_mutex slots_mutex_;
  std::vector<NodePool*> slot_owner_;  // kSlotCount entries; guarded by slots_mutex_

  std::atomic<uint64_t> round_trips_{0}, moved_{0}, ask_{0}, try_again_{0}, reconnects_{0},
      slot_map_loads_{0};
};

// A reply with owned bytes, for RunCommand.
struct OwnedReply {
  Reply::Kind kind = Reply::Kind::kNil;
  std::string text;
  long long integer = 0;
  std::vector<OwnedReply> elements;  // kArray
};

// Runs one command on one node on a fresh connection, outside any routing
// (administration and tests: CLUSTER SETSLOT, MIGRATE, CLIENT KILL, ...).
// Errors: Unavailable naming host:port when unreachable; IoError with the
// server's message for an error reply.
Result<OwnedReply> RunCommand(const Endpoint& node, const std::vector<std::string>& args,
                              Duration timeout = 2 * kMicrosPerSecond);

// The key layout (redis_store.cc). Every component is escaped (bytes other
// than [A-Za-z0-9._@/=+-] become %XX), so keys are unambiguous for any bytes:
//   value: keel:<project>:{<16 hex digits of Hash64(entity)>}:<entity>:<view>
//   meta:  keel:<project>:meta:<name>
// The hash tag puts all views of one entity in one slot.
std::string EntryKey(std::string_view project, const StoreKey& key);
std::string MetaKey(std::string_view project, std::string_view name);

// The Redis online store over `client` (shared so tests can watch its counters).
std::unique_ptr<OnlineStore> NewStore(std::shared_ptr<Client> client, std::string project);

}  // namespace keel::store::redis
