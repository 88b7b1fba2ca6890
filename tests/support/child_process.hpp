// Test support: children started by a test die with it, also when the test
// crashes before its destructors run.
#pragma once

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

namespace aether::test {

// Call in the child between fork() and exec(); `parent` is getpid() of the
// parent taken before fork().
inline void die_with_parent(pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(1);  // the parent is already gone
}

}  // namespace aether::test
