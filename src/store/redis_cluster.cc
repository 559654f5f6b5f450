#include "store/redis_cluster.h"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/time.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <charconv>
#include <chrono>
#include <numeric>
#include <optional>
#include <set>
#include <thread>

namespace keel::store::redis {

namespace {

struct ContextDeleter {
  void operator()(redisContext* context) const { redisFree(context); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

timeval ToTimeval(Duration duration) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(duration / kMicrosPerSecond);
  tv.tv_usec = static_cast<suseconds_t>(duration % kMicrosPerSecond);
  return tv;
}

std::string_view Text(const redisReply& reply) {
  return reply.str == nullptr ? std::string_view() : std::string_view(reply.str, reply.len);
}

Reply View(const redisReply& reply) {
  Reply view;
  switch (reply.type) {
    case REDIS_REPLY_STRING:
      view.kind = Reply::Kind::kString;
      view.text = Text(reply);
      break;
    case REDIS_REPLY_STATUS:
      view.kind = Reply::Kind::kStatus;
      view.text = Text(reply);
      break;
    case REDIS_REPLY_INTEGER:
      view.kind = Reply::Kind::kInteger;
      view.integer = reply.integer;
      break;
    case REDIS_REPLY_ARRAY:
      view.kind = Reply::Kind::kArray;
      break;
    default:
      view.kind = Reply::Kind::kNil;
  }
  return view;
}

OwnedReply ToOwned(const redisReply& reply) {
  Reply view = View(reply);
  OwnedReply owned{view.kind, std::string(view.text), view.integer, {}};
  for (size_t element_idx = 0; element_idx < reply.elements; ++element_idx) {
    owned.elements.push_back(ToOwned(*reply.element[element_idx]));
  }
  return owned;
}

// hiredis writes with write(2): a server that closed the connection would
// kill the process with SIGPIPE unless it is ignored. Leave a handler the
// application installed alone.
void IgnoreSigpipe() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction current {};
    if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
      signal(SIGPIPE, SIG_IGN);
    }
  });
}

// The one place a hiredis connection error becomes a Status.
Status ConnectionError(const redisContext& context, const std::string& node,
                       const ClientOptions& options) {
  std::string why = context.errstr;
  if (context.err == REDIS_ERR_IO && why.find("temporarily unavailable") != std::string::npos) {
    why = "no reply within " + std::to_string(options.command_timeout / 1000) + " ms";
  }
  if (context.err == REDIS_ERR_EOF) why = "connection closed by the server";
  if (why.empty()) why = "connection error " + std::to_string(context.err);
  return Unavailable(node + ": " + why);
}

Result<ReplyPtr> ReadReply(redisContext* context, const std::string& node,
                           const ClientOptions& options) {
  void* raw = nullptr;
  if (redisGetReply(context, &raw) != REDIS_OK || raw == nullptr) {
    return ConnectionError(*context, node, options);
  }
  return ReplyPtr(static_cast<redisReply*>(raw));
}

Status Append(redisContext* context, int argc, const char* const* argv, const size_t* argv_len,
              const std::string& node, const ClientOptions& options) {
  // hiredis's signature lacks the inner const; it does not modify the array.
  if (redisAppendCommandArgv(context, argc, const_cast<const char**>(argv), argv_len) != REDIS_OK) {
    return ConnectionError(*context, node, options);
  }
  return Status::Ok();
}

Status AppendWord(redisContext* context, std::string_view word, const std::string& node,
                  const ClientOptions& options) {
  const char* data = word.data();
  size_t size = word.size();
  return Append(context, 1, &data, &size, node, options);
}

Status Flush(redisContext* context, const std::string& node, const ClientOptions& options) {
  int done = 0;
  do {
    if (redisBufferWrite(context, &done) != REDIS_OK) {
      return ConnectionError(*context, node, options);
    }
  } while (done == 0);
  return Status::Ok();
}

