/*
 * iotp_device.c - the device engine (contract and state diagram in iotp_device.h).
 *
 * Every way a session ends goes through end_session(), which moves to CLOSING and notes CLOSE
 * once; the port's iotp_device_transport_down() then picks the backoff. Code that sends or
 * notes checks the state afterwards, because a note callback may have closed the connection
 * (transport_down from inside it) and a failed send ends the session.
 *
 * Frames received while online are dispatched by enum iotp_type from one table; application
 * types go to the handler table the caller registered, found by name.
 */
#include "iotp/iotp_device.h"

#include <string.h>

#include "iotp/iotp_error.h"

static uint64_t clock_ms(const struct iotp_device *dev)
{
    return dev->platform.clock.now_ms(dev->platform.clock.ctx);
}

/* Deadlines are kept in 32-bit milliseconds and compared modulo 2^32 (good for delays under
 * 24 days): on a Cortex-M0 every 64-bit comparison and addition is a call or a sequence. */
static uint32_t now_ms(const struct iotp_device *dev)
{
    return (uint32_t)clock_ms(dev);
}

/* Whether deadline has come at now. */
static int reached(uint32_t now, uint32_t deadline)
{
    return (int32_t)(now - deadline) >= 0;
}

/* With IOTP_DEVICE_NOTES 0 this is empty, and the compiler drops the building of each note
 * with it (what a note carries that the engine itself needs is computed outside it). */
static void note(struct iotp_device *dev, struct iotp_device_note *n)
{
#if IOTP_DEVICE_NOTES
    if (dev->params.note)
        dev->params.note(dev->params.note_ctx, dev, n);
#else
    (void)dev;
    (void)n;
#endif
}

static void note_simple(struct iotp_device *dev, enum iotp_device_note_kind kind, uint32_t id,
                        uint32_t value)
{
    struct iotp_device_note n;

    memset(&n, 0, sizeof(n));
    n.kind = kind;
    n.id = id;
    n.value = value;
    note(dev, &n);
}

static int in_session(const struct iotp_device *dev)
{
    return dev->state == IOTP_DEVICE_HANDSHAKE || dev->state == IOTP_DEVICE_ONLINE;
}

/* End the session once: CLOSING, then the note (whose callback may already call
 * transport_down). n carries the reason; kind and was are filled in here. */
static void end_session(struct iotp_device *dev, struct iotp_device_note *n)
{
    if (dev->state != IOTP_DEVICE_CONNECTING && !in_session(dev))
        return;
    n->kind = IOTP_DEVICE_NOTE_CLOSE;
    n->was = dev->state;
    dev->state = IOTP_DEVICE_CLOSING;
    note(dev, n);
}

static void end_session_error(struct iotp_device *dev, int error)
{
    struct iotp_device_note n;

    memset(&n, 0, sizeof(n));
    n.error = error;
    end_session(dev, &n);
}

/* Put len bytes of tx (or of another frame) on the connection; a failure ends the session. */
static int send_bytes(struct iotp_device *dev, const uint8_t *buf, size_t len)
{
    int r = iotp_transport_send_all(&dev->platform.transport, buf, len, IOTP_DEVICE_SEND_IDLE);

    if (r < 0) {
        end_session_error(dev, IOTP_EIO);
        return IOTP_EIO;
    }
    return 0;
}

/* `<dev> iotd TYPE id` (PING, PONG, BYE). */
static int send_system(struct iotp_device *dev, enum iotp_type type, uint32_t id)
{
    struct iotp_writer w;
    int n;

    iotp_writer_begin(&w, dev->tx, dev->tx_cap, dev->params.device_id, IOTP_SERVER_ADDRESS,
                      iotp_type_name(type), id);
    n = iotp_writer_end(&w);
    return n < 0 ? n : send_bytes(dev, dev->tx, (size_t)n);
}

