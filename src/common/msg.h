/*
 * Message framing between vmd's processes and between vmctl and vmd.
 *
 * Every message is one SOCK_SEQPACKET record: a fixed header (type, payload
 * length, peer id, pid) and a payload of at most MSG_PAYLOAD_MAX bytes, with
 * up to MSG_MAX_FDS file descriptors attached by SCM_RIGHTS.  Sequenced
 * packets keep the boundaries, so a header and its payload and its
 * descriptors always arrive together, and a short or long record is refused
 * before anyone reads its payload.
 */
#ifndef VMD_MSG_H
#define VMD_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#define MSG_PAYLOAD_MAX (128 * 1024)
#define MSG_MAX_FDS	4

struct msg_header {
	uint32_t type;
	uint32_t len;	  /* payload bytes that follow the header */
	uint32_t peer_id; /* which client, VM or request this is about */
	int32_t pid;	  /* the sender's pid, for the logs */
};

struct msg {
	struct msg_header hdr;
	const uint8_t *data; /* hdr.len bytes inside the receive buffer */
	int fds[MSG_MAX_FDS];
	int nfds;
};

/* A receive buffer large enough for any message. */
struct msg_buf {
	uint8_t bytes[sizeof(struct msg_header) + MSG_PAYLOAD_MAX];
};

/*
 * Sends one message; blocks while the socket is full.  Returns 0, or -1
 * with errno set (EMSGSIZE: payload too large).
 */
int msg_send(int sock, uint32_t type, uint32_t peer_id, const void *data, size_t len,
	     const int *fds, int nfds);
/* As msg_send, but never blocks: -1 with EAGAIN when the peer is not reading. */
int msg_send_nowait(int sock, uint32_t type, uint32_t peer_id, const void *data, size_t len,
		    const int *fds, int nfds);

/*
 * Receives one message into buf.  Returns 1 with m filled in, 0 at end of
 * file, -1 with errno set: EAGAIN (nothing there), EBADMSG (a record that is
 * not a well-formed message: its descriptors are closed).  The caller owns
 * the descriptors in m->fds.
 */
int msg_recv(int sock, struct msg *m, struct msg_buf *buf);

/*
 * Parses a received record of len bytes: the header must be complete and
 * its length must match the record.  Returns 0 or -1.  (The fuzzer's way in.)
 */
int msg_parse(const uint8_t *record, size_t len, struct msg *m);

/* Closes every descriptor m carries. */
void msg_close_fds(struct msg *m);

/*
 * Takes descriptor i out of m (the caller now owns it), or -1 when the
 * message carries fewer.
 */
int msg_take_fd(struct msg *m, int i);

/*
 * A queue of messages waiting for a socket that is full: no process of vmd
 * ever blocks writing to another (a peer that stops reading would stop the
 * writer for good).  Each record is a copy of the header and payload and
 * duplicates of the descriptors, so the caller may close its own at once.
 * The limit is a number of records; a peer that lets its queue grow past it
 * is broken (a child) or hostile (a client).
 */
struct msg_record;

struct msg_queue {
	STAILQ_HEAD(, msg_record) records;
	size_t count;
	size_t limit;
};

void msg_queue_init(struct msg_queue *, size_t limit);
/*
 * Appends a message.  Returns 0, or -1 with errno set: ENOBUFS (the queue
 * holds its limit), EMSGSIZE, ENOMEM, EMFILE (a descriptor not duplicated).
 */
int msg_queue_push(struct msg_queue *, uint32_t type, uint32_t peer_id, const void *data,
		   size_t len, const int *fds, int nfds);
/*
 * Sends queued messages, oldest first, as far as sock takes them without
 * blocking.  Returns 0 when the queue is empty, 1 when some are left (wait
 * until sock is writable), -1 with errno set when the socket failed.
 */
int msg_queue_flush(struct msg_queue *, int sock);
bool msg_queue_empty(const struct msg_queue *);
/* Drops every queued message and closes its descriptors. */
void msg_queue_clear(struct msg_queue *);

/*
 * A socket's writing side for a libevent loop: msg_channel_send sends at
 * once when nothing is queued and the socket takes it, and otherwise queues
 * and flushes on EV_WRITE.  on_event(channel, 0, arg) says the queue has
 * drained; on_event(channel, errno, arg) says the socket failed while
 * flushing (the callback may free the channel).
 */
struct event;
struct event_base;

struct msg_channel {
	int fd;
	struct msg_queue queue;
	struct event *write_ev;
	void (*on_event)(struct msg_channel *, int error, void *arg);
	void *arg;
};

int msg_channel_init(struct msg_channel *, struct event_base *, int fd, size_t limit,
		     void (*on_event)(struct msg_channel *, int error, void *arg), void *arg);
/* 0 (sent or queued), or -1 with errno set (ENOBUFS: its queue is full). */
int msg_channel_send(struct msg_channel *, uint32_t type, uint32_t peer_id, const void *data,
		     size_t len, const int *fds, int nfds);
bool msg_channel_idle(const struct msg_channel *); /* nothing queued */
/* Frees the event and the queue; the socket stays open (the caller's). */
void msg_channel_release(struct msg_channel *);

#endif
