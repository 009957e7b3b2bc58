// A one-producer, one-consumer pipe of items applied in order on a thread of
// its own: the producer pushes items, which travel in blocks, and a bounded
// number of blocks is in flight, so a producer that runs ahead waits rather
// than buffering without end. The producer may work on each block, in place,
// before it is handed over. Close (or the destructor) applies whatever is
// pending and joins the thread.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace affinity {

template <typename T>
class BlockPipe {
 public:
  // apply is called on the pipe's thread with each block, in push order;
  // prepare (when given) on the producer's, with each block just before it is
  // handed over: work of the producer's own on a whole block, done in place.
  explicit BlockPipe(std::function<void(std::vector<T>&)> apply, size_t block_size = 4096, size_t in_flight = 4,
                     std::function<void(std::vector<T>&)> prepare = {})
      : apply_(std::move(apply)), prepare_(std::move(prepare)), block_size_(block_size), in_flight_(in_flight) {
    block_.reserve(block_size_);
    thread_ = std::thread([this] { Run(); });
  }
  ~BlockPipe() { Close(); }
  BlockPipe(const BlockPipe&) = delete;
  BlockPipe& operator=(const BlockPipe&) = delete;

  void Push(const T& item) {
    block_.push_back(item);
    if (block_.size() >= block_size_) Flush();
  }

  // Returns once every item pushed has been applied. Push no more after it.
  void Close() {
    if (!thread_.joinable()) return;
    Flush();
    {
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
    }
    ready_.notify_one();
    thread_.join();
  }

 private:
  void Flush() {
    if (block_.empty()) return;
    if (prepare_) prepare_(block_);
    std::unique_lock<std::mutex> lock(mu_);
    room_.wait(lock, [&] { return full_.size() < in_flight_; });
    full_.push_back(std::move(block_));
    if (!spare_.empty()) {
      block_ = std::move(spare_.back());
      spare_.pop_back();
    } else {
      block_ = {};
      block_.reserve(block_size_);
    }
    lock.unlock();
    ready_.notify_one();
  }

  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      ready_.wait(lock, [&] { return closed_ || !full_.empty(); });
      if (full_.empty()) return;  // closed, and all applied
      std::vector<T> block = std::move(full_.front());
      full_.pop_front();
      lock.unlock();
      room_.notify_one();
      apply_(block);
      block.clear();
      lock.lock();
      spare_.push_back(std::move(block));
    }
  }

  std::function<void(std::vector<T>&)> apply_, prepare_;
  const size_t block_size_, in_flight_;
  std::vector<T> block_;  // the producer's, being filled
  std::mutex mu_;
  std::condition_variable ready_, room_;
  std::deque<std::vector<T>> full_;   // pushed, not applied yet
  std::vector<std::vector<T>> spare_;  // applied, to be filled again
  bool closed_ = false;
  std::thread thread_;
};

}  // namespace affinity
