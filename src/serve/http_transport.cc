// The Boost.Beast / Boost.Asio adapter: the only file that includes them.
#include "serve/http_transport.h"

// Beast's string_view is std::string_view, like the rest of keel.
#define BOOST_BEAST_USE_STD_STRING_VIEW

#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstdio>
#include <exception>
#include <optional>
#include <regex>
#include <thread>
#include <unordered_set>

#include "serve/lookup.h"

namespace keel::serve {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using ErrorCode = boost::system::error_code;

namespace {

constexpr auto kSweepPeriod = std::chrono::milliseconds(250);
// A loop inside one handler for longer than this gets no new connections
// while another loop is free.
constexpr auto kBusyAfter = std::chrono::milliseconds(5);
// After an answer that closes the connection, unread input is discarded for
// at most this long, so that closing does not reset the answer away.
constexpr auto kLingerFor = std::chrono::seconds(1);

const char* const kMethods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX decoded (and '+' as a space in query strings); a '%' not followed by
// two hex digits stays as it is.
std::string Decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%' && i + 2 < text.size()) {
      int high = HexValue(text[i + 1]), low = HexValue(text[i + 2]);
      if (high >= 0 && low >= 0) {
        out += static_cast<char>(high * 16 + low);
        i += 2;
        continue;
      }
    }
    out += plus_is_space && c == '+' ? ' ' : c;
  }
  return out;
}

void ParseQuery(std::string_view query, std::multimap<std::string, std::string>* out) {
  while (!query.empty()) {
    size_t end = query.find('&');
    std::string_view pair = query.substr(0, end);
    query = end == std::string_view::npos ? std::string_view() : query.substr(end + 1);
    if (pair.empty()) continue;
    size_t equals = pair.find('=');
    if (equals == std::string_view::npos) {
      out->emplace(Decode(pair, true), std::string());
    } else {
      out->emplace(Decode(pair.substr(0, equals), true), Decode(pair.substr(equals + 1), true));
    }
  }
}

// The literal start every path the pattern matches has ("/v1/models/" for
// "/v1/models/([^/:]+):predict"), and whether the pattern is all literal.
std::string LiteralPrefix(const std::string& pattern, bool* literal) {
  std::string prefix;
  *literal = true;
  for (size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) {
      *literal = false;
      // A quantifier makes the character before it optional.
      if ((c == '?' || c == '*' || c == '{') && !prefix.empty()) prefix.pop_back();
      break;
    }
    prefix += c;
  }
  return prefix;
}

struct CompiledRoute {
  Route route;
  std::string prefix;
  bool literal = false;
  std::regex regex;

  bool Matches(const std::string& path, std::vector<std::string>* captures) const {
    if (literal) return path == route.pattern;
    if (path.compare(0, prefix.size(), prefix) != 0) return false;
    std::smatch match;
    if (!std::regex_match(path, match, regex)) return false;
    if (captures != nullptr) {
      captures->clear();
      for (size_t i = 1; i < match.size(); ++i) captures->push_back(match[i].str());
    }
    return true;
  }
};

}  // namespace

class HttpTransport::Impl {
 public:
  class Connection;

  // One event loop: its io_context, run by one thread, and its connections.
  struct Loop {
    explicit Loop(Impl* owner)
        : impl(owner), context(1), sweep(context), work(context.get_executor()) {}
    // Connections still pending when the loop goes (Run never returned) are
    // destroyed with the io_context, after the timer: Forget must not touch it.
    ~Loop() { dying = true; }
    Impl* impl;
    std::unordered_set<Connection*> connections;  // touched on the loop's thread only
    std::atomic<int> connection_count{0};
    // When the loop entered the handler it is running; 0 between handlers.
    std::atomic<int64_t> busy_since{0};
    bool sweep_armed = false;
    bool dying = false;
    asio::io_context context;
    asio::steady_timer sweep;
    asio::executor_work_guard<asio::io_context::executor_type> work;

    void ArmSweep();
    void Forget(Connection* connection);
    void DrainAll();
  };

  TransportOptions options;
  std::vector<CompiledRoute> routes;
  std::string route_list;  // for 404 answers
  std::atomic<bool> draining{false};
  int port = -1;

  asio::io_context accept_context{1};
  tcp::acceptor acceptor{accept_context};
  int listen_socket = -1;  // the acceptor's descriptor, for shutdown(2)
  tcp protocol = tcp::v4();
  std::vector<std::unique_ptr<Loop>> loops;
  std::optional<asio::thread_pool> workers;

