/*
 * aether plugin ABI, version 1.0.
 *
 * This header is the only thing an aether host and a plugin share. It is pure
 * C11 and depends on nothing but <stdint.h>, <stddef.h> and <stdbool.h>, so a
 * plugin can be written in C, in C++ (see sdk.hpp) or in anything that speaks
 * the C calling convention, and built with any compiler.
 *
 * Names:   aether_type_*  types shared by both sides
 *          aether_on_*    hooks the plugin implements (function pointers in
 *                         the tables the plugin hands to the host)
 *          aether_host_*  callbacks the host implements and hands over
 *
 * Rules (see docs/abi.md):
 *  - Every table starts with `struct_size` and is append-only: new members go
 *    at the end under a comment naming the minor version that added them. A
 *    reader must check `struct_size` before touching a member added after the
 *    version it was built against. A signature never changes; a changed hook
 *    gets a new member with a `_v2` suffix.
 *  - No C++ type, no exception, no allocator ever crosses this boundary. Every
 *    hook returns an aether_status; details travel through host callbacks.
 *  - Memory is never freed on the other side of the boundary. Buffers handed
 *    to a hook are borrowed until the hook returns; whatever the plugin emits
 *    or writes through a host callback is copied by the host before the
 *    callback returns.
 *  - Strings are UTF-8. Where a length is given, the string is not required to
 *    be NUL-terminated; names in the model tables are NUL-terminated.
 *
 * The ABI is pinned by a test (tests/unit/abi_pin_test.cpp): editing this file
 * changes its hash and fails the build's tests until the pin is updated on
 * purpose, together with AETHER_ABI_MINOR (append) or AETHER_ABI_MAJOR (break).
 */
#ifndef AETHER_ABI_H
#define AETHER_ABI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Versions                                                                  */
/* ------------------------------------------------------------------------ */

/* A host accepts a plugin whose abi_major equals its own, whatever the minor
 * (older minors lack trailing members; newer minors add members the host
 * ignores). A different major is refused with a message naming both. */
#define AETHER_ABI_MAJOR 1
#define AETHER_ABI_MINOR 0

/* The name of the one symbol a plugin exports (see aether_type_entry_fn). */
#define AETHER_ENTRY_SYMBOL "aether_plugin_entry"

/* ------------------------------------------------------------------------ */
/* Status codes                                                              */
/* ------------------------------------------------------------------------ */

/* Every hook and every host callback returns one of these. A fixed-width
 * integer, not an enum, so its size never depends on the compiler. */
typedef int32_t aether_status;

/* The call did what it was asked. */
#define AETHER_OK ((aether_status)0)
/* decide(): the command is refused for a domain reason (insufficient funds,
 * order already shipped). The plugin has called host->reject() with a code
 * and a message; no event is stored. Not an error of the plugin. */
#define AETHER_REJECTED ((aether_status)1)
/* The input could not be decoded: malformed JSON, a payload missing a field,
 * snapshot bytes of an unknown format. The plugin should have called
 * host->fail() with the reason. */
#define AETHER_ERR_BAD_INPUT ((aether_status)2)
/* The plugin failed for another reason (a C++ exception caught at the
 * boundary, a broken invariant). The plugin should have called host->fail().
 * The host discards the call's output and keeps the actor as it was. */
#define AETHER_ERR_FAILED ((aether_status)3)
/* The hook or the requested operation is not supported by this plugin
 * (for example upgrade_state from a schema version it does not know). */
#define AETHER_ERR_UNSUPPORTED ((aether_status)4)
/* Memory could not be allocated. */
#define AETHER_ERR_NO_MEMORY ((aether_status)5)
/* Host callbacks only: the arguments were refused (an event name that is not
 * in the actor type's model, a NULL pointer, a call after the hook returned).
 * A plugin that gets this from a callback should return it from its hook. */
#define AETHER_ERR_INVALID_ARGUMENT ((aether_status)6)

/* Log levels for host->log(). */
#define AETHER_LOG_DEBUG ((int32_t)0)
#define AETHER_LOG_INFO ((int32_t)1)
#define AETHER_LOG_WARN ((int32_t)2)
#define AETHER_LOG_ERROR ((int32_t)3)

/* ------------------------------------------------------------------------ */
/* Records handed to hooks                                                   */
/* ------------------------------------------------------------------------ */

struct aether_host_api;

/* The context of one hook invocation. Pass it back to every host callback
 * made while the hook runs.
 * OWNERSHIP: owned by the host; borrowed by the plugin until the hook returns.
 * The plugin must not keep the pointer or call the host with it afterwards. */
typedef struct aether_type_call {
  /* The host's callback table. Never NULL. */
  const struct aether_host_api *host;
  /* Host-private data for this call; the plugin must not touch it. */
  void *host_data;
  /* The `type_data` of the actor type whose hook runs (see
   * aether_type_actor_def), so one set of hooks can serve several types.
   * NULL in aether_plugin_entry. */
  void *type_data;
} aether_type_call;

/* A command addressed to one actor, validated by the host against the model
 * before the plugin sees it: `index` is the position of `name` in the actor
 * type's command_names.
 * OWNERSHIP: all pointers borrowed from the host until the hook returns. */
