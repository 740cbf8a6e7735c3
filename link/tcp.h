// TCP endpoints for the cloud link: "HOST:PORT" (IPv4 dotted quad or "localhost"; port 0
// when listening: any free port), listening and connecting with bounded waits. Errors come
// back as text; nothing throws.
#pragma once

#include <cstdint>
#include <string>

namespace rplayer::link {

bool parse_endpoint(const std::string& s, uint32_t* addr_be, uint16_t* port, std::string* err);
// A listening socket; *bound_port gets the port (useful with port 0). -1 on error.
int listen_tcp(const std::string& endpoint, uint16_t* bound_port, std::string* err);
// A connected socket (TCP_NODELAY: frames are small and latency-bound). -1 on error.
int connect_tcp(const std::string& endpoint, int timeout_ms, std::string* err);

}  // namespace rplayer::link
