// The SoC served over Unix sockets: a ModeledSoc + SocServer in this process (over
// socketpairs), and the real rplayer-soc executable. The test binary doubles as a fake
// TEE: started as `remote_port_test --secure-bus-fd N MODE` (by rplayer-soc --tee), it
// checks its secure bus and exits before any test runs.
#include "hw/remote_port.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "hw/soc.h"
#include "hw/soc_server.h"
#include "hw/soc_wire.h"
#include "hw/v3d_regs.h"
#include "tests/common/soc_config.h"

namespace rplayer {
namespace {

using hw::RegBlock;
using hw::World;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// ---- fake TEE mode -------------------------------------------------------------------

void say(const std::string& line) {
  const std::string s = line + "\n";
  [[maybe_unused]] ssize_t n = write(1, s.data(), s.size());
}

[[noreturn]] void fake_tee_fail(const std::string& what) {
  say("fake-tee: FAIL " + what);
  _exit(2);
}

// MODE "exit": check the bus, then exit with status 3 (the SoC must notice).
// MODE "wait": check the bus, move the GPU to the secure world, then wait to be killed.
[[noreturn]] void run_fake_tee(int bus_fd, const std::string& mode) {
  std::string error;
  auto port = hw::RemoteSocPort::connect_fd(bus_fd, &error);
  if (!port) fake_tee_fail("connect: " + error);
  if (port->world() != World::Secure) fake_tee_fail("not the secure world");
  const hw::MemoryWindow all = port->memory();
  const hw::MemoryWindow carve = port->carve_out();
  struct stat st;
  if (!all.base || carve.size == 0 || all.size != carve.pa_base + carve.size ||
      fstat(carve.fd, &st) != 0 || uint64_t(st.st_size) != carve.size)
    fake_tee_fail("secure window does not cover all of DRAM");
  std::memcpy(carve.base, "TEE", 4);
  if (std::memcmp(all.at(carve.pa_base), "TEE", 4) != 0) fake_tee_fail("carve-out not mapped");
  if (!port->has_block(RegBlock::Tzpc)) fake_tee_fail("no TZPC");
  if (mode == "wait") {
    port->write32(RegBlock::Tzpc, v3d::TZPC_GPU_SECURE, 1);
    const auto deadline = Clock::now() + 1s;
    while (!(port->read32(RegBlock::Tzpc, v3d::TZPC_STATUS) & v3d::TZPC_STATUS_SECURE)) {
      if (Clock::now() > deadline) fake_tee_fail("GPU did not become secure");
      std::this_thread::sleep_for(1ms);
    }
  }
  say("fake-tee: ok pid=" + std::to_string(getpid()));
  if (mode == "exit") _exit(3);
  for (;;) pause();  // PR_SET_PDEATHSIG delivers SIGTERM when the SoC dies
}

bool maybe_run_as_fake_tee() {
  std::ifstream f("/proc/self/cmdline", std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  std::stringstream ss(all);
  for (std::string a; std::getline(ss, a, '\0');) args.push_back(a);
  if (args.size() == 4 && args[1] == "--secure-bus-fd") run_fake_tee(std::stoi(args[2]), args[3]);
  return false;
}
[[maybe_unused]] const bool kRanAsFakeTee = maybe_run_as_fake_tee();

// ---- in-process server -----------------------------------------------------------------

struct Served {
  hw::ModeledSoc soc;
  hw::SocServer server{soc};  // declared after soc: stops before the SoC goes away

  explicit Served(const std::string& sku = "v3d-7.1") : soc(test::test_config(sku)) {}

  // The client end of a new connection served as `w`.
  int raw(World w) {
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    EXPECT_TRUE(server.serve_connection(sv[0], w));
    return sv[1];
  }
  std::unique_ptr<hw::RemoteSocPort> connect(World w) {
    std::string error;
    auto port = hw::RemoteSocPort::connect_fd(raw(w), &error);
    EXPECT_TRUE(port) << error;
    return port;
  }
};

bool power_on(hw::SocPort& port) {
  port.write32(RegBlock::Sms, v3d::SMS_TEE_CS, v3d::SMS_CLEAR_POWER_OFF);
  const auto deadline = Clock::now() + 1s;
  while ((port.read32(RegBlock::Sms, v3d::SMS_TEE_CS) & v3d::SMS_STATE_MASK) != v3d::SMS_IDLE) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(100us);
  }
  return true;
}

// True once the server closed `fd` (EOF), false if it still answers after `timeout`.
bool closed_by_peer(int fd, std::chrono::milliseconds timeout = 1000ms) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, int(timeout.count())) <= 0) return false;
  char buf[64];
  return recv(fd, buf, sizeof buf, MSG_DONTWAIT) == 0;
}

