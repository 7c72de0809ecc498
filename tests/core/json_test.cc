#include "qmtl/core/json.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <csignal>
#include <fstream>
#include <thread>

namespace qmtl {
namespace {

TEST(Json, ParseReportsWhereItFailed) {
  auto r = json::parse(R"({"id": )");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message.find("malformed JSON"), std::string::npos);
  EXPECT_FALSE(json::parse(""));
  EXPECT_FALSE(json::parse(R"({"a":1} {"b":2})"));
  EXPECT_TRUE(json::parse(R"( {"a":1} )"));
}

TEST(Json, FieldAccessorsNameTheFieldAndType) {
  auto doc = json::parse(R"({"id": 5, "name": "x"})");
  ASSERT_TRUE(doc);
  const auto& o = doc->get_object();
  auto id = json::get_string(o, "id");
  ASSERT_FALSE(id);
  EXPECT_EQ(id.error().message, "field 'id' must be a string, not a number");
  EXPECT_EQ(*json::get_string(o, "name"), "x");
  EXPECT_EQ(json::get_string(o, "missing").error().message, "field 'missing' is required");
  EXPECT_FALSE(json::get_optional_string(o, "missing")->has_value());
}

TEST(Json, CheckKeysRefusesUnknownFields) {
  auto doc = json::parse(R"({"id": "a", "nmae": "x"})");
  auto r = json::check_keys(doc->get_object(), {"id", "name"}, "the world");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "unknown field 'nmae' in the world; allowed fields: id, name");
  EXPECT_TRUE(json::check_keys(doc->get_object(), {"id", "nmae"}, "x"));
}

TEST(Json, AsObjectRefusesOtherKinds) {
  auto arr = json::parse("[1,2]");
  auto r = json::as_object(*arr, "the request body");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "the request body must be a JSON object, not an array");
}

}  // namespace
}  // namespace qmtl

namespace qmtl {
namespace {

TEST(JsonDump, NumbersAreShortAndNonFiniteIsNull) {
  boost::json::object o{{"a", 0.08},
                        {"b", 2.1},
                        {"c", 40.0},
                        {"d", int64_t{7}},
                        {"e", std::numeric_limits<double>::quiet_NaN()},
                        {"f", "x\"y"},
                        {"g", boost::json::array{1.5, nullptr, true}}};
  EXPECT_EQ(json::dump(o),
            R"({"a":0.08,"b":2.1,"c":40,"d":7,"e":null,"f":"x\"y","g":[1.5,null,true]})");
  auto back = json::parse(json::dump(o));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->at("a").as_double(), 0.08);
}

}  // namespace
}  // namespace qmtl

#include "qmtl/core/file.h"
#include "tests/support/temp_dir.h"

namespace qmtl {
namespace {

TEST(ReadFile, ReturnsBytesOrNamesWhatAndWhy) {
  testing::TempDir dir;
  std::ofstream(dir.file("a.txt"), std::ios::binary) << std::string("x\0y", 3);
  EXPECT_EQ(*read_file(dir.file("a.txt")), std::string("x\0y", 3));
  auto missing = read_file(dir.file("absent.yml"), "policy file");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(missing.error().message,
            "cannot open policy file '" + dir.file("absent.yml") + "': No such file or directory");
}

// Memory never grows past the limit, whatever is named: a device that never
// ends, a file larger than the limit, a pipe that has no size to check first.
TEST(ReadFile, RefusesDevicesDirectoriesAndWhatIsTooLarge) {
  testing::TempDir dir;
  auto zero = read_file("/dev/zero", "policy file");
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(zero.error().message, "policy file '/dev/zero' is a device, not a file");
  auto folder = read_file(dir.path(), "bar file");
  ASSERT_FALSE(folder);
  EXPECT_NE(folder.error().message.find("is a directory, not a file"), std::string::npos);

  std::ofstream(dir.file("big.csv"), std::ios::binary) << std::string((2 << 20) + 1, 'x');
  auto big = read_file(dir.file("big.csv"), "bar file", size_t{2} << 20);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().message, "bar file '" + dir.file("big.csv") +
                                     "' is larger than 2 MiB, the most qmtl reads of it");
  EXPECT_EQ(read_file(dir.file("big.csv"), "bar file", size_t{3} << 20)->size(), (2u << 20) + 1);

  // The writer finds the pipe closed when read_file gives up: EPIPE, not a signal.
  const auto old_handler = std::signal(SIGPIPE, SIG_IGN);
  const std::string fifo = dir.file("pipe");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::thread writer([&] {
    std::ofstream w(fifo, std::ios::binary);
    const std::string chunk(1 << 16, 'y');
    for (int i = 0; i < 64 && w; ++i) w << chunk;  // 4 MiB, or until the reader goes
  });
  auto piped = read_file(fifo, "policy file", size_t{1} << 20);
  ASSERT_FALSE(piped);
  EXPECT_NE(piped.error().message.find("is larger than 1 MiB"), std::string::npos);
  writer.join();
  std::signal(SIGPIPE, old_handler);
}

}  // namespace
}  // namespace qmtl
