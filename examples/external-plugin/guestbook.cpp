// A guest book: people sign it, the owner can lock it.
#include <aether/sdk.hpp>

#include <string>
#include <vector>

namespace {

struct Book {
  std::vector<std::string> signatures;
  bool locked = false;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Book, signatures, locked)

aether::ActorType<Book> guest_book =
    aether::ActorType<Book>("GuestBook", 1)
        .command("Sign",
                 [](const Book& b, const aether::json& cmd, aether::Decision& d) {
                   if (b.locked) throw aether::Rejected("locked", "the guest book is locked");
                   d.emit("Signed", {{"name", aether::field<std::string>(cmd, "name")}});
                 })
        .command("Lock",
                 [](const Book& b, const aether::json&, aether::Decision& d) {
                   if (!b.locked) d.emit("Locked");
                 })
        .event("Signed",
               [](Book& b, const aether::json& e) {
                 b.signatures.push_back(e.at("name").get<std::string>());
               })
        .event("Locked", [](Book& b, const aether::json&) { b.locked = true; });

}  // namespace

AETHER_PLUGIN("guestbook", "1.0.0", guest_book)