  // Routes the request; null and an error answer in *error when no route takes it.
  const CompiledRoute* Find(const HttpRequest& request, std::vector<std::string>* captures,
                            Reply* error) const;
  void Accept();
  Loop* PickLoop();
};

namespace {
int64_t NowTicks() { return Clock::now().time_since_epoch().count(); }
}  // namespace

// One connection, owned by the handlers pending on it (shared_ptr); lives on
// its loop's thread except while a worker runs its handler.
class HttpTransport::Impl::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Loop* loop, tcp::socket socket) : loop_(loop), socket_(std::move(socket)) {
    loop_->connections.insert(this);
    loop_->ArmSweep();
  }
  ~Connection() { loop_->Forget(this); }

  void Start() { Read(); }

  // Drops the connection when its deadline passed (from the loop's sweep).
  void ExpireIf(Clock::time_point now) {
    if (now >= deadline_) Close();
  }
  // Shutdown: an idle connection is closed now, others after their answer.
  void Drain() {
    if (state_ == State::kIdle) Close();
  }

 private:
  enum class State { kIdle, kReading, kHandling, kWriting, kLingering, kClosed };
  using Parser = http::request_parser<http::string_body>;

  const TransportOptions& options() const { return loop_->impl->options; }

  void Read() {
    if (!parser_) {
      parser_.emplace();
      parser_->body_limit(options().max_body_bytes);
      parser_->header_limit(static_cast<std::uint32_t>(options().max_header_bytes));
      parser_->eager(true);
      continue_sent_ = false;
    }
    bool idle = buffer_.size() == 0 && !parser_->got_some();
    if (idle && loop_->impl->draining) {
      Close();
      return;
    }
    state_ = idle ? State::kIdle : State::kReading;
    deadline_ = Clock::now() + std::chrono::seconds(idle ? options().keep_alive_seconds
                                                         : options().io_timeout_seconds);
    http::async_read_some(
        socket_, buffer_, *parser_,
        [self = shared_from_this()](ErrorCode error, size_t) { self->OnRead(error); });
  }

  void OnRead(ErrorCode error) {
    if (state_ == State::kClosed) return;
    if (error) {
      if (error == http::error::body_limit) {
        Fail(413, "body: more than the limit of " + std::to_string(options().max_body_bytes) +
                      " bytes (keel serve --max-body-bytes)");
      } else if (error == http::error::header_limit || error == http::error::buffer_overflow) {
        Fail(431, "request line and headers: more than the limit of " +
                      std::to_string(options().max_header_bytes) + " bytes");
      } else if (error.category() ==
                     http::make_error_code(http::error::partial_message).category() &&
                 error != http::error::end_of_stream && error != http::error::partial_message) {
        Fail(400, "malformed HTTP request: " + error.message());
      } else {
        Close();  // the client went away (between requests or mid-request) or timed out
      }
      return;
    }
    if (!parser_->is_done()) {
      if (parser_->is_header_done() && !continue_sent_ &&
          beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
        continue_sent_ = true;
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        state_ = State::kWriting;
        deadline_ = Clock::now() + std::chrono::seconds(options().io_timeout_seconds);
        asio::async_write(socket_, asio::buffer(kContinue.data(), kContinue.size()),
                          [self = shared_from_this()](ErrorCode error, size_t) {
                            if (error) return self->Close();
                            self->Read();
                          });
        return;
      }
      Read();
      return;
    }
    Handle();
  }

  void Handle() {
    auto& message = parser_->get();
    keep_alive_ = message.keep_alive();
    http10_ = message.version() < 11;
    head_ = message.method() == http::verb::head;
    request_.method = std::string(message.method_string());
    std::string_view target = message.target();
    size_t question = target.find('?');
    request_.path = Decode(target.substr(0, question), false);
    request_.query.clear();
    if (question != std::string_view::npos)
      ParseQuery(target.substr(question + 1), &request_.query);
    request_.headers.clear();
    for (const auto& field : message) {
      request_.headers.emplace(Lower(field.name_string()), std::string(field.value()));
    }
    request_.body = message.body();
    Reply error;
    const CompiledRoute* route = loop_->impl->Find(request_, &request_.captures, &error);
    if (route == nullptr) {
      Respond(std::move(error));
      return;
    }
    state_ = State::kHandling;
    deadline_ = Clock::time_point::max();
    if (request_.body.size() >= options().offload_body_bytes) {
      // Off the loop: its other connections go on meanwhile.
      asio::post(*loop_->impl->workers, [self = shared_from_this(), route,
                                         guard = asio::make_work_guard(loop_->context)]() mutable {
        Reply reply = Call(*route, self->request_);
        asio::post(self->loop_->context,
                   [self, reply = std::move(reply)]() mutable { self->Respond(std::move(reply)); });
        guard.reset();
      });
      return;
    }
    loop_->busy_since.store(NowTicks(), std::memory_order_relaxed);
    Reply reply = Call(*route, request_);
    loop_->busy_since.store(0, std::memory_order_relaxed);
    Respond(std::move(reply));
  }

  static Reply Call(const CompiledRoute& route, const HttpRequest& request) {
    try {
      return route.route.handle(request);
    } catch (const std::exception& exception) {
      return ErrorReply(500, std::string("internal error: ") + exception.what());
    } catch (...) {
      return ErrorReply(500, "internal error: unknown exception");
    }
  }

  // Answers a request that cannot be read on, and closes the connection.
  void Fail(int status, const std::string& message) {
    keep_alive_ = false;
    head_ = false;
    request_.method.clear();
    request_.path.clear();
    Respond(ErrorReply(status, message));
  }

  void Respond(Reply reply) {
    if (state_ == State::kClosed) return;
    if (reply.http_status >= 500) {
      std::fprintf(stderr, "keel serve: %s %s -> %d %s\n", request_.method.c_str(),
                   request_.path.c_str(), reply.http_status, reply.body.c_str());
    }
    close_after_ = !keep_alive_ || loop_->impl->draining;
    reply_ = std::move(reply);
    head_text_.clear();
    head_text_ += "HTTP/1.1 ";
    head_text_ += std::to_string(reply_.http_status);
    head_text_ += ' ';
    head_text_ += http::obsolete_reason(static_cast<http::status>(reply_.http_status));
    head_text_ += "\r\nContent-Type: ";
    head_text_ += reply_.content_type;
    for (const auto& [name, value] : reply_.headers) {
      head_text_ += "\r\n";
      head_text_ += name;
      head_text_ += ": ";
      head_text_ += value;
    }
    head_text_ += "\r\nContent-Length: ";
    head_text_ += std::to_string(reply_.body.size());
    if (close_after_) {
      head_text_ += "\r\nConnection: close";
    } else if (http10_) {
      head_text_ += "\r\nConnection: keep-alive";
    }
    head_text_ += "\r\n\r\n";
    std::array<asio::const_buffer, 2> buffers = {
        asio::buffer(head_text_), head_ ? asio::const_buffer() : asio::buffer(reply_.body)};
    state_ = State::kWriting;
    deadline_ = Clock::now() + std::chrono::seconds(options().io_timeout_seconds);
    asio::async_write(socket_, buffers, [self = shared_from_this()](ErrorCode error, size_t) {
      self->OnWritten(error);
    });
  }

  void OnWritten(ErrorCode error) {
    if (state_ == State::kClosed) return;
    reply_ = Reply();
    if (error) {
      Close();
      return;
    }
    if (close_after_) {
      Linger();
      return;
    }
    parser_.reset();
    Read();
  }

  // Half-closes and discards what the client still sends until it closes:
  // closing with unread input would reset the connection, and the client
  // could lose the answer.
  void Linger() {
    state_ = State::kLingering;
    ErrorCode ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    deadline_ = Clock::now() + kLingerFor;
    LingerRead();
  }
  void LingerRead() {
    buffer_.clear();
    socket_.async_read_some(buffer_.prepare(16384),
                            [self = shared_from_this()](ErrorCode error, size_t) {
                              if (error || self->state_ == State::kClosed) return self->Close();
                              self->LingerRead();
                            });
  }

  void Close() {
    if (state_ == State::kClosed) return;
    state_ = State::kClosed;
    ErrorCode ignored;
    socket_.close(ignored);
  }

  Loop* loop_;
  tcp::socket socket_;
  State state_ = State::kIdle;
  Clock::time_point deadline_ = Clock::time_point::max();
  beast::flat_buffer buffer_;
  std::optional<Parser> parser_;
  bool continue_sent_ = false;
  bool keep_alive_ = true;
  bool http10_ = false;
  bool head_ = false;
  bool close_after_ = false;
  HttpRequest request_;
  Reply reply_;
  std::string head_text_;
};

