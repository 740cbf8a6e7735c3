// The socket transport: one SOCK_SEQPACKET connection per context, one request/reply
// exchange at a time. Any I/O or framing failure poisons the connection (request/reply
// pairing can no longer be trusted) and every later call fails with COMMUNICATION.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "ipc/unix_message.h"
#include "tee/teec/transport.h"

namespace rplayer::teec {
namespace {

namespace wire = tee::wire;

CallStatus comms_error() { return {TEEC_ERROR_COMMUNICATION, TEEC_ORIGIN_COMMS}; }

class SocketTransport final : public Transport {
 public:
  explicit SocketTransport(int fd) : fd_(fd), rx_(wire::kMaxMessageBytes) {}
  ~SocketTransport() override { ::close(fd_); }

  size_t max_inline_bytes() const override { return wire::kMaxInlineBytes; }

  CallStatus register_shm(int fd, uint32_t* shm_id) override {
    wire::Header h = wire::make_header(wire::Op::kRegisterShm);
    wire::Header rep;
    std::vector<uint8_t> rep_payload;
    CallStatus st = call(h, {}, fd, &rep, &rep_payload);
    if (st.ok()) *shm_id = rep.shm_id;
    return st;
  }

  CallStatus release_shm(uint32_t shm_id) override {
    wire::Header h = wire::make_header(wire::Op::kReleaseShm);
    h.shm_id = shm_id;
    wire::Header rep;
    std::vector<uint8_t> rep_payload;
    return call(h, {}, -1, &rep, &rep_payload);
  }

  CallStatus open_session(const TEEC_UUID& uuid, uint32_t login, tee::Operation& op,
                          uint32_t* session_id) override {
    wire::Header h = wire::make_header(wire::Op::kOpenSession);
    static_assert(sizeof(uuid) == sizeof(h.uuid));
    std::memcpy(h.uuid, &uuid, sizeof(h.uuid));
    h.cmd = login;
    uint32_t session = 0;
    CallStatus st = call_with_params(h, op, &session);
    if (st.ok()) *session_id = session;
    return st;
  }

  CallStatus invoke(uint32_t session_id, uint32_t cmd, tee::Operation& op) override {
    wire::Header h = wire::make_header(wire::Op::kInvoke);
    h.session = session_id;
    h.cmd = cmd;
    return call_with_params(h, op, nullptr);
  }

  CallStatus close_session(uint32_t session_id) override {
    wire::Header h = wire::make_header(wire::Op::kCloseSession);
    h.session = session_id;
    wire::Header rep;
    std::vector<uint8_t> rep_payload;
    return call(h, {}, -1, &rep, &rep_payload);
  }

 private:
  CallStatus call_with_params(wire::Header& h, tee::Operation& op, uint32_t* session) {
    std::vector<uint8_t> payload;
    wire::encode_request_params(op, &h, &payload);
    wire::Header rep;
    std::vector<uint8_t> rep_payload;
    CallStatus st = call(h, payload, -1, &rep, &rep_payload);
    if (st.result == TEEC_ERROR_COMMUNICATION && st.origin == TEEC_ORIGIN_COMMS) return st;
    // Outputs are meaningful only if the TA ran (any TA result, e.g. SHORT_BUFFER).
    if (st.origin == TEEC_ORIGIN_TRUSTED_APP &&
        !wire::decode_reply_params(rep, rep_payload.data(), rep_payload.size(), &op)) {
      broken_ = true;
      return comms_error();
    }
    if (session) *session = rep.session;
    return st;
  }

  // One exchange. The reply's result/origin are returned; framing problems are COMMS errors.
  CallStatus call(wire::Header& h, const std::vector<uint8_t>& payload, int pass_fd,
                  wire::Header* rep, std::vector<uint8_t>* rep_payload) {
    std::lock_guard<std::mutex> lock(mu_);
    if (broken_) return comms_error();
    h.payload_bytes = static_cast<uint32_t>(payload.size());
    const iovec iov[2] = {{&h, sizeof(h)}, {const_cast<uint8_t*>(payload.data()), payload.size()}};
    const int passed[1] = {pass_fd};
    if (!ipc::send_message(fd_, {iov, payload.empty() ? 1u : 2u},
                           {passed, pass_fd >= 0 ? 1u : 0u})) {
      broken_ = true;
      return comms_error();
    }
    // The TEE never sends descriptors: any it did are closed.
    const ipc::Received got = ipc::recv_message(fd_, rx_.data(), rx_.size());
    const ssize_t n = got.bytes;
    if (n < static_cast<ssize_t>(sizeof(wire::Header)) || (got.flags & MSG_TRUNC)) {
      broken_ = true;
      return comms_error();
    }
    std::memcpy(rep, rx_.data(), sizeof(*rep));
    size_t body = static_cast<size_t>(n) - sizeof(wire::Header);
    if (rep->magic != wire::kMagic || rep->version != wire::kVersion || rep->op != h.op ||
        rep->payload_bytes != body) {
      broken_ = true;
      return comms_error();
    }
    rep_payload->assign(rx_.begin() + sizeof(wire::Header), rx_.begin() + n);
    return {rep->result, rep->origin};
  }

  int fd_;
  std::mutex mu_;
  bool broken_ = false;
  std::vector<uint8_t> rx_;
};

}  // namespace

std::unique_ptr<Transport> connect_socket(const std::string& path, CallStatus* status) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    *status = {TEEC_ERROR_BAD_PARAMETERS, TEEC_ORIGIN_API};
    return nullptr;
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *status = {TEEC_ERROR_COMMUNICATION, TEEC_ORIGIN_COMMS};
    return nullptr;
  }
  int rc;
  do {
    rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    ::close(fd);
    // As libteec when the TEE device is absent.
    *status = {TEEC_ERROR_ITEM_NOT_FOUND, TEEC_ORIGIN_COMMS};
    return nullptr;
  }
  *status = {};
  return std::make_unique<SocketTransport>(fd);
}

std::unique_ptr<Transport> socket_transport(int fd) {
  return std::make_unique<SocketTransport>(fd);
}

}  // namespace rplayer::teec
