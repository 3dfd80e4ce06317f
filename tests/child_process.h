// A child process for tests that drive the programs as a black box (kill them mid-step, stop
// their daemon): stdout and stderr go to `log`; killed (after SIGCONT) on destruction if still
// running. Used by tests/rl/trainer_test.cpp and tests/rl/hardening_test.cpp.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace strata::testing {

class ChildProcess {
 public:
  // argv[0] is the program's path; `env` entries ("K=V") come before the inherited environment.
  ChildProcess(const std::vector<std::string>& argv, const std::string& log,
               const std::vector<std::string>& env = {}) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<std::string> env_s(env);
    for (char** e = environ; *e != nullptr; ++e) env_s.emplace_back(*e);
    std::vector<char*> envp;
    for (auto& e : env_s) envp.push_back(e.data());
    envp.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    if (posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), envp.data()) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
  }
  ~ChildProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGCONT);
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  void signal(int sig) const {
    if (pid_ > 0) ::kill(pid_, sig);
  }
  // Exit status when it has ended (-1 while running; 128+N when killed by signal N; -2 when it
  // never started).
  int poll() {
    if (pid_ < 0) return status_;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) != pid_) return -1;
    pid_ = -1;
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return status_;
  }
  // Waits at most `timeout_s` (forever when negative); -1 when it is still running then.
  int wait(double timeout_s = -1) {
    const auto t0 = std::chrono::steady_clock::now();
    for (;;) {
      const int rc = poll();
      if (rc != -1) return rc;
      if (timeout_s >= 0 &&
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > timeout_s)
        return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

 private:
  pid_t pid_ = -1;
  int status_ = -2;
};

}  // namespace strata::testing
