/* coro.c: coroutines on one copied stack per loop.
 *
 * Why a copied stack: a stack per coroutine costs at least a page of
 * memory per idle connection, and a guard page per stack is a mapping
 * each, so about 32,000 of them exhaust vm.max_map_count.  Here every
 * coroutine of a loop runs on one stack (two mappings: the stack and its
 * guard page); a coroutine that is suspended while another runs has its
 * frames copied out, as many bytes as it uses (a few hundred to a few
 * thousand), and back when it resumes.  The switch is a few instructions
 * (callee-saved registers, the stack pointer, the SSE and x87 control
 * words), with no signal-mask system call as swapcontext makes.  The copy
 * is skipped when the coroutine that resumes is the one whose frames are
 * on the stack already.
 *
 * The price: a suspended coroutine's stack memory is elsewhere, so a
 * request must not hand another request a pointer into its own stack
 * (sockserv.h says so); heap memory is shared as in any other mode.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "coro.h"
#include "internal.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SS_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define SS_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define SS_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define SS_TSAN 1
#endif

#ifndef __x86_64__
#error "coro.c: the context switch is written for x86-64"
#endif

/* The alternate signal stack that catches an overflow. */
#define ALTSTACK_SIZE (64 * 1024)

/*
 * ss_coro_switch(save, to): saves the callee-saved registers and the
 * control words on this stack, stores the stack pointer in *save, and
 * continues on the stack at to, where the same were saved.
 * ss_coro_boot: a new coroutine's first frame returns here; it calls
 * r13(r12) on a 16-byte aligned stack.
 */
void ss_coro_switch(void **save, void *to);
void ss_coro_boot(void);
__asm__(
    ".text\n"
    ".globl ss_coro_switch\n"
    ".hidden ss_coro_switch\n"
    ".type ss_coro_switch, @function\n"
    "ss_coro_switch:\n"
    "    .cfi_startproc\n"
    "    pushq %rbp\n"
    "    pushq %rbx\n"
    "    pushq %r12\n"
    "    pushq %r13\n"
    "    pushq %r14\n"
    "    pushq %r15\n"
    "    subq $8, %rsp\n"
    "    stmxcsr (%rsp)\n"
    "    fnstcw 4(%rsp)\n"
    "    movq %rsp, (%rdi)\n"
    "    movq %rsi, %rsp\n"
    "    ldmxcsr (%rsp)\n"
    "    fldcw 4(%rsp)\n"
    "    addq $8, %rsp\n"
    "    popq %r15\n"
    "    popq %r14\n"
    "    popq %r13\n"
    "    popq %r12\n"
    "    popq %rbx\n"
    "    popq %rbp\n"
    "    ret\n"
    "    .cfi_endproc\n"
    ".size ss_coro_switch, .-ss_coro_switch\n"
    ".globl ss_coro_boot\n"
    ".hidden ss_coro_boot\n"
    ".type ss_coro_boot, @function\n"
    "ss_coro_boot:\n"
    "    movq %r12, %rdi\n"
    "    callq *%r13\n"
    "    ud2\n"
    ".size ss_coro_boot, .-ss_coro_boot\n");

/* ---- what the sanitizers need to be told -------------------------------- */

#if SS_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
static void
unpoison(void *p, size_t n)
{
    __asan_unpoison_memory_region(p, n);
}
static void
san_enter(struct ss_coro_stack *st, struct ss_coro *c)
{
    __sanitizer_start_switch_fiber(&st->loop_fake, st->lo,
                                   (size_t)(st->top - st->lo));
    (void)c;
}
static void
san_entered(struct ss_coro_stack *st, struct ss_coro *c)
{
    __sanitizer_finish_switch_fiber(c->san_fake, &st->loop_lo,
                                    &st->loop_size);
}
static void
san_leave(struct ss_coro_stack *st, struct ss_coro *c)
{
    __sanitizer_start_switch_fiber(c->done ? NULL : &c->san_fake,
                                   st->loop_lo, st->loop_size);
}
static void
san_left(struct ss_coro_stack *st, struct ss_coro *c)
{
    (void)c;
    __sanitizer_finish_switch_fiber(st->loop_fake, NULL, NULL);
}
#else
static void unpoison(void *p, size_t n) { (void)p; (void)n; }
static void san_enter(struct ss_coro_stack *st, struct ss_coro *c)
{ (void)st; (void)c; }
static void san_entered(struct ss_coro_stack *st, struct ss_coro *c)
{ (void)st; (void)c; }
static void san_leave(struct ss_coro_stack *st, struct ss_coro *c)
{ (void)st; (void)c; }
static void san_left(struct ss_coro_stack *st, struct ss_coro *c)
{ (void)st; (void)c; }
#endif

#if SS_TSAN
#include <sanitizer/tsan_interface.h>
/*
 * TSan defers an asynchronous signal that interrupts instrumented code to
 * the next interceptor of the fiber that was current, and destroying a
 * fiber makes it current for a moment: a signal that came then (or while a
 * coroutine ran its last steps) was never delivered, and the daemon missed
 * a SIGTERM that way.  So under TSan such signals wait, blocked, while a
 * fiber other than the loop's can be current, and come on the loop's.
 * Faults (an overflow's SIGSEGV) stay deliverable.
 */
