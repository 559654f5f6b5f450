// The HTTP transport on real sockets: raw requests for what a well-behaved
// client never sends, httplib's client for the rest.
#include "serve/http_transport.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace keel::serve {
namespace {

using Clock = std::chrono::steady_clock;

double MillisSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// A raw keep-alive connection that reads answers one at a time.
class RawClient {
 public:
  explicit RawClient(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      ::close(fd_);
      fd_ = -1;
      return;
    }
    timeval timeout{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  }
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return fd_ >= 0; }
  void Close() {
    ::close(fd_);
    fd_ = -1;
  }

  bool Send(std::string_view data) {
    while (!data.empty()) {
      ssize_t sent = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (sent <= 0) return false;
      data.remove_prefix(static_cast<size_t>(sent));
    }
    return true;
  }

  // The next answer (head and Content-Length body), or "" when the server
  // closed the connection (or said nothing for 10 s) first.
  std::string ReadAnswer(bool head_only = false) {
    while (true) {
      size_t head_end = buffer_.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        std::string head = Lower(buffer_.substr(0, head_end));
        size_t length = 0;
        size_t field = head.find("content-length: ");
        if (field != std::string::npos && !head_only) {
          length = std::stoul(head.substr(field + 16));
        }
        size_t total = head_end + 4 + length;
        if (buffer_.size() >= total) {
          std::string answer = buffer_.substr(0, total);
          buffer_.erase(0, total);
          return answer;
        }
      }
      char chunk[65536];
      ssize_t got = ::recv(fd_, chunk, sizeof(chunk), 0);
      if (got <= 0) return "";
      buffer_.append(chunk, static_cast<size_t>(got));
    }
  }

  // True when the server closes the connection within `seconds` (nothing
  // more arrives).
  bool ClosedWithin(int seconds) {
    timeval timeout{seconds, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    char chunk[1024];
    ssize_t got = ::recv(fd_, chunk, sizeof(chunk), 0);
    return got == 0 || (got < 0 && errno == ECONNRESET);
  }

 private:
  static std::string Lower(std::string text) {
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
  }
  int fd_ = -1;
  std::string buffer_;
};

