#include "train/table_file.h"

#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "common/files.h"
#include "common/hash.h"

namespace keel::train {
namespace {

constexpr char kMagic[8] = {'K', 'E', 'E', 'L', 'T', 'A', 'B', '1'};

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

// Writes blocks and folds each block's Hash64 into a running hash.
// Thread-safety: one thread.
class Writer {
 public:
  explicit Writer(std::FILE* file) : file_(file) {}
  void Bytes(const void* data, size_t size) {
    if (size == 0) return;
    ok_ = ok_ && std::fwrite(data, 1, size, file_) == size;
    Fold(data, size);
  }
  void U64(uint64_t value) { Bytes(&value, sizeof(value)); }
  void U8(uint8_t value) { Bytes(&value, sizeof(value)); }
  bool Finish() {
    uint64_t hash = hash_;
    ok_ = ok_ && std::fwrite(&hash, 1, sizeof(hash), file_) == sizeof(hash);
    return ok_ && std::fflush(file_) == 0;
  }

 private:
  void Fold(const void* data, size_t size) {
    uint64_t words[2] = {hash_, Hash64(std::string_view(static_cast<const char*>(data), size))};
    hash_ = Hash64(std::string_view(reinterpret_cast<const char*>(words), sizeof(words)));
  }
  std::FILE* file_;
  bool ok_ = true;
  uint64_t hash_ = 0;
};

// Reads blocks, folding hashes as Writer does. Thread-safety: one thread.
class Reader {
 public:
  explicit Reader(std::FILE* file) : file_(file) {}
  bool Bytes(void* data, size_t size) {
    if (size == 0) return true;
    if (std::fread(data, 1, size, file_) != size) return false;
    uint64_t words[2] = {hash_, Hash64(std::string_view(static_cast<const char*>(data), size))};
    hash_ = Hash64(std::string_view(reinterpret_cast<const char*>(words), sizeof(words)));
    return true;
  }
  bool U64(uint64_t* value) { return Bytes(value, sizeof(*value)); }
  bool U8(uint8_t* value) { return Bytes(value, sizeof(*value)); }
  // True when the stored hash follows and matches, and nothing else does.
  bool Finish() {
    uint64_t stored = 0;
    if (std::fread(&stored, 1, sizeof(stored), file_) != sizeof(stored)) return false;
    return stored == hash_ && std::fgetc(file_) == EOF;
  }

 private:
  std::FILE* file_;
  uint64_t hash_ = 0;
};

template <typename T>
void WriteVector(Writer& writer, const std::vector<T>& values) {
  writer.Bytes(values.data(), values.size() * sizeof(T));
}

template <typename T>
bool ReadVector(Reader& reader, size_t count, std::vector<T>* values) {
  values->resize(count);
  return reader.Bytes(values->data(), count * sizeof(T));
}

}  // namespace

Status WriteTableFile(const table::Table& table, const std::string& path) {
  std::string temporary = TemporaryPathFor(path);
  bool ok = false;
  {
    FilePtr file(std::fopen(temporary.c_str(), "wb"));
    if (file == nullptr) return IoError("cannot write " + path + ": " + std::strerror(errno));
    Writer writer(file.get());
    writer.Bytes(kMagic, sizeof(kMagic));
    writer.U64(table.num_rows());
    writer.U64(table.num_columns());
    for (size_t index = 0; index < table.num_columns(); ++index) {
      const table::Field& field = table.fields()[index];
      const table::Column& column = table.column(index);
      writer.U64(field.name.size());
      writer.Bytes(field.name.data(), field.name.size());
      writer.U8(static_cast<uint8_t>(field.type));
      writer.U8(column.validity().empty() ? 0 : 1);
      WriteVector(writer, column.validity());
      switch (field.type) {
        case table::DataType::kBool:
          WriteVector(writer, column.bools());
          break;
        case table::DataType::kInt64:
        case table::DataType::kTimestamp:
          WriteVector(writer, column.ints());
          break;
        case table::DataType::kDouble:
          WriteVector(writer, column.doubles());
          break;
        case table::DataType::kString:
          WriteVector(writer, column.string_offsets());
          writer.U64(column.string_chars().size());
          writer.Bytes(column.string_chars().data(), column.string_chars().size());
          break;
      }
    }
    ok = writer.Finish();
  }
  if (!ok) {
    RemoveFileQuietly(temporary);
    return IoError("cannot write " + path + ": " + std::strerror(errno));
  }
  return CommitTemporaryFile(temporary, path);
}

Result<table::Table> ReadTableFile(const std::string& path) {
  FilePtr file(std::fopen(path.c_str(), "rb"));
  if (file == nullptr) return IoError("cannot read " + path + ": " + std::strerror(errno));
  const Status damaged = IoError(path + " is not a keel table file or is damaged");
  Reader reader(file.get());
  char magic[sizeof(kMagic)];
  uint64_t rows = 0, columns = 0;
  if (!reader.Bytes(magic, sizeof(magic)) || std::memcmp(magic, kMagic, sizeof(kMagic)) != 0 ||
      !reader.U64(&rows) || !reader.U64(&columns) || columns > (1u << 20) || rows > (1ull << 40)) {
    return damaged;
  }
  table::Table out;
  for (uint64_t index = 0; index < columns; ++index) {
    uint64_t name_size = 0;
    if (!reader.U64(&name_size) || name_size > (1u << 20)) return damaged;
    std::string name(name_size, '\0');
    uint8_t type = 0, has_validity = 0;
    if (!reader.Bytes(name.data(), name.size()) || !reader.U8(&type) || !reader.U8(&has_validity) ||
        type > static_cast<uint8_t>(table::DataType::kTimestamp) || has_validity > 1) {
      return damaged;
    }
    table::Column column(static_cast<table::DataType>(type), 0);
    std::vector<uint8_t> validity;
    if (has_validity == 1 && !ReadVector(reader, rows, &validity)) return damaged;
    switch (column.type()) {
      case table::DataType::kBool:
        if (!ReadVector(reader, rows, &column.bools())) return damaged;
        column.ResizeAfterBulkAppend(rows);
        break;
      case table::DataType::kInt64:
      case table::DataType::kTimestamp:
        if (!ReadVector(reader, rows, &column.ints())) return damaged;
        column.ResizeAfterBulkAppend(rows);
        break;
      case table::DataType::kDouble:
        if (!ReadVector(reader, rows, &column.doubles())) return damaged;
        column.ResizeAfterBulkAppend(rows);
        break;
      case table::DataType::kString: {
        std::vector<uint64_t> offsets;
        uint64_t chars_size = 0;
        if (!ReadVector(reader, rows + 1, &offsets) || !reader.U64(&chars_size) ||
            chars_size > (1ull << 40) || offsets[0] != 0 || offsets[rows] != chars_size) {
          return damaged;
        }
        std::string chars(chars_size, '\0');
        if (!reader.Bytes(chars.data(), chars.size())) return damaged;
        column.Reserve(rows, chars.size());
        for (uint64_t row = 0; row < rows; ++row) {
          if (offsets[row] > offsets[row + 1]) return damaged;
          column.AppendString(
              std::string_view(chars.data() + offsets[row], offsets[row + 1] - offsets[row]));
        }
        break;
      }
    }
    if (has_validity == 1) column.mutable_validity() = std::move(validity);
    RETURN_IF_ERROR(out.AddColumn(std::move(name), std::move(column)));
  }
  if (!reader.Finish()) return damaged;
  return out;
}

}  // namespace keel::train
