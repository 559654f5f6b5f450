#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "table/column.h"

namespace keel::features {

// Maps entity key tuples (one or more string/int64 columns) to dense ids
// 0..size()-1, in order of first appearance.
// Thread-safety: const methods may run concurrently once built.
class EntityIndex {
 public:
  static constexpr uint32_t kNoEntity = 0xFFFFFFFFu;
  // A null key: the row has no entity at all (its features are null).
  static constexpr uint32_t kNullKey = 0xFFFFFFFEu;

  // Assigns ids to every row of `keys` (the key columns of a source, in entity
  // key order) and writes them to `row_ids` (kNullKey for rows with a null key).
  // Errors: InvalidArgument for a key column that is not string or int64.
  static Result<EntityIndex> Build(const std::vector<const table::Column*>& keys,
                                   std::vector<uint32_t>* row_ids);

  // Looks up each row of `keys` (e.g. spine columns); unknown keys give
  // kNoEntity, null keys kNullKey. Errors: InvalidArgument when the column
  // count or types differ from the built index.
  Status Lookup(const std::vector<const table::Column*>& keys,
                std::vector<uint32_t>* row_ids) const;

  size_t size() const;

  EntityIndex(EntityIndex&&) noexcept;
  EntityIndex& operator=(EntityIndex&&) noexcept;
  ~EntityIndex();

  struct Impl;

 private:
  explicit EntityIndex(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace keel::features
