// aether-host end to end: the real binary on a free port, driven over HTTP
// and through the aether CLI.
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <cstring>
#include <fstream>
#include <regex>
#include <set>

#include "support/host_process.hpp"
#include "support/temp_dir.hpp"

namespace aether {
namespace {

using json = nlohmann::json;
using test::HostProcess;
using test::run_process;

const std::string kDefaultConfig = std::string(AETHER_SOURCE_DIR) + "/config/aether.yaml";

std::map<std::string, std::string> host_env(const test::TempDir& dir,
                                            std::map<std::string, std::string> extra = {}) {
  std::map<std::string, std::string> env = {{"AETHER_DATA", dir.file("data")},
                                            {"AETHER_LISTEN", "127.0.0.1:0"},
                                            {"AETHER_PLUGIN_DIR", AETHER_PLUGIN_DIR}};
  for (auto& [k, v] : extra) env[k] = v;
  return env;
}

class HostTest : public testing::Test {
 protected:
  void start(std::map<std::string, std::string> extra = {}) {
    host_ = std::make_unique<HostProcess>(std::vector<std::string>{"--config", kDefaultConfig},
                                          host_env(dir_, std::move(extra)), dir_.file("host.log"));
    ASSERT_TRUE(host_->start()) << "host did not start:\n" << host_->log();
    client_ = std::make_unique<httplib::Client>("127.0.0.1", host_->port());
    client_->set_read_timeout(30);
  }

  httplib::Result post(const std::string& path, const std::string& body) {
    return client_->Post(path, body, "application/json");
  }

  test::ProcessResult cli(std::vector<std::string> args) {
    std::vector<std::string> argv = {test::cli_binary(), "--url", host_->url()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv);
  }

