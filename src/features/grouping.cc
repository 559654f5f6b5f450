#include "features/grouping.h"

#include <cmath>

namespace keel::features {

using table::Column;
using table::DataType;
using table::Table;

// Stable counting sort of `ids` (< buckets, or ignored) into groups.
void GroupRows(const std::vector<uint32_t>& ids, size_t buckets, std::vector<uint32_t>* rows,
               std::vector<uint32_t>* offsets, const std::vector<uint8_t>* include) {
  offsets->assign(buckets + 1, 0);
  for (size_t row = 0; row < ids.size(); ++row) {
    if (ids[row] < buckets && (include == nullptr || (*include)[row])) ++(*offsets)[ids[row] + 1];
  }
  for (size_t bucket = 0; bucket < buckets; ++bucket) (*offsets)[bucket + 1] += (*offsets)[bucket];
  rows->assign((*offsets)[buckets], 0);
  std::vector<uint32_t> cursor(offsets->begin(), offsets->end() - 1);
  for (size_t row = 0; row < ids.size(); ++row) {
    if (ids[row] < buckets && (include == nullptr || (*include)[row])) {
      (*rows)[cursor[ids[row]]++] = static_cast<uint32_t>(row);
    }
  }
}

Result<std::vector<const Column*>> KeyColumns(const Table& table,
                                              const std::vector<std::string>& names,
                                              const std::string& what) {
  std::vector<const Column*> columns;
  for (const std::string& name : names) {
    Result<const Column*> column = table.GetColumn(name);
    if (!column.ok()) return column.status().WithContext(what);
    columns.push_back(*column);
  }
  return columns;
}

Stream MakeStream(const Column& column, const std::vector<uint32_t>& order, bool with_values) {
  Stream stream;
  bool any_null = column.HasNulls() || column.type() == DataType::kDouble;
  if (!with_values) {
    // Validity only: the values' finiteness still decides it for doubles.
    if (any_null) {
      stream.valid.resize(order.size());
      for (size_t i = 0; i < order.size(); ++i) {
        uint32_t row = order[i];
        bool valid = column.IsValid(row) &&
                     (column.type() != DataType::kDouble || std::isfinite(column.doubles()[row]));
        stream.valid[i] = valid ? 1 : 0;
      }
    }
    return stream;
  }
  stream.values.resize(order.size());
  if (any_null) stream.valid.assign(order.size(), 1);
  // One loop per type: value = Column::NumericAt(row), read without its switch.
  auto fill = [&](auto numeric_at) {
    for (size_t i = 0; i < order.size(); ++i) {
      uint32_t row = order[i];
      double value = numeric_at(row);
      bool valid = column.IsValid(row) && std::isfinite(value);
      stream.values[i] = valid ? value : 0.0;
      if (any_null) stream.valid[i] = valid ? 1 : 0;
    }
  };
  switch (column.type()) {
    case DataType::kBool:
      fill([&](uint32_t row) { return static_cast<double>(column.bools()[row]); });
      break;
    case DataType::kInt64:
    case DataType::kTimestamp:
      fill([&](uint32_t row) { return static_cast<double>(column.ints()[row]); });
      break;
    case DataType::kDouble:
      fill([&](uint32_t row) { return column.doubles()[row]; });
      break;
    case DataType::kString:
      fill([](uint32_t) { return 0.0; });
      break;
  }
  return stream;
}

Result<std::shared_ptr<Grouping>> BuildGrouping(const Table& source, const FeatureViewDef& view,
                                                int threads) {
  auto grouping = std::make_shared<Grouping>();
  ASSIGN_OR_RETURN(std::vector<const Column*> keys,
                   KeyColumns(source, view.key_columns, "source '" + view.source.name + "'"));
  std::vector<uint32_t> ids;
  ASSIGN_OR_RETURN(EntityIndex index, EntityIndex::Build(keys, &ids));
  grouping->index = std::make_unique<EntityIndex>(std::move(index));
  size_t rows = source.num_rows();
  std::vector<Timestamp> ts(rows, kMinTimestamp);
  std::vector<uint8_t> include(rows, 1);
  if (!view.source.timestamp_column.empty()) {
    ASSIGN_OR_RETURN(const Column* column, source.GetColumn(view.source.timestamp_column));
    ts = column->ints();
    for (size_t row = 0; row < rows; ++row) include[row] = column->IsValid(row) ? 1 : 0;
  }
  std::vector<int64_t> created;
  if (!view.source.created_column.empty()) {
    ASSIGN_OR_RETURN(const Column* column, source.GetColumn(view.source.created_column));
    created = column->ints();
    for (size_t row = 0; row < rows; ++row) {
      if (!column->IsValid(row)) created[row] = INT64_MIN;
    }
  }
  GroupRows(ids, grouping->index->size(), &grouping->order, &grouping->offsets, &include);
  if (created.empty()) {
    SortWithinGroups(grouping->offsets, &grouping->order, threads,
                     [&](uint32_t row) { return ts[row]; });
  } else {
    SortWithinGroups(grouping->offsets, &grouping->order, threads,
                     [&](uint32_t row) { return std::pair(ts[row], created[row]); });
  }
  grouping->sorted_ts.resize(grouping->order.size());
  for (size_t i = 0; i < grouping->order.size(); ++i) {
    grouping->sorted_ts[i] = ts[grouping->order[i]];
  }
  return grouping;
}

}  // namespace keel::features
