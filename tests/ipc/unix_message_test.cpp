// Unix-socket messages with descriptor passing (ipc/unix_message.h): what a receiver did
// not ask for is closed, truncation shows, a closed peer reads as 0 bytes.
#include "ipc/unix_message.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

namespace rplayer {
namespace {

int open_fd_count() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

struct Pair {
  Pair() { EXPECT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fd), 0); }
  ~Pair() {
    for (int f : fd)
      if (f >= 0) close(f);
  }
  int fd[2] = {-1, -1};
};

TEST(UnixMessage, BytesAndDescriptorsArriveCloseOnExec) {
  Pair p;
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  const char hello[] = "hello";
  ASSERT_TRUE(ipc::send_message(p.fd[0], hello, sizeof hello, {pipe_fds, 2}));
  char buf[64] = {};
  int fds[2] = {-1, -1};
  const ipc::Received r = ipc::recv_message(p.fd[1], buf, sizeof buf, fds, 2);
  ASSERT_EQ(r.bytes, ssize_t(sizeof hello));
  EXPECT_STREQ(buf, "hello");
  ASSERT_EQ(r.nfds, 2);
  EXPECT_FALSE(r.dropped_fds);
  EXPECT_TRUE(fcntl(fds[0], F_GETFD) & FD_CLOEXEC);
  // The received write end is the pipe's: a byte written through it reads at the other.
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  char c = 0;
  ASSERT_EQ(read(pipe_fds[0], &c, 1), 1);
  EXPECT_EQ(c, 'x');
  for (int f : {fds[0], fds[1], pipe_fds[0], pipe_fds[1]}) close(f);
}

TEST(UnixMessage, DescriptorsNobodyAskedForAreClosed) {
  Pair p;
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  const int before = open_fd_count();
  ASSERT_TRUE(ipc::send_message(p.fd[0], "m", 1, {pipe_fds, 2}));
  char buf[8];
  int fds[1] = {-1};
  const ipc::Received r = ipc::recv_message(p.fd[1], buf, sizeof buf, fds, 1);
  EXPECT_EQ(r.bytes, 1);
  EXPECT_EQ(r.nfds, 1);
  EXPECT_TRUE(r.dropped_fds);
  close(fds[0]);
  EXPECT_EQ(open_fd_count(), before) << "the second descriptor leaked";
  // No room at all: every one is closed.
  ASSERT_TRUE(ipc::send_message(p.fd[0], "m", 1, {pipe_fds, 2}));
  const ipc::Received none = ipc::recv_message(p.fd[1], buf, sizeof buf);
  EXPECT_EQ(none.nfds, 0);
  EXPECT_TRUE(none.dropped_fds);
  EXPECT_EQ(open_fd_count(), before);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
}

TEST(UnixMessage, GatheredPartsAndTruncationShow) {
  Pair p;
  const iovec parts[2] = {{const_cast<char*>("head"), 4}, {const_cast<char*>("body"), 4}};
  ASSERT_TRUE(ipc::send_message(p.fd[0], parts));
  char buf[5] = {};
  const ipc::Received r = ipc::recv_message(p.fd[1], buf, 4);
  EXPECT_EQ(std::string(buf, 4), "head");
  EXPECT_TRUE(r.flags & MSG_TRUNC) << "a message bigger than the buffer says so";
}

TEST(UnixMessage, TooManyDescriptorsAreRefusedAtTheSender) {
  Pair p;
  std::vector<int> many(ipc::kMaxFds + 1, 0);  // stdin, repeatedly
  EXPECT_FALSE(ipc::send_message(p.fd[0], "m", 1, many));
}

TEST(UnixMessage, APeerThatClosedReadsAsZeroAndASendFailsWithoutASignal) {
  Pair p;
  close(p.fd[0]);
  p.fd[0] = -1;
  char buf[4];
  EXPECT_EQ(ipc::recv_message(p.fd[1], buf, sizeof buf).bytes, 0);
  Pair q;
  close(q.fd[1]);
  q.fd[1] = -1;
  EXPECT_FALSE(ipc::send_message(q.fd[0], "m", 1));  // EPIPE, no SIGPIPE
}

}  // namespace
}  // namespace rplayer
