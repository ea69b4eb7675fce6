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

#include <stddef.h>
#include <stdint.h>
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

#endif
