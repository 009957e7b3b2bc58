// A read-only array of plain values that either owns its elements (a vector
// handed over by whoever computed them) or views them where they already are,
// in a file mapped into memory (base/section_file.h), kept alive by a shared
// owner. Snapshots keep their indexes this way, so that a server loading one
// maps arrays.bin instead of copying it, and one built in memory serves the
// same way.
// Copies share the elements (they are never written). To change an array,
// build a vector and assign it.
// Thread safety: immutable; safe to read from any number of threads.
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <type_traits>
#include <vector>

namespace affinity {

template <typename T>
class FrozenArray {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  using value_type = T;
  using const_iterator = const T*;
  using iterator = const T*;

  FrozenArray() = default;
  FrozenArray(std::vector<T> v) { *this = std::move(v); }  // NOLINT: a vector is a frozen array's natural source
  FrozenArray& operator=(std::vector<T> v) {
    if (v.empty()) {
      *this = FrozenArray();
      return *this;
    }
    auto owned = std::make_shared<const std::vector<T>>(std::move(v));
    data_ = owned->data();
    size_ = owned->size();
    owner_ = std::move(owned);
    return *this;
  }
  // Views n elements at data, which `owner` keeps alive.
  static FrozenArray View(std::shared_ptr<const void> owner, const T* data, size_t n) {
    FrozenArray a;
    if (n == 0) return a;
    a.owner_ = std::move(owner);
    a.data_ = data;
    a.size_ = n;
    return a;
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const T* data() const { return data_; }
  const T& operator[](size_t i) const { return data_[i]; }
  const T& back() const { return data_[size_ - 1]; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }

  friend bool operator==(const FrozenArray& a, const FrozenArray& b) {
    return a.size_ == b.size_ && std::equal(a.begin(), a.end(), b.begin());
  }

 private:
  const T* data_ = nullptr;
  size_t size_ = 0;
  std::shared_ptr<const void> owner_;
};

}  // namespace affinity
