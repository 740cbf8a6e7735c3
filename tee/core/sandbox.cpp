#include "tee/core/sandbox.h"

#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace rplayer::tee {
namespace {

// Plain syscalls a running server needs. Arch-specific ones (poll, epoll_wait, ...) are
// skipped where they do not exist.
const char* const kAllowed[] = {
    // I/O on descriptors opened before the sandbox.
    "read", "write", "readv", "writev", "recvmsg", "sendmsg", "accept4", "close",
    "shutdown", "lseek", "fcntl", "fstat",
    // Memory (mmap/mprotect are filtered on PROT_EXEC below).
    "munmap", "mremap", "madvise", "brk",
    // Threads and synchronization (clone is filtered on CLONE_THREAD below).
    "futex", "set_robust_list", "rseq", "sched_yield", "sched_getaffinity",
    // Time and waiting.
    "clock_gettime", "clock_nanosleep", "nanosleep", "gettimeofday", "restart_syscall",
    "poll", "ppoll", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2",
    // Process basics: exit, signals, ids. rt_sigaction: glibc installs its thread-cancel
    // handler on the first pthread_create; a handler cannot outlive a KILL_PROCESS verdict.
    "exit", "exit_group", "rt_sigreturn", "rt_sigprocmask", "rt_sigaction", "sigaltstack",
    "getpid", "gettid",
    "getrandom",
};

int resolve(const char* name) { return seccomp_syscall_resolve_name(name); }

void report_sigsys(int, siginfo_t* info, void*) {
  // Async-signal-safe: format the number by hand.
  char buf[64] = "sandbox: blocked syscall ";
  size_t len = std::strlen(buf);
  int nr = info->si_syscall;
  char digits[12];
  int d = 0;
  if (nr < 0) nr = 0;
  do {
    digits[d++] = static_cast<char>('0' + nr % 10);
    nr /= 10;
  } while (nr && d < 11);
  while (d) buf[len++] = digits[--d];
  buf[len++] = '\n';
  ssize_t ignored = ::write(2, buf, len);
  (void)ignored;
  ::_exit(159);
}

}  // namespace

bool enter_sandbox(std::string* error) {
  SandboxOptions options;
  const char* env = std::getenv("RPLAYER_SANDBOX_DEBUG");
  options.report_violations = env && *env && std::strcmp(env, "0") != 0;
  return enter_sandbox(options, error);
}

bool enter_sandbox(const SandboxOptions& options, std::string* error) {
  // KILL_PROCESS needs API level 3 (kernel >= 4.14): without it a violating thread would die
  // alone and leave the process in an unknown state.
  if (seccomp_api_get() < 3) {
    *error = "seccomp: SCMP_ACT_KILL_PROCESS unsupported (libseccomp API level < 3)";
    return false;
  }
  uint32_t deny = SCMP_ACT_KILL_PROCESS;
  if (options.report_violations) {
    struct sigaction sa {};
    sa.sa_sigaction = report_sigsys;
    sa.sa_flags = SA_SIGINFO;
    if (::sigaction(SIGSYS, &sa, nullptr) != 0) {
      *error = "sigaction(SIGSYS) failed";
      return false;
    }
    deny = SCMP_ACT_TRAP;
  }
  // Required for an unprivileged filter; also stops any privilege gain via exec.
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    *error = std::string("prctl(PR_SET_NO_NEW_PRIVS): ") + std::strerror(errno);
    return false;
  }
  scmp_filter_ctx ctx = seccomp_init(deny);
  if (!ctx) {
    *error = "seccomp_init failed";
    return false;
  }
  int rc = 0;
  auto fail = [&](const char* what) {
    *error = std::string("seccomp: ") + what + ": " + std::strerror(-rc);
    seccomp_release(ctx);
    return false;
  };
  // Foreign-ABI syscalls (e.g. int 0x80 on x86_64) are denied too.
  if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, deny)) < 0) return fail("badarch");
  // Every thread, not just the caller: the server may already run some.
  if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) < 0) return fail("tsync");

  for (const char* name : kAllowed) {
    int nr = resolve(name);
    if (nr < 0) continue;  // not a syscall on this architecture
    if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0)) < 0) return fail(name);
  }
  // Memory may be mapped or re-protected, never executable: no new code in this process.
  for (const char* name : {"mmap", "mprotect"}) {
    int nr = resolve(name);
    if (nr < 0) continue;
    if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
                               SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0))) < 0)
      return fail(name);
  }
  // fstat() is newfstatat(fd, "", st, AT_EMPTY_PATH) in glibc. seccomp cannot read the
  // path, so a non-empty path still stats (not opens) a file: metadata only.
  if (int nr = resolve("newfstatat"); nr >= 0) {
    if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
                               SCMP_A3(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, AT_EMPTY_PATH))) < 0)
      return fail("newfstatat");
  }
  // Threads only: CLONE_THREAD set (fork/vfork/posix_spawn lack it and are killed). The
  // flags are argument 0 on x86_64 and aarch64.
  if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                             SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD))) < 0)
    return fail("clone");
  // clone3 passes its flags in memory, which seccomp cannot inspect: ENOSYS makes glibc fall
  // back to clone, which is filtered above.
  if (int nr = resolve("clone3"); nr >= 0) {
    if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0)) < 0) return fail("clone3");
  }
  // prctl only to set the calling thread's timer slack (precise sleeps in register polls).
  if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
                             SCMP_A0(SCMP_CMP_EQ, PR_SET_TIMERSLACK))) < 0)
    return fail("prctl");
  // abort() signals its own process only.
  if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
                             SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(::getpid())))) < 0)
    return fail("tgkill");

  if ((rc = seccomp_load(ctx)) < 0) return fail("load");
  seccomp_release(ctx);
  return true;
}

}  // namespace rplayer::tee
