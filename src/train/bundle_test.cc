#include "train/bundle.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "common/files.h"

namespace keel::train {
namespace {

namespace fs = std::filesystem;

class BundleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("keel_bundle_test_" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string Path(const std::string& name) const { return (root_ / name).string(); }

  std::string Write(const std::string& name) {
    Result<std::string> hash =
        WriteBundle(Path(name), {{"name", "delay"}, {"metrics", {{"auc", 0.7}}}},
                    {{"model.ubj", std::string("\x00\x01model", 7)}, {"golden.json", "[1,2]"}});
    EXPECT_TRUE(hash.ok()) << hash.status().ToString();
    return hash.ok() ? *hash : "";
  }

  fs::path root_;
};

TEST_F(BundleTest, WritesAndVerifies) {
  std::string hash = Write("b");
  Result<BundleInfo> info = VerifyBundle(Path("b"));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->hash, hash);
  EXPECT_EQ(info->manifest["name"], "delay");
  EXPECT_EQ(info->manifest["files"]["model.ubj"]["bytes"], 7);
  EXPECT_EQ(*ReadBundleFile(*info, "golden.json"), "[1,2]");
  EXPECT_EQ(Write("same"), hash) << "same contents, same bundle hash";
  EXPECT_EQ(WriteBundle(Path("b"), nlohmann::json::object(), {}).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(WriteBundle(Path("c"), nlohmann::json::object(), {{"../x", ""}}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(BundleTest, RefusesATamperedFileNamingIt) {
  Write("b");
  ASSERT_TRUE(WriteFileAtomically(Path("b/model.ubj"), std::string("\x00\x01modeL", 7)).ok());
  Result<BundleInfo> info = VerifyBundle(Path("b"));
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(info.status().message().find("checksum mismatch in model.ubj"), std::string::npos)
      << info.status().message();
}

TEST_F(BundleTest, RefusesAChangedManifestMissingAndExtraFiles) {
  Write("b");
  std::string manifest = *ReadFileToString(Path("b/manifest.json"));
  manifest.replace(manifest.find("0.7"), 3, "0.9");
  ASSERT_TRUE(WriteFileAtomically(Path("b/manifest.json"), manifest).ok());
  EXPECT_NE(VerifyBundle(Path("b")).status().message().find("bundle hash mismatch"),
            std::string::npos);

  Write("c");
  fs::remove(Path("c/golden.json"));
  EXPECT_NE(VerifyBundle(Path("c")).status().message().find("missing file golden.json"),
            std::string::npos);

  Write("d");
  ASSERT_TRUE(WriteFileAtomically(Path("d/extra.bin"), "x").ok());
  EXPECT_NE(VerifyBundle(Path("d")).status().message().find("unlisted file extra.bin"),
            std::string::npos);
  EXPECT_EQ(VerifyBundle(Path("none")).status().code(), StatusCode::kNotFound);
}

TEST_F(BundleTest, RoundTripsThroughExportAndImport) {
  std::string hash = Write("b");
  ASSERT_TRUE(ExportBundle(Path("b"), Path("b.keelbundle")).ok());
  Result<BundleInfo> imported = ImportBundle(Path("b.keelbundle"), Path("imported"));
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  EXPECT_EQ(imported->hash, hash);
  EXPECT_EQ(*ReadFileToString(Path("imported/model.ubj")), std::string("\x00\x01model", 7));
}

TEST_F(BundleTest, ImportRefusesTamperedAndBadArchives) {
  Write("b");
  ASSERT_TRUE(ExportBundle(Path("b"), Path("a.keelbundle")).ok());
  std::string archive = *ReadFileToString(Path("a.keelbundle"));
  std::string tampered = archive;
  tampered.replace(tampered.find("[1,2]"), 5, "[1,3]");
  ASSERT_TRUE(WriteFileAtomically(Path("t.keelbundle"), tampered).ok());
  Result<BundleInfo> info = ImportBundle(Path("t.keelbundle"), Path("t"));
  ASSERT_FALSE(info.ok());
  EXPECT_NE(info.status().message().find("checksum mismatch in golden.json"), std::string::npos);
  EXPECT_FALSE(fs::exists(Path("t"))) << "a refused bundle is not left behind";

  ASSERT_TRUE(
      WriteFileAtomically(Path("x.keelbundle"), archive.substr(0, archive.size() - 3)).ok());
  info = ImportBundle(Path("x.keelbundle"), Path("x"));
  EXPECT_EQ(info.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(info.status().message().find("truncated"), std::string::npos);
  ASSERT_TRUE(WriteFileAtomically(Path("y.keelbundle"), "not a bundle").ok());
  EXPECT_EQ(ImportBundle(Path("y.keelbundle"), Path("y")).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace keel::train
