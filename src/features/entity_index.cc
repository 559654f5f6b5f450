#include "features/entity_index.h"

#include <string_view>
#include <unordered_map>

namespace keel::features {

using table::Column;
using table::DataType;

struct EntityIndex::Impl {
  std::vector<DataType> types;
  // Exactly one of these is used: one string key, one int64 key, or a tuple
  // encoded as bytes.
  std::unordered_map<std::string_view, uint32_t> strings;
  std::unordered_map<int64_t, uint32_t> ints;
  std::unordered_map<std::string, uint32_t> tuples;
  std::vector<std::unique_ptr<std::string>> string_storage;
  size_t count = 0;

  enum class Mode { kString, kInt, kTuple };
  Mode mode() const {
    if (types.size() > 1) return Mode::kTuple;
    return types[0] == DataType::kString ? Mode::kString : Mode::kInt;
  }
};

namespace {

bool AnyNull(const std::vector<const Column*>& keys, size_t row) {
  for (const Column* column : keys) {
    if (!column->IsValid(row)) return true;
  }
  return false;
}

void EncodeTuple(const std::vector<const Column*>& keys, size_t row, std::string* out) {
  out->clear();
  for (const Column* column : keys) {
    if (column->type() == DataType::kString) {
      std::string_view value = column->StringAt(row);
      uint32_t length = static_cast<uint32_t>(value.size());
      out->append(reinterpret_cast<const char*>(&length), sizeof(length));
      out->append(value);
    } else {
      out->append(reinterpret_cast<const char*>(&column->ints()[row]), sizeof(int64_t));
    }
  }
}

// A cache in front of Impl::strings for keys of at most 7 bytes (airport
// codes, states, ...): the key packed into one word (bytes, then the length
// in the top byte), in an open-addressing table. It only remembers ids the
// map gave, so ids are the map's. Full at half its slots: then it stops
// taking keys and the map answers the rest.
// Thread-safety: one thread.
class ShortKeyCache {
 public:
  // True (and the packed word) when `value` fits the cache.
  static bool Pack(std::string_view value, uint64_t* word) {
    if (value.size() > 7) return false;
    uint64_t packed = static_cast<uint64_t>(value.size()) << 56;
    for (size_t i = 0; i < value.size(); ++i) {
      packed |= static_cast<uint64_t>(static_cast<uint8_t>(value[i])) << (8 * i);
    }
    *word = packed;
    return true;
  }
  // True (and the id) when `word` is cached.
  bool Find(uint64_t word, uint32_t* id) const {
    for (size_t slot = Slot(word);; slot = (slot + 1) & kMask) {
      if (!used_[slot]) return false;
      if (words_[slot] == word) {
        *id = ids_[slot];
        return true;
      }
    }
  }
  void Insert(uint64_t word, uint32_t id) {
    if (size_ >= kSlots / 2) return;
    size_t slot = Slot(word);
    while (used_[slot]) slot = (slot + 1) & kMask;
    used_[slot] = 1;
    words_[slot] = word;
    ids_[slot] = id;
    ++size_;
  }