int iotp_device_init(struct iotp_device *dev, const struct iotp_device_params *params,
                     const struct iotp_device_platform *platform, uint8_t *rx, size_t rx_cap,
                     uint8_t *tx, size_t tx_cap)
{
    if (!dev || !params || !platform || !params->device_id || !params->device_type ||
        !params->fw_version || !platform->clock.now_ms || !platform->random.fill ||
        !platform->transport.send || !rx || !tx || rx_cap < 128 || tx_cap < 128)
        return IOTP_EINVAL;
    if (params->alg == IOTP_ALG_ATECC508A_MAC ? !IOTP_DEVICE_ATECC || !params->chip : !params->key)
        return IOTP_EINVAL;
    if (!IOTP_DEVICE_NOTES && params->note)
        return IOTP_EINVAL;
    memset(dev, 0, sizeof(*dev));
    dev->params = *params;
    if (dev->params.handshake_timeout_ms == 0)
        dev->params.handshake_timeout_ms = IOTP_DEVICE_HANDSHAKE_TIMEOUT_MS;
    dev->platform = *platform;
    dev->tx = tx;
    dev->tx_cap = tx_cap;
    if (!params->servers)
        dev->params.nservers = 0;
    if (dev->params.nservers > 0)
        dev->server = params->first_server % dev->params.nservers;
    iotp_backoff_init(&dev->backoff, &params->backoff);
    dev->state = IOTP_DEVICE_CONNECT;
    return iotp_parser_init(&dev->parser, rx, rx_cap, rx_cap < IOTP_MAX_FRAME ? rx_cap : 0, 0);
}

int iotp_device_attach_outbox(struct iotp_device *dev, void *storage, size_t len,
                              uint32_t persisted_high_water)
{
    int r;

    if (dev->has_outbox)
        return IOTP_ESTATE;
    r = iotp_outbox_init(&dev->outbox, storage, len, persisted_high_water, 0);
    if (r == 0)
        dev->has_outbox = 1;
    return r;
}

int iotp_device_connecting(struct iotp_device *dev)
{
    if (dev->state != IOTP_DEVICE_CONNECT && dev->state != IOTP_DEVICE_BACKOFF)
        return IOTP_ESTATE;
    dev->state = IOTP_DEVICE_CONNECTING;
    dev->deadline_ms = now_ms(dev) + dev->params.handshake_timeout_ms;
    return 0;
}

int iotp_device_transport_up(struct iotp_device *dev)
{
    struct iotp_device_config cfg;
    size_t len;
    int r;

    if (dev->state != IOTP_DEVICE_CONNECTING && iotp_device_connecting(dev) < 0)
        return IOTP_ESTATE;
    memset(&cfg, 0, sizeof(cfg));
    cfg.device_id = dev->params.device_id;
    cfg.device_type = dev->params.device_type;
    cfg.fw_version = dev->params.fw_version;
    cfg.alg = dev->params.alg;
    cfg.key = dev->params.key;
    cfg.chip = dev->params.chip;
    cfg.random = dev->platform.random;
    iotp_parser_reset(&dev->parser);
    dev->state = IOTP_DEVICE_HANDSHAKE;
    r = iotp_device_hs_start(&dev->hs, &cfg, dev->tx, dev->tx_cap, &len);
    if (r < 0) {
        end_session_error(dev, r);
        return r;
    }
    return send_bytes(dev, dev->tx, len);
}

/* A note about frame f with its reason (the argument named by code_key, unless NULL), msg= and
 * retry= (in value; 0 when absent). */
static void frame_note(struct iotp_device_note *n, const struct iotp_frame *f, const char *code_key)
{
    memset(n, 0, sizeof(*n));
    if (code_key)
        n->code = iotp_frame_arg(f, code_key);
    if (IOTP_DEVICE_NOTES)
        n->msg = iotp_frame_arg(f, "msg");
    iotp_frame_arg_u32(f, "retry", &n->value);
}

/* A key whose value only a note reads: without notes it is not looked up. */
#define NOTE_ONLY(key) (IOTP_DEVICE_NOTES ? (key) : NULL)

/* ---- events ---- */

/* Send what the outbox hands out while online. */
static void pump_events(struct iotp_device *dev)
{
    const uint8_t *frame;
    size_t len;
    uint32_t seq;

    while (dev->has_outbox && dev->state == IOTP_DEVICE_ONLINE &&
           iotp_outbox_next(&dev->outbox, &frame, &len, &seq) == 1) {
        if (send_bytes(dev, frame, len) < 0)
            return; /* the next session sends it again */
        iotp_outbox_mark_sent(&dev->outbox, seq);
        note_simple(dev, IOTP_DEVICE_NOTE_EVENT_SENT, seq, seq <= dev->max_sent_seq);
        if (IOTP_DEVICE_NOTES && seq > dev->max_sent_seq) /* only the note tells resends */
            dev->max_sent_seq = seq;
    }
}

