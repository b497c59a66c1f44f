/*
 * iotp_handshake.h - the mutual device handshake, as two state machines that exchange frames.
 *
 *   D->S  dev   iotd  HELLO     1  proto=1 type=<device-type> fw=<version> cnonce=<64 hex>
 *                                  [alg=atecc508a-mac]
 *   S->D  iotd  dev   CHALLENGE 1  snonce=<64 hex> alg=<alg>
 *   D->S  dev   iotd  AUTH      2  mac=<64 hex> [slot=<key id>]
 *   S->D  iotd  dev   WELCOME   2  mac=<64 hex> ping=<seconds>
 *     or  iotd  dev   ERROR     2  code=auth [retry=<seconds>]
 *
 * alg=hmac-sha256 (the default; HELLO omits alg):
 *   device mac = HMAC-SHA256(key, "iotp1-device" | device-id | 0x00 | snonce | cnonce)
 *   server mac = HMAC-SHA256(key, "iotp1-server" | device-id | 0x00 | cnonce | snonce)
 * alg=atecc508a-mac: the chip's MAC command (iotp_atecc.h, mode IOTP_ATECC_MAC_MODE, key id
 * from slot=) over a 32-byte challenge that binds the same inputs:
 *   device mac = ATECC-MAC(key, SHA256("iotp1-device" | device-id | 0x00 | snonce | cnonce))
 *   server mac = ATECC-MAC(key, SHA256("iotp1-server" | device-id | 0x00 | cnonce | snonce))
 * The labels keep the two directions apart, so a fake server cannot reflect the device's own
 * answer back as its WELCOME; with a chip the device checks WELCOME by asking its chip.
 *
 * Neither machine does I/O: each consumes parsed frames and writes the frame to send into a
 * caller buffer. The server machine stops after HELLO so the caller can look the key up (in
 * iotd, asynchronously on a database thread), then resumes with the key or with "unknown".
 * An unknown device still gets a CHALLENGE and is refused at AUTH with the same ERROR, after
 * the same constant-time work, as a wrong mac: the peer cannot tell them apart.
 */
#ifndef IOTP_HANDSHAKE_H
#define IOTP_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

#include "iotp_atecc.h"
#include "iotp_config_defaults.h"
#include "iotp_frame.h"
#include "iotp_platform.h"
#include "iotp_sha256.h"

#define IOTP_NONCE_LEN 32
#define IOTP_KEY_LEN   32
#define IOTP_MAC_LEN   32
#define IOTP_HS_DONE   1 /* returned when a handshake completed successfully */

enum iotp_alg {
    IOTP_ALG_HMAC_SHA256 = 1,
    IOTP_ALG_ATECC508A_MAC = 2,
};

/* "hmac-sha256" or "atecc508a-mac" (NULL for other values). */
const char *iotp_alg_name(enum iotp_alg alg);
/* Parse an alg= value. Returns 0 or IOTP_EBAD_ARGS. */
int iotp_alg_parse(const char *name, enum iotp_alg *alg);

/* The HMAC-SHA-256 macs of the handshake (see above); exposed for tests and documentation. */
void iotp_hs_device_mac(const uint8_t key[IOTP_KEY_LEN], const char *device_id,
                        const uint8_t snonce[IOTP_NONCE_LEN], const uint8_t cnonce[IOTP_NONCE_LEN],
                        uint8_t mac[IOTP_MAC_LEN]);
void iotp_hs_server_mac(const uint8_t key[IOTP_KEY_LEN], const char *device_id,
                        const uint8_t cnonce[IOTP_NONCE_LEN], const uint8_t snonce[IOTP_NONCE_LEN],
                        uint8_t mac[IOTP_MAC_LEN]);
/* The 32-byte chip challenges of alg=atecc508a-mac (see above). */
void iotp_hs_device_challenge(const char *device_id, const uint8_t snonce[IOTP_NONCE_LEN],
                              const uint8_t cnonce[IOTP_NONCE_LEN], uint8_t challenge[32]);
void iotp_hs_server_challenge(const char *device_id, const uint8_t cnonce[IOTP_NONCE_LEN],
                              const uint8_t snonce[IOTP_NONCE_LEN], uint8_t challenge[32]);
/* What the four above compute: the server's (server_side) or the device's transcript, its
 * HMAC-SHA-256 under key, or with key NULL its SHA-256 (the chip challenge). One function, so
 * that a device links the transcript code once. */
void iotp_hs_transcript(int server_side, const uint8_t *key, const char *device_id,
                        const uint8_t cnonce[IOTP_NONCE_LEN], const uint8_t snonce[IOTP_NONCE_LEN],
                        uint8_t out[32]);

/* ---- device side ---- */

struct iotp_device_config {
    const char *device_id;              /* FROM of every device frame */
    const char *device_type;            /* type= */
    const char *fw_version;             /* fw= */
    enum iotp_alg alg;                  /* 0 means IOTP_ALG_HMAC_SHA256 */
    const uint8_t *key;                 /* IOTP_KEY_LEN bytes, for hmac-sha256 */
    const struct iotp_atecc_chip *chip; /* for atecc508a-mac */
    struct iotp_random random;          /* cnonce source */
};

enum iotp_device_hs_state {
    IOTP_DEVICE_HS_IDLE = 0,
    IOTP_DEVICE_HS_WAIT_CHALLENGE,
    IOTP_DEVICE_HS_WAIT_WELCOME,
    IOTP_DEVICE_HS_DONE,
    IOTP_DEVICE_HS_FAILED,
};