static void
signals_hold(sigset_t *old)
{
    ss_signals_hold(old);
}
static void
signals_release(const sigset_t *old)
{
    pthread_sigmask(SIG_SETMASK, old, NULL);
}
static void
fiber_init(struct ss_coro_stack *st)
{
    st->loop_fiber = __tsan_get_current_fiber();
}
static void
fiber_new(struct ss_coro *c)
{
    sigset_t held;

    signals_hold(&held);
    c->san_fiber = __tsan_create_fiber(0);
    signals_release(&held);
}
static void
fiber_to(void *fiber)
{
    __tsan_switch_to_fiber(fiber, 0);
}
static void
fiber_free(struct ss_coro *c)
{
    sigset_t held;

    if (c->san_fiber == NULL)
        return;
    signals_hold(&held);
    __tsan_destroy_fiber(c->san_fiber);
    signals_release(&held);
    c->san_fiber = NULL;
}
#else
static void fiber_init(struct ss_coro_stack *st) { (void)st; }
static void fiber_new(struct ss_coro *c) { (void)c; }
static void fiber_to(void *fiber) { (void)fiber; }
static void fiber_free(struct ss_coro *c) { (void)c; }
static void signals_hold(sigset_t *old) { (void)old; }
static void signals_release(const sigset_t *old) { (void)old; }
#endif

/* Valgrind (make valgrind) is told the coroutines' stack is a stack, so a
 * switch is not taken for a huge frame, and that the loop may write there
 * below a suspended coroutine's stack pointer (restoring frames). */
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define SS_VALGRIND 1
#endif
#endif
#if SS_VALGRIND
static void
vg_register(struct ss_coro_stack *st)
{
    st->vg_id = VALGRIND_STACK_REGISTER(st->lo, st->top);
}
static void
vg_deregister(struct ss_coro_stack *st)
{
    VALGRIND_STACK_DEREGISTER(st->vg_id);
}
static void
vg_writable(void *p, size_t n)
{
    (void)VALGRIND_MAKE_MEM_UNDEFINED(p, n);
}
#else
static void vg_register(struct ss_coro_stack *st) { (void)st; }
static void vg_deregister(struct ss_coro_stack *st) { (void)st; }
static void vg_writable(void *p, size_t n) { (void)p; (void)n; }
#endif

/* ---- catching an overflow ------------------------------------------------ */

static __thread struct ss_coro_stack *this_stack;
static struct sigaction old_segv;
static pthread_once_t segv_once = PTHREAD_ONCE_INIT;

/*
 * SIGSEGV on this thread's alternate stack: a fault in the guard page of
 * the stack whose coroutine runs abandons that coroutine (its loop ends
 * its request and logs it); any other fault goes to the handler there was
 * before, or kills the process as it would have.
 */
static void
on_segv(int sig, siginfo_t *si, void *uc)
{
    struct ss_coro_stack *st = this_stack;
    char *addr = si->si_addr;
    void *dead;

    if (st != NULL && st->current != NULL && addr >= st->map &&
        addr < st->lo) {
        st->current->overflowed = true;
        ss_coro_switch(&dead, st->loop_sp);     /* never comes back */
    }
    if (old_segv.sa_flags & SA_SIGINFO) {
        old_segv.sa_sigaction(sig, si, uc);
        return;
    }
    if (old_segv.sa_handler != SIG_IGN && old_segv.sa_handler != SIG_DFL) {
        old_segv.sa_handler(sig);
        return;
    }
    signal(SIGSEGV, SIG_DFL);   /* the fault happens again, fatally */
}

static void
install_segv(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    (void)sigaction(SIGSEGV, &sa, &old_segv);
}

int
ss_coro_stack_init(struct ss_coro_stack *st, size_t size)
{
    long page = sysconf(_SC_PAGESIZE);

    memset(st, 0, sizeof *st);
    size = (size + (size_t)page - 1) & ~((size_t)page - 1);
    st->maplen = size + (size_t)page;
    st->map = mmap(NULL, st->maplen, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                   -1, 0);
    if (st->map == MAP_FAILED) {
        st->map = NULL;
        return -1;
    }
    if (mprotect(st->map, (size_t)page, PROT_NONE) < 0)
        goto out_unmap;
    st->lo = st->map + page;
    st->top = st->map + st->maplen;
    if (ss_coro_stack_attach(st) < 0)
        goto out_unmap;
    vg_register(st);
    return 0;
out_unmap: {
        int e = errno;

        munmap(st->map, st->maplen);
        st->map = NULL;
        errno = e;
        return -1;
    }
}

/*
 * Readies the calling thread to run st's coroutines: its overflows are
 * caught on this thread's alternate signal stack, and the sanitizers know
 * this thread's stack as the loop's.  0 or -1.
 */
