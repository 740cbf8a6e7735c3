// The secure-world process's seccomp sandbox. Entered after rplayer-tee has opened what it
// needs (listening socket, files, the stop pipe): from then on the process can serve clients
// on those descriptors, map memory (never executable), make threads, and nothing else. Any
// other syscall kills the whole process (SIGSYS), so a compromised TA or core cannot open
// files, make sockets, execute programs, fork, or map code.
#pragma once

#include <string>

namespace rplayer::tee {

struct SandboxOptions {
  // Debug aid: instead of killing silently, report "sandbox: blocked syscall N" on stderr
  // and _exit(159). Also enabled by RPLAYER_SANDBOX_DEBUG=1 in the environment.
  bool report_violations = false;
};

// Sets PR_SET_NO_NEW_PRIVS and loads the filter on every thread of the process (TSYNC).
// False with *error if the kernel or libseccomp cannot (nothing is enforced then: the caller
// must not go on serving).
bool enter_sandbox(std::string* error);
bool enter_sandbox(const SandboxOptions& options, std::string* error);

}  // namespace rplayer::tee
