// Byte-level helpers of the binary audit record (audit/audit_record.cc):
// little-endian fixed-width numbers, LEB128 varints, length-prefixed strings,
// and sparse float rows (a bit per value, then the nonzero values). Internal to
// audit/.
#pragma once

#include <cstdint>
#include <cmath>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace affinity::audit_internal {

class Encoder {
 public:
  explicit Encoder(std::string* out) : out_(out) {}
  void U8(uint8_t v) { out_->push_back(char(v)); }
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      out_->push_back(char(v | 0x80));
      v >>= 7;
    }
    out_->push_back(char(v));
  }
  void F32(float v) { Raw(&v, 4); }
  void F64(double v) { Raw(&v, 8); }
  void Str(std::string_view s) {
    Varint(s.size());
    out_->append(s);
  }
  // n values: ceil(n / 8) bytes of "is nonzero" bits, then the nonzero values.
  void SparseFloats(const float* v, size_t n) {
    const size_t mask_at = out_->size();
    out_->append((n + 7) / 8, '\0');
    for (size_t i = 0; i < n; ++i)
      if (v[i] != 0.f || std::signbit(v[i])) {
        (*out_)[mask_at + i / 8] = char((*out_)[mask_at + i / 8] | (1 << (i % 8)));
        F32(v[i]);
      }
  }

 private:
  void Raw(const void* p, size_t n) { out_->append(static_cast<const char*>(p), n); }
  std::string* out_;
};

// Reads what Encoder wrote; every read fails (and the decoder stays failed)
// past the end of the input.
class Decoder {
 public:
  explicit Decoder(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool done() const { return ok_ && pos_ == in_.size(); }
  size_t Remaining() const { return in_.size() - pos_; }
  uint8_t U8() {
    uint8_t v = 0;
    Raw(&v, 1);
    return v;
  }
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && ok_; shift += 7) {
      const uint8_t b = U8();
      v |= uint64_t(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    ok_ = false;
    return 0;
  }
  float F32() {
    float v = 0;
    Raw(&v, 4);
    return v;
  }
  double F64() {
    double v = 0;
    Raw(&v, 8);
    return v;
  }
  std::string_view Str() {
    const uint64_t n = Varint();
    if (!ok_ || n > in_.size() - pos_) {
      ok_ = false;
      return {};
    }
    std::string_view s = in_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::vector<float> SparseFloats(size_t n) {
    std::vector<float> v(n, 0.f);
    const size_t mask_bytes = (n + 7) / 8;
    if (!ok_ || mask_bytes > in_.size() - pos_) {
      ok_ = false;
      return v;
    }
    const std::string_view mask = in_.substr(pos_, mask_bytes);
    pos_ += mask_bytes;
    for (size_t i = 0; i < n && ok_; ++i)
      if ((uint8_t(mask[i / 8]) >> (i % 8)) & 1) v[i] = F32();
    return v;
  }

 private:
  void Raw(void* p, size_t n) {
    if (!ok_ || n > in_.size() - pos_) {
      ok_ = false;
      std::memset(p, 0, n);
      return;
    }
    std::memcpy(p, in_.data() + pos_, n);
    pos_ += n;
  }
  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace affinity::audit_internal
