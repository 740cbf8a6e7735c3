// The GP-shaped TEE Client API end to end: the same tests run against an in-process core,
// an SmcServer over a socketpair (serve_fd) and an SmcServer on a Unix socket path (run()).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tee/core/inproc.h"
#include "tee/core/smc_server.h"
#include "tee/core/tee_core.h"
#include "tee/smc_wire.h"
#include "tee/teec/tee_client_api.h"
#include "tee/teec/transport.h"
#include "toy_ta.h"

namespace rplayer::tee {
namespace {

using test::kToyUuid;
using test::ToyTa;

enum class Mode { kInproc, kSocketPair, kUnixPath };

TEEC_UUID toy_uuid() {
  TEEC_UUID u;
  std::memcpy(&u, &kToyUuid, sizeof(u));
  return u;
}

bool wait_until(const std::function<bool()>& pred, int timeout_ms = 5000) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

int sealed_memfd(size_t size, bool seal) {
  int fd = memfd_create("test-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0 || ftruncate(fd, static_cast<off_t>(size)) != 0) return -1;
  if (seal && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) return -1;
  return fd;
}

constexpr uint64_t kMemrefLimit = 1 << 20;  // small, so the limit is cheap to exceed

class TeecTest : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override {
    TeeCore::Limits limits;
    limits.max_memref_bytes = kMemrefLimit;
    limits.max_shm_bytes = 8 << 20;
    core_ = std::make_unique<TeeCore>(limits);
    ta_ = std::make_shared<ToyTa>();
    ASSERT_EQ(core_->register_ta(ta_), TEE_SUCCESS);
    server_ = std::make_unique<SmcServer>(*core_);
    if (GetParam() == Mode::kInproc) register_inproc_core(core_.get());
    if (GetParam() == Mode::kUnixPath) {
      static int counter = 0;
      path_ = "/tmp/rplayer-teec-" + std::to_string(getpid()) + "-" + std::to_string(counter++) +
              ".sock";
      std::string err;
      ASSERT_TRUE(server_->listen(path_, &err)) << err;
      threads_.emplace_back([this] { server_->run(); });
    }
  }

  void TearDown() override {
    server_->stop();
    for (auto& t : threads_) t.join();
    server_.reset();
    register_inproc_core(nullptr);
    if (!path_.empty()) unlink(path_.c_str());
    core_.reset();
  }

  bool socket_mode() const { return GetParam() != Mode::kInproc; }

  // A new connected socket served by this test's server: the client end.
  int new_socketpair_client() {
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    int server_end = sv[0];
    threads_.emplace_back([this, server_end] { server_->serve_fd(server_end); });
    return sv[1];
  }

  int new_raw_socket() {
    if (GetParam() == Mode::kSocketPair) return new_socketpair_client();
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    return fd;
  }

  // A TEEC_InitializeContext name reaching this test's core on a new connection.
  std::string new_context_name() {
    switch (GetParam()) {
      case Mode::kInproc:
        return "inproc";
      case Mode::kSocketPair:
        return "fd:" + std::to_string(new_socketpair_client());
      case Mode::kUnixPath:
        return path_;
    }
    return "";
  }

  // A transport without the C API's checks in front: to test the core's own validation.
  std::unique_ptr<teec::Transport> new_raw_transport() {
    switch (GetParam()) {
      case Mode::kInproc:
        return make_inproc_transport(*core_);
      case Mode::kSocketPair:
        return teec::socket_transport(new_socketpair_client());
      case Mode::kUnixPath: {
        teec::CallStatus st;
        return teec::connect_socket(path_, &st);
      }
    }
    return nullptr;
  }

  void init(TEEC_Context* ctx) {
    ASSERT_EQ(TEEC_InitializeContext(new_context_name().c_str(), ctx), TEEC_SUCCESS);
  }
  void open(TEEC_Context* ctx, TEEC_Session* s) {
    TEEC_UUID u = toy_uuid();
    uint32_t origin = 0;
    ASSERT_EQ(TEEC_OpenSession(ctx, s, &u, TEEC_LOGIN_PUBLIC, nullptr, nullptr, &origin),
              TEEC_SUCCESS);
    EXPECT_EQ(origin, TEEC_ORIGIN_TRUSTED_APP);
  }
  // kCmdAdd round trip: proves a session works.
  void expect_add_works(TEEC_Session* s) {
    TEEC_Operation op{};
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_VALUE_OUTPUT, TEEC_VALUE_INOUT, TEEC_NONE);
    op.params[0].value = {7, 6};
    op.params[2].value = {41, 5};
    uint32_t origin = 0;
    ASSERT_EQ(TEEC_InvokeCommand(s, test::kCmdAdd, &op, &origin), TEEC_SUCCESS);
    EXPECT_EQ(origin, TEEC_ORIGIN_TRUSTED_APP);
    EXPECT_EQ(op.params[1].value.a, 13u);
    EXPECT_EQ(op.params[1].value.b, 42u);
    EXPECT_EQ(op.params[2].value.a, 42u);
    EXPECT_EQ(op.params[2].value.b, 5u);
  }

