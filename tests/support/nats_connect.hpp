// Test support: an aether NatsConnection to a test nats-server.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "nats/connection.hpp"
#include "support/nats_server.hpp"

namespace aether::test {

// Connected, or null after a test failure saying why.
inline std::unique_ptr<NatsConnection> connect(const NatsServer& server) {
  NatsOptions o;
  o.servers = {server.url()};
  auto c = NatsConnection::connect(o);
  EXPECT_TRUE(c.is_ok()) << c.status().to_string();
  return c ? std::move(c).value() : nullptr;
}

}  // namespace aether::test
