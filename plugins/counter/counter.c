/* The counter plugin, in plain C11 against abi.h alone: proof that the ABI
 * needs no C++.
 *
 * Actor type Counter (state schema 1).
 * Commands: Increment {by?}, Decrement {by?}, Reset {}   (by defaults to 1)
 * Events:   Incremented {by}, Decremented {by}, Reset {}
 * Rules: `by` is a positive integer (at most 2^63-1); a decrement below zero
 * is refused (would_go_negative), an increment past 2^63-1 too
 * (would_overflow). Snapshots and views are {"value":N}.
 */
#include <aether/abi.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__)
#define COUNTER_EXPORT __attribute__((visibility("default")))
#else
#define COUNTER_EXPORT
#endif

typedef struct counter_state {
  int64_t value;
} counter_state;

enum { CMD_INCREMENT, CMD_DECREMENT, CMD_RESET };
enum { EV_INCREMENTED, EV_DECREMENTED, EV_RESET };

static const char *const command_names[] = {"Increment", "Decrement", "Reset"};
static const char *const event_names[] = {"Incremented", "Decremented", "Reset"};

static aether_status fail(aether_type_call *call, aether_status st,
                          const char *message) {
  call->host->aether_host_fail(call, message, strlen(message));
  return st;
}

/* Finds the integer value of "key" in a flat JSON object. Returns 1 and sets
 * *out when found, 0 when the key is absent, -1 when the value is not an
 * integer or the text is not an object, -2 when the integer is out of the
 * range of int64_t. */
static int json_int_field(const uint8_t *bytes, size_t len, const char *key,
                          int64_t *out) {
  char buf[512];
  size_t klen = strlen(key);
  const char *p;
  if (len == 0) return 0;
  if (len >= sizeof buf) return -1;
  memcpy(buf, bytes, len);
  buf[len] = '\0';
  p = buf;
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') ++p;
  if (*p != '{') return -1;
  for (p = strchr(p, '"'); p != NULL; p = strchr(p + 1, '"')) {
    if (strncmp(p + 1, key, klen) == 0 && p[1 + klen] == '"') {
      const char *v = p + 2 + klen;
      char *end;
      long long n;
      while (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r') ++v;
      if (*v != ':') continue;
      ++v;
      while (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r') ++v;
      errno = 0;
      n = strtoll(v, &end, 10);
      if (end == v || (*end != ',' && *end != '}' && *end != ' ' && *end != '\n')) {
        return -1;
      }
      if (errno == ERANGE) return -2;
      *out = (int64_t)n;
      return 1;
    }
  }
  return 0;
}

static aether_status write_value(aether_type_call *call, int64_t value) {
  char buf[48];
  int n = snprintf(buf, sizeof buf, "{\"value\":%" PRId64 "}", value);
  return call->host->aether_host_write(call, (const uint8_t *)buf, (size_t)n);
}

static aether_status on_create(aether_type_call *call, void **out_state) {
  counter_state *s = (counter_state *)calloc(1, sizeof *s);
  if (s == NULL) return fail(call, AETHER_ERR_NO_MEMORY, "out of memory");
  *out_state = s;
  return AETHER_OK;
}

static void on_destroy(void *state) { free(state); }

static aether_status on_decide(aether_type_call *call, const void *state,
                               const aether_type_command *cmd) {
  const counter_state *s = (const counter_state *)state;
  int64_t by = 1;
  char payload[48];
  int n;
  if (cmd->index == CMD_RESET) {
    return call->host->aether_host_emit(call, "Reset", 5, (const uint8_t *)"{}", 2);
  }
  switch (json_int_field(cmd->payload, cmd->payload_len, "by", &by)) {
    case -1: return fail(call, AETHER_ERR_BAD_INPUT, "field 'by' must be an integer");
    case -2: return fail(call, AETHER_ERR_BAD_INPUT, "field 'by' must be at most 9223372036854775807");
    default: break;
  }
  if (by <= 0) return fail(call, AETHER_ERR_BAD_INPUT, "field 'by' must be positive");
  if (cmd->index == CMD_DECREMENT && by > s->value) {
    static const char code[] = "would_go_negative";
    static const char msg[] = "counter cannot go below zero";
    call->host->aether_host_reject(call, code, sizeof code - 1, msg, sizeof msg - 1);
    return AETHER_REJECTED;
  }
  if (cmd->index == CMD_INCREMENT && by > INT64_MAX - s->value) {
    static const char code[] = "would_overflow";
    static const char msg[] = "counter cannot go above 9223372036854775807";
    call->host->aether_host_reject(call, code, sizeof code - 1, msg, sizeof msg - 1);
    return AETHER_REJECTED;
  }
  n = snprintf(payload, sizeof payload, "{\"by\":%" PRId64 "}", by);
  if (cmd->index == CMD_INCREMENT) {
    return call->host->aether_host_emit(call, "Incremented", 11,
                                        (const uint8_t *)payload, (size_t)n);
  }
  return call->host->aether_host_emit(call, "Decremented", 11,
                                      (const uint8_t *)payload, (size_t)n);
}

static aether_status on_apply(aether_type_call *call, void *state,
                              const aether_type_event *ev) {
  counter_state *s = (counter_state *)state;
  int64_t by = 0;
  if (ev->index == EV_RESET) {
    s->value = 0;
    return AETHER_OK;
  }
  if (json_int_field(ev->payload, ev->payload_len, "by", &by) != 1) {
    return fail(call, AETHER_ERR_BAD_INPUT, "event has no integer field 'by'");
  }
  /* decide() never emits an event that leaves 0..INT64_MAX; a stored one
   * that would is refused rather than wrapped. */
  if (by < 0 || (ev->index == EV_INCREMENTED ? by > INT64_MAX - s->value : by > s->value)) {
    return fail(call, AETHER_ERR_BAD_INPUT, "event would take the counter out of 0..2^63-1");
  }
  s->value += ev->index == EV_INCREMENTED ? by : -by;
  return AETHER_OK;
}

static aether_status on_snapshot(aether_type_call *call, const void *state) {
  return write_value(call, ((const counter_state *)state)->value);
}

static aether_status on_restore(aether_type_call *call, void *state,
                                const uint8_t *bytes, size_t len) {
  int64_t value = 0;
  if (json_int_field(bytes, len, "value", &value) != 1) {
    return fail(call, AETHER_ERR_BAD_INPUT, "snapshot has no integer field 'value'");
  }
  ((counter_state *)state)->value = value;
  return AETHER_OK;
}

static aether_status on_view(aether_type_call *call, const void *state) {
  return write_value(call, ((const counter_state *)state)->value);
}

static const aether_type_actor_def counter_type = {
    sizeof(aether_type_actor_def),
    "Counter",
    1,
    command_names,
    3,
    event_names,
    3,
    on_create,
    on_destroy,
    on_decide,
    on_apply,
    on_snapshot,
    on_restore,
    on_view,
    NULL, /* on_upgrade_state */
    NULL, /* type_data */
};

static const aether_type_actor_def *const actor_types[] = {&counter_type};

static const aether_type_plugin_def plugin = {
    sizeof(aether_type_plugin_def),
    AETHER_ABI_MAJOR,
    AETHER_ABI_MINOR,
    "counter",
    "1.0.0",
    actor_types,
    1,
};

COUNTER_EXPORT aether_status aether_plugin_entry(
    const aether_host_api *host, const aether_type_plugin_def **out_def) {
  (void)host;
  *out_def = &plugin;
  return AETHER_OK;
}
