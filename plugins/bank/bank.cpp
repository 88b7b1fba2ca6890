// The bank plugin: one actor type, BankAccount.
//
// Commands: Open {owner}, Deposit {amount}, Withdraw {amount}, Close {}.
// Events:   Opened {owner}, Deposited {amount}, Withdrawn {amount}, Closed {}.
// Amounts are positive integers in the smallest currency unit (cents).
// Rules: an account is opened once; deposits and withdrawals need an open
// account; a withdrawal larger than the balance is refused
// (insufficient_funds); a deposit that would take the balance past 2^63-1
// cents is refused (balance_overflow); an account closes only with a zero
// balance.
#include <aether/sdk.hpp>

#include <cstdint>
#include <string>

namespace {

using aether::Decision;
using aether::json;

struct Account {
  std::string owner;
  int64_t balance = 0;
  bool open = false;
  bool closed = false;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Account, owner, balance, open, closed)

int64_t positive_amount(const json& cmd) {
  // Checked on the JSON value first: converting a fraction or a number past
  // INT64_MAX to int64_t would not give the number asked for.
  if (cmd.is_object()) {
    const auto it = cmd.find("amount");
    if (it != cmd.end() &&
        (it->is_number_float() || (it->is_number_unsigned() && it->get<uint64_t>() > INT64_MAX))) {
      throw aether::BadInput("field 'amount' must be an integer between 1 and 9223372036854775807");
    }
  }
  const auto amount = aether::field<int64_t>(cmd, "amount");
  if (amount <= 0) throw aether::BadInput("field 'amount' must be a positive integer");
  return amount;
}

void require_open(const Account& s) {
  if (s.closed) throw aether::Rejected("account_closed", "account is closed");
  if (!s.open) throw aether::Rejected("account_not_open", "account is not open");
}

aether::ActorType<Account> bank_account =
    aether::ActorType<Account>("BankAccount", 1)
        .command("Open",
                 [](const Account& s, const json& cmd, Decision& d) {
                   if (s.open || s.closed) {
                     throw aether::Rejected("already_open", "account is already open");
                   }
                   const auto owner = aether::field<std::string>(cmd, "owner");
                   if (owner.empty()) throw aether::BadInput("field 'owner' must not be empty");
                   d.emit("Opened", {{"owner", owner}});
                 })
        .command("Deposit",
                 [](const Account& s, const json& cmd, Decision& d) {
                   require_open(s);
                   const int64_t amount = positive_amount(cmd);
                   if (amount > INT64_MAX - s.balance) {
                     d.reject("balance_overflow",
                              "deposit of " + std::to_string(amount) + " would take the balance (" +
                                  std::to_string(s.balance) + ") past 9223372036854775807");
                     return;
                   }
                   d.emit("Deposited", {{"amount", amount}});
                 })
        .command("Withdraw",
                 [](const Account& s, const json& cmd, Decision& d) {
                   require_open(s);
                   const int64_t amount = positive_amount(cmd);
                   if (amount > s.balance) {
                     d.reject("insufficient_funds",
                              "insufficient funds: balance " + std::to_string(s.balance) +
                                  ", requested " + std::to_string(amount));
                     return;
                   }
                   d.emit("Withdrawn", {{"amount", amount}});
                 })
        .command("Close",
                 [](const Account& s, const json&, Decision& d) {
                   require_open(s);
                   if (s.balance != 0) {
                     d.reject("balance_not_zero",
                              "account can only be closed with a zero balance (balance " +
                                  std::to_string(s.balance) + ")");
                     return;
                   }
                   d.emit("Closed");
                 })
        .event("Opened",
               [](Account& s, const json& e) {
                 s.open = true;
                 s.owner = e.at("owner").get<std::string>();
               })
        .event("Deposited",
               [](Account& s, const json& e) { s.balance += e.at("amount").get<int64_t>(); })
        .event("Withdrawn",
               [](Account& s, const json& e) { s.balance -= e.at("amount").get<int64_t>(); })
        .event("Closed", [](Account& s, const json&) {
          s.open = false;
          s.closed = true;
        });

}  // namespace

AETHER_PLUGIN("bank", "1.0.0", bank_account)
