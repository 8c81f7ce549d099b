/* coro.h: coroutines on one copied stack per loop (mode_event.c's). */
#ifndef SS_CORO_H
#define SS_CORO_H

#include <stdbool.h>
#include <stddef.h>

/*
 * One coroutine.  While it runs, its frames are on its loop's shared
 * stack; while it is suspended and another runs there, they are copied
 * out to save (as many bytes as it uses, not the stack's size).
 */
struct ss_coro {
    void *sp;                   /* its stack pointer while suspended */
    char *save;                 /* its frames while another has the stack */
    size_t saved, cap;
    void (*fn)(void *);
    void *arg;
    bool done;                  /* fn returned */
    bool overflowed;            /* hit the guard page: abandoned */
    bool lost;                  /* its frames could not be saved */
    void *san_fake;             /* ASan's fake stack while switched out */
    void *san_fiber;            /* TSan's fiber */
};

/* The stack the coroutines of one loop share, with a guard page below. */
struct ss_coro_stack {
    char *map;                  /* guard page + stack */
    size_t maplen;
    char *lo, *top;             /* the usable stack */
    void *loop_sp;              /* the loop's stack pointer while one runs */
    struct ss_coro *owner;      /* whose frames are on the stack */
    struct ss_coro *current;    /* the one running, NULL in the loop */
    const void *loop_lo;        /* the loop's own stack (ASan) */
    size_t loop_size;
    void *loop_fake;
    void *loop_fiber;           /* TSan */
    char *altstack;             /* ours, when the thread had none */
    unsigned vg_id;             /* valgrind's name for the stack */
};

/* Maps a stack of size bytes and readies this thread to catch overflows
 * on it.  In the thread that runs the loop.  0 or -1 (errno). */
int ss_coro_stack_init(struct ss_coro_stack *, size_t size);
void ss_coro_stack_free(struct ss_coro_stack *);
/* Moves the loop to the calling thread (init does it for its own).
 * 0 or -1. */
int ss_coro_stack_attach(struct ss_coro_stack *);

/* Runs fn(arg) as coroutine c until it suspends or ends. */
void ss_coro_start(struct ss_coro_stack *, struct ss_coro *,
                   void (*fn)(void *), void *arg);
/* Continues c until it suspends or ends (c->done, c->overflowed). */
void ss_coro_resume(struct ss_coro_stack *, struct ss_coro *);
/* From inside the running coroutine: back to the loop. */
void ss_coro_suspend(struct ss_coro_stack *);
/* Frees what c kept (after it ended, or when it is abandoned). */
void ss_coro_free(struct ss_coro_stack *, struct ss_coro *);

#endif
