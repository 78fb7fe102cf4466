// `darvoza id parse TEXT`: shows every kind of identifier a text can be, or why it is none.
#include <iostream>
#include <string>

#include "common/identifiers.h"
#include "tools/cli/commands.h"

namespace darvoza::cli {

void AddIdCommands(CLI::App& app, int* exit_code) {
  CLI::App* id = app.add_subcommand("id", "Work with Darvoza identifiers (docs/design.md §2)");
  id->require_subcommand(1);
  CLI::App* parse = id->add_subcommand(
      "parse", "Print every kind the text can be (member, subsystem, service, server, global or "
               "local group) with its parts; exits 1 with the reason if it is none");
  auto text = std::make_shared<std::string>();
  parse->add_option("TEXT", *text, "Identifier text, optionally with a kind prefix "
                                    "(e.g. server:UZ/GOV/70000001/ss1)")
      ->required();
  parse->callback([text, exit_code] {
    auto readings = ReadIdentifier(*text);
    if (!readings.ok()) {
      std::cerr << "error: " << readings.status().message() << "\n";
      *exit_code = 1;
      return;
    }
    for (const IdentifierReading& reading : *readings) {
      std::cout << IdentifierKindName(reading.kind) << ":\n";
      for (size_t i = 0; i < reading.parts.size(); ++i) {
        std::cout << "  " << reading.part_names[i] << ": " << reading.parts[i] << "\n";
      }
    }
  });
}

}  // namespace darvoza::cli
