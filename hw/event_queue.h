// Timed device events: the modeled hardware's notion of "this finishes later".
// Busy bits, power transitions and completion interrupts are scheduled here and run
// on the event thread when their time comes, asynchronously to the CPU.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

namespace rplayer::hw {

class EventQueue {
 public:
  using Clock = std::chrono::steady_clock;
  EventQueue();
  ~EventQueue();
  EventQueue(const EventQueue&) = delete;
  EventQueue& operator=(const EventQueue&) = delete;

  // Runs `fn` on the event thread at `when` (events with equal times run in
  // scheduling order). Callbacks may schedule further events.
  void schedule(Clock::time_point when, std::function<void()> fn);
  void schedule_after(std::chrono::nanoseconds delay, std::function<void()> fn) {
    schedule(Clock::now() + delay, std::move(fn));
  }
  // Drops every pending event (device reset): events already running finish.
  void cancel_all();
  // Blocks until no event is pending or running (for tests and shutdown).
  void drain();

 private:
  void run();
  std::mutex mu_;
  std::condition_variable cv_;
  std::multimap<std::pair<Clock::time_point, uint64_t>, std::function<void()>> events_;
  uint64_t seq_ = 0;
  bool running_event_ = false;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace rplayer::hw