  std::unique_ptr<TeeCore> core_;
  std::shared_ptr<ToyTa> ta_;
  std::unique_ptr<SmcServer> server_;
  std::vector<std::thread> threads_;
  std::string path_;
};

TEST_P(TeecTest, OpenInvokeClose) {
  TEEC_Context ctx;
  init(&ctx);
  TEEC_Session s;
  TEEC_UUID u = toy_uuid();
  TEEC_Operation op{};
  op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
  uint32_t origin = 0;
  ASSERT_EQ(TEEC_OpenSession(&ctx, &s, &u, TEEC_LOGIN_PUBLIC, nullptr, &op, &origin), TEEC_SUCCESS);
  EXPECT_EQ(op.params[0].value.a, 1u);  // the TA's session number came back
  expect_add_works(&s);
  EXPECT_EQ(core_->session_count(), 1u);
  TEEC_CloseSession(&s);
  EXPECT_EQ(ta_->closes, 1);
  EXPECT_EQ(core_->session_count(), 0u);
  TEEC_FinalizeContext(&ctx);
  EXPECT_EQ(ta_->creates, 1);
  EXPECT_EQ(ta_->destroys, 0);  // keep_alive by default
}

TEST_P(TeecTest, OpenSessionErrorsCarryTheirOrigin) {
  TEEC_Context ctx;
  init(&ctx);
  TEEC_Session s;
  uint32_t origin = 0;
  TEEC_UUID unknown = toy_uuid();
  unknown.timeLow ^= 1;
  EXPECT_EQ(TEEC_OpenSession(&ctx, &s, &unknown, TEEC_LOGIN_PUBLIC, nullptr, nullptr, &origin),
            TEEC_ERROR_ITEM_NOT_FOUND);
  EXPECT_EQ(origin, TEEC_ORIGIN_TEE);

  TEEC_UUID u = toy_uuid();
  TEEC_Operation op{};
  op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
  op.params[0].value.a = 0xDEAD;  // the TA refuses
  EXPECT_EQ(TEEC_OpenSession(&ctx, &s, &u, TEEC_LOGIN_PUBLIC, nullptr, &op, &origin),
            TEEC_ERROR_ACCESS_DENIED);
  EXPECT_EQ(origin, TEEC_ORIGIN_TRUSTED_APP);

  EXPECT_EQ(TEEC_OpenSession(&ctx, &s, &u, TEEC_LOGIN_USER, nullptr, nullptr, &origin),
            TEEC_ERROR_NOT_SUPPORTED);
  EXPECT_EQ(origin, TEEC_ORIGIN_API);
  EXPECT_EQ(TEEC_OpenSession(&ctx, &s, nullptr, TEEC_LOGIN_PUBLIC, nullptr, nullptr, &origin),
            TEEC_ERROR_BAD_PARAMETERS);
  EXPECT_EQ(origin, TEEC_ORIGIN_API);
  EXPECT_EQ(core_->session_count(), 0u);
  TEEC_FinalizeContext(&ctx);
}

TEST_P(TeecTest, TempMemrefsInAndOut) {
  TEEC_Context ctx;
  init(&ctx);
  TEEC_Session s;
  open(&ctx, &s);
  const char msg[] = "hello, secure world";
  char out[64] = {};
  TEEC_Operation op{};
  op.paramTypes =
      TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE, TEEC_NONE);
  op.params[0].tmpref = {const_cast<char*>(msg), sizeof(msg)};
  op.params[1].tmpref = {out, sizeof(out)};
  uint32_t origin = 0;
  ASSERT_EQ(TEEC_InvokeCommand(&s, test::kCmdEcho, &op, &origin), TEEC_SUCCESS);
  EXPECT_EQ(op.params[1].tmpref.size, sizeof(msg));
  EXPECT_STREQ(out, msg);

  // Output too small: SHORT_BUFFER and the size the TA needs, as in GP.
  char small[4];
  op.params[1].tmpref = {small, sizeof(small)};
  EXPECT_EQ(TEEC_InvokeCommand(&s, test::kCmdEcho, &op, &origin), TEEC_ERROR_SHORT_BUFFER);
  EXPECT_EQ(origin, TEEC_ORIGIN_TRUSTED_APP);
  EXPECT_EQ(op.params[1].tmpref.size, sizeof(msg));
  // The GP size query: a NULL output of size 0.
  op.params[1].tmpref = {nullptr, 0};
  EXPECT_EQ(TEEC_InvokeCommand(&s, test::kCmdEcho, &op, &origin), TEEC_ERROR_SHORT_BUFFER);
  EXPECT_EQ(op.params[1].tmpref.size, sizeof(msg));

  // INOUT: the TA's edit comes back, only as many bytes as it reports.
  uint8_t buf[16];
  for (int i = 0; i < 16; ++i) buf[i] = static_cast<uint8_t>(i);
  TEEC_Operation inv{};
  inv.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INOUT, TEEC_VALUE_INPUT, TEEC_NONE, TEEC_NONE);
  inv.params[0].tmpref = {buf, sizeof(buf)};
  inv.params[1].value.a = 4;
  ASSERT_EQ(TEEC_InvokeCommand(&s, test::kCmdInvert, &inv, &origin), TEEC_SUCCESS);
  EXPECT_EQ(inv.params[0].tmpref.size, 4u);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(buf[i], i < 4 ? (i ^ 0xFF) : i) << i;

  // A NULL buffer with a non-zero size is the client's mistake.
  op.params[1].tmpref = {nullptr, 8};
  EXPECT_EQ(TEEC_InvokeCommand(&s, test::kCmdEcho, &op, &origin), TEEC_ERROR_BAD_PARAMETERS);
  EXPECT_EQ(origin, TEEC_ORIGIN_API);
  TEEC_CloseSession(&s);
  TEEC_FinalizeContext(&ctx);
}