template <typename F>
bool eventually(F f, std::chrono::milliseconds timeout = 1000ms) {
  const auto deadline = Clock::now() + timeout;
  while (!f()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

TEST(RemoteSocPort, HelloDescribesTheWorld) {
  for (const char* sku : {"v3d-7.1", "v3d-4.2"}) {
    SCOPED_TRACE(sku);
    Served s(sku);
    const auto cfg = test::test_config(sku);
    for (World w : {World::Normal, World::Secure}) {
      auto remote = s.connect(w);
      ASSERT_TRUE(remote);
      hw::SocPort& local = s.soc.port(w);
      EXPECT_EQ(remote->world(), w);
      EXPECT_TRUE(remote->alive());
      EXPECT_EQ(remote->num_irq_lines(), local.num_irq_lines());
      for (int b = 0; b < hw::kNumRegBlocks; ++b)
        EXPECT_EQ(remote->has_block(RegBlock(b)), local.has_block(RegBlock(b))) << b;
      const hw::MemoryWindow m = remote->memory();
      ASSERT_NE(m.base, nullptr);
      EXPECT_EQ(m.pa_base, 0u);
      if (w == World::Normal) {
        EXPECT_EQ(m.size, cfg.normal_bytes);
        EXPECT_GE(m.fd, 0);
        EXPECT_EQ(remote->carve_out().size, 0u);
      } else {
        EXPECT_EQ(m.size, cfg.normal_bytes + cfg.secure_bytes);
        EXPECT_EQ(m.fd, -1);  // two memfds: no single fd, as in PhysMemory::window()
        const hw::MemoryWindow c = remote->carve_out();
        EXPECT_EQ(c.pa_base, cfg.normal_bytes);
        EXPECT_EQ(c.size, cfg.secure_bytes);
        struct stat st;
        ASSERT_EQ(fstat(c.fd, &st), 0);
        EXPECT_EQ(uint64_t(st.st_size), cfg.secure_bytes);
      }
    }
  }
}

TEST(RemoteSocPort, RegistersMatchTheInProcessPort) {
  Served s("v3d-7.1");
  auto remote = s.connect(World::Normal);
  ASSERT_TRUE(remote);
  hw::SocPort& local = s.soc.port(World::Normal);
  ASSERT_TRUE(power_on(*remote));
  for (uint32_t off : {v3d::HUB_IDENT0, v3d::HUB_IDENT1, v3d::HUB_IDENT2, v3d::HUB_IDENT3})
    EXPECT_EQ(remote->read32(RegBlock::Hub, off), local.read32(RegBlock::Hub, off)) << off;
  EXPECT_EQ(remote->read32(RegBlock::Hub, v3d::HUB_IDENT1), s.soc.sku().hub_ident1);
  EXPECT_EQ(remote->read32(RegBlock::Core0, v3d::CTL_IDENT0), s.soc.sku().core_ident0);

  remote->write32(RegBlock::Hub, v3d::MMU_PT_PA_BASE, 0x123);
  EXPECT_EQ(local.read32(RegBlock::Hub, v3d::MMU_PT_PA_BASE), 0x123u);
  local.write32(RegBlock::Hub, v3d::MMU_PT_PA_BASE, 0x456);
  EXPECT_EQ(remote->read32(RegBlock::Hub, v3d::MMU_PT_PA_BASE), 0x456u);

  // The remote port keeps its world: the normal world cannot reach TZPC, the secure can.
  const uint64_t violations = s.soc.gpu().stats().tz_violations;
  EXPECT_EQ(remote->read32(RegBlock::Tzpc, v3d::TZPC_VIOLATIONS), 0u);
  EXPECT_EQ(s.soc.gpu().stats().tz_violations, violations + 1);
  auto secure = s.connect(World::Secure);
  ASSERT_TRUE(secure);
  EXPECT_EQ(secure->read32(RegBlock::Tzpc, v3d::TZPC_VIOLATIONS), violations + 1);
  EXPECT_TRUE(remote->alive());
}

// Posted writes (the TEE's mode): no answer per write, but in order with the port's own
// later accesses, so a read after a burst of writes sees the last one.
TEST(RemoteSocPort, PostedWritesTakeEffectInOrder) {
  Served s("v3d-7.1");
  auto remote = s.connect(World::Normal);  // the world the GPU's interrupts go to
  ASSERT_TRUE(remote);
  ASSERT_TRUE(power_on(*remote));
  ASSERT_TRUE(remote->use_posted_writes());
  for (uint32_t v = 1; v <= 2000; ++v) remote->write32(RegBlock::Hub, v3d::MMU_PT_PA_BASE, v);
  EXPECT_EQ(remote->read32(RegBlock::Hub, v3d::MMU_PT_PA_BASE), 2000u);
  EXPECT_EQ(s.soc.port(World::Normal).read32(RegBlock::Hub, v3d::MMU_PT_PA_BASE), 2000u);
  // A write that raises an interrupt, then a wait on the same port: in order too.
  remote->write32(RegBlock::Hub, v3d::INT_MSK_CLR, ~0u);
  remote->write32(RegBlock::Hub, v3d::INT_SET, 1u << 1);
  EXPECT_TRUE(remote->wait_irq(0, std::chrono::milliseconds(100)));
  EXPECT_TRUE(remote->alive());
}

TEST(RemoteSocPort, MemoryIsSharedAndTheNormalWindowStopsAtTheCarveOut) {
  Served s;
  const auto cfg = test::test_config();
  hw::PhysMemory& phys = s.soc.memory();
  auto normal = s.connect(World::Normal);
  auto secure = s.connect(World::Secure);
  ASSERT_TRUE(normal && secure);

  const hw::MemoryWindow n = normal->memory();
  std::memcpy(n.at(0x1000), "remote", 7);
  EXPECT_STREQ(reinterpret_cast<char*>(phys.data() + 0x1000), "remote");
  std::memcpy(phys.data() + 0x2000, "local", 6);
  EXPECT_STREQ(reinterpret_cast<char*>(n.at(0x2000)), "local");

  // The secure world sees the carve-out, written from either side.
  const hw::MemoryWindow all = secure->memory();
  const uint64_t carve_pa = phys.secure_base();
  std::memcpy(all.at(carve_pa), "secret", 7);
  EXPECT_STREQ(reinterpret_cast<char*>(phys.data() + carve_pa), "secret");
  std::memcpy(phys.data() + carve_pa + 0x1000, "device", 7);
  EXPECT_STREQ(reinterpret_cast<char*>(all.at(carve_pa + 0x1000)), "device");
  EXPECT_STREQ(reinterpret_cast<char*>(all.at(0x1000)), "remote");

  // The normal world's window and file end where the carve-out begins: the fd it was
  // given holds no secure byte.
  EXPECT_EQ(n.size, cfg.normal_bytes);
  EXPECT_FALSE(n.contains(carve_pa, 1));
  struct stat st;
  ASSERT_EQ(fstat(n.fd, &st), 0);
  EXPECT_EQ(uint64_t(st.st_size), cfg.normal_bytes);
  char buf[8] = {};
  EXPECT_EQ(pread(n.fd, buf, sizeof buf, off_t(carve_pa)), 0);  // EOF
  EXPECT_EQ(pread(n.fd, buf, 7, 0x1000), 7);
  EXPECT_STREQ(buf, "remote");

  // The TEE keeps only the carve-out: its window starts there, and a normal world cannot
  // narrow itself to a carve-out it does not have.
  EXPECT_FALSE(normal->restrict_to_carve_out());
  ASSERT_TRUE(secure->restrict_to_carve_out());
  const hw::MemoryWindow own = secure->memory();
  EXPECT_EQ(own.pa_base, carve_pa);
  EXPECT_EQ(own.size, cfg.secure_bytes);
  EXPECT_FALSE(own.contains(0x1000, 1));
  EXPECT_STREQ(reinterpret_cast<char*>(own.at(carve_pa)), "secret");
}

TEST(RemoteSocPort, WaitIrqInOneThreadWhileAnotherWritesRegisters) {
  Served s("v3d-4.2");  // powered at creation; line 0 = hub | core
  auto remote = s.connect(World::Normal);
  ASSERT_TRUE(remote);
  remote->write32(RegBlock::Hub, v3d::INT_MSK_CLR, v3d::HUB_INT_TFUC);

  std::atomic<bool> done{false};
  bool asserted = false;
  std::thread waiter([&] {
    asserted = remote->wait_irq(0, 3s);
    done = true;
  });
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(done);
  // While the waiter blocks, register accesses go over other connections (CLONE).
  EXPECT_EQ(remote->read32(RegBlock::Hub, v3d::HUB_IDENT1), s.soc.sku().hub_ident1);
  const auto raised = Clock::now();
  remote->write32(RegBlock::Hub, v3d::INT_SET, v3d::HUB_INT_TFUC);
  waiter.join();
  EXPECT_TRUE(asserted);
  EXPECT_LT(Clock::now() - raised, 1s);
  EXPECT_GE(remote->idle_connections(), 2u);

  remote->write32(RegBlock::Hub, v3d::INT_CLR, v3d::HUB_INT_TFUC);
  EXPECT_FALSE(remote->wait_irq(0, 0us));
  EXPECT_TRUE(remote->alive());
}

TEST(RemoteSocPort, WaitIrqTimeoutIsHonoured) {
  Served s("v3d-4.2");
  auto remote = s.connect(World::Normal);
  ASSERT_TRUE(remote);
  const auto t0 = Clock::now();
  EXPECT_FALSE(remote->wait_irq(0, 150ms));
  const auto took = Clock::now() - t0;
  EXPECT_GE(took, 150ms);
  EXPECT_LT(took, 1s);
  // A line the SoC does not have fails locally, without costing the connection.
  EXPECT_FALSE(remote->wait_irq(remote->num_irq_lines(), 1s));
  EXPECT_FALSE(remote->wait_irq(-1, 1s));
  EXPECT_TRUE(remote->alive());
  EXPECT_EQ(remote->read32(RegBlock::Hub, v3d::HUB_IDENT1), s.soc.sku().hub_ident1);
}

TEST(SocServer, MalformedRequestsCloseOnlyThatConnection) {
  Served s("v3d-4.2");
  auto good = s.connect(World::Normal);
  ASSERT_TRUE(good);
  using hw::wire::Op;
  auto req = [](Op op) { return hw::wire::make_request(op); };

  // Sanity: a well-formed request on a raw connection is answered.
  {
    const int fd = s.raw(World::Normal);
    auto r = req(Op::Read32);
    r.offset = v3d::HUB_IDENT1;
    ASSERT_TRUE(hw::wire::send_message(fd, &r, sizeof r));
    hw::wire::Response resp;
    ASSERT_EQ(hw::wire::recv_message(fd, &resp, sizeof resp, nullptr, 0, nullptr, 1000),
              hw::wire::RecvResult::Ok);
    EXPECT_EQ(resp.value, s.soc.sku().hub_ident1);
    close(fd);
  }

  std::vector<std::pair<std::string, std::vector<uint8_t>>> cases;
  auto add = [&](const std::string& name, const hw::wire::Request& r, size_t len = sizeof(r)) {
    std::vector<uint8_t> bytes(len, 0);
    std::memcpy(bytes.data(), &r, std::min(len, sizeof r));
    cases.emplace_back(name, bytes);
  };
  auto bad_block = req(Op::Read32);
  bad_block.block = hw::wire::kNumBlocks;
  add("bad block", bad_block);
  auto bad_write_block = req(Op::Write32);
  bad_write_block.block = 0xffffffff;
  add("bad write block", bad_write_block);
  auto bad_line = req(Op::WaitIrq);
  bad_line.line = uint32_t(s.soc.port(World::Normal).num_irq_lines());
  add("bad line", bad_line);
  auto long_wait = req(Op::WaitIrq);
  long_wait.timeout_us = hw::wire::kMaxWaitUs + 1;
  add("wait too long", long_wait);
  add("short message", req(Op::Read32), 10);
  add("long message", req(Op::Read32), sizeof(hw::wire::Request) + 8);
  auto bad_magic = req(Op::Hello);
  bad_magic.magic ^= 1;
  add("bad magic", bad_magic);
  auto bad_version = req(Op::Hello);
  bad_version.version = hw::wire::kVersion + 1;
  add("bad version", bad_version);
  add("unknown op", req(Op(99)));
  auto junk = req(Op::Hello);
  junk.value = 1;
  add("unused field set", junk);

  for (const auto& [name, bytes] : cases) {
    SCOPED_TRACE(name);
    const int fd = s.raw(World::Normal);
    ASSERT_EQ(send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL), ssize_t(bytes.size()));
    EXPECT_TRUE(closed_by_peer(fd));
    close(fd);
  }
  {
    SCOPED_TRACE("request carrying an fd");
    const int fd = s.raw(World::Normal);
    auto r = req(Op::Read32);
    const int passed = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_TRUE(hw::wire::send_message(fd, &r, sizeof r, &passed, 1));
    close(passed);
    EXPECT_TRUE(closed_by_peer(fd));
    close(fd);
  }
  // The server keeps serving the others.
  EXPECT_TRUE(good->alive());
  EXPECT_EQ(good->read32(RegBlock::Hub, v3d::HUB_IDENT1), s.soc.sku().hub_ident1);
  auto another = s.connect(World::Normal);
  ASSERT_TRUE(another);
  EXPECT_EQ(another->read32(RegBlock::Hub, v3d::HUB_IDENT1), s.soc.sku().hub_ident1);
}

TEST(SocServer, ClientVanishingDuringAWaitIsCleanedUp) {
  Served s("v3d-4.2");
  const int fd = s.raw(World::Normal);
  auto r = hw::wire::make_request(hw::wire::Op::WaitIrq);
  r.timeout_us = 5'000'000;
  ASSERT_TRUE(hw::wire::send_message(fd, &r, sizeof r));
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(s.server.active_connections(), 1u);
  close(fd);
  EXPECT_TRUE(eventually([&] { return s.server.active_connections() == 0; }));
}

TEST(RemoteSocPort, ServerDeathFailsCallsWithoutHanging) {
  Served s("v3d-4.2");
  auto remote = s.connect(World::Normal);
  ASSERT_TRUE(remote);
  ASSERT_NE(remote->read32(RegBlock::Hub, v3d::HUB_IDENT1), 0u);

  bool asserted = true;
  std::thread waiter([&] { asserted = remote->wait_irq(0, 5s); });
  std::this_thread::sleep_for(50ms);
  const auto t0 = Clock::now();
  s.server.stop();
  waiter.join();
  EXPECT_LT(Clock::now() - t0, 1s);
  EXPECT_FALSE(asserted);

  EXPECT_FALSE(remote->alive());
  const auto t1 = Clock::now();
  EXPECT_EQ(remote->read32(RegBlock::Hub, v3d::HUB_IDENT1), 0u);
  remote->write32(RegBlock::Hub, v3d::INT_SET, 1);
  EXPECT_FALSE(remote->wait_irq(0, 2s));
  EXPECT_LT(Clock::now() - t1, 100ms);
  // The memory stays mapped.
  remote->memory().base[0] = 1;
}

TEST(RemoteSocPort, AliveTurnsFalseWhenTheServerStopsEvenWithoutCalls) {
  Served s("v3d-4.2");
  auto remote = s.connect(World::Normal);
  ASSERT_TRUE(remote);
  EXPECT_TRUE(remote->alive());
  s.server.stop();
  EXPECT_FALSE(remote->alive());
  EXPECT_EQ(remote->read32(RegBlock::Hub, v3d::HUB_IDENT1), 0u);
}

TEST(RemoteSocPort, ConnectFailsCleanly) {
  std::string error;
  EXPECT_FALSE(hw::RemoteSocPort::connect_path("/nonexistent/normal.sock", &error));
  EXPECT_NE(error, "");
  // A peer that hangs up instead of answering HELLO.
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  close(sv[0]);
  EXPECT_FALSE(hw::RemoteSocPort::connect_fd(sv[1], &error));
  EXPECT_NE(error, "");
}

// ---- the rplayer-soc executable ----------------------------------------------------------

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/rplayer-soc-test-XXXXXX";
    path = mkdtemp(tmpl) ? tmpl : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
};

