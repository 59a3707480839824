/* A static program: it needs nothing from the image it runs in, so it ships on scratch. */
#include <stdio.h>
#include <sys/utsname.h>

int main(void)
{
    struct utsname u;
    if (uname(&u) != 0) {
        perror("uname");
        return 1;
    }
    printf("hello from a static binary on %s\n", u.machine);
    return 0;
}