TEST_P(TeecTest, LargeTempMemrefsAreCopiedThroughTheBounceBuffer) {
  TEEC_Context ctx;
  init(&ctx);
  TEEC_Session s;
  open(&ctx, &s);
  std::mt19937 rng(7);
  for (size_t size : {size_t{512} << 10, size_t{300} << 10, size_t{700} << 10}) {
    std::vector<uint8_t> in(size), out(size, 0);
    for (auto& b : in) b = static_cast<uint8_t>(rng());
    TEEC_Operation op{};
    op.paramTypes =
        TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_MEMREF_TEMP_OUTPUT, TEEC_NONE, TEEC_NONE);
    op.params[0].tmpref = {in.data(), in.size()};
    op.params[1].tmpref = {out.data(), out.size()};
    uint32_t origin = 0;
    ASSERT_EQ(TEEC_InvokeCommand(&s, test::kCmdEcho, &op, &origin), TEEC_SUCCESS) << size;
    EXPECT_EQ(op.params[1].tmpref.size, size);
    EXPECT_EQ(in, out);
  }
  TEEC_CloseSession(&s);
  TEEC_FinalizeContext(&ctx);
}

TEST_P(TeecTest, AllocatedSharedMemoryIsZeroCopy) {
  TEEC_Context ctx;
  init(&ctx);
  TEEC_Session s;
  open(&ctx, &s);
  TEEC_SharedMemory shm{};
  shm.size = 1 << 20;
  shm.flags = TEEC_MEM_INPUT | TEEC_MEM_OUTPUT;
  ASSERT_EQ(TEEC_AllocateSharedMemory(&ctx, &shm), TEEC_SUCCESS);
  ASSERT_NE(shm.buffer, nullptr);
  auto* mem = static_cast<uint8_t*>(shm.buffer);

  TEEC_Operation op{};
  op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_WHOLE, TEEC_VALUE_INPUT, TEEC_NONE, TEEC_NONE);
  op.params[0].memref.parent = &shm;
  op.params[1].value.a = 0x5A;
  uint32_t origin = 0;
  ASSERT_EQ(TEEC_InvokeCommand(&s, test::kCmdFill, &op, &origin), TEEC_SUCCESS);
  for (size_t i = 0; i < shm.size; i += 4093) ASSERT_EQ(mem[i], 0x5A) << i;

  // The client writes; the TA reads the same pages.
  for (size_t i = 0; i < shm.size; ++i) mem[i] = static_cast<uint8_t>(i * 7);
  TEEC_Operation sum{};
  sum.paramTypes =
      TEEC_PARAM_TYPES(TEEC_MEMREF_PARTIAL_INPUT, TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE);
  sum.params[0].memref = {&shm, 3000, 1000};
  ASSERT_EQ(TEEC_InvokeCommand(&s, test::kCmdSum, &sum, &origin), TEEC_SUCCESS);
  uint32_t expect = 0;
  for (size_t i = 1000; i < 4000; ++i) expect += mem[i];
  EXPECT_EQ(sum.params[1].value.a, expect);
  EXPECT_EQ(sum.params[1].value.b, 3000u);

  // Zero copy, shown directly: the TA keeps a pointer from one call and writes through it
  // in a later call that names no memory at all. Only shared pages can carry that back.
  TEEC_Operation rem{};
  rem.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_PARTIAL_INOUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
  rem.params[0].memref = {&shm, 100, 4096};
  ASSERT_EQ(TEEC_InvokeCommand(&s, test::kCmdRemember, &rem, &origin), TEEC_SUCCESS);
  uint8_t after = mem[4196];
  TEEC_Operation poke{};
  poke.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
  poke.params[0].value.a = 0x77;
  ASSERT_EQ(TEEC_InvokeCommand(&s, test::kCmdPoke, &poke, &origin), TEEC_SUCCESS);
  for (size_t i = 4096; i < 4196; ++i) ASSERT_EQ(mem[i], 0x77) << i;
  EXPECT_EQ(mem[4196], after);

  // SHORT_BUFFER on a shared-memory output reports the needed size too.
  const char msg[] = "twenty-one bytes long";
  TEEC_Operation echo{};
  echo.paramTypes =
      TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_MEMREF_PARTIAL_OUTPUT, TEEC_NONE, TEEC_NONE);
  echo.params[0].tmpref = {const_cast<char*>(msg), sizeof(msg)};
  echo.params[1].memref = {&shm, 4, 0};
  EXPECT_EQ(TEEC_InvokeCommand(&s, test::kCmdEcho, &echo, &origin), TEEC_ERROR_SHORT_BUFFER);
  EXPECT_EQ(echo.params[1].memref.size, sizeof(msg));
  echo.params[1].memref = {&shm, 64, 0};
  ASSERT_EQ(TEEC_InvokeCommand(&s, test::kCmdEcho, &echo, &origin), TEEC_SUCCESS);
  EXPECT_EQ(echo.params[1].memref.size, sizeof(msg));
  EXPECT_STREQ(reinterpret_cast<char*>(mem), msg);

  TEEC_ReleaseSharedMemory(&shm);
  EXPECT_EQ(shm.buffer, nullptr);
  TEEC_CloseSession(&s);
  TEEC_FinalizeContext(&ctx);
}

