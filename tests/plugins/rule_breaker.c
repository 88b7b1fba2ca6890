/* A plugin that breaks the host's rules on purpose, one way per command, so
 * that tests/unit/fake_host_rules_test.cpp can check that the SDK's FakeHost
 * and aether-host's plugin module judge every case alike. Its one event
 * "Done" counts; its view is written as told by the state. */
#include <aether/abi.h>
#include <stdlib.h>
#include <string.h>

static const char *const commands[] = {"Ok",          "EmitBadJson", "EmitUnknown", "EmitNonUtf8",
                                       "EmitDeep",    "RejectThenOk", "EmitThenReject",
                                       "BadInput",    "Fails",       "WriteInDecide"};
static const char *const events[] = {"Done"};

static aether_status create(aether_type_call *call, void **out) {
  (void)call;
  *out = calloc(1, sizeof(long));
  return *out ? AETHER_OK : AETHER_ERR_NO_MEMORY;
}
static void destroy(void *s) { free(s); }

static aether_status emit(aether_type_call *call, const char *name, const char *payload,
                          size_t len) {
  return call->host->aether_host_emit(call, name, strlen(name), (const uint8_t *)payload, len);
}

static aether_status decide(aether_type_call *call, const void *s, const aether_type_command *c) {
  static char deep[2 * 1100 + 1];
  const aether_host_api *h = call->host;
  (void)s;
  switch (c->index) {
    case 0: return emit(call, "Done", "{}", 2);
    case 1: emit(call, "Done", "{\"a\":", 5); return AETHER_OK;
    case 2: emit(call, "Nope", "{}", 2); return AETHER_OK;
    case 3: emit(call, "Done", "{\"a\":\"\xff\"}", 9); return AETHER_OK;
    case 4:
      memset(deep, '[', 1100);
      memset(deep + 1100, ']', 1100);
      emit(call, "Done", deep, 2200);
      return AETHER_OK;
    case 5:
      h->aether_host_reject(call, "nope", 4, "refused, then OK", 16);
      return AETHER_OK;
    case 6:
      emit(call, "Done", "{}", 2);
      h->aether_host_reject(call, "late", 4, "emitted, then refused", 21);
      return AETHER_REJECTED;
    case 7: h->aether_host_fail(call, "cannot read it", 14); return AETHER_ERR_BAD_INPUT;
    case 8: h->aether_host_fail(call, "broken", 6); return AETHER_ERR_FAILED;
    default: h->aether_host_write(call, (const uint8_t *)"x", 1); return AETHER_OK;
  }
}
static aether_status apply(aether_type_call *call, void *s, const aether_type_event *e) {
  (void)call; (void)e;
  ++*(long *)s;
  return AETHER_OK;
}
static aether_status snapshot(aether_type_call *call, const void *s) {
  (void)s;
  return call->host->aether_host_write(call, (const uint8_t *)"{}", 2);
}
static aether_status restore(aether_type_call *call, void *s, const uint8_t *b, size_t n) {
  (void)call; (void)s; (void)b; (void)n;
  return AETHER_OK;
}
/* A view that is not JSON once three events were applied. */
static aether_status view(aether_type_call *call, const void *s) {
  const char *text = *(const long *)s >= 3 ? "{\"n\":" : "{\"n\":0}";
  return call->host->aether_host_write(call, (const uint8_t *)text, strlen(text));
}

static const aether_type_actor_def breaker = {
    sizeof(aether_type_actor_def), "Breaker", 1, commands, 10, events, 1,
    create, destroy, decide, apply, snapshot, restore, view, NULL, NULL};
static const aether_type_actor_def *const types[] = {&breaker};
static const aether_type_plugin_def plugin = {
    sizeof(aether_type_plugin_def), AETHER_ABI_MAJOR, AETHER_ABI_MINOR,
    "breaker", "1.0.0", types, 1};

__attribute__((visibility("default")))
aether_status aether_plugin_entry(const aether_host_api *host,
                                  const aether_type_plugin_def **out) {
  (void)host;
  *out = &plugin;
  return AETHER_OK;
}
