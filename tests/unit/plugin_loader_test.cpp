// The plugin loader: handshake, model validation, registry rules, and every
// error it must explain.
#include <gtest/gtest.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/elf_image.hpp"
#include "plugin/plugin.hpp"
#include "plugin/plugin_files.hpp"
#include "support/maps.hpp"
#include "support/temp_dir.hpp"

namespace aether {
namespace {

namespace fs = std::filesystem;

fs::path plugin_path(const std::string& name) { return fs::path(AETHER_PLUGIN_DIR) / (name + ".so"); }
fs::path test_plugin(const std::string& name) {
  return fs::path(AETHER_TEST_PLUGIN_DIR) / (name + ".so");
}

// Expects `file` to fail to load with a message naming the file and
// containing every one of `parts`.
void expect_load_error(const fs::path& file, const std::vector<std::string>& parts) {
  auto r = Plugin::open(file);
  ASSERT_FALSE(r.is_ok()) << file;
  const std::string& m = r.status().message();
  EXPECT_NE(m.find(file.string()), std::string::npos) << "message does not name the file: " << m;
  for (const auto& p : parts) EXPECT_NE(m.find(p), std::string::npos) << "missing '" << p << "' in: " << m;
}

TEST(PluginLoader, LoadsTheExamplePluginsAndTheirModels) {
  auto bank = Plugin::open(plugin_path("bank"));
  ASSERT_TRUE(bank.is_ok()) << bank.status().to_string();
  EXPECT_EQ((*bank)->name(), "bank");
  EXPECT_EQ((*bank)->abi_major(), 1u);
  const ActorType* t = (*bank)->find_type("BankAccount");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->commands(), (std::vector<std::string>{"Open", "Deposit", "Withdraw", "Close"}));
  EXPECT_EQ(t->events(), (std::vector<std::string>{"Opened", "Deposited", "Withdrawn", "Closed"}));
  EXPECT_EQ(t->command_index("Withdraw"), 2);
  EXPECT_EQ(t->command_index("Steal"), -1);