TEST_P(TeecTest, RegisteredMemoryIsCopiedPerInvocation) {
  TEEC_Context ctx;
  init(&ctx);
  TEEC_Session s;
  open(&ctx, &s);
  for (size_t size : {size_t{1000}, size_t{200000}}) {  // inline, and bounced over sockets
    std::vector<uint8_t> buf(size, 0);
    TEEC_SharedMemory shm{};
    shm.buffer = buf.data();
    shm.size = buf.size();
    shm.flags = TEEC_MEM_INPUT | TEEC_MEM_OUTPUT;
    ASSERT_EQ(TEEC_RegisterSharedMemory(&ctx, &shm), TEEC_SUCCESS);

    TEEC_Operation op{};
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_WHOLE, TEEC_VALUE_INPUT, TEEC_NONE, TEEC_NONE);
    op.params[0].memref.parent = &shm;
    op.params[1].value.a = 0x33;
    uint32_t origin = 0;
    ASSERT_EQ(TEEC_InvokeCommand(&s, test::kCmdFill, &op, &origin), TEEC_SUCCESS);
    EXPECT_EQ(op.params[0].memref.size, size);
    for (size_t i = 0; i < size; ++i) ASSERT_EQ(buf[i], 0x33) << i;

    TEEC_Operation inv{};
    inv.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_PARTIAL_INOUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    inv.params[0].memref = {&shm, 20, 10};
    ASSERT_EQ(TEEC_InvokeCommand(&s, test::kCmdInvert, &inv, &origin), TEEC_SUCCESS);
    for (size_t i = 0; i < size; ++i) ASSERT_EQ(buf[i], (i >= 10 && i < 30) ? 0xCC : 0x33) << i;

    TEEC_Operation sum{};
    sum.paramTypes =
        TEEC_PARAM_TYPES(TEEC_MEMREF_PARTIAL_INPUT, TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE);
    sum.params[0].memref = {&shm, 30, 0};
    ASSERT_EQ(TEEC_InvokeCommand(&s, test::kCmdSum, &sum, &origin), TEEC_SUCCESS);
    EXPECT_EQ(sum.params[1].value.a, 10u * 0x33 + 20u * 0xCC);

    // Outside the registered buffer: refused before anything is sent.
    sum.params[0].memref = {&shm, 2, size - 1};
    EXPECT_EQ(TEEC_InvokeCommand(&s, test::kCmdSum, &sum, &origin), TEEC_ERROR_BAD_PARAMETERS);
    EXPECT_EQ(origin, TEEC_ORIGIN_API);
    TEEC_ReleaseSharedMemory(&shm);
  }
  // Direction must match the flags.
  uint8_t in_only[32] = {};
  TEEC_SharedMemory shm{};
  shm.buffer = in_only;
  shm.size = sizeof(in_only);
  shm.flags = TEEC_MEM_INPUT;
  ASSERT_EQ(TEEC_RegisterSharedMemory(&ctx, &shm), TEEC_SUCCESS);
  TEEC_Operation op{};
  op.paramTypes =
      TEEC_PARAM_TYPES(TEEC_MEMREF_PARTIAL_OUTPUT, TEEC_VALUE_INPUT, TEEC_NONE, TEEC_NONE);
  op.params[0].memref = {&shm, 8, 0};
  uint32_t origin = 0;
  EXPECT_EQ(TEEC_InvokeCommand(&s, test::kCmdFill, &op, &origin), TEEC_ERROR_BAD_PARAMETERS);
  EXPECT_EQ(origin, TEEC_ORIGIN_API);
  TEEC_ReleaseSharedMemory(&shm);
  TEEC_CloseSession(&s);
  TEEC_FinalizeContext(&ctx);
}

TEST_P(TeecTest, MalformedParametersGetClearErrorsAndServingContinues) {
  TEEC_Context ctx;
  init(&ctx);
  TEEC_Session s;
  open(&ctx, &s);
  uint32_t origin = 0;
  // Wrong types for the command: the TA's own check.
  TEEC_Operation op{};
  op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
  EXPECT_EQ(TEEC_InvokeCommand(&s, test::kCmdAdd, &op, &origin), TEEC_ERROR_BAD_PARAMETERS);
  EXPECT_EQ(origin, TEEC_ORIGIN_TRUSTED_APP);
  // Types that do not exist: the client library refuses.
  for (uint32_t bad : {0x4u, 0x8u, 0xBu}) {
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_NONE, bad, TEEC_NONE, TEEC_NONE);
    EXPECT_EQ(TEEC_InvokeCommand(&s, test::kCmdAdd, &op, &origin), TEEC_ERROR_BAD_PARAMETERS);
    EXPECT_EQ(origin, TEEC_ORIGIN_API);
  }
  // A temp memref beyond the core's limit: the TEE refuses.
  std::vector<uint8_t> big(kMemrefLimit + 1);
  TEEC_Operation sum{};
  sum.paramTypes =
      TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE);
  sum.params[0].tmpref = {big.data(), big.size()};
  EXPECT_EQ(TEEC_InvokeCommand(&s, test::kCmdSum, &sum, &origin), TEEC_ERROR_BAD_PARAMETERS);
  EXPECT_EQ(origin, TEEC_ORIGIN_TEE);
  // Likewise a shared-memory window beyond the limit.
  TEEC_SharedMemory shm{};
  shm.size = 2 * kMemrefLimit;
  shm.flags = TEEC_MEM_INPUT;
  ASSERT_EQ(TEEC_AllocateSharedMemory(&ctx, &shm), TEEC_SUCCESS);
  sum.paramTypes = TEEC_PARAM_TYPES(TEEC_MEMREF_WHOLE, TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE);
  sum.params[0].memref = {&shm, 0, 0};
  EXPECT_EQ(TEEC_InvokeCommand(&s, test::kCmdSum, &sum, &origin), TEEC_ERROR_BAD_PARAMETERS);
  EXPECT_EQ(origin, TEEC_ORIGIN_TEE);
  sum.paramTypes =
      TEEC_PARAM_TYPES(TEEC_MEMREF_PARTIAL_INPUT, TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE);
  sum.params[0].memref = {&shm, kMemrefLimit, kMemrefLimit};  // at the limit: fine
  EXPECT_EQ(TEEC_InvokeCommand(&s, test::kCmdSum, &sum, &origin), TEEC_SUCCESS);
  // Unknown command.
  EXPECT_EQ(TEEC_InvokeCommand(&s, 999, nullptr, &origin), TEEC_ERROR_NOT_SUPPORTED);
  EXPECT_EQ(origin, TEEC_ORIGIN_TRUSTED_APP);
  TEEC_ReleaseSharedMemory(&shm);
  expect_add_works(&s);
  TEEC_CloseSession(&s);
  TEEC_FinalizeContext(&ctx);
}