int iotp_device_event(struct iotp_device *dev, enum iotp_event_kind kind, const char *name,
                      unsigned nfields, const struct iotp_event_field *fields, uint32_t *seq)
{
    const struct iotp_persist *p = &dev->platform.persist;
    uint32_t high_water;
    int r;

    if (!dev->has_outbox)
        return IOTP_ESTATE;
    /* A failed store leaves the old reservation: pushes fail once it is used up. */
    if (iotp_outbox_reserve_needed(&dev->outbox, &high_water) &&
        (!p->store_high_water || p->store_high_water(p->ctx, high_water) == 0))
        iotp_outbox_reserved(&dev->outbox, high_water);
    r = iotp_outbox_push(&dev->outbox, kind, dev->params.device_id, name, nfields, fields, seq);
    if (r == 0)
        pump_events(dev);
    return r;
}

static void on_ack(struct iotp_device *dev, const struct iotp_frame *f)
{
    struct iotp_device_note n;

    if (!IOTP_DEVICE_NOTES) {
        /* Nobody to show the event to: it just goes (an ACK for no pending one changes
         * nothing). */
        if (dev->has_outbox)
            iotp_outbox_on_ack(&dev->outbox, f->id);
        return;
    }
    memset(&n, 0, sizeof(n));
    n.id = f->id;
    if (!dev->has_outbox || iotp_outbox_get(&dev->outbox, f->id, &n.frame, &n.len) < 0) {
        n.kind = IOTP_DEVICE_NOTE_ACK_UNKNOWN;
        note(dev, &n);
        return;
    }
    /* Noted before the entry goes, so the note can still read the event. */
    n.kind = IOTP_DEVICE_NOTE_EVENT_ACKED;
    note(dev, &n);
    iotp_outbox_on_ack(&dev->outbox, f->id);
}

/* An ERROR for a pending event: dropped or paused. Returns 0, or -1 when f is about no event. */
static int on_event_error(struct iotp_device *dev, struct iotp_device_note *n)
{
    uint32_t retry_s = 0;
    int r;

    if (!dev->has_outbox)
        return -1;
    r = iotp_outbox_on_error(&dev->outbox, n->id, n->code ? n->code : "internal");
    if (r == IOTP_OUTBOX_DROPPED) {
        n->kind = IOTP_DEVICE_NOTE_EVENT_DROPPED;
        note(dev, n);
        return 0;
    }
    if (r != IOTP_OUTBOX_PAUSED)
        return -1;
    retry_s = n->value;
    if (retry_s == 0)
        retry_s = IOTP_DEVICE_BUSY_DEFAULT_S;
    if (retry_s > IOTP_BACKOFF_MAX_HINT_S)
        retry_s = IOTP_BACKOFF_MAX_HINT_S;
    dev->resume_ms = now_ms(dev) + retry_s * 1000u;
    n->kind = IOTP_DEVICE_NOTE_EVENT_BUSY;
    n->value = retry_s;
    note(dev, n);
    return 0;
}

/* ---- requests ---- */

static int write_answer(struct iotp_device *dev, const char *to, uint32_t id,
                        const struct iotp_device_answer *a)
{
    struct iotp_writer w;

    if (a->error_code)
        return iotp_frame_write_error(dev->tx, dev->tx_cap, dev->params.device_id, to, id,
                                      a->error_code, 0, a->error_msg);
    iotp_writer_begin(&w, dev->tx, dev->tx_cap, dev->params.device_id, to,
                      iotp_type_name(IOTP_TYPE_OK), id);
    for (unsigned i = 0; i < a->nargs && i < IOTP_DEVICE_ANSWER_ARGS; i++)
        iotp_writer_arg(&w, a->args[i]);
    return iotp_writer_end(&w);
}

int iotp_device_answer(struct iotp_device *dev, const char *to, uint32_t id,
                       const struct iotp_device_answer *answer)
{
    int n;

    if (dev->state != IOTP_DEVICE_ONLINE)
        return IOTP_ESTATE;
    n = write_answer(dev, to, id, answer);
    /* An answer that cannot be written (a field with a control byte, too long) becomes an ERROR
     * the requester can act on, rather than a timeout. A fixed msg: the error-name table is
     * 1 KB a device need not link. */
    if (n < 0)
        n = iotp_frame_write_error(dev->tx, dev->tx_cap, dev->params.device_id, to, id, "device", 0,
                                   "unwritable_answer");
    if (n < 0)
        return n;
    return send_bytes(dev, dev->tx, (size_t)n);
}

