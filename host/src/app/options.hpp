// HostConfig -> the options struct of each module.
#pragma once

#include "api/http_server.hpp"
#include "bus/bus.hpp"
#include "cluster/cluster.hpp"
#include "config/config.hpp"
#include "nats/connection.hpp"
#include "runtime/runtime.hpp"
#include "store/jetstream_store.hpp"
#include "store/store.hpp"

namespace aether {

RuntimeOptions runtime_options(const HostConfig& c);
ClusterOptions cluster_options(const HostConfig& c, const PluginRegistry& registry);
NatsOptions nats_options(const HostConfig& c);
JetStreamOptions jetstream_options(const HostConfig& c);
SqliteOptions sqlite_options(const HostConfig& c);  // without its callbacks
HttpOptions http_options(const HostConfig& c);
BusOptions bus_options(const HostConfig& c);
SwapOptions swap_options(const HostConfig& c);

}  // namespace aether