// What a hostile client can send without the C API in front: the core checks it all.
TEST_P(TeecTest, CoreValidatesWhatTheClientLibraryWouldNotSend) {
  auto t = new_raw_transport();
  ASSERT_TRUE(t);
  TEEC_UUID u = toy_uuid();
  uint32_t sid = 0;
  Operation none;
  ASSERT_TRUE(t->open_session(u, TEEC_LOGIN_PUBLIC, none, &sid).ok());
  teec::CallStatus st = t->open_session(u, TEEC_LOGIN_USER, none, &sid);
  EXPECT_EQ(st.result, TEEC_ERROR_NOT_SUPPORTED);
  EXPECT_EQ(st.origin, TEEC_ORIGIN_TEE);

  auto expect_bad = [&](Operation op, const char* what) {
    teec::CallStatus r = t->invoke(sid, test::kCmdSum, op);
    EXPECT_EQ(r.result, TEEC_ERROR_BAD_PARAMETERS) << what;
    EXPECT_EQ(r.origin, TEEC_ORIGIN_TEE) << what;
  };
  Operation op;
  op.param_types = 0x4;
  expect_bad(op, "unknown type 4");
  op.param_types = 0xC;
  expect_bad(op, "TEEC-side type WHOLE on the TA side");
  op.param_types = 0x10000;
  expect_bad(op, "bits above the four nibbles");

  int good = sealed_memfd(8192, true);
  ASSERT_GE(good, 0);
  uint32_t shm = 0;
  ASSERT_TRUE(t->register_shm(good, &shm).ok());
  close(good);
  const uint32_t sum_types =
      TEE_PARAM_TYPES(TEE_PARAM_TYPE_MEMREF_INPUT, TEE_PARAM_TYPE_VALUE_OUTPUT, TEE_PARAM_TYPE_NONE,
                      TEE_PARAM_TYPE_NONE);
  auto window = [&](uint32_t id, uint64_t off, uint64_t size) {
    Operation o;
    o.param_types = sum_types;
    o.params[0].shm_id = id;
    o.params[0].offset = off;
    o.params[0].size = size;
    return o;
  };
  expect_bad(window(shm, 8000, 500), "window past the end of the region");
  expect_bad(window(shm, UINT64_MAX - 10, 100), "offset + size overflows");
  expect_bad(window(shm, 8193, 0), "offset past the end");
  expect_bad(window(shm + 100, 0, 16), "unknown shm id");
  expect_bad(window(shm, 0, kMemrefLimit + 1), "beyond the memref limit");
  Operation lying = window(0, 0, 10);  // inline, claims 10 bytes, carries 3
  lying.params[0].bytes = {1, 2, 3};
  expect_bad(lying, "inline size does not match the bytes");

  // Regions must be sealed memfds; unknown ids cannot be released.
  int unsealed = sealed_memfd(4096, false);
  uint32_t id2 = 0;
  st = t->register_shm(unsealed, &id2);
  EXPECT_EQ(st.result, TEEC_ERROR_BAD_PARAMETERS);
  close(unsealed);
  st = t->release_shm(shm + 100);
  EXPECT_EQ(st.result, TEEC_ERROR_ITEM_NOT_FOUND);

  // Unknown sessions.
  Operation empty;
  st = t->invoke(sid + 1000, test::kCmdAdd, empty);
  EXPECT_EQ(st.result, TEEC_ERROR_ITEM_NOT_FOUND);
  EXPECT_EQ(st.origin, TEEC_ORIGIN_TEE);
  EXPECT_EQ(t->close_session(sid + 1000).result, TEEC_ERROR_ITEM_NOT_FOUND);

  // After all that the same client is still served.
  Operation ok = window(shm, 4096, 4096);
  st = t->invoke(sid, test::kCmdSum, ok);
  EXPECT_TRUE(st.ok());
  EXPECT_EQ(st.origin, TEEC_ORIGIN_TRUSTED_APP);
  EXPECT_EQ(ok.params[1].b, 4096u);
  EXPECT_TRUE(t->release_shm(shm).ok());
  EXPECT_TRUE(t->close_session(sid).ok());
}