void HttpTransport::Impl::Loop::ArmSweep() {
  if (sweep_armed) return;
  sweep_armed = true;
  sweep.expires_after(kSweepPeriod);
  sweep.async_wait([this](ErrorCode error) {
    sweep_armed = false;
    if (!error) {
      Clock::time_point now = Clock::now();
      // Expiring only closes sockets; the connections go when their handlers run.
      for (Connection* connection : connections) connection->ExpireIf(now);
    }
    if (!connections.empty()) ArmSweep();
  });
}

void HttpTransport::Impl::Loop::Forget(Connection* connection) {
  connections.erase(connection);
  connection_count.fetch_sub(1, std::memory_order_relaxed);
  if (dying) return;
  if (connections.empty() && impl->draining) sweep.cancel();
}

void HttpTransport::Impl::Loop::DrainAll() {
  // Drain may close connections, which go later: iterate over a copy anyway.
  std::vector<Connection*> current(connections.begin(), connections.end());
  for (Connection* connection : current) connection->Drain();
  work.reset();
  if (connections.empty()) sweep.cancel();
}

const CompiledRoute* HttpTransport::Impl::Find(const HttpRequest& request,
                                               std::vector<std::string>* captures,
                                               Reply* error) const {
  const std::string& method = request.method;
  for (const CompiledRoute& route : routes) {
    if (route.route.method == method && route.Matches(request.path, captures)) return &route;
  }
  if (method == "HEAD") {
    for (const CompiledRoute& route : routes) {
      if (route.route.method == "GET" && route.Matches(request.path, captures)) return &route;
    }
  }
  std::string allow;
  for (const CompiledRoute& route : routes) {
    if (!route.Matches(request.path, nullptr)) continue;
    if ((", " + allow + ",").find(", " + route.route.method + ",") != std::string::npos) continue;
    allow += (allow.empty() ? "" : ", ") + route.route.method;
  }
  if (allow.empty()) {
    *error = ErrorReply(404, "no such path: " + request.path + " (paths: " + route_list + ")");
    return nullptr;
  }
  *error = ErrorReply(
      405, "method " + method + " not allowed on " + request.path + " (allowed: " + allow + ")");
  error->headers.emplace_back("Allow", allow);
  return nullptr;
}