 private:
  static constexpr size_t kSlots = 1 << 14;
  static constexpr size_t kMask = kSlots - 1;
  static size_t Slot(uint64_t word) { return (word * 0x9E3779B97F4A7C15ULL) >> 50; }
  std::vector<uint8_t> used_ = std::vector<uint8_t>(kSlots, 0);
  std::vector<uint64_t> words_ = std::vector<uint64_t>(kSlots, 0);
  std::vector<uint32_t> ids_ = std::vector<uint32_t>(kSlots, 0);
  size_t size_ = 0;
};

Status CheckTypes(const std::vector<const Column*>& keys) {
  if (keys.empty()) return InvalidArgument("an entity needs at least one key column");
  for (const Column* column : keys) {
    if (column->type() != DataType::kString && column->type() != DataType::kInt64) {
      return InvalidArgument("entity key columns must be string or int64, got " +
                             std::string(table::DataTypeName(column->type())));
    }
  }
  return Status::Ok();
}

}  // namespace

EntityIndex::EntityIndex(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EntityIndex::EntityIndex(EntityIndex&&) noexcept = default;
EntityIndex& EntityIndex::operator=(EntityIndex&&) noexcept = default;
EntityIndex::~EntityIndex() = default;

size_t EntityIndex::size() const { return impl_->count; }

Result<EntityIndex> EntityIndex::Build(const std::vector<const Column*>& keys,
                                       std::vector<uint32_t>* row_ids) {
  RETURN_IF_ERROR(CheckTypes(keys));
  auto impl = std::make_unique<Impl>();
  for (const Column* column : keys) impl->types.push_back(column->type());
  size_t rows = keys[0]->size();
  row_ids->assign(rows, kNullKey);
  std::string tuple;
  Impl::Mode mode = impl->mode();
  // Consecutive rows often share a key (sorted sources); remember the last one.
  uint32_t last_id = kNullKey;
  ShortKeyCache cache;
  std::string_view last_string;
  int64_t last_int = 0;
  for (size_t row = 0; row < rows; ++row) {
    if (AnyNull(keys, row)) continue;
    uint32_t next = static_cast<uint32_t>(impl->count);
    uint32_t id = 0;
    if (mode == Impl::Mode::kString) {
      std::string_view value = keys[0]->StringAt(row);
      if (last_id != kNullKey && value == last_string) {
        (*row_ids)[row] = last_id;
        continue;
      }
      uint64_t word = 0;
      bool short_key = ShortKeyCache::Pack(value, &word);
      if (!short_key || !cache.Find(word, &id)) {
        auto it = impl->strings.find(value);
        if (it == impl->strings.end()) {
          impl->string_storage.push_back(std::make_unique<std::string>(value));
          it = impl->strings.emplace(*impl->string_storage.back(), next).first;
        }
        id = it->second;
        if (short_key) cache.Insert(word, id);
      }
      last_string = value;
    } else if (mode == Impl::Mode::kInt) {
      int64_t value = keys[0]->ints()[row];
      if (last_id != kNullKey && value == last_int) {
        (*row_ids)[row] = last_id;
        continue;
      }
      id = impl->ints.emplace(value, next).first->second;
      last_int = value;
    } else {
      EncodeTuple(keys, row, &tuple);
      id = impl->tuples.emplace(tuple, next).first->second;
    }
    if (id == next) ++impl->count;
    (*row_ids)[row] = id;
    last_id = id;
  }
  return EntityIndex(std::move(impl));
}

Status EntityIndex::Lookup(const std::vector<const Column*>& keys,
                           std::vector<uint32_t>* row_ids) const {
  RETURN_IF_ERROR(CheckTypes(keys));
  if (keys.size() != impl_->types.size()) {
    return InvalidArgument("expected " + std::to_string(impl_->types.size()) +
                           " key columns, got " + std::to_string(keys.size()));
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    if (keys[i]->type() != impl_->types[i]) {
      return InvalidArgument("key column " + std::to_string(i + 1) + " is " +
                             std::string(table::DataTypeName(keys[i]->type())) +
                             ", entity key is " +
                             std::string(table::DataTypeName(impl_->types[i])));
    }
  }
  size_t rows = keys[0]->size();
  row_ids->assign(rows, kNullKey);
  std::string tuple;
  Impl::Mode mode = impl_->mode();
  ShortKeyCache cache;
  for (size_t row = 0; row < rows; ++row) {
    if (AnyNull(keys, row)) continue;
    uint32_t id = kNoEntity;
    if (mode == Impl::Mode::kString) {
      std::string_view value = keys[0]->StringAt(row);
      uint64_t word = 0;
      bool short_key = ShortKeyCache::Pack(value, &word);
      if (!short_key || !cache.Find(word, &id)) {
        auto it = impl_->strings.find(value);
        if (it != impl_->strings.end()) id = it->second;
        if (short_key) cache.Insert(word, id);  // kNoEntity too: unknown keys repeat
      }
    } else if (mode == Impl::Mode::kInt) {
      auto it = impl_->ints.find(keys[0]->ints()[row]);
      if (it != impl_->ints.end()) id = it->second;
    } else {
      EncodeTuple(keys, row, &tuple);
      auto it = impl_->tuples.find(tuple);
      if (it != impl_->tuples.end()) id = it->second;
    }
    (*row_ids)[row] = id;
  }
  return Status::Ok();
}

}  // namespace keel::features