TEST_P(TeecTest, AnotherClientsSessionIsDenied) {
  TEEC_Context a, b;
  init(&a);
  init(&b);
  TEEC_Session sa;
  open(&a, &sa);
  TEEC_Session forged = sa;
  forged.imp.ctx = &b;  // B names A's session id
  TEEC_Operation op{};
  op.paramTypes =
      TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_VALUE_OUTPUT, TEEC_VALUE_INOUT, TEEC_NONE);
  uint32_t origin = 0;
  EXPECT_EQ(TEEC_InvokeCommand(&forged, test::kCmdAdd, &op, &origin), TEEC_ERROR_ACCESS_DENIED);
  EXPECT_EQ(origin, TEEC_ORIGIN_TEE);
  TEEC_CloseSession(&forged);  // refused by the core: A's session survives
  EXPECT_EQ(core_->session_count(), 1u);
  EXPECT_EQ(ta_->closes, 0);
  forged = sa;
  forged.imp.session_id += 12345;
  EXPECT_EQ(TEEC_InvokeCommand(&forged, test::kCmdAdd, &op, &origin), TEEC_ERROR_ITEM_NOT_FOUND);
  EXPECT_EQ(origin, TEEC_ORIGIN_TEE);
  expect_add_works(&sa);
  TEEC_CloseSession(&sa);
  TEEC_FinalizeContext(&a);
  TEEC_FinalizeContext(&b);
}

TEST_P(TeecTest, DisconnectClosesOpenSessions) {
  TEEC_Context ctx;
  init(&ctx);
  TEEC_Session s[3];
  for (auto& x : s) open(&ctx, &x);
  TEEC_SharedMemory shm{};
  shm.size = 4096;
  shm.flags = TEEC_MEM_OUTPUT;
  ASSERT_EQ(TEEC_AllocateSharedMemory(&ctx, &shm), TEEC_SUCCESS);
  EXPECT_EQ(core_->session_count(), 3u);
  TEEC_FinalizeContext(&ctx);  // sessions left open on purpose
  EXPECT_TRUE(wait_until([&] { return ta_->closes == 3; }));
  EXPECT_TRUE(
      wait_until([&] { return core_->session_count() == 0 && core_->client_count() == 0; }));
  TEEC_ReleaseSharedMemory(&shm);  // the context is gone: just unmaps
}

TEST_P(TeecTest, GarbageOnTheWireGetsAnErrorAndServingContinues) {
  if (!socket_mode()) GTEST_SKIP() << "no wire in-process";
  int fd = new_raw_socket();
  auto exchange = [&](const void* msg, size_t n, int pass_fd = -1) {
    iovec iov{const_cast<void*>(msg), n};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    if (pass_fd >= 0) {
      m.msg_control = control;
      m.msg_controllen = sizeof(control);
      cmsghdr* c = CMSG_FIRSTHDR(&m);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    EXPECT_EQ(sendmsg(fd, &m, MSG_NOSIGNAL), static_cast<ssize_t>(n));
    wire::Header rep{};
    std::vector<uint8_t> rx(wire::kMaxMessageBytes);
    ssize_t got = recv(fd, rx.data(), rx.size(), 0);
    EXPECT_GE(got, static_cast<ssize_t>(sizeof(rep)));
    if (got >= static_cast<ssize_t>(sizeof(rep))) std::memcpy(&rep, rx.data(), sizeof(rep));
    EXPECT_EQ(rep.magic, wire::kMagic);
    return rep;
  };
  auto expect_format_error = [&](const void* msg, size_t n, const char* what, int pass_fd = -1) {
    wire::Header rep = exchange(msg, n, pass_fd);
    EXPECT_EQ(rep.result, TEE_ERROR_BAD_FORMAT) << what;
    EXPECT_EQ(rep.origin, TEE_ORIGIN_COMMS) << what;
  };
  std::mt19937 rng(42);
  std::vector<uint8_t> noise(wire::kMaxMessageBytes + 100);
  for (auto& b : noise) b = static_cast<uint8_t>(rng());
  expect_format_error(noise.data(), 7, "shorter than a header");
  expect_format_error(noise.data(), sizeof(wire::Header) + 20, "random header");
  expect_format_error(noise.data(), noise.size(), "longer than any message");

  wire::Header h = wire::make_header(wire::Op::kInvoke);
  h.version = 99;
  expect_format_error(&h, sizeof(h), "unknown version");
  h = wire::make_header(wire::Op::kInvoke);
  h.payload_bytes = 100;
  expect_format_error(&h, sizeof(h), "payload length lies");
  h = wire::make_header(static_cast<wire::Op>(77));
  expect_format_error(&h, sizeof(h), "unknown op");
  h = wire::make_header(wire::Op::kInvoke);
  int stray = sealed_memfd(4096, true);
  expect_format_error(&h, sizeof(h), "descriptor with an invoke", stray);
  close(stray);

  h = wire::make_header(wire::Op::kRegisterShm);
  wire::Header rep = exchange(&h, sizeof(h));
  EXPECT_EQ(rep.result, TEE_ERROR_BAD_PARAMETERS) << "register without a descriptor";
  EXPECT_EQ(rep.origin, TEE_ORIGIN_TEE);

  // A well-formed open on the same connection still works...
  h = wire::make_header(wire::Op::kOpenSession);
  std::memcpy(h.uuid, &kToyUuid, sizeof(h.uuid));
  rep = exchange(&h, sizeof(h));
  EXPECT_EQ(rep.result, TEE_SUCCESS);
  // ...and an inline memref pointing past the payload is refused.
  h = wire::make_header(wire::Op::kInvoke);
  h.session = rep.session;
  h.cmd = test::kCmdSum;
  h.param_types = TEE_PARAM_TYPES(TEE_PARAM_TYPE_MEMREF_INPUT, TEE_PARAM_TYPE_VALUE_OUTPUT, 0, 0);
  h.params[0].offset = 1u << 20;
  h.params[0].size = 16;
  rep = exchange(&h, sizeof(h));
  EXPECT_EQ(rep.result, TEE_ERROR_BAD_PARAMETERS);
  EXPECT_EQ(rep.origin, TEE_ORIGIN_TEE);
  close(fd);

  // Other clients are served.
  TEEC_Context ctx;
  init(&ctx);
  TEEC_Session s;
  open(&ctx, &s);
  expect_add_works(&s);
  TEEC_CloseSession(&s);
  TEEC_FinalizeContext(&ctx);
  EXPECT_TRUE(wait_until([&] { return core_->session_count() == 0; }));
}

TEST_P(TeecTest, KilledClientsSessionsAreClosedAfterTheInvocationReturns) {
  if (!socket_mode()) GTEST_SKIP() << "needs a client process";
  std::string name = new_context_name();
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Child: a client that opens a session and blocks in a long invocation.
    close(ready[0]);
    TEEC_Context ctx;
    TEEC_Session s;
    TEEC_UUID u = toy_uuid();
    if (TEEC_InitializeContext(name.c_str(), &ctx) != TEEC_SUCCESS) _exit(2);
    if (TEEC_OpenSession(&ctx, &s, &u, TEEC_LOGIN_PUBLIC, nullptr, nullptr, nullptr) !=
        TEEC_SUCCESS)
      _exit(3);
    if (write(ready[1], "o", 1) != 1) _exit(4);
    TEEC_Operation op{};
    op.paramTypes = TEEC_PARAM_TYPES(TEEC_VALUE_INPUT, TEEC_NONE, TEEC_NONE, TEEC_NONE);
    op.params[0].value.a = 20000;
    TEEC_InvokeCommand(&s, test::kCmdSleep, &op, nullptr);
    _exit(0);
  }
  close(ready[1]);
  if (GetParam() == Mode::kSocketPair) close(std::stoi(name.substr(3)));  // the child's end now
  pollfd p{ready[0], POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 10000), 1);
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  close(ready[0]);
  ASSERT_TRUE(wait_until([&] { return ta_->sleeping == 1; }));

  kill(pid, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  // The invocation is still running in the TA: its session must not be closed under it.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(ta_->closes, 0);
  EXPECT_EQ(core_->session_count(), 1u);

  ta_->release();  // the TA call returns; the reply to the dead client fails (no SIGPIPE)
  EXPECT_TRUE(wait_until([&] { return ta_->closes == 1; }));
  EXPECT_TRUE(wait_until([&] { return core_->session_count() == 0; }));

  TEEC_Context ctx;
  init(&ctx);
  TEEC_Session s;
  open(&ctx, &s);
  expect_add_works(&s);
  TEEC_CloseSession(&s);
  TEEC_FinalizeContext(&ctx);
}

