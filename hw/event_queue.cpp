#include "hw/event_queue.h"

namespace rplayer::hw {

EventQueue::EventQueue() : thread_([this] { run(); }) {}

EventQueue::~EventQueue() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void EventQueue::schedule(Clock::time_point when, std::function<void()> fn) {
  {
    std::lock_guard lk(mu_);
    events_.emplace(std::make_pair(when, seq_++), std::move(fn));
  }
  cv_.notify_all();
}

void EventQueue::cancel_all() {
  std::lock_guard lk(mu_);
  events_.clear();
  cv_.notify_all();
}

void EventQueue::drain() {
  std::unique_lock lk(mu_);
  cv_.wait(lk, [&] { return stop_ || (events_.empty() && !running_event_); });
}

void EventQueue::run() {
  std::unique_lock lk(mu_);
  while (!stop_) {
    if (events_.empty()) {
      cv_.wait(lk);
      continue;
    }
    auto it = events_.begin();
    const Clock::time_point due = it->first.first;  // copy: cancel_all() may free the node
    if (Clock::now() < due) {
      cv_.wait_until(lk, due);
      continue;
    }
    std::function<void()> fn = std::move(it->second);
    events_.erase(it);
    running_event_ = true;
    lk.unlock();
    fn();
    lk.lock();
    running_event_ = false;
    cv_.notify_all();
  }
}

}  // namespace rplayer::hw
