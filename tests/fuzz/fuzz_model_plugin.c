/* The plugin the model fuzzer loads (fuzz_plugin_model.cpp): it hands over
 * whatever table the fuzzer built from its current input. */
#include <aether/abi.h>

aether_status aether_fuzz_model(const aether_host_api *host, const aether_type_plugin_def **out_def);

__attribute__((visibility("default"))) aether_status aether_plugin_entry(
    const aether_host_api *host, const aether_type_plugin_def **out_def) {
  return aether_fuzz_model(host, out_def);
}