TEST_P(TeecTest, InvocationsFromManyClientsAreSerialized) {
  constexpr int kClients = 4, kCalls = 40;
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int i = 0; i < kClients; ++i) {
    std::string name = new_context_name();
    clients.emplace_back([&, name] {
      TEEC_Context ctx;
      TEEC_Session s;
      TEEC_UUID u = toy_uuid();
      if (TEEC_InitializeContext(name.c_str(), &ctx) != TEEC_SUCCESS) return;
      if (TEEC_OpenSession(&ctx, &s, &u, TEEC_LOGIN_PUBLIC, nullptr, nullptr, nullptr) ==
          TEEC_SUCCESS) {
        std::vector<uint8_t> buf(10000, 1);
        for (int k = 0; k < kCalls; ++k) {
          TEEC_Operation op{};
          op.paramTypes =
              TEEC_PARAM_TYPES(TEEC_MEMREF_TEMP_INPUT, TEEC_VALUE_OUTPUT, TEEC_NONE, TEEC_NONE);
          op.params[0].tmpref = {buf.data(), buf.size()};
          if (TEEC_InvokeCommand(&s, test::kCmdSum, &op, nullptr) == TEEC_SUCCESS &&
              op.params[1].value.a == 10000)
            ++ok;
        }
        TEEC_CloseSession(&s);
      }
      TEEC_FinalizeContext(&ctx);
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok, kClients * kCalls);
  EXPECT_FALSE(ta_->overlap);
}

INSTANTIATE_TEST_SUITE_P(Transports, TeecTest,
                         ::testing::Values(Mode::kInproc, Mode::kSocketPair, Mode::kUnixPath),
                         [](const ::testing::TestParamInfo<Mode>& info) {
                           switch (info.param) {
                             case Mode::kInproc:
                               return "Inproc";
                             case Mode::kSocketPair:
                               return "SocketPair";
                             case Mode::kUnixPath:
                               return "UnixPath";
                           }
                           return "Unknown";
                         });

// ---- Without a fixture -------------------------------------------------------------------

TEST(Teec, InitializeContextErrors) {
  TEEC_Context ctx;
  EXPECT_EQ(TEEC_InitializeContext("/nonexistent/rplayer-tee.sock", &ctx),
            TEEC_ERROR_ITEM_NOT_FOUND);
  EXPECT_EQ(TEEC_InitializeContext("inproc", &ctx), TEEC_ERROR_ITEM_NOT_FOUND);  // none registered
  EXPECT_EQ(TEEC_InitializeContext("fd:x", &ctx), TEEC_ERROR_BAD_PARAMETERS);
  EXPECT_EQ(TEEC_InitializeContext("fd:999999", &ctx), TEEC_ERROR_BAD_PARAMETERS);
  EXPECT_EQ(TEEC_InitializeContext("inproc", nullptr), TEEC_ERROR_BAD_PARAMETERS);
}

TEST(Teec, ATeeThatIsGoneIsACommunicationError) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  close(sv[0]);  // the TEE end: gone
  TEEC_Context ctx;
  ASSERT_EQ(TEEC_InitializeContext(("fd:" + std::to_string(sv[1])).c_str(), &ctx), TEEC_SUCCESS);
  TEEC_Session s;
  TEEC_UUID u = toy_uuid();
  uint32_t origin = 0;
  EXPECT_EQ(TEEC_OpenSession(&ctx, &s, &u, TEEC_LOGIN_PUBLIC, nullptr, nullptr, &origin),
            TEEC_ERROR_COMMUNICATION);
  EXPECT_EQ(origin, TEEC_ORIGIN_COMMS);  // and no SIGPIPE
  TEEC_FinalizeContext(&ctx);
}