int
ss_coro_stack_attach(struct ss_coro_stack *st)
{
    stack_t ss;

    /* a thread that has an alternate stack already (a sanitizer's, the
     * embedding program's) keeps it: it catches the overflow as well */
    if (sigaltstack(NULL, &ss) < 0)
        return -1;
    if (((ss.ss_flags & SS_DISABLE) || ss.ss_size < ALTSTACK_SIZE / 4) &&
        st->altstack == NULL) {
        st->altstack = malloc(ALTSTACK_SIZE);
        if (st->altstack == NULL)
            return -1;
        ss.ss_sp = st->altstack;
        ss.ss_size = ALTSTACK_SIZE;
        ss.ss_flags = 0;
        if (sigaltstack(&ss, NULL) < 0) {
            free(st->altstack);
            st->altstack = NULL;
            return -1;
        }
    }
    pthread_once(&segv_once, install_segv);
    this_stack = st;
    fiber_init(st);
    return 0;
}

void
ss_coro_stack_free(struct ss_coro_stack *st)
{
    stack_t ss = { .ss_flags = SS_DISABLE };

    if (st->map == NULL)
        return;
    if (this_stack == st) {
        if (st->altstack != NULL)
            (void)sigaltstack(&ss, NULL);
        this_stack = NULL;
    }
    free(st->altstack);         /* a thread that ended took its use along */
    vg_deregister(st);
    munmap(st->map, st->maplen);
    st->map = NULL;
}

/* ---- switching ----------------------------------------------------------- */

/* Copies the stack's owner's frames out, so another can run there.  A
 * failed copy loses that coroutine (its loop ends its request). */
static void
evict(struct ss_coro_stack *st)
{
    struct ss_coro *o = st->owner;
    size_t len;

    st->owner = NULL;
    if (o == NULL || o->done)
        return;
    len = (size_t)(st->top - (char *)o->sp);
    if (len > o->cap || o->cap > 4 * len + 4096) {
        size_t cap = (len + 255) & ~(size_t)255;
        char *p = realloc(o->save, cap);

        if (p == NULL) {
            o->lost = true;
            return;
        }
        o->save = p;
        o->cap = cap;
    }
    unpoison(o->sp, len);
    memcpy(o->save, o->sp, len);
    o->saved = len;
}

/* Runs c, which is on the stack, until it comes back to the loop. */
static void
run(struct ss_coro_stack *st, struct ss_coro *c)
{
    sigset_t held;

    st->current = c;
    signals_hold(&held);
    san_enter(st, c);
    fiber_to(c->san_fiber);
    ss_coro_switch(&st->loop_sp, c->sp);
    san_left(st, c);
    signals_release(&held);
    st->current = NULL;
    if (c->done || c->overflowed) {
        st->owner = NULL;
        fiber_free(c);
    }
}

/* The first frame of every coroutine: runs fn, then leaves for good. */
static void
coro_main(void *arg)
{
    struct ss_coro *c = arg;
    struct ss_coro_stack *st = this_stack;
    void *dead;

    san_entered(st, c);
    c->fn(c->arg);
    c->done = true;
    san_leave(st, c);
    fiber_to(st->loop_fiber);
    ss_coro_switch(&dead, st->loop_sp);
}

void
ss_coro_start(struct ss_coro_stack *st, struct ss_coro *c,
              void (*fn)(void *), void *arg)
{
    uint64_t *frame;
    uint32_t ctl[2];

    evict(st);
    c->fn = fn;
    c->arg = arg;
    /* the frame ss_coro_switch pops: control words, r15, r14, r13 (the
     * function), r12 (its argument), rbx, rbp, and the return address */
    frame = (uint64_t *)(void *)(st->top - 64);
    vg_writable(frame, 64);
    __asm__ volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(ctl[0]), "=m"(ctl[1]));
    memcpy(&frame[0], ctl, sizeof ctl);
    frame[1] = 0;
    frame[2] = 0;
    frame[3] = (uint64_t)(uintptr_t)coro_main;
    frame[4] = (uint64_t)(uintptr_t)c;
    frame[5] = 0;
    frame[6] = 0;
    frame[7] = (uint64_t)(uintptr_t)ss_coro_boot;
    unpoison(frame, 64);
    c->sp = frame;
    fiber_new(c);
    st->owner = c;
    run(st, c);
}

void
ss_coro_resume(struct ss_coro_stack *st, struct ss_coro *c)
{
    if (st->owner != c) {
        evict(st);
        if (c->lost)
            return;
        unpoison(c->sp, c->saved);
        vg_writable(c->sp, c->saved);
        memcpy(c->sp, c->save, c->saved);
        st->owner = c;
    }
    run(st, c);
}

void
ss_coro_suspend(struct ss_coro_stack *st)
{
    struct ss_coro *c = st->current;

    san_leave(st, c);
    fiber_to(st->loop_fiber);
    ss_coro_switch(&c->sp, st->loop_sp);
    san_entered(st, c);
}

void
ss_coro_free(struct ss_coro_stack *st, struct ss_coro *c)
{
    if (st->owner == c)
        st->owner = NULL;
    fiber_free(c);
    free(c->save);
    c->save = NULL;
    c->cap = c->saved = 0;
}
