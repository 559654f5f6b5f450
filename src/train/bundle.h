#pragma once

// The model bundle (DESIGN.md, "Model bundle"): one directory holding
//
//   manifest.json   what the model is: name, feature references with pinned
//                   versions, request inputs, training-data hash, code
//                   version, parameters, seeds, metrics, slice metrics, and
//                   {"files": {name: {"xxh128": hex, "bytes": n}}} for every
//                   other file of the bundle;
//   bundle.hash     the hash of manifest.json's bytes (the bundle hash);
//   model.ubj, transforms.json, baseline_*.json, profile.json,
//   golden_cases.json, ... (whatever the writer put in).
//
// The manifest is written with sorted keys and no timestamps, so the same
// contents always give the same bundle hash. Registration (the registry
// issue) takes a verified bundle directory and its hash.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"

namespace keel::train {

// One file of a bundle. `name` is a plain file name (no folders).
struct BundleFile {
  std::string name;
  std::string bytes;
};

// A verified bundle.
struct BundleInfo {
  std::string dir;
  std::string hash;  // of manifest.json
  nlohmann::json manifest;
};

// Writes a bundle into `dir` (which must not exist): the files, then the
// manifest (`manifest` plus a "files" object of checksums), then bundle.hash.
// Everything goes to a temporary sibling folder first and is renamed into
// place, so `dir` either holds a whole bundle or does not exist.
// Returns the bundle hash. Errors: InvalidArgument for a bad or duplicate
// file name or a manifest that already has "files"; AlreadyExists if `dir`
// exists; IoError when writing fails.
Result<std::string> WriteBundle(const std::string& dir, nlohmann::json manifest,
                                const std::vector<BundleFile>& files);

// Checks a bundle: the manifest parses, bundle.hash matches it, every file
// listed is present with its size and checksum, and no unlisted file is
// present. Errors: NotFound for a missing bundle or file, FailedPrecondition
// "bundle DIR: checksum mismatch in FILE" (or "unlisted file FILE", "bundle
// hash mismatch") for a tampered bundle.
Result<BundleInfo> VerifyBundle(const std::string& dir);

// Reads one file of a verified bundle. Errors: as VerifyBundle, NotFound for
// a name the manifest does not list.
Result<std::string> ReadBundleFile(const BundleInfo& bundle, const std::string& name);

// Writes a verified bundle as one archive file: "keel-bundle 1\n", then per
// file (sorted by name) "NAME SIZE\n" and the bytes. Errors: those of
// VerifyBundle; IoError when writing fails.
Status ExportBundle(const std::string& dir, const std::string& archive);

// Unpacks an archive written by ExportBundle into `dir` (which must not
// exist) and verifies it; a bundle that fails verification is removed.
// Errors: InvalidArgument for a file that is not such an archive (naming the
// byte offset); AlreadyExists; those of VerifyBundle.
Result<BundleInfo> ImportBundle(const std::string& archive, const std::string& dir);

}  // namespace keel::train