typedef struct aether_type_command {
  uint32_t index;          /* position in aether_type_actor_def.command_names */
  const char *name;        /* NUL-terminated command name */
  const uint8_t *payload;  /* UTF-8 JSON document (an object), not NUL-terminated */
  size_t payload_len;
  const char *actor_id;    /* NUL-terminated actor id, from the safe alphabet */
  uint64_t version;        /* the actor's current version (events applied) */
} aether_type_command;

/* A committed (or replayed) event to apply: `index` is the position of `name`
 * in the actor type's event_names.
 * OWNERSHIP: all pointers borrowed from the host until the hook returns. */
typedef struct aether_type_event {
  uint32_t index;          /* position in aether_type_actor_def.event_names */
  const char *name;        /* NUL-terminated event name */
  const uint8_t *payload;  /* UTF-8 JSON document, not NUL-terminated */
  size_t payload_len;
  uint64_t version;        /* the version this event gives the actor (1-based) */
} aether_type_event;

/* ------------------------------------------------------------------------ */
/* Host callbacks                                                            */
/* ------------------------------------------------------------------------ */

/* Callbacks the host implements. A plugin reaches them through
 * `call->host`. Each returns AETHER_OK or AETHER_ERR_INVALID_ARGUMENT.
 * OWNERSHIP: the table is owned by the host and lives at least as long as the
 * plugin is loaded. */
typedef struct aether_host_api {
  /* sizeof(aether_host_api) in the host. A plugin built against a newer minor
   * checks it before calling a member added after 1.0. */
  uint32_t struct_size;
  uint32_t abi_major;
  uint32_t abi_minor;

  /* decide() only: emit an event named `name` (one of the actor type's
   * event_names) with a JSON payload. Events are stored in emit order, all or
   * none. Returns AETHER_ERR_INVALID_ARGUMENT for a name not in the model or
   * when called outside decide().
   * OWNERSHIP: `name` and `payload` are borrowed; the host copies both before
   * returning. */
  aether_status (*aether_host_emit)(aether_type_call *call, const char *name,
                                    size_t name_len, const uint8_t *payload,
                                    size_t payload_len);

  /* decide() only: refuse the command for a domain reason. `code` is a short
   * machine-readable token (e.g. "insufficient_funds"), `message` is for
   * people. The hook then returns AETHER_REJECTED. Events already emitted in
   * this call are discarded.
   * OWNERSHIP: `code` and `message` are borrowed; the host copies them. */
  aether_status (*aether_host_reject)(aether_type_call *call, const char *code,
                                      size_t code_len, const char *message,
                                      size_t message_len);

  /* snapshot(), view() and upgrade_state() only: append bytes to the hook's
   * output (the snapshot bytes, the JSON view, the upgraded snapshot). May be
   * called several times; the pieces are concatenated.
   * OWNERSHIP: `bytes` is borrowed; the host copies it. */
  aether_status (*aether_host_write)(aether_type_call *call,
                                     const uint8_t *bytes, size_t len);

  /* Any hook: say why the hook is about to return an error status. The last
   * message wins. The host adds the plugin, actor type and hook name.
   * OWNERSHIP: `message` is borrowed; the host copies it. */
  aether_status (*aether_host_fail)(aether_type_call *call,
                                    const char *message, size_t message_len);

  /* Any time, from any thread: write a line to the host's log. `call` may be
   * NULL outside a hook.
   * OWNERSHIP: `message` is borrowed; the host copies it. */
  void (*aether_host_log)(aether_type_call *call, int32_t level,
                          const char *message, size_t message_len);

  /* New members go here, under a comment naming the minor version. */
} aether_host_api;

/* ------------------------------------------------------------------------ */
/* Hooks the plugin implements                                               */
/* ------------------------------------------------------------------------ */

/* An actor's state is an opaque handle owned by the plugin. The host never
 * looks inside; it only hands it back to the hooks of the same actor type of
 * the same loaded plugin image. Hooks of one actor are never called
 * concurrently; hooks of different actors may run in parallel on different
 * threads, so a plugin must not share mutable globals between actors. */

/* Create the state of a new, empty actor (version 0).
 * OWNERSHIP: on AETHER_OK, *out_state is owned by the plugin and released by
 * the host through aether_on_destroy of the same actor type. */
typedef aether_status (*aether_on_create)(aether_type_call *call,
                                          void **out_state);

/* Release a state made by aether_on_create.
 * OWNERSHIP: takes back ownership of `state`; the host never uses it again. */
typedef void (*aether_on_destroy)(void *state);

/* Decide what a command means: emit 0..n events through host->emit, or refuse
 * it through host->reject and return AETHER_REJECTED. Must not change
 * `state`: events change state only through apply, which the host calls after
 * the events are stored.
 * OWNERSHIP: `state` and `command` are borrowed until the hook returns. */
typedef aether_status (*aether_on_decide)(aether_type_call *call,
                                          const void *state,
                                          const aether_type_command *command);

