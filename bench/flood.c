// SPDX-License-Identifier: GPL-2.0
/*
 * droptrace bench drop generator: a UDP flood from a connected socket with sendmmsg, batches
 * of 256 datagrams of 32 bytes, for a fixed time. Compiled by bench/run.mjs into a temporary
 * directory at bench time (never committed as a binary) and run inside the sender namespace.
 *
 *   flood <dst-ipv4> <dst-port> <seconds> [cpu] [flows]
 *
 * flows > 1: datagram i goes to port dst-port + (i % flows), from one unconnected socket: that
 * many distinct flows, each a key of its own in droptrace's per-key counters (the incident
 * shape: conntrack full drops every new connection, each its own flow). Unconnected sends
 * cost more per datagram than connected ones, so compare only runs made with the same flows.
 *
 * Prints one JSON object on stdout: {"sent":N,"calls":N,"errors":N,"seconds":S,"cpu_s":S}
 * (cpu_s: its own user + system time, softirq work done on its behalf included).
 * Send errors (ENOBUFS and the like) are counted and the loop goes on: the generator's job is
 * to offer as many packets as the machine takes.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 256
#define PAYLOAD 32

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: flood <dst-ipv4> <dst-port> <seconds> [cpu] [flows]\n");
		return 2;
	}
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2])) };
	if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1) {
		fprintf(stderr, "flood: bad address %s\n", argv[1]);
		return 2;
	}
	double seconds = atof(argv[3]);
	if (argc > 4 && atoi(argv[4]) >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(atoi(argv[4]), &set);
		if (sched_setaffinity(0, sizeof(set), &set) != 0) perror("flood: sched_setaffinity");
	}

	long flows = argc > 5 ? atol(argv[5]) : 1;
	int base = ntohs(dst.sin_port);
	if (flows < 1 || base + flows - 1 > 65535) {
		fprintf(stderr, "flood: flows must be 1..%d for port %d\n", 65536 - base, base);
		return 2;
	}
	struct sockaddr_in *dsts = NULL;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || (flows == 1 && connect(fd, (struct sockaddr *)&dst, sizeof(dst)) != 0)) {
		perror("flood: socket/connect");
		return 1;
	}
	if (flows > 1) {
		dsts = calloc((size_t)flows, sizeof(*dsts));
		if (!dsts) {
			perror("flood: calloc");
			return 1;
		}
		for (long i = 0; i < flows; i++) {
			dsts[i] = dst;
			dsts[i].sin_port = htons((unsigned short)(base + i));
		}
	}

	static char payload[PAYLOAD];
	memcpy(payload, "droptrace-bench-flood-payload---", PAYLOAD);
	static struct iovec iov[BATCH];
	static struct mmsghdr msgs[BATCH];
	for (int i = 0; i < BATCH; i++) {
		iov[i].iov_base = payload;
		iov[i].iov_len = PAYLOAD;
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}

	unsigned long long sent = 0, calls = 0, errors = 0;
	long next = 0;
	double start = now_s(), end = start + seconds, t = start;
	while (t < end) {
		if (dsts) {
			for (int i = 0; i < BATCH; i++) {
				msgs[i].msg_hdr.msg_name = &dsts[next];
				msgs[i].msg_hdr.msg_namelen = sizeof(*dsts);
				if (++next == flows)
					next = 0;
			}
		}
		/* one vDSO clock read per batch of 256 datagrams: noise next to ~0.5 ms of sending */
		int n = sendmmsg(fd, msgs, BATCH, 0);
		calls++;
		if (n > 0)
			sent += (unsigned long long)n;
		else
			errors++;
		t = now_s();
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
		     (double)ru.ru_stime.tv_usec / 1e6;
	printf("{\"sent\":%llu,\"calls\":%llu,\"errors\":%llu,\"seconds\":%.6f,\"cpu_s\":%.3f}\n", sent, calls, errors,
	       t - start, cpu);
	close(fd);
	free(dsts);
	return 0;
}