int iotp_device_send_frame(struct iotp_device *dev, const uint8_t *frame, size_t len)
{
    if (dev->state != IOTP_DEVICE_ONLINE)
        return IOTP_ESTATE;
    return send_bytes(dev, frame, len);
}

static void on_request(struct iotp_device *dev, const struct iotp_frame *f)
{
    const struct iotp_device_handler *h = NULL;
    struct iotp_device_answer answer;
    int r = IOTP_DEVICE_REPLY;

    for (unsigned i = 0; i < dev->params.nhandlers && !h; i++) {
        const struct iotp_device_handler *e = &dev->params.handlers[i];
        if (!e->type || strcmp(e->type, f->type) == 0)
            h = e;
    }
    memset(&answer, 0, sizeof(answer));
    if (h)
        r = h->fn(h->ctx, dev, f, &answer);
    else
        answer.error_code = "unknown_type";
    if (r != IOTP_DEVICE_REPLY || dev->state != IOTP_DEVICE_ONLINE)
        return;
    if (iotp_device_answer(dev, f->from, f->id, &answer) == 0)
        note_simple(dev, IOTP_DEVICE_NOTE_ANSWERED, f->id, 0);
}

/* ---- the session's system frames, one handler per type ---- */

static void on_ping(struct iotp_device *dev, const struct iotp_frame *f)
{
    send_system(dev, IOTP_TYPE_PONG, f->id);
}

static void on_pong(struct iotp_device *dev, const struct iotp_frame *f)
{
    if (dev->ping_waiting != 0 && f->id == dev->ping_waiting) {
        dev->ping_waiting = 0;
        note_simple(dev, IOTP_DEVICE_NOTE_PONG, f->id, dev->ping_s);
    }
}

static void on_bye(struct iotp_device *dev, const struct iotp_frame *f)
{
    struct iotp_device_note n;

    frame_note(&n, f, NOTE_ONLY("reason"));
    dev->retry_hint_s = n.value;
    end_session(dev, &n);
}

/* An ERROR about an event is the outbox's business; any other is only noted. */
static void on_error(struct iotp_device *dev, const struct iotp_frame *f)
{
    struct iotp_device_note n;

    frame_note(&n, f, "code");
    n.id = f->id;
    if (on_event_error(dev, &n) == 0)
        return;
    n.kind = IOTP_DEVICE_NOTE_SERVER_ERROR;
    note(dev, &n);
}

/* What the server may send an online device; other system types are ignored, as a device does
 * with what it does not understand. Pairs rather than an array indexed by type: 5 of 22 types. */
static const struct {
    uint8_t type;
    void (*fn)(struct iotp_device *dev, const struct iotp_frame *f);
} session_handlers[] = {
    {IOTP_TYPE_PING, on_ping}, {IOTP_TYPE_PONG, on_pong},   {IOTP_TYPE_BYE, on_bye},
    {IOTP_TYPE_ACK, on_ack},   {IOTP_TYPE_ERROR, on_error},
};

static void go_online(struct iotp_device *dev)
{
    dev->state = IOTP_DEVICE_ONLINE;
    iotp_backoff_authenticated(&dev->backoff, clock_ms(dev));
    dev->ping_s = dev->params.ping_s ? dev->params.ping_s : dev->hs.ping_s;
    if (dev->ping_s > IOTP_DEVICE_MAX_PING_S)
        dev->ping_s = IOTP_DEVICE_MAX_PING_S;
    dev->ping_waiting = 0;
    dev->ping_due_ms = now_ms(dev) + dev->ping_s * 1000u;
    if (dev->has_outbox)
        iotp_outbox_session_reset(&dev->outbox);
    note_simple(dev, IOTP_DEVICE_NOTE_ONLINE, 0, dev->ping_s);
    pump_events(dev);
}

