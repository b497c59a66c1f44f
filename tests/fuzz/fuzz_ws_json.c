/*
 * fuzz_ws_json.c - libFuzzer target for the browser mapping (iotd/web/ws_frames.c).
 *
 * The input is one WebSocket message, decoded as from a welcomed browser and, separately,
 * before WELCOME. Whatever it becomes must hold: a frame must be exactly one frame the
 * firmware's parser accepts whole, from the session's user, and encoding it back must give a
 * JSON object cJSON reads, with the same id and type (unless that needed a UTF-8 repair); a refusal
 * must be a JSON ERROR object with a code. The same bytes are also encoded as if they were a frame
 * from a session (the last byte made EOT): a result must be a JSON object. And they are read as
 * the wire bytes of a WebSocket's first message (ws_peek.c, placement): a message found must
 * fit the buffer and its frame's length, and its bytes be the input's unmasked. Any violation
 * aborts.
 */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "iot_text.h"
#include "iotp/iotp.h"
#include "web/ws_frames.h"
#include "web/ws_peek.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

static cJSON *parse_object(const char *json)
{
    cJSON *obj = cJSON_Parse(json);
    check(obj != NULL && cJSON_IsObject(obj));
    check(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(obj, "type")));
    return obj;
}

static void decode_one(struct ws_frames *fx, const uint8_t *data, size_t size)
{
    static uint8_t out[1024], pbuf[1024];
    static char reply[WS_FRAMES_REPLY_MAX], json[4096];
    int n = ws_frames_decode(fx, (const char *)data, size, out, sizeof(out), reply);
    check(n >= 0 && (size_t)n <= sizeof(out));
    if (n == 0) {
        check(strlen(reply) < WS_FRAMES_REPLY_MAX);
        cJSON *obj = parse_object(reply);
        check(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(obj, "code")));
        cJSON_Delete(obj);
        return;
    }
    struct iotp_parser p;
    const struct iotp_frame *f = NULL;
    size_t used = 0;
    check(iotp_parser_init(&p, pbuf, sizeof(pbuf), sizeof(pbuf), 0) == 0);
    check(iotp_parser_feed(&p, out, (size_t)n, &used, &f, NULL) == 1 && used == (size_t)n);
    /* A LOGIN speaks for its user; anything else for the session's. */
    check(iotp_frame_type(f) == IOTP_TYPE_LOGIN || strcmp(f->from, fx->user) == 0);
    int m = ws_frames_encode(fx, out, (size_t)n, json, sizeof(json));
    check(m > 0 && (size_t)m == strlen(json));
    cJSON *obj = parse_object(json);
    if (iot_text_utf8_valid(f->type, strlen(f->type))) /* else repaired */
        check(strcmp(cJSON_GetObjectItemCaseSensitive(obj, "type")->valuestring, f->type) == 0);
    check(cJSON_GetObjectItemCaseSensitive(obj, "id")->valuedouble == (double)f->id);
    cJSON_Delete(obj);
}

/* data as a WebSocket's first wire bytes: what ws_peek_text finds must be in bounds and be
 * the payload unmasked (payload byte i XOR key byte i mod 4). */
static void peek_one(const uint8_t *data, size_t size)
{
    static char out[1024];
    int n = ws_peek_text(data, size, out, sizeof(out));
    check(n >= WS_PEEK_NO && n <= (int)sizeof(out));
    if (n <= 0)
        return;
    size_t at = (data[1] & 0x7f) == 126 ? 4 : (data[1] & 0x7f) == 127 ? 10 : 2;
    check(at + 4 + (size_t)n <= size);
    for (int i = 0; i < n; i++)
        check((uint8_t)out[i] == (data[at + 4 + i] ^ data[at + i % 4]));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    peek_one(data, size);
    struct ws_frames fx = {.welcomed = true};
    strcpy(fx.user, "alice@acme");
    decode_one(&fx, data, size);
    struct ws_frames fresh = {0};
    decode_one(&fresh, data, size);

    if (size > 0 && size <= 2048) {
        static uint8_t frame[2048];
        static char json[8192];
        memcpy(frame, data, size);
        frame[size - 1] = IOTP_EOT;
        int m = ws_frames_encode(&fx, frame, size, json, sizeof(json));
        if (m > 0) {
            cJSON *obj = parse_object(json);
            cJSON_Delete(obj);
        }
    }
    return 0;
}
