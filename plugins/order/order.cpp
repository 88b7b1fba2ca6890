// The order plugin: one actor type, Order, with the state machine of a shop.
//
//   (new) --Place--> placed --AddLine*--> placed --Pay--> paid --Ship--> shipped
//                      |                                   |
//                      +--------------Cancel---------------+--> cancelled
//
// Commands: Place {customer}, AddLine {sku, quantity, unit_price},
//           Pay {amount}, Ship {carrier?}, Cancel {reason?}.
// Events:   Placed, LineAdded, Paid, Shipped, Cancelled.
// Rules: lines are added only while placed (not yet paid); payment needs at
// least one line and must equal the total; only a paid order ships; an order
// can be cancelled until it ships; a paid order that is cancelled is refunded
// (the Cancelled event carries the refund).
#include <aether/sdk.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace {

using aether::Decision;
using aether::json;

struct Line {
  std::string sku;
  int64_t quantity = 0;
  int64_t unit_price = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Line, sku, quantity, unit_price)

struct Order {
  std::string status = "new";  // new, placed, paid, shipped, cancelled
  std::string customer;
  std::vector<Line> lines;
  int64_t total = 0;
  int64_t paid = 0;
  std::string carrier;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Order, status, customer, lines, total, paid, carrier)

void require_status(const Order& s, const char* wanted, const char* action) {
  if (s.status != wanted) {
    throw aether::Rejected("invalid_state", std::string("cannot ") + action +
                                                " an order that is " + s.status);
  }
}

aether::ActorType<Order> order_type =
    aether::ActorType<Order>("Order", 1)
        .command("Place",
                 [](const Order& s, const json& cmd, Decision& d) {
                   require_status(s, "new", "place");
                   const auto customer = aether::field<std::string>(cmd, "customer");
                   if (customer.empty()) throw aether::BadInput("field 'customer' must not be empty");
                   d.emit("Placed", {{"customer", customer}});
                 })
        .command("AddLine",
                 [](const Order& s, const json& cmd, Decision& d) {
                   require_status(s, "placed", "add a line to");
                   const auto sku = aether::field<std::string>(cmd, "sku");
                   const auto qty = aether::field<int64_t>(cmd, "quantity");
                   const auto price = aether::field<int64_t>(cmd, "unit_price");
                   if (sku.empty()) throw aether::BadInput("field 'sku' must not be empty");
                   if (qty <= 0) throw aether::BadInput("field 'quantity' must be positive");
                   if (price < 0) throw aether::BadInput("field 'unit_price' must not be negative");
                   d.emit("LineAdded", {{"sku", sku}, {"quantity", qty}, {"unit_price", price}});
                 })
        .command("Pay",
                 [](const Order& s, const json& cmd, Decision& d) {
                   require_status(s, "placed", "pay");
                   if (s.lines.empty()) {
                     throw aether::Rejected("empty_order", "cannot pay an order without lines");
                   }
                   const auto amount = aether::field<int64_t>(cmd, "amount");
                   if (amount != s.total) {
                     throw aether::Rejected("wrong_amount",
                                            "payment of " + std::to_string(amount) +
                                                " does not match the total " +
                                                std::to_string(s.total));
                   }
                   d.emit("Paid", {{"amount", amount}});
                 })
        .command("Ship",
                 [](const Order& s, const json& cmd, Decision& d) {
                   require_status(s, "paid", "ship");
                   d.emit("Shipped",
                          {{"carrier", aether::field_or<std::string>(cmd, "carrier", "")}});
                 })
        .command("Cancel",
                 [](const Order& s, const json& cmd, Decision& d) {
                   if (s.status != "placed" && s.status != "paid") {
                     throw aether::Rejected("invalid_state",
                                            "cannot cancel an order that is " + s.status);
                   }
                   d.emit("Cancelled",
                          {{"reason", aether::field_or<std::string>(cmd, "reason", "")},
                           {"refund", s.paid}});
                 })
        .event("Placed",
               [](Order& s, const json& e) {
                 s.status = "placed";
                 s.customer = e.at("customer").get<std::string>();
               })
        .event("LineAdded",
               [](Order& s, const json& e) {
                 Line l = e.get<Line>();
                 s.total += l.quantity * l.unit_price;
                 s.lines.push_back(std::move(l));
               })
        .event("Paid",
               [](Order& s, const json& e) {
                 s.status = "paid";
                 s.paid = e.at("amount").get<int64_t>();
               })
        .event("Shipped",
               [](Order& s, const json& e) {
                 s.status = "shipped";
                 s.carrier = e.at("carrier").get<std::string>();
               })
        .event("Cancelled", [](Order& s, const json&) {
          s.status = "cancelled";
          s.paid = 0;
        });

}  // namespace

AETHER_PLUGIN("order", "1.0.0", order_type)