  test::TempDir dir_;
  std::unique_ptr<HostProcess> host_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(HostTest, BankAccountOverHttpAndCliSurvivesARestart) {
  start();
  auto r = post("/v1/default/actors/BankAccount/acc-1/commands",
                R"({"command":"Open","payload":{"owner":"ann"}})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  auto j = json::parse(r->body);
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(j["events"][0]["type"], "Opened");

  auto c = cli({"send", "BankAccount", "acc-1", "Deposit", R"({"amount":100})"});
  EXPECT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(c.out, "ok: BankAccount/acc-1 now at version 2\n  v2 Deposited {\"amount\":100}\n");

  r = post("/v1/default/actors/BankAccount/acc-1/commands",
           R"({"command":"Withdraw","payload":{"amount":500}})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 422);
  j = json::parse(r->body);
  EXPECT_EQ(j["error"]["code"], "insufficient_funds");
  EXPECT_EQ(j["error"]["message"], "insufficient funds: balance 100, requested 500");

  c = cli({"send", "BankAccount", "acc-1", "Withdraw", R"({"amount":500})"});
  EXPECT_EQ(c.exit_code, 3);
  EXPECT_EQ(c.err, "error 422 insufficient_funds: insufficient funds: balance 100, requested 500\n");

  c = cli({"send", "BankAccount", "acc-1", "Withdraw", R"({"amount":40})"});
  EXPECT_EQ(c.exit_code, 0) << c.err;

  auto state = client_->Get("/v1/default/actors/BankAccount/acc-1");
  ASSERT_TRUE(state);
  ASSERT_EQ(state->status, 200) << state->body;
  const json before = json::parse(state->body);
  EXPECT_EQ(before["version"], 3);
  EXPECT_EQ(before["state"]["balance"], 60);

  auto events = client_->Get("/v1/default/actors/BankAccount/acc-1/events?from=2");
  ASSERT_TRUE(events);
  j = json::parse(events->body);
  ASSERT_EQ(j["events"].size(), 2u);
  EXPECT_EQ(j["events"][0]["type"], "Deposited");
  EXPECT_EQ(j["events"][1]["payload"]["amount"], 40);
  EXPECT_TRUE(j["events"][0].contains("timestamp"));

  c = cli({"events", "BankAccount", "acc-1"});
  EXPECT_EQ(c.out,
            "v1 Opened {\"owner\":\"ann\"}\nv2 Deposited {\"amount\":100}\nv3 Withdrawn {\"amount\":40}\n");
  c = cli({"state", "BankAccount", "acc-1"});
  EXPECT_EQ(c.exit_code, 0);
  EXPECT_NE(c.out.find("BankAccount/acc-1 at version 3"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("\"balance\": 60"), std::string::npos) << c.out;

  // Restart on the same data directory: same state, same version.
  EXPECT_EQ(host_->stop(), 0) << host_->log();
  EXPECT_NE(host_->log().find("stopped cleanly"), std::string::npos) << host_->log();
  start();
  state = client_->Get("/v1/default/actors/BankAccount/acc-1");
  ASSERT_TRUE(state);
  ASSERT_EQ(state->status, 200);
  EXPECT_EQ(json::parse(state->body), before);
  c = cli({"--json", "state", "BankAccount", "acc-1"});
  EXPECT_EQ(json::parse(c.out), before);
}

TEST_F(HostTest, BadInputMatrix) {
  start();
  struct Case {
    std::string path;
    std::string body;
    int status;
    std::string message_part;
  };
  const std::string bank = "/v1/default/actors/BankAccount/";
  const std::vector<Case> cases = {
      {bank + "a/commands", R"({"command":"Open",)", 400, "malformed JSON in request body"},
      {bank + "a/commands", R"([1])", 400, "request body must be a JSON object"},
      {bank + "a/commands", R"({"payload":{}})", 400, "field 'command' (a string) is required"},
      {bank + "a/commands", R"({"command":"Open","payload":[1]})", 400,
       "field 'payload' must be a JSON object"},
      {"/v1/nope/actors/BankAccount/a/commands", R"({"command":"Open"})", 404,
       "unknown namespace 'nope'"},
      {"/v1/default/actors/Dragon/a/commands", R"({"command":"Open"})", 404,
       "unknown actor type 'Dragon'"},
      {bank + "a/commands", R"({"command":"Steal"})", 404,
       "unknown command 'Steal' for actor type BankAccount"},
      {bank + "a.b/commands", R"({"command":"Open"})", 400, "invalid actor id 'a.b': contains '.'"},
      {bank + "*/commands", R"({"command":"Open"})", 400, "invalid actor id '*': contains '*'"},
      {bank + ">/commands", R"({"command":"Open"})", 400, "invalid actor id '>': contains '>'"},
      {bank + "..%2Fx/commands", R"({"command":"Open"})", 400, "invalid actor id '../x'"},
      {bank + "/commands", R"({"command":"Open"})", 400, "invalid actor id '': is empty"},
      {bank + std::string(10 * 1024, 'x') + "/commands", R"({"command":"Open"})", 414,
       "request URI is too long"},
      {bank + std::string(200, 'x') + "/commands", R"({"command":"Open"})", 400,
       "is 200 bytes long (at most 128)"},
      {bank + "a/commands", R"({"command":"Open","payload":{"owner":"x","pad":")" +
                                std::string(2 << 20, 'p') + "\"}}",
       413, "request body is larger than 1048576 bytes"},
      {bank + "a/commands", R"({"command":"Deposit","payload":{"amount":"ten"}})", 422,
       "account is not open"},
      {bank + "a/commands", R"({"command":"Open","payload":{"owner":7}})", 400,
       "field 'owner': expected a string, got 7"},
  };
  for (const auto& c : cases) {
    auto r = post(c.path, c.body);
    ASSERT_TRUE(r) << c.path.substr(0, 80);
    EXPECT_EQ(r->status, c.status) << c.message_part << " -> " << r->body.substr(0, 300);
    const json j = json::parse(r->body, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "not JSON: " << r->body.substr(0, 200);
    const std::string message = j["error"]["message"];
    EXPECT_NE(message.find(c.message_part), std::string::npos)
        << "wanted '" << c.message_part << "' in: " << message;
  }
  auto r = client_->Get("/v1/default/actors/BankAccount/nobody");
  EXPECT_EQ(r->status, 404);
  r = client_->Get("/v1/default/actors/BankAccount/a/events?from=abc");
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("'from' must be a non-negative integer"), std::string::npos);
  auto c = cli({"send", "BankAccount", "a", "Open", "not json"});
  EXPECT_EQ(c.exit_code, 64);
  c = cli({"send", "Dragon", "a", "Open"});
  EXPECT_EQ(c.exit_code, 5);
  EXPECT_EQ(c.err, "error 404 not_found: unknown actor type 'Dragon'\n");
  // Nothing of the above wrote an event.
  r = client_->Get("/v1/default/actors/BankAccount/a/events");
  EXPECT_EQ(json::parse(r->body)["events"].size(), 0u);
}

TEST_F(HostTest, BearerTokenIsRequiredWhenConfigured) {
  start({{"AETHER_TOKEN", "s3cret"}});
  auto r = post("/v1/default/actors/Counter/c/commands", R"({"command":"Increment"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(json::parse(r->body)["error"]["message"],
            "this host requires 'Authorization: Bearer <token>'");
  client_->set_bearer_token_auth("wrong");
  r = post("/v1/default/actors/Counter/c/commands", R"({"command":"Increment"})");
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(json::parse(r->body)["error"]["message"], "the bearer token is not valid");
  client_->set_bearer_token_auth("s3cret");
  r = post("/v1/default/actors/Counter/c/commands", R"({"command":"Increment"})");
  EXPECT_EQ(r->status, 200) << r->body;
  httplib::Client anon("127.0.0.1", host_->port());
  EXPECT_EQ(anon.Get("/healthz")->status, 200) << "probes need no token";
  auto c = cli({"send", "Counter", "c", "Increment"});
  EXPECT_EQ(c.exit_code, 6);
  c = run_process({test::cli_binary(), "--url", host_->url(), "--token", "s3cret", "state", "Counter", "c"});
  EXPECT_EQ(c.exit_code, 0) << c.err;
}

// Minimal check of the Prometheus text exposition format: every sample line
// is `name{labels} value` with a TYPE declared for its family.
std::map<std::string, double> parse_prometheus(const std::string& text) {
  std::map<std::string, double> samples;
  std::set<std::string> typed;
  const std::regex type_line(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)");
  const std::regex help_line(R"(^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*$)");
  const std::regex sample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? ([-+0-9.eE]+|\+Inf|NaN)$)");
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    std::smatch m;
    if (std::regex_match(line, m, type_line)) {
      typed.insert(m[1]);
    } else if (std::regex_match(line, help_line)) {
    } else if (std::regex_match(line, m, sample)) {
      std::string family = m[1];
      for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        if (!typed.count(family) && family.ends_with(suffix)) {
          family = family.substr(0, family.size() - std::strlen(suffix));
        }
      }
      EXPECT_TRUE(typed.count(family)) << "no TYPE for " << line;
      samples[std::string(m[1]) + std::string(m[2])] = std::stod(m[4]);
    } else {
      ADD_FAILURE() << "not Prometheus text format: " << line;
    }
  }
  return samples;
}

TEST_F(HostTest, MetricsParseAndMoveWithCommands) {
  start();
  auto m = client_->Get("/metrics");
  ASSERT_TRUE(m);
  ASSERT_EQ(m->status, 200);
  auto before = parse_prometheus(m->body);
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(post("/v1/default/actors/Counter/m/commands", R"({"command":"Increment"})")->status, 200);
  }
  ASSERT_EQ(post("/v1/default/actors/Counter/m2/commands", R"({"command":"Decrement"})")->status, 422);
  m = client_->Get("/metrics");
  auto after = parse_prometheus(m->body);
  EXPECT_EQ(after[R"(aether_commands_total{outcome="ok",type="Counter"})"] -
                before[R"(aether_commands_total{outcome="ok",type="Counter"})"],
            5);
  EXPECT_EQ(after[R"(aether_commands_total{outcome="rejected",type="Counter"})"], 1);
  EXPECT_EQ(after[R"(aether_events_appended_total{type="Counter"})"], 5);
  EXPECT_EQ(after[R"(aether_command_duration_seconds_count{type="Counter"})"], 6);
  EXPECT_EQ(after["aether_active_actors"], 2);
  EXPECT_GE(after["aether_store_commit_batch_size_count"], 5);
  EXPECT_EQ(after[R"(aether_replay_events_count{type="Counter"})"], 2);
}

TEST_F(HostTest, PluginsClusterAndProbes) {
  start();
  auto r = client_->Get("/v1/plugins");
  ASSERT_EQ(r->status, 200);
  auto j = json::parse(r->body);
  ASSERT_EQ(j["plugins"].size(), 3u);
  std::set<std::string> names;
  for (const auto& p : j["plugins"]) names.insert(p["name"]);
  EXPECT_EQ(names, (std::set<std::string>{"bank", "counter", "order"}));
  EXPECT_EQ(client_->Get("/healthz")->status, 200);
  EXPECT_EQ(client_->Get("/readyz")->status, 200);
  EXPECT_EQ(json::parse(client_->Get("/v1/cluster")->body)["mode"], "single-node");
  auto c = cli({"plugins"});
  EXPECT_EQ(c.exit_code, 0);
  EXPECT_NE(c.out.find("BankAccount (schema 1)"), std::string::npos) << c.out;
  c = cli({"cluster"});
  EXPECT_EQ(c.exit_code, 0);
  EXPECT_NE(c.out.find("mode: single-node (clustering is off), node node-1"), std::string::npos) << c.out;
  // A host that is not there: exit code 2 and a clear message.
  c = run_process({test::cli_binary(), "--url", "http://127.0.0.1:1", "plugins"});
  EXPECT_EQ(c.exit_code, 2);
  EXPECT_NE(c.err.find("cannot reach http://127.0.0.1:1"), std::string::npos) << c.err;
}

TEST(HostReload, ReloadAndRollbackOverHttpAndCli) {
  test::TempDir dir;
  const std::string tally = dir.file("tally.so");
  std::filesystem::copy_file(std::string(AETHER_TEST_PLUGIN_DIR) + "/tally_v1.so", tally);
  const std::string config = dir.file("host.yaml");
  std::ofstream(config) << "plugins:\n  dir: " << AETHER_PLUGIN_DIR << "\n  list: [bank, " << tally
                        << "]\n  allowed_dirs: [" << AETHER_TEST_PLUGIN_DIR
                        << "]\nstore:\n  backend: memory\napi:\n  http:\n    listen: 127.0.0.1:0\n";
  HostProcess host({"--config", config}, {}, dir.file("host.log"));
  ASSERT_TRUE(host.start()) << host.log();
  httplib::Client client("127.0.0.1", host.port());
  auto cli = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {test::cli_binary(), "--url", host.url()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv);
  };
  ASSERT_EQ(cli({"send", "Tally", "t", "Add", R"({"n":5})"}).exit_code, 0);