HttpTransport::Impl::Loop* HttpTransport::Impl::PickLoop() {
  int64_t busy_before =
      NowTicks() - std::chrono::duration_cast<Clock::duration>(kBusyAfter).count();
  Loop* best = nullptr;
  Loop* best_busy = nullptr;
  for (auto& loop : loops) {
    int64_t since = loop->busy_since.load(std::memory_order_relaxed);
    int count = loop->connection_count.load(std::memory_order_relaxed);
    Loop*& slot = since != 0 && since < busy_before ? best_busy : best;
    if (slot == nullptr || count < slot->connection_count.load(std::memory_order_relaxed)) {
      slot = loop.get();
    }
  }
  return best != nullptr ? best : best_busy;
}

void HttpTransport::Impl::Accept() {
  acceptor.async_accept([this](ErrorCode error, tcp::socket socket) {
    if (error) {
      if (draining || error == asio::error::operation_aborted || !acceptor.is_open()) return;
      // Out of descriptors or similar: try again shortly rather than spin.
      auto retry = std::make_shared<asio::steady_timer>(accept_context);
      retry->expires_after(std::chrono::milliseconds(50));
      retry->async_wait([this, retry](ErrorCode) {
        if (!draining) Accept();
      });
      return;
    }
    ErrorCode ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    // The loop is chosen once the connection is there, so that a loop busy by
    // then is passed over; the connection is made and served on its thread.
    Loop* loop = PickLoop();
    loop->connection_count.fetch_add(1, std::memory_order_relaxed);
    tcp::socket moved(loop->context);
    int descriptor = socket.release(ignored);
    moved.assign(protocol, descriptor, ignored);
    asio::post(loop->context, [loop, socket = std::move(moved)]() mutable {
      std::make_shared<Connection>(loop, std::move(socket))->Start();
    });
    Accept();
  });
}

HttpTransport::HttpTransport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpTransport::~HttpTransport() {
  Shutdown();
  if (impl_->workers) impl_->workers->join();
}

