#pragma once

// Test-only helper: runs a Python script under Debian's /usr/bin/python3 (the
// interpreter with python3-sklearn 1.2.1, python3-xgboost 1.7.4 and NumPy) on
// a JSON request and returns its JSON answer. Tests use it as an oracle and
// fail, never skip, when the interpreter or a module is missing.
// Thread-safety: each call uses its own temporary directory; safe from any thread.

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace keel::train::testing {

// Writes `script` and `request` (as request.json) to a fresh temporary directory,
// runs `/usr/bin/python3 script.py request.json > answer.json` there (the working
// directory is that directory, so the script may also read files the caller put
// in `files`: name -> bytes) and returns the parsed answer. On any failure it
// returns {"error": "<what happened, with the script's stderr>"}.
nlohmann::json RunPythonOracle(const std::string& script, const nlohmann::json& request,
                               const std::vector<std::pair<std::string, std::string>>& files = {});

}  // namespace keel::train::testing