/* Apply one event to the state. Called after the event is stored, and during
 * replay. Should not fail for an event decide() emitted; if it does, the host
 * reports the actor as corrupt rather than guessing.
 * OWNERSHIP: `state` is borrowed mutably, `event` borrowed, until return. */
typedef aether_status (*aether_on_apply)(aether_type_call *call, void *state,
                                         const aether_type_event *event);

/* Serialize the state into snapshot bytes through host->write. The format is
 * the plugin's own; the host records the state_schema_version beside it.
 * OWNERSHIP: `state` is borrowed until return; written bytes are copied. */
typedef aether_status (*aether_on_snapshot)(aether_type_call *call,
                                            const void *state);

/* Replace the contents of `state` (fresh from aether_on_create) with the
 * state encoded in `bytes`, which aether_on_snapshot of the same
 * state_schema_version produced.
 * OWNERSHIP: `state` is borrowed mutably; `bytes` borrowed until return. */
typedef aether_status (*aether_on_restore)(aether_type_call *call,
                                           void *state, const uint8_t *bytes,
                                           size_t len);

/* Write a JSON document describing the state, for queries, through
 * host->write.
 * OWNERSHIP: `state` is borrowed until return; written bytes are copied. */
typedef aether_status (*aether_on_view)(aether_type_call *call,
                                        const void *state);

/* Optional. Convert snapshot bytes written by a state_schema_version
 * `from_schema` of this actor type into bytes of the current schema, written
 * through host->write. Return AETHER_ERR_UNSUPPORTED for a schema it cannot
 * upgrade; the host then replays events instead.
 * OWNERSHIP: `bytes` borrowed until return; written bytes are copied. */
typedef aether_status (*aether_on_upgrade_state)(aether_type_call *call,
                                                 uint32_t from_schema,
                                                 const uint8_t *bytes,
                                                 size_t len);

/* ------------------------------------------------------------------------ */
/* The domain model                                                          */
/* ------------------------------------------------------------------------ */

/* One actor type: its name, the commands it accepts, the events it produces,
 * the schema version of its state, and its hooks. Names are non-empty UTF-8
 * made of [A-Za-z0-9_-] (safe as a NATS subject token and a file name),
 * unique within their list.
 * OWNERSHIP: the table, its arrays and strings are owned by the plugin and
 * must stay valid and unchanged while the plugin is loaded (static storage). */
typedef struct aether_type_actor_def {
  uint32_t struct_size;  /* sizeof(aether_type_actor_def) in the plugin */
  const char *name;      /* actor type name, e.g. "BankAccount" */
  uint32_t state_schema_version;
  const char *const *command_names;
  uint32_t command_count;
  const char *const *event_names;
  uint32_t event_count;

  aether_on_create on_create;      /* required */
  aether_on_destroy on_destroy;    /* required */
  aether_on_decide on_decide;      /* required */
  aether_on_apply on_apply;        /* required */
  aether_on_snapshot on_snapshot;  /* required */
  aether_on_restore on_restore;    /* required */
  aether_on_view on_view;          /* required */
  aether_on_upgrade_state on_upgrade_state; /* optional: NULL if absent */

  /* Handed back in aether_type_call.type_data to every hook of this type.
   * OWNERSHIP: owned by the plugin; the host only copies the pointer. */
  void *type_data;

  /* New members go here, under a comment naming the minor version. */
} aether_type_actor_def;

/* What a plugin is: its identity, the ABI it was built against, its actor
 * types.
 * OWNERSHIP: owned by the plugin, static storage, valid and unchanged while
 * the plugin is loaded. */
typedef struct aether_type_plugin_def {
  uint32_t struct_size; /* sizeof(aether_type_plugin_def) in the plugin */
  uint32_t abi_major;   /* AETHER_ABI_MAJOR the plugin was built with */
  uint32_t abi_minor;   /* AETHER_ABI_MINOR the plugin was built with */
  const char *name;     /* plugin name, same alphabet as actor type names */
  const char *version;  /* free-form version text, e.g. "1.4.2" */
  /* An array of pointers, so each table carries its own struct_size. */
  const aether_type_actor_def *const *actor_types;
  uint32_t actor_type_count;

  /* New members go here, under a comment naming the minor version. */
} aether_type_plugin_def;

/* ------------------------------------------------------------------------ */
/* The entry symbol                                                          */
/* ------------------------------------------------------------------------ */

/* The one symbol a plugin exports, named AETHER_ENTRY_SYMBOL:
 *
 *   aether_status aether_plugin_entry(const aether_host_api *host,
 *                                     const aether_type_plugin_def **out_def);
 *
 * Called once after loading, before any other hook. The plugin checks
 * host->abi_major if it wishes and sets *out_def. It may keep `host` for
 * logging outside hooks. Returning an error status refuses the load; the
 * plugin may call host->aether_host_log (with call NULL) to say why.
 * OWNERSHIP: `host` is owned by the host and outlives the plugin; *out_def is
 * owned by the plugin (static storage). */
typedef aether_status (*aether_type_entry_fn)(
    const aether_host_api *host, const aether_type_plugin_def **out_def);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* AETHER_ABI_H */