static void on_handshake_frame(struct iotp_device *dev, const struct iotp_frame *f)
{
    struct iotp_device_note n;
    size_t len = 0;
    int r = iotp_device_hs_on_frame(&dev->hs, f, dev->tx, dev->tx_cap, &len);

    if (r == IOTP_HS_DONE) {
        go_online(dev);
        return;
    }
    if (r == 0) {
        if (len > 0)
            send_bytes(dev, dev->tx, len);
        return;
    }
    if (iotp_frame_type(f) == IOTP_TYPE_ERROR)
        frame_note(&n, f, NOTE_ONLY("code"));
    else
        memset(&n, 0, sizeof(n));
    /* The server's retry= is how it spreads a fleet out; honoured as a floor. */
    dev->retry_hint_s = n.value;
    n.error = r;
    n.frame_type = f->type;
    end_session(dev, &n);
}

static void on_session_frame(struct iotp_device *dev, const struct iotp_frame *f)
{
    enum iotp_type type = iotp_frame_type(f);

    if (strcmp(f->to, dev->params.device_id) != 0)
        return; /* not for us: nothing sensible to answer */
    if (type == IOTP_TYPE_APP) {
        on_request(dev, f);
        return;
    }
    if (strcmp(f->from, IOTP_SERVER_ADDRESS) != 0)
        return; /* OK/ERROR from a user: this engine sends no requests of its own */
    for (unsigned i = 0; i < sizeof(session_handlers) / sizeof(session_handlers[0]); i++)
        if (session_handlers[i].type == type)
            session_handlers[i].fn(dev, f);
}

int iotp_device_feed(struct iotp_device *dev, const uint8_t *data, size_t len)
{
    const struct iotp_frame *f;
    size_t off = 0, used;
    int r;

    if (!in_session(dev))
        return IOTP_ESTATE;
    while (off < len && in_session(dev)) {
        r = iotp_parser_feed(&dev->parser, data + off, len - off, &used, &f, NULL);
        off += used;
        if (r < 0) {
            /* A device does not argue with its server: note it and go on (the parser has
             * resynchronised at the next EOT). */
            struct iotp_device_note n;
            memset(&n, 0, sizeof(n));
            n.kind = IOTP_DEVICE_NOTE_BAD_FRAME;
            n.error = r;
            note(dev, &n);
        } else if (r == 1 && dev->state == IOTP_DEVICE_HANDSHAKE) {
            on_handshake_frame(dev, f);
        } else if (r == 1) {
            on_session_frame(dev, f);
        }
    }
    return 0;
}

int iotp_device_poll(struct iotp_device *dev)
{
    uint8_t chunk[64];
    int32_t n = 0;

    for (unsigned i = 0; i < 16 && in_session(dev); i++) {
        n = dev->platform.transport.recv(dev->platform.transport.ctx, chunk, sizeof(chunk));
        if (n <= 0)
            break;
        iotp_device_feed(dev, chunk, (size_t)n);
    }
    if (n < 0 && (in_session(dev) || dev->state == IOTP_DEVICE_CONNECTING)) {
        iotp_device_transport_down(dev);
        return (int)n;
    }
    iotp_device_tick(dev);
    return 0;
}

/* ---- time ---- */

/* What the state waits for: the handshake's deadline (CONNECTING, HANDSHAKE), the end of the
 * backoff, the next PING (ONLINE with keepalive); NULL for nothing. tick and next_timeout_ms
 * both read it, so they cannot disagree. */
static const uint32_t *state_deadline(const struct iotp_device *dev)
{
    switch (dev->state) {
    case IOTP_DEVICE_CONNECTING:
    case IOTP_DEVICE_HANDSHAKE:
    case IOTP_DEVICE_BACKOFF:
        return &dev->deadline_ms;
    case IOTP_DEVICE_ONLINE:
        return dev->ping_s ? &dev->ping_due_ms : NULL;
    default:
        return NULL;
    }
}

/* The PING is due: a PING still without PONG means the link is dead, otherwise send the next. */
static void keepalive(struct iotp_device *dev, uint32_t now)
{
    struct iotp_device_note n;

    if (dev->ping_waiting != 0) {
        memset(&n, 0, sizeof(n));
        n.error = IOTP_ETIMEOUT;
        n.id = dev->ping_waiting;
        n.value = dev->ping_s;
        end_session(dev, &n);
        return;
    }
    dev->ping_due_ms = now + dev->ping_s * 1000u;
    if (++dev->ping_id == 0)
        dev->ping_id = 1; /* 0 is not a request id */
    dev->ping_waiting = dev->ping_id;
    note_simple(dev, IOTP_DEVICE_NOTE_PING_SENT, dev->ping_id, 0);
    send_system(dev, IOTP_TYPE_PING, dev->ping_id);
}

