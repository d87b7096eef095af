/* Reads stdin to EOF and writes a transformed copy: each line reversed with ASCII case swapped,
 * prefixed by its number; then totals. Exercises read() in small pieces and buffered output. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void emit_line(unsigned long lineno, const char *s, size_t n)
{
    printf("%4lu: ", lineno);
    for (size_t i = n; i > 0; i--) {
        unsigned char c = (unsigned char)s[i - 1];
        if (isupper(c))
            c = (unsigned char)tolower(c);
        else if (islower(c))
            c = (unsigned char)toupper(c);
        putchar(c);
    }
    putchar('\n');
}

int main(void)
{
    size_t cap = 64, len = 0, total = 0, reads = 0;
    unsigned long lines = 0, checksum = 0;
    char *line = malloc(cap);
    char chunk[7]; /* deliberately small and odd */
    if (!line)
        return 1;
    for (;;) {
        ssize_t n = read(0, chunk, sizeof chunk);
        if (n < 0) {
            perror("read");
            return 1;
        }
        if (n == 0)
            break;
        reads++;
        for (ssize_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)chunk[i];
            total++;
            checksum = checksum * 31 + c;
            if (c == '\n') {
                emit_line(++lines, line, len);
                len = 0;
                continue;
            }
            if (len + 1 >= cap) {
                cap *= 2;
                line = realloc(line, cap);
                if (!line)
                    return 1;
            }
            line[len++] = (char)c;
        }
    }
    if (len > 0)
        emit_line(++lines, line, len);
    printf("bytes=%zu lines=%lu checksum=%016lx reads_nonzero=%s\n", total, lines, checksum,
           reads > 0 || total == 0 ? "yes" : "no");
    ssize_t again = read(0, chunk, sizeof chunk);
    printf("read after EOF returns %zd\n", again);
    free(line);
    return 0;
}
