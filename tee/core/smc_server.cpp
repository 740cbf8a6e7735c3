#include "tee/core/smc_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "ipc/unix_message.h"

namespace rplayer::tee {

struct SmcServer::Reply {
  wire::Header header;
  std::vector<uint8_t> payload;
};

SmcServer::SmcServer(TeeCore& core, Options options) : core_(core), options_(options) {
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) wake_[0] = wake_[1] = -1;
}

SmcServer::~SmcServer() {
  stop();
  reap_workers(true);
  if (listen_fd_ >= 0) ::close(listen_fd_);
  for (int fd : wake_)
    if (fd >= 0) ::close(fd);
}

bool SmcServer::listen(const std::string& path, std::string* error) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    *error = "socket path empty or too long: " + path;
    return false;
  }
  if (wake_[0] < 0) {
    *error = "pipe2 failed";
    return false;
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
  int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd, 16) != 0) {
    *error = "bind/listen " + path + ": " + std::strerror(errno);
    ::close(fd);
    return false;
  }
  listen_fd_ = fd;
  return true;
}

void SmcServer::reap_workers(bool all) {
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (all || (*it)->done.load()) {
      (*it)->thread.join();
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
}

void SmcServer::run() {
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) break;
    }
    reap_workers(false);
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    int r = ::poll(fds, 2, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents) break;
    if (!(fds[0].revents & POLLIN)) {
      if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) break;
      continue;
    }
    int cfd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (cfd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == ENOBUFS) {
        timespec ts{0, 10 * 1000 * 1000};  // out of descriptors: do not spin
        ::nanosleep(&ts, nullptr);
      }
      continue;
    }
    if (workers_.size() >= options_.max_clients) {
      ::close(cfd);
      continue;
    }
    auto w = std::make_unique<Worker>();
    Worker* wp = w.get();
    workers_.push_back(std::move(w));
    wp->thread = std::thread([this, cfd, wp] {
      serve_fd(cfd);
      wp->done = true;
    });
  }
  stop();
  reap_workers(true);
}

void SmcServer::stop() {
  std::lock_guard<std::mutex> lock(mu_);
  stopping_ = true;
  for (int fd : active_fds_) ::shutdown(fd, SHUT_RDWR);
  if (wake_[1] >= 0) {
    char c = 1;
    ssize_t ignored = ::write(wake_[1], &c, 1);
    (void)ignored;
  }
}

void SmcServer::serve_fd(int fd) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      ::close(fd);
      return;
    }
    active_fds_.insert(fd);
  }
  TeeCore::ClientId client = core_.connect();
  std::vector<uint8_t> rx(wire::kMaxMessageBytes);
  Reply reply;
  for (;;) {
    int fds[ipc::kMaxFds];
    const ipc::Received got = ipc::recv_message(fd, rx.data(), rx.size(), fds, ipc::kMaxFds);
    if (got.bytes <= 0) break;  // peer gone (or stop())
    const std::vector<int> passed(fds, fds + got.nfds);
    handle(client, rx.data(), static_cast<size_t>(got.bytes),
           got.flags | (got.dropped_fds ? MSG_CTRUNC : 0), passed, &reply);
    for (int rfd : passed) ::close(rfd);  // a registered region stays mapped without its fd

    const iovec out[2] = {{&reply.header, sizeof(reply.header)},
                          {reply.payload.data(), reply.payload.size()}};
    const bool sent = ipc::send_message(fd, {out, reply.payload.empty() ? 1u : 2u});
    if (!sent) break;  // EPIPE etc.: the client died, possibly during the call
  }
  // Sessions are closed only now, after any invocation of this client returned.
  core_.disconnect(client);
  std::lock_guard<std::mutex> lock(mu_);
  active_fds_.erase(fd);
  ::close(fd);
}

void SmcServer::handle(TeeCore::ClientId client, const uint8_t* msg, size_t n, int msg_flags,
                       const std::vector<int>& fds, Reply* reply) {
  wire::Header& rep = reply->header;
  rep = wire::make_header(static_cast<wire::Op>(0));
  reply->payload.clear();
  auto fail = [&](TEE_Result r, uint32_t origin) {
    rep.result = r;
    rep.origin = origin;
  };
  if (n < sizeof(wire::Header)) return fail(TEE_ERROR_BAD_FORMAT, TEE_ORIGIN_COMMS);
  wire::Header h;
  std::memcpy(&h, msg, sizeof(h));
  rep.op = h.op;
  if ((msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || h.magic != wire::kMagic ||
      h.version != wire::kVersion || h.payload_bytes != n - sizeof(wire::Header))
    return fail(TEE_ERROR_BAD_FORMAT, TEE_ORIGIN_COMMS);
  auto op = static_cast<wire::Op>(h.op);
  if (!fds.empty() && op != wire::Op::kRegisterShm)
    return fail(TEE_ERROR_BAD_FORMAT, TEE_ORIGIN_COMMS);
  const uint8_t* payload = msg + sizeof(wire::Header);
  size_t payload_n = h.payload_bytes;

  TeeCore::Status st;
  switch (op) {
    case wire::Op::kOpenSession:
    case wire::Op::kInvoke: {
      Operation o;
      TEE_Result r = wire::decode_request_params(h, payload, payload_n, &o);
      if (r != TEE_SUCCESS) return fail(r, TEE_ORIGIN_TEE);
      if (op == wire::Op::kOpenSession) {
        TEE_UUID uuid;
        std::memcpy(&uuid, h.uuid, sizeof(uuid));
        uint32_t sid = 0;
        st = core_.open_session(client, uuid, h.cmd, o, &sid);
        if (st.ok()) rep.session = sid;
      } else {
        st = core_.invoke(client, h.session, h.cmd, o);
        rep.session = h.session;
      }
      if (st.origin == TEE_ORIGIN_TRUSTED_APP) wire::encode_reply_params(o, &rep, &reply->payload);
      break;
    }
    case wire::Op::kCloseSession:
      st = core_.close_session(client, h.session);
      rep.session = h.session;
      break;
    case wire::Op::kRegisterShm: {
      if (fds.size() != 1) return fail(TEE_ERROR_BAD_PARAMETERS, TEE_ORIGIN_TEE);
      TEE_Result err = TEE_SUCCESS;
      auto region = SharedRegion::map_fd(fds[0], core_.limits().max_shm_bytes, &err);
      if (!region) return fail(err, TEE_ORIGIN_TEE);
      uint32_t id = 0;
      st = core_.register_shm(client, std::move(region), &id);
      if (st.ok()) rep.shm_id = id;
      break;
    }
    case wire::Op::kReleaseShm:
      st = core_.release_shm(client, h.shm_id);
      rep.shm_id = h.shm_id;
      break;
    default:
      return fail(TEE_ERROR_BAD_FORMAT, TEE_ORIGIN_COMMS);
  }
  rep.result = st.result;
  rep.origin = st.origin;
  rep.payload_bytes = static_cast<uint32_t>(reply->payload.size());
}

}  // namespace rplayer::tee
