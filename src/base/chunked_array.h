// An append-friendly array whose elements never move: readers index it without
// locks while one writer at a time grows it. Elements are default-constructed in
// chunks of 2^kChunkBits. Intended for atomics and atomic shared_ptrs indexed by
// dense id.
// Thread safety: Find() is safe concurrently with Ensure(); Ensure() callers
// serialise among themselves through the internal mutex.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>

namespace affinity {

template <typename T, size_t kChunkBits = 12>
class ChunkedArray {
 public:
  static constexpr size_t kChunk = size_t(1) << kChunkBits;
  static constexpr size_t kMaxChunks = (size_t(1) << 30) >> kChunkBits;

  ChunkedArray() : chunks_(new std::atomic<T*>[kMaxChunks]) {
    for (size_t i = 0; i < kMaxChunks; ++i) chunks_[i].store(nullptr, std::memory_order_relaxed);
  }
  ~ChunkedArray() {
    for (size_t i = 0; i < kMaxChunks; ++i) delete[] chunks_[i].load();
  }
  ChunkedArray(const ChunkedArray&) = delete;
  ChunkedArray& operator=(const ChunkedArray&) = delete;

  // Returns the element or nullptr when its chunk was never allocated.
  T* Find(size_t i) const {
    if ((i >> kChunkBits) >= kMaxChunks) return nullptr;
    T* chunk = chunks_[i >> kChunkBits].load(std::memory_order_acquire);
    return chunk ? &chunk[i & (kChunk - 1)] : nullptr;
  }

  // One past the highest index whose chunk is allocated (elements below it
  // may still sit in unallocated chunks: Find() says nullptr for those).
  size_t Extent() const { return extent_chunks_.load(std::memory_order_acquire) << kChunkBits; }

  // Returns the element, allocating its chunk when needed.
  T& Ensure(size_t i) {
    if (T* p = Find(i)) return *p;
    std::lock_guard<std::mutex> lock(mu_);
    auto& slot = chunks_[i >> kChunkBits];
    T* chunk = slot.load(std::memory_order_acquire);
    if (!chunk) {
      chunk = new T[kChunk]();
      slot.store(chunk, std::memory_order_release);
      const size_t chunks = (i >> kChunkBits) + 1;
      if (chunks > extent_chunks_.load(std::memory_order_relaxed)) extent_chunks_.store(chunks, std::memory_order_release);
    }
    return chunk[i & (kChunk - 1)];
  }

 private:
  std::unique_ptr<std::atomic<T*>[]> chunks_;
  std::atomic<size_t> extent_chunks_{0};
  std::mutex mu_;
};

}  // namespace affinity
