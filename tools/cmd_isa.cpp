// `rplayer asm` and `rplayer disasm`: the QPU assembler and disassembler.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>

#include "hw/isa/assembler.h"
#include "hw/isa/disassembler.h"
#include "tools/commands.h"

namespace rplayer::tools {

namespace {

bool read_file(const std::string& path, std::string* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  out->assign(std::istreambuf_iterator<char>(f), {});
  return !f.bad();
}

}  // namespace

void add_isa_commands(Cli& cli) {
  CLI::App& app = cli.app;
  struct Opts {
    std::string in, out;
  };
  auto* a = &cli.hold<Opts>();
  auto* as = app.add_subcommand("asm", "Assemble QPU assembly text into a program binary");
  as->add_option("input", a->in, "Assembly source (.s)")->required();
  as->add_option("-o,--output", a->out, "Output binary")->required();
  as->callback(cli.run("asm", [a] {
    std::string src;
    if (!read_file(a->in, &src)) {
      std::fprintf(stderr, "rplayer asm: cannot read '%s'\n", a->in.c_str());
      return 1;
    }
    const isa::AsmResult r = isa::assemble(src);
    for (const auto& e : r.errors)
      std::fprintf(stderr, "%s:%d: error: %s\n", a->in.c_str(), e.line, e.message.c_str());
    if (!r.ok()) {
      return 1;
    }
    const auto bytes = isa::to_bytes(r.words);
    std::ofstream f(a->out, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    if (!f) {
      std::fprintf(stderr, "rplayer asm: cannot write '%s'\n", a->out.c_str());
      return 1;
    }
    std::printf("%zu instructions, %zu bytes -> %s\n", r.words.size(), bytes.size(),
                a->out.c_str());
    return 0;
  }));

  auto* d = &cli.hold<Opts>();
  auto* ds = app.add_subcommand("disasm", "Disassemble a QPU program binary");
  ds->add_option("input", d->in, "Program binary")->required();
  ds->callback(cli.run("disasm", [d] {
    std::string data;
    if (!read_file(d->in, &data)) {
      std::fprintf(stderr, "rplayer disasm: cannot read '%s'\n", d->in.c_str());
      return 1;
    }
    const auto words = isa::from_bytes(
        {reinterpret_cast<const uint8_t*>(data.data()), data.size()});
    if (!words) {
      std::fprintf(stderr, "rplayer disasm: '%s' is %zu bytes, not a multiple of 8\n",
                   d->in.c_str(), data.size());
      return 1;
    }
    std::fputs(isa::disassemble(*words).c_str(), stdout);
    return 0;
  }));
}

}  // namespace rplayer::tools
