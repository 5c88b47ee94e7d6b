/* A pod sandbox's process for the CRI tests (Kubernetes' pause, which no registry here
 * can supply): holds the pod's namespaces until the sandbox is stopped. As pid 1 it
 * ignores signals it has no handler for, so it installs one for SIGTERM and SIGINT. */
#include <signal.h>
#include <unistd.h>

static void stop(int signal) {
    (void)signal;
    _exit(0);
}

int main(void) {
    signal(SIGTERM, stop);
    signal(SIGINT, stop);
    for (;;)
        pause();
}
