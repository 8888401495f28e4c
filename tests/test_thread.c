/* test_thread.c - thread_set_background lowers the calling thread's priority only. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/thread.h"

static int nice_of_self(void)
{
    errno = 0;
    return getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
}

struct probe {
    int rc, before, after;
};

static void *background_main(void *arg)
{
    struct probe *p = arg;
    p->before = nice_of_self();
    p->rc = thread_set_background();
    p->after = nice_of_self();
    return NULL;
}

static void lowers_only_the_calling_thread(void **state)
{
    (void)state;
    int main_before = nice_of_self();
    struct probe p = {0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, background_main, &p), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.after,
                     main_before > THREAD_BACKGROUND_NICE ? main_before : THREAD_BACKGROUND_NICE);
    assert_int_equal(p.before, main_before);
    assert_int_equal(nice_of_self(), main_before); /* the process and this thread keep theirs */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lowers_only_the_calling_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
