// Length-prefixed frames over sockets: every FrameResult, partial reads and writes, EINTR,
// timeouts, a vanished peer.
#include "link/frame_io.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace rplayer::link {
namespace {

using Bytes = std::vector<uint8_t>;
using Clock = std::chrono::steady_clock;

struct SocketPair {
  int a = -1;
  int b = -1;
  SocketPair() {
    int fds[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    a = fds[0];
    b = fds[1];
  }
  ~SocketPair() {
    close_a();
    close_b();
  }
  void close_a() {
    if (a >= 0) close(a);
    a = -1;
  }
  void close_b() {
    if (b >= 0) close(b);
    b = -1;
  }
};

void write_raw(int fd, const Bytes& b) {
  ASSERT_EQ(write(fd, b.data(), b.size()), static_cast<ssize_t>(b.size()));
}

Bytes prefix(uint32_t len) {
  return {static_cast<uint8_t>(len), static_cast<uint8_t>(len >> 8),
          static_cast<uint8_t>(len >> 16), static_cast<uint8_t>(len >> 24)};
}

Bytes random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

TEST(FrameIo, RoundTripOfSmallAndEmptyFrames) {
  SocketPair p;
  std::string err;
  const Bytes msg = {1, 2, 3, 4, 5};
  ASSERT_TRUE(write_frame(p.a, msg, &err)) << err;
  ASSERT_TRUE(write_frame(p.a, Bytes{}, &err)) << err;
  ASSERT_TRUE(write_frame(p.a, Bytes{9}, &err)) << err;
  Bytes out = {7, 7};
  EXPECT_EQ(read_frame(p.b, 100, 1000, &out), FrameResult::Ok);
  EXPECT_EQ(out, msg);
  EXPECT_EQ(read_frame(p.b, 100, 1000, &out), FrameResult::Ok);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(read_frame(p.b, 1, 1000, &out), FrameResult::Ok);  // exactly max_bytes
  EXPECT_EQ(out, Bytes{9});
}

TEST(FrameIo, PrefixIsU32LittleEndian) {
  SocketPair p;
  const Bytes msg(0x0201 + 3, 0xab);  // 515 bytes: 03 02 00 00
  ASSERT_TRUE(write_frame(p.a, msg, nullptr));
  uint8_t head[4];
  ASSERT_EQ(read(p.b, head, 4), 4);
  EXPECT_EQ(head[0], 0x04);
  EXPECT_EQ(head[1], 0x02);
  EXPECT_EQ(head[2], 0x00);
  EXPECT_EQ(head[3], 0x00);
}

TEST(FrameIo, LargeFramesThroughAWriterThread) {
  // Far more than the socket buffer: the writer blocks in partial writes, the reader
  // assembles from partial reads.
  SocketPair p;
  const Bytes big = random_bytes(24u << 20, 3);
  const Bytes small = random_bytes(1000, 4);
  std::atomic<bool> ok{false};
  std::thread writer([&] {
    std::string err;
    ok =
        write_frame(p.a, big, &err) && write_frame(p.a, small, &err) && write_frame(p.a, big, &err);
  });
  Bytes out;
  EXPECT_EQ(read_frame(p.b, big.size(), 20000, &out), FrameResult::Ok);
  EXPECT_TRUE(out == big);
  EXPECT_EQ(read_frame(p.b, big.size(), 20000, &out), FrameResult::Ok);
  EXPECT_TRUE(out == small);
  EXPECT_EQ(read_frame(p.b, big.size(), 20000, &out), FrameResult::Ok);
  EXPECT_TRUE(out == big);
  writer.join();
  EXPECT_TRUE(ok);
}

TEST(FrameIo, FrameArrivingInDribblesIsReassembled) {
  SocketPair p;
  const Bytes body = random_bytes(300, 5);
  Bytes wire(4 + body.size());
  std::copy(body.begin(), body.end(), wire.begin() + 4);
  wire[1] = 300 >> 8;
  wire[0] = 300 & 0xff;
  std::thread writer([&] {
    for (size_t i = 0; i < wire.size();) {
      const size_t n = std::min<size_t>(i < 8 ? 1 : 37, wire.size() - i);  // split the prefix
      ASSERT_EQ(write(p.a, wire.data() + i, n), static_cast<ssize_t>(n));
      i += n;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  Bytes out;
  EXPECT_EQ(read_frame(p.b, 1000, 10000, &out), FrameResult::Ok);
  EXPECT_EQ(out, body);
  writer.join();
}

TEST(FrameIo, CleanEndBetweenFramesIsClosed) {
  SocketPair p;
  ASSERT_TRUE(write_frame(p.a, Bytes{1, 2}, nullptr));
  p.close_a();
  Bytes out;
  EXPECT_EQ(read_frame(p.b, 100, 1000, &out), FrameResult::Ok);
  EXPECT_EQ(read_frame(p.b, 100, 1000, &out), FrameResult::Closed);
  EXPECT_TRUE(out.empty());
}

TEST(FrameIo, NothingArrivingIsATimeout) {
  SocketPair p;
  Bytes out;
  const auto t0 = Clock::now();
  EXPECT_EQ(read_frame(p.b, 100, 150, &out), FrameResult::Timeout);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  EXPECT_GE(ms, 140);
  EXPECT_LT(ms, 5000);
  EXPECT_EQ(read_frame(p.b, 100, 0, &out), FrameResult::Timeout);  // 0: no wait at all
  // Nothing was consumed: a frame sent now is read whole.
  ASSERT_TRUE(write_frame(p.a, Bytes{4, 2}, nullptr));
  EXPECT_EQ(read_frame(p.b, 100, 0, &out), FrameResult::Ok);
  EXPECT_EQ(out, (Bytes{4, 2}));
}

TEST(FrameIo, StalledFrameIsATimeoutWithinTheBound) {
  // The timeout bounds the whole frame, not each wait: a peer sending a byte every 20 ms
  // cannot hold the reader beyond it.
  SocketPair p;
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    const Bytes head = prefix(1000);
    (void)!write(p.a, head.data(), head.size());
    while (!stop) {
      const uint8_t x = 0;
      (void)!write(p.a, &x, 1);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  Bytes out;
  const auto t0 = Clock::now();
  EXPECT_EQ(read_frame(p.b, 1000, 200, &out), FrameResult::Timeout);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  stop = true;
  writer.join();
  EXPECT_GE(ms, 190);
  EXPECT_LT(ms, 2000);
}

TEST(FrameIo, LengthAboveTheLimitIsTooLarge) {
  SocketPair p;
  write_raw(p.a, prefix(101));
  Bytes out;
  EXPECT_EQ(read_frame(p.b, 100, 1000, &out), FrameResult::TooLarge);
  EXPECT_TRUE(out.empty());
  // The largest length the prefix can hold: refused without allocating or waiting for it.
  SocketPair q;
  write_raw(q.a, prefix(0xffffffffu));
  EXPECT_EQ(read_frame(q.b, 1u << 20, 1000, &out), FrameResult::TooLarge);
}

TEST(FrameIo, EndInsideAFrameIsTruncated) {
  Bytes out;
  {
    SocketPair p;  // inside the prefix
    write_raw(p.a, Bytes{5, 0});
    p.close_a();
    EXPECT_EQ(read_frame(p.b, 100, 1000, &out), FrameResult::Truncated);
  }
  {
    SocketPair p;  // inside the body
    Bytes wire = prefix(10);
    wire.insert(wire.end(), {1, 2, 3});
    write_raw(p.a, wire);
    p.close_a();
    EXPECT_EQ(read_frame(p.b, 100, 1000, &out), FrameResult::Truncated);
  }
  {
    // A large announced frame that never comes: the buffer holds what arrived, not the
    // announced size.
    SocketPair p;
    Bytes wire = prefix(64u << 20);
    wire.insert(wire.end(), 100, 7);
    write_raw(p.a, wire);
    p.close_a();
    EXPECT_EQ(read_frame(p.b, 64u << 20, 1000, &out), FrameResult::Truncated);
    EXPECT_EQ(out.size(), 100u);
    EXPECT_LE(out.capacity(), 2u << 20);
  }
}

TEST(FrameIo, BadDescriptorIsAnIoError) {
  Bytes out;
  EXPECT_EQ(read_frame(-1, 100, 100, &out), FrameResult::IoError);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  close(fds[0]);
  close(fds[1]);
  EXPECT_EQ(read_frame(fds[0], 100, 100, &out), FrameResult::IoError);  // closed: POLLNVAL
  std::string err;
  EXPECT_FALSE(write_frame(fds[1], Bytes{1}, &err));
  EXPECT_FALSE(err.empty());
  EXPECT_FALSE(write_frame(-1, Bytes{1}, &err));
  SocketPair p;
  EXPECT_EQ(read_frame(p.b, 100, 100, nullptr), FrameResult::IoError);
}

TEST(FrameIo, WritingToAVanishedPeerFailsWithoutSigpipe) {
  SocketPair p;
  p.close_b();
  std::string err;
  // SIGPIPE's default action would kill the test process.
  EXPECT_FALSE(write_frame(p.a, Bytes(1000, 1), &err));
  EXPECT_NE(err.find("write_frame"), std::string::npos) << err;
}

TEST(FrameIo, NonBlockingWriterWaitsUpToItsTimeout) {
  SocketPair p;
  ASSERT_EQ(fcntl(p.a, F_SETFL, fcntl(p.a, F_GETFL) | O_NONBLOCK), 0);
  std::string err;
  // Nobody reads: the socket buffer fills, the writer waits in poll() and gives up.
  const auto t0 = Clock::now();
  EXPECT_FALSE(write_frame(p.a, Bytes(8u << 20, 1), &err, 150));
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  EXPECT_NE(err.find("timed out"), std::string::npos) << err;
  EXPECT_GE(ms, 140);
  EXPECT_LT(ms, 5000);

  // With a reader, the same non-blocking writer completes through EAGAIN and poll().
  SocketPair q;
  ASSERT_EQ(fcntl(q.a, F_SETFL, fcntl(q.a, F_GETFL) | O_NONBLOCK), 0);
  const Bytes big = random_bytes(8u << 20, 9);
  Bytes out;
  std::thread reader([&] { EXPECT_EQ(read_frame(q.b, big.size(), 20000, &out), FrameResult::Ok); });
  EXPECT_TRUE(write_frame(q.a, big, &err, 20000)) << err;
  reader.join();
  EXPECT_TRUE(out == big);
}

std::atomic<int> g_signals{0};
void on_signal(int) { g_signals.fetch_add(1); }

TEST(FrameIo, InterruptedWaitsAreResumed) {
  // Signals without SA_RESTART interrupt poll() and read() with EINTR; the read goes on
  // and the frame arrives whole.
  struct sigaction sa {};
  struct sigaction old {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  ASSERT_EQ(sigaction(SIGUSR1, &sa, &old), 0);
  g_signals = 0;
  SocketPair p;
  const pthread_t reader = pthread_self();
  const Bytes msg = random_bytes(5000, 11);
  std::thread helper([&] {
    for (int i = 0; i < 10; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      pthread_kill(reader, SIGUSR1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    write_frame(p.a, msg, nullptr);
  });
  Bytes out;
  const FrameResult r = read_frame(p.b, 10000, 10000, &out);
  helper.join();
  sigaction(SIGUSR1, &old, nullptr);
  EXPECT_EQ(r, FrameResult::Ok);
  EXPECT_EQ(out, msg);
  EXPECT_GE(g_signals.load(), 1);
}

TEST(FrameIo, EveryResultHasItsOwnName) {
  EXPECT_STREQ(frame_result_name(FrameResult::Ok), "ok");
  EXPECT_STREQ(frame_result_name(FrameResult::Closed), "closed");
  EXPECT_STREQ(frame_result_name(FrameResult::Timeout), "timeout");
  EXPECT_STREQ(frame_result_name(FrameResult::TooLarge), "too-large");
  EXPECT_STREQ(frame_result_name(FrameResult::Truncated), "truncated");
  EXPECT_STREQ(frame_result_name(FrameResult::IoError), "io-error");
}

}  // namespace
}  // namespace rplayer::link
