/*
 * link.c — an object to an executable (or a shared object, for tests) by
 * running the system C compiler: `cc obj liblobe_rt.a DATA-LIBS -lopenblas
 * -lm -lpthread -o out`, DATA-LIBS being the data readers' libraries (EDFlib,
 * matio, HDF5, NIfTI, libzip) as found at build time. The compiler is $LOBE_CC or `cc`, started with
 * posix_spawnp and an argument vector (no shell, so any path works); its
 * output is captured for the error message.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"

extern char **environ;

enum { MAX_ARGS = 64, MAX_DATA_LIBS = 40 };

/* A lobec built with the sanitizers (LOBE_SANITIZE) finds the runtime of its
 * own build tree, which is instrumented too, so executables need the
 * sanitizer runtimes linked in. */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZE_FLAGS "-fsanitize=address,undefined"
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZE_FLAGS "-fsanitize=address,undefined"
#endif
#endif

static bool is_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* <folder of the running program>/../lib/liblobe_rt.a: right for an
 * installed lobec (bin/, lib/) and for the build tree alike. */
static bool runtime_beside_exe(char *buf, int buflen) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0)
    return false;
  exe[n] = 0;
  char *slash = strrchr(exe, '/');
  if (!slash)
    return false;
  *slash = 0;
  return snprintf(buf, buflen, "%s/../lib/liblobe_rt.a", exe) < buflen && is_file(buf);
}

/* $LOBE_RT_LIB, else beside the program, else where the build put it. */
static int find_runtime(char *buf, int buflen, char *err, int errlen) {
  const char *env = getenv("LOBE_RT_LIB");
  if (env && *env) {
    if (!is_file(env)) {
      snprintf(err, errlen, "LOBE_RT_LIB=%s: no such file", env);
      return -1;
    }
    snprintf(buf, buflen, "%s", env);
    return 0;
  }
  if (runtime_beside_exe(buf, buflen))
    return 0;
  if (is_file(LOBE_RT_LIB)) {
    snprintf(buf, buflen, "%s", LOBE_RT_LIB);
    return 0;
  }
  snprintf(err, errlen,
           "cannot find the runtime library liblobe_rt.a (not in ../lib beside "
           "this program nor at %s); set LOBE_RT_LIB to its path", LOBE_RT_LIB);
  return -1;
}

/* Reads fd to its end, keeping what fits in buf (NUL-terminated). */
static void drain(int fd, char *buf, size_t size) {
  size_t len = 0;
  char chunk[1024];
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    size_t keep = (size_t)n < size - 1 - len ? (size_t)n : size - 1 - len;
    memcpy(buf + len, chunk, keep);
    len += keep;
  }
  while (len > 0 && buf[len - 1] == '\n')
    len--;
  buf[len] = 0;
}

static int wait_child(pid_t pid) {
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return -1;
  return status;
}

/* Runs argv with stdout and stderr into a pipe; on failure describes the
 * exit status and the output in err. */
static int run(char *const *argv, char *err, int errlen) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    snprintf(err, errlen, "cannot run %s: %s", argv[0], strerror(errno));
    return -1;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &actions, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    snprintf(err, errlen, "cannot run the C compiler '%s': %s (set LOBE_CC)", argv[0],
             strerror(rc));
    return -1;
  }
  char output[2048];
  drain(fds[0], output, sizeof output);
  close(fds[0]);
  int status = wait_child(pid);
  if (status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return 0;
  if (status >= 0 && WIFSIGNALED(status))
    snprintf(err, errlen, "linking failed: %s killed by signal %d\n%s", argv[0],
             WTERMSIG(status), output);
  else
    snprintf(err, errlen, "linking failed: %s exited with status %d\n%s", argv[0],
             status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1, output);
  return -1;
}

/* -L for the OpenBLAS found at build time, in case it sits outside the
 * compiler's default search path. */
static bool openblas_dir(char *buf, int buflen) {
  snprintf(buf, buflen, "-L%s", LOBE_OPENBLAS_LIB);
  char *slash = strrchr(buf, '/');
  if (!slash || slash == buf + 2)
    return false;
  *slash = 0;
  return true;
}

/* Splits LOBE_DATA_LIBS ('|'-separated, as CMake gives it) into argv. The
 * copy in buf must live as long as argv. */
static int data_libs(char *buf, size_t buflen, const char **argv, int n) {
  snprintf(buf, buflen, "%s", LOBE_DATA_LIBS);
  for (char *lib = strtok(buf, "|"); lib && n < MAX_DATA_LIBS; lib = strtok(NULL, "|"))
    argv[n++] = lib;
  return n;
}

int link_executable(const char *obj_path, const char *out_path, bool shared,
                    char *err, int errlen) {
  char runtime[PATH_MAX], blas_dir[PATH_MAX], libs[4096];
  if (!shared && find_runtime(runtime, sizeof runtime, err, errlen) != 0)
    return -1;
  const char *cc = getenv("LOBE_CC");
  const char *argv[MAX_ARGS];
  int n = 0;
  argv[n++] = cc && *cc ? cc : "cc";
  argv[n++] = obj_path;
  if (shared)
    argv[n++] = "-shared";
  else {
    argv[n++] = runtime;
    n = data_libs(libs, sizeof libs, argv, n);
  }
#ifdef SANITIZE_FLAGS
  if (!shared)
    argv[n++] = SANITIZE_FLAGS;
#endif
  if (openblas_dir(blas_dir, sizeof blas_dir))
    argv[n++] = blas_dir;
  argv[n++] = "-lopenblas";
  argv[n++] = "-lm";
  argv[n++] = "-lpthread";
  argv[n++] = "-o";
  argv[n++] = out_path;
  argv[n] = NULL;
  return run((char *const *)argv, err, errlen);
}
