#include "qmtl/core/json.h"

#include <fmt/format.h>

#include <cmath>

namespace qmtl::json {

std::string_view kind_name(const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::null:
      return "null";
    case boost::json::kind::bool_:
      return "a boolean";
    case boost::json::kind::int64:
    case boost::json::kind::uint64:
    case boost::json::kind::double_:
      return "a number";
    case boost::json::kind::string:
      return "a string";
    case boost::json::kind::array:
      return "an array";
    case boost::json::kind::object:
      return "an object";
  }
  return "a value";
}

Result<boost::json::value> parse(std::string_view text) {
  boost::json::stream_parser p;
  boost::system::error_code ec;
  const size_t n = p.write_some(text.data(), text.size(), ec);
  if (!ec && n < text.size()) {
    return make_error(
        ErrorCode::kInvalidArgument,
        fmt::format("malformed JSON: unexpected text after the document at byte {}", n + 1));
  }
  if (!ec) p.finish(ec);
  if (ec) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("malformed JSON at byte {}: {}", n + 1, ec.message()));
  }
  return p.release();
}

Result<const boost::json::object*> as_object(const boost::json::value& v, std::string_view what) {
  if (!v.is_object()) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("{} must be a JSON object, not {}", what, kind_name(v)));
  }
  return &v.get_object();
}

Result<void> check_keys(const boost::json::object& obj,
                        std::initializer_list<std::string_view> allowed, std::string_view what) {
  for (const auto& kv : obj) {
    bool ok = false;
    for (std::string_view a : allowed) ok = ok || kv.key() == a;
    if (!ok) {
      return make_error(ErrorCode::kInvalidArgument,
                        fmt::format("unknown field '{}' in {}; allowed fields: {}",
                                    std::string_view(kv.key()), what, fmt::join(allowed, ", ")));
    }
  }
  return {};
}

Result<std::optional<std::string>> get_optional_string(const boost::json::object& obj,
                                                       std::string_view key) {
  const auto* v = obj.if_contains(key);
  if (v == nullptr) return std::optional<std::string>{};
  if (!v->is_string()) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("field '{}' must be a string, not {}", key, kind_name(*v)));
  }
  return std::optional<std::string>(std::string(v->get_string()));
}

Result<std::string> get_string(const boost::json::object& obj, std::string_view key) {
  auto r = get_optional_string(obj, key);
  if (!r) return propagate(r);
  if (!r->has_value()) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("field '{}' is required", key));
  }
  return std::move(**r);
}

Result<std::optional<bool>> get_optional_bool(const boost::json::object& obj,
                                              std::string_view key) {
  const auto* v = obj.if_contains(key);
  if (v == nullptr) return std::optional<bool>{};
  if (!v->is_bool()) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("field '{}' must be true or false, not {}", key, kind_name(*v)));
  }
  return std::optional<bool>(v->get_bool());
}

Result<bool> get_bool(const boost::json::object& obj, std::string_view key) {
  auto r = get_optional_bool(obj, key);
  if (!r) return propagate(r);
  if (!r->has_value()) {
    return make_error(ErrorCode::kInvalidArgument, fmt::format("field '{}' is required", key));
  }
  return **r;
}

Result<std::optional<int64_t>> get_optional_int(const boost::json::object& obj,
                                                std::string_view key) {
  const auto* v = obj.if_contains(key);
  if (v == nullptr) return std::optional<int64_t>{};
  if (v->is_int64()) return std::optional<int64_t>(v->get_int64());
  if (v->is_double()) {
    const double d = v->get_double();
    if (std::trunc(d) == d && std::fabs(d) < 9e15) {
      return std::optional<int64_t>(static_cast<int64_t>(d));
    }
  }
  return make_error(ErrorCode::kInvalidArgument,
                    fmt::format("field '{}' must be a whole number, not {}", key,
                                v->is_number() ? "a fraction or a huge number" : kind_name(*v)));
}

Result<std::optional<double>> get_optional_number(const boost::json::object& obj,
                                                  std::string_view key) {
  const auto* v = obj.if_contains(key);
  if (v == nullptr) return std::optional<double>{};
  if (!v->is_number()) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("field '{}' must be a number, not {}", key, kind_name(*v)));
  }
  const double d = v->is_double()  ? v->get_double()
                   : v->is_int64() ? static_cast<double>(v->get_int64())
                                   : static_cast<double>(v->get_uint64());
  return std::optional<double>(d);
}

namespace {

// Boost.JSON writes doubles as 2.1E0; people read this output, so numbers use the
// shortest text that round-trips (2.1, 0.05, 40) instead.
void write(const boost::json::value& v, std::string& out) {
  switch (v.kind()) {
    case boost::json::kind::double_: {
      const double d = v.get_double();
      if (std::isfinite(d)) {
        out += fmt::format("{}", d);
      } else {
        out += "null";  // JSON has no NaN or infinity
      }
      return;
    }
    case boost::json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& x : v.get_array()) {
        if (!first) out += ',';
        first = false;
        write(x, out);
      }
      out += ']';
      return;
    }
    case boost::json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& kv : v.get_object()) {
        if (!first) out += ',';
        first = false;
        out += boost::json::serialize(boost::json::string_view(kv.key()));
        out += ':';
        write(kv.value(), out);
      }
      out += '}';
      return;
    }
    default:
      out += boost::json::serialize(v);
  }
}

}  // namespace

std::string dump(const boost::json::value& v) {
  std::string out;
  write(v, out);
  return out;
}

Result<const boost::json::array*> get_optional_array(const boost::json::object& obj,
                                                     std::string_view key) {
  const auto* v = obj.if_contains(key);
  if (v == nullptr) return nullptr;
  if (!v->is_array()) {
    return make_error(ErrorCode::kInvalidArgument,
                      fmt::format("field '{}' must be an array, not {}", key, kind_name(*v)));
  }
  return &v->get_array();
}

}  // namespace qmtl::json
