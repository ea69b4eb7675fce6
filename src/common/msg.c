#include "common/msg.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static int
msg_send_flags(int sock, uint32_t type, uint32_t peer_id, const void *data, size_t len,
	       const int *fds, int nfds, int flags)
{
	struct msg_header hdr = { type, (uint32_t)len, peer_id, (int32_t)getpid() };
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * MSG_MAX_FDS)];
	} control;
	struct iovec iov[2] = { { &hdr, sizeof(hdr) }, { (void *)data, len } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = len > 0 ? 2 : 1 };
	ssize_t n;

	if (len > MSG_PAYLOAD_MAX || nfds < 0 || nfds > MSG_MAX_FDS) {
		errno = EMSGSIZE;
		return -1;
	}
	if (nfds > 0) {
		struct cmsghdr *cm;

		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	}
	do
		n = sendmsg(sock, &mh, flags | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	if ((size_t)n != sizeof(hdr) + len) {
		errno = EMSGSIZE; /* a seqpacket socket sends all or nothing */
		return -1;
	}
	return 0;
}

int
msg_send(int sock, uint32_t type, uint32_t peer_id, const void *data, size_t len, const int *fds,
	 int nfds)
{
	return msg_send_flags(sock, type, peer_id, data, len, fds, nfds, 0);
}

int
msg_send_nowait(int sock, uint32_t type, uint32_t peer_id, const void *data, size_t len,
		const int *fds, int nfds)
{
	return msg_send_flags(sock, type, peer_id, data, len, fds, nfds, MSG_DONTWAIT);
}

int
msg_parse(const uint8_t *record, size_t len, struct msg *m)
{
	if (len < sizeof(m->hdr))
		return -1;
	memcpy(&m->hdr, record, sizeof(m->hdr));
	if (m->hdr.len > MSG_PAYLOAD_MAX || m->hdr.len != len - sizeof(m->hdr))
		return -1;
	m->data = record + sizeof(m->hdr);
	return 0;
}

void
msg_close_fds(struct msg *m)
{
	for (int i = 0; i < m->nfds; i++)
		if (m->fds[i] >= 0)
			close(m->fds[i]);
	m->nfds = 0;
}

int
msg_take_fd(struct msg *m, int i)
{
	int fd;

	if (i < 0 || i >= m->nfds)
		return -1;
	fd = m->fds[i];
	m->fds[i] = -1;
	return fd;
}

/* Collects the descriptors of every SCM_RIGHTS message in mh. */
static void
msg_collect_fds(struct msghdr *mh, struct msg *m)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm != NULL; cm = CMSG_NXTHDR(mh, cm)) {
		size_t count;
		int fds[64];

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
		    cm->cmsg_len < CMSG_LEN(0))
			continue;
		count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (count > sizeof(fds) / sizeof(fds[0]))
			count = sizeof(fds) / sizeof(fds[0]);
		memcpy(fds, CMSG_DATA(cm), count * sizeof(int));
		for (size_t i = 0; i < count; i++) {
			if (m->nfds < MSG_MAX_FDS)
				m->fds[m->nfds++] = fds[i];
			else
				close(fds[i]); /* more than any message carries */
		}
	}
}

int
msg_recv(int sock, struct msg *m, struct msg_buf *buf)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 64)];
	} control;
	struct iovec iov = { buf->bytes, sizeof(buf->bytes) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			     .msg_controllen = sizeof(control.buf) };
	ssize_t n;

	memset(m, 0, sizeof(*m));
	do
		n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	msg_collect_fds(&mh, m);
	if (n == 0 && m->nfds == 0)
		return 0;
	if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || msg_parse(buf->bytes, (size_t)n, m) < 0) {
		msg_close_fds(m);
		errno = EBADMSG;
		return -1;
	}
	return 1;
}

struct msg_record {
	STAILQ_ENTRY(msg_record) entry;
	struct msg_header hdr;
	int fds[MSG_MAX_FDS];
	int nfds;
	uint8_t data[];
};

static void
msg_record_free(struct msg_record *r)
{
	for (int i = 0; i < r->nfds; i++)
		close(r->fds[i]);
	free(r);
}