class SocProcess {
 public:
  explicit SocProcess(const std::vector<std::string>& args) {
    std::vector<std::string> argv_s = {RPLAYER_SOC_BIN};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      dup2(out[1], 2);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(out[1]);
    out_ = out[0];
  }
  ~SocProcess() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_ >= 0) close(out_);
  }
  pid_t pid() const { return pid_; }
  const std::string& output() const { return output_; }

  // Reads its stdout/stderr until `needle` shows up, EOF, or the timeout.
  bool read_until(const std::string& needle, std::chrono::milliseconds timeout = 3000ms) {
    const auto deadline = Clock::now() + timeout;
    while (output_.find(needle) == std::string::npos) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left <= 0ms) return false;
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, int(left.count())) <= 0) return false;
      char buf[512];
      const ssize_t n = read(out_, buf, sizeof buf);
      if (n <= 0) return output_.find(needle) != std::string::npos;
      output_.append(buf, size_t(n));
    }
    return true;
  }
  // Exit status, or nullopt if it is still running after `timeout`.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout = 3000ms) {
    int status = 0;
    const bool done = eventually([&] { return waitpid(pid_, &status, WNOHANG) == pid_; }, timeout);
    if (!done) return std::nullopt;
    exited_ = true;
    read_until("\x01", 200ms);  // collect what is left
    return status;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  bool exited_ = false;
  std::string output_;
};