void iotp_device_tick(struct iotp_device *dev)
{
    uint32_t now = now_ms(dev);
    const uint32_t *deadline;

    if (dev->has_outbox && iotp_outbox_paused(&dev->outbox) && reached(now, dev->resume_ms)) {
        iotp_outbox_resume(&dev->outbox);
        pump_events(dev);
    }
    deadline = state_deadline(dev);
    if (!deadline || !reached(now, *deadline))
        return;
    if (dev->state == IOTP_DEVICE_ONLINE) {
        keepalive(dev, now);
    } else if (dev->state == IOTP_DEVICE_BACKOFF) {
        dev->state = IOTP_DEVICE_CONNECT;
        note_simple(dev, IOTP_DEVICE_NOTE_CONNECT, 0, 0);
    } else {
        end_session_error(dev, IOTP_ETIMEOUT);
    }
}

/* The smaller of best and the time from now to deadline (0 when it has come). */
static uint32_t sooner(uint32_t best, uint32_t now, uint32_t deadline)
{
    int32_t left = (int32_t)(deadline - now);
    uint32_t ms = left <= 0 ? 0 : (uint32_t)left;

    return ms < best ? ms : best;
}

uint32_t iotp_device_next_timeout_ms(const struct iotp_device *dev)
{
    uint32_t now = now_ms(dev), best = IOTP_DEVICE_NO_TIMEOUT;
    const uint32_t *deadline = state_deadline(dev);

    if (dev->has_outbox && iotp_outbox_paused(&dev->outbox))
        best = sooner(best, now, dev->resume_ms);
    if (deadline)
        best = sooner(best, now, *deadline);
    return best;
}

uint32_t iotp_device_transport_down(struct iotp_device *dev)
{
    uint8_t rnd[4] = {0, 0, 0, 0};
    uint32_t delay, random;

    if (dev->state == IOTP_DEVICE_STOPPED || dev->state == IOTP_DEVICE_BACKOFF)
        return 0;
    /* A failed random source costs only the jitter, never the reconnect. */
    dev->platform.random.fill(dev->platform.random.ctx, rnd, sizeof(rnd));
    random =
        (uint32_t)rnd[0] | (uint32_t)rnd[1] << 8 | (uint32_t)rnd[2] << 16 | (uint32_t)rnd[3] << 24;
    delay = iotp_backoff_next_ms(&dev->backoff, clock_ms(dev), dev->retry_hint_s, random);
    dev->retry_hint_s = 0;
    dev->ping_s = 0;
    /* The attempt ended: the next one goes to the next address (a node may be gone). */
    if (dev->params.nservers > 0)
        dev->server = (dev->server + 1) % dev->params.nservers;
    dev->state = IOTP_DEVICE_BACKOFF;
    dev->deadline_ms = now_ms(dev) + delay;
    return delay;
}

int iotp_device_stop(struct iotp_device *dev)
{
    int bye = 0;

    if (dev->state == IOTP_DEVICE_ONLINE)
        bye = send_system(dev, IOTP_TYPE_BYE, 0) == 0;
    dev->state = IOTP_DEVICE_STOPPED;
    return bye;
}

enum iotp_device_state iotp_device_state(const struct iotp_device *dev)
{
    return dev->state;
}

const char *iotp_device_state_name(enum iotp_device_state state)
{
    static const char *const names[] = {
        "connect", "connecting", "handshake", "online", "closing", "backoff", "stopped",
    };
    return (unsigned)state < sizeof(names) / sizeof(names[0]) ? names[state] : "?";
}

const struct iotp_outbox *iotp_device_outbox(const struct iotp_device *dev)
{
    return dev->has_outbox ? &dev->outbox : NULL;
}

const struct iotp_server *iotp_device_server(const struct iotp_device *dev)
{
    return dev->params.nservers > 0 ? &dev->params.servers[dev->server] : NULL;
}

unsigned iotp_device_server_index(const struct iotp_device *dev)
{
    return dev->server;
}

uint32_t iotp_device_ping_s(const struct iotp_device *dev)
{
    return dev->state == IOTP_DEVICE_ONLINE ? dev->ping_s : 0;
}
