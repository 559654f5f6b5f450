#pragma once

// The training set as the dataset step caches it: a keel table written column
// by column, exactly as it is in memory (no encoding, no compression), so
// writing and reading it are memory copies and a table read back equals the
// one written, value for value and type for type. It is a cache format, not
// an exchange format: `keel dataset build` writes Parquet for people.
//
// Layout (little-endian): "KEELTAB1", u64 rows, u64 columns, then per column
// u64 name length + name, u8 type, u8 has-validity, [rows validity bytes],
// the values (rows x 8 bytes for int64/timestamp/double, rows bytes for
// bool, (rows + 1) u64 offsets + u64 length + chars for strings); last an
// u64 Hash64 of everything before it, so a damaged file is refused.

#include <string>

#include "common/status.h"
#include "table/column.h"

namespace keel::train {

// Writes `table` to `path` (through a temporary file and a rename).
// Errors: IoError naming the path.
Status WriteTableFile(const table::Table& table, const std::string& path);

// Reads a table WriteTableFile wrote. Errors: IoError for an unreadable
// file; DataLoss naming the path for a file that is not one or is damaged.
Result<table::Table> ReadTableFile(const std::string& path);

}  // namespace keel::train
