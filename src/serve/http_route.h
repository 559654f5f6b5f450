#pragma once

// Extra endpoints of `keel serve`, added by the modules that own them (the
// prediction API, the registry API, metrics, ...) without the HTTP adapter
// knowing them: a method, a path pattern and a handler from a parsed request
// to a Reply (lookup.h). The transport (http_transport.h) reads bodies under
// the server's size limit, answers 405 for a known pattern and another
// method, and turns an exception into a 500 JSON answer.

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "serve/lookup.h"

namespace keel::serve {

// A request as a route handler sees it. Valid for the handler call only.
struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query string
  // The pattern's capture groups, in order (e.g. the model name).
  std::vector<std::string> captures;
  std::multimap<std::string, std::string> query;
  // Header names in lower case.
  std::map<std::string, std::string> headers;
  std::string_view body;

  // The first value of a query parameter, or "" when it is absent.
  std::string Query(const std::string& name) const {
    auto found = query.find(name);
    return found == query.end() ? std::string() : found->second;
  }
  // A header's value (name in lower case), or "" when it is absent.
  std::string Header(const std::string& lower_name) const {
    auto found = headers.find(lower_name);
    return found == headers.end() ? std::string() : found->second;
  }
};

struct Route {
  std::string method;   // GET, POST, PUT or DELETE
  std::string pattern;  // an ECMAScript regex matched against the whole path
  // Called from the transport's event loops and worker pool, concurrently:
  // must be thread-safe. A handler blocks the other connections of its
  // loop while it runs, unless the request body is large (http_transport.h).
  std::function<Reply(const HttpRequest&)> handle;
};

}  // namespace keel::serve
