// A small streaming JSON writer for responses. It only serialises (parsing is
// simdjson's job) and produces compact, valid UTF-8 JSON with escaped strings.
// Not thread-safe; one writer per response.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace affinity {

class JsonWriter {
 public:
  JsonWriter() { out_.reserve(4096); }

  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  // Writes an object key; the next call writes its value.
  JsonWriter& Key(std::string_view key);
  JsonWriter& String(std::string_view s);
  JsonWriter& Int(int64_t v);
  JsonWriter& Uint(uint64_t v);
  // Non-finite numbers are written as null (JSON has no NaN).
  JsonWriter& Double(double v);
  JsonWriter& Bool(bool v);
  JsonWriter& Null();
  // Inserts an already serialised JSON value verbatim.
  JsonWriter& Raw(std::string_view json);

  const std::string& str() const { return out_; }
  std::string Release() { return std::move(out_); }

  static void AppendEscaped(std::string& out, std::string_view s);

 private:
  void Separate();
  std::string out_;
  std::vector<bool> first_;  // per open container: no element written yet
  bool after_key_ = false;
};

// `{"error":{"code":code,"message":message}}`
std::string JsonError(std::string_view code, std::string_view message);

}  // namespace affinity