  // tally 2.0.0's upgrade_state starts "ops" at 0 where a replay counts the
  // events: the shadow check refuses it until the difference is accepted.
  auto c = cli({"reload", "tally", "--file", std::string(AETHER_TEST_PLUGIN_DIR) + "/tally_v2.so"});
  EXPECT_EQ(c.exit_code, 3) << c.out;
  EXPECT_NE(c.err.find("error 422 shadow_mismatch"), std::string::npos) << c.err;
  EXPECT_NE(c.err.find("default/Tally/t v1, upgrade path vs replay:\n      /ops: expected 1, got 0"),
            std::string::npos)
      << c.err;
  c = cli({"reload", "tally", "--file", std::string(AETHER_TEST_PLUGIN_DIR) + "/tally_v2.so",
           "--accept-differences"});
  EXPECT_EQ(c.exit_code, 0) << c.err;
  EXPECT_NE(c.out.find("differences accepted"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("reloaded tally: 1.0.0 -> 2.0.0, 1 active actors moved (0 by snapshot, 1 by "
                       "upgrade_state, 0 by replay)"),
            std::string::npos)
      << c.out;
  c = cli({"state", "Tally", "t"});
  EXPECT_NE(c.out.find("\"total\": 5"), std::string::npos) << c.out;
  EXPECT_EQ(cli({"send", "Tally", "t", "Add", R"({"n":5000})"}).exit_code, 3) << "v2 refuses n > 1000";

  // A broken image is refused and v2 keeps serving.
  c = cli({"reload", "tally", "--file", std::string(AETHER_TEST_PLUGIN_DIR) + "/tally_abi2.so"});
  EXPECT_EQ(c.exit_code, 3);
  EXPECT_NE(c.err.find("error 422 plugin_refused: reload of plugin tally refused, the loaded version "
                       "keeps serving"),
            std::string::npos)
      << c.err;
  EXPECT_NE(c.err.find("ABI 2.0"), std::string::npos) << c.err;

  c = cli({"reload", "tally", "--to", "previous"});
  EXPECT_EQ(c.exit_code, 0) << c.err;
  EXPECT_NE(c.out.find("2.0.0 -> 1.0.0"), std::string::npos) << c.out;
  EXPECT_EQ(cli({"send", "Tally", "t", "Add", R"({"n":5000})"}).exit_code, 0) << "v1 behaviour again";

  auto r = client.Post("/v1/plugins/nosuch/reload", "", "application/json");
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(json::parse(r->body)["error"]["message"], "no plugin named nosuch is loaded");
  r = client.Post("/v1/plugins/tally/reload", R"({"to":"next"})", "application/json");
  EXPECT_EQ(r->status, 400);
  // Reloading from the source file (still v1) works too.
  r = client.Post("/v1/plugins/tally/reload", "", "application/json");
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(host.stop(), 0);
}

// --- configuration errors ------------------------------------------------------

struct ConfigCase {
  const char* name;
  std::string yaml;
  std::string message;  // after "<file>:"
};

void PrintTo(const ConfigCase& c, std::ostream* os) { *os << c.name; }

class ConfigErrorTest : public testing::TestWithParam<ConfigCase> {};

TEST_P(ConfigErrorTest, NamesFileAndLineAndStartsNothing) {
  test::TempDir dir;
  const std::string file = dir.file("bad.yaml");
  std::ofstream(file) << GetParam().yaml;
  const auto env = host_env(dir);
  auto check = run_process({test::host_binary(), "--check-config", file}, env);
  EXPECT_EQ(check.exit_code, 1);
  EXPECT_NE(check.err.find(file + ":" + GetParam().message), std::string::npos)
      << "wanted '" << file << ":" << GetParam().message << "' in: " << check.err;
  auto run = run_process({test::host_binary(), "--config", file}, env, 20);
  EXPECT_EQ(run.exit_code, 1) << run.err;
  EXPECT_NE(run.err.find(file + ":" + GetParam().message), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find("listening"), std::string::npos) << "it must start nothing";
  EXPECT_FALSE(std::filesystem::exists(dir.file("data"))) << "it must not create the store";
}

const std::string kPlugins = "plugins:\n  dir: " + std::string(AETHER_PLUGIN_DIR) + "\n  list: [bank]\n";

INSTANTIATE_TEST_SUITE_P(
    Cases, ConfigErrorTest,
    testing::Values(
        ConfigCase{"UnknownKey", kPlugins + "actors:\n  snapshot:\n    evry: 10\n",
                   "6: actors.snapshot.evry: unknown key (known here: every, keep)"},
        ConfigCase{"WrongType", kPlugins + "actors:\n  mailbox_size: lots\n",
                   "5: actors.mailbox_size: expected an unsigned integer, got 'lots'"},
        ConfigCase{"OutOfRange", kPlugins + "actors:\n  io_threads: 0\n",
                   "5: actors.io_threads: must be between 1 and 1024, got 0"},
        ConfigCase{"WrongShape", kPlugins + "api:\n  http: 8080\n", "5: api.http: expected a mapping"},
        ConfigCase{"MissingPluginFile",
                   "plugins:\n  dir: " + std::string(AETHER_PLUGIN_DIR) + "\n  list:\n    - bank\n    - nosuch\n",
                   "5: plugins.list[1]: plugin file " + std::string(AETHER_PLUGIN_DIR) +
                       "/nosuch.so does not exist"},
        ConfigCase{"BadListenAddress", kPlugins + "api:\n  http:\n    listen: localhost:99999\n",
                   "6: api.http.listen: port must be a number from 0 to 65535, got '99999'"},
        ConfigCase{"ListenWithoutPort", kPlugins + "api:\n  http:\n    listen: localhost\n",
                   "6: api.http.listen: expected host:port, got 'localhost'"},
        ConfigCase{"BadEnum", kPlugins + "store:\n  sqlite:\n    synchronous: sometimes\n",
                   "6: store.sqlite.synchronous: must be one of off, normal, full, extra, got 'sometimes'"},
        ConfigCase{"UnsetVariable", kPlugins + "node:\n  id: ${AETHER_TEST_UNSET_VAR}\n",
                   "5: node.id: environment variable AETHER_TEST_UNSET_VAR is not set"},
        ConfigCase{"ClusterWithoutNats", kPlugins + "cluster:\n  enabled: true\n",
                   "5: cluster.enabled: a cluster needs nats.enabled: true"},
        ConfigCase{"ClusterHeartbeatTooSlow", kPlugins + "cluster:\n  node_ttl: 2s\n  heartbeat: 2s\n",
                   "5: cluster.heartbeat: must be shorter than cluster.node_ttl (2000 ms)"},
        ConfigCase{"ClusterFailoverNotBelowTtl", kPlugins + "cluster:\n  node_ttl: 2s\n  failover_after: 2s\n",
                   "5: cluster.failover_after: must be 0 (off) or longer than cluster.heartbeat (1000 ms) and "
                   "shorter than cluster.node_ttl (2000 ms)"},
        ConfigCase{"JetStreamWithoutNats", kPlugins + "store:\n  backend: jetstream\n",
                   "5: store.backend: the jetstream store needs nats.enabled: true"},
        ConfigCase{"BadYaml", kPlugins + "actors: [\n", "5: invalid YAML"}),
    [](const testing::TestParamInfo<ConfigCase>& i) { return std::string(i.param.name); });

TEST(ConfigCheck, TheShippedConfigsAreValid) {
  test::TempDir dir;
  auto r = run_process({test::host_binary(), "--check-config", kDefaultConfig}, host_env(dir));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, kDefaultConfig + ": ok\n");
  const std::string js = std::string(AETHER_SOURCE_DIR) + "/config/jetstream.yaml";
  r = run_process({test::host_binary(), "--check-config", js}, host_env(dir));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const std::string cluster = std::string(AETHER_SOURCE_DIR) + "/config/cluster.yaml";
  r = run_process({test::host_binary(), "--check-config", cluster}, host_env(dir));
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(ConfigCheck, EmbeddedDefaultStartsWithoutAConfigFile) {
  test::TempDir dir;
  HostProcess host({}, host_env(dir), dir.file("host.log"));
  ASSERT_TRUE(host.start()) << host.log();
  EXPECT_NE(host.log().find("config: <embedded config/aether.yaml>"), std::string::npos) << host.log();
  EXPECT_EQ(host.stop(), 0);
}

}  // namespace
}  // namespace aether