TEST(Teec, NullNameUsesTheRegisteredCore) {
  TeeCore core;
  auto ta = std::make_shared<ToyTa>();
  ASSERT_EQ(core.register_ta(ta), TEE_SUCCESS);
  register_inproc_core(&core);
  TEEC_Context ctx;
  ASSERT_EQ(TEEC_InitializeContext(nullptr, &ctx), TEEC_SUCCESS);
  TEEC_Session s;
  TEEC_UUID u = toy_uuid();
  EXPECT_EQ(TEEC_OpenSession(&ctx, &s, &u, TEEC_LOGIN_PUBLIC, nullptr, nullptr, nullptr),
            TEEC_SUCCESS);
  TEEC_FinalizeContext(&ctx);
  register_inproc_core(nullptr);
  EXPECT_EQ(ta->closes, 1);
}

TEST(TeeCore, DuplicateUuidIsRefused) {
  TeeCore core;
  EXPECT_EQ(core.register_ta(std::make_shared<ToyTa>()), TEE_SUCCESS);
  EXPECT_EQ(core.register_ta(std::make_shared<ToyTa>()), TEE_ERROR_ACCESS_CONFLICT);
}

TEST(TeeCore, InstanceWithoutKeepAliveIsDestroyedWithItsLastSession) {
  TeeCore core;
  auto ta = std::make_shared<ToyTa>();
  ASSERT_EQ(core.register_ta(ta, TeeCore::TaOptions{.keep_alive = false}), TEE_SUCCESS);
  TeeCore::ClientId c = core.connect();
  Operation op;
  uint32_t s1 = 0, s2 = 0;
  ASSERT_TRUE(core.open_session(c, kToyUuid, TEE_LOGIN_PUBLIC, op, &s1).ok());
  ASSERT_TRUE(core.open_session(c, kToyUuid, TEE_LOGIN_PUBLIC, op, &s2).ok());
  EXPECT_EQ(ta->creates, 1);
  EXPECT_TRUE(core.close_session(c, s1).ok());
  EXPECT_EQ(ta->destroys, 0);
  EXPECT_TRUE(core.close_session(c, s2).ok());
  EXPECT_EQ(ta->destroys, 1);
  ASSERT_TRUE(core.open_session(c, kToyUuid, TEE_LOGIN_PUBLIC, op, &s1).ok());
  EXPECT_EQ(ta->creates, 2);
  core.disconnect(c);
  EXPECT_EQ(ta->destroys, 2);
  EXPECT_EQ(ta->closes, 3);
}

TEST(TeeCore, SessionLimitPerClient) {
  TeeCore::Limits limits;
  limits.max_sessions_per_client = 2;
  TeeCore core(limits);
  ASSERT_EQ(core.register_ta(std::make_shared<ToyTa>()), TEE_SUCCESS);
  TeeCore::ClientId c = core.connect();
  Operation op;
  uint32_t s = 0;
  EXPECT_TRUE(core.open_session(c, kToyUuid, TEE_LOGIN_PUBLIC, op, &s).ok());
  EXPECT_TRUE(core.open_session(c, kToyUuid, TEE_LOGIN_PUBLIC, op, &s).ok());
  EXPECT_EQ(core.open_session(c, kToyUuid, TEE_LOGIN_PUBLIC, op, &s).result,
            TEE_ERROR_OUT_OF_MEMORY);
  TeeCore::ClientId other = core.connect();  // the limit is per client
  EXPECT_TRUE(core.open_session(other, kToyUuid, TEE_LOGIN_PUBLIC, op, &s).ok());
  core.disconnect(c);
  EXPECT_EQ(core.open_session(c, kToyUuid, TEE_LOGIN_PUBLIC, op, &s).result, TEE_ERROR_BAD_STATE);
}

class ThrowingTa : public ToyTa {
 public:
  TEE_Result invoke(void*, uint32_t, uint32_t, TEE_Param*) override {
    throw std::runtime_error("panic");
  }
};

TEST(TeeCore, AnExceptionFromATaIsTargetDead) {
  TeeCore core;
  ASSERT_EQ(core.register_ta(std::make_shared<ThrowingTa>()), TEE_SUCCESS);
  TeeCore::ClientId c = core.connect();
  Operation op;
  uint32_t s = 0;
  ASSERT_TRUE(core.open_session(c, kToyUuid, TEE_LOGIN_PUBLIC, op, &s).ok());
  TeeCore::Status st = core.invoke(c, s, 0, op);
  EXPECT_EQ(st.result, TEE_ERROR_TARGET_DEAD);
  EXPECT_EQ(st.origin, TEE_ORIGIN_TEE);
  EXPECT_TRUE(core.close_session(c, s).ok());
}

}  // namespace
}  // namespace rplayer::tee
