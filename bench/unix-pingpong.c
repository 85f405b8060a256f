/* The floor under any NBD server at queue depth 1 on this machine: a 4 KiB request and a 16-byte reply over a
 * unix stream socket between two processes, strictly one at a time (what a write + reply costs with nothing
 * done in the server). Prints the mean round trip in microseconds.
 *   cc -O2 -o /tmp/unix-pingpong bench/unix-pingpong.c && /tmp/unix-pingpong [ROUND_TRIPS] [--busy-poll]
 * --busy-poll: the server spins on a non-blocking receive instead of sleeping in recv (no wake-up cost). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void read_exactly(int fd, char *buffer, size_t length, int busy)
{
    size_t done = 0;
    while (done < length) {
        ssize_t n = recv(fd, buffer + done, length - done, busy ? MSG_DONTWAIT : 0);
        if (n > 0) { done += (size_t)n; continue; }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        exit(n == 0 ? 0 : 1);
    }
}

int main(int argc, char **argv)
{
    long trips = argc > 1 ? atol(argv[1]) : 100000;
    int busy = argc > 2 && strcmp(argv[2], "--busy-poll") == 0;
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) { perror("socketpair"); return 1; }
    static char request[4096 + 28], reply[16];
    if (fork() == 0) { /* the server: read a request, send a reply */
        close(fds[0]);
        for (;;) { read_exactly(fds[1], request, sizeof request, busy); if (send(fds[1], reply, sizeof reply, 0) < 0) return 1; }
    }
    close(fds[1]);
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = 0; i < trips; i++) {
        if (send(fds[0], request, sizeof request, 0) < 0) { perror("send"); return 1; }
        read_exactly(fds[0], reply, sizeof reply, 0);
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    close(fds[0]);
    wait(NULL);
    double us = ((end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec)) / 1e3 / trips;
    printf("%.1f us per round trip (%ld round trips%s)\n", us, trips, busy ? ", server busy-polling" : "");
    return 0;
}
