/* Test-only: a well-formed shared library that is not an aether plugin. */
__attribute__((visibility("default"))) int not_an_aether_plugin(void) { return 42; }