Result<ReplyPtr> SendAndRead(redisContext* context, const std::vector<std::string>& args,
                             const std::string& node, const ClientOptions& options) {
  std::vector<const char*> argv;
  std::vector<size_t> argv_len;
  for (const std::string& arg : args) {
    argv.push_back(arg.data());
    argv_len.push_back(arg.size());
  }
  RETURN_IF_ERROR(
      Append(context, static_cast<int>(argv.size()), argv.data(), argv_len.data(), node, options));
  return ReadReply(context, node, options);
}

Result<ContextPtr> Connect(const Endpoint& endpoint, const std::string& node, int db,
                           const ClientOptions& options) {
  ContextPtr context(redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port,
                                             ToTimeval(options.connect_timeout)));
  if (context == nullptr) return Unavailable("cannot connect to " + node + ": out of memory");
  if (context->err != 0) return Unavailable("cannot connect to " + node + ": " + context->errstr);
  if (redisSetTimeout(context.get(), ToTimeval(options.command_timeout)) != REDIS_OK) {
    return ConnectionError(*context, node, options);
  }
  (void)redisEnableKeepAlive(context.get());  // best effort: only helps find dead peers sooner
  if (db != 0) {
    ASSIGN_OR_RETURN(ReplyPtr reply,
                     SendAndRead(context.get(), {"SELECT", std::to_string(db)}, node, options));
    if (reply->type == REDIS_REPLY_ERROR) {
      return IoError(node + ": SELECT " + std::to_string(db) + ": " + std::string(Text(*reply)));
    }
  }
  return context;
}

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

bool ParsePort(std::string_view text, int* port) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *port);
  return ec == std::errc() && ptr == end && *port >= 1 && *port <= 65535;
}

// "host:port" or "[v6]:port" into `endpoint`; false when malformed.
bool ParseEndpoint(std::string_view text, Endpoint* endpoint) {
  std::string_view host, port;
  if (StartsWith(text, "[")) {
    size_t close = text.find(']');
    if (close == std::string_view::npos || text.substr(close + 1, 1) != ":") return false;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return false;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return false;  // IPv6 needs brackets
  }
  if (host.empty() || !ParsePort(port, &endpoint->port)) return false;
  endpoint->host = std::string(host);
  return true;
}

constexpr std::array<uint16_t, 256> MakeCrc16Table() {
  std::array<uint16_t, 256> table{};
  for (int byte = 0; byte < 256; ++byte) {
    uint16_t crc = static_cast<uint16_t>(byte << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) != 0 ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                                : static_cast<uint16_t>(crc << 1);
    }
    table[byte] = crc;
  }
  return table;
}
constexpr std::array<uint16_t, 256> kCrc16Table = MakeCrc16Table();

}  // namespace

// ---------------------------------------------------------------------------

std::string Endpoint::ToString() const {
  std::string shown = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return shown + ":" + std::to_string(port);
}

Result<Url> ParseUrl(std::string_view url, bool cluster) {
  auto malformed = [&](const std::string& why) {
    return InvalidArgument(
        "malformed redis url '" + std::string(url) + "': " + why + " (expected " +
        (cluster ? "redis://host:port[,host:port...]" : "redis://host:port[/db]") + ")");
  };
  constexpr std::string_view kScheme = "redis://";
  if (!StartsWith(url, kScheme)) return malformed("it does not start with redis://");
  std::string_view rest = url.substr(kScheme.size());
  Url parsed;
  if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
    std::string_view db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!db.empty()) {
      auto [ptr, ec] = std::from_chars(db.data(), db.data() + db.size(), parsed.db);
      if (ec != std::errc() || ptr != db.data() + db.size() || parsed.db < 0) {
        return malformed("database index '" + std::string(db) + "' is not a number");
      }
    }
    if (cluster && parsed.db != 0) return malformed("a cluster has only database 0");
  }
  if (rest.find('@') != std::string_view::npos) return malformed("credentials are not supported");
  if (rest.empty()) return malformed("no host:port");
  while (true) {
    size_t comma = rest.find(',');
    std::string_view part = rest.substr(0, comma);
    Endpoint endpoint;
    if (!ParseEndpoint(part, &endpoint)) {
      return malformed("'" + std::string(part) + "' is not host:port with a port in 1..65535");
    }
    parsed.nodes.push_back(std::move(endpoint));
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  if (!cluster && parsed.nodes.size() != 1) {
    return malformed("a single server takes one host:port (several are for redis-cluster)");
  }
  return parsed;
}