std::string self_exe() {
  std::error_code ec;
  return std::filesystem::read_symlink("/proc/self/exe", ec).string();
}

// Gone, or a zombie nobody reaped yet (an orphan's reaper may be slow).
bool process_gone(pid_t pid) {
  if (kill(pid, 0) != 0) return errno == ESRCH;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const size_t paren = line.rfind(')');
  return paren == std::string::npos || (paren + 2 < line.size() && line[paren + 2] == 'Z');
}

const std::vector<std::string> kSmallSoc = {"--sku",        "v3d-4.2", "--normal-mib",     "64",
                                            "--secure-mib", "16",      "--device-threads", "1"};

std::vector<std::string> soc_args(const std::string& dir, std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {"--dir", dir};
  a.insert(a.end(), kSmallSoc.begin(), kSmallSoc.end());
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

TEST(SocServer, ListensOnAPathAndRemovesItOnStop) {
  TempDir dir;
  const std::string path = dir.path + "/normal.sock";
  Served s("v3d-4.2");
  std::string error;
  ASSERT_TRUE(s.server.listen(path, World::Normal, &error)) << error;
  auto port = hw::RemoteSocPort::connect_path(path, &error);
  ASSERT_TRUE(port) << error;
  EXPECT_EQ(port->world(), World::Normal);
  EXPECT_EQ(port->read32(RegBlock::Hub, v3d::HUB_IDENT1), s.soc.sku().hub_ident1);
  // A second server may not take over a live socket.
  Served other("v3d-4.2");
  EXPECT_FALSE(other.server.listen(path, World::Normal, &error));
  s.server.stop();
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(port->alive());
}

TEST(SocProcess, ServesTheNormalWorldAndStopsOnSigterm) {
  TempDir dir;
  ASSERT_FALSE(dir.path.empty());
  SocProcess soc(soc_args(dir.path));
  ASSERT_GT(soc.pid(), 0);
  ASSERT_TRUE(soc.read_until("rplayer-soc: ready " + dir.path + "\n")) << soc.output();

  std::ifstream pid_file(dir.path + "/soc.pid");
  int pid = 0;
  pid_file >> pid;
  EXPECT_EQ(pid, soc.pid());

  std::string error;
  auto port = hw::RemoteSocPort::connect_path(dir.path + "/normal.sock", &error);
  ASSERT_TRUE(port) << error;
  EXPECT_EQ(port->world(), World::Normal);
  EXPECT_EQ(port->read32(RegBlock::Hub, v3d::HUB_IDENT1), hw::find_sku("v3d-4.2")->hub_ident1);
  EXPECT_EQ(port->memory().size, 64ull << 20);

  kill(soc.pid(), SIGTERM);
  const auto status = soc.wait_exit();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << soc.output();
  EXPECT_FALSE(std::filesystem::exists(dir.path + "/normal.sock"));
  EXPECT_FALSE(std::filesystem::exists(dir.path + "/soc.pid"));
  EXPECT_EQ(port->read32(RegBlock::Hub, v3d::HUB_IDENT1), 0u);
  EXPECT_FALSE(port->alive());
}

TEST(SocProcess, SecureBootGivesTheTeeAPrivateBusAndTheTeeDiesWithTheSoc) {
  TempDir dir;
  SocProcess soc(soc_args(dir.path, {"--tee", self_exe(), "--tee-arg", "wait"}));
  ASSERT_TRUE(soc.read_until("rplayer-soc: ready")) << soc.output();
  ASSERT_TRUE(soc.read_until("fake-tee: ok pid=")) << soc.output();
  ASSERT_TRUE(soc.read_until("\n")) << soc.output();
  const size_t at = soc.output().find("fake-tee: ok pid=") + std::strlen("fake-tee: ok pid=");
  const pid_t tee_pid = std::stoi(soc.output().substr(at));
  EXPECT_GT(tee_pid, 0);

  // Nothing on the filesystem leads to the secure bus.
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir.path))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"normal.sock", "soc.pid"}));

  // The TEE moved the GPU to the secure world: the normal world is refused.
  std::string error;
  auto port = hw::RemoteSocPort::connect_path(dir.path + "/normal.sock", &error);
  ASSERT_TRUE(port) << error;
  EXPECT_EQ(port->read32(RegBlock::Hub, v3d::HUB_IDENT1), 0u);
  EXPECT_EQ(port->memory().size, 64ull << 20);

  kill(soc.pid(), SIGKILL);
  ASSERT_TRUE(soc.wait_exit().has_value());
  EXPECT_TRUE(eventually([&] { return process_gone(tee_pid); }, 2000ms))
      << "the TEE outlived the SoC";
  EXPECT_EQ(port->read32(RegBlock::Hub, v3d::HUB_IDENT1), 0u);
  EXPECT_FALSE(port->alive());
}

TEST(SocProcess, ExitsWhenTheTeeExits) {
  TempDir dir;
  SocProcess soc(soc_args(dir.path, {"--tee", self_exe(), "--tee-arg", "exit"}));
  const auto status = soc.wait_exit();
  ASSERT_TRUE(status.has_value()) << soc.output();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1) << soc.output();
  EXPECT_NE(soc.output().find("fake-tee: ok"), std::string::npos) << soc.output();
  EXPECT_NE(soc.output().find("exited with status 3"), std::string::npos) << soc.output();
  EXPECT_FALSE(std::filesystem::exists(dir.path + "/normal.sock"));
}

TEST(SocProcess, ReportsATeeThatCannotStart) {
  TempDir dir;
  SocProcess soc(soc_args(dir.path, {"--tee", "/dev/null"}));
  const auto status = soc.wait_exit();
  ASSERT_TRUE(status.has_value()) << soc.output();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1) << soc.output();
  EXPECT_NE(soc.output().find("cannot start TEE"), std::string::npos) << soc.output();
}

}  // namespace
}  // namespace rplayer