Result<std::unique_ptr<HttpTransport>> HttpTransport::Make(TransportOptions options,
                                                           std::vector<Route> routes) {
  if (options.loops < 1) return InvalidArgument("threads: must be at least 1");
  if (options.workers < 0) return InvalidArgument("workers: must not be negative");
  if (options.max_body_bytes < 1) return InvalidArgument("max body bytes: must be at least 1");
  if (options.max_header_bytes < 256) {
    return InvalidArgument("max header bytes: must be at least 256");
  }
  if (options.keep_alive_seconds < 1 || options.io_timeout_seconds < 1) {
    return InvalidArgument("timeouts: must be at least 1 second");
  }
  auto impl = std::make_unique<Impl>();
  for (Route& route : routes) {
    if (std::find(std::begin(kMethods), std::end(kMethods), route.method) == std::end(kMethods)) {
      return InvalidArgument("route " + route.pattern + ": unsupported method " + route.method);
    }
    CompiledRoute compiled;
    compiled.prefix = LiteralPrefix(route.pattern, &compiled.literal);
    try {
      compiled.regex = std::regex(route.pattern, std::regex::ECMAScript);
    } catch (const std::regex_error& error) {
      return InvalidArgument("route " + route.pattern + ": not a regex: " + error.what());
    }
    std::string entry = route.method + " " + route.pattern;
    if (route.method != "HEAD" && impl->route_list.find(entry) == std::string::npos) {
      impl->route_list += (impl->route_list.empty() ? "" : ", ") + entry;
    }
    compiled.route = std::move(route);
    impl->routes.push_back(std::move(compiled));
  }
  if (options.workers == 0) options.workers = options.loops;
  impl->workers.emplace(static_cast<size_t>(options.workers));
  for (int i = 0; i < options.loops; ++i)
    impl->loops.push_back(std::make_unique<Impl::Loop>(impl.get()));
  impl->options = std::move(options);
  return std::unique_ptr<HttpTransport>(new HttpTransport(std::move(impl)));
}

Status HttpTransport::Bind() {
  const std::string& host = impl_->options.host;
  int wanted = impl_->options.port;
  auto fail = [&](const ErrorCode& error) {
    return Unavailable("cannot listen on " + host + ":" + std::to_string(wanted) + ": " +
                       error.message());
  };
  ErrorCode error;
  tcp::endpoint endpoint;
  asio::ip::address address = asio::ip::make_address(host, error);
  if (!error) {
    endpoint = tcp::endpoint(address, static_cast<unsigned short>(wanted));
  } else {
    tcp::resolver resolver(impl_->accept_context);
    auto results = resolver.resolve(host, std::to_string(wanted), error);
    if (error) return fail(error);
    if (results.empty()) return fail(asio::error::host_not_found);
    endpoint = results.begin()->endpoint();
  }
  tcp::acceptor& acceptor = impl_->acceptor;
  impl_->protocol = endpoint.protocol();
  if (acceptor.open(endpoint.protocol(), error)) return fail(error);
  if (acceptor.set_option(tcp::acceptor::reuse_address(true), error)) return fail(error);
  if (acceptor.bind(endpoint, error)) return fail(error);
  if (acceptor.listen(asio::socket_base::max_listen_connections, error)) return fail(error);
  impl_->port = acceptor.local_endpoint(error).port();
  if (error) return fail(error);
  impl_->listen_socket = acceptor.native_handle();
  return Status::Ok();
}

int HttpTransport::port() const { return impl_->port; }

bool HttpTransport::draining() const { return impl_->draining; }

Status HttpTransport::Run() {
  Impl& impl = *impl_;
  if (!impl.draining) asio::post(impl.accept_context, [&impl] { impl.Accept(); });
  std::vector<std::thread> threads;
  threads.emplace_back([&impl] { impl.accept_context.run(); });
  for (size_t i = 1; i < impl.loops.size(); ++i) {
    threads.emplace_back([loop = impl.loops[i].get()] { loop->context.run(); });
  }
  impl.loops[0]->context.run();
  for (std::thread& thread : threads) thread.join();
  return Status::Ok();
}

void HttpTransport::Shutdown() {
  Impl& impl = *impl_;
  if (impl.draining.exchange(true)) return;
  // Refuses new connections at once, whatever the acceptor's thread is doing.
  if (impl.listen_socket >= 0) ::shutdown(impl.listen_socket, SHUT_RDWR);
  asio::post(impl.accept_context, [&impl] {
    ErrorCode ignored;
    impl.acceptor.close(ignored);
  });
  for (auto& loop : impl.loops) {
    asio::post(loop->context, [loop = loop.get()] { loop->DrainAll(); });
  }
}

}  // namespace keel::serve