uint16_t KeySlot(std::string_view key) {
  if (size_t open = key.find('{'); open != std::string_view::npos) {
    size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  uint16_t crc = 0;
  for (char ch : key) {
    crc = static_cast<uint16_t>((crc << 8) ^
                                kCrc16Table[((crc >> 8) ^ static_cast<uint8_t>(ch)) & 0xff]);
  }
  return static_cast<uint16_t>(crc & (kSlotCount - 1));
}

void CommandBatch::BeginRequest(uint16_t slot) {
  requests_.push_back({slot, static_cast<uint32_t>(commands_.size()), 0});
}

void CommandBatch::AddCommand(std::initializer_list<std::string_view> args) {
  assert(!requests_.empty() && "AddCommand before BeginRequest");
  commands_.push_back(
      {static_cast<uint32_t>(arg_data_.size()), static_cast<uint32_t>(args.size())});
  for (std::string_view arg : args) {
    arg_data_.push_back(arg.data() != nullptr ? arg.data() : "");
    arg_size_.push_back(arg.size());
  }
  ++requests_.back().command_count;
}

// ---------------------------------------------------------------------------

// The connections to one node: an idle list, refilled as calls finish.
// Thread-safety: every method may be called from many threads at once.
class NodePool {
 public:
  NodePool(Endpoint endpoint, int db, const ClientOptions& options)
      : endpoint_(std::move(endpoint)), name_(endpoint_.ToString()), db_(db), options_(options) {}

  const Endpoint& endpoint() const { return endpoint_; }
  const std::string& name() const { return name_; }

  // An idle connection (*reused = true) or a new one. Errors: Unavailable.
  Result<ContextPtr> Acquire(bool* reused) {
    {
      std::lock_guard lock(mutex_);
      if (!idle_.empty()) {
        ContextPtr context = std::move(idle_.back());
        idle_.pop_back();
        *reused = true;
        return context;
      }
    }
    *reused = false;
    return ConnectNew();
  }

  Result<ContextPtr> ConnectNew() { return Connect(endpoint_, name_, db_, options_); }

  // Takes back a connection with every reply read; a broken one is closed.
  void Release(ContextPtr context) {
    if (context == nullptr || context->err != 0) return;
    std::lock_guard lock(mutex_);
    if (idle_.size() < static_cast<size_t>(options_.max_idle_connections_per_node)) {
      idle_.push_back(std::move(context));
    }
  }

  // One command; a dropped pooled connection is replaced once.
  Result<ReplyPtr> Command(const std::vector<std::string>& args,
                           std::atomic<uint64_t>* reconnects) {
    bool reused = false;
    ASSIGN_OR_RETURN(ContextPtr context, Acquire(&reused));
    Result<ReplyPtr> reply = SendAndRead(context.get(), args, name_, options_);
    if (!reply.ok() && reused) {
      ++*reconnects;
      ASSIGN_OR_RETURN(context, ConnectNew());
      reply = SendAndRead(context.get(), args, name_, options_);
    }
    if (reply.ok()) Release(std::move(context));
    return reply;
  }

 private:
  const Endpoint endpoint_;
  const std::string name_;
  const int db_;
  const ClientOptions options_;
  std::mutex mutex_;
  std::vector<ContextPtr> idle_;  // guarded by mutex_
};

// What became of one request in one round.
struct Client::Outcome {
  enum class Kind { kDone, kMoved, kAsk, kTryAgain, kError, kUnreachable };
  Kind kind = Kind::kDone;
  Status status;    // why, for every kind but kDone
  Endpoint target;  // kMoved, kAsk
  uint16_t slot = 0;
};

// The requests of one round that go to one node, and the connection they use.
struct Client::NodeBatch {
  NodePool* pool = nullptr;
  std::vector<uint32_t> requests;
  ContextPtr connection;
  bool reused = false;
  Status status;  // of acquiring the connection and sending
};

// An error reply: a redirection to follow, a condition to wait out, or a failure.
Client::Outcome Client::ClassifyError(std::string_view message, const NodePool& node,
                                      bool cluster) {
  using Kind = Outcome::Kind;
  Outcome outcome;
  std::string described = node.name() + ": " + std::string(message);
  bool moved = StartsWith(message, "MOVED "), ask = StartsWith(message, "ASK ");
  if (cluster && (moved || ask)) {
    // "MOVED <slot> <host>:<port>"; an unknown host ("" or "?") is the replying node's.
    std::string_view rest = message.substr(message.find(' ') + 1);
    size_t space = rest.find(' ');
    int slot = -1;
    std::from_chars(rest.data(), rest.data() + rest.size(), slot);
    std::string_view address = space == std::string_view::npos ? "" : rest.substr(space + 1);
    size_t colon = address.rfind(':');
    Endpoint target;
    if (slot >= 0 && slot < kSlotCount && colon != std::string_view::npos &&
        ParsePort(address.substr(colon + 1), &target.port)) {
      std::string_view host = address.substr(0, colon);
      if (StartsWith(host, "[") && host.size() >= 2) host = host.substr(1, host.size() - 2);
      target.host = host.empty() || host == "?" ? node.endpoint().host : std::string(host);
      outcome.kind = moved ? Kind::kMoved : Kind::kAsk;
      outcome.target = std::move(target);
      outcome.slot = static_cast<uint16_t>(slot);
      outcome.status = Unavailable(described);
      return outcome;
    }
  }
  if (StartsWith(message, "TRYAGAIN") || StartsWith(message, "CLUSTERDOWN") ||
      StartsWith(message, "LOADING") || StartsWith(message, "MASTERDOWN")) {
    outcome.kind = Kind::kTryAgain;
    outcome.status = Unavailable(described);
    return outcome;
  }
  if (!cluster && (moved || ask))
    described += " (the server is a Redis Cluster: use redis-cluster)";
  outcome.kind = Kind::kError;
  outcome.status = IoError(described);
  return outcome;
}

Client::Client(Url url, bool cluster, ClientOptions options)
    : url_(std::move(url)), cluster_(cluster), options_(options), slot_owner_(kSlotCount) {}

Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::Open(std::string_view url, bool cluster,
                                             ClientOptions options) {
  ASSIGN_OR_RETURN(Url parsed, ParseUrl(url, cluster));
  IgnoreSigpipe();
  std::unique_ptr<Client> client(new Client(std::move(parsed), cluster, options));
  if (cluster) {
    RETURN_IF_ERROR(client->LoadSlotMap());
    return client;
  }
  NodePool* pool = client->Pool(client->url_.nodes[0]);
  ASSIGN_OR_RETURN(ReplyPtr pong, pool->Command({"PING"}, &client->reconnects_));
  if (pong->type == REDIS_REPLY_ERROR) {
    return Unavailable(pool->name() + ": PING: " + std::string(Text(*pong)));
  }
  std::fill(client->slot_owner_.begin(), client->slot_owner_.end(), pool);
  return client;
}

NodePool* Client::Pool(const Endpoint& endpoint) {
  std::lock_guard lock(pools_mutex_);
  std::unique_ptr<NodePool>& pool = pools_[endpoint.ToString()];
  if (pool == nullptr)
    pool = std::make_unique<NodePool>(endpoint, cluster_ ? 0 : url_.db, options_);
  return pool.get();
}

Client::Counters Client::counters() const {
  return {round_trips_.load(), moved_.load(),      ask_.load(),
          try_again_.load(),   reconnects_.load(), slot_map_loads_.load()};
}

Status Client::LoadSlotMap() {
  // The seeds first, then every node met since (the seeds may be gone).
  std::vector<Endpoint> candidates = url_.nodes;
  {
    std::lock_guard lock(pools_mutex_);
    for (const auto& [name, pool] : pools_) candidates.push_back(pool->endpoint());
  }
  std::set<std::string> tried;
  std::string failures;
  for (const Endpoint& candidate : candidates) {
    NodePool* pool = Pool(candidate);
    if (!tried.insert(pool->name()).second) continue;
    Result<ReplyPtr> reply = pool->Command({"CLUSTER", "SLOTS"}, &reconnects_);
    std::string failure;
    if (!reply.ok()) {
      failure = reply.status().message();
    } else if ((*reply)->type != REDIS_REPLY_ARRAY) {
      failure = pool->name() + ": CLUSTER SLOTS: " +
                ((*reply)->type == REDIS_REPLY_ERROR ? std::string(Text(**reply)) : "bad reply");
    } else {
      // [[start, end, [host, port, id...], replicas...], ...]
      std::vector<NodePool*> owners(kSlotCount, nullptr);
      size_t assigned = 0;
      for (size_t range_idx = 0; range_idx < (*reply)->elements; ++range_idx) {
        const redisReply& range = *(*reply)->element[range_idx];
        if (range.type != REDIS_REPLY_ARRAY || range.elements < 3) continue;
        const redisReply& master = *range.element[2];
        if (master.type != REDIS_REPLY_ARRAY || master.elements < 2) continue;
        long long start = range.element[0]->integer, end = range.element[1]->integer;
        if (start < 0 || end >= kSlotCount || start > end) continue;
        std::string_view host = Text(*master.element[0]);
        Endpoint owner{host.empty() || host == "?" ? pool->endpoint().host : std::string(host),
                       static_cast<int>(master.element[1]->integer)};
        NodePool* owner_pool = Pool(owner);
        for (long long slot = start; slot <= end; ++slot) owners[slot] = owner_pool;
        assigned += static_cast<size_t>(end - start + 1);
      }
      if (assigned > 0) {
        {
          std::unique_lock lock(slots_mutex_);
          slot_owner_.swap(owners);
        }
        ++slot_map_loads_;
        return Status::Ok();
      }
      failure = pool->name() + ": the cluster has no slots assigned (not created yet?)";
    }
    failures += (failures.empty() ? "" : "; ") + failure;
  }
  return Unavailable("cannot load the cluster slot map: " + failures);
}

Status Client::Route(const CommandBatch& batch, const std::vector<uint32_t>& pending,
                     const std::vector<NodePool*>& ask_target,
                     std::vector<NodeBatch>* node_batches) {
  std::vector<NodePool*> owners(pending.size(), nullptr);
  for (int lookup = 0; lookup < 2; ++lookup) {
    std::optional<uint16_t> unserved;
    {
      std::shared_lock lock(slots_mutex_);
      for (size_t pending_idx = 0; pending_idx < pending.size(); ++pending_idx) {
        uint32_t request = pending[pending_idx];
        uint16_t slot = batch.requests_[request].slot;
        owners[pending_idx] =
            ask_target[request] != nullptr ? ask_target[request] : slot_owner_[slot];
        if (owners[pending_idx] == nullptr) unserved = slot;
      }
    }
    if (!unserved.has_value()) break;
    if (lookup == 1 || !cluster_) {
      return Unavailable("no node serves slot " + std::to_string(*unserved) +
                         " (is the cluster down?)");
    }
    RETURN_IF_ERROR(LoadSlotMap());
  }
  node_batches->clear();
  for (size_t pending_idx = 0; pending_idx < pending.size(); ++pending_idx) {
    auto it = std::find_if(node_batches->begin(), node_batches->end(),
                           [&](const NodeBatch& node) { return node.pool == owners[pending_idx]; });
    if (it == node_batches->end()) {
      node_batches->emplace_back();
      node_batches->back().pool = owners[pending_idx];
      it = node_batches->end() - 1;
    }
    it->requests.push_back(pending[pending_idx]);
  }
  return Status::Ok();
}

Status Client::Send(redisContext* context, const CommandBatch& batch, const NodeBatch& node,
                    const std::vector<NodePool*>& ask_target) {
  const std::string& name = node.pool->name();
  for (uint32_t request_idx : node.requests) {
    const CommandBatch::Request& request = batch.requests_[request_idx];
    if (ask_target[request_idx] != nullptr) {
      RETURN_IF_ERROR(AppendWord(context, "ASKING", name, options_));
    }
    bool transaction = request.command_count > 1;
    if (transaction) RETURN_IF_ERROR(AppendWord(context, "MULTI", name, options_));
    for (uint32_t command_idx = request.first_command;
         command_idx < request.first_command + request.command_count; ++command_idx) {
      const CommandBatch::Command& command = batch.commands_[command_idx];
      RETURN_IF_ERROR(Append(context, static_cast<int>(command.arg_count),
                             &batch.arg_data_[command.first_arg],
                             &batch.arg_size_[command.first_arg], name, options_));
    }
    if (transaction) RETURN_IF_ERROR(AppendWord(context, "EXEC", name, options_));
  }
  return Flush(context, name, options_);
}

Status Client::Receive(redisContext* context, const CommandBatch& batch, const NodeBatch& node,
                       const std::vector<NodePool*>& ask_target, const ReplyHandler& on_reply,
                       std::vector<Outcome>* outcomes) {
  const NodePool& pool = *node.pool;
  auto read = [&] { return ReadReply(context, pool.name(), options_); };
  auto classify = [&](const redisReply& reply) {
    return ClassifyError(Text(reply), pool, cluster_);
  };
  // Every reply is read, whatever happened, to keep the pipeline in step.
  for (uint32_t request_idx : node.requests) {
    const CommandBatch::Request& request = batch.requests_[request_idx];
    Outcome& outcome = (*outcomes)[request_idx];
    outcome = Outcome();
    std::optional<Outcome> failed;
    if (ask_target[request_idx] != nullptr) {
      ASSIGN_OR_RETURN(ReplyPtr asking, read());
      if (asking->type == REDIS_REPLY_ERROR) failed = classify(*asking);
    }
    if (request.command_count == 1) {
      ASSIGN_OR_RETURN(ReplyPtr reply, read());
      if (!failed.has_value() && reply->type == REDIS_REPLY_ERROR) failed = classify(*reply);
      if (failed.has_value()) {
        outcome = std::move(*failed);
      } else {
        on_reply(request.first_command, View(*reply));
      }
      continue;
    }
    // MULTI, one QUEUED (or an error: a redirection) per command, EXEC.
    for (uint32_t reply_idx = 0; reply_idx <= request.command_count; ++reply_idx) {
      ASSIGN_OR_RETURN(ReplyPtr queued, read());
      if (!failed.has_value() && queued->type == REDIS_REPLY_ERROR) failed = classify(*queued);
    }
    ASSIGN_OR_RETURN(ReplyPtr exec, read());
    if (exec->type == REDIS_REPLY_ARRAY && exec->elements == request.command_count &&
        !failed.has_value()) {
      for (uint32_t element_idx = 0; element_idx < request.command_count; ++element_idx) {
        const redisReply& element = *exec->element[element_idx];
        if (element.type == REDIS_REPLY_ERROR) {
          if (outcome.kind == Outcome::Kind::kDone) outcome = classify(element);
        } else {
          on_reply(request.first_command + element_idx, View(element));
        }
      }
    } else if (failed.has_value()) {
      outcome = std::move(*failed);
    } else if (exec->type == REDIS_REPLY_ERROR) {
      outcome = classify(*exec);
    } else {
      outcome.kind = Outcome::Kind::kError;
      outcome.status = IoError(pool.name() + ": unexpected reply to EXEC");
    }
  }
  return Status::Ok();
}

void Client::RunRound(const CommandBatch& batch, std::vector<NodeBatch>* node_batches,
                      const std::vector<NodePool*>& ask_target, const ReplyHandler& on_reply,
                      std::vector<Outcome>* outcomes) {
  // Every node gets its pipeline before any reply is read, so the nodes work at once.
  for (NodeBatch& node : *node_batches) {
    Result<ContextPtr> context = node.pool->Acquire(&node.reused);
    if (!context.ok()) {
      node.status = context.status();
      continue;
    }
    node.connection = std::move(context).value();
    node.status = Send(node.connection.get(), batch, node, ask_target);
  }
  for (NodeBatch& node : *node_batches) {
    Status status = node.status;
    if (status.ok())
      status = Receive(node.connection.get(), batch, node, ask_target, on_reply, outcomes);
    if (!status.ok() && node.reused) {
      // A pooled connection the server dropped (idle timeout, restart): resend once on a new one.
      ++reconnects_;
      Result<ContextPtr> context = node.pool->ConnectNew();
      status = context.status();
      if (context.ok()) {
        node.connection = std::move(context).value();
        status = Send(node.connection.get(), batch, node, ask_target);
        if (status.ok()) {
          status = Receive(node.connection.get(), batch, node, ask_target, on_reply, outcomes);
        }
      }
    }
    ++round_trips_;
    if (status.ok()) {
      node.pool->Release(std::move(node.connection));
      continue;
    }
    node.connection.reset();
    for (uint32_t request_idx : node.requests) {
      (*outcomes)[request_idx] = Outcome{Outcome::Kind::kUnreachable, status, {}, 0};
    }
  }
}

Status Client::Execute(const CommandBatch& batch, const ReplyHandler& on_reply) {
  const size_t request_count = batch.requests_.size();
  std::vector<uint32_t> pending(request_count);
  std::iota(pending.begin(), pending.end(), 0);
  std::vector<NodePool*> ask_target(request_count, nullptr);
  std::vector<Outcome> outcomes(request_count);
  std::vector<NodeBatch> node_batches;
  bool reloaded_after_failure = false;
  auto backoff = std::chrono::milliseconds(5);
  for (int attempt = 1; !pending.empty(); ++attempt) {
    RETURN_IF_ERROR(Route(batch, pending, ask_target, &node_batches));
    RunRound(batch, &node_batches, ask_target, on_reply, &outcomes);
    std::vector<uint32_t> retry;
    Status unreachable, last_reason;
    bool moved = false, wait = false;
    for (uint32_t request_idx : pending) {
      Outcome& outcome = outcomes[request_idx];
      switch (outcome.kind) {
        case Outcome::Kind::kDone:
          continue;
        case Outcome::Kind::kError:
          return outcome.status;
        case Outcome::Kind::kUnreachable:
          if (unreachable.ok()) unreachable = outcome.status;
          ask_target[request_idx] = nullptr;
          break;
        case Outcome::Kind::kMoved: {
          NodePool* owner = Pool(outcome.target);
          std::unique_lock lock(slots_mutex_);
          slot_owner_[outcome.slot] = owner;
          ask_target[request_idx] = nullptr;
          moved = true;
          ++moved_;
          break;
        }
        case Outcome::Kind::kAsk:
          ask_target[request_idx] = Pool(outcome.target);  // this request only; the map stays
          ++ask_;
          break;
        case Outcome::Kind::kTryAgain:
          wait = true;
          ++try_again_;
          break;
      }
      last_reason = outcome.status;
      retry.push_back(request_idx);
    }
    if (!unreachable.ok()) {
      // The node may have failed over: reload the map once and retry; else report it.
      if (!cluster_ || reloaded_after_failure || !LoadSlotMap().ok()) return unreachable;
      reloaded_after_failure = true;
    }
    if (retry.empty()) break;
    if (attempt >= options_.max_attempts) {
      return Unavailable("gave up after " + std::to_string(attempt) +
                         " attempts; last: " + last_reason.message());
    }
    // MOVED already fixed the slots it named; a reload catches the rest of a resharding.
    if (moved) (void)LoadSlotMap().ok();
    if (wait) {
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
    }
    pending.swap(retry);
  }
  return Status::Ok();
}

Result<OwnedReply> RunCommand(const Endpoint& node, const std::vector<std::string>& args,
                              Duration timeout) {
  IgnoreSigpipe();
  ClientOptions options;
  options.connect_timeout = options.command_timeout = timeout;
  std::string name = node.ToString();
  ASSIGN_OR_RETURN(ContextPtr context, Connect(node, name, 0, options));
  ASSIGN_OR_RETURN(ReplyPtr reply, SendAndRead(context.get(), args, name, options));
  if (reply->type == REDIS_REPLY_ERROR) return IoError(name + ": " + std::string(Text(*reply)));
  return ToOwned(*reply);
}

}  // namespace keel::store::redis
