// The secure world's seccomp sandbox: each case forks a child that enters the sandbox and
// then does one thing; allowed work must exit 0, anything else must die by SIGSYS.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tee/core/sandbox.h"
#include "tee/core/smc_server.h"
#include "tee/core/tee_core.h"
#include "tee/teec/tee_client_api.h"
#include "toy_ta.h"

namespace rplayer::tee {
namespace {

constexpr int kSandboxFailed = 100;

#ifdef RPLAYER_SANITIZED
#define SKIP_IF_SANITIZED() GTEST_SKIP() << "sanitizer runtimes make syscalls the sandbox forbids"
#else
#define SKIP_IF_SANITIZED() (void)0
#endif

// Runs body in a sandboxed child; returns its wait status. body returns the exit code.
int run_sandboxed(const std::function<int()>& body) {
  fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    std::string error;
    if (!enter_sandbox(&error)) {
      fprintf(stderr, "enter_sandbox: %s\n", error.c_str());
      _exit(kSandboxFailed);
    }
    _exit(body());
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

::testing::AssertionResult exited_zero(int status) {
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return ::testing::AssertionSuccess();
  if (WIFEXITED(status))
    return ::testing::AssertionFailure() << "exit code " << WEXITSTATUS(status);
  return ::testing::AssertionFailure() << "killed by signal " << WTERMSIG(status);
}

::testing::AssertionResult killed_by_sigsys(int status) {
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS) return ::testing::AssertionSuccess();
  if (WIFEXITED(status))
    return ::testing::AssertionFailure() << "exited with " << WEXITSTATUS(status);
  return ::testing::AssertionFailure() << "killed by signal " << WTERMSIG(status);
}

TEST(Sandbox, AllowedWorkRuns) {
  SKIP_IF_SANITIZED();
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  ASSERT_EQ(write(pipefd[1], "secure", 6), 6);
  int status = run_sandboxed([&]() -> int {
    // Threads (clone with CLONE_THREAD, after clone3 said ENOSYS), locks, malloc in them.
    std::mutex mu;
    std::atomic<long> total{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
      threads.emplace_back([&, i] {
        std::vector<int> v(100000, i);
        std::lock_guard<std::mutex> lock(mu);
        for (int x : v) total += x;
      });
    }
    for (auto& t : threads) t.join();
    if (total != 100000L * (0 + 1 + 2 + 3)) return 1;
    // A large allocation (mmap underneath), touched and freed.
    size_t big = 100u << 20;
    auto* p = static_cast<char*>(malloc(big));
    if (!p) return 2;
    memset(p, 0x42, big);
    free(p);
    // Anonymous mappings, re-protected without exec.
    void* m = mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return 3;
    static_cast<char*>(m)[123] = 1;
    if (mprotect(m, 1 << 20, PROT_READ) != 0) return 4;
    if (munmap(m, 1 << 20) != 0) return 5;
    // Reading a descriptor opened before the sandbox; fstat on it.
    char buf[8] = {};
    if (read(pipefd[0], buf, 6) != 6 || strcmp(buf, "secure") != 0) return 6;
    struct stat st;
    if (fstat(pipefd[0], &st) != 0) return 7;
    // clone3 is answered ENOSYS (so glibc falls back to clone), not killed.
    errno = 0;
    if (syscall(SYS_clone3, nullptr, 0) != -1 || errno != ENOSYS) return 8;
    // Time, sleeping, randomness.
    timespec ts{0, 1000000};
    nanosleep(&ts, nullptr);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned char rnd[16];
    if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) return 9;
    return 0;
  });
  EXPECT_TRUE(exited_zero(status));
  close(pipefd[0]);
  close(pipefd[1]);
}

TEST(Sandbox, OpenIsKilled) {
  EXPECT_TRUE(killed_by_sigsys(run_sandboxed([] {
    int fd = open("/etc/hostname", O_RDONLY);
    return fd >= 0 ? 0 : 1;
  })));
}

TEST(Sandbox, ExecveIsKilled) {
  EXPECT_TRUE(killed_by_sigsys(run_sandboxed([] {
    char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
    execve("/bin/true", argv, environ);
    return 1;
  })));
}

TEST(Sandbox, SocketIsKilled) {
  EXPECT_TRUE(killed_by_sigsys(run_sandboxed([] {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    return fd >= 0 ? 0 : 1;
  })));
}

TEST(Sandbox, ExecutableMmapIsKilled) {
  EXPECT_TRUE(killed_by_sigsys(run_sandboxed([] {
    void* m = mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return m == MAP_FAILED ? 1 : 0;
  })));
}

TEST(Sandbox, MprotectToExecutableIsKilled) {
  EXPECT_TRUE(killed_by_sigsys(run_sandboxed([] {
    void* m = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return 2;
    return mprotect(m, 4096, PROT_READ | PROT_EXEC) == 0 ? 0 : 1;
  })));
}

TEST(Sandbox, ForkIsKilled) {
  EXPECT_TRUE(killed_by_sigsys(run_sandboxed([] {
    pid_t p = fork();
    if (p == 0) _exit(0);
    return 1;
  })));
}

TEST(Sandbox, KillingAnotherProcessIsKilled) {
  EXPECT_TRUE(killed_by_sigsys(run_sandboxed([] {
    return kill(getppid(), 0) == 0 ? 0 : 1;  // getppid is not allowed either
  })));
}

// The real thing: an SmcServer in a sandboxed process serves clients over its socket,
// including threads per client, SCM_RIGHTS memfds mapped in the TEE, and disconnects.
TEST(Sandbox, SmcServerServesInsideTheSandbox) {
  SKIP_IF_SANITIZED();
  std::string path = "/tmp/rplayer-sandbox-" + std::to_string(getpid()) + ".sock";
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  fflush(nullptr);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(ready[0]);
    TeeCore core;
    auto ta = std::make_shared<test::ToyTa>();
    if (core.register_ta(ta) != TEE_SUCCESS) _exit(2);
    SmcServer server(core);
    std::string error;
    if (!server.listen(path, &error)) _exit(3);
    if (!enter_sandbox(&error)) _exit(kSandboxFailed);
    if (write(ready[1], "r", 1) != 1) _exit(4);
    server.run();
    _exit(0);
  }
  close(ready[1]);
  pollfd p{ready[0], POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 10000), 1);
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  close(ready[0]);

  for (int round = 0; round < 3; ++round) {
    TEEC_Context ctx;
    ASSERT_EQ(TEEC_InitializeContext(path.c_str(), &ctx), TEEC_SUCCESS);
    TEEC_Session s;
    TEEC_UUID u;
    std::memcpy(&u, &test::kToyUuid, sizeof(u));
    uint32_t origin = 0;
    ASSERT_EQ(TEEC_OpenSession(&ctx, &s, &u, TEEC_LOGIN_PUBLIC, nullptr, nullptr, &origin),
              TEEC_SUCCESS);
    TEEC_SharedMemory shm{};
    shm.size = 256 << 10;
    shm.flags = TEEC_MEM_INPUT | TEEC_MEM_OUTPUT;
    ASSERT_EQ(TEEC_AllocateSharedMemory(&ctx, &shm), TEEC_SUCCESS);
    TEEC_Operation op{};
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_WHOLE, TEEC_VALUE_INPUT, TEEC_NONE, TEEC_NONE);
    op.params[0].memref.parent = &shm;
    op.params[1].value.a = 0x11 + round;
    ASSERT_EQ(TEEC_InvokeCommand(&s, test::kCmdFill, &op, &origin), TEEC_SUCCESS);
    EXPECT_EQ(static_cast<uint8_t*>(shm.buffer)[shm.size - 1], 0x11 + round);
    std::vector<uint8_t> big(200 << 10, 1);  // bounced through a second memfd
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE);
    op.params[0].tmpref = {big.data(), big.size()};
    ASSERT_EQ(TEEC_InvokeCommand(&s, test::kCmdSum, &op, &origin), TEEC_SUCCESS);
    EXPECT_EQ(op.params[1].value.a, big.size());
    TEEC_ReleaseSharedMemory(&shm);
    if (round == 1) TEEC_CloseSession(&s);  // other rounds leave it to the disconnect
    TEEC_FinalizeContext(&ctx);
  }
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, WNOHANG), 0) << "the sandboxed server died";
  kill(pid, SIGTERM);
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM)
      << (WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                              : "exit " + std::to_string(WEXITSTATUS(status)));
  unlink(path.c_str());
}

}  // namespace
}  // namespace rplayer::tee