bool Has(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

class Transport : public ::testing::Test {
 protected:
  // Routes: GET /fast; POST /echo/(name) answers the body; GET|POST /slow
  // sleeps `slow_ms_` (counting calls); GET /query answers q and a header.
  void Start(TransportOptions options) {
    std::vector<Route> routes;
    routes.push_back({"GET", "/fast", [](const HttpRequest&) { return Reply(200, "{\"f\":1}"); }});
    routes.push_back({"POST", "/echo/([^/]+)", [](const HttpRequest& request) {
                        Reply reply(200, std::string(request.body));
                        reply.content_type = "text/plain";
                        reply.headers.emplace_back("X-Name", request.captures.at(0));
                        return reply;
                      }});
    auto slow = [this](const HttpRequest& request) {
      ++slow_calls_;
      std::this_thread::sleep_for(std::chrono::milliseconds(slow_ms_));
      return Reply(200, "{\"slept\":" + std::to_string(request.body.size()) + "}");
    };
    routes.push_back({"GET", "/slow", slow});
    routes.push_back({"POST", "/slow", slow});
    routes.push_back({"GET", "/query", [](const HttpRequest& request) {
                        return Reply(200, request.Query("q") + "|" + request.Header("x-thing") +
                                              "|" + request.path);
                      }});
    options.port = 0;
    Result<std::unique_ptr<HttpTransport>> made =
        HttpTransport::Make(std::move(options), std::move(routes));
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    server_ = std::move(*made);
    ASSERT_TRUE(server_->Bind().ok());
    runner_ = std::thread([this] { ran_ = server_->Run().ok(); });
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
    if (runner_.joinable()) runner_.join();
  }
  int port() const { return server_->port(); }
  // A new client still gets GET /fast answered (the server kept serving).
  void ExpectStillServing() const {
    httplib::Client client("127.0.0.1", port());
    auto fine = client.Get("/fast");
    ASSERT_TRUE(fine);
    EXPECT_EQ(fine->status, 200);
  }

  std::unique_ptr<HttpTransport> server_;
  std::thread runner_;
  std::atomic<bool> ran_{false};
  std::atomic<int> slow_calls_{0};
  int slow_ms_ = 500;
};

TEST_F(Transport, PipelinedRequestsAreAnsweredInOrder) {
  Start({});
  RawClient client(port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(
      client.Send("GET /fast HTTP/1.1\r\nHost: x\r\n\r\n"
                  "POST /echo/one HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                  "POST /echo/two HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
                  "GET /query?q=a%20b+c&q=2&x HTTP/1.1\r\nHost: x\r\nX-Thing: T\r\n\r\n"));
  std::string first = client.ReadAnswer(), second = client.ReadAnswer(),
              third = client.ReadAnswer(), fourth = client.ReadAnswer();
  EXPECT_TRUE(Has(first, "HTTP/1.1 200 OK") && Has(first, "{\"f\":1}")) << first;
  EXPECT_TRUE(Has(second, "X-Name: one") && Has(second, "\r\n\r\nhello")) << second;
  EXPECT_TRUE(Has(third, "X-Name: two") && Has(third, "\r\n\r\nabcde")) << third;
  EXPECT_TRUE(Has(fourth, "\r\n\r\na b c|T|/query")) << fourth;
}

TEST_F(Transport, OneConnectionServesManyRequests) {
  Start({});
  RawClient client(port());
  for (int i = 0; i < 500; ++i) {
    std::string body = std::to_string(i);
    ASSERT_TRUE(client.Send("POST /echo/n HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\n\r\n" + body));
    std::string answer = client.ReadAnswer();
    ASSERT_TRUE(Has(answer, "\r\n\r\n" + body)) << "request " << i << ": " << answer;
    ASSERT_FALSE(Has(answer, "Connection: close")) << answer;
  }
}

TEST_F(Transport, Http10ClosesUnlessAskedToKeepAlive) {
  Start({});
  RawClient plain(port());
  ASSERT_TRUE(plain.Send("GET /fast HTTP/1.0\r\n\r\n"));
  std::string answer = plain.ReadAnswer();
  EXPECT_TRUE(Has(answer, "200 OK") && Has(answer, "Connection: close")) << answer;
  EXPECT_TRUE(plain.ClosedWithin(5));
  RawClient kept(port());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(kept.Send("GET /fast HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    answer = kept.ReadAnswer();
    EXPECT_TRUE(Has(answer, "200 OK") && Has(answer, "Connection: keep-alive")) << answer;
  }
}

TEST_F(Transport, HeadAnswersWithoutBodyAndExpectContinueIsHonoured) {
  Start({});
  RawClient client(port());
  ASSERT_TRUE(client.Send("HEAD /fast HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string head = client.ReadAnswer(/*head_only=*/true);
  EXPECT_TRUE(Has(head, "200 OK") && Has(head, "Content-Length: 7")) << head;
  // The next answer starts right after the head: no body was sent.
  ASSERT_TRUE(client.Send(
      "POST /echo/c HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"));
  std::string go_on = client.ReadAnswer(/*head_only=*/true);
  EXPECT_TRUE(Has(go_on, "HTTP/1.1 100 Continue")) << go_on;
  ASSERT_TRUE(client.Send("body"));
  std::string answer = client.ReadAnswer();
  EXPECT_TRUE(Has(answer, "200 OK") && Has(answer, "\r\n\r\nbody")) << answer;
}

TEST_F(Transport, BodiesOverTheLimitGet413JsonNamingIt) {
  TransportOptions options;
  options.max_body_bytes = 100;
  Start(options);
  RawClient announced(port());
  ASSERT_TRUE(announced.Send("POST /echo/x HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n" +
                             std::string(101, 'a')));
  std::string answer = announced.ReadAnswer();
  EXPECT_TRUE(Has(answer, "HTTP/1.1 413 Payload Too Large")) << answer;
  EXPECT_TRUE(Has(answer, "application/json") && Has(answer, "limit of 100 bytes")) << answer;
  EXPECT_TRUE(Has(answer, "Connection: close")) << answer;
  RawClient chunked(port());
  std::string request = "POST /echo/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 5; ++i) request += "28\r\n" + std::string(40, 'b') + "\r\n";
  ASSERT_TRUE(chunked.Send(request + "0\r\n\r\n"));
  answer = chunked.ReadAnswer();
  EXPECT_TRUE(Has(answer, "413") && Has(answer, "limit of 100 bytes")) << answer;
  // At the limit is fine, and the server goes on.
  httplib::Client client("127.0.0.1", port());
  auto exact = client.Post("/echo/x", std::string(100, 'c'), "text/plain");
  ASSERT_TRUE(exact);
  EXPECT_EQ(exact->status, 200);
}

TEST_F(Transport, MalformedRequestsGet4xxJsonAndTheServerGoesOn) {
  TransportOptions options;
  options.max_header_bytes = 4096;
  Start(options);
  struct Case {
    std::string request;
    std::string status;
  };
  std::vector<Case> cases = {
      {"GARBAGE\r\n\r\n", "400 Bad Request"},
      {"GET /fast HTTQ/1.1\r\n\r\n", "400 Bad Request"},
      {"GET /fast HTTP/1.1\r\nNo colon here\r\n\r\n", "400 Bad Request"},
      {"POST /echo/x HTTP/1.1\r\nContent-Length: nope\r\n\r\n", "400 Bad Request"},
      {"POST /echo/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "400 Bad Request"},
      {"GET /fast HTTP/1.1\r\nX-Big: " + std::string(5000, 'h') + "\r\n\r\n",
       "431 Request Header Fields Too Large"},
      {"GET /" + std::string(5000, 'p') + " HTTP/1.1\r\n\r\n",
       "431 Request Header Fields Too Large"},
      {std::string("\x16\x03\x01\x02\x00garbage\r\n\r\n", 17), "400 Bad Request"},
  };
  for (const Case& bad : cases) {
    RawClient client(port());
    ASSERT_TRUE(client.Send(bad.request));
    std::string answer = client.ReadAnswer();
    EXPECT_TRUE(Has(answer, "HTTP/1.1 " + bad.status)) << bad.request.substr(0, 60) << "\n"
                                                       << answer;
    EXPECT_TRUE(Has(answer, "application/json") && Has(answer, "{\"error\":")) << answer;
    EXPECT_TRUE(client.ClosedWithin(5));
  }
  // 404 and 405 keep the connection.
  RawClient client(port());
  ASSERT_TRUE(client.Send("GET /nowhere HTTP/1.1\r\n\r\nPUT /fast HTTP/1.1\r\n\r\n"));
  std::string missing = client.ReadAnswer(), wrong = client.ReadAnswer();
  EXPECT_TRUE(Has(missing, "404 Not Found") && Has(missing, "GET /fast")) << missing;
  EXPECT_TRUE(Has(wrong, "405 Method Not Allowed") && Has(wrong, "Allow: GET")) << wrong;
  ExpectStillServing();
}

TEST_F(Transport, ClientsThatGoMidBodyOrStallAreDropped) {
  TransportOptions options;
  options.io_timeout_seconds = 1;
  options.keep_alive_seconds = 1;
  Start(options);
  {
    RawClient gone(port());
    ASSERT_TRUE(gone.Send("POST /slow HTTP/1.1\r\nContent-Length: 1000\r\n\r\n0123456789"));
    gone.Close();
  }
  RawClient stalled_body(port());
  ASSERT_TRUE(stalled_body.Send("POST /slow HTTP/1.1\r\nContent-Length: 1000\r\n\r\n01234"));
  RawClient stalled_head(port());
  ASSERT_TRUE(stalled_head.Send("GET /fast HTTP/1.1\r\nHost:"));
  RawClient idle(port());
  auto started = Clock::now();
  EXPECT_TRUE(stalled_body.ClosedWithin(5));
  EXPECT_TRUE(stalled_head.ClosedWithin(5));
  EXPECT_TRUE(idle.ClosedWithin(5));
  EXPECT_LT(MillisSince(started), 3000);
  EXPECT_EQ(slow_calls_.load(), 0);  // no handler saw a partial body
  ExpectStillServing();
}

TEST_F(Transport, SixtyFourConnectionsOnTwoLoops) {
  TransportOptions options;
  options.loops = 2;
  Start(options);
  std::atomic<int> wrong{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 64; ++c) {
    clients.emplace_back([&, c] {
      httplib::Client client("127.0.0.1", port());
      client.set_keep_alive(true);
      for (int i = 0; i < 30; ++i) {
        std::string body = std::to_string(c) + "-" + std::to_string(i);
        auto result = client.Post("/echo/c", body, "text/plain");
        if (!result || result->status != 200 || result->body != body) ++wrong;
      }
    });
  }
  for (std::thread& client : clients) client.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(Transport, ASlowHandlerDoesNotStallNewConnections) {
  TransportOptions options;
  options.loops = 2;
  slow_ms_ = 3000;
  Start(options);
  std::thread slow([&] {
    httplib::Client client("127.0.0.1", port());
    auto result = client.Get("/slow");
    EXPECT_TRUE(result && result->status == 200);
  });
  while (slow_calls_.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the loop counts as busy now
  auto started = Clock::now();
  for (int i = 0; i < 20; ++i) {
    httplib::Client client("127.0.0.1", port());
    auto result = client.Get("/fast");
    ASSERT_TRUE(result && result->status == 200);
  }
  EXPECT_LT(MillisSince(started), 2000) << "new connections waited for the slow handler";
  slow.join();
}

TEST_F(Transport, ALargeBodyIsHandledOffTheLoop) {
  TransportOptions options;
  options.loops = 1;
  options.offload_body_bytes = 1000;
  slow_ms_ = 3000;
  Start(options);
  RawClient fast(port());  // on the only loop, like the large request
  ASSERT_TRUE(fast.Send("GET /fast HTTP/1.1\r\n\r\n"));
  ASSERT_TRUE(Has(fast.ReadAnswer(), "200 OK"));
  std::thread large([&] {
    httplib::Client client("127.0.0.1", port());
    auto result = client.Post("/slow", std::string(2000, 'x'), "text/plain");
    EXPECT_TRUE(result && result->status == 200 && result->body == "{\"slept\":2000}");
  });
  while (slow_calls_.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto started = Clock::now();
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(fast.Send("GET /fast HTTP/1.1\r\n\r\n"));
    ASSERT_TRUE(Has(fast.ReadAnswer(), "200 OK"));
  }
  EXPECT_LT(MillisSince(started), 2000) << "the loop waited for the large request";
  large.join();
}

TEST_F(Transport, ShutdownAnswersTheRequestInFlightAndRefusesNewOnes) {
  slow_ms_ = 800;
  Start({});
  RawClient idle(port());
  ASSERT_TRUE(idle.Send("GET /fast HTTP/1.1\r\n\r\n"));
  ASSERT_TRUE(Has(idle.ReadAnswer(), "200 OK"));
  RawClient half(port());  // a request half sent when the shutdown comes
  ASSERT_TRUE(half.Send("POST /echo/h HTTP/1.1\r\nContent-Length: 6\r\n\r\nabc"));
  RawClient busy(port());
  ASSERT_TRUE(busy.Send("GET /slow HTTP/1.1\r\n\r\n"));
  while (slow_calls_.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  server_->Shutdown();
  EXPECT_TRUE(server_->draining());
  EXPECT_FALSE(RawClient(port()).connected()) << "a new connection was accepted";
  std::string slow_answer = busy.ReadAnswer();
  EXPECT_TRUE(Has(slow_answer, "200 OK") && Has(slow_answer, "Connection: close")) << slow_answer;
  ASSERT_TRUE(half.Send("def"));
  std::string half_answer = half.ReadAnswer();
  EXPECT_TRUE(Has(half_answer, "\r\n\r\nabcdef") && Has(half_answer, "Connection: close"))
      << half_answer;
  EXPECT_TRUE(idle.ClosedWithin(5));
  runner_.join();
  EXPECT_TRUE(ran_.load());
}

TEST(TransportOptionsCheck, BadOptionsAndRoutesAreRefused) {
  TransportOptions options;
  options.loops = 0;
  EXPECT_FALSE(HttpTransport::Make(options, {}).ok());
  std::vector<Route> bad_method = {{"FETCH", "/x", [](const HttpRequest&) { return Reply(); }}};
  EXPECT_FALSE(HttpTransport::Make({}, bad_method).ok());
  std::vector<Route> bad_pattern = {{"GET", "/x(", [](const HttpRequest&) { return Reply(); }}};
  Result<std::unique_ptr<HttpTransport>> made = HttpTransport::Make({}, bad_pattern);
  ASSERT_FALSE(made.ok());
  EXPECT_NE(made.status().ToString().find("/x("), std::string::npos);
}

TEST(TransportBind, APortInUseIsAnError) {
  Result<std::unique_ptr<HttpTransport>> first = HttpTransport::Make({}, {});
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE((*first)->Bind().ok());
  TransportOptions options;
  options.port = (*first)->port();
  Result<std::unique_ptr<HttpTransport>> second = HttpTransport::Make(options, {});
  ASSERT_TRUE(second.ok());
  Status bound = (*second)->Bind();
  EXPECT_FALSE(bound.ok());
  EXPECT_NE(bound.ToString().find("cannot listen on 127.0.0.1:" + std::to_string(options.port)),
            std::string::npos)
      << bound.ToString();
}

}  // namespace
}  // namespace keel::serve
