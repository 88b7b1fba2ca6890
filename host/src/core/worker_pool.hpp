// A pool of threads running posted jobs in FIFO order. A thread stuck in a
// job that cannot be interrupted (a plugin call) can be replaced: it leaves
// the pool when its job returns, and a new thread takes its place at once.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <pthread.h>
#include <thread>

namespace aether {

class WorkerPool {
  struct Worker {
    std::thread thread;
    bool retired = false;  // leaves the pool when its current job returns
    bool exited = false;   // retired and out of its loop: ready to join
    bool joining = false;  // stop() is joining it
  };

 public:
  // The pool thread that runs the caller ({nullptr, nullptr} off the pools).
  struct Handle {
    WorkerPool* pool = nullptr;
    void* worker = nullptr;
  };

  // `name` (at most 15 characters) names the threads, as top -H and
  // debuggers show them.
  explicit WorkerPool(uint32_t threads, const char* name = "aether-pool") : name_(name) {
    std::lock_guard lock(mu_);
    for (uint32_t i = 0; i < threads; ++i) spawn();
  }
  ~WorkerPool() { stop(); }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void post(std::function<void()> job) {
    {
      std::lock_guard lock(mu_);
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }

  static Handle current() { return current_slot(); }

  // The thread `worker` (from current()) stops taking jobs once its current
  // job returns, then exits; a new thread starts now in its place, so the
  // pool keeps its capacity. Thread-safe; call from any thread.
  void replace(void* worker) {
    std::lock_guard lock(mu_);
    for (auto it = workers_.begin(); it != workers_.end();) {
      if (it->exited && !it->joining) {
        it->thread.join();  // out of its loop: returns at once
        it = workers_.erase(it);
      } else {
        ++it;
      }
    }
    static_cast<Worker*>(worker)->retired = true;
    spawn();
  }

  // Runs the jobs already posted, then joins the threads (also replaced ones,
  // which are waited for until their job returns). Idempotent.
  void stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (;;) {
      Worker* w = nullptr;
      {
        std::lock_guard lock(mu_);
        for (auto& x : workers_) {
          if (!x.joining) {
            w = &x;
            break;
          }
        }
        if (w == nullptr) return;
        w->joining = true;
      }
      w->thread.join();
      std::lock_guard lock(mu_);
      workers_.remove_if([w](const Worker& x) { return &x == w; });
    }
  }

  // Threads taking jobs (replaced ones not counted).
  size_t size() const {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (const auto& w : workers_) n += w.retired ? 0 : 1;
    return n;
  }

 private:
  static Handle& current_slot() {
    thread_local Handle h;
    return h;
  }

  // REQUIRES: mu_ held.
  void spawn() {
    Worker& w = workers_.emplace_back();
    w.thread = std::thread([this, &w] {
      pthread_setname_np(pthread_self(), name_);
      current_slot() = Handle{this, &w};
      run(w);
    });
  }

  void run(Worker& w) {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      auto job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      job();
      job = nullptr;
      lock.lock();
      if (w.retired) {
        w.exited = true;
        return;
      }
    }
  }

  const char* name_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::list<Worker> workers_;
};

}  // namespace aether
