/* Test-only: a shared library whose constructor creates the file named by
 * the environment variable AETHER_TEST_CTOR_MARKER as soon as the dynamic
 * loader maps it. It has no aether entry symbol: a host that refuses it
 * before dlopen leaves no marker; one that dlopens it first does. */
#include <stdio.h>
#include <stdlib.h>

__attribute__((constructor)) static void leave_marker(void) {
  const char *file = getenv("AETHER_TEST_CTOR_MARKER");
  if (file == NULL || *file == '\0') return;
  FILE *out = fopen(file, "w");
  if (out != NULL) {
    fputs("constructor ran\n", out);
    fclose(out);
  }
}
