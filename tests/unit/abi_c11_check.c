/* Compiled by the abi_c11 test with -std=c11 -Wall -Wextra -pedantic -Werror. */
#include <aether/abi.h>

int main(void) {
  aether_type_plugin_def def = {0};
  def.struct_size = sizeof def;
  return def.abi_major == AETHER_ABI_MAJOR ? 1 : 0;
}
