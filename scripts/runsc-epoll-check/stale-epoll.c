// Does a restored runsc report epoll events for registrations the process
// deleted before the checkpoint? (docs/runtime.md, Checkpoint and restore)
//
// One thread serves connections in an epoll loop whose registrations carry a
// pointer to a heap record, as tokio's do; a record is marked dead after
// EPOLL_CTL_DEL and close, and never freed, so a later event for it is seen.
// Client threads make CONNS connections (echo one byte, close), then idle.
//
//   stale-epoll tcp|unix [CONNS]
//
// Prints "tick N" every 100 ms; prints "STALE ..." and exits 3 when an event
// arrives for a deleted registration.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum { LIVE = 0x4c495645, DEAD = 0x44454144 };
struct record { uint32_t state; int fd; };

static int use_unix;
static int conns = 10;
static struct sockaddr_storage addr;
static socklen_t addr_len;

static int new_socket(int flags) {
    return socket(use_unix ? AF_UNIX : AF_INET, SOCK_STREAM | flags, 0);
}

static void *client(void *unused) {
    (void)unused;
    for (int i = 0; i < conns; i++) {
        int s = new_socket(SOCK_CLOEXEC);
        if (connect(s, (struct sockaddr *)&addr, addr_len) == 0) {
            char c = 'x';
            if (write(s, &c, 1) == 1) (void)read(s, &c, 1);
        }
        close(s);
        usleep(1000);
    }
    for (;;) pause();
    return NULL;
}

static long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static struct record *record(int fd) {
    struct record *r = malloc(sizeof *r);
    r->state = LIVE;
    r->fd = fd;
    return r;
}

int main(int argc, char **argv) {
    use_unix = argc > 1 && strcmp(argv[1], "unix") == 0;
    if (argc > 2) conns = atoi(argv[2]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (use_unix) {
        struct sockaddr_un *u = (struct sockaddr_un *)&addr;
        u->sun_family = AF_UNIX;
        memcpy(u->sun_path, "\0stale-epoll", 12);
        addr_len = offsetof(struct sockaddr_un, sun_path) + 12;
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&addr;
        in->sin_family = AF_INET;
        in->sin_port = htons(7777);
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr_len = sizeof *in;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int listener = new_socket(SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (bind(listener, (struct sockaddr *)&addr, addr_len) || listen(listener, 128)) {
        perror("listen");
        return 1;
    }
    struct record *lr = record(listener);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = lr};
    epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
    for (int i = 0; i < 2; i++) {
        pthread_t t;
        pthread_create(&t, NULL, client, NULL);
    }
    long ticks = 0, served = 0, last = now_ms();
    struct epoll_event ready[64];
    for (;;) {
        int n = epoll_wait(ep, ready, 64, 100);
        for (int i = 0; i < n; i++) {
            struct record *r = ready[i].data.ptr;
            if (r->state != LIVE) {
                printf("STALE event %#x for deleted fd %d\n", ready[i].events, r->fd);
                _exit(3);
            }
            if (r == lr) {
                int s;
                while ((s = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    struct epoll_event e = {
                        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                        .data.ptr = record(s),
                    };
                    epoll_ctl(ep, EPOLL_CTL_ADD, s, &e);
                }
                continue;
            }
            char buf[64];
            ssize_t got = read(r->fd, buf, sizeof buf);
            if (got > 0) {
                (void)write(r->fd, buf, 1);
                continue;
            }
            if (got < 0 && errno == EAGAIN && !(ready[i].events & (EPOLLHUP | EPOLLRDHUP | EPOLLERR)))
                continue;
            epoll_ctl(ep, EPOLL_CTL_DEL, r->fd, NULL);
            close(r->fd);
            r->state = DEAD;
            served++;
        }
        long t = now_ms();
        if (t - last >= 100) {
            last = t;
            printf("tick %ld served %ld\n", ++ticks, served);
        }
    }
}
