/*
 * inbox.c - bounded multi-producer queue drained on its loop (see inbox.h).
 *
 * Messages wait in a fifo (fifo.h) under a mutex. Producers send the async only when it goes
 * from empty to non-empty: libuv coalesces sends anyway, but skipping the syscall-backed send
 * for every message of a burst is what keeps cross-thread delivery cheap. The consumer takes
 * the whole list out under the lock and runs the handlers without it, so a handler may push to
 * any inbox (even its own) without deadlock.
 */
#include "loop/inbox.h"

#include "iot_error.h"

static void inbox_drain(uv_async_t *async)
{
    inbox_t *inbox = container_of(async, inbox_t, async);

    pthread_mutex_lock(&inbox->lock);
    struct fifo_link *link = fifo_take_all(&inbox->queue);
    pthread_cond_broadcast(&inbox->space);
    pthread_mutex_unlock(&inbox->lock);

    while (link) {
        struct fifo_link *next = link->next;
        inbox_msg_t *msg = container_of(link, inbox_msg_t, link);
        link->next = NULL;
        msg->handle(msg, inbox->loop_data);
        link = next;
    }
}

int inbox_init(inbox_t *inbox, uv_loop_t *loop, size_t capacity, void *loop_data)
{
    *inbox = (inbox_t){.loop_data = loop_data};
    fifo_init(&inbox->queue, capacity);
    if (pthread_mutex_init(&inbox->lock, NULL) != 0)
        return IOT_ENOMEM;
    if (pthread_cond_init(&inbox->space, NULL) != 0) {
        pthread_mutex_destroy(&inbox->lock);
        return IOT_ENOMEM;
    }
    if (uv_async_init(loop, &inbox->async, inbox_drain) != 0) {
        pthread_cond_destroy(&inbox->space);
        pthread_mutex_destroy(&inbox->lock);
        return IOT_EIO;
    }
    return IOT_OK;
}

int inbox_push(inbox_t *inbox, inbox_msg_t *msg)
{
    int rc = IOT_OK, wake = 0;
    pthread_mutex_lock(&inbox->lock);
    if (inbox->closing)
        rc = IOT_EINVAL;
    else if ((wake = fifo_push(&inbox->queue, &msg->link)) < 0)
        rc = IOT_EBUSY;
    pthread_mutex_unlock(&inbox->lock);
    if (wake > 0)
        uv_async_send(&inbox->async);
    return rc;
}

int inbox_push_wait(inbox_t *inbox, inbox_msg_t *msg)
{
    int rc = IOT_OK, wake = 0;
    pthread_mutex_lock(&inbox->lock);
    while (!inbox->closing && fifo_full(&inbox->queue))
        pthread_cond_wait(&inbox->space, &inbox->lock);
    if (inbox->closing)
        rc = IOT_EINVAL;
    else
        wake = fifo_push(&inbox->queue, &msg->link); /* there is room: never -1 */
    pthread_mutex_unlock(&inbox->lock);
    if (wake > 0)
        uv_async_send(&inbox->async);
    return rc;
}

void inbox_stats(inbox_t *inbox, size_t *depth, size_t *high_water, size_t *capacity,
                 uint64_t *enqueued, uint64_t *dequeued, uint64_t *rejected)
{
    pthread_mutex_lock(&inbox->lock);
    *depth = inbox->queue.depth;
    *high_water = inbox->queue.high_water;
    *capacity = inbox->queue.capacity;
    *enqueued = inbox->queue.enqueued;
    *dequeued = inbox->queue.dequeued;
    *rejected = inbox->queue.rejected;
    pthread_mutex_unlock(&inbox->lock);
}

static void inbox_handle_closed(uv_handle_t *handle)
{
    inbox_t *inbox = container_of((uv_async_t *)handle, inbox_t, async);
    void (*on_closed)(inbox_t *) = (void (*)(inbox_t *))handle->data;
    pthread_cond_destroy(&inbox->space);
    pthread_mutex_destroy(&inbox->lock);
    if (on_closed)
        on_closed(inbox);
}

void inbox_close(inbox_t *inbox, void (*on_closed)(inbox_t *inbox))
{
    pthread_mutex_lock(&inbox->lock);
    inbox->closing = 1;
    pthread_cond_broadcast(&inbox->space);
    pthread_mutex_unlock(&inbox->lock);
    /* Whatever arrived before closing still runs: nothing queued is silently lost. */
    inbox_drain(&inbox->async);
    inbox->async.data = (void *)on_closed;
    uv_close((uv_handle_t *)&inbox->async, inbox_handle_closed);
}
