#include "hw/event_queue.h"

#include <sys/prctl.h>

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

namespace {
// Modeled latencies are microseconds (a cache flush, an interrupt); a sleeping host
// thread wakes 50-100 us late (timer slack, scheduler). Waits shorter than this are spun
// so that the model's timing is what the model says, not the host's wake-up latency.
constexpr auto kSpinBelow = std::chrono::microseconds(40);
}  // namespace

void EventQueue::run() {
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);  // longer waits: wake on time, not 50 us late
  std::unique_lock lk(mu_);
  while (!stop_) {
    if (events_.empty()) {
      cv_.wait(lk);
      continue;
    }
    auto it = events_.begin();
    const Clock::time_point due = it->first.first;  // copy: cancel_all() may free the node
    const Clock::time_point now = Clock::now();
    if (now < due) {
      if (due - now > kSpinBelow) {
        cv_.wait_until(lk, due - kSpinBelow / 2);
      } else {
        // Bounded by `due` (at most kSpinBelow); an earlier event scheduled meanwhile
        // waits for this spin, which is within the model's jitter.
        lk.unlock();
        while (Clock::now() < due) {
        }
        lk.lock();
      }
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
