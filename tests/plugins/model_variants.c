/* Test-only plugin whose handshake and model are bent by compile
 * definitions, one image per loader error the host must report:
 *
 *   VARIANT_ABI_MAJOR2     declares ABI 2.0
 *   VARIANT_OLD_MINOR      tables as a plugin built against a header with
 *                          fewer members would have them (smaller struct_size)
 *   VARIANT_NEWER_MINOR    declares ABI 1.<current+3> with larger tables
 *   VARIANT_EMPTY_NAME     an event name is ""
 *   VARIANT_DUP_COMMAND    a command name appears twice
 *   VARIANT_NON_UTF8       the actor type name is not UTF-8
 *   VARIANT_UNSAFE_NAME    a command name contains '.'
 *   VARIANT_NO_HOOK        on_apply is NULL
 *   VARIANT_TYPE_NAME=...  the actor type name (default "Probe")
 *   VARIANT_PLUGIN_NAME=.. the plugin name (default "probe")
 *
 * The actor type is a trivial one-number state so that an accepted variant
 * can also be driven through the host.
 */
#include <aether/abi.h>

#include <stdlib.h>
#include <string.h>

#ifndef VARIANT_TYPE_NAME
#define VARIANT_TYPE_NAME "Probe"
#endif
#ifndef VARIANT_PLUGIN_NAME
#define VARIANT_PLUGIN_NAME "probe"
#endif

typedef struct probe_state {
  long hits;
} probe_state;

#if defined(VARIANT_DUP_COMMAND)
static const char *const command_names[] = {"Hit", "Hit"};
#elif defined(VARIANT_UNSAFE_NAME)
static const char *const command_names[] = {"Hit", "bad.name"};
#else
static const char *const command_names[] = {"Hit", "Miss"};
#endif

#if defined(VARIANT_EMPTY_NAME)
static const char *const event_names[] = {"WasHit", ""};
#else
static const char *const event_names[] = {"WasHit", "WasMissed"};
#endif

#if defined(VARIANT_NON_UTF8)
#define TYPE_NAME "Pr\xff\xfe"
#else
#define TYPE_NAME VARIANT_TYPE_NAME
#endif

static aether_status on_create(aether_type_call *call, void **out) {
  (void)call;
  *out = calloc(1, sizeof(probe_state));
  return *out ? AETHER_OK : AETHER_ERR_NO_MEMORY;
}
static void on_destroy(void *s) { free(s); }
static aether_status on_decide(aether_type_call *call, const void *s,
                               const aether_type_command *c) {
  (void)s;
  if (c->index == 1) {
    call->host->aether_host_reject(call, "missed", 6, "a miss", 6);
    return AETHER_REJECTED;
  }
  return call->host->aether_host_emit(call, "WasHit", 6, (const uint8_t *)"{}", 2);
}
__attribute__((unused)) static aether_status on_apply(aether_type_call *call, void *s, const aether_type_event *e) {
  (void)call;
  (void)e;
  ((probe_state *)s)->hits++;
  return AETHER_OK;
}
static aether_status on_snapshot(aether_type_call *call, const void *s) {
  char c = (char)('0' + (((const probe_state *)s)->hits % 10));
  return call->host->aether_host_write(call, (const uint8_t *)&c, 1);
}
static aether_status on_restore(aether_type_call *call, void *s, const uint8_t *b, size_t n) {
  (void)call;
  ((probe_state *)s)->hits = n > 0 ? b[0] - '0' : 0;
  return AETHER_OK;
}
static aether_status on_view(aether_type_call *call, const void *s) {
  char buf[32] = "{\"hits\":";
  size_t n = strlen(buf);
  buf[n++] = (char)('0' + (((const probe_state *)s)->hits % 10));
  buf[n++] = '}';
  return call->host->aether_host_write(call, (const uint8_t *)buf, n);
}

#if defined(VARIANT_NEWER_MINOR)
/* A table as a later 1.x header could define it: one more member. */
typedef struct actor_def_newer {
  aether_type_actor_def base;
  void *added_in_a_later_minor;
} actor_def_newer;
static const actor_def_newer probe_newer = {
    {sizeof(actor_def_newer), TYPE_NAME, 1, command_names, 2, event_names, 2, on_create,
     on_destroy, on_decide, on_apply, on_snapshot, on_restore, on_view, NULL, NULL},
    NULL};
#define PROBE_DEF (&probe_newer.base)
#else
static const aether_type_actor_def probe = {
#if defined(VARIANT_OLD_MINOR)
    /* Ends at on_view: no on_upgrade_state, no type_data. The garbage in
     * those members must be ignored by the host. */
    offsetof(aether_type_actor_def, on_upgrade_state),
#else
    sizeof(aether_type_actor_def),
#endif
    TYPE_NAME, 1, command_names, 2, event_names, 2, on_create, on_destroy, on_decide,
#if defined(VARIANT_NO_HOOK)
    NULL,
#else
    on_apply,
#endif
    on_snapshot, on_restore, on_view,
#if defined(VARIANT_OLD_MINOR)
    (aether_on_upgrade_state)(void (*)(void))0x1, (void *)0x1,
#else
    NULL, NULL,
#endif
};
#define PROBE_DEF (&probe)
#endif

static const aether_type_actor_def *const types[] = {PROBE_DEF};

static const aether_type_plugin_def plugin = {
    sizeof(aether_type_plugin_def),
#if defined(VARIANT_ABI_MAJOR2)
    2, 0,
#elif defined(VARIANT_NEWER_MINOR)
    AETHER_ABI_MAJOR, AETHER_ABI_MINOR + 3,
#else
    AETHER_ABI_MAJOR, AETHER_ABI_MINOR,
#endif
    VARIANT_PLUGIN_NAME, "0.0.1", types, 1};

__attribute__((visibility("default"))) aether_status aether_plugin_entry(
    const aether_host_api *host, const aether_type_plugin_def **out) {
  (void)host;
  *out = &plugin;
  return AETHER_OK;
}
