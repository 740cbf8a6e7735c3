#include "link/tcp.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace rplayer::link {

bool parse_endpoint(const std::string& s, uint32_t* addr_be, uint16_t* port, std::string* err) {
  const size_t colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size()) {
    *err = "'" + s + "' is not HOST:PORT";
    return false;
  }
  const std::string host = s.substr(0, colon), p = s.substr(colon + 1);
  if (p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(p) > 65535) {
    *err = "'" + p + "' is not a port number";
    return false;
  }
  *port = uint16_t(std::stoul(p));
  in_addr in{};
  if (host == "localhost") {
    in.s_addr = htonl(INADDR_LOOPBACK);
  } else if (inet_pton(AF_INET, host.c_str(), &in) != 1) {
    *err = "'" + host + "' is not an IPv4 address";
    return false;
  }
  *addr_be = in.s_addr;
  return true;
}

int listen_tcp(const std::string& endpoint, uint16_t* bound_port, std::string* err) {
  uint32_t a;
  uint16_t port;
  if (!parse_endpoint(endpoint, &a, &port, err)) return -1;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return *err = std::strerror(errno), -1;
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = a;
  sa.sin_port = htons(port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd, 16) != 0) {
    *err = endpoint + ": " + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  socklen_t len = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  if (bound_port) *bound_port = ntohs(sa.sin_port);
  return fd;
}

int connect_tcp(const std::string& endpoint, int timeout_ms, std::string* err) {
  uint32_t a;
  uint16_t port;
  if (!parse_endpoint(endpoint, &a, &port, err)) return -1;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return *err = std::strerror(errno), -1;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = a;
  sa.sin_port = htons(port);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  if (rc != 0 && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    rc = ::poll(&p, 1, timeout_ms);
    int so = 0;
    socklen_t sl = sizeof so;
    if (rc == 1 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl) == 0 && so == 0)
      rc = 0;
    else
      errno = rc == 0 ? ETIMEDOUT : (so ? so : errno), rc = -1;
  }
  if (rc != 0) {
    *err = endpoint + ": " + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

}  // namespace rplayer::link