  auto counter = Plugin::open(plugin_path("counter"));
  ASSERT_TRUE(counter.is_ok()) << counter.status().to_string();
  EXPECT_NE((*counter)->find_type("Counter"), nullptr);
  auto order = Plugin::open(plugin_path("order"));
  ASSERT_TRUE(order.is_ok()) << order.status().to_string();
  EXPECT_NE((*order)->find_type("Order"), nullptr);
}

TEST(PluginLoader, DrivesHooksThroughTheAbi) {
  auto bank = Plugin::open(plugin_path("bank"));
  ASSERT_TRUE(bank.is_ok());
  const ActorType& t = *(*bank)->find_type("BankAccount");
  auto state = t.create();
  ASSERT_TRUE(state.is_ok());
  const std::string id = "acc-1";

  Decision d = t.decide(*state, t.command_index("Open"), R"({"owner":"ann"})", id, 0);
  ASSERT_TRUE(d.status.is_ok()) << d.status.to_string();
  ASSERT_EQ(d.events.size(), 1u);
  EXPECT_EQ(t.events()[d.events[0].index], "Opened");
  ASSERT_TRUE(t.apply(*state, d.events[0].index, d.events[0].payload, 1).is_ok());

  d = t.decide(*state, t.command_index("Withdraw"), R"({"amount":5})", id, 1);
  EXPECT_EQ(d.status.code(), StatusCode::kRejected);
  EXPECT_EQ(d.reject_code, "insufficient_funds");
  EXPECT_NE(d.status.message().find("insufficient funds"), std::string::npos);
  EXPECT_TRUE(d.events.empty());

  d = t.decide(*state, t.command_index("Deposit"), R"({"amount":"lots"})", id, 1);
  EXPECT_EQ(d.status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(d.status.message().find("amount"), std::string::npos) << d.status.message();

  d = t.decide(*state, t.command_index("Deposit"), R"({"amount":)", id, 1);
  EXPECT_EQ(d.status.code(), StatusCode::kInvalidArgument) << d.status.to_string();

  auto snap = t.snapshot(*state);
  ASSERT_TRUE(snap.is_ok());
  auto other = t.create();
  ASSERT_TRUE(t.restore(*other, *snap).is_ok());
  auto v = t.view(*other);
  ASSERT_TRUE(v.is_ok());
  EXPECT_NE(v->find("\"owner\":\"ann\""), std::string::npos) << *v;
  EXPECT_EQ(t.restore(*other, "not json").code(), StatusCode::kPluginError);
  t.destroy(*state);
  t.destroy(*other);
}

TEST(PluginLoader, MissingFile) {
  expect_load_error(test_plugin("does_not_exist"), {"no such file"});
}

TEST(PluginLoader, NotASharedLibrary) {
  const fs::path text = fs::temp_directory_path() / "aether_not_a_library.so";
  std::ofstream(text) << "this is text, not code\n";
  expect_load_error(text, {"not a shared library"});
  fs::remove(text);
}

TEST(PluginLoader, ATruncatedLibraryIsRefusedBeforeDlopen) {
  // The first 200 bytes of a real plugin: dlopen would map segments past the
  // end of the file (SIGBUS on first touch); the ELF check refuses it first.
  const fs::path cut = fs::temp_directory_path() / "aether_truncated.so";
  std::ifstream in(plugin_path("bank"), std::ios::binary);
  std::string head(200, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  std::ofstream(cut, std::ios::binary) << head;
  expect_load_error(cut, {"incomplete ELF image", "the file has 200 bytes"});
  fs::remove(cut);
}

TEST(PluginLoader, EntrySymbolMissing) {
  expect_load_error(test_plugin("no_entry"), {"entry symbol 'aether_plugin_entry' is missing"});
}

TEST(PluginLoader, AbiMajorMismatchNamesBothVersions) {
  expect_load_error(test_plugin("abi_major2"), {"ABI 2.0", "ABI 1.0", "major versions must match"});
}

TEST(PluginLoader, OlderMinorWithSmallerTablesIsAccepted) {
  auto p = Plugin::open(test_plugin("old_minor"));
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  const ActorType* t = (*p)->find_type("Probe");
  ASSERT_NE(t, nullptr);
  // The members past the plugin's struct_size hold garbage; they must be
  // treated as absent, never read.
  EXPECT_FALSE(t->has_upgrade());
  auto s = t->create();
  ASSERT_TRUE(s.is_ok());
  Decision d = t->decide(*s, 0, "{}", "x", 0);
  ASSERT_TRUE(d.status.is_ok()) << d.status.to_string();
  EXPECT_TRUE(t->apply(*s, d.events[0].index, d.events[0].payload, 1).is_ok());
  t->destroy(*s);
}

TEST(PluginLoader, NewerMinorIsAcceptedAndExtraMembersIgnored) {
  auto p = Plugin::open(test_plugin("newer_minor"));
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  EXPECT_EQ((*p)->abi_minor(), static_cast<uint32_t>(AETHER_ABI_MINOR + 3));
}

TEST(PluginLoader, MalformedModels) {
  expect_load_error(test_plugin("empty_name"), {"malformed model", "event name #2", "is empty"});
  expect_load_error(test_plugin("dup_command"), {"malformed model", "duplicate", "command name 'Hit'"});
  expect_load_error(test_plugin("non_utf8"), {"malformed model", "not valid UTF-8"});
  expect_load_error(test_plugin("unsafe_name"),
                    {"malformed model", "'bad.name'", "contains '.'", "NATS subject"});
  expect_load_error(test_plugin("no_hook"), {"malformed model", "no on_apply hook"});
}

TEST(PluginRegistry, ActorTypeAlreadyRegisteredByAnotherPlugin) {
  PluginRegistry reg;
  ASSERT_TRUE(reg.load(plugin_path("bank")).is_ok());
  auto r = reg.load(test_plugin("dup_type"));
  ASSERT_FALSE(r.is_ok());
  const std::string& m = r.status().message();
  EXPECT_NE(m.find(test_plugin("dup_type").string()), std::string::npos) << m;
  EXPECT_NE(m.find("actor type BankAccount is already registered by plugin bank"), std::string::npos) << m;
  // Nothing of the refused plugin stays registered.
  EXPECT_EQ(reg.find_plugin("impostor"), nullptr);
  EXPECT_EQ(reg.plugin_for_type("BankAccount")->name(), "bank");
}

TEST(PluginRegistry, SamePluginNameTwice) {
  PluginRegistry reg;
  ASSERT_TRUE(reg.load(plugin_path("counter")).is_ok());
  auto r = reg.load(plugin_path("counter"));
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("a plugin named counter is already loaded"), std::string::npos);
}

TEST(PluginRegistry, LoadUnloadHundredTimesLeavesNoMapping) {
  const fs::path file = fs::canonical(plugin_path("bank"));
  for (int i = 0; i < 100; ++i) {
    PluginRegistry reg;
    {
      auto p = reg.load(file);
      ASSERT_TRUE(p.is_ok()) << p.status().to_string();
      if (i == 0) {
        ASSERT_TRUE(test::is_mapped(file)) << "the loaded plugin should be mapped";
      }
      // Exercise the image so that lazily initialised statics exist too.
      const ActorType* t = (*p)->find_type("BankAccount");
      auto s = t->create();
      Decision d = t->decide(*s, 0, R"({"owner":"x"})", "id", 0);
      ASSERT_TRUE(d.status.is_ok());
      t->destroy(*s);
    }
    ASSERT_TRUE(reg.unload("bank").is_ok());
    ASSERT_FALSE(test::is_mapped(file)) << "still mapped after unload #" << i + 1;
  }
  EXPECT_FALSE(test::is_mapped(file)) << "bank.so is still mapped after 100 load/unload cycles";
}


// --- complete ELF images only (a truncated image would SIGBUS the host) -------

std::string bytes_of(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const fs::path& file, std::string_view bytes) {
  std::ofstream(file, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

TEST(ElfCheck, TheRealPluginsAreComplete) {
  for (const char* name : {"bank", "counter", "order"}) {
    EXPECT_EQ(check_elf_file(plugin_path(name).string()), "") << name;
  }
}

TEST(ElfCheck, EveryTruncationOfARealPluginIsRefused) {
  test::TempDir dir;
  const std::string whole = bytes_of(plugin_path("bank"));
  ASSERT_GT(whole.size(), 4096u);
  const size_t n = whole.size();
  for (size_t len : {size_t{4}, size_t{63}, size_t{64}, size_t{200}, size_t{4096}, n / 4, n / 2,
                     n * 3 / 4, n - 4096, n - 65, n - 1}) {
    const fs::path cut = dir.path() / ("bank." + std::to_string(len) + ".so");
    write_bytes(cut, std::string_view(whole).substr(0, len));
    const std::string why = check_elf_file(cut.string());
    EXPECT_NE(why, "") << "a " << len << "-byte prefix of " << n << " bytes passed";
    if (len >= sizeof(Elf64_Ehdr)) {
      EXPECT_NE(why.find("incomplete ELF image"), std::string::npos) << len << ": " << why;
      EXPECT_NE(why.find("the file has " + std::to_string(len) + " bytes"), std::string::npos) << why;
    }
    expect_load_error(cut, {why});
  }
}

TEST(ElfCheck, EmptyFileTextFileDirectoryAndFifo) {
  test::TempDir dir;
  const fs::path empty = dir.path() / "empty.so";
  write_bytes(empty, "");
  EXPECT_EQ(check_elf_file(empty.string()), "not a shared library (an empty file, no ELF header)");
  expect_load_error(empty, {"empty file"});

  const fs::path text = dir.path() / "text.so";
  write_bytes(text, "#!/bin/sh\necho this is not a library, but it is long enough to hold an ELF header\n");
  EXPECT_EQ(check_elf_file(text.string()), "not a shared library (no ELF header)");

  const fs::path sub = dir.path() / "dir.so";
  fs::create_directory(sub);
  EXPECT_EQ(check_elf_file(sub.string()), "not a regular file (a directory)");
  expect_load_error(sub, {"not a regular file (a directory)"});

  // A FIFO with no writer: opening it for reading would block forever; the
  // check must look at its type only (this test would hang otherwise).
  const fs::path fifo = dir.path() / "fifo.so";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(check_elf_file(fifo.string()), "not a regular file (a FIFO)");
  expect_load_error(fifo, {"not a regular file (a FIFO)"});
  EXPECT_EQ(check_elf_file((dir.path() / "absent.so").string()), "no such file");
}

TEST(ElfCheck, ImagesForAnotherHostAreRefused) {
  test::TempDir dir;
  std::string image = bytes_of(plugin_path("bank"));
  auto patched = [&](size_t offset, unsigned char value) {
    std::string b = image;
    b[offset] = static_cast<char>(value);
    const fs::path f = dir.path() / ("patched." + std::to_string(offset) + ".so");
    write_bytes(f, b);
    return check_elf_file(f.string());
  };
  EXPECT_NE(patched(EI_CLASS, ELFCLASS32).find("a 32-bit ELF image, this host is 64-bit"), std::string::npos);
  EXPECT_NE(patched(offsetof(Elf64_Ehdr, e_type), ET_EXEC).find("not a shared library: ELF type 2"),
            std::string::npos);
  EXPECT_NE(patched(offsetof(Elf64_Ehdr, e_machine), 3).find("built for ELF machine 3"), std::string::npos);
}

// --- private copies and the files a host may load -------------------------------

PluginFilePolicy only_dir(const fs::path& dir) {
  PluginFilePolicy p;
  p.dirs.push_back(dir);
  return p;
}

TEST(PluginCopies, OverwritingTheSourceInPlaceLeavesTheLoadedPluginWorking) {
  test::TempDir dir;
  const fs::path src = dir.path() / "src";
  fs::create_directory(src);
  const fs::path file = src / "bank.so";
  fs::copy_file(plugin_path("bank"), file);
  auto copies = PluginCopies::create(dir.path() / "copies");
  ASSERT_TRUE(copies.is_ok()) << copies.status().to_string();
  auto copy = (*copies)->copy(file.string(), only_dir(src), "bank");
  ASSERT_TRUE(copy.is_ok()) << copy.status().to_string();
  EXPECT_EQ(copy->parent_path(), (*copies)->dir());
  auto p = Plugin::open(*copy, file);
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  EXPECT_EQ((*p)->source(), file);

  // A build rewrites the file in place (same inode): first truncated, then
  // other bytes. Pages of a mapped source would be gone (SIGBUS) or changed.
  { std::ofstream(file, std::ios::binary | std::ios::trunc) << "x"; }
  write_bytes(file, bytes_of(plugin_path("counter")));
  const ActorType* t = (*p)->find_type("BankAccount");
  ASSERT_NE(t, nullptr);
  auto state = t->create();
  ASSERT_TRUE(state.is_ok());
  Decision d = t->decide(*state, t->command_index("Open"), R"({"owner":"ann"})", "a", 0);
  ASSERT_TRUE(d.status.is_ok()) << d.status.to_string();
  ASSERT_TRUE(t->apply(*state, d.events[0].index, d.events[0].payload, 1).is_ok());
  EXPECT_NE(t->view(*state)->find("ann"), std::string::npos);
  t->destroy(*state);
}

TEST(PluginCopies, AnIncompleteSourceLeavesNoCopy) {
  test::TempDir dir;
  const fs::path file = dir.path() / "half.so";
  const std::string whole = bytes_of(plugin_path("bank"));
  write_bytes(file, std::string_view(whole).substr(0, whole.size() / 2));
  auto copies = PluginCopies::create(dir.path() / "copies");
  ASSERT_TRUE(copies.is_ok());
  auto copy = (*copies)->copy(file.string(), only_dir(dir.path()), "half");
  ASSERT_FALSE(copy.is_ok());
  EXPECT_EQ(copy.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(copy.status().message().find("plugin " + file.string() + ": incomplete ELF image"),
            std::string::npos)
      << copy.status().message();
  EXPECT_TRUE(fs::is_empty((*copies)->dir()));
}

TEST(PluginFilePolicy, OnlyFilesInsideTheAllowedDirectories) {
  test::TempDir dir;
  const fs::path plugins = dir.path() / "plugins";
  const fs::path outside = dir.path() / "outside";
  fs::create_directories(plugins / "sub");
  fs::create_directory(outside);
  fs::copy_file(plugin_path("bank"), plugins / "bank.so");
  fs::copy_file(plugin_path("bank"), outside / "evil.so");
  fs::create_symlink(outside / "evil.so", plugins / "link.so");
  fs::create_directory_symlink(outside, plugins / "linkdir");
  const PluginFilePolicy policy = only_dir(plugins);

  EXPECT_TRUE(check_plugin_path((plugins / "bank.so").string(), policy).is_ok());
  EXPECT_TRUE(check_plugin_path((plugins / "sub/../bank.so").string(), policy).is_ok());
  for (const fs::path& refused : {outside / "evil.so", plugins / "../outside/evil.so", plugins / "link.so",
                                  plugins / "linkdir/evil.so", fs::path("/etc/passwd"), plugins}) {
    const Status s = check_plugin_path(refused.string(), policy);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << refused;
    EXPECT_NE(s.message().find("plugin file " + refused.string() + " "), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("is outside the directories plugins may be loaded from (" + plugins.string() + ")"),
              std::string::npos)
        << s.message();
  }
  EXPECT_NE(check_plugin_path((plugins / "link.so").string(), policy).message().find(
                "which leads to " + (outside / "evil.so").string()),
            std::string::npos);
  // A file the configuration names is allowed where it is; "/" allows all.
  PluginFilePolicy named = policy;
  named.files.push_back(outside / "evil.so");
  EXPECT_TRUE(check_plugin_path((outside / "evil.so").string(), named).is_ok());
  EXPECT_TRUE(check_plugin_path((outside / "evil.so").string(), only_dir("/")).is_ok());
  // A refused file is never copied.
  auto copies = PluginCopies::create(dir.path() / "copies");
  ASSERT_TRUE(copies.is_ok());
  EXPECT_FALSE((*copies)->copy((plugins / "link.so").string(), policy, "x").is_ok());
  EXPECT_TRUE(fs::is_empty((*copies)->dir()));
}

// A pid that no process has any more (a child that exited and was reaped).
pid_t dead_pid() {
  const pid_t pid = fork();
  if (pid == 0) _exit(0);
  waitpid(pid, nullptr, 0);
  return pid;
}

TEST(PluginCopies, LeftoversOfGoneProcessesAreRemoved) {
  test::TempDir root;
  const std::string dead = std::to_string(dead_pid());
  const std::string me = std::to_string(getpid());
  const std::vector<std::string> names = {"aether-plugins-" + dead + "-abc123", "aether-plugins-" + dead,
                                         "aether-plugins-" + me + "-live", "aether-plugins-1-init",
                                         "aether-plugins-x", "unrelated"};
  for (const std::string& name : names) {
    fs::create_directory(root.path() / name);
    write_bytes(root.path() / name / "bank.1.so", "copy");
  }
  test::TempDir elsewhere;
  write_bytes(elsewhere.path() / "keep", "keep");
  fs::create_directory_symlink(elsewhere.path(), root.path() / ("aether-plugins-" + dead + "-link"));

  EXPECT_EQ(remove_stale_copy_dirs(root.path()), 2u);
  EXPECT_FALSE(fs::exists(root.path() / ("aether-plugins-" + dead + "-abc123")));
  EXPECT_FALSE(fs::exists(root.path() / ("aether-plugins-" + dead)));
  EXPECT_TRUE(fs::exists(root.path() / ("aether-plugins-" + me + "-live")));
  EXPECT_TRUE(fs::exists(root.path() / "aether-plugins-1-init"));
  EXPECT_TRUE(fs::exists(root.path() / "aether-plugins-x"));
  EXPECT_TRUE(fs::exists(elsewhere.path() / "keep")) << "a symlink is never followed";
}

TEST(PluginCopies, AHostsOwnCopyDirectoryIsEmptiedAtStartAndRemovedAtTheEnd) {
  test::TempDir dir;
  const fs::path copies_dir = dir.path() / "plugins.loaded";
  fs::create_directory(copies_dir);
  write_bytes(copies_dir / "bank.7.so", "left by a killed host");
  {
    auto copies = PluginCopies::create(copies_dir);
    ASSERT_TRUE(copies.is_ok());
    EXPECT_TRUE(fs::is_empty(copies_dir));
    ASSERT_TRUE((*copies)->copy(plugin_path("bank").string(), only_dir("/"), "bank").is_ok());
    EXPECT_FALSE(fs::is_empty(copies_dir));
  }
  EXPECT_FALSE(fs::exists(copies_dir));
}

}  // namespace
}  // namespace aether