struct iotp_device_hs {
    enum iotp_device_hs_state state; /* first: one load on a Cortex-M0 */
    struct iotp_device_config cfg;   /* a copy; the strings, key and chip it points to must
                                        outlive the handshake */
    uint8_t cnonce[IOTP_NONCE_LEN];
    uint8_t snonce[IOTP_NONCE_LEN];
    uint32_t ping_s; /* from WELCOME: the keepalive period the server asks for */
};

/* Start a handshake: draw cnonce and write HELLO into out (cap bytes). Returns 0 with *out_len
 * set, or IOTP_EINVAL (missing id, type, fw, key or chip), IOTP_ERANDOM, IOTP_ENOSPC, or a frame
 * error if an id/type/fw cannot be written (control bytes, too long). */
int iotp_device_hs_start(struct iotp_device_hs *hs, const struct iotp_device_config *cfg,
                         uint8_t *out, size_t cap, size_t *out_len);

/* Give the device machine a frame received from the server.
 *   0            with *out_len > 0: send out (the AUTH answering a CHALLENGE);
 *   IOTP_HS_DONE the WELCOME's mac proved the server knows the key; hs->ping_s is set;
 *  <0            IOTP_EAUTH (server refused with code=auth, or its WELCOME mac is wrong: not
 *                the real server), IOTP_EPEER (another ERROR code), IOTP_EPROTO (unexpected
 *                frame), IOTP_EBAD_ARGS (missing or malformed arguments), IOTP_ECHIP,
 *                IOTP_ENOSPC, IOTP_ESTATE (not waiting for a frame).
 * Any error leaves the machine in IOTP_DEVICE_HS_FAILED; start again on a new connection. */
int iotp_device_hs_on_frame(struct iotp_device_hs *hs, const struct iotp_frame *f, uint8_t *out,
                            size_t cap, size_t *out_len);

/* ---- server side ---- */

/* What the server stored at provisioning. */
struct iotp_device_secret {
    enum iotp_alg alg;
    uint8_t key[IOTP_KEY_LEN];
    uint8_t serial[IOTP_ATECC_SERIAL_LEN]; /* atecc508a-mac only */
};

enum iotp_server_hs_state {
    IOTP_SERVER_HS_WAIT_HELLO = 0,
    IOTP_SERVER_HS_WAIT_KEY,
    IOTP_SERVER_HS_WAIT_AUTH,
    IOTP_SERVER_HS_DONE,
    IOTP_SERVER_HS_FAILED,
};

struct iotp_server_hs {
    enum iotp_server_hs_state state;
    struct iotp_random random;
    /* From HELLO, valid once iotp_server_hs_on_hello returned 0: */
    char device_id[IOTP_MAX_ADDRESS_LEN + 1];
    char device_type[IOTP_MAX_HELLO_VALUE_LEN + 1];
    char fw_version[IOTP_MAX_HELLO_VALUE_LEN + 1];
    enum iotp_alg alg;
    /* Private: */
    uint8_t cnonce[IOTP_NONCE_LEN];
    uint8_t snonce[IOTP_NONCE_LEN];
    struct iotp_device_secret secret;
    int known; /* the caller supplied a secret for this device and alg */
};

/* Prepare a server machine; random supplies snonce. */
void iotp_server_hs_init(struct iotp_server_hs *hs, const struct iotp_random *random);

/* Take the device's first frame. Returns 0 when it is a well-formed HELLO (hs->device_id,
 * device_type, fw_version and alg are then set: look the secret up and call
 * iotp_server_hs_challenge), IOTP_EPROTO if it is not a HELLO with ID 1 addressed to
 * IOTP_SERVER_ADDRESS, IOTP_EBAD_ARGS for a missing or bad proto, cnonce or alg, or a type or
 * fw that is missing, empty or over IOTP_MAX_HELLO_VALUE_LEN, IOTP_EFIELD_TOO_LONG for a
 * device id over IOTP_MAX_ADDRESS_LEN (only possible for a frame not made by the parser),
 * IOTP_ESTATE if not waiting for HELLO. On error the caller answers ERROR code=bad_args
 * (iotp_error_wire_code) and closes. */
int iotp_server_hs_on_hello(struct iotp_server_hs *hs, const struct iotp_frame *f);

/* Resume after the lookup: secret is the device's provisioned secret or NULL if the device is
 * unknown, disabled or of the wrong type. A secret whose alg differs from the HELLO's counts
 * as unknown. Writes CHALLENGE into out in every case (the peer learns nothing yet).
 * Returns 0 with *out_len set, IOTP_ERANDOM, IOTP_ENOSPC or IOTP_ESTATE. The secret is
 * copied; the caller may wipe its own copy. */
int iotp_server_hs_challenge(struct iotp_server_hs *hs, const struct iotp_device_secret *secret,
                             uint8_t *out, size_t cap, size_t *out_len);

/* Take the device's AUTH and answer. Returns IOTP_HS_DONE with WELCOME (mac, ping=ping_s) in
 * out, or IOTP_EAUTH with `ERROR 2 code=auth` (plus retry=retry_s when retry_s > 0) in out
 * for an unknown device, a wrong mac, or any frame that is not a well-formed AUTH from this
 * device: all failures look the same on the wire. IOTP_ENOSPC/IOTP_ESTATE write nothing. The
 * key is wiped from hs whatever the outcome. */
int iotp_server_hs_on_auth(struct iotp_server_hs *hs, const struct iotp_frame *f, uint32_t ping_s,
                           uint32_t retry_s, uint8_t *out, size_t cap, size_t *out_len);

#endif
