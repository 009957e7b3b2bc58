// Data-parallel loops for the batch pipeline and evaluation.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <thread>
#include <vector>

namespace affinity {

inline int DefaultThreads() {
  return std::max(1u, std::thread::hardware_concurrency());
}

// Calls fn(i, thread_index) for i in [0, n) on `threads` threads, in dynamic chunks.
template <typename Fn>
void ParallelFor(size_t n, int threads, Fn&& fn, size_t chunk = 256) {
  if (threads <= 1 || n <= chunk) {
    for (size_t i = 0; i < n; ++i) fn(i, 0);
    return;
  }
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      while (true) {
        size_t begin = next.fetch_add(chunk);
        if (begin >= n) return;
        size_t end = std::min(n, begin + chunk);
        for (size_t i = begin; i < end; ++i) fn(i, t);
      }
    });
  }
  for (auto& th : pool) th.join();
}

}  // namespace affinity