void
msg_queue_init(struct msg_queue *q, size_t limit)
{
	STAILQ_INIT(&q->records);
	q->count = 0;
	q->limit = limit;
}

int
msg_queue_push(struct msg_queue *q, uint32_t type, uint32_t peer_id, const void *data,
	       size_t len, const int *fds, int nfds)
{
	struct msg_record *r;

	if (len > MSG_PAYLOAD_MAX || nfds < 0 || nfds > MSG_MAX_FDS) {
		errno = EMSGSIZE;
		return -1;
	}
	if (q->count >= q->limit) {
		errno = ENOBUFS;
		return -1;
	}
	if ((r = malloc(sizeof(*r) + len)) == NULL)
		return -1;
	r->hdr = (struct msg_header){ type, (uint32_t)len, peer_id, 0 };
	if (len > 0)
		memcpy(r->data, data, len);
	for (r->nfds = 0; r->nfds < nfds; r->nfds++) {
		r->fds[r->nfds] = fcntl(fds[r->nfds], F_DUPFD_CLOEXEC, 0);
		if (r->fds[r->nfds] < 0) {
			int saved = errno;

			msg_record_free(r);
			errno = saved;
			return -1;
		}
	}
	STAILQ_INSERT_TAIL(&q->records, r, entry);
	q->count++;
	return 0;
}

int
msg_queue_flush(struct msg_queue *q, int sock)
{
	struct msg_record *r;

	while ((r = STAILQ_FIRST(&q->records)) != NULL) {
		if (msg_send_nowait(sock, r->hdr.type, r->hdr.peer_id, r->data, r->hdr.len, r->fds,
				    r->nfds) < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -1;
		STAILQ_REMOVE_HEAD(&q->records, entry);
		q->count--;
		msg_record_free(r);
	}
	return 0;
}

bool
msg_queue_empty(const struct msg_queue *q)
{
	return STAILQ_EMPTY(&q->records);
}

void
msg_queue_clear(struct msg_queue *q)
{
	struct msg_record *r;

	while ((r = STAILQ_FIRST(&q->records)) != NULL) {
		STAILQ_REMOVE_HEAD(&q->records, entry);
		msg_record_free(r);
	}
	q->count = 0;
}

static void
msg_channel_on_writable(evutil_socket_t fd, short what, void *arg)
{
	struct msg_channel *ch = arg;
	int rc = msg_queue_flush(&ch->queue, ch->fd);

	if (rc == 1)
		return; /* EV_PERSIST: called again when it drains further */
	event_del(ch->write_ev);
	if (ch->on_event)
		ch->on_event(ch, rc == 0 ? 0 : (errno ? errno : EIO), ch->arg);
}

int
msg_channel_init(struct msg_channel *ch, struct event_base *base, int fd, size_t limit,
		 void (*on_event)(struct msg_channel *, int error, void *arg), void *arg)
{
	ch->fd = fd;
	ch->on_event = on_event;
	ch->arg = arg;
	msg_queue_init(&ch->queue, limit);
	ch->write_ev = event_new(base, fd, EV_WRITE | EV_PERSIST, msg_channel_on_writable, ch);
	return ch->write_ev == NULL ? -1 : 0;
}

int
msg_channel_send(struct msg_channel *ch, uint32_t type, uint32_t peer_id, const void *data,
		 size_t len, const int *fds, int nfds)
{
	/* Straight out when nothing waits before it (order is kept). */
	if (msg_queue_empty(&ch->queue)) {
		if (msg_send_nowait(ch->fd, type, peer_id, data, len, fds, nfds) == 0)
			return 0;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
	}
	if (msg_queue_push(&ch->queue, type, peer_id, data, len, fds, nfds) < 0)
		return -1;
	if (ch->queue.count == 1 && event_add(ch->write_ev, NULL) < 0)
		return -1;
	return 0;
}

bool
msg_channel_idle(const struct msg_channel *ch)
{
	return msg_queue_empty(&ch->queue);
}

void
msg_channel_release(struct msg_channel *ch)
{
	if (ch->write_ev) {
		event_free(ch->write_ev);
		ch->write_ev = NULL;
	}
	msg_queue_clear(&ch->queue);
}
